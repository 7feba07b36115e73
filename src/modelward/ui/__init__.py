"""The web dashboard: server-rendered pages with inline SVG charts under ``/ui``, mounted by the
server (:func:`add_ui_routes`) or served alone against a store (:func:`create_ui_app`,
``modelward ui``). Nothing is loaded from another host; see docs/dashboard.md."""

from __future__ import annotations

from modelward.ui.app import create_ui_app
from modelward.ui.routes import add_ui_routes

__all__ = ["add_ui_routes", "create_ui_app"]
