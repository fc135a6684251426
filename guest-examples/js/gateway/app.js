// A dashboard composed of two other functions, called in-process, in
// JavaScript: the same behaviour as the Rust gateway (guest-examples/gateway).
//
// `GET /dashboard/{user}` asks the users function for the user's public
// profile (`http://users.gust.internal/users/{user}`) and the counter
// function for the user's count (`http://counter.gust.internal/counter/{user}`)
// and answers both in one JSON object:
//
//   {"user": "alice", "profile": {"name": "alice", "created_at": 1764622800}, "visits": 3}
//
// An unknown user is 404; a function that fails or cannot be reached is 502
// with what it said. The manifest allows the two hosts:
// `allowed_outbound_hosts = ["http://users.gust.internal", "http://counter.gust.internal"]`.
// Outbound requests are plain `fetch()`.

import { handler, json, log } from "./gust.js";

// Names that are one path segment, passed on unescaped (the users
// function accepts 32 characters; longer ones are passed on and refused there).
const VALID_NAME = /^[A-Za-z0-9._-]{1,64}$/;

// `GET url`: its status and JSON body (null if the body is not JSON).
async function call(url) {
  const response = await fetch(url, { headers: { accept: "application/json" } });
  const text = await response.text();
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    // Not JSON: null, as the Rust gateway answers.
  }
  return { status: response.status, body };
}

function upstreamFailed(fn, what) {
  log.warn(`dashboard: ${fn} failed: ${what}`);
  return json({ error: `the ${fn} function failed`, detail: what }, 502);
}

async function dashboard(request) {
  let user = request.params.user;
  if (user === undefined) {
    const path = new URL(request.url).pathname;
    user = path.startsWith("/dashboard/") ? path.slice("/dashboard/".length) : "";
  }
  if (!VALID_NAME.test(user)) return json({ error: "not a user name" }, 400);

  let profile;
  try {
    const users = await call(`http://users.gust.internal/users/${user}`);
    if (users.status === 404) return json({ error: "no such user" }, 404);
    if (users.status !== 200) {
      return upstreamFailed("users", `${users.status}: ${JSON.stringify(users.body)}`);
    }
    profile = users.body;
  } catch (e) {
    return upstreamFailed("users", String(e));
  }

  let visits;
  try {
    const counter = await call(`http://counter.gust.internal/counter/${user}`);
    if (counter.status !== 200) {
      return upstreamFailed("counter", `${counter.status}: ${JSON.stringify(counter.body)}`);
    }
    visits = counter.body?.value ?? null;
  } catch (e) {
    return upstreamFailed("counter", String(e));
  }

  return json({ user, profile, visits });
}

export const incomingHandler = handler(dashboard);
