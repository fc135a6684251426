#!/usr/bin/env bash
# What one fresh instance costs, per language: fuel, server CPU and page
# faults per request, gust and `wasmtime serve` serving the same hello
# component one request at a time (see cost.py for what is measured and how).
#
# Usage: benches/languages/cost.sh     (from anywhere)
# Knobs (environment): COMPONENTS="rust c go go-example python python-example
#   js js-example" SECONDS_PER_RUN=4 WARMUP=50 ROUNDS=2
#   SKIP_BUILD=1 (reuse gust and the components already built; see
#   benches/e2e/run.sh, which builds them: BUILD_ONLY=1)
# Writes benches/results/languages-STAMP.{csv,json}.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
COMPONENTS=${COMPONENTS:-"rust c go go-example python python-example js js-example"}
BUILD_ONLY=1 NATIVE=0 COMPONENTS="$COMPONENTS" "$ROOT/benches/e2e/run.sh"
[[ -x $ROOT/benches/.tools/bin/wasmtime ]] ||
  { echo "no benches/.tools/bin/wasmtime: run benches/e2e/run.sh once (it installs wasmtime-cli 50.0.1)" >&2; exit 1; }
exec python3 "$ROOT/benches/languages/cost.py" \
  --gust "$CARGO_TARGET_DIR/release/gust" --wasmtime "$ROOT/benches/.tools/bin/wasmtime" \
  --components-dir "$ROOT/benches/.tools/components" --components "$COMPONENTS" \
  --seconds "${SECONDS_PER_RUN:-4}" --warmup "${WARMUP:-50}" --rounds "${ROUNDS:-2}" \
  --out-dir "$ROOT/benches/results"
