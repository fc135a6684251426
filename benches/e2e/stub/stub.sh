#!/usr/bin/env bash
# Builds the no-op wasi:logging component of world.wit and stub.c:
#
#   benches/e2e/stub/stub.sh OUT.wasm
#
# `wasmtime serve` provides no wasi:logging, which the Go hello imports
# (sdk/go's gust.Log; the hello never calls it). benches/e2e/run.sh composes
# this stub into the Go hello (`wasm-tools compose GO.wasm -d STUB.wasm`) and
# serves that one component with both gust and `wasmtime serve`.
# Tools: wit-bindgen 0.63 (PATH or ~/.cargo/bin), clang-16 with wasi-libc,
# wasm-tools, the preview1 proxy adapter ($GUST_WASI_ADAPTER, else found in
# cargo's registry), as sdk/c/build.sh uses them.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
out=${1:?usage: stub.sh OUT.wasm}
bindgen=$(command -v wit-bindgen || echo "$HOME/.cargo/bin/wit-bindgen")
adapter=${GUST_WASI_ADAPTER:-$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/wasi-preview1-component-adapter-provider-*/artefacts/wasi_snapshot_preview1.proxy.wasm 2>/dev/null | sort -V | tail -n 1)}
[[ -f $adapter ]] || { echo "stub.sh: no preview1 proxy adapter (set GUST_WASI_ADAPTER)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/wit/deps"
cp "$here/world.wit" "$work/wit/"
cp -R "$root/wit/deps/logging" "$work/wit/deps/"
"$bindgen" c --out-dir "$work/gen" "$work/wit" > "$work/bindgen.log" 2>&1 || { cat "$work/bindgen.log" >&2; exit 1; }
clang-16 --target=wasm32-wasi -mexec-model=reactor -O2 -I"$work/gen" "$here/stub.c" \
  "$work/gen/logging_stub.c" "$work/gen/logging_stub_component_type.o" -o "$work/core.wasm"
wasm-tools component new "$work/core.wasm" --adapt "wasi_snapshot_preview1=$adapter" -o "$work/stub.wasm"
mv -f "$work/stub.wasm" "$out"
