#!/usr/bin/env bash
# The counter example app end to end (`guest-examples/counter`): requests/s
# and p99 of `POST /counter/NAME` (an atomic increment) and `GET` (a read)
# on the embedded SQLite store and on a redis-server this script starts,
# at each concurrency, backends alternated round by round on one machine.
# Loopback only; every run is bounded ($DURATION s) and every server this
# script starts is stopped on exit. Prints a table and writes
# benches/results/counter-<timestamp>.{csv,json} (and counter-latest.*).
#
# Usage: benches/apps/counter.sh
# Knobs: DURATION=5 ROUNDS=2 CONCURRENCY="1 16" PORT=18091 REDIS_PORT=18092
#   SKIP_BUILD=1 (reuse the release gust and the counter component)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
RESULTS=$ROOT/benches/results
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/gust-target}
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-2}
CONCURRENCY=${CONCURRENCY:-"1 16"}
PORT=${PORT:-18091}
REDIS_PORT=${REDIS_PORT:-18092}
export WRK_JSON=$ROOT/benches/e2e/wrk-json.lua

command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "redis-server is needed (apt-get install redis-server)" >&2; exit 1; }

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    echo "building gust (release) and the counter component..." >&2
    cargo build --release -p gust-runtime --quiet
    (cd "$ROOT/guest-examples" && CARGO_TARGET_DIR=$CARGO_TARGET_DIR/guest-examples \
        cargo build --release --target wasm32-wasip2 -p counter --quiet)
fi
GUST=$CARGO_TARGET_DIR/release/gust
COMPONENT=$CARGO_TARGET_DIR/guest-examples/wasm32-wasip2/release/counter.wasm

WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no >/dev/null &
PIDS+=($!)

manifest() { # backend -> path of a gust.toml
    local backend=$1 file=$WORK/$1.toml
    {
        echo 'name = "counter"'
        echo "[data]"
        echo "dir = \"$WORK/data-$backend\""
        if [ "$backend" = redis ]; then
            printf '[key_value_store.default]\ntype = "redis"\nurl = "redis://127.0.0.1:%s"\n' "$REDIS_PORT"
        fi
        printf '[functions.counter]\ncomponent = "%s"\nkey_value_stores = ["default"]\n' "$COMPONENT"
        printf '[[routes]]\npath = "/counter/{name}"\nfunction = "counter"\n'
    } >"$file"
    echo "$file"
}

wait_port() {
    for _ in $(seq 1 200); do
        (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "nothing listened on $1" >&2; return 1
}

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
CSV=$RESULTS/counter-$STAMP.csv
echo "round,backend,op,concurrency,requests_per_s,p50_ms,p99_ms,non_2xx,errors" >"$CSV"
wait_port "$REDIS_PORT"
for round in $(seq 1 "$ROUNDS"); do
    for backend in sqlite redis; do
        RUST_LOG=warn "$GUST" serve "$(manifest $backend)" --listen 127.0.0.1:$PORT 2>"$WORK/gust-$backend.log" &
        GPID=$!
        wait_port "$PORT"
        for c in $CONCURRENCY; do
            threads=$(( c < 2 ? c : 2 ))
            for op in post get; do
                script=$WRK_JSON
                [ "$op" = post ] && script=$ROOT/benches/apps/counter-post.lua
                out=$(wrk -t "$threads" -c "$c" -d "${DURATION}s" -s "$script" \
                    "http://127.0.0.1:$PORT/counter/bench-$round-$c" 2>&1)
                json=$(echo "$out" | sed -n '/^JSON$/{n;p}')
                python3 - "$round" "$backend" "$op" "$c" "$json" >>"$CSV" <<'PY'
import json, sys
r, b, op, c, raw = sys.argv[1:]
d = json.loads(raw)
total = d["summary"]["total"]
ok = d["statusCodeDistribution"]["2xx"]
other = d["statusCodeDistribution"]["other"]
errors = sum(d["errorDistribution"].values())
rps = (ok + other) / total if total else 0
p = d["latencyPercentiles"]
print(f"{r},{b},{op},{c},{rps:.0f},{p['p50']*1e3:.3f},{p['p99']*1e3:.3f},{other},{errors}")
PY
            done
        done
        kill "$GPID"; wait "$GPID" 2>/dev/null || true
    done
done
cp "$CSV" "$RESULTS/counter-latest.csv"
python3 - "$CSV" "$RESULTS/counter-$STAMP.json" <<'PY'
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1])))
json.dump(rows, open(sys.argv[2], "w"), indent=1)
print(f"{'backend':8} {'op':5} {'c':>3} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}  (round)")
for r in rows:
    print(f"{r['backend']:8} {r['op']:5} {r['concurrency']:>3} {r['requests_per_s']:>8} {r['p50_ms']:>8} {r['p99_ms']:>8} {r['non_2xx']:>8}  ({r['round']})")
PY
cp "$RESULTS/counter-$STAMP.json" "$RESULTS/counter-latest.json"
echo "wrote $CSV" >&2
