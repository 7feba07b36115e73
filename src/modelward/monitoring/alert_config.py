"""The alerts file: rules, notifiers, cool-down and resolve time, in YAML or JSON.

Every key is checked, and an error names the entry it is about (``rules[2] ('auc-floor')``). Without
a file, :func:`default_alert_config` applies: the log notifier and three rules (dataset drift; an
error rate above 5% on at least 100 requests; a p95 latency above 500 ms on at least 20 requests).
In a file, a missing ``rules`` or ``notifiers`` key means those defaults; an empty list means none.
The format, with a complete example, is in ``docs/alerts.md``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError

from modelward.durations import duration_seconds, format_duration
from modelward.errors import ConfigError
from modelward.monitoring.alert_rules import (
    RULE_TYPES,
    AlertRule,
    DatasetDriftRule,
    ErrorRateRule,
    LatencyRule,
    PerformanceRule,
    RuleSet,
    parse_condition,
)
from modelward.monitoring.alerts import DEFAULT_COOLDOWN, DEFAULT_RESOLVE_AFTER, AlertCenter
from modelward.monitoring.notifiers import LogNotifier, Notifier, WebhookNotifier
from modelward.monitoring.webhook_guard import UnsafeWebhookTarget
from modelward.store.store import Store

__all__ = [
    "DEFAULT_RULES",
    "DEFAULT_WINDOW",
    "AlertConfig",
    "default_alert_config",
    "format_duration",
    "load_alert_config",
    "parse_duration",
]

DEFAULT_RULES: tuple[AlertRule, ...] = (
    DatasetDriftRule(),
    ErrorRateRule(max_rate=0.05, min_requests=100),
    LatencyRule(p95_ms=500.0, min_requests=20),
)
_TOP_KEYS = ("rules", "notifiers", "cooldown", "resolve_after", "window")
DEFAULT_WINDOW = 3600.0
_NOTIFIER_KEYS: dict[str, tuple[str, ...]] = {
    "log": ("type", "name", "logger"),
    "webhook": (
        "type",
        "name",
        "url",
        "url_file",
        "allow_private",
        "allowed_hosts",
        "timeout",
        "max_redirects",
    ),
}


def parse_duration(value: object, what: str) -> float:
    """Seconds from a number or a text such as ``90s``, ``15m``, ``1h``, ``2d``."""
    seconds = duration_seconds(value)
    if seconds is None:
        if isinstance(value, bool | int | float):
            raise ConfigError(f"{what}: {value!r} must be a finite duration >= 0")
        raise ConfigError(f"{what}: cannot read {value!r} as a duration (use seconds or 30s, 15m, 1h, 1d)")
    return seconds


def _window(value: object) -> float:
    """A window of data to judge: a duration > 0."""
    seconds = parse_duration(value, "window")
    if seconds <= 0:
        raise ConfigError(f"window: {value!r} must be a duration > 0")
    return seconds


@dataclass(frozen=True, slots=True)
class AlertConfig:
    """Rules and notifiers, with the alert center's timings; ``source`` is the file (None: defaults).
    ``window``: the seconds of data a rule without a ``window`` of its own judges (the monitor's)."""

    rules: RuleSet
    notifiers: tuple[Notifier, ...]
    cooldown: float = DEFAULT_COOLDOWN
    resolve_after: float = DEFAULT_RESOLVE_AFTER
    source: Path | None = None
    window: float = DEFAULT_WINDOW

    def center(self, store: Store, *, clock: Callable[[], float] | None = None) -> AlertCenter:
        """An :class:`AlertCenter` on ``store`` with these notifiers and timings."""
        kwargs: dict[str, Any] = {} if clock is None else {"clock": clock}
        return AlertCenter(
            store, self.notifiers, cooldown=self.cooldown, resolve_after=self.resolve_after, **kwargs
        )

    def describe(self) -> dict[str, Any]:
        """A JSON-able summary (no secrets: notifiers by name only)."""
        return {
            "source": str(self.source) if self.source else None,
            "cooldown": self.cooldown,
            "resolve_after": self.resolve_after,
            "window": self.window,
            "notifiers": [n.name for n in self.notifiers],
            "rules": [
                {
                    "name": r.name,
                    "kind": r.kind,
                    "models": list(r.models),
                    "severity": r.severity,
                    "condition": r.describe(),
                    "window": self.window if r.window is None else r.window,
                }
                for r in self.rules.rules
            ],
        }


def default_alert_config() -> AlertConfig:
    """The log notifier and :data:`DEFAULT_RULES`."""
    return AlertConfig(RuleSet(DEFAULT_RULES), (LogNotifier(),))


def _entry_name(index: int, entry: Mapping[str, Any], kind: str) -> str:
    name = entry.get("name")
    return f"{kind}[{index}]" + (f" ({name!r})" if isinstance(name, str) and name else "")


def _pydantic_problem(exc: ValidationError) -> str:
    first = exc.errors()[0]
    message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    where = ".".join(str(part) for part in first.get("loc", ()))
    return f"{where}: {message}" if where else message


def _rule(index: int, entry: object) -> AlertRule:
    if not isinstance(entry, Mapping):
        raise ConfigError(f"rules[{index}]: expected a mapping with a 'kind', got {type(entry).__name__}")
    label = _entry_name(index, entry, "rules")
    kind = entry.get("kind")
    if kind not in RULE_TYPES:
        raise ConfigError(f"{label}: 'kind' must be one of {', '.join(RULE_TYPES)}, got {kind!r}")
    cls = RULE_TYPES[str(kind)]
    values = {str(k): v for k, v in entry.items() if k != "kind"}
    if cls is PerformanceRule and "when" in values:
        when = values.pop("when")
        clash = sorted({"metric", "op", "threshold"} & set(values))
        if clash:
            raise ConfigError(f"{label}: give either 'when' or {', '.join(clash)}, not both")
        try:
            values["metric"], values["op"], values["threshold"] = parse_condition(str(when))
        except ConfigError as exc:
            raise ConfigError(f"{label}: {exc}") from exc
    allowed = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        extra = ", when" if cls is PerformanceRule else ""
        raise ConfigError(
            f"{label}: unknown key(s) {', '.join(unknown)} for a {kind} rule "
            f"(allowed: kind, {', '.join(allowed)}{extra})"
        )
    if isinstance(values.get("models"), str):
        values["models"] = [values["models"]]
    try:
        if "window" in values:
            values["window"] = _window(values["window"])
        return TypeAdapter(cls).validate_python(values)
    except ValidationError as exc:
        raise ConfigError(f"{label}: {_pydantic_problem(exc)}") from exc
    except ConfigError as exc:
        raise ConfigError(f"{label}: {exc}") from exc


def _notifier(index: int, entry: object, base: Path, allow_private: bool) -> Notifier:
    if not isinstance(entry, Mapping):
        raise ConfigError(f"notifiers[{index}]: expected a mapping with a 'type', got {type(entry).__name__}")
    label = _entry_name(index, entry, "notifiers")
    kind = entry.get("type")
    if kind not in _NOTIFIER_KEYS:
        raise ConfigError(f"{label}: 'type' must be one of {', '.join(_NOTIFIER_KEYS)}, got {kind!r}")
    unknown = sorted(set(map(str, entry)) - set(_NOTIFIER_KEYS[str(kind)]))
    if unknown:
        raise ConfigError(
            f"{label}: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(_NOTIFIER_KEYS[str(kind)])})"
        )
    name = entry.get("name")
    if name is not None and not (isinstance(name, str) and name):
        raise ConfigError(f"{label}: 'name' must be a non-empty string")
    if kind == "log":
        return LogNotifier(str(entry.get("logger", "modelward.alerts")), name=name or "log")
    return _webhook(label, entry, base, allow_private, name)


def _webhook(
    label: str, entry: Mapping[str, Any], base: Path, allow_private: bool, name: str | None
) -> Notifier:
    url, url_file = entry.get("url"), entry.get("url_file")
    if (url is None) == (url_file is None):
        raise ConfigError(f"{label}: give exactly one of 'url' and 'url_file'")
    if url_file is not None:
        path = Path(str(url_file)).expanduser()
        path = path if path.is_absolute() else base / path
        try:
            url = path.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{label}: cannot read url_file {str(path)!r}: {exc.strerror or exc}") from exc
    if not isinstance(url, str) or not url:
        raise ConfigError(f"{label}: 'url' must be a non-empty string")
    hosts = entry.get("allowed_hosts", ())
    if isinstance(hosts, str):
        hosts = [hosts]
    if not isinstance(hosts, Sequence) or not all(isinstance(h, str) for h in hosts):
        raise ConfigError(f"{label}: 'allowed_hosts' must be a list of host names, addresses or networks")
    private = entry.get("allow_private", allow_private)
    timeout = entry.get("timeout", 5.0)
    redirects = entry.get("max_redirects", 3)
    if not isinstance(private, bool):
        raise ConfigError(f"{label}: 'allow_private' must be true or false")
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 60:
        raise ConfigError(f"{label}: 'timeout' must be a number of seconds in (0, 60]")
    if isinstance(redirects, bool) or not isinstance(redirects, int) or not 0 <= redirects <= 10:
        raise ConfigError(f"{label}: 'max_redirects' must be an integer from 0 to 10")
    try:
        return WebhookNotifier(
            url,
            allow_private=private,
            allowed_hosts=tuple(hosts),
            timeout=float(timeout),
            name=name,
            max_redirects=redirects,
        )
    except UnsafeWebhookTarget as exc:
        raise ConfigError(f"{label}: {exc}") from exc


def _read(path: Path) -> Any:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read the alerts file {str(path)!r}: {exc.strerror or exc}") from exc
    try:
        return json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(
            f"the alerts file {str(path)!r} is not valid {path.suffix.lstrip('.') or 'YAML'}: {exc}"
        ) from exc


def load_alert_config(path: str | Path | None, *, allow_private: bool = False) -> AlertConfig:
    """The alerts file at ``path`` (YAML, or JSON when it ends in ``.json``), or the defaults for None.

    ``allow_private`` is the default of every webhook's own ``allow_private`` (the
    ``MODELWARD_ALERTS_ALLOW_PRIVATE`` setting). Raises :class:`ConfigError` naming the bad entry.
    """
    if path is None:
        return default_alert_config()
    source = Path(path).expanduser()
    data = _read(source)
    where = f"alerts file {str(source)!r}"
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping with rules and notifiers, got {type(data).__name__}")
    unknown = sorted(set(map(str, data)) - set(_TOP_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(_TOP_KEYS)})")
    try:
        cooldown = parse_duration(data.get("cooldown", DEFAULT_COOLDOWN), "cooldown")
        resolve_after = parse_duration(data.get("resolve_after", DEFAULT_RESOLVE_AFTER), "resolve_after")
        window = _window(data.get("window", DEFAULT_WINDOW))
        rules_data, notifiers_data = data.get("rules"), data.get("notifiers")
        for key, value in (("rules", rules_data), ("notifiers", notifiers_data)):
            if value is not None and not isinstance(value, list):
                raise ConfigError(f"'{key}' must be a list")
        rules = DEFAULT_RULES if rules_data is None else tuple(_rule(i, e) for i, e in enumerate(rules_data))
        notifiers: tuple[Notifier, ...] = (
            (LogNotifier(),)
            if notifiers_data is None
            else tuple(_notifier(i, e, source.parent, allow_private) for i, e in enumerate(notifiers_data))
        )
        names = [n.name for n in notifiers]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ConfigError(f"two notifiers are named {', '.join(twice)}; give each a unique 'name'")
        return AlertConfig(RuleSet(rules), notifiers, cooldown, resolve_after, source, window)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
