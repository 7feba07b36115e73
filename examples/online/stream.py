"""The example's data: a stream of events with three numeric features and a 0/1 label.

Before the drift the label is ``x1 + x2 > 0``; after it, ``x1 - x2 > 0``. The features keep their
distribution (uniform on [-1, 1]), so nothing in the requests changes: only the answer does. That is
a concept drift, which input drift detection cannot see and only the labels reveal. ``x3`` is noise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FEATURES = ("x1", "x2", "x3")
CONCEPTS = ("x1 + x2 > 0", "x1 - x2 > 0")


def events(n: int, concept: int, seed: int) -> pd.DataFrame:
    """``n`` events labelled by concept 0 (before the drift) or 1 (after it)."""
    if concept not in (0, 1):
        raise ValueError(f"concept must be 0 or 1, not {concept!r}")
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, size=(n, len(FEATURES)))
    label = x[:, 0] + x[:, 1] > 0 if concept == 0 else x[:, 0] - x[:, 1] > 0
    frame = pd.DataFrame(x, columns=list(FEATURES))
    frame["label"] = label.astype("int64")
    return frame
