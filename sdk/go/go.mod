module gust.dev/sdk/go

go 1.25

// Both are provided at build time by build.sh (a Go workspace): the first
// is generated from gust's WIT by wit-bindgen, the second ships with
// wit-bindgen-go in cargo's registry. Neither is downloaded.
require (
	gust.dev/sdk/go/wit v0.0.0
	go.bytecodealliance.org/pkg v0.4.0
)
