"""Serving metrics: what is observed is what a scrape shows, with one process or several workers.

Every exposition is read back with prometheus_client's own text parser. prometheus_client picks its
single- or multi-process mode once, when it is first imported, so this module imports it (and
``modelward.monitoring.metrics``) only inside functions: the spawned workers below import this module
by name and must set ``PROMETHEUS_MULTIPROC_DIR`` before prometheus_client is loaded.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

if TYPE_CHECKING:
    from modelward.monitoring.metrics import ServingMetrics

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _new_metrics() -> ServingMetrics:
    from modelward.monitoring.metrics import ServingMetrics

    return ServingMetrics()


def _parse(body: bytes | str) -> Samples:
    from prometheus_client.parser import text_string_to_metric_families

    text = body.decode() if isinstance(body, bytes) else body
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _scrape(metrics: ServingMetrics) -> Samples:
    return _parse(metrics.render()[0])


def _get(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def _named(samples: Samples, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {labels: value for (sample, labels), value in samples.items() if sample == name}


def test_request_counters_and_latency_histograms_reflect_what_was_observed() -> None:
    m = _new_metrics()
    for _ in range(5):
        m.observe_request(model="churn", version="3", endpoint="predict", status=200, seconds=0.003, rows=10)
    for _ in range(2):
        m.observe_request(model="churn", version="3", endpoint="predict", status=422, seconds=0.2)
    m.observe_inference(model="churn", version="3", seconds=0.0007)
    s = _scrape(m)

    req = "modelward_requests_total"
    assert _get(s, req, model="churn", version="3", endpoint="predict", status="200") == 5
    assert _get(s, req, model="churn", version="3", endpoint="predict", status="422") == 2
    assert len(_named(s, req)) == 2

    lat = "modelward_request_duration_seconds"
    buckets = {
        dict(labels)["le"]: value
        for labels, value in _named(s, f"{lat}_bucket").items()
        if dict(labels)["endpoint"] == "predict"
    }
    assert buckets["0.0025"] == 0
    assert buckets["0.005"] == 5  # cumulative: every bucket counts what is at or below its bound
    assert buckets["0.1"] == 5
    assert buckets["0.25"] == 7
    assert buckets["+Inf"] == 7
    assert len(buckets) == 15  # 14 bounds and +Inf
    assert _get(s, f"{lat}_count", model="churn", endpoint="predict") == 7
    assert _get(s, f"{lat}_sum", model="churn", endpoint="predict") == pytest.approx(5 * 0.003 + 2 * 0.2)

    rows = "modelward_rows_per_request"
    assert _get(s, f"{rows}_count", model="churn") == 5  # the 422s carried no rows
    assert _get(s, f"{rows}_bucket", model="churn", le="5.0") == 0
    assert _get(s, f"{rows}_bucket", model="churn", le="10.0") == 5
    assert _get(s, f"{rows}_sum", model="churn") == 50

    inf = "modelward_inference_duration_seconds"
    assert _get(s, f"{inf}_bucket", model="churn", version="3", le="0.0005") == 0
    assert _get(s, f"{inf}_bucket", model="churn", version="3", le="0.001") == 1
    assert _get(s, f"{inf}_count", model="churn", version="3") == 1


def test_predicted_classes_are_counted_per_class_and_scores_fill_their_buckets() -> None:
    from modelward.monitoring.metrics import SCORE_BUCKETS

    assert len(SCORE_BUCKETS) == 20
    assert SCORE_BUCKETS[0] == 0.05
    assert SCORE_BUCKETS[-1] == 1.0
    m = _new_metrics()
    m.observe_predictions(
        model="churn",
        version="3",
        labels=np.array(["0", "1", "1"]),
        scores=np.array([0.02, 0.5, 0.51, 0.97, math.nan]),
    )
    m.observe_predictions(model="churn", version="3", labels=np.array([1, 1]))  # ints count as "1"
    s = _scrape(m)

    pred = "modelward_predictions_total"
    assert _get(s, pred, model="churn", version="3", **{"class": "0"}) == 1
    assert _get(s, pred, model="churn", version="3", **{"class": "1"}) == 4
    assert len(_named(s, pred)) == 2

    score = "modelward_prediction_score"

    def bucket(le: str) -> float | None:
        return _get(s, f"{score}_bucket", model="churn", version="3", le=le)

    assert bucket("0.05") == 1
    assert bucket("0.45") == 1
    assert bucket("0.5") == 2  # bounds are inclusive
    assert bucket("0.55") == 3
    assert bucket("0.95") == 3
    assert bucket("1.0") == 4
    assert bucket("+Inf") == 4
    assert _get(s, f"{score}_count", model="churn", version="3") == 4  # NaN left out
    assert _get(s, f"{score}_sum", model="churn", version="3") == pytest.approx(0.02 + 0.5 + 0.51 + 0.97)


def test_regression_values_use_the_default_buckets() -> None:
    m = _new_metrics()
    m.observe_predictions(model="price", version="1", values=np.array([-3.0, 0.02, 12.0, math.inf]))
    s = _scrape(m)
    value = "modelward_prediction_value"
    assert _get(s, f"{value}_bucket", model="price", version="1", le="0.005") == 1
    assert _get(s, f"{value}_bucket", model="price", version="1", le="0.025") == 2
    assert _get(s, f"{value}_bucket", model="price", version="1", le="10.0") == 2
    assert _get(s, f"{value}_count", model="price", version="1") == 3
    assert _get(s, f"{value}_sum", model="price", version="1") == pytest.approx(9.02)
    assert _named(s, "modelward_predictions_total") == {}


def test_a_probability_matrix_is_refused_as_scores_but_multi_output_values_are_observed() -> None:
    m = _new_metrics()
    with pytest.raises(ValueError, match="1-D"):
        m.observe_predictions(
            model="churn", version="3", labels=np.array(["1", "0"]), scores=np.array([[0.2, 0.8], [0.6, 0.4]])
        )
    m.observe_predictions(model="price", version="1", values=np.array([[1.0, 2.0], [3.0, 4.0]]))
    s = _scrape(m)
    assert _get(s, "modelward_prediction_value_count", model="price", version="1") == 4
    assert _named(s, "modelward_prediction_score_count") == {}  # the refused call recorded nothing
    assert _named(s, "modelward_predictions_total") == {}


def test_set_model_flips_info_from_the_old_version_to_the_new_one() -> None:
    m = _new_metrics()
    m.set_model(model="churn", version="3", alias="champion")
    m.set_model(model="fraud", version="7", alias=None)
    s = _scrape(m)
    info = "modelward_model_info"
    assert _get(s, info, model="churn", version="3", alias="champion") == 1
    assert _get(s, info, model="fraud", version="7", alias="") == 1

    m.set_model(model="churn", version="4", alias="champion", previous_version="3", previous_alias="champion")
    s = _scrape(m)
    assert _get(s, info, model="churn", version="3", alias="champion") == 0
    assert _get(s, info, model="churn", version="4", alias="champion") == 1
    assert _get(s, info, model="fraud", version="7", alias="") == 1

    # Re-announcing the served labels as both previous and new keeps them at 1.
    m.set_model(model="churn", version="4", alias="champion", previous_version="4", previous_alias="champion")
    assert _get(_scrape(m), info, model="churn", version="4", alias="champion") == 1


def test_in_flight_counts_the_enclosed_block_even_when_it_raises() -> None:
    m = _new_metrics()
    name = "modelward_in_flight_requests"
    with m.in_flight("churn"), m.in_flight("churn"):
        assert _get(_scrape(m), name, model="churn") == 2
    assert _get(_scrape(m), name, model="churn") == 0
    with pytest.raises(RuntimeError), m.in_flight("churn"):
        raise RuntimeError("inference failed")
    assert _get(_scrape(m), name, model="churn") == 0


def test_readiness_reload_failures_load_times_and_prediction_log_counters() -> None:
    m = _new_metrics()
    m.set_ready("churn", False)
    assert _get(_scrape(m), "modelward_model_ready", model="churn") == 0
    m.set_ready("churn", True)
    m.reload_failed("churn")
    m.reload_failed("churn")
    m.observe_load("churn", 1.7)
    m.log_produced(10)
    m.log_written(7)
    m.log_dropped(3)
    s = _scrape(m)
    assert _get(s, "modelward_model_ready", model="churn") == 1
    assert _get(s, "modelward_model_reload_failures_total", model="churn") == 2
    assert _get(s, "modelward_model_load_seconds_bucket", model="churn", le="1.0") == 0
    assert _get(s, "modelward_model_load_seconds_bucket", model="churn", le="2.5") == 1
    assert _get(s, "modelward_model_load_seconds_bucket", model="churn", le="60.0") == 1
    assert _get(s, "modelward_prediction_log_produced_total") == 10
    assert _get(s, "modelward_prediction_log_written_total") == 7
    assert _get(s, "modelward_prediction_log_dropped_total") == 3


def test_metrics_objects_with_separate_registries_share_no_values() -> None:
    from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

    from modelward.monitoring.metrics import ServingMetrics

    a, b = ServingMetrics(), ServingMetrics()
    a.observe_request(model="churn", version="3", endpoint="predict", status=200, seconds=0.01)
    a.log_produced(5)
    sa, sb = _scrape(a), _scrape(b)
    assert _get(sa, "modelward_requests_total", model="churn", version="3", endpoint="predict", status="200")
    assert _named(sb, "modelward_requests_total") == {}
    assert _get(sa, "modelward_prediction_log_produced_total") == 5
    assert _get(sb, "modelward_prediction_log_produced_total") == 0

    registry = CollectorRegistry()
    given = ServingMetrics(registry)
    assert given.registry is registry
    given.log_written(2)
    assert _get(_parse(generate_latest(registry)), "modelward_prediction_log_written_total") == 2
    with pytest.raises(ValueError, match="Duplicated"):
        ServingMetrics(registry)
    assert b"modelward_" not in generate_latest(REGISTRY)  # the global default registry stays untouched


def test_render_answers_in_the_prometheus_text_format() -> None:
    m = _new_metrics()
    m.observe_request(model="churn", version="3", endpoint="v2_infer", status=200, seconds=0.01)
    body, content_type = m.render()
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    assert isinstance(body, bytes)
    assert b"# TYPE modelward_requests_total counter" in body
    assert (
        _get(
            _parse(body),
            "modelward_requests_total",
            model="churn",
            version="3",
            endpoint="v2_infer",
            status="200",
        )
        == 1
    )


def test_prepare_multiprocess_dir_creates_the_directory_or_empties_it_of_db_files(tmp_path: Path) -> None:
    from modelward.monitoring.metrics import prepare_multiprocess_dir

    fresh = tmp_path / "a" / "b"
    prepare_multiprocess_dir(fresh)
    assert fresh.is_dir()
    (fresh / "counter_123.db").write_bytes(b"x")
    (fresh / "gauge_livesum_123.db").write_bytes(b"x")
    (fresh / "README").write_text("kept")
    prepare_multiprocess_dir(str(fresh))
    assert sorted(p.name for p in fresh.iterdir()) == ["README"]


def test_outside_multiprocess_mode_the_helpers_are_harmless(monkeypatch: pytest.MonkeyPatch) -> None:
    from modelward.monitoring.metrics import mark_worker_dead, multiprocess_dir

    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    assert multiprocess_dir() is None
    mark_worker_dead(os.getpid())
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "")
    assert multiprocess_dir() is None


def test_setting_the_directory_after_prometheus_client_was_imported_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from modelward.errors import ConfigError
    from modelward.monitoring.metrics import ServingMetrics

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    with pytest.raises(ConfigError, match="before"):
        ServingMetrics()


def test_bulk_observation_gives_the_exposition_of_one_observation_at_a_time() -> None:
    from modelward.monitoring.metrics import LATENCY_BUCKETS, SCORE_BUCKETS, observe_many

    rng = np.random.default_rng(11)
    values = np.concatenate(
        [
            rng.exponential(0.02, 2_000),
            np.asarray(LATENCY_BUCKETS),  # exactly on every bound: the bound's own bucket
            np.asarray(SCORE_BUCKETS),
            [0.0, 50.0, 1e9, -1.0],  # zero, beyond the last bound (+Inf), negative
        ]
    )
    one, bulk = _new_metrics(), _new_metrics()
    child_one = one._child(one._request_seconds, "churn", "predict")
    child_bulk = bulk._child(bulk._request_seconds, "churn", "predict")
    for v in values.tolist():
        child_one.observe(v)
    observe_many(child_bulk, values[:1000])  # an array
    for start in range(1000, len(values), 20):  # lists of a few values (the server's common case)
        observe_many(child_bulk, values[start : start + 20].tolist())
    observe_many(child_bulk, [])
    a, b = (
        _named(_scrape(one), "modelward_request_duration_seconds_bucket"),
        _named(_scrape(bulk), "modelward_request_duration_seconds_bucket"),
    )
    assert a == b and len(a) == len(LATENCY_BUCKETS) + 1
    sum_one = _get(_scrape(one), "modelward_request_duration_seconds_sum", model="churn", endpoint="predict")
    sum_bulk = _get(
        _scrape(bulk), "modelward_request_duration_seconds_sum", model="churn", endpoint="predict"
    )
    assert sum_bulk == pytest.approx(sum_one, rel=1e-12)


def test_requests_counted_in_bulk_equal_requests_counted_one_by_one() -> None:
    one, bulk = _new_metrics(), _new_metrics()
    entries = []
    for i in range(300):
        status, seconds, rows = (200 if i % 7 else 422), 0.0001 * (i % 50), (i % 9) + 1
        one.observe_request(
            model="churn", version="3", endpoint="predict", status=status, seconds=seconds, rows=rows
        )
        entries.append(("churn", "3", "predict", status, [seconds], [rows]))
    for _ in range(3):  # several requests in one entry, as the server answers them together
        one_batch = [0.002] * 100
        for s in one_batch:
            one.observe_request(model="churn", version="4", endpoint="predict", status=200, seconds=s, rows=1)
        entries.append(("churn", "4", "predict", 200, one_batch, [1] * 100))
    bulk.observe_requests(entries)
    drop = {"modelward_request_duration_seconds_sum", "modelward_rows_per_request_sum"}
    a = {k: v for k, v in _scrape(one).items() if not k[0].endswith("_created") and k[0] not in drop}
    b = {k: v for k, v in _scrape(bulk).items() if not k[0].endswith("_created") and k[0] not in drop}
    assert a == b


# -- several worker processes ---------------------------------------------------------------------

REQUESTS_PER_WORKER = 100


def _worker(directory: str, role: str, results: mp.Queue) -> None:  # type: ignore[type-arg]
    """A uvicorn-like worker: serves 100 requests, then dies (os._exit) with requests in flight."""
    try:
        assert "prometheus_client" not in sys.modules, "prometheus_client was imported too early"
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
        from modelward.monitoring.metrics import ServingMetrics

        m = ServingMetrics()
        for i in range(REQUESTS_PER_WORKER):
            status = 422 if i % 10 == 0 else 200
            m.observe_request(
                model="churn", version="3", endpoint="predict", status=status, seconds=0.01, rows=4
            )
        m.set_model(model="churn", version="3", alias="champion")
        m.log_produced(3)
        held = ExitStack()
        if role == "old":  # still warming up, still on version 3, two requests in flight
            m.set_ready("churn", False)
            held.enter_context(m.in_flight("churn"))
            held.enter_context(m.in_flight("churn"))
        else:  # reloaded to version 4, ready, one request done and one in flight
            m.set_model(
                model="churn", version="4", alias="champion", previous_version="3", previous_alias="champion"
            )
            m.set_ready("churn", True)
            with m.in_flight("churn"):
                pass
            held.enter_context(m.in_flight("churn"))
        results.put((role, "ok"))
    except BaseException as exc:
        results.put((role, f"{type(exc).__name__}: {exc}"))
    results.close()
    results.join_thread()
    os._exit(0)  # like a killed worker: the held in-flight blocks never exit


def _renderer(directory: str, dead_pid: int, results: mp.Queue) -> None:  # type: ignore[type-arg]
    """The process answering /metrics: renders, marks the old worker dead, renders again."""
    try:
        assert "prometheus_client" not in sys.modules, "prometheus_client was imported too early"
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
        from modelward.monitoring.metrics import ServingMetrics, mark_worker_dead

        m = ServingMetrics()
        before, content_type = m.render()
        mark_worker_dead(dead_pid)
        after, _ = m.render()
        results.put(("render", (before.decode(), after.decode(), content_type)))
    except BaseException as exc:
        results.put(("render", f"{type(exc).__name__}: {exc}"))


def _collect(results: mp.Queue, n: int) -> dict[str, Any]:  # type: ignore[type-arg]
    got = dict(results.get(timeout=120) for _ in range(n))
    assert len(got) == n
    return got


def test_several_worker_processes_aggregate_into_one_correct_exposition(tmp_path: Path) -> None:
    from modelward.monitoring.metrics import prepare_multiprocess_dir

    directory = tmp_path / "prom"
    prepare_multiprocess_dir(directory)
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    workers = {
        role: ctx.Process(target=_worker, args=(str(directory), role, results)) for role in ("old", "new")
    }
    for p in workers.values():
        p.start()
    assert _collect(results, 2) == {"old": "ok", "new": "ok"}
    for p in workers.values():
        p.join(timeout=60)
        assert p.exitcode == 0
    old_pid, new_pid = workers["old"].pid, workers["new"].pid
    assert old_pid is not None
    assert new_pid is not None
    assert (directory / f"gauge_livesum_{old_pid}.db").exists()

    renderer = ctx.Process(target=_renderer, args=(str(directory), old_pid, results))
    renderer.start()
    rendered = _collect(results, 1)["render"]
    renderer.join(timeout=60)
    assert not isinstance(rendered, str), rendered
    before_text, after_text, content_type = rendered
    assert content_type.startswith("text/plain; version=0.0.4")

    before, after = _parse(before_text), _parse(after_text)
    req = "modelward_requests_total"
    for s in (before, after):  # counters and histograms keep a dead worker's counts
        assert sum(_named(s, req).values()) == 2 * REQUESTS_PER_WORKER
        assert _get(s, req, model="churn", version="3", endpoint="predict", status="200") == 180
        assert _get(s, req, model="churn", version="3", endpoint="predict", status="422") == 20
        assert _get(s, "modelward_request_duration_seconds_count", model="churn", endpoint="predict") == 200
        assert _get(s, "modelward_rows_per_request_bucket", model="churn", le="5.0") == 200
        assert _get(s, "modelward_rows_per_request_sum", model="churn") == 800
        assert _get(s, "modelward_prediction_log_produced_total") == 6
        assert all("pid" not in dict(labels) for (_, labels) in s)  # live gauges are aggregated

    info, ready, flight = "modelward_model_info", "modelward_model_ready", "modelward_in_flight_requests"
    # Both alive: in-flight summed (2 + 1); version 3 still served by the old worker (max);
    # not ready, because one live worker is not (min).
    assert _get(before, flight, model="churn") == 3
    assert _get(before, info, model="churn", version="3", alias="champion") == 1
    assert _get(before, info, model="churn", version="4", alias="champion") == 1
    assert _get(before, ready, model="churn") == 0
    # The old worker marked dead: its live gauges vanish.
    assert _get(after, flight, model="churn") == 1
    assert _get(after, info, model="churn", version="3", alias="champion") == 0
    assert _get(after, info, model="churn", version="4", alias="champion") == 1
    assert _get(after, ready, model="churn") == 1
    assert not list(directory.glob(f"gauge_live*_{old_pid}.db"))
    assert (directory / f"counter_{old_pid}.db").exists()
    assert (directory / f"gauge_livesum_{new_pid}.db").exists()
