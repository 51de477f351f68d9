"""The paper's figures, drawn from the Parquet tables alone (so a colleague's shared tables suffice)."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # figures are files; no display on workers
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402

from . import registry  # noqa: E402
from .analysis import (
    binomial_reference,
    condition,
    diagonal_dominance,
    difficulty_spread,  # noqa: E402
    distinct,
    filter_arrays,
    first_epoch_difficulty,
    mean_band,
    monotone,
    neighbour_correlation,
    noise_fraction,
    noise_kind,
    per_run_summary,
)
from .tables import tables_by_figure  # noqa: E402

ORDER = ["real data", "random labels", "random inputs"]
REGULARIZER_ORDER = [
    "none",
    "dropout",
    "input_dropout",
    "input_noise",
    "hidden_noise",
    "weight_decay",
    "dropout_adversarial",
]

# One style for every figure: sizes for a two-column paper at 150 dpi, no top/right spines, light grid.
STYLE = {
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "font.size": 9,
    "axes.titlesize": 9.5,
    "axes.labelsize": 9,
    "legend.fontsize": 7.5,
    "legend.frameon": False,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.25,
    "grid.linewidth": 0.6,
    "lines.linewidth": 1.6,
    "lines.markersize": 3.5,
    "figure.titlesize": 10.5,
}


def save(fig, stem: str | os.PathLike, findings: list[str] = (), *, stamp: bool = False) -> list[Path]:
    """Write `stem`.png and `stem`.pdf; PDF without a creation date so reruns give the same bytes.
    With `stamp`, the findings (what this run shows) are also printed under the plot."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    if stamp and findings:
        fig.text(0.01, -0.01, "This run: " + "\n".join(findings), ha="left", va="top", fontsize=7, family="monospace")
    paths = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    fig.savefig(paths[0], bbox_inches="tight", metadata={"Software": None})
    fig.savefig(paths[1], bbox_inches="tight", metadata={"CreationDate": None, "Producer": None})
    plt.close(fig)
    return paths


def _plain_log_axis(ax, base: int = 10, ticks=None) -> None:
    """A log x-axis whose ticks read as plain numbers (50, 1000), not 5x10^1; at `ticks` if given (the data's
    own x values: within one decade a log axis would otherwise label a single tick)."""
    ax.set_xscale("log", base=base)
    if ticks is not None:
        ax.set_xticks(sorted(set(ticks)))
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())


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
        ax.plot(np.arange(len(curve)), curve, lw=2, label=f"{cond} (var/binomial = {spread.loc[cond, 'ratio']:.1f})")
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
    findings = [
        "variance of P(correct) across examples / binomial variance: "
        + ", ".join(f"{c} {spread.loc[c, 'ratio']:.1f}" for c in conds)
    ]
    return fig, findings


def _with_condition(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(condition=frame.apply(condition, axis=1))


def _curves(
    ax, frame: pd.DataFrame, x: str, y: str, order=ORDER, by: str = "condition", colors=None, bounds=None, **style
):
    """Mean over seeds with a ±1 std band, one line per group. `bounds` (low, high) clips the band to the
    range the quantity can take (a ratio's band never goes below 0)."""
    stats = mean_band(frame, x, y, by)
    groups = sorted(stats[by].unique(), key=lambda c: (order.index(c) if c in order else 50, c))
    for group in groups:
        g = stats[stats[by] == group]
        kw = {"marker": "o", "ms": 3, "lw": 1.8, "label": group, **style}
        if colors is not None:
            kw["color"] = colors[group]
        (line,) = ax.plot(g[x], g["mean"], **kw)
        if (g["count"] > 1).any():
            low, high = g["mean"] - g["std"].fillna(0), g["mean"] + g["std"].fillna(0)
            if bounds is not None:
                low, high = low.clip(*bounds), high.clip(*bounds)
            ax.fill_between(g[x], low, high, color=line.get_color(), alpha=0.2, lw=0)
    return stats


def fig02_filters(filters: pd.DataFrame):
    """Fig. 2: first-layer filters after training on real data and on random labels (seed 0 shown), and how
    structured they are: the neighbour-pixel correlation of what training changed (0 = white noise)."""
    frame = _with_condition(filters)
    arrays = filter_arrays(frame)
    conds = [c for c in ORDER if c in set(frame["condition"])] or sorted(frame["condition"].unique())
    n_show = 16
    fig, axes = plt.subplots(1, len(conds), figsize=(4.2 * len(conds), 4.4), squeeze=False)
    findings = []
    for ax, cond in zip(axes[0], conds):
        g = frame[frame["condition"] == cond]
        run, seed = g["run_id"].iloc[0], int(g["seed"].min())
        first, last = g["step"].min(), g["step"].max()
        w = arrays[(run, seed, last)]
        scores = {}
        for (r, sd, st), arr in arrays.items():
            if r in set(g["run_id"]) and st == last:
                scores[(r, sd)] = (
                    neighbour_correlation(arr - arrays[(r, sd, first)]),
                    neighbour_correlation(arrays[(r, sd, first)]),
                )
        learned = np.mean([v[0] for v in scores.values()])
        init = np.mean([v[1] for v in scores.values()])
        k = min(n_show, len(w))
        cols = int(np.ceil(np.sqrt(k)))
        rows = int(np.ceil(k / cols))
        C, H, W = w.shape[1:]
        tiles = np.full((rows * (H + 1) - 1, cols * (W + 1) - 1, 3 if C == 3 else 1), np.nan)
        for i in range(k):
            f = np.moveaxis(w[i], 0, -1)
            f = (f - f.min()) / (f.max() - f.min() + 1e-12)
            r, c = divmod(i, cols)
            tiles[r * (H + 1) : r * (H + 1) + H, c * (W + 1) : c * (W + 1) + W] = f
        ax.imshow(tiles if C == 3 else tiles[..., 0], cmap=None if C == 3 else "gray", interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{cond}\nneighbour correlation of the learned change: {learned:.2f}", fontsize=9)
        findings.append(
            f"{cond}: neighbour-pixel correlation of W_T - W_0 {learned:.2f} "
            f"(initial filters {init:.2f}), over {len(scores)} seed(s)"
        )
    arch = frame["arch"].iloc[0]
    what = "first-layer 5x5 filters" if arch == "cnn" else "first-layer units as images"
    fig.suptitle(f"{what} at the end of training, seed 0, each scaled to its range (Arpit et al. Fig. 2)", fontsize=10)
    return fig, findings


def fig03_gini(gini_table: pd.DataFrame):
    """Fig. 3: Gini coefficient of the loss sensitivity ḡ_x over the training examples against SGD steps;
    left with the data's labels, right with one class per example."""
    frame = _with_condition(gini_table)
    identity = frame["label_noise"] == "identity"
    panels = [("labels: the real classes", frame[~identity]), ("labels: one class per example", frame[identity])]
    panels = [(t, f) for t, f in panels if len(f)]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    order = ["real data", "50% random inputs", "random inputs", "identity labels", "random inputs, identity labels"]
    findings = []
    for ax, (title, f) in zip(axes[0], panels):
        stats = _curves(ax, f, "step", "gini", order, bounds=(0, 1)).pivot(
            index="step", columns="condition", values="mean"
        )
        real = [c for c in stats if c in ("real data", "identity labels")]
        rand = [c for c in stats if c in ("random inputs", "random inputs, identity labels")]
        if real and rand:
            above = stats[real[0]] > stats[rand[0]]
            findings.append(
                f"{title}: Gini real > random inputs at {int(above.sum())} of {len(above)} checkpoints"
                f" (last, T={stats.index[-1]}: {stats[real[0]].iloc[-1]:.3f} vs {stats[rand[0]].iloc[-1]:.3f})"
            )
        _plain_log_axis(ax, ticks=f["step"])
        ax.set_xlabel("SGD steps")
        ax.set_ylabel(r"Gini coefficient of $\bar{g}_x$")
        ax.set_title(title)
        ax.legend(fontsize=8)
    fig.suptitle("Loss-sensitivity concentration (Arpit et al. Fig. 3)")
    fig.tight_layout()
    return fig, findings


def fig04_class_sensitivity(cs: pd.DataFrame):
    """Fig. 4: per-class loss sensitivity ḡ_{i,j} at the last checkpoint, real vs random inputs, log colour."""
    frame = _with_condition(cs[cs["label_noise"] != "identity"])
    frame = frame[frame["step"] == frame.groupby("run_id")["step"].transform("max")]
    conds = [c for c in ("real data", "random inputs") if c in set(frame["condition"])] or sorted(
        frame["condition"].unique()
    )
    mats = {}
    for cond in conds:
        g = frame[frame["condition"] == cond].groupby(["class_i", "class_j"])["value"].mean().unstack()
        mats[cond] = g.to_numpy()
    positive = np.concatenate([m[m > 0] for m in mats.values()])  # (NaN > 0 is False)
    norm = LogNorm(vmin=positive.min(), vmax=positive.max())
    fig, axes = plt.subplots(1, len(mats), figsize=(4.6 * len(mats), 4), squeeze=False)
    for ax, (cond, m) in zip(axes[0], mats.items()):
        im = ax.imshow(np.where(m > 0, m, np.nan), norm=norm, cmap="viridis")  # NaN and 0: not drawn
        ax.set_title(f"{cond}\ndiagonal / off-diagonal = {diagonal_dominance(m):.1f}")
        ax.set_xlabel("class j of the training inputs x")
        ax.set_ylabel("class i of the loss term")
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.85, label=r"$\bar{g}_{ij}$")
    variant = cs["variant"].iloc[0] if "variant" in cs else "paper"
    fig.suptitle(f"Per-class loss sensitivity at the last checkpoint ({variant}'s definition) (Arpit et al. Fig. 4)")
    every = _with_condition(cs[cs["label_noise"] != "identity"])
    findings = []
    for step, at_step in every.groupby("step"):  # D at every computed checkpoint: the ordering can depend on T
        d = {
            c: diagonal_dominance(g.groupby(["class_i", "class_j"])["value"].mean().unstack().to_numpy())
            for c, g in at_step.groupby("condition")
        }
        findings.append(f"D at step {step}: " + ", ".join(f"{c} {v:.2f}" for c, v in sorted(d.items())))
    return fig, findings


def _noise_condition(frame: pd.DataFrame) -> pd.DataFrame:
    """Adds `noise` (input | label | none) and `fraction`, and a legend label."""
    kind = frame.apply(noise_kind, axis=1)
    frac = frame.apply(noise_fraction, axis=1)
    label = [("no noise" if k == "none" else f"{k} noise {f:g}") for k, f in zip(kind, frac)]
    return frame.assign(noise=kind, fraction=frac, noise_label=label)


def _fraction_colors(labels_by_fraction: dict) -> dict:
    cmap = plt.get_cmap("viridis")
    fr = sorted(labels_by_fraction)
    return {labels_by_fraction[f]: cmap(0.9 * i / max(1, len(fr) - 1)) for i, f in enumerate(fr)}


def fig05_capacity(training: pd.DataFrame):
    """Fig. 5: best validation accuracy against hidden units, one curve per noise level."""
    summary = _noise_condition(per_run_summary(training))
    summary = summary[summary["train_size"] == summary["train_size"].max()]
    fig, ax = plt.subplots(figsize=(6, 4))
    colors = _fraction_colors(dict(zip(summary["fraction"], summary["noise_label"])))
    order = [lab for _, lab in sorted(set(zip(summary["fraction"], summary["noise_label"])))]
    stats = _curves(ax, summary, "width", "best_val_acc", order, by="noise_label", colors=colors, bounds=(0, 1))
    _plain_log_axis(ax, base=2)
    ax.set_xlabel("hidden units per layer")
    ax.set_ylabel("best validation accuracy (clean data)")
    ax.set_title("Validation accuracy against capacity (Arpit et al. Fig. 5)")
    ax.legend(fontsize=8)
    findings = []
    for label in order:
        g = stats[stats["noise_label"] == label].set_index("width")["mean"]
        best = g.idxmax()
        findings.append(
            f"{label}: best width {best} ({g.max():.3f}); at the widest, {g.index[-1]}, "
            f"{g.iloc[-1]:.3f} ({g.max() - g.iloc[-1]:.3f} below the best)"
        )
    return fig, findings


def fig06_convergence(convergence: pd.DataFrame):
    """Fig. 6: epochs to 100% training accuracy against hidden units (full training set) and against the
    training-set size (one width), per input-noise level. Runs that never fit are drawn at their cap, hollow."""
    frame = _noise_condition(convergence)
    frame = frame.assign(
        epochs=frame["epochs_to_fit"].astype("float64").fillna(frame["max_epochs"]),
        capped=frame["epochs_to_fit"].isna(),
    )
    widths_per_size = frame.groupby("train_size")["width"].nunique()
    sizes_per_width = frame.groupby("width")["train_size"].nunique()
    full = widths_per_size.idxmax()
    fixed = sizes_per_width.idxmax()
    panels = [
        ("width", frame[frame["train_size"] == full], f"training set: {full} examples"),
        ("train_size", frame[frame["width"] == fixed], f"{fixed} hidden units"),
    ]
    panels = [p for p in panels if p[1]["width" if p[0] == "width" else "train_size"].nunique() > 1]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    colors = _fraction_colors(dict(zip(frame["fraction"], frame["noise_label"])))
    order = [lab for _, lab in sorted(set(zip(frame["fraction"], frame["noise_label"])))]
    findings = []
    for ax, (x, f, title) in zip(axes[0], panels):
        stats = _curves(ax, f, x, "epochs", order, by="noise_label", colors=colors)
        capped = f[f["capped"]]
        if len(capped):
            ax.scatter(
                capped[x], capped["epochs"], facecolors="none", edgecolors="k", s=40, zorder=5, label="never fit (cap)"
            )
        _plain_log_axis(ax, base=2)
        ax.set_xlabel("hidden units per layer" if x == "width" else "training examples")
        ax.set_ylabel("epochs to 100% training accuracy")
        ax.set_title(title)
        ax.legend(fontsize=7)
        for label in order:
            g = stats[stats["noise_label"] == label].set_index(x)["mean"]
            if len(g) > 1:
                change = g.iloc[-1] / g.iloc[0]
                findings.append(
                    f"{title}, {label}: {g.iloc[0]:.1f} -> {g.iloc[-1]:.1f} epochs from {x} "
                    f"{g.index[0]} to {g.index[-1]} (x{change:.2f})"
                )
    fig.suptitle("Time to convergence (Arpit et al. Fig. 6)")
    fig.tight_layout()
    return fig, findings


def _noise_sweep(training: pd.DataFrame, csr: pd.DataFrame, title: str):
    """Figs 7 and 8: per noise kind (rows), training (solid) and validation (dotted) accuracy and the
    validation CSR against epochs, one colour per noise fraction; the clean run appears in both rows."""
    training = _noise_condition(training)
    csr = _noise_condition(csr[csr["split"] == "val"])
    kinds = [k for k in ("input", "label") if k in set(training["noise"])]
    fig, axes = plt.subplots(len(kinds), 2, figsize=(11, 3.8 * len(kinds)), squeeze=False)
    findings = []
    for row, kind in zip(axes, kinds):
        t = training[training["noise"].isin([kind, "none"])]
        c = csr[csr["noise"].isin([kind, "none"])]
        fractions = dict(zip(t["fraction"], t["noise_label"]))
        colors = _fraction_colors(fractions)
        order = [fractions[f] for f in sorted(fractions)]
        _curves(row[0], t, "epoch", "train_acc", order, by="noise_label", colors=colors, bounds=(0, 1), marker=None)
        val = _curves(
            row[0], t, "epoch", "val_acc", order, by="noise_label", colors=colors, bounds=(0, 1), marker=None, ls=":"
        )
        row[0].set_ylabel("accuracy (solid: training, dotted: validation)")
        row[0].set_title(f"{kind} noise: accuracy")
        handles, labels = row[0].get_legend_handles_labels()
        row[0].legend(handles[: len(order)], labels[: len(order)], fontsize=7)
        stats = _curves(row[1], c, "epoch", "csr", order, by="noise_label", colors=colors, bounds=(0, 1))
        row[1].set_ylabel("critical sample ratio (validation)")
        row[1].set_title(f"{kind} noise: CSR")
        for ax in row:
            ax.set_xlabel("epoch")
        final_csr = [stats[stats["noise_label"] == lab]["mean"].iloc[-1] for lab in order]
        best_val = [val[val["noise_label"] == lab]["mean"].max() for lab in order]
        findings.append(
            f"{kind} noise {', '.join(f'{f:g}' for f in sorted(fractions))}: final val CSR "
            f"{' '.join(f'{v:.2f}' for v in final_csr)} (increasing: {monotone(final_csr)}); best val acc "
            f"{' '.join(f'{v:.3f}' for v in best_val)} (decreasing: {monotone(best_val, False)})"
        )
        if kind == "label":
            peaks = []
            for lab, f in zip(order, sorted(fractions)):
                if f >= 0.4:
                    g = val[val["noise_label"] == lab].set_index("epoch")["mean"]
                    peaks.append(f"{f:g}: peak {g.max():.3f} at epoch {g.idxmax():g}, final {g.iloc[-1]:.3f}")
            if peaks:
                findings.append("label noise, validation accuracy peak then end: " + "; ".join(peaks))
    row0 = csr.iloc[0] if len(csr) else None
    lass = (
        f"; LASS r={row0['lass_r']:g} (0-255 scale), {int(row0['n_points'])} validation points"
        if row0 is not None
        else ""
    )
    fig.suptitle(f"{title}{lass}", fontsize=10)
    fig.tight_layout()
    return fig, findings


def fig07_mlp_noise(training: pd.DataFrame, csr: pd.DataFrame):
    """Fig. 7: the MLP under partial input noise and label noise."""
    return _noise_sweep(training, csr, "MLP, partial noise: accuracy and critical sample ratio (Arpit et al. Fig. 7)")


def fig08_cnn_noise(training: pd.DataFrame, csr: pd.DataFrame):
    """Fig. 8: the CNN under partial input noise and label noise."""
    return _noise_sweep(training, csr, "CNN, partial noise: accuracy and critical sample ratio (Arpit et al. Fig. 8)")


def fig09_csr_random(csr_table: pd.DataFrame):
    """Fig. 9: validation critical sample ratio per epoch for models trained on real data, random inputs and
    random labels; training-split CSR (footnote 5) dashed where measured."""
    frame = _with_condition(csr_table)
    val, train = frame[frame["split"] == "val"], frame[frame["split"] == "train"]
    fig, ax = plt.subplots(figsize=(6, 4))
    stats = _curves(ax, val, "epoch", "csr", bounds=(0, 1))
    findings = []
    later = stats[stats["epoch"] > stats["epoch"].min() + 1].groupby("condition")["mean"]
    findings.append(
        "mean validation CSR after the first checkpoints: " + ", ".join(f"{c} {v:.2f}" for c, v in later.mean().items())
    )
    real_train = train[train["condition"] == "real data"]
    if len(real_train):
        g = mean_band(real_train, "epoch", "csr")
        ax.plot(g["epoch"], g["mean"], "k--", lw=1, label="real data, training split")
        findings.append("training-split CSR, real data: " + " ".join(f"{v:.2f}" for v in g["mean"]))
    row = val.iloc[0]
    ax.set_xlabel("epoch")
    ax.set_ylabel("critical sample ratio")
    ax.set_title(
        f"CSR during training (Arpit et al. Fig. 9)\nLASS r={row['lass_r']:g}, α={row['lass_alpha']:g}, "
        f"β={row['lass_beta']:g} (0–255 scale), ≤{row['lass_max_iter']} iterations, "
        f"{int(row['n_points'])} points",
        fontsize=9,
    )
    ax.legend(fontsize=8)
    return fig, findings


def _is_real(frame):
    return (frame["input_noise"] == "none") & (frame["label_noise"] == "none")


def _is_random_labels(frame):
    return (
        (frame["label_noise"] == "random") & (frame["label_noise_fraction"] == 1.0) & (frame["input_noise"] == "none")
    )


def fig10_regularizers(training: pd.DataFrame):
    """Fig. 10: for each regulariser, across its strengths, the final training accuracy on random labels (x)
    against the best validation accuracy on real data (y); every curve starts at the unregularised point.
    A flat curve hinders memorisation without hurting generalisation. One panel per regulariser on shared
    axes (the others in grey behind it), so the strength labels of different curves never collide."""
    summary = per_run_summary(training)
    key = ["regularizer", "reg_strength"]
    rand = summary[_is_random_labels(summary)].groupby(key)["final_train_acc"].agg(["mean", "std"])
    real = summary[_is_real(summary)].groupby(key)["best_val_acc"].agg(["mean", "std"])
    points = rand.add_suffix("_rand").join(real.add_suffix("_real"), how="inner").reset_index()
    base = points[points["regularizer"] == "none"]
    regs = [r for r in REGULARIZER_ORDER if r in set(points["regularizer"]) and r != "none"]
    curves = {reg: pd.concat([base, points[points["regularizer"] == reg]]).sort_values("reg_strength") for reg in regs}
    cols = min(3, max(1, len(regs)))
    rows = int(np.ceil(len(regs) / cols)) or 1
    fig, axes = plt.subplots(rows, cols, figsize=(3.3 * cols, 2.9 * rows), sharex=True, sharey=True, squeeze=False)
    colors = {reg: plt.get_cmap("tab10")(i) for i, reg in enumerate(regs)}
    findings = [
        "change from no regularisation, per strength: random-label training accuracy / real-data best "
        "validation accuracy"
    ]
    for ax, reg in zip(axes.flat, regs):
        for other, g in curves.items():
            if other != reg:
                ax.plot(g["mean_rand"], g["mean_real"], color="0.85", lw=1, zorder=1)
        g = curves[reg]
        ax.errorbar(
            g["mean_rand"],
            g["mean_real"],
            xerr=g["std_rand"].fillna(0),
            yerr=g["std_real"].fillna(0),
            marker="o",
            capsize=2,
            color=colors[reg],
            zorder=3,
        )
        ax.plot(base["mean_rand"], base["mean_real"], "ks", ms=5, zorder=4, label="no regulariser")
        for i, (_, r) in enumerate(g.iloc[1:].iterrows()):
            ax.annotate(
                f"{r['reg_strength']:g}",
                (r["mean_rand"], r["mean_real"]),
                fontsize=7,
                textcoords="offset points",
                xytext=(4, 4 if i % 2 == 0 else -10),
            )
        ax.set_title(reg.replace("_", " "))
        changes = [
            f"{r['reg_strength']:g}: {r['mean_rand'] - g['mean_rand'].iloc[0]:+.3f} / "
            f"{r['mean_real'] - g['mean_real'].iloc[0]:+.3f}"
            for _, r in g.iloc[1:].iterrows()
        ]
        findings.append(f"{reg}: {'; '.join(changes)}")
    for ax in axes.flat[len(regs) :]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("final training accuracy,\nrandom labels")
    for ax in axes[:, 0]:
        ax.set_ylabel("best validation accuracy,\nreal data")
    axes.flat[0].legend(loc="lower left")
    fig.suptitle("Regularisers: memorisation vs generalisation (Arpit et al. Fig. 10)")
    fig.tight_layout()
    return fig, findings


def fig11_regularizer_curves(training: pd.DataFrame):
    """Fig. 11: training loss against epochs under selected regularisers, random labels (left) and real data
    (right); the paper's point is that the vertical order of the curves differs between the two."""
    frame = training.assign(
        setting=[r if r == "none" else f"{r} {s:g}" for r, s in zip(training["regularizer"], training["reg_strength"])]
    )
    panels = [("random labels", frame[_is_random_labels(frame)]), ("real data", frame[_is_real(frame)])]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=False)
    order = sorted(frame["setting"].unique(), key=lambda s: (REGULARIZER_ORDER.index(s.split()[0]), s))
    cmap = plt.get_cmap("tab10")
    colors = {s: cmap(i % 10) for i, s in enumerate(order)}
    ranks = {}
    for ax, (title, f) in zip(axes, panels):
        stats = _curves(ax, f, "epoch", "train_loss", order, by="setting", colors=colors, marker=None)
        last = stats[stats["epoch"] == stats["epoch"].max()].sort_values("mean")
        ranks[title] = list(last["setting"])
        ax.set_xlabel("epoch")
        ax.set_ylabel("training loss")
        ax.set_title(title)
        ax.legend(fontsize=7)
    fig.suptitle("Training loss under regularisers (Arpit et al. Fig. 11)")
    fig.tight_layout()
    findings = [f"{t}, lowest to highest final training loss: {', '.join(r)}" for t, r in ranks.items()]
    if len(ranks) == 2:
        a, b = ranks.values()
        findings.append(f"the two orders {'differ' if a != b else 'are the same'}")
    return fig, findings


def build(figure: str, tables: dict[str, pd.DataFrame]):
    """(matplotlib figure, findings) of one registered figure from its tables (name -> concatenated frame)."""
    entry = registry.figure(figure)
    with plt.rc_context(STYLE):
        return registry.resolve(entry.draw)(*[distinct(tables[t]) for t in entry.tables])


def draw(figure: str, tables: dict[str, pd.DataFrame], stem: str | os.PathLike, *, stamp: bool = False) -> list[str]:
    """Draw `figure` from its tables, save it as PNG and PDF, and return (and print) its findings: what this
    run shows, computed from the tables. `stamp` also prints them under the plot."""
    fig, findings = build(figure, tables)
    for line in findings:
        print(f"{figure}: {line}")
    with plt.rc_context(STYLE):
        save(fig, stem, findings, stamp=stamp)
    return findings


def findings_html(findings: dict[str, list[str]]) -> str:
    """The findings of several figures as one small HTML page (the report shows it)."""
    from html import escape

    parts = [
        "<html><head><meta charset='utf-8'><title>What this run shows</title></head><body>",
        "<h2>What this run shows, figure by figure</h2>",
        "<p>Computed from this run's tables by each figure's job; the paper's claims are in the captions.</p>",
    ]
    for name, lines in findings.items():
        items = "".join(f"<li>{escape(line)}</li>" for line in lines)
        parts.append(f"<h3>{escape(name)}</h3><ul>{items}</ul>")
    return "\n".join(parts + ["</body></html>"]) + "\n"


def figures_from_tables(
    tables_dir: str | os.PathLike, out_dir: str | os.PathLike, *, stamp: bool = False
) -> list[Path]:
    """Draw every figure that the tables under `tables_dir` (laid out as results/tables/<experiment>/) feed,
    into `out_dir`, from the tables alone: no runs, checkpoints or Snakemake needed."""
    written = []
    for fig, frames in tables_by_figure(tables_dir).items():
        stem = Path(out_dir) / fig
        draw(fig, frames, stem, stamp=stamp)
        written += [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    return written


def main(argv=None) -> None:
    import argparse

    ap = argparse.ArgumentParser(
        prog="python -m memorization.figures",
        description="Regenerate the paper's figures from a copy of results/tables/.",
    )
    ap.add_argument("tables_dir", help="a directory laid out as results/tables/<experiment>/<table>.parquet")
    ap.add_argument("out_dir", nargs="?", default="figures", help="where to write figNN_<slug>.png/.pdf")
    ap.add_argument("--stamp-findings", action="store_true", help="print what this run shows under each plot")
    args = ap.parse_args(argv)
    written = figures_from_tables(args.tables_dir, args.out_dir, stamp=args.stamp_findings)
    if not written:
        raise SystemExit(
            f"no figure could be drawn from {args.tables_dir}: expected "
            f"<experiment>/<table>.parquet files written by this workflow"
        )
    for path in written:
        print(path)


if __name__ == "__main__":
    main()
