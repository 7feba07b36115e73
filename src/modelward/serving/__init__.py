"""The inference server: FastAPI app factory, routes, auth, problem+json errors.

The only package that imports FastAPI. Its modules are imported when first used: ``modelward serve``
opens its port with the protocol and the start-up app alone, and builds the FastAPI app after.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelward._lazy import lazy_exports

if TYPE_CHECKING:
    from modelward.serving.app import create_app, create_app_from_env

__all__ = ["create_app", "create_app_from_env"]

__getattr__, __dir__ = lazy_exports(__name__, {"app": ("create_app", "create_app_from_env")})
