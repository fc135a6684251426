#!/usr/bin/env bash
# What metering costs: hello and a compute-heavy guest served by one
# release `gust serve` binary in three configurations, all running at once
# and driven in turn, round after round:
#   full      fuel metering + SQLite ledger (the default)
#   no-ledger fuel metering, no ledger
#   no-fuel   neither (fuel off in the engine, no ledger)
# Loopback only; every wrk run is bounded (DURATION seconds).
#
#   benches/metering/run.sh            # DURATION=5 ROUNDS=6 CONNS=16
#
# Prints a table (requests/s, p50, p99, gust CPU time per request, ratios
# to no-fuel) and writes benches/results/metering.csv.
#
# CPU per request is gust's utime+stime (from /proc/PID/stat) over the
# requests wrk completed. On a VM with CPU steal it is far steadier than
# requests/s, because stolen time is not charged to the process.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/gust-target}"
DURATION="${DURATION:-5}"
ROUNDS="${ROUNDS:-6}"
CONNS="${CONNS:-16}"
PORT="${PORT:-18480}"
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 1; }

[ -n "${SKIP_BUILD:-}" ] || cargo build --release -p gust-runtime >&2
GUST="$CARGO_TARGET_DIR/release/gust"
OUT=benches/results
mkdir -p "$OUT"
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

# All three configurations serve at once, on their own ports, so that one
# round drives them back to back (in a rotating order) and the per-round
# ratios pair runs seconds apart: a drifting machine moves both sides.
declare -A PID PORTS
start() { # config port -> starts gust
  local flags=()
  case "$1" in
    full) flags=(--ledger "$WORK/ledger.sqlite") ;;
    no-ledger) flags=(--no-ledger) ;;
    no-fuel) flags=(--no-ledger --no-fuel) ;;
  esac
  RUST_LOG=warn "$GUST" serve --listen "127.0.0.1:$2" "${flags[@]}" 2>"$WORK/$1.log" &
  PID[$1]=$!
  PORTS[$1]=$2
  for _ in $(seq 1 100); do
    curl -sf "127.0.0.1:$2/hello" >/dev/null && return 0
    sleep 0.1
  done
  echo "gust ($1) did not start" >&2; cat "$WORK/$1.log" >&2; exit 1
}
CONFIGS=(full no-ledger no-fuel)
for i in "${!CONFIGS[@]}"; do start "${CONFIGS[$i]}" $((PORT + i)); done

# gust's CPU time so far, in clock ticks (utime + stime).
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# wrk's summary: requests/s, latency percentiles (in ms) and gust's CPU
# microseconds per request.
measure() { # config path -> "rps p50 p99 cpu_us"
  local before after
  before=$(cpu_ticks "${PID[$1]}")
  wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency "http://127.0.0.1:${PORTS[$1]}$2" > "$WORK/wrk.out"
  after=$(cpu_ticks "${PID[$1]}")
  awk -v ticks=$((after - before)) -v hz="$(getconf CLK_TCK)" '
    function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
    /^ +50%/ { p50 = ms($2) } /^ +99%/ { p99 = ms($2) } /^Requests\/sec/ { rps = $2 }
    / requests in / { n = $1 }
    END { printf "%s %.3f %.3f %.2f\n", rps, p50, p99, ticks / hz * 1e6 / n }' "$WORK/wrk.out"
}

echo "workload,config,round,rps,p50_ms,p99_ms,cpu_us_per_req" > "$OUT/metering.csv"
for round in $(seq 1 "$ROUNDS"); do
  for path in /hello "/work?n=20000"; do
    for k in 0 1 2; do
      config=${CONFIGS[$(( (round + k) % 3 ))]}
      curl -sf "127.0.0.1:${PORTS[$config]}$path" >/dev/null
      read -r rps p50 p99 cpu < <(measure "$config" "$path")
      echo "$path,$config,$round,$rps,$p50,$p99,$cpu" >> "$OUT/metering.csv"
      echo "round $round $config $path: $rps req/s p50 ${p50}ms p99 ${p99}ms cpu ${cpu}us/req" >&2
    done
  done
done

python3 - "$OUT/metering.csv" <<'PY2'
import csv, sys, statistics
rows = list(csv.DictReader(open(sys.argv[1])))
def cell(w, c, r, k): return next(float(x[k]) for x in rows if (x["workload"], x["config"], x["round"]) == (w, c, r))
def mean(w, c, k): return statistics.mean(float(x[k]) for x in rows if x["workload"] == w and x["config"] == c)
rounds = sorted({x["round"] for x in rows}, key=int)
print(f"{len(rounds)} rounds; ratios are medians of per-round ratios to no-fuel")
print(f"{'workload':<16}{'config':<11}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'CPU us/req':>11}{'rps ratio':>10}{'CPU ratio':>10}")
for w in dict.fromkeys(x["workload"] for x in rows):
    for c in ("full", "no-ledger", "no-fuel"):
        rps_r = statistics.median(cell(w, c, r, "rps") / cell(w, "no-fuel", r, "rps") for r in rounds)
        cpu_r = statistics.median(cell(w, c, r, "cpu_us_per_req") / cell(w, "no-fuel", r, "cpu_us_per_req") for r in rounds)
        print(f"{w:<16}{c:<11}{mean(w, c, 'rps'):>10.0f}{mean(w, c, 'p50_ms'):>9.3f}{mean(w, c, 'p99_ms'):>9.3f}"
              f"{mean(w, c, 'cpu_us_per_req'):>11.1f}{rps_r:>10.3f}{cpu_r:>10.3f}")
PY2
