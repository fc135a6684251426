// The hello example: GET / answers "Hello, world!", GET /hello/{name}
// answers "Hello, NAME!" (NAME is the route parameter).
package main

import (
	"fmt"
	"net/http"

	gust "gust.dev/sdk/go"
)

func init() {
	gust.HandleFunc(func(w http.ResponseWriter, r *http.Request) {
		name := gust.Param(r, "name")
		if name == "" {
			name = "world"
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "Hello, %s!\n", name)
	})
}

// Never called: a component is a library whose init functions run first.
func main() {}
