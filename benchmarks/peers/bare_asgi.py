"""The floor: a bare ASGI app on uvicorn with orjson and a no-op model (``y = 2x + 1`` in Python).

No framework, no validation beyond reading one number, no metrics, no logging. modelward serving its
``noop`` model (a one-feature LinearRegression) is compared with this to measure what modelward's
own request handling costs. Same request and route as modelward's:

    uvicorn bare_asgi:app --app-dir benchmarks/peers --port 8002 --no-access-log
    POST /models/noop/predict  {"features": {"x": 0.5}}
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


async def _answer(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    if scope["path"] == "/health":
        await _answer(send, 200, b'{"status":"ok"}')
        return
    if scope["method"] != "POST" or scope["path"] != "/models/noop/predict":
        await _answer(send, 404, b'{"error":"not found"}')
        return
    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    try:
        x = float(orjson.loads(b"".join(chunks))["features"]["x"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        await _answer(send, 422, b'{"error":"expected {\\"features\\": {\\"x\\": number}}"}')
        return
    await _answer(send, 200, orjson.dumps({"model": "noop", "predictions": [{"prediction": 2.0 * x + 1.0}]}))
