"""What the server's HTTP protocol (:mod:`modelward.serving.protocol`) relies on in uvicorn beyond
its documented API (``Config(http=...)``).

uvicorn documents passing a protocol class; the class itself is not public API. The names below are
everything of HttpToolsProtocol's the protocol reads, writes, overrides or calls, checked against the
installed uvicorn by tests/serving/test_uvicorn_internals.py; pyproject pins the range those tests
passed on.
"""

from __future__ import annotations

__all__ = ["UVICORN_ATTRIBUTES", "UVICORN_HELPERS", "UVICORN_METHODS", "UVICORN_REPLACED", "UVICORN_TESTED"]

UVICORN_TESTED = ">=0.45,<0.56"
UVICORN_ATTRIBUTES = (
    "app",
    "client",
    "connections",
    "cycle",
    "expect_100_continue",
    "flow",
    "headers",
    "limit_concurrency",
    "loop",
    "parser",
    "pipeline",
    "root_path",
    "server_state",
    "transport",
    "url",
    "ws_protocol_class",
)
UVICORN_METHODS: dict[str, tuple[str, ...]] = {  # name -> parameters after self
    "__init__": ("config", "server_state", "app_state", "_loop"),
    "connection_made": ("transport",),
    "connection_lost": ("exc",),
    "on_message_begin": (),
    "on_header": ("name", "value"),
    "on_headers_complete": (),
    "on_body": ("body",),
    "on_message_complete": (),
    "on_response_complete": (),
    "shutdown": (),
}
# on_response_complete is replaced for a connection with nothing pipelined (one timer per idle
# period instead of uvicorn's two timer calls per request) and called for the rest: a change to it
# must be reviewed here. The fingerprints of its source (comments and docstring aside) on the tested
# versions:
UVICORN_REPLACED = {"on_response_complete": frozenset({"3b835da51ff0"})}
# Beyond the protocol class: what is read or called on its helpers, and on the server (``modelward
# serve`` stops it with should_exit when the app it builds after the port opens cannot be built).
UVICORN_HELPERS = {
    "uvicorn.protocols.http.flow_control:FlowControl": ("resume_reading",),
    "uvicorn.server:Server": ("should_exit",),
    "uvicorn.server:ServerState": ("connections", "default_headers", "total_requests"),
}
