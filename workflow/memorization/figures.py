"""The paper's figures, drawn from the Parquet tables alone (so a colleague's shared tables suffice)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # figures are files; no display on workers
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from matplotlib.colors import LogNorm  # noqa: E402

from .analysis import (binomial_reference, condition, diagonal_dominance, difficulty_spread,  # noqa: E402
                       first_epoch_difficulty, mean_band)

ORDER = ["real data", "random labels", "random inputs"]

# The tables each figure reads (the workflow makes every experiment that feeds a figure write them).
FIGURE_TABLES = {
    "fig01_difficulty": ["examples"],
    "fig03_gini": ["gini"],
    "fig04_class_sensitivity": ["class_sensitivity"],
    "fig09_csr_random": ["csr"],
}


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
    builders = {
        "fig01_difficulty": lambda t: fig01_difficulty(t["examples"]),
        "fig03_gini": lambda t: fig03_gini(t["gini"]),
        "fig04_class_sensitivity": lambda t: fig04_class_sensitivity(t["class_sensitivity"]),
        "fig09_csr_random": lambda t: fig09_csr_random(t["csr"]),
    }
    return save(builders[figure](tables), stem)


def _with_condition(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(condition=frame.apply(condition, axis=1))


def _curves(ax, frame: pd.DataFrame, x: str, y: str, order=ORDER):
    stats = mean_band(frame, x, y)
    conds = sorted(stats["condition"].unique(), key=lambda c: (order.index(c) if c in order else 50, c))
    for cond in conds:
        g = stats[stats["condition"] == cond]
        line, = ax.plot(g[x], g["mean"], marker="o", ms=3, lw=1.8, label=cond)
        if (g["count"] > 1).any():
            ax.fill_between(g[x], g["mean"] - g["std"].fillna(0), g["mean"] + g["std"].fillna(0),
                            color=line.get_color(), alpha=0.2, lw=0)


def fig03_gini(gini_table: pd.DataFrame):
    """Fig. 3: Gini coefficient of the loss sensitivity ḡ_x over the training examples against SGD steps;
    left with the data's labels, right with one class per example."""
    frame = _with_condition(gini_table)
    identity = frame["label_noise"] == "identity"
    panels = [("labels: the real classes", frame[~identity]), ("labels: one class per example", frame[identity])]
    panels = [(t, f) for t, f in panels if len(f)]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    order = ["real data", "50% random inputs", "random inputs", "identity labels", "random inputs, identity labels"]
    for ax, (title, f) in zip(axes[0], panels):
        _curves(ax, f, "step", "gini", order)
        ax.set_xscale("log")
        ax.set_xlabel("SGD steps")
        ax.set_ylabel("Gini coefficient of ḡ_x")
        ax.set_title(title)
        ax.legend(fontsize=8)
    fig.suptitle("Loss-sensitivity concentration (Arpit et al. Fig. 3)")
    fig.tight_layout()
    return fig


def fig04_class_sensitivity(cs: pd.DataFrame):
    """Fig. 4: per-class loss sensitivity ḡ_{i,j} at the last checkpoint, real vs random inputs, log colour."""
    frame = _with_condition(cs[cs["label_noise"] != "identity"])
    frame = frame[frame["step"] == frame.groupby("run_id")["step"].transform("max")]
    conds = [c for c in ("real data", "random inputs") if c in set(frame["condition"])] or sorted(
        frame["condition"].unique())
    mats = {}
    for cond in conds:
        g = frame[frame["condition"] == cond].groupby(["class_i", "class_j"])["value"].mean().unstack()
        mats[cond] = g.to_numpy()
    positive = np.concatenate([m[m > 0] for m in mats.values()])
    norm = LogNorm(vmin=positive.min(), vmax=positive.max())
    fig, axes = plt.subplots(1, len(mats), figsize=(4.6 * len(mats), 4), squeeze=False)
    for ax, (cond, m) in zip(axes[0], mats.items()):
        im = ax.imshow(np.where(m > 0, m, np.nan), norm=norm, cmap="viridis")
        ax.set_title(f"{cond}\ndiagonal / off-diagonal = {diagonal_dominance(m):.1f}")
        ax.set_xlabel("class j of the training inputs x")
        ax.set_ylabel("class i of the loss term")
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.85, label="ḡ_ij")
    fig.suptitle("Per-class loss sensitivity (Arpit et al. Fig. 4)")
    return fig


def fig09_csr_random(csr_table: pd.DataFrame):
    """Fig. 9: validation critical sample ratio per epoch for models trained on real data, random inputs and
    random labels."""
    frame = _with_condition(csr_table[csr_table["split"] == "val"])
    fig, ax = plt.subplots(figsize=(6, 4))
    _curves(ax, frame, "epoch", "csr")
    row = frame.iloc[0]
    ax.set_xlabel("epoch")
    ax.set_ylabel("critical sample ratio (validation)")
    ax.set_title(f"CSR during training (Arpit et al. Fig. 9)\nLASS r={row['lass_r']:g}, α={row['lass_alpha']:g}, "
                 f"β={row['lass_beta']:g} (0–255 scale), ≤{row['lass_max_iter']} iterations, "
                 f"{int(row['n_points'])} points", fontsize=9)
    ax.legend(fontsize=8)
    return fig


def figures_from_tables(tables_dir: str | os.PathLike, out_dir: str | os.PathLike) -> list[Path]:
    """Draw every figure that the tables under `tables_dir` (laid out as results/tables/<experiment>/) feed,
    into `out_dir`, from the tables alone: no runs, checkpoints or Snakemake needed. Each table names the
    figures it feeds in its metadata, so tables of unrelated experiments are not mixed in."""
    from .tables import read_provenance

    found: dict[str, dict[str, list[pd.DataFrame]]] = {}
    for path in sorted(Path(tables_dir).glob("*/*.parquet")):
        for fig in json.loads(read_provenance(path).get("memorization.figures", "[]")):
            if path.stem in FIGURE_TABLES.get(fig, ()):
                found.setdefault(fig, {}).setdefault(path.stem, []).append(pd.read_parquet(path))
    written = []
    for fig, by_table in sorted(found.items()):
        if set(FIGURE_TABLES[fig]) <= set(by_table):
            frames = {t: pd.concat(f, ignore_index=True) for t, f in by_table.items()}
            written += draw(fig, frames, Path(out_dir) / fig)
    return written


def main(argv=None) -> None:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m memorization.figures",
                                 description="Regenerate the paper's figures from a copy of results/tables/.")
    ap.add_argument("tables_dir", help="a directory laid out as results/tables/<experiment>/<table>.parquet")
    ap.add_argument("out_dir", nargs="?", default="figures", help="where to write figNN_<slug>.png/.pdf")
    args = ap.parse_args(argv)
    written = figures_from_tables(args.tables_dir, args.out_dir)
    if not written:
        raise SystemExit(f"no figure could be drawn from {args.tables_dir}: expected "
                         f"<experiment>/<table>.parquet files written by this workflow")
    for path in written:
        print(path)


if __name__ == "__main__":
    main()
