"""The MLflow pyfunc that serves the LightFM model: a user id and candidate item ids in, one score each.

Logged as code (MLflow's models-from-code), with the factorisation LightFM learned as an ``.npz``
artifact: user and item embeddings and biases. A score is LightFM's own,
``user_embedding . item_embedding + user_bias + item_bias``, so serving needs NumPy only. A user or
item the model has not seen gets zero embedding and bias: an unknown user's items are ranked by
their biases (their popularity), and an unknown item scores only the user's bias.
"""

from __future__ import annotations

from typing import Any

import mlflow
import numpy as np
import pandas as pd


class LightFMScores(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    def load_context(self, context: Any) -> None:
        with np.load(context.artifacts["factors"]) as factors:
            self.user_emb = factors["user_embeddings"]
            self.user_bias = factors["user_biases"]
            self.item_emb = factors["item_embeddings"]
            self.item_bias = factors["item_biases"]

    def _user(self, user: int) -> tuple[np.ndarray, float]:
        if 0 <= user < len(self.user_bias):
            return self.user_emb[user], float(self.user_bias[user])
        return np.zeros(self.user_emb.shape[1]), 0.0

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.Series:
        scores = []
        for user, items in zip(model_input["user_id"], model_input["item_ids"], strict=True):
            emb, bias = self._user(int(user))
            ids = np.asarray(items, dtype=np.int64)
            known = (ids >= 0) & (ids < len(self.item_bias))
            safe = np.where(known, ids, 0)
            score = np.where(known, self.item_emb[safe] @ emb + self.item_bias[safe], 0.0) + bias
            scores.append(score.astype(np.float64))
        return pd.Series(scores)


mlflow.models.set_model(LightFMScores())
