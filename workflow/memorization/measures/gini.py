"""The Gini coefficient of the loss sensitivity over a run's training examples (the paper's Fig. 3): the
`gini` summary table, computed from the run's `sensitivity` table. Numpy and pandas only: the summary job
needs no torch."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..catalog import SENSITIVITY_SETTINGS


def gini(values) -> float:
    """Gini coefficient of non-negative values: Σ(2i − n − 1)·x₍ᵢ₎ / (n·Σx) over the sorted values, in
    float64. Equals the pairwise Σ|xᵢ − xⱼ| / (2n·Σx). Negative input is rejected (not shifted); all-zero
    input has no Gini and is reported as NaN."""
    x = np.sort(np.asarray(values, dtype=np.float64).ravel())
    if x.size == 0:
        raise ValueError("Gini of no values")
    if not np.isfinite(x).all():
        raise ValueError("Gini of non-finite values")
    if x[0] < 0:
        raise ValueError(f"Gini needs non-negative values; got minimum {x[0]}")
    total = x.sum()
    if total == 0:
        return float("nan")  # all zero: no inequality is defined
    n = x.size
    return float(np.dot(2 * np.arange(1, n + 1) - n - 1, x) / (n * total))


def gini_frame(sensitivity: pd.DataFrame) -> pd.DataFrame:
    """Gini coefficient of ḡ_x over a run's training examples, per seed and checkpoint."""
    rows = [
        {"seed": seed, "step": step, "gini": gini(g["sensitivity"].to_numpy())}
        for (seed, step), g in sensitivity.groupby(["seed", "step"], sort=True)
    ]
    keep = [c for c in ("train_size", *(c.name for c in SENSITIVITY_SETTINGS)) if c in sensitivity]
    settings = sensitivity[keep].iloc[0].to_dict() if len(sensitivity) else {}
    return pd.DataFrame(rows).assign(**settings)


def gini_board(frame: pd.DataFrame):
    """The Gini coefficient per seed at each checkpoint, for the run's TensorBoard (results.events)."""
    from ..results.events import scalars_by_step

    return scalars_by_step(frame, "gini", "loss sensitivity/Gini")
