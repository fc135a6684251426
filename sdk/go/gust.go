// Package gust runs a net/http handler as a gust function.
//
// A gust function is a wasi:http/proxy component; this package turns each
// request gust sends it into an *http.Request, hands it to the handler
// registered with Handle, and sends what the handler writes to its
// http.ResponseWriter back. Register the handler in an init function (a
// component's main never runs):
//
//	package main
//
//	import (
//		"fmt"
//		"net/http"
//
//		gust "gust.dev/sdk/go"
//	)
//
//	func init() {
//		gust.HandleFunc(func(w http.ResponseWriter, r *http.Request) {
//			fmt.Fprintf(w, "Hello, %s!\n", gust.Param(r, "name"))
//		})
//	}
//
//	func main() {}
//
// Capabilities: the subpackages kv (key-value stores) and config
// (configuration and secrets); outbound HTTP through net/http's client
// (http.DefaultTransport is Transport, so http.Get works) and logging
// through Log here. Build with build.sh (see README.md).
package gust

import (
	"fmt"
	"net/http"
	"strings"

	wasilog "gust.dev/sdk/go/wit/imports/wasi_logging_logging"
)

// ParamPrefix is the prefix of the request headers gust sets per route
// parameter: the route /hello/{name} matching /hello/ada sends
// x-gust-param-name: ada.
const ParamPrefix = "X-Gust-Param-"

// RouteHeader names the route pattern that matched, e.g. /hello/{name}.
const RouteHeader = "X-Gust-Route"

// Param is the value of the route parameter name (from the
// x-gust-param-NAME header gust sets), "" when the route has none. The
// same value is also r.PathValue(name).
func Param(r *http.Request, name string) string {
	return r.Header.Get(ParamPrefix + name)
}

// Route is the route pattern that matched the request (e.g.
// /hello/{name}).
func Route(r *http.Request) string {
	return r.Header.Get(RouteHeader)
}

// Level is the severity of a log message.
type Level = wasilog.Level

// The levels of wasi:logging.
const (
	LevelTrace    Level = wasilog.Level_Trace
	LevelDebug    Level = wasilog.Level_Debug
	LevelInfo     Level = wasilog.Level_Info
	LevelWarn     Level = wasilog.Level_Warn
	LevelError    Level = wasilog.Level_Error
	LevelCritical Level = wasilog.Level_Critical
)

// Log sends message to gust's log (wasi:logging) at level. Messages reach
// the log when the function's log level admits them.
func Log(level Level, message string) {
	wasilog.Log(level, "", message)
}

// Logf formats like fmt.Sprintf and logs at level.
func Logf(level Level, format string, args ...any) {
	wasilog.Log(level, "", fmt.Sprintf(format, args...))
}

// LogContext logs message at level from context (a name for the part of
// the function that speaks).
func LogContext(level Level, context, message string) {
	wasilog.Log(level, context, message)
}

// paramNames are the route parameter names among h, with their values.
func params(h http.Header) map[string]string {
	var out map[string]string
	for key, values := range h {
		if len(values) == 0 || len(key) <= len(ParamPrefix) || !strings.EqualFold(key[:len(ParamPrefix)], ParamPrefix) {
			continue
		}
		if out == nil {
			out = make(map[string]string)
		}
		out[strings.ToLower(key[len(ParamPrefix):])] = values[0]
	}
	return out
}
