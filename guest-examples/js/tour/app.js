// A tour of gust.js: every part of the helper in one function, served by
// tests/all/languages/js.rs (and a reference for what each call looks like).
//
//   POST /echo?q=..       the request as the handler sees it, as JSON
//   GET|PUT|DELETE|POST /kv/{key}   get, set (the body), delete, increment
//   GET /kv               every key
//   GET /config           config.get / getAll
//   GET /answer/{kind}    each kind of return value: text, bytes, json, empty, response
//   GET /fail             a thrown error: logged, answered 500

import { handler, json, text, kv, config, log, KvError } from "./gust.js";

async function echo(request) {
  const url = new URL(request.url);
  return {
    method: request.method,
    path: url.pathname,
    q: url.searchParams.get("q"),
    route: request.route,
    params: request.params,
    contentType: request.headers.get("content-type"),
    body: await request.text(),
  };
}

function store(request) {
  const store = kv.open("default");
  const key = request.params.key;
  switch (request.method) {
    case "GET": {
      const value = store.getText(key);
      return value === undefined ? json({ error: "no such key" }, 404) : value;
    }
    case "PUT":
      return request.text().then((body) => {
        store.set(key, body);
        return json({ stored: key, exists: store.exists(key) }, 201);
      });
    case "DELETE":
      store.delete(key);
      return json({ deleted: key, exists: store.exists(key) });
    case "POST":
      return { value: store.increment(key, 2) };
  }
}

function answer(kind) {
  switch (kind) {
    case "text":
      return "plain text\n";
    case "bytes":
      return new Uint8Array([1, 2, 3]);
    case "json":
      return { big: 1n, list: [1, "two"] };
    case "empty":
      return undefined;
    case "response":
      return text("made\n", 201, { "x-tour": "yes" });
  }
  return json({ error: `unknown kind ${kind}` }, 404);
}

export const incomingHandler = handler(async (request) => {
  const path = new URL(request.url).pathname;
  if (path === "/echo") return echo(request);
  if (path === "/kv") {
    try {
      return { keys: kv.open("default").keys().sort() };
    } catch (e) {
      return json({ error: e.message, kvError: e instanceof KvError }, 500);
    }
  }
  if (request.route === "/kv/{key}") {
    try {
      return await store(request);
    } catch (e) {
      return json({ error: e.message, kvError: e instanceof KvError }, 500);
    }
  }
  if (path === "/config") {
    return {
      greeting: config.get("greeting"),
      missing: config.get("missing", "fallback"),
      all: config.getAll(),
    };
  }
  if (request.route === "/answer/{kind}") return answer(request.params.kind);
  if (path === "/fail") {
    log.warn("about to fail", "tour");
    throw new Error("the tour fails on purpose");
  }
  return json({ error: "not found" }, 404);
});
