"""Requests, responses, the handler and outbound HTTP."""

import json as _json
import traceback
from typing import Any, Callable, Dict, List, Optional, Tuple, Union
from urllib.parse import parse_qs

from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.imports import outgoing_handler
from wit_world.imports import streams
from wit_world.imports import wasi_http_types as types

# Header gust sets on a routed request, one per route parameter.
PARAM_PREFIX = "x-gust-param-"
# Header naming the route pattern gust matched.
ROUTE_HEADER = "x-gust-route"
# Largest write a wasi:io output stream accepts in one call.
_CHUNK = 4096
# Bytes asked for per read.
_READ = 65536

HeaderInput = Union[None, Dict[str, str], List[Tuple[str, str]]]

_METHODS = {
    "GET": types.Method_Get,
    "HEAD": types.Method_Head,
    "POST": types.Method_Post,
    "PUT": types.Method_Put,
    "DELETE": types.Method_Delete,
    "CONNECT": types.Method_Connect,
    "OPTIONS": types.Method_Options,
    "TRACE": types.Method_Trace,
    "PATCH": types.Method_Patch,
}
_METHOD_NAMES = {cls: name for name, cls in _METHODS.items()}


def _method_name(method: Any) -> str:
    if isinstance(method, types.Method_Other):
        return method.value
    return _METHOD_NAMES[type(method)]


def _wit_method(name: str) -> Any:
    cls = _METHODS.get(name.upper())
    return cls() if cls else types.Method_Other(name)


def _read_stream(stream: streams.InputStream) -> bytes:
    chunks = []
    while True:
        try:
            chunks.append(stream.blocking_read(_READ))
        except Err as e:
            if isinstance(e.value, streams.StreamError_Closed):
                break
            raise IOError(f"reading a body failed: {e.value}") from None
    return b"".join(chunks)


def _read_body(body: types.IncomingBody) -> bytes:
    with body.stream() as stream:
        data = _read_stream(stream)
    body.__exit__(None, None, None)
    return data


def _write_body(body: types.OutgoingBody, data: bytes) -> None:
    stream = body.write()
    for start in range(0, len(data), _CHUNK):
        stream.blocking_write_and_flush(data[start : start + _CHUNK])
    stream.__exit__(None, None, None)
    types.OutgoingBody.finish(body, None)


def _header_list(headers: HeaderInput) -> List[Tuple[str, str]]:
    if headers is None:
        return []
    if isinstance(headers, dict):
        return list(headers.items())
    return list(headers)


def _fields(entries: List[Tuple[str, str]]) -> types.Fields:
    return types.Fields.from_list(
        [(name.lower(), value.encode() if isinstance(value, str) else value) for name, value in entries]
    )


def _headers_dict(fields: types.Fields) -> Dict[str, str]:
    out: Dict[str, str] = {}
    for name, value in fields.entries():
        text = value.decode("latin-1")
        out[name] = f"{out[name]}, {text}" if name in out else text
    return out


class Request:
    """An incoming request.

    ``method`` (``"GET"``, ...), ``path`` (without the query), ``query``
    (the raw query string), ``headers`` (lower-case names; repeated
    headers joined with ``", "``), ``params`` (the route parameters gust
    matched: ``/hello/{name}`` gives ``params["name"]``, as it appeared in
    the path, still percent-encoded), ``route`` (the matched pattern) and
    ``body`` (bytes, read on first use).
    """

    def __init__(self, incoming: types.IncomingRequest):
        self.method = _method_name(incoming.method())
        target = incoming.path_with_query() or "/"
        self.path, _, self.query = target.partition("?")
        with incoming.headers() as fields:
            self.headers = _headers_dict(fields)
        self.params = {
            name[len(PARAM_PREFIX) :]: value
            for name, value in self.headers.items()
            if name.startswith(PARAM_PREFIX)
        }
        self.route = self.headers.get(ROUTE_HEADER)
        self._incoming = incoming
        self._body: Optional[bytes] = None

    @property
    def body(self) -> bytes:
        """The whole request body."""
        if self._body is None:
            try:
                body = self._incoming.consume()
            except Err:
                self._body = b""
            else:
                self._body = _read_body(body)
        return self._body

    def text(self) -> str:
        """The body as UTF-8 text."""
        return self.body.decode("utf-8")

    def json(self) -> Any:
        """The body parsed as JSON (raises ``ValueError`` if it is not)."""
        return _json.loads(self.body)

    def query_params(self) -> Dict[str, str]:
        """The query string's parameters (the last value of each)."""
        return {k: v[-1] for k, v in parse_qs(self.query, keep_blank_values=True).items()}

    def __repr__(self) -> str:
        return f"Request({self.method} {self.path})"


class Response:
    """A response: ``Response(status, body, headers)``.

    ``body`` is bytes, a str (sent as UTF-8, ``text/plain; charset=utf-8``
    unless ``headers`` name a content type) or any other JSON value (a
    dict, list, ...; sent as ``application/json``). ``headers`` is a dict
    or a list of ``(name, value)`` pairs.
    """

    def __init__(self, status: int = 200, body: Any = b"", headers: HeaderInput = None):
        self.status = status
        self.headers = _header_list(headers)
        content_type = None
        if isinstance(body, (bytes, bytearray, memoryview)):
            self.body = bytes(body)
        elif isinstance(body, str):
            self.body = body.encode("utf-8")
            content_type = "text/plain; charset=utf-8"
        else:
            self.body = _json.dumps(body, separators=(",", ":")).encode("utf-8")
            content_type = "application/json"
        if content_type and not any(n.lower() == "content-type" for n, _ in self.headers):
            self.headers.append(("content-type", content_type))

    def __repr__(self) -> str:
        return f"Response({self.status}, {len(self.body)} bytes)"


def _respond(response_out: types.ResponseOutparam, response: Response) -> None:
    entries = [(n, v) for n, v in response.headers if n.lower() != "content-length"]
    entries.append(("content-length", str(len(response.body))))
    outgoing = types.OutgoingResponse(_fields(entries))
    outgoing.set_status_code(response.status)
    body = outgoing.body()
    types.ResponseOutparam.set(response_out, Ok(outgoing))
    _write_body(body, response.body)


def handler(fn: Callable[[Request], Any]) -> type:
    """The ``IncomingHandler`` class componentize-py exports, serving ``fn``.

    ``fn`` takes a :class:`Request` and returns a :class:`Response` (or a
    str, bytes, dict or list: a 200 with that body; ``None``: an empty
    204). An exception is logged with its traceback and answered ``500``.
    """

    class IncomingHandler(exports.IncomingHandler):
        def handle(self, request: types.IncomingRequest, response_out: types.ResponseOutparam) -> None:
            try:
                response = fn(Request(request))
                if response is None:
                    response = Response(204)
                elif not isinstance(response, Response):
                    response = Response(200, response)
            except Exception:
                from gust import log

                log.error(traceback.format_exc())
                response = Response(500, "internal error\n")
            _respond(response_out, response)

    IncomingHandler.__qualname__ = f"IncomingHandler[{getattr(fn, '__name__', 'handler')}]"
    return IncomingHandler


class FetchError(Exception):
    """An outbound request that got no response (denied, unreachable, ...)."""


class FetchResponse:
    """What :func:`fetch` returns: ``status``, ``headers``, ``body`` (bytes)."""

    def __init__(self, status: int, headers: Dict[str, str], body: bytes):
        self.status = status
        self.headers = headers
        self.body = body

    def text(self) -> str:
        return self.body.decode("utf-8")

    def json(self) -> Any:
        return _json.loads(self.body)

    def __repr__(self) -> str:
        return f"FetchResponse({self.status}, {len(self.body)} bytes)"


def fetch(url: str, method: str = "GET", headers: HeaderInput = None, body: Union[bytes, str, None] = None) -> FetchResponse:
    """Sends a request and reads the whole response.

    The manifest must allow the host (``allowed_outbound_hosts``);
    ``http://NAME.gust.internal/...`` calls the app's function ``NAME``
    in-process. Raises :class:`FetchError` when no response comes back.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"not an absolute URL: {url}")
    authority, slash, path = rest.partition("/")
    data = body.encode("utf-8") if isinstance(body, str) else (body or b"")
    entries = _header_list(headers)
    if data and not any(n.lower() == "content-length" for n, _ in entries):
        entries.append(("content-length", str(len(data))))
    request = types.OutgoingRequest(_fields(entries))
    request.set_method(_wit_method(method))
    request.set_scheme(
        types.Scheme_Https() if scheme == "https" else types.Scheme_Http() if scheme == "http" else types.Scheme_Other(scheme)
    )
    request.set_authority(authority)
    request.set_path_with_query(slash + path if slash else "/")
    outgoing_body = request.body()
    try:
        future = outgoing_handler.handle(request, None)
    except Err as e:
        raise FetchError(f"{url}: {e.value}") from None
    _write_body(outgoing_body, data)
    with future.subscribe() as pollable:
        pollable.block()
    result = future.get()
    future.__exit__(None, None, None)
    if result is None or isinstance(result, Err):
        raise FetchError(f"{url}: no response")
    inner = result.value
    if isinstance(inner, Err):
        raise FetchError(f"{url}: {inner.value}")
    incoming = inner.value
    status = incoming.status()
    with incoming.headers() as fields:
        response_headers = _headers_dict(fields)
    data = _read_body(incoming.consume())
    incoming.__exit__(None, None, None)
    return FetchResponse(status, response_headers, data)
