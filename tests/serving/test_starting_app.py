"""The app the server answers with while it builds the real one: /health 200, /ready 503, everything
else 503 problem+json with Retry-After; then every request goes to the real app, whose lifespan it runs."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import orjson

from modelward.serving.starting import StartingApp, still_starting


class RealApp:
    """An ASGI app that records its lifespan and answers every request 200."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.started = asyncio.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    self.events.append("startup")
                    await send({"type": "lifespan.startup.complete"})
                    self.started.set()
                else:
                    self.events.append("shutdown")
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"real"})


class Wrapper:  # stands for uvicorn's middleware around the app
    def __init__(self, app: Any) -> None:
        self.app = app


async def request(app: Any, method: str, path: str) -> tuple[int, dict[bytes, bytes], bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app({"type": "http", "method": method, "path": path, "headers": []}, receive, send)
    return sent[0]["status"], dict(sent[0]["headers"]), b"".join(m.get("body", b"") for m in sent[1:])


async def until(condition: Any) -> None:
    while not condition():
        await asyncio.sleep(0.01)


class Lifespan:
    """Drives an app's lifespan as a server does."""

    def __init__(self, app: Any) -> None:
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        self.task = asyncio.create_task(app(scope, self.inbox.get, self.outbox.put))

    async def say(self, kind: str) -> str:
        await self.inbox.put({"type": kind})
        return str((await self.outbox.get())["type"])


def test_requests_get_503_answers_until_the_app_is_built_then_reach_it() -> None:
    async def scenario() -> None:
        gate = threading.Event()
        real = RealApp()
        failures: list[BaseException] = []

        def build() -> RealApp:
            gate.wait(60)
            return real

        app = StartingApp(build, on_failure=failures.append)
        outer = Wrapper(app)
        lifespan = Lifespan(app)
        assert await lifespan.say("lifespan.startup") == "lifespan.startup.complete"  # before the build
        assert still_starting(outer)

        status, _, body = await request(app, "GET", "/health")
        assert status == 200 and orjson.loads(body) == {"status": "live"}
        status, _, body = await request(app, "GET", "/ready")
        assert status == 503 and orjson.loads(body)["ready"] is False
        status, headers, body = await request(app, "POST", "/models/churn/predict")
        assert status == 503
        assert headers[b"content-type"] == b"application/problem+json" and headers[b"retry-after"] == b"1"
        problem = orjson.loads(body)
        assert problem["status"] == 503 and problem["type"].endswith("/starting")

        gate.set()
        await asyncio.wait_for(until(lambda: not still_starting(outer)), 60)
        assert real.events == ["startup"]
        assert await request(app, "POST", "/models/churn/predict") == (200, {}, b"real")

        assert await lifespan.say("lifespan.shutdown") == "lifespan.shutdown.complete"
        assert failures == []
        assert real.events == ["startup", "shutdown"]

    asyncio.run(scenario())


def test_a_build_that_fails_is_reported_and_requests_still_get_503() -> None:
    async def scenario() -> None:
        failed = asyncio.Event()
        failures: list[BaseException] = []
        error = LookupError("model 'nope' is not registered")

        def build() -> Any:
            raise error

        def on_failure(error: BaseException) -> None:
            failures.append(error)
            failed.set()

        app = StartingApp(build, on_failure=on_failure)
        lifespan = Lifespan(app)
        assert await lifespan.say("lifespan.startup") == "lifespan.startup.complete"
        await asyncio.wait_for(failed.wait(), 60)
        assert failures == [error]
        assert (await request(app, "GET", "/ready"))[0] == 503
        assert await lifespan.say("lifespan.shutdown") == "lifespan.shutdown.complete"

    asyncio.run(scenario())


def test_a_shutdown_during_the_build_does_not_wait_for_it() -> None:
    async def scenario() -> None:
        gate = threading.Event()
        real = RealApp()

        def build() -> RealApp:
            gate.wait(60)
            return real

        app = StartingApp(build, on_failure=lambda error: None)
        lifespan = Lifespan(app)
        assert await lifespan.say("lifespan.startup") == "lifespan.startup.complete"
        assert await lifespan.say("lifespan.shutdown") == "lifespan.shutdown.complete"
        gate.set()
        assert real.events == [] and still_starting(app)

    asyncio.run(scenario())
