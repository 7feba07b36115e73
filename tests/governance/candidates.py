"""Candidates for the promotion-gate tests: weaker, narrower and biased versions of the churn model."""

from __future__ import annotations

import pandas as pd
from tests.conftest import make_pipeline


def shuffled_label_model(frame: pd.DataFrame) -> object:
    """A model that learnt nothing: trained on shuffled labels (AUC about 0.5)."""
    from sklearn.linear_model import LogisticRegression

    x = frame.drop(columns=["churn"])
    y = frame["churn"].sample(frac=1.0, random_state=3).to_numpy()
    return make_pipeline(LogisticRegression(max_iter=500)).fit(x, y)


def biased_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The label decided by gender: every woman churns, no man does."""
    out = frame.copy()
    out["churn"] = (out["gender"] == "Female").astype("int64")
    return out


def biased_model(frame: pd.DataFrame) -> object:
    from sklearn.linear_model import LogisticRegression

    data = biased_frame(frame)
    return make_pipeline(LogisticRegression(max_iter=500)).fit(data.drop(columns=["churn"]), data["churn"])


def narrower_model(frame: pd.DataFrame) -> tuple[object, pd.DataFrame]:
    """A model without the estimated_salary feature, and its training frame."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    data = frame.drop(columns=["estimated_salary"])
    numeric = ["age", "tenure", "balance", "num_products", "has_cr_card", "is_active_member"]
    pre = ColumnTransformer(
        [
            ("num", StandardScaler(), numeric),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["geography", "gender"]),
        ]
    )
    model = Pipeline([("pre", pre), ("model", LogisticRegression(max_iter=500))])
    return model.fit(data.drop(columns=["churn"]), data["churn"]), data
