"""{{name}}: a gust function in Python.

`GET /` and `GET /hello/{name}`; see gust's sdk/python/README.md for
requests, responses, key-value, config, logging and outbound HTTP.
"""

import gust


def handle(request: gust.Request) -> gust.Response:
    name = request.params.get("name", "world")
    return gust.Response(200, f"Hello, {name}!\n")


# componentize-py exports the class named IncomingHandler.
IncomingHandler = gust.handler(handle)
