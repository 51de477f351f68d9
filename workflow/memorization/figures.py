"""The paper's figures, drawn from the Parquet tables alone (so a colleague's shared tables suffice)."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # figures are files; no display on workers
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .analysis import binomial_reference, difficulty_spread, first_epoch_difficulty  # noqa: E402

ORDER = ["real data", "random labels", "random inputs"]

# The tables each figure reads (the workflow makes every experiment that feeds a figure write them).
FIGURE_TABLES = {"fig01_difficulty": ["examples"]}


def save(fig, stem: str | os.PathLike) -> list[Path]:
    """Write `stem`.png and `stem`.pdf; PDF without a creation date so reruns give the same bytes."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    fig.savefig(paths[0], dpi=150, bbox_inches="tight", metadata={"Software": None})
    fig.savefig(paths[1], bbox_inches="tight", metadata={"CreationDate": None, "Producer": None})
    plt.close(fig)
    return paths


def fig01_difficulty(examples: pd.DataFrame):
    """Fig. 1: per-example misclassification rate after one epoch, over many seeds, sorted, per data set;
    with the binomial curve expected if every random-input example were equally hard."""
    diff = first_epoch_difficulty(examples)
    spread = difficulty_spread(diff).set_index("condition")
    fig, ax = plt.subplots(figsize=(6, 4))
    conds = sorted(diff["condition"].unique(), key=lambda c: (ORDER.index(c) if c in ORDER else 99, c))
    for cond in conds:
        g = diff[diff["condition"] == cond]
        curve = np.sort(g["misclassification"].to_numpy())[::-1]
        ax.plot(np.arange(len(curve)), curve, lw=2,
                label=f"{cond} (var/binomial = {spread.loc[cond, 'ratio']:.1f})")
    ref = "random inputs" if "random inputs" in spread.index else None
    if ref is not None:
        n_runs, n = int(spread.loc[ref, "n_runs"]), int(spread.loc[ref, "n_examples"])
        curve = np.sort(binomial_reference(spread.loc[ref, "mean_p_correct"], n_runs, n))[::-1]
        ax.plot(np.arange(n), curve, "k--", lw=1.2, label=f"binomial(n={n_runs}, p̄ of random inputs)")
    ax.set_xlabel("example (sorted by misclassification rate)")
    ax.set_ylabel("misclassification rate after 1 epoch")
    n_runs = int(diff["n_runs"].max())
    ax.set_title(f"Per-example difficulty over {n_runs} runs (Arpit et al. Fig. 1)")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=8, loc="lower left")
    return fig


def draw(figure: str, tables: dict[str, pd.DataFrame], stem: str | os.PathLike) -> list[Path]:
    """Draw `figure` from its tables (name → concatenated frame) and save it as PNG and PDF."""
    builders = {"fig01_difficulty": lambda t: fig01_difficulty(t["examples"])}
    return save(builders[figure](tables), stem)
