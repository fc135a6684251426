#!/usr/bin/env bash
# Are gust's engine defaults right? Measures, with the release `gust` binary
# and the hello components of e2e/run.sh (build them with it first):
#
#  1. pool size ([engine].max_instances, default 1000): spawn -> first 200,
#     virtual reservation (VmSize), resident memory idle and after a
#     `wrk -c64` burst, and that burst's requests/s, for 100 / 1000 / 10000;
#  2. memory: the peak linear memory of one request to each hello (Rust,
#     Python, JavaScript), against the defaults (128 MiB per function,
#     256 MiB largest memory in the pool);
#  3. stack ([engine].max_wasm_stack, default 512 KiB): whether each hello
#     still answers 200 with 32 KiB to 512 KiB of Wasm stack, and how deep
#     the `stack-overflow` guest recursed before its trap (fuel used).
#
# Loopback only (127.0.0.1:18097), every server stopped on exit, each
# request bounded by curl's --max-time. Prints tables; writes
# benches/results/defaults-<stamp>.md.
#
# Usage: CARGO_TARGET_DIR=... benches/defaults/run.sh
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
GUST=$CARGO_TARGET_DIR/release/gust
COMPONENTS=$ROOT/benches/.tools/components
GUESTS=$CARGO_TARGET_DIR/guest-examples/wasm32-wasip2/release
PORT=${PORT:-18097}
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$ROOT/benches/results/defaults-$STAMP.md
WORK=$(mktemp -d)
PID=
cleanup() {
  [[ -n $PID ]] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

# `stack-overflow` is a test guest (tests/guests), built by the test
# crate's build script.
[[ -e $GUESTS/stack_overflow.wasm ]] || cargo build --release -p gust-tests --lib >&2
for f in "$GUST" "$COMPONENTS/rust.wasm" "$COMPONENTS/python.wasm" "$COMPONENTS/js.wasm" "$GUESTS/stack_overflow.wasm"; do
  [[ -e $f ]] || { echo "missing $f (build gust, run benches/e2e/run.sh once)" >&2; exit 1; }
done

# serve MANIFEST: starts gust (PID), waits for its first 200 on /rust and
# sets MS to the milliseconds that took. Not to be called in a subshell.
MS=
serve() {
  local started now
  if curl -s --max-time 1 -o /dev/null "http://127.0.0.1:$PORT/"; then
    echo "port $PORT is already in use" >&2
    return 1
  fi
  started=$(date +%s%N)
  RUST_LOG=info "$GUST" serve "$1" --listen "127.0.0.1:$PORT" --no-ledger >"$WORK/gust.log" 2>&1 &
  PID=$!
  for _ in $(seq 600); do
    if curl -sf --max-time 5 -o /dev/null "http://127.0.0.1:$PORT/rust"; then
      now=$(date +%s%N)
      MS=$(((now - started) / 1000000))
      return 0
    fi
    kill -0 "$PID" 2>/dev/null || { cat "$WORK/gust.log" >&2; return 1; }
    sleep 0.05
  done
  return 1
}
stop() { kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null || true; PID=; }
status_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

manifest() { # manifest ENGINE_LINES -> path
  local path=$WORK/gust-$RANDOM.toml
  {
    echo "[engine]"
    echo "$1"
    for c in rust python js; do
      printf '[functions.%s]\ncomponent = "%s"\n[[routes]]\npath = "/%s"\nfunction = "%s"\n' \
        "$c" "$COMPONENTS/$c.wasm" "$c" "$c"
    done
    printf '[functions.deep]\ncomponent = "%s"\n[[routes]]\npath = "/deep"\nfunction = "deep"\n' \
      "$GUESTS/stack_overflow.wasm"
  } >"$path"
  echo "$path"
}

exec > >(tee "$OUT")
echo "# gust engine defaults, $STAMP"
echo
echo "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), kernel $(uname -r)."
echo
echo "## 1. Pool size (\`[engine].max_instances\`)"
echo
echo "| max_instances | spawn -> first 200 | VmSize | RSS idle | RSS after wrk -c64 3 s | req/s in that burst |"
echo "|---:|---:|---:|---:|---:|---:|"
for n in 100 1000 10000; do
  if serve "$(manifest "max_instances = $n")"; then
    vm=$(status_kib "$PID" VmSize); idle=$(status_kib "$PID" VmRSS)
    rps=$(wrk -t2 -c64 -d3s "http://127.0.0.1:$PORT/rust" 2>/dev/null | awk '/Requests\/sec/ { print $2 }')
    busy=$(status_kib "$PID" VmRSS)
    printf '| %s | %s ms | %.2f TiB | %.1f MiB | %.1f MiB | %s |\n' "$n" "$MS" \
      "$(echo "$vm / 1073741824" | bc -l)" "$(echo "$idle / 1024" | bc -l)" "$(echo "$busy / 1024" | bc -l)" "$rps"
    stop
  else
    echo "| $n | did not start | | | | |"
  fi
done
echo
echo "## 2. Peak linear memory of one request"
echo
echo "| component | peak memory | fuel |"
echo "|---|---:|---:|"
serve "$(manifest "")"
for c in rust python js; do
  curl -sf --max-time 30 -o /dev/null "http://127.0.0.1:$PORT/$c"
done
sleep 0.2
for c in rust python js; do
  line=$(grep "function=$c " "$WORK/gust.log" | tail -n1)
  peak=$(sed -E 's/.* peak_memory=([0-9]+).*/\1/' <<<"$line")
  fuel=$(sed -E 's/.* fuel=([0-9]+).*/\1/' <<<"$line")
  printf '| %s | %.1f MiB | %s |\n' "$c" "$(echo "$peak / 1048576" | bc -l)" "$fuel"
done
stop
echo
echo "## 3. Wasm stack (\`[engine].max_wasm_stack\`)"
echo
echo "| max_wasm_stack | rust | python | js | stack-overflow guest: fuel until its trap |"
echo "|---:|---|---|---|---:|"
for kib in 32 64 128 256 512; do
  if serve "$(manifest "max_wasm_stack = $((kib * 1024))")"; then
    row="| $kib KiB"
    for c in rust python js; do
      row+=" | $(curl -s --max-time 30 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/$c")"
    done
    curl -s --max-time 30 -o /dev/null "http://127.0.0.1:$PORT/deep"
    sleep 0.2
    fuel=$(grep "function=deep " "$WORK/gust.log" | tail -n1 | sed -E 's/.* fuel=([0-9]+).*/\1/')
    echo "$row | $fuel |"
    stop
  else
    echo "| $kib KiB | did not start | | | |"
  fi
done
echo "written: $OUT" >&2
