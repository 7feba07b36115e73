"""The PII check of a registration: the training data is scanned before the version is made, a
finding is a warning (the default) or a refusal, and the scan is kept with the version (report kind
``pii``) for ``modelward show`` and the model card.

What happens is decided by the setting ``MODELWARD_PII_ON_REGISTER`` (``warn``, ``refuse``, ``off``)
and the model's policy (its top-level ``pii`` key: ``pii: refuse``): the stricter of the two wins,
and a policy's ``pii: off`` does not turn off a scan the setting asks for. The registry sits below
this module, so the API and the CLI call :func:`check_training_data` before registering and
:func:`record_check` after.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from modelward.errors import ConfigError, RegistrationError
from modelward.governance.pii import ScanReport, scan_file, scan_frame
from modelward.governance.reports import VersionReports

if TYPE_CHECKING:
    import pandas as pd

    from modelward.store import Store

__all__ = [
    "PiiCheck",
    "check_training_data",
    "pii_mode",
    "record_check",
    "show_line",
    "stored_check",
]

PiiMode = Literal["warn", "refuse", "off"]
_STRICTNESS: dict[str, int] = {"off": 0, "warn": 1, "refuse": 2}
REPORT_KIND = "pii"


@dataclass(frozen=True, slots=True)
class PiiCheck:
    mode: PiiMode
    decided_by: str  # "setting" or "policy"
    report: ScanReport

    def summary(self) -> str:
        """``"email 120 (column email), card 3 (column note)"`` or ``"none found"``."""
        parts = []
        for c in self.report.columns:
            if c.counts:
                parts += [f"{kind} {n} (column {c.column})" for kind, n in c.counts.items()]
            else:
                parts.append(f"column {c.column} (its name says {c.hint})")
        return ", ".join(parts) or "none found"

    def body(self) -> dict[str, Any]:
        return {"mode": self.mode, "decided_by": self.decided_by, **self.report.to_dict()}


def _policy_mode(store: Store, model: str) -> PiiMode | None:
    import yaml

    stored = VersionReports(store).policy(model)
    if stored is None:
        return None
    try:
        body = yaml.safe_load(stored.body)
    except yaml.YAMLError as exc:
        raise ConfigError(f"the policy of model {model!r} is not valid YAML: {exc}") from exc
    value = body.get("pii") if isinstance(body, dict) else None
    if value is None:
        return None
    if value is False:  # YAML reads a bare `off` as false
        value = "off"
    if value not in _STRICTNESS:
        raise ConfigError(f"the policy of model {model!r} says pii: {value!r}; use warn, refuse or off")
    return cast(PiiMode, value)


def pii_mode(store: Store, model: str, setting: PiiMode) -> tuple[PiiMode, str]:
    """The stricter of the setting and the model's policy, and which one decided."""
    policy = _policy_mode(store, model)
    if policy is not None and _STRICTNESS[policy] > _STRICTNESS[setting]:
        return policy, "policy"
    return setting, "setting"


def check_training_data(
    store: Store,
    model: str,
    data: pd.DataFrame | str | os.PathLike[str],
    *,
    setting: PiiMode = "warn",
    warn: bool = True,
) -> PiiCheck | None:
    """Scan ``data`` as registering ``model`` asks; None when the check is off.

    Raises :class:`RegistrationError` when PII is found and the mode is ``refuse``; issues a
    ``UserWarning`` when found in ``warn`` mode (unless ``warn=False``: the CLI prints it)."""
    import pandas as pd

    mode, decided_by = pii_mode(store, model, setting)
    if mode == "off":
        return None
    if isinstance(data, pd.DataFrame):
        report = scan_frame(data)
    else:
        path = Path(data)
        if not path.is_file() or path.suffix.lower() not in {".csv", ".parquet", ".pq"}:
            return None  # registration itself says what is wrong with the file
        report = scan_file(path)
    check = PiiCheck(mode, decided_by, report)
    if report.found and mode == "refuse":
        why = "its policy says pii: refuse" if decided_by == "policy" else "MODELWARD_PII_ON_REGISTER=refuse"
        raise RegistrationError(
            f"not registering {model}: the training data holds personal data ({check.summary()}) and {why}; "
            "remove or redact it (`modelward pii scan FILE` shows where)"
        )
    if report.found and warn:
        warnings.warn(warning_text(model, check), UserWarning, stacklevel=2)
    return check


def warning_text(model: str, check: PiiCheck) -> str:
    return f"the training data of {model} holds personal data: {check.summary()}"


def record_check(store: Store, model: str, version: str, check: PiiCheck, *, actor: str) -> None:
    VersionReports(store).save(model, version, REPORT_KIND, check.body(), actor=actor)


def stored_check(store: Store, model: str, version: str) -> dict[str, Any] | None:
    """The version's newest PII report body, or None when it was registered without a check."""
    report = VersionReports(store).latest(model, version, REPORT_KIND)
    return report.body if report is not None else None


def show_line(body: dict[str, Any] | None, data: str = "training data") -> str:
    """One line for ``modelward show``; ``data`` names what was scanned (a federated model's reference
    sample, its training data being on the nodes)."""
    if body is None:
        return "not checked at registration"
    if not body.get("found"):
        return f"none found in the {data} ({body.get('rows', 0)} rows scanned)"
    totals = ", ".join(f"{kind} {n}" for kind, n in body.get("totals", {}).items())
    columns = ", ".join(c["column"] for c in body.get("columns", []))
    return f"found in the {data}: {totals} (columns {columns}); registered with a warning"
