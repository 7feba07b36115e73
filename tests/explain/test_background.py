"""The background sample is drawn from the version's reference profile, in the schema's types."""

from __future__ import annotations

import pandas as pd

from modelward.explain.background import background_sample
from modelward.runtime import LoadedModel


def test_background_rows_come_from_the_profiles_bins_and_categories(loaded: dict[str, LoadedModel]) -> None:
    model = loaded["hgb"]
    sample = background_sample(model.schema, model.profile, model.example, rows=200, seed=3)

    assert list(sample.columns) == list(model.schema.names) and len(sample) == 200
    for name, feature in model.profile.features.items():
        if feature.kind == "numeric":
            assert feature.edges[0] <= sample[name].min() and sample[name].max() <= feature.edges[-1]
        else:
            assert set(sample[name]) <= set(feature.categories)
    assert pd.api.types.is_integer_dtype(sample["num_products"])  # integer columns stay integers
    assert sample["geography"].nunique() == 3  # every category, in proportion to its count
    again = background_sample(model.schema, model.profile, model.example, rows=200, seed=3)
    pd.testing.assert_frame_equal(sample, again)  # seeded: the same explainer every build


def test_without_binned_features_the_input_example_is_the_background(loaded: dict[str, LoadedModel]) -> None:
    from dataclasses import replace

    model = loaded["hgb"]
    empty = replace(model.profile, features={})
    sample = background_sample(model.schema, empty, model.example, rows=50, seed=0)
    assert model.example is not None
    example = pd.DataFrame(model.example["data"], columns=model.example["columns"])
    for name in model.schema.names:
        assert set(sample[name]) <= set(example[name])
