"""A version the client names (``/v2/models/{name}/versions/{v}/...``, ``/models/{name}/versions/{v}/
predict``): the loaded version that answers it, or why none does.

Every version the server holds loaded for the model answers: its live arms' and its shadow's (an
arm at weight 0 is not loaded). Any other version gets :class:`~modelward.errors.VersionNotServed`
(404), which says whether the registry has it ("registered but not loaded by this server") or not,
and which versions are loaded; a model the server does not serve gets
:class:`~modelward.errors.ModelNotServed`.
"""

from __future__ import annotations

import logging

from starlette.concurrency import run_in_threadpool

from modelward.errors import VersionNotServed
from modelward.serving.models import ModelManager, Routing, Served

__all__ = ["loaded_versions", "named_version"]

log = logging.getLogger("modelward.serving")


def _order(version: str) -> tuple[int, int | str]:
    return (0, int(version)) if version.isdigit() else (1, version)


def loaded_versions(routing: Routing) -> list[str]:
    """The versions ``routing`` holds loaded, in version order."""
    return sorted({s.version for s in routing.served_versions()}, key=_order)


async def named_version(manager: ModelManager, name: str, version: str) -> tuple[Routing, Served]:
    """The routing of ``name`` and its loaded ``version``; raises ModelNotServed, ModelLoading (503
    while the model loads) or VersionNotServed."""
    routing = manager.routing(name)
    served = routing.loaded(version)
    if served is not None:
        return routing, served
    registered: bool | None
    try:
        known = [v.version for v in await run_in_threadpool(manager.registry.versions, name)]
        registered = version in known
    except Exception as exc:  # the registry unreachable: still say what is loaded here
        log.warning("listing the versions of %s failed: %s", name, exc)
        known, registered = [], None
    raise VersionNotServed(name, version, registered=registered, loaded=loaded_versions(routing), known=known)
