// Hello in JavaScript: `GET /` and `GET /hello/{name}`.
//
// Built with componentize-js against gust's `gust:function/handler` world,
// with gust's helper (sdk/js/gust.js, copied here by the build).

import { handler, text } from "./gust.js";

export const incomingHandler = handler((request) => {
  const name = request.params.name ?? "world";
  return text(`Hello, ${name}!\n`);
});
