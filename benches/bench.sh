#!/usr/bin/env bash
# `gust bench`: the in-process benchmarks in one command, for researchers.
#
#  1. criterion, benches/benches/instantiate.rs: one invocation of the hello
#     example through each of the five instantiation modes (compile,
#     deserialize, linker instantiate, ProxyPre on-demand, ProxyPre pooling
#     + copy-on-write), "instantiate" and "instantiate_and_handle" groups,
#     and "by_component": hello next to `raw` and `minimal` (the floor) in
#     gust's mode (GUST_BENCH_COMPONENT=path.wasm adds any other component);
#  2. coldstart (src/bin/coldstart.rs): newly deployed distinct functions,
#     deploy -> first response over loopback HTTP vs steady-state requests,
#     cold and warm compile cache, in-process and as a spawned `gust serve`,
#     plus a step-by-step breakdown of a warm deployment;
#  3. plot (src/bin/plot.rs): criterion's samples exported as rows, and an
#     SVG per criterion group and one for the cold start.
#
# Writes, under benches/results/ (STAMP = UTC start time, YYYYMMDDTHHMMSSZ):
#   criterion-STAMP.{csv,json}           every criterion sample (+ criterion-latest.*)
#   criterion-instantiate-STAMP.svg      time per iteration by mode
#   criterion-instantiate_and_handle-STAMP.svg
#   criterion-by_component-STAMP.svg
#   coldstart-STAMP.{csv,json}           one row per deployed function (+ coldstart-latest.*)
#   coldstart-breakdown-STAMP.csv        the warm deployment step by step
#   coldstart-STAMP.svg                  cold vs warm, against steady state
#   bench-STAMP.md                       the tables printed at the end
#
# Usage: benches/bench.sh                (from anywhere)
#        QUICK=1 benches/bench.sh        (about 1.5 minutes on 2 cores, after the build,
#                                         with COLDSTART_COMPONENTS=hello,p3-hello; the
#                                         Python, JS and Go hellos add minutes of cold
#                                         compiles: 7-10 s each for Python and JS, ~5 s Go)
# Knobs (environment; QUICK=1 sets the smaller defaults in brackets):
#   WARMUP=1 [1]        criterion warm-up seconds per mode
#   MEASUREMENT=4 [2]   criterion measurement seconds per mode (compile: x2)
#   SAMPLES=50 [20]     criterion samples per mode (compile: at most 10)
#   FILTER=             criterion benchmark filter, e.g. e_pre_pooling_cow
#   GUST_BENCH_COMPONENT=path.wasm  also time this component in by_component
#   FUNCTIONS=12 [8]    functions deployed in-process (cold, then warm)
#   REQUESTS=30 [20]    steady-state requests per function
#   PROCESS_FUNCTIONS=4 [3]  functions served by a spawned `gust serve` (0: skip)
#   BREAKDOWN=12 [8]    warm deployments broken down step by step
#   COLDSTART_COMPONENTS="hello,p3-hello,python,js,go,c"  the components
#                       deployed: the Rust hellos (hello, p3-hello) and the
#                       hellos benches/e2e/run.sh builds (BUILD_ONLY=1; built
#                       here when missing: componentize-py, componentize-js,
#                       and `gust build` of guest-examples/{go,c}/hello)
#   SKIP_BUILD=1        reuse the release binaries already built
#   SKIP_CRITERION=1 / SKIP_COLDSTART=1   run only the other part
#   CARGO_TARGET_DIR    as usual (default: target/ of the workspace)
# Everything runs under `nice -n 10`; cold compiles take 0.4-1 s each.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RESULTS=$ROOT/benches/results
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$CARGO_TARGET_DIR/release

if [[ -n ${QUICK:-} ]]; then
  q() { echo "$1"; }
else
  q() { echo "$2"; }
fi
WARMUP=${WARMUP:-1}
MEASUREMENT=${MEASUREMENT:-$(q 2 4)}
SAMPLES=${SAMPLES:-$(q 20 50)}
FILTER=${FILTER:-}
FUNCTIONS=${FUNCTIONS:-$(q 8 12)}
REQUESTS=${REQUESTS:-$(q 20 30)}
PROCESS_FUNCTIONS=${PROCESS_FUNCTIONS:-$(q 3 4)}
COLDSTART_COMPONENTS=${COLDSTART_COMPONENTS:-hello,p3-hello,python,js,go,c}
BREAKDOWN=${BREAKDOWN:-$(q 8 12)}
STAMP=${STAMP:-$(date -u +%Y%m%dT%H%M%SZ)}
SUMMARY=$RESULTS/bench-$STAMP.md

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
mkdir -p "$RESULTS"

if [[ -z ${SKIP_BUILD:-} ]]; then
  log "building gust, coldstart and plot (release)"
  nice -n 10 cargo build --release --locked --manifest-path "$ROOT/Cargo.toml" \
    -p gust-runtime --bin gust -p gust-benches --bin coldstart --bin plot >&2
fi
for bin in plot coldstart; do
  [[ -x $BIN/$bin ]] || { log "no $BIN/$bin: run without SKIP_BUILD"; exit 1; }
done

{
  echo "# gust bench $STAMP"
  echo
  echo "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'),"
  echo "Linux $(uname -r), load average before: $(cut -d' ' -f1-3 /proc/loadavg)."
  echo
} >"$SUMMARY"

if [[ -z ${SKIP_CRITERION:-} ]]; then
  log "criterion: warm-up ${WARMUP}s, ${MEASUREMENT}s and ${SAMPLES} samples per mode"
  GUST_BENCH_MEASUREMENT_SECS=$MEASUREMENT GUST_BENCH_SAMPLES=$SAMPLES \
    nice -n 10 cargo bench --locked --manifest-path "$ROOT/Cargo.toml" \
    -p gust-benches --bench instantiate -- --warm-up-time "$WARMUP" ${FILTER:+"$FILTER"} >&2
  log "exporting and plotting criterion's samples"
  {
    echo "## criterion (instantiate.rs)"
    echo
    echo "warm-up ${WARMUP} s, measurement ${MEASUREMENT} s, ${SAMPLES} samples per mode."
    echo
    "$BIN/plot" criterion --stamp "$STAMP" --out-dir "$RESULTS"
    echo
  } | tee -a "$SUMMARY"
fi

if [[ -z ${SKIP_COLDSTART:-} ]]; then
  # The components other than the Rust hellos, from benches/e2e/run.sh
  # (gust is built above; components already built are kept).
  others=$(tr ',' '\n' <<<"$COLDSTART_COMPONENTS" | grep -vx -e hello -e p3-hello | xargs || true)
  if [[ -n $others ]]; then
    log "coldstart: building the components $others (benches/e2e/run.sh)"
    BUILD_ONLY=1 SKIP_BUILD=1 COMPONENTS="$others" "$ROOT/benches/e2e/run.sh"
  fi
  log "coldstart: $FUNCTIONS functions in-process, $PROCESS_FUNCTIONS as processes, $REQUESTS requests each"
  {
    echo "## coldstart"
    echo
    echo "$FUNCTIONS functions in-process, $PROCESS_FUNCTIONS as processes, $REQUESTS steady requests each."
    nice -n 10 "$BIN/coldstart" --functions "$FUNCTIONS" --requests "$REQUESTS" \
      --process-functions "$PROCESS_FUNCTIONS" --breakdown "$BREAKDOWN" \
      --gust "$BIN/gust" --stamp "$STAMP" --out-dir "$RESULTS" \
      --components "$COLDSTART_COMPONENTS"
    "$BIN/plot" coldstart "$RESULTS/coldstart-$STAMP.json" --out-dir "$RESULTS"
    echo
  } | tee -a "$SUMMARY"
fi

echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)." >>"$SUMMARY"
log "done: $SUMMARY and the files it names"
