"""Fig. 10: regularisers, memorisation of random labels against generalisation on real data (the paper's §5)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ...catalog import REGULARIZER_AXES, REGULARIZERS, Claim, Figure, Verdict, register_claims, register_figure
from ...report.stats import is_random_labels, is_real, per_run_summary

CAPTION = """\
**Fig. 10, regularisers: memorisation against generalisation.** For each regulariser across its
strengths (labelled points; every curve starts at the unregularised point): final training accuracy
on random labels (x) against best validation accuracy when trained on real data (y). *Paper (§5):*
a flat curve is best; dropout hinders memorisation most for the least cost, best with adversarial
training; weight decay and Gaussian noise lose more validation accuracy for the same effect."""


@dataclass(frozen=True)
class RegulariserPoints:
    points: pd.DataFrame  # per (regularizer, reg_strength): mean/std over seeds of x and y, cut and cost
    regularizers: list[str]  # those run besides "none", in the paper's order

    @property
    def base(self) -> pd.DataFrame:
        return self.points[self.points["regularizer"] == "none"]

    def curve(self, reg: str) -> pd.DataFrame:
        """The unregularised point, then the regulariser's strengths in increasing order."""
        return pd.concat([self.base, self.points[self.points["regularizer"] == reg]]).sort_values("reg_strength")


def regulariser_points(training: pd.DataFrame) -> RegulariserPoints:
    """x: final training accuracy on random labels (real inputs); y: best validation accuracy on real data,
    per setting, mean and std over seeds; `cut` and `cost`: how much x and y fall from no regularisation."""
    summary = per_run_summary(training)
    key = ["regularizer", "reg_strength"]
    rand = summary[is_random_labels(summary)].groupby(key)["final_train_acc"].agg(["mean", "std"])
    real = summary[is_real(summary)].groupby(key)["best_val_acc"].agg(["mean", "std"])
    points = rand.add_suffix("_rand").join(real.add_suffix("_real"), how="inner").reset_index()
    base = points[points["regularizer"] == "none"].iloc[0]
    points = points.assign(cut=base["mean_rand"] - points["mean_rand"], cost=base["mean_real"] - points["mean_real"])
    return RegulariserPoints(points, [r for r in REGULARIZERS if r in set(points["regularizer"]) and r != "none"])


def findings(p: RegulariserPoints) -> list[str]:
    lines = [
        "change from no regularisation, per strength: random-label training accuracy / real-data best "
        "validation accuracy"
    ]
    for reg in p.regularizers:
        changes = [f"{r.reg_strength:g}: {-r.cut:+.3f} / {-r.cost:+.3f}" for r in p.curve(reg).iloc[1:].itertuples()]
        lines.append(f"{reg}: {'; '.join(changes)}")
    return lines


def draw(p: RegulariserPoints):
    """One panel per regulariser on shared axes (the others in grey behind it), so the strength labels of
    different curves never collide."""
    import matplotlib.pyplot as plt

    regs = p.regularizers
    curves = {reg: p.curve(reg) for reg in regs}
    cols = min(3, max(1, len(regs)))
    rows = int(np.ceil(len(regs) / cols)) or 1
    fig, axes = plt.subplots(rows, cols, figsize=(3.3 * cols, 2.9 * rows), sharex=True, sharey=True, squeeze=False)
    colors = {reg: plt.get_cmap("tab10")(i) for i, reg in enumerate(regs)}
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
        ax.plot(p.base["mean_rand"], p.base["mean_real"], "ks", ms=5, zorder=4, label="no regulariser")
        for i, (_, r) in enumerate(g.iloc[1:].iterrows()):
            ax.annotate(
                f"{r['reg_strength']:g}",
                (r["mean_rand"], r["mean_real"]),
                fontsize=7,
                textcoords="offset points",
                xytext=(4, 4 if i % 2 == 0 else -10),
            )
        ax.set_title(reg.replace("_", " "))
    for ax in axes.flat[len(regs) :]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("final training accuracy,\nrandom labels")
    for ax in axes[:, 0]:
        ax.set_ylabel("best validation accuracy,\nreal data")
    axes.flat[0].legend(loc="lower left")
    from ...report.plotting import titled

    return titled(fig, "Regularisers: memorisation vs generalisation (Arpit et al. Fig. 10)")


FIGURE = register_figure(
    Figure(
        "fig10_regularizers",
        ("training",),
        CAPTION,
        compute=regulariser_points,
        draw=draw,
        findings=findings,
        axes=REGULARIZER_AXES,
    )
)


def dropout_hinders_memorisation(p: RegulariserPoints) -> Verdict:
    """Some dropout strength, and some dropout + adversarial strength, cuts random-label training accuracy by
    at least 30 points while best real-data validation accuracy drops by at most 2 points."""
    parts, holds = [], True
    for reg in ("dropout", "dropout_adversarial"):
        q = p.points[p.points["regularizer"] == reg]
        holds &= bool(((q["cut"] >= 0.30) & (q["cost"] <= 0.02)).any())
        if len(q):
            best = q.loc[q["cut"].idxmax()]
            parts.append(f"{reg} {best['reg_strength']:g}: cut {best['cut']:.3f}, validation cost {best['cost']:+.3f}")
    return Verdict("; ".join(parts), holds)


def steeper_curves(p: RegulariserPoints) -> Verdict:
    """Validation accuracy lost per point of memorisation cut, at each regulariser's strongest setting: weight
    decay and input Gaussian noise lose more than dropout."""
    strongest = p.points[p.points["regularizer"] != "none"].sort_values("cut").groupby("regularizer").tail(1)
    slope = (strongest.set_index("regularizer")["cost"] / strongest.set_index("regularizer")["cut"]).to_dict()
    value = ", ".join(f"{k} {v:+.3f}" for k, v in sorted(slope.items()))
    return Verdict(value, bool(all(slope.get(k, -np.inf) > slope["dropout"] for k in ("weight_decay", "input_noise"))))


def dropout_adversarial_best(p: RegulariserPoints) -> Verdict:
    """Per regulariser, the largest cut of random-label training accuracy among its strengths that cost at most
    2 points of real-data validation accuracy (0 where none does): dropout with adversarial training's is the
    largest."""
    q = p.points[p.points["regularizer"] != "none"]
    cut = q[q["cost"] <= 0.02].groupby("regularizer")["cut"].max().reindex(p.regularizers).fillna(0.0).clip(lower=0)
    value = ", ".join(f"{k} {v:.3f}" for k, v in cut.items())
    return Verdict(value, bool("dropout_adversarial" in cut and cut["dropout_adversarial"] >= cut.max()))


register_claims(
    Claim(
        "fig10_dropout_hinders_memorisation",
        FIGURE.name,
        "Dropout, and dropout with adversarial training, hinder memorisation without hurting generalisation.",
        "random-label training accuracy cut and real-data validation cost vs no regulariser, per strength",
        "some strength of each cuts >= 30 points at <= 2 points of validation cost",
        dropout_hinders_memorisation,
    ),
    Claim(
        "fig10_dropout_adversarial_best",
        FIGURE.name,
        "Dropout combined with adversarial training is the best at hindering memorisation without hurting learning.",
        "per regulariser, the largest random-label training accuracy cut at <= 2 points of validation cost",
        "dropout with adversarial training's is the largest",
        dropout_adversarial_best,
    ),
    Claim(
        "fig10_steeper_curves",
        FIGURE.name,
        "Weight decay and Gaussian input noise lose more validation accuracy for the same effect.",
        "validation cost per point of memorisation cut at each regulariser's strongest setting",
        "weight decay and input noise above dropout",
        steeper_curves,
    ),
)
