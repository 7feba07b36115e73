"""The API documentation pages, which work with no internet access.

FastAPI's own ``/docs`` and ``/redoc`` load Swagger UI and ReDoc from a CDN: offline, or behind a
firewall, they are blank pages. Here both pages load their scripts, styles and icon from the
server itself, out of the assets that the ``fastapi-offline`` package ships (Swagger UI 5, which
reads OpenAPI 3.1, and the ReDoc standalone bundle), mounted at ``/docs/assets``. Swagger UI's
online validator badge is turned off: it would send the spec's address to a third party.

The pages and their assets are public: they carry no secrets, and the routes they document
declare their own policies. No OAuth2 redirect page: the API's tokens are plain bearer tokens.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

from modelward.serving.auth import AUTH_KEY, DOCS_ASSETS, Policy

__all__ = ["add_docs_routes", "assets_directory"]


def assets_directory() -> Path:
    """The folder of the installed ``fastapi-offline`` package's Swagger UI and ReDoc files."""
    return Path(str(files("fastapi_offline") / "static"))


def add_docs_routes(app: FastAPI, deps: dict[Policy, Any]) -> None:
    """``GET /docs`` (Swagger UI), ``GET /redoc`` and their assets under ``/docs/assets``."""
    app.mount(DOCS_ASSETS, StaticFiles(directory=assets_directory()), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    def urls(request: Request) -> tuple[str, str]:
        """The OpenAPI document's and the assets' addresses, behind a proxy's root path too."""
        base = str(request.scope.get("root_path", "")).rstrip("/")
        return base + openapi_url, base + DOCS_ASSETS

    async def swagger(request: Request) -> HTMLResponse:
        spec, assets = urls(request)
        js, css, icon = (
            f"{assets}/{name}" for name in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png")
        )
        title = f"{app.title} - Swagger UI"
        return get_swagger_ui_html(
            openapi_url=spec,
            title=title,
            swagger_js_url=js,
            swagger_css_url=css,
            swagger_favicon_url=icon,
            swagger_ui_parameters={"validatorUrl": None},
        )

    async def redoc(request: Request) -> HTMLResponse:
        spec, assets = urls(request)
        js, icon = f"{assets}/redoc.standalone.js", f"{assets}/favicon.png"
        title = f"{app.title} - ReDoc"
        return get_redoc_html(
            openapi_url=spec, title=title, redoc_js_url=js, redoc_favicon_url=icon, with_google_fonts=False
        )

    for path, endpoint in (("/docs", swagger), ("/redoc", redoc)):
        app.add_api_route(
            path,
            endpoint,
            methods=["GET", "HEAD"],
            include_in_schema=False,
            dependencies=[deps["public"]],
            openapi_extra={AUTH_KEY: "public"},
        )
