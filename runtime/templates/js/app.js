// {{name}}: a gust function in JavaScript.
//
// `GET /` and `GET /hello/{name}`; see gust's sdk/js/README.md for
// requests, responses, fetch(), key-value, config and logging. The build
// copies gust's helper (gust.js) next to this file.

import { handler, text } from "./gust.js";

export const incomingHandler = handler(async (request) => {
  const name = request.params.name ?? "world";
  return text(`Hello, ${name}!\n`);
});
