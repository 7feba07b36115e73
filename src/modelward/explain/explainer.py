"""Build a SHAP explainer for a loaded version, once, and explain rows with it.

The choice, first that fits:

* ``tree``: :class:`shap.TreeExplainer` (path-dependent, exact, no background) on the estimator at
  the end of the pipeline, for the models SHAP reads as trees (scikit-learn forests, gradient
  boosting and histogram gradient boosting, XGBoost, LightGBM, CatBoost);
* ``linear``: :class:`shap.LinearExplainer` on that estimator, with the background sample as masker;
* ``permutation``: :class:`shap.PermutationExplainer` on the whole model and its input features,
  with the background sample (:mod:`modelward.explain.background`), for everything else and for
  pipelines whose columns cannot be traced back to one input feature each.

Tree and linear explainers see the pipeline's transformed columns; each column's contribution is
added to the input feature it was made from (:mod:`modelward.explain.features`). The output space is
not assumed: at build time the sums of a few background rows are compared with each output the
estimator offers (predict_proba, decision_function or its booster's raw margin, predict), and the one
that matches to 1e-6 is the space stated. None matching means the next explainer is tried; the
permutation explainer is additive by construction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from modelward.explain._shap import import_shap
from modelward.explain.background import background_sample
from modelward.explain.explanation import Explanation, OutputSpace, RowExplanation
from modelward.explain.features import column_sources

if TYPE_CHECKING:
    import pandas as pd

    from modelward.runtime.model import LoadedModel

__all__ = ["TOLERANCE", "Explainer"]

log = logging.getLogger(__name__)

TOLERANCE = 1e-6
_CHECK_ROWS = 20
# Antithetic permutations per explained row: each costs 2n+1 calls of the model on the background;
# the contributions add up to the output exactly whatever the number, only their spread shrinks.
_PERMUTATIONS = 10


@dataclass(frozen=True, slots=True)
class _Values:
    phi: np.ndarray  # rows x input features
    base: np.ndarray  # rows
    output: np.ndarray  # rows
    labels: list[Any]


class Explainer:
    """SHAP explanations of one loaded version; build once (it reads the model), explain often."""

    def __init__(self, model: LoadedModel, *, background_rows: int = 100, seed: int = 0) -> None:
        shap = import_shap()
        nested = model.schema.nested_names()
        if nested:
            from modelward.errors import SchemaError

            raise SchemaError(
                f"{model.info.ref} takes list, object or tensor inputs ({', '.join(nested)}): "
                "explanations cover models whose inputs are all scalars"
            )
        self.model = model
        self.features = list(model.schema.names)
        self.background = background_sample(
            model.schema, model.profile, model.example, rows=background_rows, seed=seed
        )
        structured = _Structured.build(shap, model, self.features, self.background)
        self._impl: _Structured | _Permutation = structured or _Permutation(
            shap, model, self.features, self.background, seed=seed
        )

    @property
    def method(self) -> str:
        return self._impl.method

    @property
    def output_space(self) -> OutputSpace:
        return self._impl.space

    def explain(self, frame: pd.DataFrame) -> Explanation:
        """Explain each row of ``frame`` (the model's input columns)."""
        values = self._impl.values(frame[self.features])
        rows = [
            RowExplanation(
                contributions={f: float(v) for f, v in zip(self.features, values.phi[i], strict=True)},
                base_value=float(values.base[i]),
                output=float(values.output[i]),
                label=values.labels[i],
            )
            for i in range(len(values.base))
        ]
        return Explanation(self.model.name, self.model.version, self.method, self.output_space, rows)

    def __repr__(self) -> str:
        return f"Explainer({self.model.info.ref}, method={self.method!r}, output={self.output_space!r})"


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _split(native: Any) -> tuple[Any, Any]:
    """(preprocessing, estimator) of a scikit-learn pipeline; (None, model) for anything else."""
    steps = getattr(native, "steps", None)
    if type(native).__name__ == "Pipeline" and isinstance(steps, list) and len(steps) > 1:
        return native[:-1], steps[-1][1]
    return None, native


def _outputs(est: Any, classifier: bool) -> list[tuple[OutputSpace, Callable[[Any], np.ndarray]]]:
    """The outputs an estimator offers, each with the space it is in."""
    found: list[tuple[OutputSpace, Callable[[Any], np.ndarray]]] = []
    if classifier and hasattr(est, "predict_proba"):
        found.append(("probability", lambda x: np.asarray(est.predict_proba(x))))
    module = type(est).__module__.split(".")[0]
    if classifier and hasattr(est, "decision_function"):
        found.append(("log_odds", lambda x: np.asarray(est.decision_function(x))))
    elif classifier and module == "xgboost":
        found.append(("log_odds", lambda x: np.asarray(est.predict(x, output_margin=True))))
    elif classifier and module == "lightgbm":
        found.append(("log_odds", lambda x: np.asarray(est.predict(x, raw_score=True))))
    if not classifier:
        found.append(("value", lambda x: np.asarray(est.predict(x), dtype=np.float64)))
    return found


def _shap_values(explainer: Any, x: Any) -> tuple[np.ndarray, np.ndarray]:
    """(contributions: rows x columns [x outputs], base values: rows [x outputs]) from SHAP's
    Explanation object, the interface that answers in one shape for every model kind."""
    result = explainer(x)
    phi = np.asarray(result.values, dtype=np.float64)
    base = np.asarray(result.base_values, dtype=np.float64)
    if base.ndim == 0 or base.shape[0] != phi.shape[0]:
        base = np.broadcast_to(base, (phi.shape[0], *phi.shape[2:]))
    return phi, base


def _pick(total: np.ndarray, out: np.ndarray, probabilities: np.ndarray | None) -> np.ndarray | None:
    """Per row, the output column explained: the positive class of a binary model, else the
    predicted class; None for single-output models."""
    if total.ndim == 1:
        return None
    k = total.shape[1]
    if k == 2:
        return np.ones(len(total), dtype=np.int64)
    ranked = probabilities if probabilities is not None else out
    return np.asarray(np.argmax(ranked, axis=1), dtype=np.int64)


class _Structured:
    """A tree or linear explainer on the pipeline's estimator, folded back to the input features."""

    def __init__(
        self,
        method: str,
        explainer: Any,
        space: OutputSpace,
        output: Callable[[Any], np.ndarray],
        transform: Callable[[pd.DataFrame], Any],
        sources: list[int],
        n_features: int,
        classes: list[Any] | None,
        proba: Callable[[Any], np.ndarray] | None,
    ) -> None:
        self.method, self.space = method, space
        self._explainer, self._output, self._transform = explainer, output, transform
        fold = np.zeros((len(sources), n_features))
        fold[np.arange(len(sources)), sources] = 1.0
        self._fold, self._classes, self._proba = fold, classes, proba

    @classmethod
    def build(
        cls, shap: Any, model: LoadedModel, features: list[str], background: pd.DataFrame
    ) -> _Structured | None:
        pre, est = _split(model.native)
        sources = column_sources(pre, features) if pre is not None else list(range(len(features)))
        if sources is None:
            log.info("%s: the pipeline's columns do not trace back to its inputs", model.info.ref)
            return None

        def transform(frame: pd.DataFrame) -> Any:
            x = model.schema.model_input(frame)
            if pre is not None:
                x = pre.transform(x)
            return x.toarray() if hasattr(x, "toarray") else x

        try:
            bg = transform(background)
        except Exception as exc:  # a model that does not take the drawn values: no background
            log.info("%s: the background sample does not transform: %s", model.info.ref, exc)
            return None
        if np.shape(bg)[1] != len(sources):
            return None
        classifier = model.is_classifier
        classes = [_plain(c) for c in getattr(est, "classes_", [])] or None
        proba = (
            (lambda x: np.asarray(est.predict_proba(x)))
            if classifier and hasattr(est, "predict_proba")
            else None
        )
        check = bg[:_CHECK_ROWS]
        candidates: list[tuple[str, Callable[[], Any]]] = [
            ("tree", lambda: shap.TreeExplainer(est, model_output="raw")),
            ("linear", lambda: shap.LinearExplainer(est, shap.maskers.Independent(bg, max_samples=len(bg)))),
        ]
        for method, make in candidates:
            try:
                explainer = make()
                phi, base = _shap_values(explainer, check)
            except Exception as exc:  # SHAP's way of saying "not a model of this kind"
                log.debug("%s: no %s explainer: %s", model.info.ref, method, exc)
                continue
            total = base + phi.sum(axis=1)
            for space, output in _outputs(est, classifier):
                try:
                    out = output(check)
                except Exception as exc:  # e.g. a margin the model computes only for some inputs
                    log.debug("%s: no %s output: %s", model.info.ref, space, exc)
                    continue
                if out.shape == total.shape and np.allclose(total, out, rtol=0, atol=TOLERANCE):
                    built = cls(
                        method, explainer, space, output, transform, sources, len(features), classes, proba
                    )
                    log.info("%s: %s explainer, %s output", model.info.ref, method, space)
                    return built
            log.info("%s: the %s explainer's sums match no output of the model", model.info.ref, method)
        return None

    def values(self, frame: pd.DataFrame) -> _Values:
        x = self._transform(frame)
        phi, base = _shap_values(self._explainer, x)
        out = self._output(x)
        total = base + phi.sum(axis=1)
        column = _pick(total, out, self._proba(x) if self._proba is not None and total.ndim > 1 else None)
        rows = np.arange(len(out))
        if column is None:
            labels: list[Any] = [self._classes[-1] if self._classes else None] * len(out)
            return _Values(phi @ self._fold, base.reshape(len(out)), out, labels)
        labels = [self._classes[c] if self._classes else int(c) for c in column]
        return _Values(phi[rows, :, column] @ self._fold, base[rows, column], out[rows, column], labels)


class _Permutation:
    """The model-agnostic case: SHAP's permutation explainer on the model's own input features.

    SHAP's masker mixes rows arithmetically, so text columns travel as codes of their values (the
    background's and the explained rows'), decoded before the model sees them."""

    method = "permutation"

    def __init__(
        self, shap: Any, model: LoadedModel, features: list[str], background: pd.DataFrame, *, seed: int
    ) -> None:
        self._shap, self._model, self._features, self._seed = shap, model, features, seed
        self._background = background
        self._classifier = model.is_classifier and hasattr(model.native, "predict_proba")
        self.space: OutputSpace = "probability" if self._classifier else "value"
        from pandas.api.types import is_bool_dtype, is_numeric_dtype

        self._codes = {
            f: [*dict.fromkeys(background[f].tolist())]
            for f in features
            if not is_numeric_dtype(background[f].dtype) or is_bool_dtype(background[f].dtype)
        }

    def _encode(self, frame: pd.DataFrame) -> np.ndarray:
        columns = []
        for f in self._features:
            if f in self._codes:
                known = self._codes[f]
                for v in frame[f].tolist():
                    if v not in known:
                        known.append(v)
                index = {v: i for i, v in enumerate(known)}
                columns.append(np.asarray([index[v] for v in frame[f].tolist()], dtype=np.float64))
            else:
                columns.append(frame[f].to_numpy(dtype=np.float64))
        return np.column_stack(columns)

    def _decode(self, x: np.ndarray) -> pd.DataFrame:
        import pandas as pd

        data: dict[str, Any] = {}
        for j, f in enumerate(self._features):
            if f in self._codes:
                known = self._codes[f]
                data[f] = [known[round(float(v))] for v in x[:, j]]
            else:
                data[f] = pd.Series(x[:, j]).astype(self._background[f].dtype)
        return pd.DataFrame(data)

    def _predict(self, x: np.ndarray) -> np.ndarray:
        frame = self._decode(np.atleast_2d(x))
        if self._classifier:
            return self._model.predict_proba(frame)
        return np.asarray(self._model.predict(frame), dtype=np.float64)

    def values(self, frame: pd.DataFrame) -> _Values:
        shap = self._shap
        x = self._encode(frame)
        masker = shap.maskers.Independent(self._encode(self._background), max_samples=len(self._background))
        explainer = shap.PermutationExplainer(self._predict, masker, seed=self._seed)
        n = len(self._features)
        result = explainer(x, max_evals=_PERMUTATIONS * (2 * n + 1), batch_size=2 * n + 1, silent=True)
        phi, base = np.asarray(result.values), np.asarray(result.base_values, dtype=np.float64)
        out = self._predict(x)
        classes = self._model.class_values if self._classifier else []
        column = _pick(out, out, out) if out.ndim > 1 else None
        if column is None:
            return _Values(phi, base.reshape(len(out)), out, [None] * len(out))
        rows = np.arange(len(out))
        labels = [_plain(classes[c]) if c < len(classes) else int(c) for c in column]
        return _Values(phi[rows, :, column], base[rows, column], out[rows, column], labels)
