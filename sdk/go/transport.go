package gust

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
	outgoing "gust.dev/sdk/go/wit/imports/wasi_http_outgoing_handler"
	types "gust.dev/sdk/go/wit/imports/wasi_http_types"
)

// Transport sends requests through gust (wasi:http/outgoing-handler): an
// http.RoundTripper. http.DefaultTransport is a Transport, so
// http.DefaultClient, http.Get and clients without a Transport use it.
// gust admits only the hosts the function's manifest allows
// (allowed_outbound_hosts); others fail with an HTTP-request-denied error.
//
// A request's context deadline, if any, becomes its connect and
// first-byte timeouts (cancellation of a request in flight is not
// supported).
type Transport struct{}

// Client is an http.Client over Transport.
var Client = &http.Client{Transport: Transport{}}

// RoundTrip sends req and returns the response (http.RoundTripper).
func (Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		defer req.Body.Close()
	}
	if req.URL == nil {
		return nil, errors.New("gust: request without a URL")
	}
	header := req.Header.Clone()
	if header == nil {
		header = make(http.Header)
	}
	header.Del("Host")
	if req.ContentLength > 0 && header.Get("Content-Length") == "" {
		header.Set("Content-Length", strconv.FormatInt(req.ContentLength, 10))
	}
	request := types.MakeOutgoingRequest(headerFields(header))
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	if request.SetMethod(methodValue(method)).IsErr() {
		return nil, fmt.Errorf("gust: invalid method %q", method)
	}
	var scheme types.Scheme
	switch strings.ToLower(req.URL.Scheme) {
	case "http":
		scheme = types.MakeSchemeHttp()
	case "https":
		scheme = types.MakeSchemeHttps()
	case "":
		return nil, fmt.Errorf("gust: URL %q has no scheme", req.URL)
	default:
		scheme = types.MakeSchemeOther(req.URL.Scheme)
	}
	if request.SetScheme(witTypes.Some(scheme)).IsErr() {
		return nil, fmt.Errorf("gust: invalid scheme %q", req.URL.Scheme)
	}
	authority := req.Host
	if authority == "" {
		authority = req.URL.Host
	}
	if request.SetAuthority(witTypes.Some(authority)).IsErr() {
		return nil, fmt.Errorf("gust: invalid host %q", authority)
	}
	if request.SetPathWithQuery(witTypes.Some(req.URL.RequestURI())).IsErr() {
		return nil, fmt.Errorf("gust: invalid path %q", req.URL.RequestURI())
	}
	body := request.Body()
	if body.IsErr() {
		return nil, errors.New("gust: request body taken")
	}
	outBody := body.Ok()

	options := witTypes.None[*types.RequestOptions]()
	if deadline, ok := req.Context().Deadline(); ok {
		timeout := uint64(max(time.Until(deadline), time.Millisecond).Nanoseconds())
		o := types.MakeRequestOptions()
		o.SetConnectTimeout(witTypes.Some(timeout))
		o.SetFirstByteTimeout(witTypes.Some(timeout))
		options = witTypes.Some(o)
	}
	handled := outgoing.Handle(request, options)
	if handled.IsErr() {
		outBody.Drop()
		return nil, &HTTPError{Code: handled.Err()}
	}
	future := handled.Ok()
	defer future.Drop()

	// A refused request (e.g. a host the manifest does not allow) closes
	// the body: its error code, in the future, explains better.
	sendErr := sendBody(outBody, req.Body)

	pollable := future.Subscribe()
	pollable.Block()
	pollable.Drop()
	got := future.Get()
	if got.IsNone() || got.Some().IsErr() {
		return nil, errors.New("gust: the response was taken already")
	}
	result := got.Some().Ok()
	if result.IsErr() {
		return nil, &HTTPError{Code: result.Err()}
	}
	if sendErr != nil {
		result.Ok().Drop()
		return nil, sendErr
	}
	response := result.Ok()
	status := int(response.Status())
	resp := &http.Response{
		Status:        strconv.Itoa(status) + " " + http.StatusText(status),
		StatusCode:    status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        fieldsHeader(response.Headers()),
		ContentLength: -1,
		Request:       req,
	}
	if cl, err := strconv.ParseInt(resp.Header.Get("Content-Length"), 10, 64); err == nil && cl >= 0 {
		resp.ContentLength = cl
	}
	consumed := response.Consume()
	response.Drop()
	if consumed.IsErr() {
		return nil, errors.New("gust: the response body was taken already")
	}
	resp.Body = newIncomingBody(consumed.Ok())
	return resp, nil
}

// sendBody writes src (nil: no body) to body and finishes it.
func sendBody(body *types.OutgoingBody, src io.Reader) error {
	stream := body.Write()
	if stream.IsErr() {
		body.Drop()
		return errors.New("gust: request body stream taken")
	}
	out := stream.Ok()
	if src != nil {
		buf := make([]byte, chunk)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				if werr := writeAll(out, buf[:n]); werr != nil {
					out.Drop()
					body.Drop()
					return fmt.Errorf("gust: sending the request body: %w", werr)
				}
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				out.Drop()
				body.Drop()
				return fmt.Errorf("gust: reading the request body: %w", err)
			}
		}
	}
	out.Drop()
	if finished := types.OutgoingBodyFinish(body, witTypes.None[*types.Fields]()); finished.IsErr() {
		return &HTTPError{Code: finished.Err()}
	}
	return nil
}

func methodValue(method string) types.Method {
	switch method {
	case http.MethodGet:
		return types.MakeMethodGet()
	case http.MethodHead:
		return types.MakeMethodHead()
	case http.MethodPost:
		return types.MakeMethodPost()
	case http.MethodPut:
		return types.MakeMethodPut()
	case http.MethodDelete:
		return types.MakeMethodDelete()
	case http.MethodConnect:
		return types.MakeMethodConnect()
	case http.MethodOptions:
		return types.MakeMethodOptions()
	case http.MethodTrace:
		return types.MakeMethodTrace()
	case http.MethodPatch:
		return types.MakeMethodPatch()
	default:
		return types.MakeMethodOther(method)
	}
}

// HTTPError is a wasi:http error code of an outbound request: the host
// refused it (e.g. HTTP-request-denied for a host the manifest does not
// allow) or it failed (DNS, connection, timeout, ...).
type HTTPError struct {
	Code types.ErrorCode
}

func (e *HTTPError) Error() string {
	return "gust: outbound request: " + errorCodeString(e.Code)
}

// Denied reports whether gust refused the request (its host is not
// allowed).
func (e *HTTPError) Denied() bool {
	return e.Code.Tag() == types.ErrorCode_HttpRequestDenied
}

// Timeout reports whether the request timed out (net.Error-like).
func (e *HTTPError) Timeout() bool {
	switch e.Code.Tag() {
	case types.ErrorCode_DnsTimeout, types.ErrorCode_ConnectionTimeout, types.ErrorCode_ConnectionReadTimeout,
		types.ErrorCode_ConnectionWriteTimeout, types.ErrorCode_HttpResponseTimeout:
		return true
	}
	return false
}

var errorCodeNames = [...]string{
	"DNS timeout", "DNS error", "destination not found", "destination unavailable",
	"destination IP prohibited", "destination IP unroutable", "connection refused",
	"connection terminated", "connection timeout", "connection read timeout",
	"connection write timeout", "connection limit reached", "TLS protocol error",
	"TLS certificate error", "TLS alert received", "HTTP request denied",
	"HTTP request length required", "HTTP request body size", "HTTP request method invalid",
	"HTTP request URI invalid", "HTTP request URI too long", "HTTP request header section size",
	"HTTP request header size", "HTTP request trailer section size", "HTTP request trailer size",
	"HTTP response incomplete", "HTTP response header section size", "HTTP response header size",
	"HTTP response body size", "HTTP response trailer section size", "HTTP response trailer size",
	"HTTP response transfer coding", "HTTP response content coding", "HTTP response timeout",
	"HTTP upgrade failed", "HTTP protocol error", "loop detected", "configuration error",
	"internal error",
}

func errorCodeString(code types.ErrorCode) string {
	tag := code.Tag()
	name := fmt.Sprintf("error code %d", tag)
	if int(tag) < len(errorCodeNames) {
		name = errorCodeNames[tag]
	}
	if tag == types.ErrorCode_InternalError {
		if detail := code.InternalError(); detail.IsSome() {
			name += ": " + detail.Some()
		}
	}
	if tag == types.ErrorCode_DnsError {
		if rcode := code.DnsError().Rcode; rcode.IsSome() {
			name += ": " + rcode.Some()
		}
	}
	return name
}
