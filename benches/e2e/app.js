// The JavaScript hello used by the end-to-end benchmark (benches/e2e/run.sh).
//
// Built with componentize-js against gust's `gust:function/handler` world
// (that is, `wasi:http/proxy`); it answers every request with a fixed
// greeting, like the Rust hello in guest-examples/hello.

import { Fields, OutgoingBody, OutgoingResponse, ResponseOutparam } from "wasi:http/types@0.2.12";

const BODY = new TextEncoder().encode("Hello from gust!\n");

export const incomingHandler = {
  handle(_request, responseOut) {
    const headers = Fields.fromList([
      ["content-type", new TextEncoder().encode("text/plain; charset=utf-8")],
      ["content-length", new TextEncoder().encode(String(BODY.length))],
    ]);
    const response = new OutgoingResponse(headers);
    response.setStatusCode(200);
    const body = response.body();
    ResponseOutparam.set(responseOut, { tag: "ok", val: response });
    const stream = body.write();
    stream.blockingWriteAndFlush(BODY);
    stream[Symbol.dispose]();
    OutgoingBody.finish(body, undefined);
  },
};
