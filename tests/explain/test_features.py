"""Each transformed column is traced to the input feature it was made from, or the trace gives up."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from modelward.explain.features import column_sources

FRAME = pd.DataFrame(
    {
        "a": [1.0, 2.0, 3.0, 4.0],
        "a_b": ["x", "y", "x", "z"],
        "c": ["p", "q", "p", "p"],
    }
)
INPUTS = list(FRAME.columns)


def test_one_hot_columns_trace_to_their_source_even_when_names_share_a_prefix() -> None:
    ct = ColumnTransformer([("num", StandardScaler(), ["a"]), ("cat", OneHotEncoder(), ["a_b", "c"])]).fit(
        FRAME
    )
    # a, a_b=x, a_b=y, a_b=z, c=p, c=q
    assert column_sources(ct, INPUTS) == [0, 1, 1, 1, 2, 2]


def test_a_remainder_passed_through_keeps_its_columns() -> None:
    ct = ColumnTransformer([("cat", OneHotEncoder(), ["c"])], remainder="passthrough").fit(FRAME)
    assert column_sources(ct, INPUTS) == [2, 2, 0, 1]


def test_nested_pipelines_compose() -> None:
    inner = Pipeline([("onehot", OneHotEncoder()), ("scale", StandardScaler(with_mean=False))])
    ct = ColumnTransformer([("cat", inner, ["c", "a_b"]), ("num", "passthrough", ["a"])]).fit(FRAME)
    assert column_sources(ct, INPUTS) == [2, 2, 1, 1, 1, 0]


def test_columns_mixing_several_inputs_have_no_single_source() -> None:
    numeric = pd.DataFrame(np.arange(12.0).reshape(4, 3), columns=["x", "y", "z"])
    pca = PCA(n_components=2).fit(numeric)
    assert column_sources(pca, ["x", "y", "z"]) is None
