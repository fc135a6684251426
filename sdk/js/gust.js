// gust.js: write gust functions in JavaScript.
//
// A thin layer over the bindings componentize-js generates for gust's
// `gust:function/handler` world (wasi:http/proxy plus key-value, config and
// logging). A handler takes a standard `Request` and returns a standard
// `Response` (or a string, bytes, or any other JSON value); `fetch()` works
// for outbound HTTP:
//
//   import { handler } from "./gust.js";
//
//   export const incomingHandler = handler(async (request) => {
//     const name = request.params.name ?? "world";
//     return new Response(`Hello, ${name}!\n`);
//   });
//
// componentize-js loads modules only from under the directory it runs in,
// so the build copies this file next to the app (see sdk/js/README.md):
//
//   cp "$GUST_SDK/js/gust.js" . && componentize-js app.js -w "$GUST_WIT" \
//     -n gust:function/handler -o app.wasm
//
// The copy is a build output: edit gust's sdk/js/gust.js, not the copy.

import {
  Fields,
  OutgoingBody,
  OutgoingResponse,
  ResponseOutparam,
} from "wasi:http/types@0.2.12";
import { open as openBucket } from "wasi:keyvalue/store@0.2.0-draft2";
import { increment as atomicIncrement } from "wasi:keyvalue/atomics@0.2.0-draft2";
import { get as configGet, getAll as configGetAll } from "wasi:config/store@0.2.0-rc.1";
import { log as wasiLog } from "wasi:logging/logging@0.1.0-draft";

/** Header gust sets on a routed request, one per route parameter. */
export const PARAM_PREFIX = "x-gust-param-";
/** Header naming the route pattern gust matched. */
export const ROUTE_HEADER = "x-gust-route";

// Largest write a wasi:io output stream accepts in one call.
const CHUNK = 4096;
// Bytes asked for per read.
const READ = 65536;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function readStream(stream) {
  const chunks = [];
  let total = 0;
  for (;;) {
    let chunk;
    try {
      chunk = stream.blockingRead(READ);
    } catch (e) {
      if (e?.payload?.tag === "closed") break;
      throw new Error(`reading a body failed: ${e?.payload?.tag ?? e}`);
    }
    chunks.push(chunk);
    total += chunk.length;
  }
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

function readIncomingBody(incoming) {
  let body;
  try {
    body = incoming.consume();
  } catch {
    return new Uint8Array(0);
  }
  const stream = body.stream();
  const bytes = readStream(stream);
  stream[Symbol.dispose]?.();
  body[Symbol.dispose]?.();
  return bytes;
}

function writeBody(body, bytes) {
  const stream = body.write();
  for (let start = 0; start < bytes.length; start += CHUNK) {
    stream.blockingWriteAndFlush(bytes.subarray(start, start + CHUNK));
  }
  stream[Symbol.dispose]();
  OutgoingBody.finish(body, undefined);
}

function methodName(method) {
  return method.tag === "other" ? method.val : method.tag.toUpperCase();
}

/** The incoming request as a standard `Request`, with `params` and `route`. */
function toRequest(incoming) {
  const method = methodName(incoming.method());
  const headers = new Headers();
  const params = {};
  let route;
  for (const [name, value] of incoming.headers().entries()) {
    const text = decoder.decode(value);
    headers.append(name, text);
    if (name.startsWith(PARAM_PREFIX)) params[name.slice(PARAM_PREFIX.length)] = text;
    else if (name === ROUTE_HEADER) route = text;
  }
  const scheme = incoming.scheme();
  const protocol = scheme && scheme.tag !== "other" ? scheme.tag : "http";
  const authority = incoming.authority() || headers.get("host") || "localhost";
  const url = `${protocol}://${authority}${incoming.pathWithQuery() || "/"}`;
  const init = { method, headers };
  if (method !== "GET" && method !== "HEAD") init.body = readIncomingBody(incoming);
  const request = new Request(url, init);
  // Route parameters as they appeared in the path (still percent-encoded).
  request.params = params;
  request.route = route;
  return request;
}

function stringify(value) {
  return JSON.stringify(value, (_, v) => (typeof v === "bigint" ? Number(v) : v));
}

function send(responseOut, status, headers, bytes) {
  headers.push(["content-length", encoder.encode(String(bytes.length))]);
  const outgoing = new OutgoingResponse(Fields.fromList(headers));
  outgoing.setStatusCode(status);
  const body = outgoing.body();
  ResponseOutparam.set(responseOut, { tag: "ok", val: outgoing });
  writeBody(body, bytes);
}

const TEXT_PLAIN = [["content-type", encoder.encode("text/plain; charset=utf-8")]];
const APPLICATION_JSON = [["content-type", encoder.encode("application/json")]];

/**
 * Sends what a handler returned: a standard `Response` (its body read
 * whole); a string as a 200 text/plain, bytes as a 200, `undefined` as an
 * empty 204, anything else as a 200 application/json (these without
 * building a `Response`, which costs fuel).
 */
async function respond(responseOut, value) {
  if (value instanceof Response) {
    const bytes = new Uint8Array(await value.arrayBuffer());
    const headers = [];
    for (const [name, text] of value.headers) {
      if (name !== "content-length") headers.push([name, encoder.encode(text)]);
    }
    send(responseOut, value.status, headers, bytes);
  } else if (typeof value === "string") {
    send(responseOut, 200, [...TEXT_PLAIN], encoder.encode(value));
  } else if (value instanceof Uint8Array) {
    send(responseOut, 200, [], value);
  } else if (value instanceof ArrayBuffer) {
    send(responseOut, 200, [], new Uint8Array(value));
  } else if (value === undefined || value === null) {
    send(responseOut, 204, [], new Uint8Array(0));
  } else {
    send(responseOut, 200, [...APPLICATION_JSON], encoder.encode(stringify(value)));
  }
}

/**
 * The `incomingHandler` export componentize-js wants, serving `fn`.
 *
 * `fn(request)` gets a standard `Request` with two additions:
 * `request.params` (the route parameters: `/hello/{name}` gives
 * `request.params.name`) and `request.route` (the matched pattern). It may
 * be async (`await fetch(...)` works) and returns a `Response`, a string
 * (text/plain), bytes, a JSON value or `undefined` (204). A thrown error is
 * logged and answered 500.
 */
export function handler(fn) {
  return {
    async handle(incoming, responseOut) {
      let value;
      try {
        value = await fn(toRequest(incoming));
      } catch (e) {
        log.error(`${e?.stack ?? e}`);
        value = text("internal error\n", 500);
      }
      await respond(responseOut, value);
    },
  };
}

/** A text/plain response. */
export function text(body, status = 200, headers = {}) {
  return new Response(body, {
    status,
    headers: { "content-type": "text/plain; charset=utf-8", ...headers },
  });
}

/** An application/json response of `value` (BigInts as numbers). */
export function json(value, status = 200, headers = {}) {
  return new Response(stringify(value), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

/** A key-value store operation failed: no such store, access denied, or other. */
export class KvError extends Error {}

function kvError(e) {
  const payload = e?.payload;
  if (payload?.tag === "no-such-store") return new KvError("no such store");
  if (payload?.tag === "access-denied") {
    return new KvError("access denied (is the store in key_value_stores?)");
  }
  if (payload?.tag === "other") return new KvError(payload.val);
  return e instanceof Error ? e : new KvError(String(e));
}

function kvCall(f) {
  try {
    return f();
  } catch (e) {
    throw kvError(e);
  }
}

/** An open key-value store. Values are bytes; strings are stored as UTF-8. */
export class Store {
  constructor(bucket) {
    this.bucket = bucket;
  }
  /** The value (a Uint8Array), or undefined when absent. */
  get(key) {
    return kvCall(() => this.bucket.get(key));
  }
  /** The value as a string, or undefined. */
  getText(key) {
    const value = this.get(key);
    return value === undefined ? undefined : decoder.decode(value);
  }
  /** The value parsed as JSON, or undefined. */
  getJson(key) {
    const value = this.getText(key);
    return value === undefined ? undefined : JSON.parse(value);
  }
  /** Stores bytes or a string. */
  set(key, value) {
    const bytes = typeof value === "string" ? encoder.encode(value) : value;
    kvCall(() => this.bucket.set(key, bytes));
  }
  /** Stores `value` as JSON. */
  setJson(key, value) {
    this.set(key, JSON.stringify(value));
  }
  delete(key) {
    kvCall(() => this.bucket.delete(key));
  }
  exists(key) {
    return kvCall(() => this.bucket.exists(key));
  }
  /** Adds `delta` atomically (a missing key counts from 0); the new value. */
  increment(key, delta = 1) {
    return Number(kvCall(() => atomicIncrement(this.bucket, key, BigInt(delta))));
  }
  /** Every key in the store. */
  keys() {
    const out = [];
    let cursor;
    do {
      const page = kvCall(() => this.bucket.listKeys(cursor));
      out.push(...page.keys);
      cursor = page.cursor;
    } while (cursor !== undefined);
    return out;
  }
}

/** Key-value stores the manifest grants (`key_value_stores = ["default"]`). */
export const kv = {
  /** Opens the store `name`. */
  open(name = "default") {
    return new Store(kvCall(() => openBucket(name)));
  },
};

/** The function's config: the manifest's `config = { key = "value" }`. */
export const config = {
  /** The value of `key`, or `fallback` when it is not set. */
  get(key, fallback = undefined) {
    const value = configGet(key);
    return value === undefined ? fallback : value;
  },
  /** Every key and value, as an object. */
  getAll() {
    return Object.fromEntries(configGetAll());
  },
};

function logAt(level) {
  return (message, context = "") => wasiLog(level, context, String(message));
}

/** Lines in gust's log, tagged with the function and request. */
export const log = {
  trace: logAt("trace"),
  debug: logAt("debug"),
  info: logAt("info"),
  warn: logAt("warn"),
  error: logAt("error"),
  critical: logAt("critical"),
};
