#!/usr/bin/env bash
# What metering costs: hello and a compute-heavy guest served by one
# release `gust serve` binary in three configurations, alternated:
#   full      fuel metering + SQLite ledger (the default)
#   no-ledger fuel metering, no ledger
#   no-fuel   neither (fuel off in the engine, no ledger)
# Loopback only; every wrk run is bounded (DURATION seconds).
#
#   benches/metering/run.sh            # DURATION=10 ROUNDS=2 CONNS=16
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
DURATION="${DURATION:-10}"
ROUNDS="${ROUNDS:-2}"
CONNS="${CONNS:-16}"
PORT="${PORT:-18480}"
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 1; }

[ -n "${SKIP_BUILD:-}" ] || cargo build --release -p gust-runtime >&2
GUST="$CARGO_TARGET_DIR/release/gust"
OUT=benches/results
mkdir -p "$OUT"
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

start() { # config -> starts gust on $PORT
  local flags=()
  case "$1" in
    full) flags=(--ledger "$WORK/ledger.sqlite") ;;
    no-ledger) flags=(--no-ledger) ;;
    no-fuel) flags=(--no-ledger --no-fuel) ;;
  esac
  RUST_LOG=warn "$GUST" serve --listen "127.0.0.1:$PORT" "${flags[@]}" 2>"$WORK/gust.log" &
  GUST_PID=$!
  for _ in $(seq 1 100); do
    curl -sf "127.0.0.1:$PORT/hello" >/dev/null && return 0
    sleep 0.1
  done
  echo "gust did not start" >&2; cat "$WORK/gust.log" >&2; exit 1
}

# gust's CPU time so far, in clock ticks (utime + stime).
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$GUST_PID/stat"; }

# wrk's summary: requests/s, latency percentiles (in ms) and gust's CPU
# microseconds per request.
measure() { # path -> "rps p50 p99 cpu_us"
  local before after
  before=$(cpu_ticks)
  wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency "http://127.0.0.1:$PORT$1" > "$WORK/wrk.out"
  after=$(cpu_ticks)
  awk -v ticks=$((after - before)) -v hz="$(getconf CLK_TCK)" '
    function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
    /^ +50%/ { p50 = ms($2) } /^ +99%/ { p99 = ms($2) } /^Requests\/sec/ { rps = $2 }
    / requests in / { n = $1 }
    END { printf "%s %.3f %.3f %.2f\n", rps, p50, p99, ticks / hz * 1e6 / n }' "$WORK/wrk.out"
}

echo "workload,config,round,rps,p50_ms,p99_ms,cpu_us_per_req" > "$OUT/metering.csv"
for round in $(seq 1 "$ROUNDS"); do
  for config in full no-ledger no-fuel; do
    start "$config"
    for path in /hello "/work?n=20000"; do
      curl -sf "127.0.0.1:$PORT$path" >/dev/null
      read -r rps p50 p99 cpu < <(measure "$path")
      echo "$path,$config,$round,$rps,$p50,$p99,$cpu" >> "$OUT/metering.csv"
      echo "round $round $config $path: $rps req/s p50 ${p50}ms p99 ${p99}ms cpu ${cpu}us/req" >&2
    done
    kill "$GUST_PID"; wait "$GUST_PID" 2>/dev/null || true
  done
done

python3 - "$OUT/metering.csv" <<'PY'
import csv, sys, statistics
rows = list(csv.DictReader(open(sys.argv[1])))
def mean(w, c, k): return statistics.mean(float(r[k]) for r in rows if r["workload"] == w and r["config"] == c)
print(f"{'workload':<16}{'config':<11}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'CPU us/req':>11}{'rps ratio':>10}{'CPU ratio':>10}")
for w in dict.fromkeys(r["workload"] for r in rows):
    base, base_cpu = mean(w, "no-fuel", "rps"), mean(w, "no-fuel", "cpu_us_per_req")
    for c in ("full", "no-ledger", "no-fuel"):
        rps, cpu = mean(w, c, "rps"), mean(w, c, "cpu_us_per_req")
        print(f"{w:<16}{c:<11}{rps:>10.0f}{mean(w, c, 'p50_ms'):>9.3f}{mean(w, c, 'p99_ms'):>9.3f}"
              f"{cpu:>11.1f}{rps / base:>10.3f}{cpu / base_cpu:>10.3f}")
PY
