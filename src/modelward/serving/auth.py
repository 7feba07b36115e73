"""Route auth policies. Every route declares one; the app refuses to start with a route that does not.

- ``public``: health, readiness, metrics, API docs and their assets.
- ``predict``: prediction routes; open unless ``MODELWARD_PREDICT_TOKEN`` is set.
- ``admin``: reload (and later deploy/promote); needs ``MODELWARD_ADMIN_TOKEN``, and is refused
  outright when no admin token is configured.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal

from fastapi import Depends, FastAPI, Request
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException
from starlette.routing import Mount, Route

from modelward.errors import ConfigError
from modelward.serving.listen import is_loopback

__all__ = [
    "AUTH_KEY",
    "DOCS_ASSETS",
    "FRAMEWORK_PUBLIC_PATHS",
    "Policy",
    "bearer_matches",
    "check_route_policies",
    "guard",
    "is_loopback",
    "policy_of",
    "policy_tokens",
]

Policy = Literal["public", "predict", "admin"]
POLICIES: frozenset[str] = frozenset({"public", "predict", "admin"})
AUTH_KEY = "x-modelward-auth"

# Routes FastAPI adds itself (the OpenAPI document); they carry no secrets.
FRAMEWORK_PUBLIC_PATHS = frozenset({"/openapi.json"})
# The documentation pages' scripts, styles and icon (serving/docs_routes.py): public files.
DOCS_ASSETS = "/docs/assets"

_bearer = HTTPBearer(auto_error=False, description="MODELWARD_ADMIN_TOKEN or MODELWARD_PREDICT_TOKEN")


def policy_tokens(policy: Policy, *, admin_token: str | None, predict_token: str | None) -> list[bytes]:
    """The tokens that open a route of ``policy``; none: the route is open (``public``, and
    ``predict`` without a prediction token). The admin token opens every route."""
    if policy == "admin":
        return [admin_token.encode()] if admin_token else []
    if policy == "predict" and predict_token:
        return [t.encode() for t in (predict_token, admin_token) if t]
    return []


def bearer_matches(authorization: bytes | None, tokens: Sequence[bytes]) -> bool:
    """True when an ``Authorization`` header value is ``Bearer <one of tokens>`` (the scheme in any
    case; compared in constant time). Every path that checks a token calls this."""
    value = authorization or b""
    token = value[7:].strip() if value[:7].lower() == b"bearer " else b""
    return any(hmac.compare_digest(token, t) for t in tokens)


def guard(
    policy: Policy, *, admin_token: str | None, predict_token: str | None
) -> Callable[..., Awaitable[None]]:
    """A dependency enforcing ``policy`` with the configured tokens."""
    if policy not in POLICIES:
        raise ConfigError(f"unknown route policy {policy!r}")
    tokens = policy_tokens(policy, admin_token=admin_token, predict_token=predict_token)

    async def check(request: Request) -> None:
        if policy == "public":
            return
        if policy == "admin" and admin_token is None:
            raise HTTPException(
                403, "admin routes are disabled: start the server with MODELWARD_ADMIN_TOKEN set"
            )
        if not tokens:
            return
        given = request.headers.get("authorization")
        if not bearer_matches(given.encode("latin-1") if given is not None else None, tokens):
            raise HTTPException(
                401,
                f"{policy if policy == 'admin' else 'prediction'} token missing or wrong",
                headers={"WWW-Authenticate": "Bearer"},
            )

    if policy == "public":

        async def public(request: Request) -> None:
            return None

        return public

    # FastAPI reads the signature: binding the bearer scheme makes /docs show the lock. The header
    # itself is read by bearer_matches, as on the fast paths.
    async def with_bearer(
        request: Request,
        credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),  # noqa: B008
    ) -> None:
        await check(request)

    return with_bearer


def policy_of(route: Any) -> str | None:
    if isinstance(route, APIRoute):
        extra = route.openapi_extra or {}
        value = extra.get(AUTH_KEY)
        return str(value) if value in POLICIES else None
    if isinstance(route, Route) and route.path in FRAMEWORK_PUBLIC_PATHS:
        return "public"
    if isinstance(route, Mount) and route.path == DOCS_ASSETS:
        return "public"
    return None


def check_route_policies(app: FastAPI) -> dict[str, str]:
    """Every route's policy by ``METHODS path``; raises when a route declares none."""
    policies: dict[str, str] = {}
    missing: list[str] = []
    for route in app.routes:
        path = getattr(route, "path", repr(route))
        methods = ",".join(sorted(getattr(route, "methods", None) or {"*"}))
        policy = policy_of(route)
        if policy is None:
            missing.append(f"{methods} {path}")
        else:
            policies[f"{methods} {path}"] = policy
    if missing:
        raise ConfigError("routes without a declared auth policy: " + ", ".join(missing))
    return policies
