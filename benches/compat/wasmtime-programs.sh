#!/usr/bin/env bash
# Builds wasmtime's own wasi:http test programs as components and runs them
# under `wasmtime serve` and `gust serve` with the same capabilities,
# comparing the answers (compat.py). Not part of CI: it needs a wasmtime
# source checkout. See README.md in this directory.
#
#   benches/compat/wasmtime-programs.sh [--wasmtime-src DIR] [--gust BIN]
#       [--wasmtime BIN] [--target-dir DIR] [--only p2_api_proxy,...] [--keep]
#
# Inputs (arguments win over environment variables):
#   --wasmtime-src / WASMTIME_SRC   a wasmtime work tree, or a git directory
#                                   (bare or not: the needed paths are taken
#                                   from its HEAD, or WASMTIME_REV)
#                                   default /work/.mirror/bytecodealliance+wasmtime/repo
#   --gust / GUST_BIN               default: build it, $CARGO_TARGET_DIR/release/gust
#                                   (CARGO_TARGET_DIR defaults to ~/.cache/gust-target)
#   --wasmtime / WASMTIME_BIN       default benches/.tools/bin/wasmtime
#   --target-dir / PROGRAMS_TARGET  cargo target dir for the test programs,
#                                   default /tmp/wasmtime-programs-target
#   ADAPTER_VERSION                 wasi-preview1-component-adapter-provider
#                                   version, default 50.0.1 (the wasmtime gust uses)
#
# Needs: rustup target wasm32-wasip1, wasm-tools, python3.
# Writes benches/results/compat-<timestamp>.json and prints a table.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

src=${WASMTIME_SRC:-/work/.mirror/bytecodealliance+wasmtime/repo}
rev=${WASMTIME_REV:-HEAD}
gust=${GUST_BIN:-}
wasmtime=${WASMTIME_BIN:-$repo/benches/.tools/bin/wasmtime}
target=${PROGRAMS_TARGET:-/tmp/wasmtime-programs-target}
adapter_version=${ADAPTER_VERSION:-50.0.1}
extra=()
while [ $# -gt 0 ]; do
    case "$1" in
        --wasmtime-src) src=$2; shift 2 ;;
        --gust) gust=$2; shift 2 ;;
        --wasmtime) wasmtime=$2; shift 2 ;;
        --target-dir) target=$2; shift 2 ;;
        --only) extra+=(--only "$2"); shift 2 ;;
        --keep) extra+=(--keep); shift ;;
        -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done

programs=(p2_api_proxy p2_api_proxy_streaming p2_api_proxy_forward_request
          p2_cli_serve_config p2_cli_serve_keyvalue p2_cli_serve_echo_env
          p2_cli_serve_hello_world)

# 1. The test-programs crate and the WIT it reads, outside wasmtime's
#    workspace (a copy in a scratch directory).
work=${COMPAT_WORK:-/tmp/wasmtime-programs-src}
mkdir -p "$work"
needed=(crates/test-programs crates/wasi-http/wit crates/wasi-http/src/p3/wit
        crates/wasi-config/wit crates/wasi-keyvalue/wit crates/wasi-nn/wit
        crates/wasi-tls/wit crates/wasi-tls/src/p3/wit crates/wasi/src/p2/wit
        crates/wasi/src/p3/wit crates/debugger/wit crates/misc/component-async-tests/wit)
if [ -d "$src/crates/test-programs" ]; then
    commit=$(git -C "$src" rev-parse HEAD 2>/dev/null || echo unknown)
    for p in "${needed[@]}"; do
        [ -e "$src/$p" ] || continue
        mkdir -p "$work/$(dirname "$p")"
        rm -rf "${work:?}/$p"
        cp -r "$src/$p" "$work/$p"
    done
else
    commit=$(git --git-dir="$src" rev-parse "$rev")
    for p in "${needed[@]}"; do
        git --git-dir="$src" cat-file -e "$rev:$p" 2>/dev/null || continue
        rm -rf "${work:?}/$p"
        # git archive may warn about unrelated missing blobs of a partial
        # mirror; the paths asked for are checked below.
        git --git-dir="$src" archive "$rev" "$p" 2>/dev/null | tar -x -C "$work"
    done
fi
for p in crates/test-programs/src/lib.rs crates/wasi-http/wit; do
    [ -e "$work/$p" ] || { echo "missing $p in $src" >&2; exit 1; }
done
echo "wasmtime test programs from $src at $commit" >&2

# The crate's own Cargo.toml inherits from wasmtime's workspace: write a
# standalone one with the workspace's dependency versions resolved (and
# without its lints and MSRV), its own [workspace].
if [ -d "$src/crates/test-programs" ]; then
    cp "$src/Cargo.toml" "$work/workspace-Cargo.toml"
    cp "$src/crates/test-programs/Cargo.toml" "$work/test-programs-Cargo.toml"
else
    git --git-dir="$src" show "$rev:Cargo.toml" > "$work/workspace-Cargo.toml"
    git --git-dir="$src" show "$rev:crates/test-programs/Cargo.toml" > "$work/test-programs-Cargo.toml"
fi
python3 - "$work" <<'PY'
import json, sys, tomllib
work = sys.argv[1]
ws = tomllib.load(open(f"{work}/workspace-Cargo.toml", "rb"))
crate = tomllib.load(open(f"{work}/test-programs-Cargo.toml", "rb"))
wsdeps = ws["workspace"]["dependencies"]
edition = ws["workspace"]["package"]["edition"]

def inline(v):
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return "[" + ", ".join(inline(x) for x in v) + "]"
    return "{ " + ", ".join(f"{k} = {inline(x)}" for k, x in v.items()) + " }"

lines = ["[package]", 'name = "test-programs"', 'version = "0.0.0"',
         f"edition = {json.dumps(edition)}", "publish = false", "", "[dependencies]"]
for name, spec in crate["dependencies"].items():
    if isinstance(spec, dict) and spec.get("workspace"):
        base = wsdeps[name]
        base = {"version": base} if isinstance(base, str) else dict(base)
        if "path" in base:
            sys.exit(f"test-programs depends on wasmtime's path crate {name}: not supported")
        features = base.get("features", []) + spec.get("features", [])
        merged = {k: v for k, v in base.items() if k != "features"}
        if "default-features" in spec:
            merged["default-features"] = spec["default-features"]
        if features:
            merged["features"] = features
        spec = merged
    lines.append(f"{name} = {inline(spec)}")
lines += ["", "[workspace]", ""]
open(f"{work}/crates/test-programs/Cargo.toml", "w").write("\n".join(lines))
PY

# 2. Core modules for wasm32-wasip1, as wasmtime's artifacts/build.rs does.
bins=()
for p in "${programs[@]}"; do bins+=(--bin "$p"); done
(cd "$work/crates/test-programs" &&
    CARGO_TARGET_DIR="$target" cargo build --quiet --release --target wasm32-wasip1 "${bins[@]}")

# 3. The preview1 adapters of wasmtime $adapter_version, from crates.io.
fetch="$work/adapter-fetch"
mkdir -p "$fetch/src"
touch "$fetch/src/lib.rs"
cat > "$fetch/Cargo.toml" <<EOF
[package]
name = "adapter-fetch"
version = "0.0.0"
edition = "2021"
publish = false
[dependencies]
wasi-preview1-component-adapter-provider = "=$adapter_version"
[workspace]
EOF
(cd "$fetch" && cargo fetch --quiet)
adapters=$(cd "$fetch" && cargo metadata --format-version 1 | python3 -c '
import json, os, sys
m = json.load(sys.stdin)
print([os.path.join(os.path.dirname(p["manifest_path"]), "artefacts")
       for p in m["packages"] if p["name"] == "wasi-preview1-component-adapter-provider"][0])')

# 4. Components: the api_proxy programs with the proxy adapter, the others
#    with the command adapter (the split of artifacts/build.rs).
components="$target/components"
mkdir -p "$components"
for p in "${programs[@]}"; do
    case "$p" in
        p2_api_proxy*) adapter=proxy ;;
        *) adapter="command" ;;
    esac
    wasm-tools component new "$target/wasm32-wasip1/release/$p.wasm" \
        --adapt "wasi_snapshot_preview1=$adapters/wasi_snapshot_preview1.$adapter.wasm" \
        -o "$components/$p.component.wasm"
done

# 5. gust.
if [ -z "$gust" ]; then
    export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/gust-target}
    (cd "$repo" && cargo build --quiet --release -p gust-runtime)
    gust="$CARGO_TARGET_DIR/release/gust"
fi

# 6. Compare.
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out="$repo/benches/results/compat-$stamp.json"
echo "wasmtime source commit: $commit; gust commit: $(git -C "$repo" rev-parse --short HEAD)" >&2
python3 "$here/compat.py" --components "$components" --gust "$gust" \
    --wasmtime "$wasmtime" --out "$out" --source-commit "$commit" "${extra[@]}"
