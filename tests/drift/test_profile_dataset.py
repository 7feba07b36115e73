from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from modelward.drift import (
    PROFILE_FORMAT,
    CategoricalProfile,
    DatasetProfile,
    NumericProfile,
    ProfileError,
    ProfileMismatch,
    build_profile,
    profile_predictions,
)


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            # Dyadic floats: every float sum is exact, so merged totals equal whole totals.
            "age": np.round(rng.normal(40, 10, size=n) * 16) / 16,
            "income": np.round(rng.lognormal(10, 1, size=n)),
            "flag": rng.integers(0, 2, size=n),
            "city": rng.choice(["paris", "oslo", "rome"], size=n),
        }
    )


def _with_prediction(profile: DatasetProfile, n: int, seed: int) -> DatasetProfile:
    p1 = np.round(np.random.default_rng(seed).random(n) * 1024) / 1024
    return profile.with_prediction(profile_predictions(p1 > 0.5, p1, classes=[False, True]))


def test_build_profile_picks_the_profile_kind_from_the_dtype() -> None:
    frame = pd.DataFrame(
        {
            "f": [0.5, 1.5, 2.5],
            "i": [1, 2, 3],
            "nullable": pd.array([1, None, 3], dtype="Int64"),
            "b": [True, False, True],
            "o": pd.Series(["x", 1, None], dtype=object),
            "s": ["x", "y", "x"],
            "k": pd.Categorical(["u", "v", "u"]),
            "code": [10, 20, 10],
        }
    )
    p = build_profile(frame, categorical=["code"])
    kinds = {name: f.kind for name, f in p.features.items()}
    assert kinds == {
        "f": "numeric",
        "i": "numeric",
        "nullable": "numeric",
        "b": "categorical",
        "o": "categorical",
        "s": "categorical",
        "k": "categorical",
        "code": "categorical",
    }
    assert list(p.features) == list(frame.columns)
    assert (p.n_rows, p.prediction, p.format) == (3, None, PROFILE_FORMAT)


def test_datetime_column_raises_an_error_naming_the_column() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0], "signup": pd.to_datetime(["2024-01-01", "2024-02-01"])})
    with pytest.raises(ProfileError, match=r"'signup'.*datetime") as info:
        build_profile(frame)
    assert isinstance(info.value, ValueError)


def test_unknown_categorical_column_is_rejected() -> None:
    with pytest.raises(ProfileError, match="nope"):
        build_profile(pd.DataFrame({"x": [1]}), categorical=["nope"])


def test_observing_the_reference_data_reproduces_the_reference() -> None:
    frame = _frame(2_000, 21)
    ref = build_profile(frame)
    assert ref.observe(frame) == ref


def test_merging_two_halves_equals_profile_of_whole() -> None:
    frame = _frame(3_000, 22)
    ref = _with_prediction(build_profile(frame), 3_000, 23)
    p1 = np.round(np.random.default_rng(24).random(3_000) * 1024) / 1024
    first = ref.observe(frame.iloc[:1_200], p1[:1_200] > 0.5, p1[:1_200])
    second = ref.observe(frame.iloc[1_200:], p1[1_200:] > 0.5, p1[1_200:])
    merged = first.merge(second)
    assert merged == ref.observe(frame, p1 > 0.5, p1)
    assert merged.n_rows == 3_000


def test_per_minute_profiles_sum_into_a_window_starting_from_empty() -> None:
    frame = _frame(600, 25)
    ref = build_profile(frame)
    window = ref.empty()
    for start in range(0, 600, 60):
        window = window.merge(ref.observe(frame.iloc[start : start + 60]))
    assert window == ref


def test_observe_ignores_extra_columns_and_requires_the_profiled_ones() -> None:
    frame = _frame(100, 26)
    ref = build_profile(frame)
    assert ref.observe(frame.assign(extra=1)) == ref
    with pytest.raises(ProfileError, match="city"):
        ref.observe(frame.drop(columns=["city"]))


def test_observe_without_predictions_leaves_the_prediction_profile_empty() -> None:
    frame = _frame(100, 27)
    live = _with_prediction(build_profile(frame), 100, 28).observe(frame)
    assert live.prediction is not None
    assert live.prediction.labels is not None
    assert live.prediction.labels.count == 0


def test_predictions_must_match_the_frame_and_need_a_prediction_profile() -> None:
    frame = _frame(10, 29)
    ref = build_profile(frame)
    with pytest.raises(ProfileError, match="no prediction profile"):
        ref.observe(frame, np.ones(10))
    with pytest.raises(ProfileError, match="9 for 10 rows"):
        _with_prediction(ref, 10, 30).observe(frame, np.ones(9, dtype=bool))


def test_merge_with_a_different_feature_set_raises_naming_the_feature() -> None:
    frame = _frame(100, 31)
    a, b = build_profile(frame), build_profile(frame.drop(columns=["income"]))
    with pytest.raises(ProfileMismatch, match="'income'") as info:
        a.merge(b)
    assert info.value.feature == "income"


def test_merge_with_a_different_feature_kind_raises_naming_the_feature() -> None:
    frame = _frame(100, 32)
    a, b = build_profile(frame), build_profile(frame, categorical=["flag"])
    with pytest.raises(ProfileMismatch, match="'flag'"):
        a.merge(b)
    with pytest.raises(ProfileMismatch, match="prediction"):
        a.merge(_with_prediction(a, 100, 33))


def test_json_round_trip_is_exact() -> None:
    frame = _frame(1_000, 34)
    frame["ratio"] = np.random.default_rng(35).random(1_000) / 3
    p = _with_prediction(build_profile(frame), 1_000, 36)
    data = p.to_json()
    assert isinstance(data, bytes)
    assert DatasetProfile.from_json(data) == p
    assert DatasetProfile.from_json(data.decode()) == p
    assert DatasetProfile.from_dict(p.to_dict()) == p


def test_json_never_contains_nan_even_for_empty_and_all_missing_columns() -> None:
    frame = pd.DataFrame({"gone": [np.nan] * 5, "x": [1.0, 2.0, np.nan, 4.0, 5.0], "c": [None] * 5})
    for p in (build_profile(frame), build_profile(frame).empty()):
        doc = json.loads(p.to_json(), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
        assert doc["features"][0]["minimum"] is None
        assert DatasetProfile.from_json(p.to_json()) == p


def test_ten_features_of_100k_rows_serialise_compactly() -> None:
    rng = np.random.default_rng(37)
    n = 100_000
    columns: dict[str, object] = {f"num{i}": rng.normal(i, 1 + i, size=n) for i in range(6)}
    columns |= {"binary": rng.integers(0, 2, size=n), "level": rng.integers(1, 5, size=n)}
    columns |= {
        "city": rng.choice([f"city{i}" for i in range(200)], size=n),
        "plan": rng.choice(list("ABC"), n),
    }
    p = build_profile(pd.DataFrame(columns))
    data = p.to_json()
    assert len(data) < 20_000
    numeric = p.features["num0"]
    assert isinstance(numeric, NumericProfile)
    assert len(json.dumps(numeric.to_dict())) < 1_000
    city = p.features["city"]
    assert isinstance(city, CategoricalProfile)
    assert len(city.categories) == 50
    assert DatasetProfile.from_json(data) == p


def test_unknown_format_is_rejected_with_a_clear_message() -> None:
    doc = build_profile(_frame(10, 38)).to_dict()
    doc["format"] = "modelward.profile/99"
    with pytest.raises(ProfileError, match=r"modelward\.profile/99.*not supported"):
        DatasetProfile.from_dict(doc)


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b"[1, 2]",
        b'{"format": "modelward.profile/1"}',
        b'{"format": "modelward.profile/1", "n_rows": 1, "features": [{"kind": "?"}], "prediction": null}',
        b'{"format": "modelward.profile/1", "n_rows": -1, "features": [], "prediction": null}',
    ],
)
def test_malformed_documents_raise_profile_error(data: bytes) -> None:
    with pytest.raises(ProfileError):
        DatasetProfile.from_json(data)


def test_a_tampered_document_that_breaks_an_invariant_is_rejected() -> None:
    doc = build_profile(_frame(10, 39)).to_dict()
    features = doc["features"]
    assert isinstance(features, list)
    features[0]["counts"][1] += 1
    with pytest.raises(ProfileError, match="add up"):
        DatasetProfile.from_dict(doc)
