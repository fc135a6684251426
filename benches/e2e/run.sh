#!/usr/bin/env bash
# End-to-end load comparison: gust versus `wasmtime serve` (the reference
# runtime, same wasmtime version) serving the very same hello component, for
# a Rust, a Python (componentize-py) and a JavaScript (componentize-js) hello,
# a Go and a C hello and the WASIp3 Rust hello (`p3`, guest-examples/p3-hello),
# plus a native baseline: `native-hello` (this crate), a bare hyper server
# answering what the Rust hello answers, measured as component and runtime
# `native`.
#
# The components (COMPONENTS), all wasi:http/proxy hellos answering
# `GET /hello` with one short line:
#   rust        guest-examples/hello (Rust, wasm32-wasip2)
#   python, js  benches/e2e/app.py / app.js: raw wasi:http bindings, no helper
#               (the Python and JavaScript rows of every earlier run)
#   go          guest-examples/go/hello (Go's net/http over sdk/go) with a
#               no-op wasi:logging composed in (e2e/stub/: `wasmtime serve`
#               has no wasi:logging, which sdk/go imports; the hello never
#               logs, so the stub is never called)
#   c           guest-examples/c/hello (C over sdk/c/gust.h)
#   go-example, python-example, js-example  guest-examples/LANG/hello as
#               built, gust only: they import wasi:logging (Go), and
#               key-value, blob storage, config and logging (Python and
#               JavaScript, over sdk/python and sdk/js/gust.js), which
#               `wasmtime serve` does not provide
#   p3          guest-examples/p3-hello (WASIp3)
# The guest-examples ones are built by their manifest's build command,
# through `gust build MANIFEST` (the toolchains .ci/run installs).
#
# For `p3`, `wasmtime serve` is measured twice: `wasmtime` with its defaults
# (WASIp3 instances are reused: up to 128 requests per instance, 16 at once)
# and `wasmtime-fresh` with `--max-instance-reuse-count 1` (a fresh instance
# per request, as for WASIp2 components, and as gust does without `reuse`).
#
# Loopback only (127.0.0.1), bounded in time: every load run lasts
# $WARMUP + $DURATION seconds, every server start waits at most
# $START_TIMEOUT seconds, and every server this script starts is stopped on
# exit. Runtimes are measured alternately (gust, wasmtime, [wasmtime-fresh],
# [gust-reuse], [native], gust, wasmtime, ...) for $ROUNDS rounds at each
# concurrency. The native baseline is the same for every component, so it is
# measured once per concurrency and round, in the rotation of the first
# component of $COMPONENTS, as its own row (component `native`). Prints the
# tables (every runtime's requests/s and p99, gust/wasmtime and gust/native)
# and writes the raw rows to benches/results/e2e-<timestamp>.{csv,json} (and
# e2e-latest.*).
#
# Usage: benches/e2e/run.sh            (from anywhere)
# Knobs (environment): DURATION=10 WARMUP=3 ROUNDS=2 CONCURRENCY="1 16 64"
#   COMPONENTS="rust python js go c p3" (go-example python-example
#     js-example on request)
#   GUST_PORT=18081 WASMTIME_PORT=18082
#   WASMTIME_FRESH_PORT=18085 (`wasmtime-fresh`, p3 only)
#   NATIVE=1 (0: no native baseline) NATIVE_PORT=18084
#   GUST_RUST_LOG=warn (gust logs one line per invocation at `info`)
#   SKIP_BUILD=1 (reuse the gust and native-hello binaries and components
#     already built; native-hello and missing components are still built)
#   BUILD_ONLY=1 (build gust and the components into
#     benches/.tools/components/COMPONENT.wasm, then stop: what
#     benches/languages/cost.sh uses)
#   GUST_ARGS / WASMTIME_ARGS (extra flags for either server)
#   GUST=path (the gust binary; default $CARGO_TARGET_DIR/release/gust)
#   GUST_REUSE=N also measures gust with instance reuse (`reuse = N` in a
#     generated manifest) as runtime `gust-reuse`, on GUST_REUSE_PORT=18083
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BENCH=$ROOT/benches
E2E=$BENCH/e2e
TOOLS=$BENCH/.tools
RESULTS=$BENCH/results
BUILD=$TOOLS/components
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

WASMTIME_VERSION=50.0.1
COMPONENTIZE_PY_VERSION='0.25.*'
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-3}
ROUNDS=${ROUNDS:-2}
CONCURRENCY=${CONCURRENCY:-"1 16 64"}
COMPONENTS=${COMPONENTS:-"rust python js go c p3"}
GUST_PORT=${GUST_PORT:-18081}
WASMTIME_PORT=${WASMTIME_PORT:-18082}
WASMTIME_FRESH_PORT=${WASMTIME_FRESH_PORT:-18085}
NATIVE=${NATIVE:-1}
NATIVE_PORT=${NATIVE_PORT:-18084}
START_TIMEOUT=${START_TIMEOUT:-180}
GUST_RUST_LOG=${GUST_RUST_LOG:-warn}
GUST_ARGS=${GUST_ARGS:-}
WASMTIME_ARGS=${WASMTIME_ARGS:-}
GUST_REUSE=${GUST_REUSE:-}
GUST_REUSE_PORT=${GUST_REUSE_PORT:-18083}

log() { printf '[e2e %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

mkdir -p "$TOOLS" "$RESULTS" "$BUILD"

# --- tools -------------------------------------------------------------------

if [[ -z ${SKIP_BUILD:-} ]]; then
  log "building gust (release)"
  nice -n 19 cargo build --release --locked -p gust-runtime --manifest-path "$ROOT/Cargo.toml" >&2
fi
GUST=${GUST:-$CARGO_TARGET_DIR/release/gust}
[[ -x $GUST ]] || { log "no gust binary at $GUST"; exit 1; }
NATIVE_HELLO=$CARGO_TARGET_DIR/release/native-hello
# Built with gust, or when missing even with SKIP_BUILD (it is small).
if [[ -n ${BUILD_ONLY:-} ]]; then
  NATIVE=0
fi
if [[ $NATIVE == 1 && ( -z ${SKIP_BUILD:-} || ! -x $NATIVE_HELLO ) ]]; then
  log "building native-hello (release)"
  nice -n 19 cargo build --release --locked -p gust-benches --bin native-hello \
    --manifest-path "$ROOT/Cargo.toml" >&2
fi
if [[ $NATIVE == 1 && ! -x $NATIVE_HELLO ]]; then
  log "no native-hello binary at $NATIVE_HELLO (or NATIVE=0)"
  exit 1
fi

WASMTIME=$TOOLS/bin/wasmtime
if [[ -n ${BUILD_ONLY:-} ]]; then
  : # components only: neither wasmtime nor wrk is needed
elif ! "$WASMTIME" --version 2>/dev/null | grep -q "^wasmtime $WASMTIME_VERSION"; then
  log "installing wasmtime-cli $WASMTIME_VERSION into $TOOLS (takes a while)"
  nice -n 19 cargo install --locked --root "$TOOLS" wasmtime-cli --version "$WASMTIME_VERSION" >&2
fi

if [[ -z ${BUILD_ONLY:-} ]] && ! command -v wrk > /dev/null; then
  log "installing wrk (apt-get)"
  { apt-get install -y wrk || { apt-get update && apt-get install -y wrk; }; } >&2
fi

# --- components ----------------------------------------------------------------

# Rebuilds $2 with the rest of the arguments when the source $1 is newer.
stale() { [[ ! -s $2 || $1 -nt $2 ]]; }

build_components() {
  local c
  for c in $COMPONENTS; do
    case $c in
      rust)
        local hello=$CARGO_TARGET_DIR/guest-examples/wasm32-wasip2/release/hello.wasm
        [[ -s $hello ]] || { log "missing $hello (built by gust-runtime's build script)"; exit 1; }
        cp "$hello" "$BUILD/rust.wasm"
        ;;
      p3)
        local p3=$CARGO_TARGET_DIR/guest-examples/wasm32-wasip2/release/p3_hello.wasm
        [[ -s $p3 ]] || { log "missing $p3 (guest-examples/p3-hello, built by gust-runtime's build script)"; exit 1; }
        cp "$p3" "$BUILD/p3.wasm"
        ;;
      python)
        if ! [[ -x $TOOLS/py/bin/componentize-py ]]; then
          log "installing componentize-py $COMPONENTIZE_PY_VERSION into $TOOLS/py"
          python3 -m venv "$TOOLS/py"
          "$TOOLS/py/bin/pip" install -q "componentize-py==$COMPONENTIZE_PY_VERSION" >&2
        fi
        if stale "$E2E/app.py" "$BUILD/python.wasm"; then
          log "building the Python hello"
          (cd "$E2E" && "$TOOLS/py/bin/componentize-py" -d "$ROOT/wit" -w gust:function/handler \
            componentize app -o "$BUILD/python.wasm" >&2)
        fi
        ;;
      js)
        if ! [[ -x $TOOLS/js/node_modules/.bin/componentize-js ]]; then
          log "installing @bytecodealliance/componentize-js into $TOOLS/js"
          mkdir -p "$TOOLS/js"
          (cd "$TOOLS/js" && { [[ -f package.json ]] || npm init -y >/dev/null; } &&
            npm install --no-audit --no-fund @bytecodealliance/componentize-js >&2)
        fi
        if stale "$E2E/app.js" "$BUILD/js.wasm"; then
          log "building the JavaScript hello"
          "$TOOLS/js/node_modules/.bin/componentize-js" "$E2E/app.js" -w "$ROOT/wit" \
            -n gust:function/handler -o "$BUILD/js.wasm" >&2
        fi
        ;;
      go | c | go-example | python-example | js-example)
        # One of guest-examples/LANG/hello, built by its manifest's build
        # command (`gust build`); rebuilt every run unless SKIP_BUILD is set
        # and it was built before.
        local lang=${c%-example}
        if [[ -n ${SKIP_BUILD:-} && -s $BUILD/$c.wasm ]]; then
          continue
        fi
        local dir=$ROOT/guest-examples/$lang/hello
        log "building $dir (gust build)"
        "$GUST" build "$dir/gust.toml" >&2 ||
          { log "gust build $dir/gust.toml failed (toolchains: see .ci/run)"; exit 1; }
        if [[ $c == go ]]; then
          # The Go hello with the no-op wasi:logging composed in.
          [[ -s $BUILD/logging-stub.wasm && $E2E/stub/stub.c -ot $BUILD/logging-stub.wasm ]] ||
            "$E2E/stub/stub.sh" "$BUILD/logging-stub.wasm"
          wasm-tools compose "$dir/hello.wasm" -d "$BUILD/logging-stub.wasm" \
            -o "$BUILD/$c.wasm.tmp" 2> "$BUILD/compose.log" ||
            { cat "$BUILD/compose.log" >&2; exit 1; }
        else
          cp "$dir/hello.wasm" "$BUILD/$c.wasm.tmp"
        fi
        mv -f "$BUILD/$c.wasm.tmp" "$BUILD/$c.wasm"
        ;;
      *) log "unknown component $c (rust, python, js, go, c, go-example, python-example, js-example, p3)"; exit 1 ;;
    esac
  done
}
build_components
if [[ -n ${BUILD_ONLY:-} ]]; then
  for c in $COMPONENTS; do
    log "component $c: $BUILD/$c.wasm ($(stat -c %s "$BUILD/$c.wasm") bytes)"
  done
  exit 0
fi

# --- servers -----------------------------------------------------------------

declare -A PIDS=()
stop_all() {
  local name
  for name in "${!PIDS[@]}"; do
    kill "${PIDS[$name]}" 2>/dev/null || true
    wait "${PIDS[$name]}" 2>/dev/null || true
  done
  PIDS=()
}
trap 'stop_all; rm -rf "${LEDGERS:-}"' EXIT

# start NAME PORT CMD... : starts a server and waits until it answers 200.
start() {
  local name=$1 port=$2
  shift 2
  "$@" > "$RUN_DIR/$name.log" 2>&1 &
  PIDS[$name]=$!
  local deadline=$((SECONDS + START_TIMEOUT))
  until [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/hello" 2>/dev/null) == 200 ]]; do
    if ! kill -0 "${PIDS[$name]}" 2>/dev/null; then
      log "$name exited; its log:"; cat "$RUN_DIR/$name.log" >&2; exit 1
    fi
    ((SECONDS < deadline)) || { log "$name not ready after ${START_TIMEOUT}s"; exit 1; }
    sleep 0.2
  done
}

# proc_stat PID: "minor_faults major_faults cpu_ticks" of a process.
proc_stat() {
  awk '{ print $10, $12, $14 + $15 }' "/proc/$1/stat"
}

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RUN_DIR=$RESULTS/raw-$STAMP
# Each gust server gets a new ledger (the default configuration, with the
# ledger on) instead of the one in gust's data dir, which grows with every
# run on this machine and would make runs depend on each other.
LEDGERS=$(mktemp -d)
ledger_flag() {
  case " $GUST_ARGS " in
    *" --no-ledger "*) ;;
    *) printf -- '--ledger %s/%s.sqlite' "$LEDGERS" "$1" ;;
  esac
}
mkdir -p "$RUN_DIR"
ROWS=$RUN_DIR/rows.jsonl
: > "$ROWS"
CLK_TCK=$(getconf CLK_TCK)

# measure COMPONENT CONCURRENCY ROUND RUNTIME PORT
measure() {
  local comp=$1 conc=$2 round=$3 rt=$4 port=$5 pid=${PIDS[$4]}
  local out=$RUN_DIR/$comp-c$conc-r$round-$rt.txt
  # wrk runs one thread per core at most, and needs connections >= threads.
  local threads=$((conc < $(nproc) ? conc : $(nproc)))
  wrk -t "$threads" -c "$conc" -d "${WARMUP}s" "http://127.0.0.1:$port/hello" > /dev/null
  local before after
  before=$(proc_stat "$pid")
  wrk -t "$threads" -c "$conc" -d "${DURATION}s" --latency -s "$E2E/wrk-json.lua" \
    "http://127.0.0.1:$port/hello" > "$out"
  after=$(proc_stat "$pid")
  local rss
  rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status")
  python3 "$E2E/report.py" row --report "$out" --component "$comp" --concurrency "$conc" \
    --round "$round" --runtime "$rt" --before "$before" --after "$after" \
    --clk-tck "$CLK_TCK" --rss-kib "$rss" >> "$ROWS"
  tail -n1 "$ROWS" >&2
}

# The first component's rotation also measures the native baseline.
NATIVE_WITH=
if [[ $NATIVE == 1 ]]; then
  read -r NATIVE_WITH _ <<< "$COMPONENTS"
fi

log "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), kernel $(uname -r)"
log "wasmtime: $("$WASMTIME" --version); $(wrk --version 2>&1 | head -n1)"
for comp in $COMPONENTS; do
  file=$BUILD/$comp.wasm
  log "component $comp: $file ($(stat -c %s "$file") bytes)"
  # shellcheck disable=SC2046,SC2086 # the ledger and extra flags are meant to split
  RUST_LOG=$GUST_RUST_LOG start gust "$GUST_PORT" "$GUST" serve "$file" \
    --listen "127.0.0.1:$GUST_PORT" $(ledger_flag "$comp") $GUST_ARGS
  if [[ -n $GUST_REUSE ]]; then
    cat > "$RUN_DIR/$comp-reuse.toml" <<EOF
[functions.hello]
component = "$file"
reuse = $GUST_REUSE
[[routes]]
path = "/{*rest}"
function = "hello"
EOF
    # shellcheck disable=SC2046,SC2086
    RUST_LOG=$GUST_RUST_LOG start gust-reuse "$GUST_REUSE_PORT" "$GUST" serve \
      "$RUN_DIR/$comp-reuse.toml" --listen "127.0.0.1:$GUST_REUSE_PORT" \
      $(ledger_flag "$comp-reuse") $GUST_ARGS
  fi
  # The examples as built import what `wasmtime serve` does not provide.
  with_wasmtime=1
  if [[ $comp == *-example ]]; then
    with_wasmtime=
    log "component $comp: gust only (imports wasmtime serve does not provide)"
  else
    # shellcheck disable=SC2086
    start wasmtime "$WASMTIME_PORT" "$WASMTIME" serve -O pooling-allocator -S cli \
      --addr "127.0.0.1:$WASMTIME_PORT" $WASMTIME_ARGS "$file"
  fi
  # WASIp3 components: wasmtime reuses instances by default (128 requests
  # per instance, 16 at once); `wasmtime-fresh` takes one per request.
  fresh=
  if [[ $comp == p3 ]]; then
    fresh=1
    # shellcheck disable=SC2086
    start wasmtime-fresh "$WASMTIME_FRESH_PORT" "$WASMTIME" serve -O pooling-allocator -S cli \
      --max-instance-reuse-count 1 --addr "127.0.0.1:$WASMTIME_FRESH_PORT" $WASMTIME_ARGS "$file"
  fi
  native=
  if [[ $comp == "$NATIVE_WITH" ]]; then
    native=1
    start native "$NATIVE_PORT" "$NATIVE_HELLO" --listen "127.0.0.1:$NATIVE_PORT"
  fi
  for conc in $CONCURRENCY; do
    for ((round = 1; round <= ROUNDS; round++)); do
      measure "$comp" "$conc" "$round" gust "$GUST_PORT"
      if [[ -n $with_wasmtime ]]; then
        measure "$comp" "$conc" "$round" wasmtime "$WASMTIME_PORT"
      fi
      if [[ -n $fresh ]]; then
        measure "$comp" "$conc" "$round" wasmtime-fresh "$WASMTIME_FRESH_PORT"
      fi
      if [[ -n $GUST_REUSE ]]; then
        measure "$comp" "$conc" "$round" gust-reuse "$GUST_REUSE_PORT"
      fi
      if [[ -n $native ]]; then
        measure native "$conc" "$round" native "$NATIVE_PORT"
      fi
    done
  done
  stop_all
done

python3 "$E2E/report.py" table --rows "$ROWS" --csv "$RESULTS/e2e-$STAMP.csv" \
  --json "$RESULTS/e2e-$STAMP.json"
cp "$RESULTS/e2e-$STAMP.csv" "$RESULTS/e2e-latest.csv"
cp "$RESULTS/e2e-$STAMP.json" "$RESULTS/e2e-latest.json"
log "raw load-generator output in $RUN_DIR; rows in $RESULTS/e2e-$STAMP.{csv,json}"
