"""Gated promotion: the gates run before an alias moves, and a refusal can only be overridden on the
record.

:func:`promote_gated` validates the version (:func:`modelward.governance.gates.validate`) and calls the
raw :meth:`Registry.promote <modelward.registry.Registry.promote>` only when every gate passes. A failure
moves nothing: the answer is ``refused`` (:meth:`GatedPromotion.refusal` names the failing gates, and
:meth:`GatedPromotion.raise_if_refused` raises :class:`~modelward.errors.LifecycleError` with it) and a
``promote_refused`` event goes to the audit chain; ``force=True`` with a ``reason`` promotes anyway, and the
promote event then carries ``override: true``, the reason, the actor and every gate's result. The
CLI, the top-level API, the admin HTTP route and the controller's canary promotion all come here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from modelward.errors import ConfigError, LifecycleError
from modelward.governance.gate_result import Validation
from modelward.governance.gates import validate
from modelward.governance.policy import GatePolicy
from modelward.registry import DEFAULT_ALIAS, Registry, VersionInfo

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["GatedPromotion", "promote_gated", "refresh_card_after"]


@dataclass(frozen=True, slots=True)
class GatedPromotion:
    """What a gated promotion did: ``info`` is the promoted version, None when it was refused."""

    info: VersionInfo | None
    alias: str
    validation: Validation
    forced: bool
    card_error: str | None = None  # the model card could not be regenerated (the alias moved anyway)

    @property
    def refused(self) -> bool:
        return self.info is None

    def refusal(self) -> str:
        gates = "; ".join(f"{g.name}: {g.reason or g.describe()}" for g in self.validation.failing)
        return (
            f"refusing to promote {self.validation.ref} to {self.alias}: it failed "
            f"{len(self.validation.failing)} gate(s): {gates} (--force --reason '...' overrides, audited)"
        )

    def raise_if_refused(self) -> VersionInfo:
        """The promoted version; LifecycleError naming the failing gates when it was refused."""
        if self.info is None:
            raise LifecycleError(self.refusal())
        return self.info


def promote_gated(
    registry: Registry,
    name: str,
    version: str | int,
    alias: str = DEFAULT_ALIAS,
    *,
    reason: str | None = None,
    force: bool = False,
    data: pd.DataFrame | str | os.PathLike[str] | None = None,
    label: str | None = None,
    policy: GatePolicy | None = None,
    compile: bool = True,
    cache_dir: Path | None = None,
) -> GatedPromotion:
    """Run ``name:version``'s gates against the champion, then move ``alias`` if they pass (or if
    ``force`` and a ``reason`` are given: the override is audited with the gate results). A refusal
    is returned, not raised: see :meth:`GatedPromotion.raise_if_refused`."""
    if force and not (reason and reason.strip()):
        raise ConfigError("--force needs --reason: an override is kept in the audit trail with its reason")
    refusal = registry.promotion_refusal(name, version)
    if refusal is not None:  # archived, or not pinned in this home: no gate could change that
        raise LifecycleError(refusal)
    validation = validate(
        registry,
        f"{name}:{version}",
        against=DEFAULT_ALIAS,
        data=data,
        label=label,
        policy=policy,
        compile=compile,
        cache_dir=cache_dir,
    )
    summary = validation.summary()
    failing = validation.failing
    if failing and not force:
        payload = {"alias": alias, "reason": reason, "validation": summary}
        registry.audit.append("promote_refused", validation.ref, payload, actor=registry.actor)
        return GatedPromotion(None, alias, validation, forced=False)
    detail = {"validation": summary, "override": bool(failing)}
    info = registry.promote(name, version, alias, reason=reason, detail=detail)
    return GatedPromotion(
        info, alias, validation, forced=bool(failing), card_error=refresh_card_after(registry, info)
    )


def refresh_card_after(registry: Registry, info: VersionInfo) -> str | None:
    """Regenerate the model card of the version an alias now points at. The alias has moved already, so
    a card that cannot be built is logged and returned (the reason), never raised."""
    import logging

    from modelward.errors import ModelwardError
    from modelward.governance.card import refresh_card

    try:
        refresh_card(registry, registry.store, info.name, info.version, registry.actor)
    except ModelwardError as exc:
        logging.getLogger(__name__).warning("the model card of %s was not refreshed: %s", info.ref, exc)
        return str(exc)
    return None
