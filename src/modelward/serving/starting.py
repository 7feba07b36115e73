"""The app ``modelward serve`` answers with from the moment its port opens, while the real one is built.

Building the server's app imports FastAPI and MLflow and opens the registry: seconds, before a model
even starts loading. :class:`StartingApp` is what uvicorn serves instead, from the start: on the
lifespan's start-up it builds the real app in a thread (``build``), runs that app's own lifespan
(which loads the models in the background, as before) and then hands every request to it. Until
then it answers ``GET /health`` 200 (the process is alive), ``GET /ready`` 503 with the readiness
body (nothing is ready), and everything else 503 problem+json with ``Retry-After``: a client sees
an answer it can retry, never a refused connection or a 500.

Once built, a request on the general path costs one call through this app more; the server's protocol
takes predictions to the real app's fast lane directly (:func:`modelward.serving.protocol.find_lane`
finds it through ``app``, and :func:`still_starting` tells a connection made earlier to look again).

When the build fails (a model that is not registered, a registry that cannot be opened), ``on_failure``
gets the error (``modelward serve`` stops the server and reports it as it did before the port
opened); a shutdown that comes while the build runs leaves the build's thread behind (a daemon).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, MutableMapping, Sequence
from typing import Any

import orjson

from modelward.serving.wire import PROBLEM_JSON, problem_body

__all__ = ["StartingApp", "still_starting"]

log = logging.getLogger("modelward.serving")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Any]
Send = Callable[[Message], Any]
App = Callable[[Any, Any, Any], Any]  # an ASGI app (scope, receive, send)

_RETRY_AFTER = 1  # seconds: building the app takes a few


class StartingApp:
    def __init__(self, build: Callable[[], App], *, on_failure: Callable[[BaseException], None]) -> None:
        self.build = build
        self.on_failure = on_failure
        self.app: App | None = None  # the real app, once built and its lifespan started
        self._lifespan: _Lifespan | None = None
        self._task: asyncio.Task[None] | None = None
        self._draining = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self.app
        if app is not None:
            await app(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._run_lifespan(scope, receive, send)
        elif scope["type"] == "http":
            await self._answer_starting(scope, send)

    # -- while the app is being built -------------------------------------------------------------

    async def _answer_starting(self, scope: Scope, send: Send) -> None:
        path = scope["path"]
        looks = scope["method"] in ("GET", "HEAD")  # uvicorn leaves the body out of a HEAD answer
        if path == "/health" and looks:
            await _send(send, 200, b"application/json", orjson.dumps({"status": "live"}))
            return
        if path == "/ready" and looks:
            body = {"ready": False, "draining": self._draining, "models": {}, "reason": "starting"}
            await _send(send, 503, b"application/json", orjson.dumps(body))
            return
        detail = f"the server is starting and loads its models; retry in {_RETRY_AFTER} s"
        problem = problem_body(503, "starting", detail, kind="starting", instance=path)
        retry = [(b"retry-after", str(_RETRY_AFTER).encode())]
        await _send(send, 503, PROBLEM_JSON.encode(), problem, retry)

    # -- the lifespan: ours at once, the real app's once it is built ------------------------------

    async def _run_lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._task = asyncio.create_task(self._build_and_start(scope))
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self._stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _build_and_start(self, scope: Scope) -> None:
        loop = asyncio.get_running_loop()
        built: asyncio.Future[App] = loop.create_future()

        def build() -> None:
            try:
                app, error = self.build(), None
            except BaseException as exc:  # handed to the loop, which reports it
                app, error = None, exc
            with contextlib.suppress(RuntimeError):  # the server stopped meanwhile: its loop is closed
                loop.call_soon_threadsafe(_settle, built, app, error)

        threading.Thread(target=build, name="modelward-build-app", daemon=True).start()
        try:
            app = await built
            lifespan = self._lifespan = _Lifespan(app, scope)
            await lifespan.startup()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self.on_failure(exc)
            return
        self.app = app

    async def _stop(self) -> None:
        self._draining = True
        task = self._task
        if task is not None and not task.done():
            task.cancel()  # a build still running is left to its thread; a lifespan starting stops below
        lifespan = self._lifespan
        if lifespan is not None:
            await lifespan.shutdown()


def still_starting(app: Any) -> bool:
    """Whether a :class:`StartingApp` inside uvicorn's middleware is still building the real app (a
    connection made then looks for the prediction lane again at its next request)."""
    for _ in range(16):
        if isinstance(app, StartingApp):
            return app.app is None
        app = getattr(app, "app", None)
        if app is None:
            return False
    return False


class _Lifespan:
    """The real app's lifespan, driven as a server drives it."""

    def __init__(self, app: App, outer: Scope) -> None:
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        self.started: asyncio.Future[None] = loop.create_future()
        self.stopped: asyncio.Future[None] = loop.create_future()
        self.failure = "the app's lifespan ended during start-up"
        scope = {
            "type": "lifespan",
            "asgi": outer.get("asgi", {"version": "3.0"}),
            "state": outer.get("state", {}),
        }
        self.task = asyncio.create_task(app(scope, self.inbox.get, self._send))
        self.task.add_done_callback(self._ended)

    async def _send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "lifespan.startup.complete":
            _settle(self.started, None, None)
        elif kind == "lifespan.startup.failed":  # the app raises its error next, which _ended settles with
            self.failure = message.get("message") or "the app's start-up failed"
        elif kind in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
            _settle(self.stopped, None, None)

    def _ended(self, task: asyncio.Task[Any]) -> None:
        error = None if task.cancelled() else task.exception()
        _settle(self.started, None, error or RuntimeError(self.failure))
        _settle(self.stopped, None, None)

    async def startup(self) -> None:
        await self.inbox.put({"type": "lifespan.startup"})
        await asyncio.shield(self.started)

    async def shutdown(self) -> None:
        if self.task.done():
            return
        if not self.started.done():
            # Stopped while the app starts: its start-up finishes first (it closes what it opened).
            await asyncio.wait([self.started])
        if self.task.done():
            return
        await self.inbox.put({"type": "lifespan.shutdown"})
        await self.stopped


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


async def _send(
    send: Send, status: int, content_type: bytes, body: bytes, extra: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", b"%d" % len(body)), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
