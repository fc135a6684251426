"""Named counters in a key-value store, in Python.

- `POST /counter/{name}` adds one, atomically, and answers the new value:
  `{"name": "visits", "value": 42}`;
- `GET /counter/{name}` answers the current value (0 if never counted).

The increment is the store's atomic `increment`, so any number of
concurrent requests, on any number of instances or gust processes sharing
the store (Redis), count exactly once each. The manifest grants the store:
`key_value_stores = ["default"]`. Same behaviour as the Rust counter
(guest-examples/counter).
"""

import re

import gust
from gust import kv, log

# Names are safe in a key and in JSON without escaping: 1 to 128 of these.
VALID_NAME = re.compile(r"[A-Za-z0-9._-]{1,128}")


def counter(request: gust.Request) -> gust.Response:
    # Routed by gust the name is a route parameter; called in-process
    # (`http://counter.gust.internal/counter/NAME`) it may only be in the path.
    name = request.params.get("name")
    if name is None:
        name = request.path.removeprefix("/counter/") if request.path.startswith("/counter/") else ""
    if not VALID_NAME.fullmatch(name):
        return gust.Response(400, {"error": "a counter name is 1 to 128 of A-Z a-z 0-9 . _ -"})
    if request.method not in ("GET", "POST"):
        return gust.Response(405, headers={"allow": "GET, POST"})
    key = f"counter:{name}"
    try:
        store = kv.open("default")
        if request.method == "POST":
            value = store.increment(key, 1)
        elif store.exists(key):
            # Incrementing by 0 reads the value in the store's own number
            # encoding; the existence check keeps GET from creating keys.
            value = store.increment(key, 0)
        else:
            value = 0
    except kv.KvError as e:
        log.error(f"counter {name}: {e}")
        return gust.Response(500, {"error": "the counter store failed"})
    return gust.Response(200, {"name": name, "value": value})


IncomingHandler = gust.handler(counter)
