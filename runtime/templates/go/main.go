// {{name}}: a gust function in Go, a net/http handler.
package main

import (
	"fmt"
	"net/http"

	gust "gust.dev/sdk/go"
)

func init() {
	// Register the handler in init: a component's main never runs.
	gust.HandleFunc(func(w http.ResponseWriter, r *http.Request) {
		// The route parameter {name} (also r.PathValue("name")).
		name := gust.Param(r, "name")
		if name == "" {
			name = "world"
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "Hello, %s!\n", name)
	})
}

func main() {}
