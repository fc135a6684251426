"""Hello in Python: `GET /` and `GET /hello/{name}`.

Built with componentize-py against gust's `gust:function/handler` world,
with the helper package in sdk/python (`gust`) on the Python path.
"""

import gust


def hello(request: gust.Request) -> gust.Response:
    name = request.params.get("name", "world")
    return gust.Response(200, f"Hello, {name}!\n")


# componentize-py exports the class named IncomingHandler.
IncomingHandler = gust.handler(hello)
