"""gust: write gust functions in Python.

A thin layer over the bindings componentize-py generates for gust's
``gust:function/handler`` world (``wasi:http/proxy`` plus key-value,
config and logging): a handler takes a :class:`Request` and returns a
:class:`Response`::

    import gust

    def handle(request: gust.Request) -> gust.Response:
        name = request.params.get("name", "world")
        return gust.Response(200, f"Hello, {name}!\\n")

    IncomingHandler = gust.handler(handle)

componentize-py looks for a class named ``IncomingHandler`` in the app
module: :func:`handler` makes it. Build with the sdk on the Python path::

    componentize-py -d "$GUST_WIT" -w gust:function/handler \\
        componentize app -p . -p "$GUST_SDK/python" -o app.wasm

The capabilities the manifest grants: :mod:`gust.kv` (key-value stores),
:mod:`gust.config` (the function's config), :mod:`gust.log` (gust's log)
and :func:`fetch` (outbound HTTP, including other functions of the app
in-process at ``http://NAME.gust.internal``).
"""

from gust.http import Request, Response, handler, fetch, FetchError
from gust import kv, config, log

__all__ = [
    "Request",
    "Response",
    "handler",
    "fetch",
    "FetchError",
    "kv",
    "config",
    "log",
]
