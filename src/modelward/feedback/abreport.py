"""A/B reports from served traffic: the prediction log joined with feedback, per arm, into ``analyze``.

:func:`ab_report` counts, per arm, the requests served and the outcomes their feedback gives for a
metric, and hands the counts to :func:`modelward.feedback.analyze`. Three metrics:

- ``correct``: binary, the logged prediction equals the label (1, "1", 1.0 and true compare equal);
- ``label``: binary, the label itself is the outcome (0/1 or true/false: a conversion);
- ``value``: continuous, the feedback's numeric value (revenue per request, say).

The sample ratio check runs on *served requests* (not labelled ones) against the configured
weights, so it catches routing problems and arms that fail more, whatever feedback arrives.
:func:`deployment_ab_report` reads the weights and the control arm from the model's deployment and
checks the split only over the time those weights have been in force (the current revision and
the revisions before it with the same shares), since a weight change makes earlier counts follow
other shares. See docs/ab-testing.md, "From served traffic".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from modelward.errors import NoExperiment, NoFeedback, UnknownArm  # importable here as before
from modelward.feedback._abquery import DEFAULT_ARM, METRICS, ArmCounts, Metric, gather, order_arms
from modelward.feedback._verdict import verdict
from modelward.feedback.abtest import ABReport, ABTestError, ArmData, analyze, check_sample_ratio
from modelward.registry.deployments import Deployment, Deployments
from modelward.store.store import Store

__all__ = [
    "METRICS",
    "ArmTraffic",
    "Metric",
    "NoExperiment",
    "NoFeedback",
    "TrafficReport",
    "UnknownArm",
    "ab_report",
    "deployment_ab_report",
    "traffic_report",
    "weights_since",
]

# How the verdict names each metric ("outcome" reads "converts better than").
_WORDING: dict[str, str] = {"correct": "accuracy", "label": "outcome", "value": "value"}
# Arm names that are the control when no deployment says which arm is (the first found wins).
_CONTROLS = ("baseline", "champion", "control", DEFAULT_ARM)


@dataclass(frozen=True, slots=True)
class ArmTraffic:
    """One arm's requests: answered, failed, served within the SRM window, labelled, usable."""

    name: str
    requests: int  # distinct request ids answered in the window (latest row; shadow excluded)
    errors: int  # of which the model raised
    served: int  # requests - errors
    srm_served: int  # served within the sample-ratio window
    labelled: int  # served requests with feedback
    n: int  # labelled requests whose feedback fits the metric (the analysis' sample size)
    excluded: int  # labelled - n: no numeric value, or a label that is not 0/1
    examples: tuple[str, ...] = ()  # a few of the excluded labels, as sent


@dataclass(frozen=True, slots=True)
class TrafficReport:
    """An :class:`ABReport` with the traffic it came from: windows, per-arm counts, deployment."""

    model: str
    metric: Metric
    control: str
    since: float | None  # outcome window [since, until), UNIX seconds; None: unbounded
    until: float | None
    srm_since: float | None  # start of the sample-ratio window (it ends at ``until``)
    traffic: tuple[ArmTraffic, ...]
    other_arms: dict[str, int]  # served by arms outside the experiment (not counted anywhere)
    report: ABReport
    revision: int | None = None  # the deployment revision whose weights were used
    strategy: str | None = None
    weights: dict[str, float] | None = None  # configured shares per arm

    def to_dict(self) -> dict[str, Any]:
        """Strict JSON types only; times as ISO-8601 UTC strings."""
        r = self.report.to_dict()
        summaries = {a["name"]: a for a in r["arms"]}
        srm_total = sum(t.srm_served for t in self.traffic)
        arms = []
        for t in self.traffic:
            s = summaries[t.name]
            arms.append(
                {
                    "name": t.name,
                    "requests": t.requests,
                    "errors": t.errors,
                    "served": t.served,
                    "srm_served": t.srm_served,
                    "labelled": t.labelled,
                    "n": t.n,
                    "excluded": t.excluded,
                    "mean": s["mean"],
                    "ci_low": s["ci_low"],
                    "ci_high": s["ci_high"],
                    "expected_share": s["expected_share"],
                    "served_share": t.srm_served / srm_total if srm_total else 0.0,
                    "labelled_share": s["observed_share"],
                }
            )
        deployment = None
        if self.revision is not None:
            deployment = {"revision": self.revision, "strategy": self.strategy, "weights": self.weights}
        return {
            "model": self.model,
            "metric": self.metric,
            "kind": r["kind"],
            "alpha": r["alpha"],
            "power": r["power"],
            "control": self.control,
            "window": {"since": _iso(self.since), "until": _iso(self.until)},
            "srm_window": {"since": _iso(self.srm_since), "until": _iso(self.until)},
            "deployment": deployment,
            "arms": arms,
            "other_arms": dict(self.other_arms),
            "comparisons": r["comparisons"],
            "srm": r["srm"],
            "verdict": r["verdict"],
        }


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _epoch(value: float | datetime | None, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return moment.timestamp()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ABTestError(f"{what} must be UNIX seconds or a datetime, got {value!r}")
    return float(value)


def _window_text(since: float | None, until: float | None) -> str:
    parts = []
    if since is not None:
        parts.append(f" since {_iso(since)}")
    if until is not None:
        parts.append(f" before {_iso(until)}")
    return "".join(parts)


def weights_since(history: Sequence[Deployment], revision: int | None = None) -> float | None:
    """When the shares of ``revision`` (default: the last one) came into force: the time of the
    earliest revision in the unbroken run of revisions with the same shares that ends at it."""
    runs = [d for d in history if revision is None or d.revision <= revision]
    if not runs:
        return None
    current = runs[-1].spec.policy().shares()
    start = runs[-1].updated_at
    for d in reversed(runs[:-1]):
        if d.spec.policy().shares() != current:
            break
        start = d.updated_at
    return start


def traffic_report(
    store: Store,
    model: str,
    *,
    metric: Metric = "correct",
    since: float | datetime | None = None,
    until: float | datetime | None = None,
    control: str | None = None,
    weights: Mapping[str, float] | None = None,
    arms: Sequence[str] | None = None,
    alpha: float = 0.05,
    srm_since: float | datetime | None = None,
) -> TrafficReport:
    """The report and the traffic behind it. Arms are ``arms``, else the keys of ``weights``, else
    every arm in the log (the control is then ``control``, else the first of baseline, champion,
    control, primary found, else the first by name). ``srm_since`` narrows the sample-ratio window."""
    if metric not in METRICS:
        raise ABTestError(f"unknown metric {metric!r}: use one of {', '.join(METRICS)}")
    start, end = _epoch(since, "since"), _epoch(until, "until")
    srm_start = _epoch(srm_since, "srm_since")
    if start is not None and end is not None and end <= start:
        raise ABTestError("until must be later than since")
    if srm_start is not None and start is not None:
        srm_start = max(srm_start, start)
    srm_start = start if srm_start is None else srm_start
    counts = gather(store, model, metric, since=start, until=end, srm_since=srm_start)
    window = _window_text(start, end)
    names = list(arms) if arms is not None else list(weights) if weights is not None else None
    if names is None:
        if not counts:
            raise NoExperiment(
                model, f"no A/B test to report: no predictions of '{model}' are logged{window}"
            )
        names = order_arms(list(counts), _CONTROLS)
        if len(names) < 2:
            raise NoExperiment(
                model,
                f"no A/B test to report: '{model}' has no A/B deployment and its predictions{window} "
                f"were all served by one arm ({names[0]})",
            )
    if control is not None and control not in names:
        raise UnknownArm(control, names)
    chosen = {name: counts.get(name, ArmCounts(name)) for name in names}
    others = {k: v.served for k, v in counts.items() if k not in chosen}
    _require_outcomes(model, metric, chosen, window)
    report = _analyze(chosen, metric, control or names[0], weights, alpha)
    traffic = tuple(
        ArmTraffic(
            a.name,
            a.requests,
            a.errors,
            a.served,
            a.srm_served,
            a.labelled,
            a.n,
            a.excluded,
            tuple(a.examples),
        )
        for a in chosen.values()
    )
    return TrafficReport(model, metric, control or names[0], start, end, srm_start, traffic, others, report)


def _require_outcomes(model: str, metric: Metric, arms: Mapping[str, ArmCounts], window: str) -> None:
    if any(a.n for a in arms.values()):
        return
    served = sum(a.served for a in arms.values())
    labelled = sum(a.labelled for a in arms.values())
    names = ", ".join(arms)
    if labelled == 0:
        raise NoFeedback(
            model,
            metric,
            f"no feedback yet for the {served:,} requests '{model}' served{window} (arms {names}): "
            "send ground truth by request id first",
        )
    examples = sorted({e for a in arms.values() for e in a.examples})[:3]
    like = f" (e.g. {', '.join(examples)})" if examples else ""
    need = (
        "a label of 0/1 or true/false (use metric 'correct' to score predictions against labels)"
        if metric == "label"
        else "a numeric value"
    )
    raise NoFeedback(
        model,
        metric,
        f"none of the {labelled:,} labels of '{model}'{window} fits metric '{metric}', which needs "
        f"{need}{like}",
    )


def _analyze(
    arms: Mapping[str, ArmCounts],
    metric: Metric,
    control: str,
    weights: Mapping[str, float] | None,
    alpha: float,
) -> ABReport:
    if metric == "value":
        data = [ArmData(a.name, a.n, total=a.total, total_sq=a.total_sq) for a in arms.values()]
    else:
        data = [ArmData(a.name, a.n, successes=a.successes) for a in arms.values()]
    wording = _WORDING[metric]
    report = analyze(data, control=control, metric=wording, alpha=alpha)
    if weights is None:
        return report
    unknown = sorted(set(weights) - set(arms))
    if unknown or set(arms) - set(weights):
        raise ABTestError(f"weights name arms {sorted(weights)} but the arms are {sorted(arms)}")
    total_w = sum(float(w) for w in weights.values())
    if total_w <= 0:
        raise ABTestError(f"traffic weights must not all be zero, got {dict(weights)}")
    live = {k: float(w) for k, w in weights.items() if w > 0}
    srm = None
    if len(live) >= 2:
        srm = check_sample_ratio({k: arms[k].srm_served for k in live}, live)
    summaries = tuple(replace(s, expected_share=float(weights[s.name]) / total_w) for s in report.arms)
    # The verdict's "traffic split is 52/48" describes what the check tested: served requests.
    srm_total = sum(a.srm_served for a in arms.values())
    served_view = [
        replace(s, observed_share=arms[s.name].srm_served / srm_total if srm_total else 0.0)
        for s in summaries
    ]
    text = verdict(report.kind, wording, report.alpha, report.power, served_view, report.comparisons, srm)
    return replace(report, arms=summaries, srm=srm, verdict=text)


def ab_report(
    store: Store,
    model: str,
    *,
    metric: Metric = "correct",
    since: float | datetime | None = None,
    until: float | datetime | None = None,
    control: str | None = None,
    weights: Mapping[str, float] | None = None,
    alpha: float = 0.05,
    srm_since: float | datetime | None = None,
) -> ABReport:
    """Per-arm outcomes of ``model`` for ``metric`` in ``[since, until)``, analysed.

    With ``weights`` (the configured split, any positive scale; its keys are the arms) the sample
    ratio check compares the requests served per arm from ``srm_since`` (default ``since``) on
    with them. Raises :class:`NoExperiment`, :class:`NoFeedback` or :class:`UnknownArm`."""
    return traffic_report(
        store,
        model,
        metric=metric,
        since=since,
        until=until,
        control=control,
        weights=weights,
        alpha=alpha,
        srm_since=srm_since,
    ).report


def deployment_ab_report(
    store: Store,
    model: str,
    *,
    metric: Metric = "correct",
    since: float | datetime | None = None,
    until: float | datetime | None = None,
    control: str | None = None,
    alpha: float = 0.05,
    deployments: Deployments | None = None,
) -> TrafficReport:
    """:func:`traffic_report` with the arms, configured shares and control (its first arm: the
    champion or baseline) of the model's A/B or canary deployment. The sample-ratio window starts
    when those shares came into force (:func:`weights_since`). Without such a deployment the arms
    come from the log and there is no sample-ratio check."""
    deployments = deployments or Deployments(store)
    current = deployments.get(model)
    if current is None or current.spec.strategy == "single":
        return traffic_report(
            store, model, metric=metric, since=since, until=until, control=control, alpha=alpha
        )
    spec = current.spec
    shares = spec.policy().shares()
    started = weights_since(deployments.history(model), current.revision)
    result = traffic_report(
        store,
        model,
        metric=metric,
        since=since,
        until=until,
        control=control or spec.arms[0].name,
        weights=shares,
        arms=[a.name for a in spec.arms],
        alpha=alpha,
        srm_since=started if started is not None else current.updated_at,
    )
    return replace(result, revision=current.revision, strategy=spec.strategy, weights=shares)
