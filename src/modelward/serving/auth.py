"""Route auth policies. Every route declares one; the app refuses to start with a route that does not.

- ``public``: health, readiness, metrics, API docs.
- ``predict``: prediction routes; open unless ``MODELWARD_PREDICT_TOKEN`` is set.
- ``admin``: reload (and later deploy/promote); needs ``MODELWARD_ADMIN_TOKEN``, and is refused
  outright when no admin token is configured.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from fastapi import Depends, FastAPI, Request
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException
from starlette.routing import Route

from modelward.errors import ConfigError

__all__ = [
    "AUTH_KEY",
    "FRAMEWORK_PUBLIC_PATHS",
    "Policy",
    "check_route_policies",
    "guard",
    "is_loopback",
    "policy_of",
]

Policy = Literal["public", "predict", "admin"]
POLICIES: frozenset[str] = frozenset({"public", "predict", "admin"})
AUTH_KEY = "x-modelward-auth"

# Routes FastAPI adds itself (documentation); they carry no secrets.
FRAMEWORK_PUBLIC_PATHS = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})

_bearer = HTTPBearer(auto_error=False, description="MODELWARD_ADMIN_TOKEN or MODELWARD_PREDICT_TOKEN")


def _matches(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def guard(
    policy: Policy, *, admin_token: str | None, predict_token: str | None
) -> Callable[..., Awaitable[None]]:
    """A dependency enforcing ``policy`` with the configured tokens."""
    if policy not in POLICIES:
        raise ConfigError(f"unknown route policy {policy!r}")

    async def check(request: Request, credentials: HTTPAuthorizationCredentials | None = None) -> None:
        if policy == "public":
            return
        token = credentials.credentials if credentials is not None else None
        if policy == "admin":
            if admin_token is None:
                raise HTTPException(
                    403, "admin routes are disabled: start the server with MODELWARD_ADMIN_TOKEN set"
                )
            if not _matches(token, admin_token):
                raise HTTPException(
                    401, "admin token missing or wrong", headers={"WWW-Authenticate": "Bearer"}
                )
            return
        if predict_token is not None and not (
            _matches(token, predict_token) or _matches(token, admin_token or "")
        ):
            raise HTTPException(
                401, "prediction token missing or wrong", headers={"WWW-Authenticate": "Bearer"}
            )

    if policy == "public":

        async def public(request: Request) -> None:
            return None

        return public

    # FastAPI reads the signature: binding the bearer scheme makes /docs show the lock.
    async def with_bearer(
        request: Request,
        credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),  # noqa: B008
    ) -> None:
        await check(request, credentials)

    return with_bearer


def policy_of(route: Any) -> str | None:
    if isinstance(route, APIRoute):
        extra = route.openapi_extra or {}
        value = extra.get(AUTH_KEY)
        return str(value) if value in POLICIES else None
    if isinstance(route, Route) and route.path in FRAMEWORK_PUBLIC_PATHS:
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


def is_loopback(host: str) -> bool:
    if host in {"localhost", "ip6-localhost"}:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
