"""The inference server: FastAPI app factory, routes, auth, problem+json errors.

The only package that imports FastAPI.
"""

from __future__ import annotations

from modelward.serving.app import create_app, create_app_from_env

__all__ = ["create_app", "create_app_from_env"]
