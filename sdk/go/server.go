package gust

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
	"gust.dev/sdk/go/wit/exports/export_wasi_http_incoming_handler"
	types "gust.dev/sdk/go/wit/imports/wasi_http_types"
	streams "gust.dev/sdk/go/wit/imports/wasi_io_streams"

	// The component's exports (wasi:http/incoming-handler#handle).
	_ "gust.dev/sdk/go/wit/exports/wit_exports"
)

// flushSize is how much response body is buffered before it is sent.
const flushSize = 64 << 10

// chunk is the most one blocking-write-and-flush takes.
const chunk = 4096

var handler http.Handler

// Handle makes h the function's handler. Call it from an init function:
// a component's main function never runs.
func Handle(h http.Handler) {
	handler = h
	export_wasi_http_incoming_handler.Handler = serve
}

// HandleFunc makes f the function's handler.
func HandleFunc(f func(http.ResponseWriter, *http.Request)) {
	Handle(http.HandlerFunc(f))
}

func init() {
	// The only transport that works in a component.
	http.DefaultTransport = Transport{}
}

// serve answers one request.
func serve(request *types.IncomingRequest, out *types.ResponseOutparam) {
	w := &responseWriter{header: make(http.Header), out: out}
	r, err := newRequest(request)
	if err != nil {
		Logf(LevelError, "gust: bad request: %v", err)
		w.header.Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, "bad request\n")
		w.finish()
		return
	}
	defer func() {
		if p := recover(); p != nil {
			Logf(LevelError, "gust: handler panicked: %v\n%s", p, debug.Stack())
			if !w.committed {
				w.header = http.Header{"Content-Type": {"text/plain; charset=utf-8"}}
				w.status = 0
				w.buf = w.buf[:0]
				w.WriteHeader(http.StatusInternalServerError)
				io.WriteString(w, "internal error\n")
				w.finish()
			}
			// Otherwise the body is left unfinished: the client sees an
			// incomplete response.
		}
	}()
	handler.ServeHTTP(w, r)
	if body, ok := r.Body.(*incomingBody); ok {
		body.Close()
	}
	w.finish()
}

// newRequest is the *http.Request of request.
func newRequest(request *types.IncomingRequest) (*http.Request, error) {
	method := methodString(request.Method())
	target := request.PathWithQuery().SomeOr("/")
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return nil, fmt.Errorf("request target %q: %w", target, err)
	}
	header := fieldsHeader(request.Headers())
	var body io.ReadCloser = http.NoBody
	contentLength := int64(0)
	if cl := header.Get("Content-Length"); cl != "" {
		contentLength, err = strconv.ParseInt(cl, 10, 64)
		if err != nil || contentLength < 0 {
			return nil, fmt.Errorf("content-length %q", cl)
		}
	} else if method != http.MethodGet && method != http.MethodHead || header.Get("Transfer-Encoding") != "" {
		contentLength = -1
	}
	if contentLength != 0 {
		consumed := request.Consume()
		if consumed.IsErr() {
			return nil, fmt.Errorf("the body was consumed already")
		}
		body = newIncomingBody(consumed.Ok())
	}
	r := &http.Request{
		Method:        method,
		URL:           u,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        header,
		Body:          body,
		ContentLength: contentLength,
		Host:          request.Authority().SomeOr(header.Get("Host")),
		RequestURI:    target,
		RemoteAddr:    "",
	}
	for name, value := range params(header) {
		r.SetPathValue(name, value)
	}
	return r.WithContext(context.Background()), nil
}

func methodString(m types.Method) string {
	switch m.Tag() {
	case types.Method_Get:
		return http.MethodGet
	case types.Method_Head:
		return http.MethodHead
	case types.Method_Post:
		return http.MethodPost
	case types.Method_Put:
		return http.MethodPut
	case types.Method_Delete:
		return http.MethodDelete
	case types.Method_Connect:
		return http.MethodConnect
	case types.Method_Options:
		return http.MethodOptions
	case types.Method_Trace:
		return http.MethodTrace
	case types.Method_Patch:
		return http.MethodPatch
	default:
		return m.Other()
	}
}

func fieldsHeader(fields *types.Fields) http.Header {
	entries := fields.Entries()
	fields.Drop()
	header := make(http.Header, len(entries))
	for _, entry := range entries {
		key := http.CanonicalHeaderKey(entry.F0)
		header[key] = append(header[key], string(entry.F1))
	}
	return header
}

// headerFields are h's fields; headers wasi:http refuses (hop-by-hop ones
// such as Connection) are left out and logged.
func headerFields(h http.Header) *types.Fields {
	fields := types.MakeFields()
	for key, values := range h {
		name := strings.ToLower(key)
		for _, value := range values {
			if result := fields.Append(name, []byte(value)); result.IsErr() {
				Logf(LevelWarn, "gust: header %s left out (%s)", key, headerErrorString(result.Err()))
				break
			}
		}
	}
	return fields
}

func headerErrorString(e types.HeaderError) string {
	switch e.Tag() {
	case types.HeaderError_InvalidSyntax:
		return "invalid syntax"
	case types.HeaderError_Forbidden:
		return "forbidden"
	default:
		return "immutable"
	}
}

// responseWriter is the http.ResponseWriter of one request: headers are
// sent with the first flush, the body in flushSize pieces.
type responseWriter struct {
	header    http.Header
	status    int
	out       *types.ResponseOutparam
	committed bool
	body      *types.OutgoingBody
	stream    *streams.OutputStream
	buf       []byte
	err       error
}

func (w *responseWriter) Header() http.Header {
	return w.header
}

func (w *responseWriter) WriteHeader(status int) {
	if w.status != 0 || status < 200 {
		// Written already, or informational (not supported).
		return
	}
	if status > 999 {
		panic(fmt.Sprintf("gust: invalid status %d", status))
	}
	w.status = status
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return 0, w.err
	}
	w.buf = append(w.buf, p...)
	if len(w.buf) >= flushSize {
		w.flush()
		if w.err != nil {
			return 0, w.err
		}
	}
	return len(p), nil
}

// WriteString avoids a copy for io.WriteString.
func (w *responseWriter) WriteString(s string) (int, error) {
	return w.Write([]byte(s))
}

// Flush sends the headers and what was written so far (http.Flusher).
func (w *responseWriter) Flush() {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	w.flush()
}

// commit sends the status and headers.
func (w *responseWriter) commit() {
	if w.committed {
		return
	}
	w.committed = true
	if _, ok := w.header["Content-Type"]; !ok && len(w.buf) > 0 {
		w.header.Set("Content-Type", http.DetectContentType(w.buf))
	}
	response := types.MakeOutgoingResponse(headerFields(w.header))
	response.SetStatusCode(uint16(w.status))
	body := response.Body()
	if body.IsErr() {
		w.err = fmt.Errorf("gust: response body taken")
	} else {
		w.body = body.Ok()
		stream := w.body.Write()
		if stream.IsErr() {
			w.err = fmt.Errorf("gust: response body stream taken")
		} else {
			w.stream = stream.Ok()
		}
	}
	types.ResponseOutparamSet(w.out, witTypes.Ok[*types.OutgoingResponse, types.ErrorCode](response))
}

func (w *responseWriter) flush() {
	w.commit()
	if w.err == nil {
		w.err = writeAll(w.stream, w.buf)
	}
	w.buf = w.buf[:0]
}

// finish sends what is left and ends the response.
func (w *responseWriter) finish() {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed && w.header.Get("Content-Length") == "" && w.header.Get("Transfer-Encoding") == "" &&
		w.status != http.StatusNoContent && w.status != http.StatusNotModified {
		// The whole body is here: its length goes out (as net/http's
		// server does), not a chunked body.
		w.header.Set("Content-Length", strconv.Itoa(len(w.buf)))
	}
	w.flush()
	if w.stream != nil {
		w.stream.Drop()
		w.stream = nil
	}
	if w.body != nil {
		if result := types.OutgoingBodyFinish(w.body, witTypes.None[*types.Fields]()); result.IsErr() {
			Logf(LevelError, "gust: finishing the response: %s", errorCodeString(result.Err()))
		}
		w.body = nil
	}
}

// writeAll writes p to stream.
func writeAll(stream *streams.OutputStream, p []byte) error {
	for len(p) > 0 {
		n := min(len(p), chunk)
		if result := stream.BlockingWriteAndFlush(p[:n]); result.IsErr() {
			return streamError(result.Err())
		}
		p = p[n:]
	}
	return nil
}

func streamError(e streams.StreamError) error {
	if e.Tag() == streams.StreamError_Closed {
		return io.ErrClosedPipe
	}
	failure := e.LastOperationFailed()
	defer failure.Drop()
	return fmt.Errorf("gust: stream: %s", failure.ToDebugString())
}

// incomingBody reads a wasi:http incoming-body (a request's or a
// response's).
type incomingBody struct {
	body   *types.IncomingBody
	stream *streams.InputStream
	err    error
}

func newIncomingBody(body *types.IncomingBody) *incomingBody {
	b := &incomingBody{body: body}
	stream := body.Stream()
	if stream.IsErr() {
		b.err = fmt.Errorf("gust: body stream taken")
	} else {
		b.stream = stream.Ok()
	}
	return b
}

func (b *incomingBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	result := b.stream.BlockingRead(uint64(len(p)))
	if result.IsErr() {
		e := result.Err()
		if e.Tag() == streams.StreamError_Closed {
			b.err = io.EOF
		} else {
			b.err = streamError(e)
		}
		return 0, b.err
	}
	return copy(p, result.Ok()), nil
}

func (b *incomingBody) Close() error {
	if b.stream != nil {
		b.stream.Drop()
		b.stream = nil
	}
	if b.body != nil {
		types.IncomingBodyFinish(b.body).Drop()
		b.body = nil
	}
	if b.err == nil {
		b.err = http.ErrBodyReadAfterClose
	}
	return nil
}
