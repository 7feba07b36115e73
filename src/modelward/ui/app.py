"""The dashboard alone (``modelward ui``): the ``/ui`` pages over a registry and its store, without
serving any model. ``/`` redirects to ``/ui``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.responses import RedirectResponse, Response

from modelward import __version__
from modelward.config import Settings
from modelward.registry import Registry
from modelward.serving.auth import AUTH_KEY, check_route_policies
from modelward.serving.problems import install_problem_handlers
from modelward.ui.page import warm_in_background
from modelward.ui.routes import PREFIX, add_ui_routes

__all__ = ["create_ui_app"]


def _secret(value: object) -> str | None:
    return value.get_secret_value() if value is not None else None  # type: ignore[attr-defined]


def create_ui_app(settings: Settings, *, registry: Registry | None = None, refresh: int = 0) -> FastAPI:
    registry = registry or Registry.from_settings(settings).open()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        warm_in_background(board)
        try:
            yield
        finally:
            registry.close()

    app = FastAPI(
        title="modelward dashboard",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    install_problem_handlers(app)

    async def root() -> Response:
        return RedirectResponse(PREFIX, 307)

    app.add_api_route(
        "/", root, methods=["GET", "HEAD"], include_in_schema=False, openapi_extra={AUTH_KEY: "public"}
    )
    board = add_ui_routes(
        app,
        registry,
        admin_token=_secret(settings.admin_token),
        predict_token=_secret(settings.predict_token),
        refresh=refresh,
    )
    check_route_policies(app)
    app.state.ui_board = board
    return app
