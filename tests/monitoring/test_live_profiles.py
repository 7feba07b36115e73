"""Live profiles: served batches counted per time bucket, flushed per writer, merged into windows."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import create_engine, select, text

from modelward.drift import DatasetProfile, build_profile, profile_predictions
from modelward.monitoring.live_drift import window_profile
from modelward.monitoring.live_profiles import LiveProfiler
from modelward.store import Store, live_profiles

STRINGS = ("geography", "gender")


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def columns_of(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """What validation hands the server: float64 with NaN for numbers, object str/None for strings."""
    out: dict[str, np.ndarray] = {}
    for name in frame.columns:
        s = frame[name]
        if name in STRINGS:
            out[name] = np.asarray([None if pd.isna(v) else str(v) for v in s], dtype=object)
        else:
            out[name] = s.to_numpy(dtype=np.float64, na_value=np.nan)
    return out


@pytest.fixture(scope="module")
def data(churn_frame: pd.DataFrame) -> dict[str, Any]:
    frame = churn_frame.drop(columns=["churn"]).reset_index(drop=True)
    rng = np.random.default_rng(3)
    probabilities = rng.dirichlet([2.0, 5.0], len(frame))
    labels = np.asarray([1 if p > 0.5 else 0 for p in probabilities[:, 1]], dtype=object)
    train = frame.iloc[:1_000]
    reference = build_profile(train).with_prediction(
        profile_predictions(labels[:1_000], probabilities[:1_000], [0, 1])
    )
    live = frame.iloc[1_000:].reset_index(drop=True).copy()
    live.loc[:40, "age"] = np.nan
    live.loc[41:45, "balance"] = np.inf
    live.loc[46:60, "geography"] = "Italy"  # outside the reference's categories
    live.loc[61:70, "gender"] = None
    return {
        "reference": reference,
        "live": live,
        "labels": labels[1_000:],
        "probabilities": probabilities[1_000:],
    }


def assert_same_counts(got: DatasetProfile, expected: DatasetProfile) -> None:
    assert got.n_rows == expected.n_rows
    for name, want in expected.features.items():
        have = got.features[name].to_dict()
        for key, value in want.to_dict().items():
            if key in ("total", "total_sq"):
                assert have[key] == pytest.approx(value, rel=1e-9), (name, key)
            else:
                assert have[key] == value, (name, key)
    assert got.prediction is not None and expected.prediction is not None
    assert got.prediction.labels == expected.prediction.labels
    assert got.prediction.scores is not None and expected.prediction.scores is not None
    assert got.prediction.scores.counts == expected.prediction.scores.counts


def test_buckets_merged_across_two_writers_equal_one_profile_of_all_rows(
    store: Store, data: dict[str, Any]
) -> None:
    reference, live = data["reference"], data["live"]
    labels, probabilities = data["labels"], data["probabilities"]
    clock = Clock()
    writers = [LiveProfiler(store, writer=w, clock=clock, bucket_seconds=60) for w in ("host:1", "host:2")]
    rng = np.random.default_rng(0)
    start, i = clock.now, 0
    while i < len(live):  # batches of 1 to 300 rows, alternating writers, over three minutes
        n = int(rng.integers(1, 300))
        batch = live.iloc[i : i + n]
        profiler = writers[int(rng.integers(0, 2))]
        clock.now = start + 180 * i / len(live)
        profiler.observe(
            "churn", "1", None, reference, columns_of(batch),
            labels=labels[i : i + n], probabilities=probabilities[i : i + n],
        )  # fmt: skip
        i += n
    for profiler in writers:
        assert profiler.stats.observe_failures == 0
        profiler.flush(everything=True)

    with store.read() as conn:
        rows = conn.execute(select(live_profiles)).mappings().all()
    keys = [(r["bucket"], r["writer"]) for r in rows]
    assert len(keys) == len(set(keys)), "one row per bucket per writer"
    assert {r["writer"] for r in rows} == {"host:1", "host:2"}
    assert len({r["bucket"] for r in rows}) in (3, 4)
    assert sum(r["rows"] for r in rows) == len(live)

    merged, parts = window_profile(store, reference, "churn", since=start - 60, until=start + 600)
    assert parts == len(rows)
    expected = reference.observe(live, pd.Series(labels), probabilities)
    assert_same_counts(merged, expected)


def test_only_finished_buckets_are_flushed_until_everything_is_asked(
    store: Store, data: dict[str, Any]
) -> None:
    reference, live = data["reference"], data["live"]
    clock = Clock(6_000.0)  # a bucket boundary
    profiler = LiveProfiler(store, writer="w", clock=clock, bucket_seconds=60)
    profiler.observe("churn", "1", "a", reference, columns_of(live.iloc[:10]))
    clock.now += 30
    profiler.observe("churn", "1", "a", reference, columns_of(live.iloc[10:15]))
    profiler.observe("churn", "1", "b", reference, columns_of(live.iloc[15:18]))
    assert profiler.flush() == 0  # the first bucket is still open
    clock.now += 40
    profiler.observe("churn", "1", "a", reference, columns_of(live.iloc[18:20]))
    assert profiler.flush() == 2  # bucket 6000 of arms a and b
    assert profiler.stats.open_buckets == 1
    assert profiler.flush(everything=True) == 1
    with store.read() as conn:
        rows = conn.execute(select(live_profiles).order_by(live_profiles.c.id)).mappings().all()
    got = [(r["arm"], r["bucket"], r["seconds"], r["rows"]) for r in rows]
    assert sorted(got, key=str) == sorted(
        [("a", 6000.0, 60.0, 15), ("b", 6000.0, 60.0, 3), ("a", 6060.0, 60.0, 2)], key=str
    )
    only_a, _ = window_profile(store, reference, "churn", since=6000, until=6120, arm="a")
    assert only_a.n_rows == 17
    # A bucket overlapping the window only in part counts whole.
    partial, parts = window_profile(store, reference, "churn", since=6059, until=6061, version="1")
    assert (partial.n_rows, parts) == (20, 3)
    assert profiler.stats.rows_written == 20 == profiler.stats.observed_rows


def test_counts_match_reference_observe_for_every_batch_shape(data: dict[str, Any], store: Store) -> None:
    """Single rows, mid-size batches (one broadcast comparison) and large ones (searchsorted)."""
    reference, live = data["reference"], data["live"]
    frame = live.copy()
    frame["has_cr_card"] = frame["has_cr_card"].astype(bool)  # bools into a numeric profile
    frame["tenure"] = frame["tenure"].astype(np.int64)  # ints as validation gives them
    for sizes in ([1] * 40, [7, 33, 200], [1_000]):
        clock = Clock(0.0)
        profiler = LiveProfiler(store, writer=f"w{len(sizes)}", clock=clock)
        i = 0
        for n in sizes:
            batch = frame.iloc[i : i + n]
            cols = columns_of(batch)
            cols["has_cr_card"] = batch["has_cr_card"].to_numpy()
            cols["tenure"] = batch["tenure"].to_numpy()
            del cols["num_products"]  # a profiled feature the batch lacks counts as missing
            profiler.observe(
                "m", "1", None, reference, cols,
                labels=data["labels"][i : i + n], probabilities=data["probabilities"][i : i + n],
            )  # fmt: skip
            i += n
        assert profiler.stats.observe_failures == 0
        bucket = next(iter(profiler._buckets.values()))
        got = bucket.plan.profile(bucket.counts)
        expected_frame = frame.iloc[:i].copy()
        expected_frame["num_products"] = np.nan
        expected = reference.observe(expected_frame, pd.Series(data["labels"][:i]), data["probabilities"][:i])
        assert_same_counts(got, expected)
        assert got.features["balance"].nonfinite == expected.features["balance"].nonfinite
        assert got.features["age"].missing == expected.features["age"].missing > 0


def test_regression_outputs_and_rows_without_probabilities(store: Store, churn_frame: pd.DataFrame) -> None:
    frame = churn_frame.drop(columns=["churn"]).iloc[:500]
    values = frame["balance"].to_numpy() / 1000.0
    reference = build_profile(frame).with_prediction(profile_predictions(values, task="regression"))
    profiler = LiveProfiler(store, clock=Clock())
    profiler.observe("r", "1", None, reference, columns_of(frame), values=values)
    bucket = next(iter(profiler._buckets.values()))
    got = bucket.plan.profile(bucket.counts)
    assert got.prediction is not None and got.prediction.scores is not None
    assert got.prediction.scores.counts == reference.prediction.scores.counts  # type: ignore[union-attr]

    classifier = build_profile(frame).with_prediction(
        profile_predictions(np.zeros(500, dtype=int), np.full((500, 2), 0.5), [0, 1])
    )
    profiler.observe(
        "c", "1", None, classifier, columns_of(frame.iloc[:20]), labels=np.zeros(20, dtype=object)
    )
    bucket = next(b for k, b in profiler._buckets.items() if k[0] == "c")
    got = bucket.plan.profile(bucket.counts)
    assert got.prediction is not None and got.prediction.scores is not None and got.prediction.labels
    assert (got.prediction.scores.count, got.prediction.scores.missing) == (0, 0)  # no scores: empty
    assert got.prediction.labels.categories == {"0": 20, "1": 0}


def test_state_size_does_not_grow_with_rows_and_buckets_are_capped(
    store: Store, data: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    reference, live = data["reference"], data["live"]
    clock = Clock(0.0)
    profiler = LiveProfiler(store, clock=clock, max_buckets=3)
    cols = columns_of(live)
    profiler.observe("churn", "1", None, reference, {k: v[:10] for k, v in cols.items()})
    small = profiler.state_bytes
    for _ in range(100):  # 100,000 more rows in the same bucket
        profiler.observe("churn", "1", None, reference, cols)
    assert profiler.state_bytes == small
    assert profiler.stats.observed_rows == 10 + 100 * len(live)

    caplog.set_level(logging.WARNING, logger="modelward.live_profiles")
    for minute in range(1, 6):  # store never flushed: only the newest three buckets are kept
        clock.now = 60.0 * minute
        profiler.observe("churn", "1", None, reference, cols)
    assert profiler.stats.open_buckets == 3
    assert profiler.stats.buckets_dropped == 3
    assert profiler.state_bytes == 3 * small
    assert any("dropped" in r.getMessage() for r in caplog.records)
    assert sorted(k[3] for k in profiler._buckets) == [180.0, 240.0, 300.0]


def test_observe_never_raises_and_counts_failures(store: Store, data: dict[str, Any]) -> None:
    reference, live = data["reference"], data["live"]
    profiler = LiveProfiler(store, clock=Clock())
    cols = columns_of(live.iloc[:5])
    profiler.observe("m", "1", None, reference, {**cols, "age": np.zeros(3)})  # lengths differ
    profiler.observe("m", "1", None, reference, {**cols, "age": np.zeros((5, 2))})  # not 1-D
    profiler.observe("m", "1", None, reference, cols, probabilities=np.zeros((5, 3)))  # 3 classes, not 2
    profiler.observe("m", "1", None, "not a profile", cols)  # type: ignore[arg-type]
    assert profiler.stats.observe_failures == 4
    assert profiler.stats.observed_rows == 0
    profiler.observe("m", "1", None, reference, cols)
    assert profiler.stats.observed_rows == 5


@contextmanager
def write_lock_held(store_url: str) -> Iterator[None]:
    """Another connection holds a lock that keeps every writer of the live profiles out."""
    if store_url.startswith("sqlite"):
        raw = sqlite3.connect(store_url.removeprefix("sqlite:///"), isolation_level=None)
        raw.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            raw.execute("ROLLBACK")
            raw.close()
    else:
        engine = create_engine(store_url)
        try:
            with engine.connect() as conn, conn.begin():
                conn.execute(text("LOCK TABLE modelward_live_profiles IN ACCESS EXCLUSIVE MODE"))
                yield
        finally:
            engine.dispose()


def test_flush_survives_a_locked_store_and_writes_later(
    store_url: str, data: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    reference, live = data["reference"], data["live"]
    store = Store(store_url, busy_timeout_ms=200).open()
    store.migrate()
    clock = Clock(0.0)
    profiler = LiveProfiler(store, writer="w", clock=clock)
    caplog.set_level(logging.WARNING, logger="modelward.live_profiles")
    with write_lock_held(store_url):
        profiler.observe("churn", "1", None, reference, columns_of(live.iloc[:100]))
        clock.now = 60.0
        assert profiler.flush() == 0
        profiler.observe("churn", "1", None, reference, columns_of(live.iloc[100:150]))
        assert profiler.flush(everything=True) == 0
        stats = profiler.stats
        assert (stats.flush_failures, stats.buckets_written, stats.open_buckets) == (2, 0, 2)
    assert profiler.flush(everything=True) == 2
    merged, parts = window_profile(store, reference, "churn", since=0, until=120)
    assert (merged.n_rows, parts) == (150, 2)
    messages = [r.getMessage() for r in caplog.records if r.name == "modelward.live_profiles"]
    assert len([m for m in messages if "cannot write" in m]) == 1, messages  # once per streak
    assert any("writing to the store again" in m for m in messages)
    store.close()


def test_concurrent_observers_lose_no_rows_and_close_writes_everything(
    store: Store, data: dict[str, Any]
) -> None:
    reference, live = data["reference"], data["live"]
    profiler = LiveProfiler(store, writer="w", flush_interval=0.05).start()
    cols = columns_of(live.iloc[:50])

    def serve() -> None:
        for _ in range(100):
            profiler.observe("churn", "1", None, reference, cols)

    threads = [threading.Thread(target=serve) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    profiler.close()
    assert profiler.stats.open_buckets == 0
    with store.read() as conn:
        total = conn.execute(select(live_profiles.c.rows)).scalars().all()
    assert sum(total) == 4 * 100 * 50 == profiler.stats.rows_written
    merged, _ = window_profile(store, reference, "churn", since=0)
    assert merged.features["geography"].n == 20_000


def test_a_window_skips_rows_observed_on_another_reference(store: Store, data: dict[str, Any]) -> None:
    reference, live = data["reference"], data["live"]
    other = build_profile(live.iloc[:500], bins=5)  # version 2: other edges, no prediction profile
    profiler = LiveProfiler(store, writer="w", clock=Clock(0.0))
    profiler.observe("churn", "1", None, reference, columns_of(live.iloc[:30]))
    profiler.observe("churn", "2", None, other, columns_of(live.iloc[:70]))
    assert profiler.close() == 2
    window, parts = window_profile(store, reference, "churn", since=0, until=60)  # every version
    assert (window.n_rows, parts) == (30, 1)
    window, parts = window_profile(store, other, "churn", since=0, until=60, version="2")
    assert (window.n_rows, parts) == (70, 1)
    assert window.features["age"].edges == other.features["age"].edges
