#!/usr/bin/env bash
# Minor page faults per request of `gust serve` for one component, at
# concurrency 1 and 16, with 0, 16 and 256 MiB of each pooled memory kept
# resident. Fault counts are deterministic where timings on a shared VM are
# not. Loopback only; each measurement is a 3 s wrk run after a 2 s warm-up.
#
#   benches/faults.sh benches/.tools/components/python.wasm
set -euo pipefail
COMPONENT=${1:?usage: benches/faults.sh COMPONENT.wasm}
GUST=${GUST:-${CARGO_TARGET_DIR:-$HOME/.cache/gust-target}/release/gust}
PORT=${PORT:-18799}
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 1; }
for conc in 1 16; do
  for keep in 0 16 256; do
    RUST_LOG=warn "$GUST" serve "$COMPONENT" --listen "127.0.0.1:$PORT" --no-ledger \
      --keep-resident "$keep" 2>/dev/null &
    pid=$!
    for _ in $(seq 100); do curl -sf "127.0.0.1:$PORT/" >/dev/null && break; sleep 0.1; done
    wrk -t1 -c"$conc" -d2s "http://127.0.0.1:$PORT/" >/dev/null
    f0=$(awk '{print $10}' "/proc/$pid/stat")
    n=$(wrk -t1 -c"$conc" -d3s "http://127.0.0.1:$PORT/" | awk '/requests in/ {print $1}')
    f1=$(awk '{print $10}' "/proc/$pid/stat")
    echo "concurrency=$conc keep_resident=${keep}MiB requests=$n minor_faults_per_request=$(( (f1 - f0) / n ))"
    kill "$pid"; wait "$pid" 2>/dev/null || true
  done
done
