"""Deployment specs: which versions of a model get which traffic. Pure: no I/O.

A :class:`DeploymentSpec` names a strategy and its arms:

- ``single``: one arm, ``primary``, serving a target (by default ``@champion``).
- ``ab``: two or more arms with weights, sticky per routing key (``modelward deploy churn --ab
  champion=50 challenger=50 --key customer_id``).
- ``canary``: arms ``baseline`` (``@champion``) and ``canary`` (a version) whose weight walks through
  the :class:`CanaryPlan`'s steps; the controller advances, promotes or rolls it back.

Any of them may add a ``shadow`` target that receives a copy of the traffic off the hot path.

A *target* is a version number (``"3"``) or an alias (``"@challenger"``); servers resolve aliases
when they load the spec, so an alias move reaches every arm that names it. Specs serialise to plain
JSON (:meth:`DeploymentSpec.to_dict`), which is what the store keeps, versioned.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import pairwise
from typing import Any, Literal, cast

from modelward.durations import duration_seconds
from modelward.routing.policy import Arm, RoutingError, SplitPolicy

__all__ = [
    "CANARY_STATES",
    "DIRECT_ARM",
    "SHADOW_ARM",
    "STRATEGIES",
    "CanaryPlan",
    "CanaryRules",
    "DeploymentSpec",
    "arm_name_for",
    "normalize_target",
    "parse_duration",
]

Strategy = Literal["single", "ab", "canary"]
CanaryState = Literal["running", "paused", "promoted", "rolled_back"]
STRATEGIES: tuple[Strategy, ...] = ("single", "ab", "canary")
CANARY_STATES: tuple[CanaryState, ...] = ("running", "paused", "promoted", "rolled_back")
SHADOW_ARM = "shadow"
# The arm logged for a request that named its version (``/v2/models/{name}/versions/{v}/infer``):
# the deployment did not route it, so it counts for no arm of an experiment.
DIRECT_ARM = "direct"
_ARM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
_KEY_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,127}$")


def parse_duration(text: str | float | int) -> float:
    """Seconds from ``"10m"``, ``"90s"``, ``"1.5h"``, ``"2d"``, ``"250ms"`` or a plain number of seconds."""
    seconds = duration_seconds(text)
    if seconds is None and not isinstance(text, bool | int | float):
        raise RoutingError(f"invalid duration {text!r}: use a number with s, m, h or d (e.g. '10m')")
    if not seconds:
        if isinstance(text, bool):
            raise RoutingError(f"a duration is a number of seconds or text like '10m', not {text!r}")
        raise RoutingError(f"a duration must be positive, got {text!r}")
    return seconds


def normalize_target(target: str | int) -> str:
    """``"3"`` / ``3`` / ``"v3"`` -> ``"3"``; ``"@champion"`` / ``"champion"`` -> ``"@champion"``."""
    text = str(target).strip()
    if not text:
        raise RoutingError("an empty target: name a version (3) or an alias (@champion)")
    if text.startswith("@"):
        alias = text[1:]
    elif text.isdigit():
        return str(int(text))
    elif len(text) > 1 and text[0] in "vV" and text[1:].isdigit():
        return str(int(text[1:]))
    else:
        alias = text
    if not alias or not _ARM_NAME.match(alias):
        raise RoutingError(f"invalid target {target!r}: name a version (3) or an alias (@champion)")
    return "@" + alias


def arm_name_for(target: str) -> str:
    """The arm name a target gets when the user does not name it: the alias, or ``v<version>``."""
    t = normalize_target(target)
    return t[1:] if t.startswith("@") else f"v{t}"


def _fraction(value: float, what: str, *, upper: float | None = 1.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise RoutingError(f"{what} must be a finite number >= 0, got {value!r}")
    if upper is not None and value > upper:
        raise RoutingError(f"{what} must be at most {upper}, got {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class CanaryRules:
    """When the controller rolls a canary back, holds it, or lets it advance (docs/routing.md).

    Rates are fractions (0.05 is 5 %). The canary is rolled back as soon as its error rate is, with
    95 % confidence, above ``max_error_rate`` and above the baseline's by ``max_error_rate_increase``
    (so a clearly failing canary is stopped long before the step ends); the latency, divergence and
    performance checks need ``min_requests`` (``min_labels``) per arm in the step's window. A step
    advances once its duration has passed and every check with enough data passes.
    """

    max_error_rate: float = 0.05
    max_error_rate_increase: float = 0.02
    max_latency_p95_ratio: float = 1.5
    max_latency_p99_ratio: float = 2.0
    latency_slack_ms: float = 5.0  # latency ratios are ignored while both arms are this fast
    max_divergence: float = 0.2  # Jensen-Shannon distance between the arms' prediction distributions
    max_performance_drop: float = 0.05  # baseline metric minus canary metric, when labels exist
    metric: str = "accuracy"  # or "roc_auc", "f1", "rmse", "mae", ...
    min_requests: int = 50
    min_labels: int = 50

    def __post_init__(self) -> None:
        for name in ("max_error_rate", "max_error_rate_increase", "max_divergence", "max_performance_drop"):
            _fraction(getattr(self, name), name)
        for name in ("max_latency_p95_ratio", "max_latency_p99_ratio", "latency_slack_ms"):
            _fraction(getattr(self, name), name, upper=None)
        for name in ("min_requests", "min_labels"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise RoutingError(f"{name} must be an integer >= 1, got {value!r}")
        if not isinstance(self.metric, str) or not self.metric:
            raise RoutingError(f"metric must be a metric name, got {self.metric!r}")

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CanaryRules:
        unknown = sorted(set(d) - set(cls.__dataclass_fields__))
        if unknown:
            raise RoutingError(f"unknown canary rule(s): {', '.join(unknown)}")
        return cls(**dict(d))


@dataclass(frozen=True, slots=True)
class CanaryPlan:
    """A canary's walk: traffic percentages per step, how long each step lasts, where it stands."""

    version: str
    steps: tuple[float, ...] = (5.0, 25.0, 50.0, 100.0)
    step_seconds: float = 600.0
    baseline: str = "@champion"
    step: int = 0
    step_started_at: float | None = None  # UNIX seconds; None until the spec is first stored
    state: CanaryState = "running"
    reason: str | None = None  # why it was promoted or rolled back
    rules: CanaryRules = field(default_factory=CanaryRules)

    def __post_init__(self) -> None:
        object.__setattr__(self, "version", normalize_target(self.version))
        if self.version.startswith("@"):
            raise RoutingError(f"a canary names a version, not an alias ({self.version})")
        object.__setattr__(self, "baseline", normalize_target(self.baseline))
        steps = tuple(self.steps)
        if not steps:
            raise RoutingError("a canary needs at least one step (e.g. 5,25,50,100)")
        for s in steps:
            if isinstance(s, bool) or not isinstance(s, int | float) or not 0 < s <= 100:
                raise RoutingError(f"canary steps are percentages in (0, 100], got {s!r}")
        if any(b <= a for a, b in pairwise(steps)):
            raise RoutingError(f"canary steps must increase, got {', '.join(map(_pct, steps))}")
        object.__setattr__(self, "steps", tuple(float(s) for s in steps))
        object.__setattr__(self, "step_seconds", parse_duration(self.step_seconds))
        if isinstance(self.step, bool) or not isinstance(self.step, int) or not 0 <= self.step < len(steps):
            raise RoutingError(f"canary step {self.step!r} is not an index into {len(steps)} steps")
        if self.state not in CANARY_STATES:
            raise RoutingError(f"canary state {self.state!r} is not one of {', '.join(CANARY_STATES)}")

    @property
    def percent(self) -> float:
        """The canary's share of traffic now, in percent (0 once rolled back)."""
        return 0.0 if self.state == "rolled_back" else self.steps[self.step]

    @property
    def last_step(self) -> bool:
        return self.step == len(self.steps) - 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "steps": list(self.steps),
            "step_seconds": self.step_seconds,
            "baseline": self.baseline,
            "step": self.step,
            "step_started_at": self.step_started_at,
            "state": self.state,
            "reason": self.reason,
            "rules": self.rules.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CanaryPlan:
        known = {"version", "steps", "step_seconds", "baseline", "step", "step_started_at", "state", "reason"}
        unknown = sorted(set(d) - known - {"rules"})
        if unknown:
            raise RoutingError(f"unknown canary field(s): {', '.join(unknown)}")
        args = {k: v for k, v in d.items() if k in known}
        if "steps" in args:
            args["steps"] = tuple(args["steps"])
        return cls(**args, rules=CanaryRules.from_dict(d.get("rules") or {}))


def _pct(x: float) -> str:
    return f"{x:g}"


@dataclass(frozen=True, slots=True)
class DeploymentSpec:
    """Traffic of one model: its arms (name, target, weight), routing key, salt, shadow, canary."""

    model: str
    strategy: Strategy
    arms: tuple[Arm, ...]
    key: str | None = None  # a request field holding the routing key (else the body's key / header)
    salt: str = ""
    shadow: str | None = None  # a target mirrored off the hot path
    shadow_rate: float = 1.0  # share of requests mirrored to the shadow
    canary: CanaryPlan | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model:
            raise RoutingError("a deployment needs a model name")
        if self.strategy not in STRATEGIES:
            raise RoutingError(f"strategy {self.strategy!r} is not one of {', '.join(STRATEGIES)}")
        arms = tuple(
            replace(a, target=normalize_target(a.target)) if isinstance(a, Arm) else a for a in self.arms
        )
        object.__setattr__(self, "arms", arms)
        for arm in arms:
            if not isinstance(arm, Arm):
                raise RoutingError(f"arms must be Arm objects, got {arm!r}")
            if not _ARM_NAME.match(arm.name) or arm.name in (SHADOW_ARM, DIRECT_ARM):
                raise RoutingError(
                    f"invalid arm name {arm.name!r}: letters, digits, '.', '_', '-' "
                    f"(and not '{SHADOW_ARM}' or '{DIRECT_ARM}', which the server logs itself)"
                )
        self.policy()  # validates names, weights
        if self.strategy == "single" and len(arms) != 1:
            raise RoutingError("a single deployment has exactly one arm")
        if self.strategy == "ab" and len(arms) < 2:
            raise RoutingError("an A/B test needs at least two arms")
        if self.strategy == "canary":
            if self.canary is None:
                raise RoutingError("a canary deployment needs a canary plan")
            if sorted(a.name for a in arms) != ["baseline", "canary"]:
                raise RoutingError("a canary deployment has the arms 'baseline' and 'canary'")
        elif self.canary is not None:
            raise RoutingError(f"a {self.strategy} deployment has no canary plan")
        if self.key is not None and (not isinstance(self.key, str) or not _KEY_FIELD.match(self.key)):
            raise RoutingError(f"invalid routing key field {self.key!r}")
        if not isinstance(self.salt, str):
            raise RoutingError("the salt must be a string")
        if self.shadow is not None:
            object.__setattr__(self, "shadow", normalize_target(self.shadow))
        object.__setattr__(self, "shadow_rate", _fraction(self.shadow_rate, "shadow_rate"))

    # -- builders ---------------------------------------------------------------------------------

    @classmethod
    def single(cls, model: str, target: str = "@champion", **kw: Any) -> DeploymentSpec:
        return cls(model, "single", (Arm("primary", target, 1.0),), **kw)

    @classmethod
    def ab(
        cls, model: str, weights: Mapping[str, float] | Sequence[tuple[str, float]], **kw: Any
    ) -> DeploymentSpec:
        """Arms from ``{"champion": 50, "challenger": 50}`` or ``{"1": 30, "2": 70}``: each key is a
        target (alias or version) and names its arm (``champion``, ``v1``)."""
        pairs = list(weights.items()) if isinstance(weights, Mapping) else list(weights)
        arms = tuple(Arm(arm_name_for(t), normalize_target(t), w) for t, w in pairs)
        return cls(model, "ab", arms, **kw)

    @classmethod
    def start_canary(
        cls,
        model: str,
        version: str | int,
        *,
        steps: Sequence[float] = (5, 25, 50, 100),
        step_seconds: float | str = 600.0,
        baseline: str = "@champion",
        rules: CanaryRules | None = None,
        **kw: Any,
    ) -> DeploymentSpec:
        plan = CanaryPlan(
            str(version), tuple(steps), parse_duration(step_seconds), baseline, rules=rules or CanaryRules()
        )
        return cls(model, "canary", _canary_arms(plan), canary=plan, **kw)

    def with_canary(self, plan: CanaryPlan) -> DeploymentSpec:
        """This canary deployment with ``plan`` (a step, a rollback), arms re-weighted to match."""
        if self.strategy != "canary":
            raise RoutingError(f"{self.model} is not running a canary")
        return replace(self, arms=_canary_arms(plan), canary=plan)

    def with_shadow(self, target: str | None, rate: float = 1.0) -> DeploymentSpec:
        return replace(self, shadow=target, shadow_rate=rate)

    # -- reading ----------------------------------------------------------------------------------

    def policy(self) -> SplitPolicy:
        return SplitPolicy(self.arms, self.salt)

    def arm(self, name: str) -> Arm:
        for arm in self.arms:
            if arm.name == name:
                return arm
        raise RoutingError(f"{self.model} has no arm named {name!r}")

    @property
    def primary(self) -> Arm:
        """The arm that answers what routing cannot (describes the model): ``baseline`` for a canary,
        else the heaviest arm (the first of equals)."""
        if self.strategy == "canary":
            return self.arm("baseline")
        return max(self.arms, key=lambda a: a.weight)

    def targets(self) -> list[str]:
        """Every target that must be loaded: live arms, then the shadow."""
        out = [a.target for a in self.arms if a.weight > 0]
        if self.shadow is not None:
            out.append(self.shadow)
        return list(dict.fromkeys(out))

    def describe(self) -> str:
        # "@champion:90" would read as a version: a single arm is its target, arms are shares.
        total = sum(a.weight for a in self.arms)
        if len(self.arms) == 1 or total <= 0:
            parts = [f"{a.name}={a.target}" for a in self.arms]
        else:
            parts = [f"{a.name}={a.target} {100 * a.weight / total:.3g}%" for a in self.arms]
        text = f"{self.strategy} {' '.join(parts)}"
        if self.key:
            text += f" key={self.key}"
        if self.shadow:
            text += f" shadow={self.shadow}"
            if self.shadow_rate < 1:
                text += f" ({self.shadow_rate:.0%})"
        if self.canary is not None:
            c = self.canary
            text += f" step {c.step + 1}/{len(c.steps)} ({c.percent:g}%) {c.state}"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "strategy": self.strategy,
            "arms": [{"name": a.name, "target": a.target, "weight": a.weight} for a in self.arms],
            "key": self.key,
            "salt": self.salt,
            "shadow": self.shadow,
            "shadow_rate": self.shadow_rate,
            "canary": self.canary.to_dict() if self.canary is not None else None,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, model: str | None = None) -> DeploymentSpec:
        """A spec from its JSON form; ``model`` fills (or must equal) the model name."""
        if not isinstance(d, Mapping):
            raise RoutingError("a deployment spec is a JSON object")
        known = {"model", "strategy", "arms", "key", "salt", "shadow", "shadow_rate", "canary"}
        unknown = sorted(set(d) - known)
        if unknown:
            raise RoutingError(f"unknown deployment field(s): {', '.join(unknown)}")
        name = d.get("model", model)
        if model is not None and name != model:
            raise RoutingError(f"the spec is for model {name!r}, not {model!r}")
        raw_arms = d.get("arms")
        strategy = cast("Strategy", d.get("strategy", "single"))
        canary = CanaryPlan.from_dict(d["canary"]) if d.get("canary") is not None else None
        if strategy == "canary" and canary is not None and not raw_arms:
            arms: tuple[Arm, ...] = _canary_arms(canary)
        else:
            if not isinstance(raw_arms, list) or not raw_arms:
                raise RoutingError("a deployment spec needs 'arms': a list of {name, target, weight}")
            arms = tuple(_arm(a) for a in raw_arms)
        return cls(
            str(name or ""),
            strategy,
            arms,
            key=d.get("key"),
            salt=d.get("salt", "") or "",
            shadow=d.get("shadow"),
            shadow_rate=d.get("shadow_rate", 1.0),
            canary=canary,
        )


def _arm(d: object) -> Arm:
    if not isinstance(d, Mapping):
        raise RoutingError(f"an arm is an object with name, target and weight, got {d!r}")
    unknown = sorted(set(d) - {"name", "target", "weight"})
    if unknown:
        raise RoutingError(f"unknown arm field(s): {', '.join(unknown)}")
    target = d.get("target")
    if target is None:
        raise RoutingError(f"arm {d.get('name')!r} needs a target")
    name = d.get("name") or arm_name_for(str(target))
    return Arm(str(name), normalize_target(str(target)), d.get("weight", 1.0))


def _canary_arms(plan: CanaryPlan) -> tuple[Arm, ...]:
    pct = plan.percent
    return (Arm("baseline", plan.baseline, 100.0 - pct), Arm("canary", plan.version, pct))
