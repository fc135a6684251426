// Hello in JavaScript: `GET /` and `GET /hello/{name}`.
//
// Built with componentize-js against gust's `gust:function/handler` world,
// with gust's helper (sdk/js/gust.js, copied here by the build).

import { handler } from "./gust.js";

export const incomingHandler = handler((request) => {
  const name = request.params.name ?? "world";
  // A string is a 200 text/plain; charset=utf-8 (or return a Response).
  return `Hello, ${name}!\n`;
});
