"""Drift between two files: exact statistics column by column, CSV and Parquet, large samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from modelward.drift import DriftConfig, ProfileMismatch, compare_samples
from modelward.errors import ConfigError
from modelward.monitoring.drift_files import compare_files


def write(frame: pd.DataFrame, path: Path) -> Path:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    if path.suffix == ".csv":
        pa_csv.write_csv(table, path)
    else:
        pq.write_table(table, path)
    return path


def test_no_drift_on_a_million_rows_of_one_distribution_while_a_fifth_sd_shift_shows_at_10k(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(7)
    n = 1_000_000
    reference = write(
        pd.DataFrame({"normal": rng.normal(0, 1, n), "skewed": rng.lognormal(0, 0.5, n)}),
        tmp_path / "ref.parquet",
    )
    same = write(
        pd.DataFrame({"normal": rng.normal(0, 1, n), "skewed": rng.lognormal(0, 0.5, n)}),
        tmp_path / "same.parquet",
    )
    result = compare_files(reference, same)
    assert result.reference_rows == result.current_rows == n
    assert not result.report.dataset_drift
    assert result.report.drifted_features == ()
    assert all(f.method == "wasserstein" for f in result.report.features)  # large: effect sizes

    skewed_sd = float(np.std(rng.lognormal(0, 0.5, 100_000)))
    shifted = pd.DataFrame(
        {"normal": rng.normal(0.2, 1, 10_000), "skewed": rng.lognormal(0, 0.5, 10_000) + 0.2 * skewed_sd}
    )
    result = compare_files(reference, write(shifted, tmp_path / "shifted.csv"))
    assert result.report.drifted_features == ("normal", "skewed")
    assert result.report.dataset_drift
    assert result.report.feature("normal").statistic == pytest.approx(0.2, abs=0.03)


def test_files_give_exactly_the_report_of_compare_samples_on_the_frames(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    ref = pd.DataFrame(
        {
            "x": rng.normal(0, 1, 3_000),
            "n": rng.integers(0, 5, 3_000),
            "plan": rng.choice(["free", "pro", "team"], 3_000),
            "flag": rng.choice([True, False], 3_000),
        }
    )
    cur = pd.DataFrame(
        {
            "x": rng.normal(0.3, 1, 2_000),
            "n": rng.integers(0, 6, 2_000),
            "plan": rng.choice(["free", "pro", "team", "max"], 2_000),
            "flag": rng.choice([True, False], 2_000, p=[0.7, 0.3]),
            "extra": rng.normal(0, 1, 2_000),  # ignored: not in the reference
        }
    )
    cur.loc[:99, "x"] = np.nan
    expected = compare_samples(ref, cur)
    for ref_name, cur_name in (("r.parquet", "c.parquet"), ("r.csv", "c.csv"), ("r.parquet", "c.csv")):
        got = compare_files(write(ref, tmp_path / ref_name), write(cur, tmp_path / cur_name), workers=2)
        assert got.report.to_dict() == expected.to_dict(), (ref_name, cur_name)
        assert set(got.histograms) == {"x", "n", "plan", "flag"}
        x = got.histograms["x"]
        assert x.kind == "numeric" and len(x.bins) == 22  # 20 quantile bins, under- and overflow
        assert sum(x.reference) == 3_000 and sum(x.current) == 1_900  # missing values left out
        plan = got.histograms["plan"]
        assert plan.bins[-1] == "(not in the reference)" and plan.current[-1] == (cur["plan"] == "max").sum()


def test_progress_config_and_mistakes(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    ref = write(pd.DataFrame({"a": rng.normal(size=500), "b": rng.normal(size=500)}), tmp_path / "r.parquet")
    cur = write(pd.DataFrame({"a": rng.normal(size=400)}), tmp_path / "c.parquet")
    seen: list[tuple[int, int]] = []
    result = compare_files(ref, cur, columns=["a"], progress=lambda d, t: seen.append((d, t)))
    assert seen == [(1, 1)] and [f.feature for f in result.report.features] == ["a"]
    assert result.to_dict()["current"] == {"path": str(cur), "rows": 400}
    with pytest.raises(ProfileMismatch, match="lacks column"):
        compare_files(ref, cur)
    with pytest.raises(ConfigError, match="does not exist"):
        compare_files(tmp_path / "nope.csv", cur)
    text = tmp_path / "r.txt"
    text.write_text("a\n1\n")
    with pytest.raises(ConfigError, match=r"use a \.csv"):
        compare_files(text, cur)
    with pytest.raises(ConfigError, match="unknown feature"):
        compare_files(ref, cur, columns=["a"], config=DriftConfig(features={"zz": DriftConfig().numeric}))
    bad = tmp_path / "bad.csv"
    bad.write_text("a\n" + "1.5\n" * 10 + "oops\n")
    with pytest.raises(ConfigError, match="column 'a' cannot be compared"):
        compare_files(ref, bad, columns=["a"])


def test_streamed_columns_give_exactly_the_in_memory_report_past_one_block(tmp_path: Path) -> None:
    """More rows than a block of the exact pass (65,536), mixed types, NaN and nulls, float32 kept
    float32 in Parquet: the file path reads, sorts and judges one column at a time and must give the
    report compare_samples gives on the whole frames as the files hold them."""
    rng = np.random.default_rng(11)

    def frame(n: int, shift: float) -> pd.DataFrame:
        x = rng.normal(shift, 1, n)
        x[rng.random(n) < 0.01] = np.nan
        narrow = rng.normal(shift, 2, n).astype(np.float32)
        narrow[:50] = np.nan
        counts = pd.array(rng.poisson(3 + shift, n), dtype="Int64")
        counts[rng.random(n) < 0.02] = pd.NA
        plan = pd.Series(rng.choice(["free", "pro", "team"], n), dtype=object)
        plan[rng.random(n) < 0.03] = None
        return pd.DataFrame(
            {"x": x, "narrow": narrow, "counts": counts, "plan": plan, "flag": rng.random(n) < 0.4 + shift}
        )

    ref, cur = frame(90_000, 0.0), frame(70_000, 0.05)
    for ref_name, cur_name in (("r.parquet", "c.parquet"), ("r.parquet", "c.csv")):
        r, c = write(ref, tmp_path / ref_name), write(cur, tmp_path / cur_name)
        held = (
            pq.read_table(r).to_pandas(),
            (pq.read_table(c) if c.suffix == ".parquet" else pa_csv.read_csv(c)).to_pandas(),
        )
        assert held[0]["narrow"].dtype == np.float32
        expected = compare_samples(*held, categorical=["flag"])
        got = compare_files(r, c, categorical=["flag"], workers=2)
        assert got.report.to_dict() == expected.to_dict(), cur_name
        assert {f.feature for f in got.report.features} == {"x", "narrow", "counts", "plan", "flag"}
        # the histograms come from the same sorted samples: every present value counted once
        assert sum(got.histograms["x"].reference) == ref["x"].notna().sum()
        assert sum(got.histograms["narrow"].current) == cur["narrow"].notna().sum()
