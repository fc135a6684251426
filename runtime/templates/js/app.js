// {{name}}: a gust function in JavaScript.
//
// `GET /` and `GET /hello/{name}`; see gust's sdk/js/README.md for
// requests, responses, fetch(), key-value, config and logging. The build
// copies gust's helper (gust.js) next to this file.

import { handler } from "./gust.js";

export const incomingHandler = handler(async (request) => {
  const name = request.params.name ?? "world";
  // A string is a 200 text/plain; charset=utf-8 (or return a Response).
  return `Hello, ${name}!\n`;
});
