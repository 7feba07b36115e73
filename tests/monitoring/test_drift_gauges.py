"""Drift gauges: what update() sets is what a scrape shows, in one process and across workers.

Read back with prometheus_client's own text parser. Multiprocess mode is decided when
prometheus_client is first imported, so the multi-worker test runs each worker in a fresh interpreter.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelward.drift import DriftReport, build_profile, compare_profiles, compare_samples

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    from prometheus_client.parser import text_string_to_metric_families

    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def get(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def reports() -> tuple[DriftReport, DriftReport]:
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"age": rng.normal(40, 10, 8_000), "plan": rng.choice(["a", "b"], 8_000)})
    drifted = pd.DataFrame({"age": rng.normal(45, 10, 6_000), "plan": rng.choice(["a", "b"], 6_000)})
    same = pd.DataFrame({"age": rng.normal(40, 10, 6_000), "plan": rng.choice(["a", "b"], 6_000)})
    return compare_samples(ref, drifted), compare_samples(ref, same)


def test_update_sets_every_statistic_and_the_dataset_verdict() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from modelward.monitoring.drift_gauges import DriftGauges

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        pytest.skip("this test reads the in-process registry")
    drifted, same = reports()
    registry = CollectorRegistry()
    gauges = DriftGauges(registry)
    gauges.update("churn", "3", drifted)
    s = parse(generate_latest(registry).decode())
    age = drifted.feature("age")
    assert get(
        s, "modelward_drift_score", model="churn", version="3", feature="age", statistic="wasserstein"
    ) == (pytest.approx(age.scores["wasserstein"]))
    assert get(s, "modelward_drift_score", model="churn", version="3", feature="plan", statistic="psi") == (
        pytest.approx(drifted.feature("plan").scores["psi"])
    )
    scored = [k for k in s if k[0] == "modelward_drift_score"]
    assert len(scored) == sum(len(f.scores) for f in drifted.features)
    assert get(s, "modelward_dataset_drift", model="churn", version="3") == 1.0
    assert get(s, "modelward_drift_share", model="churn", version="3") == 0.5

    gauges.update("churn", "3", same)
    s = parse(generate_latest(registry).decode())
    assert get(s, "modelward_dataset_drift", model="churn", version="3") == 0.0
    assert get(s, "modelward_drift_share", model="churn", version="3") == 0.0
    assert (
        get(s, "modelward_drift_score", model="churn", version="3", feature="age", statistic="wasserstein")
        < 0.1
    )  # type: ignore[operator]


def test_prediction_outputs_are_gauged_and_stale_series_are_removed(churn_frame: pd.DataFrame) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from modelward.drift import profile_predictions
    from modelward.monitoring.drift_gauges import DriftGauges

    frame = churn_frame.drop(columns=["churn"])
    labels = churn_frame["churn"].to_numpy()
    reference = build_profile(frame).with_prediction(profile_predictions(labels, classes=[0, 1]))
    report = compare_profiles(reference, reference.observe(frame.iloc[:500], labels[:500]))
    registry = CollectorRegistry()
    gauges = DriftGauges(registry)
    gauges.update("churn", "1", report)
    s = parse(generate_latest(registry).decode())
    assert get(
        s, "modelward_drift_score", model="churn", version="1", feature="prediction", statistic="chi2"
    ) == (pytest.approx(report.prediction[0].scores["chi2"]))
    only_age = compare_samples(frame[["age"]], frame[["age"]].iloc[:100])
    gauges.update("churn", "1", only_age)
    s = parse(generate_latest(registry).decode())
    features = {dict(labels)["feature"] for (name, labels) in s if name == "modelward_drift_score"}
    assert features == {"age"}
    gauges.forget("churn", "1")
    s = parse(generate_latest(registry).decode())
    assert not [k for k in s if k[0].startswith(("modelward_drift", "modelward_dataset"))]


WORKER = textwrap.dedent(
    """
    import sys
    import pandas as pd
    from prometheus_client import CollectorRegistry
    from modelward.drift import compare_samples
    from modelward.monitoring.drift_gauges import DriftGauges

    shift = float(sys.argv[1])
    ref = pd.DataFrame({"x": [float(i % 100) for i in range(6000)], "y": [float(i % 7) for i in range(6000)]})
    cur = ref + shift
    DriftGauges(CollectorRegistry()).update("churn", "2", compare_samples(ref, cur))
    """
)

RENDER = textwrap.dedent(
    """
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    print(generate_latest(registry).decode())
    """
)


def test_workers_in_multiprocess_mode_show_the_most_recent_verdict(tmp_path: Path) -> None:
    directory = tmp_path / "prom"
    directory.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    for shift in ("50", "0"):  # a drifted verdict, then a stable one from another worker
        subprocess.run([sys.executable, "-c", WORKER, shift], env=env, check=True, timeout=120)
    out = subprocess.run(
        [sys.executable, "-c", RENDER], env=env, check=True, timeout=120, capture_output=True, text=True
    ).stdout
    s = parse(out)
    assert get(s, "modelward_dataset_drift", model="churn", version="2") == 0.0
    assert get(s, "modelward_drift_share", model="churn", version="2") == 0.0
    assert get(s, "modelward_drift_score", model="churn", version="2", feature="x", statistic="psi") == 0.0
    assert not [labels for (_, labels) in s if "pid" in dict(labels)]  # one series, not one per worker
