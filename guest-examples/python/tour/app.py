"""A tour of the Python helper (sdk/python/gust): every part in one
function, served by tests/all/languages/python.rs (and a reference for
what each call looks like).

    POST /echo?q=..                 the request as the handler sees it, as JSON
    GET|PUT|DELETE|POST /kv/{key}   get, set (the body), delete, increment
    GET /kv                         every key
    GET /config                     config.get / get_all
    GET /answer/{kind}              each kind of return value
    GET /fetch/{target}             outbound HTTP: `self` calls /answer/json
                                    in-process, `denied` a host not allowed
    GET /fail                       an exception: logged, answered 500
"""

import gust
from gust import config, kv, log


def echo(request: gust.Request) -> gust.Response:
    return gust.Response(
        200,
        {
            "method": request.method,
            "path": request.path,
            "q": request.query_params().get("q"),
            "route": request.route,
            "params": request.params,
            "content_type": request.headers.get("content-type"),
            "body": request.text(),
            "json": request.json() if request.headers.get("content-type") == "application/json" else None,
        },
    )


def store(request: gust.Request) -> gust.Response:
    store = kv.open("default")
    key = request.params["key"]
    if request.method == "GET":
        value = store.get(key)
        if value is None:
            return gust.Response(404, {"error": "no such key"})
        return gust.Response(200, value, {"content-type": "application/octet-stream"})
    if request.method == "PUT":
        store.set(key, request.body)
        return gust.Response(201, {"stored": key, "exists": store.exists(key)})
    if request.method == "DELETE":
        store.delete(key)
        return gust.Response(200, {"deleted": key, "exists": store.exists(key)})
    return gust.Response(200, {"value": store.increment(key, 2)})


def answer(kind: str):
    if kind == "text":
        return "plain text\n"
    if kind == "bytes":
        return b"\x01\x02\x03"
    if kind == "json":
        return {"list": [1, "two"]}
    if kind == "response":
        return gust.Response(201, "made\n", [("x-tour", "one"), ("x-tour", "two")])
    return gust.Response(404, {"error": f"unknown kind {kind}"})


def fetch(target: str) -> gust.Response:
    url = {
        "self": "http://tour.gust.internal/answer/json",
        "denied": "http://not-allowed.example/",
    }.get(target, "")
    try:
        reply = gust.fetch(url, headers={"accept": "application/json"})
    except gust.FetchError as e:
        return gust.Response(502, {"error": str(e)})
    return gust.Response(
        200,
        {"status": reply.status, "content_type": reply.headers.get("content-type"), "body": reply.json()},
    )


def tour(request: gust.Request):
    if request.path == "/echo":
        return echo(request)
    if request.path == "/kv":
        try:
            return {"keys": sorted(kv.open("default").keys())}
        except kv.KvError as e:
            return gust.Response(500, {"error": str(e)})
    if request.route == "/kv/{key}":
        try:
            return store(request)
        except kv.KvError as e:
            return gust.Response(500, {"error": str(e)})
    if request.path == "/config":
        return {
            "greeting": config.get("greeting"),
            "missing": config.get("missing", "fallback"),
            "all": config.get_all(),
        }
    if request.route == "/answer/{kind}":
        return answer(request.params["kind"])
    if request.route == "/fetch/{target}":
        return fetch(request.params["target"])
    if request.path == "/fail":
        log.warn("about to fail", context="tour")
        raise RuntimeError("the tour fails on purpose")
    return gust.Response(404, {"error": "not found"})


IncomingHandler = gust.handler(tour)
