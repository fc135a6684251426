"""The Python hello used by the end-to-end benchmark (benches/e2e/run.sh).

Built with componentize-py against gust's `gust:function/handler` world (that
is, `wasi:http/proxy`); it answers every request with a fixed greeting, like
the Rust hello in guest-examples/hello.
"""

from componentize_py_types import Ok
from wit_world import exports
from wit_world.imports.wasi_http_types import (
    Fields,
    IncomingRequest,
    OutgoingBody,
    OutgoingResponse,
    ResponseOutparam,
)

BODY = b"Hello from gust!\n"


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        headers = Fields.from_list(
            [
                ("content-type", b"text/plain; charset=utf-8"),
                ("content-length", str(len(BODY)).encode()),
            ]
        )
        response = OutgoingResponse(headers)
        response.set_status_code(200)
        body = response.body()
        ResponseOutparam.set(response_out, Ok(response))
        stream = body.write()
        stream.blocking_write_and_flush(BODY)
        stream.__exit__(None, None, None)
        OutgoingBody.finish(body, None)

