"""Fig. 10: regularisers, memorisation of random labels against generalisation on real data (the paper's §5)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ...catalog import REGULARIZER_AXES, REGULARIZERS, Claim, Figure, Verdict, register_claims, register_figure
from ...report.stats import (
    adversarial_weight,
    is_random_labels,
    is_real,
    not_below,
    per_run_summary,
    regulariser_curve,
    regulariser_setting,
    standard_error,
)

CAPTION = """\
**Fig. 10, regularisers: memorisation against generalisation.** For each regulariser across its
strengths (labelled points; every curve starts at the unregularised point; dropout with adversarial
training has a curve per adversarial weight): final training accuracy on random labels (x) against
best validation accuracy when trained on real data (y), mean ± std over seeds. Right: the curves read
at matched cuts of random-label training accuracy (interpolated; ± standard error), where a flatter
curve is higher. *Paper (§5):* a flat curve is best; dropout hinders memorisation most for the least
cost, best with adversarial training; weight decay and Gaussian noise lose more validation accuracy
for the same effect."""


# Matched cuts: every MATCHED_STEP of random-label training accuracy, up to the largest cut of any regulariser.
MATCHED_STEP = 0.1


@dataclass(frozen=True)
class RegulariserPoints:
    points: pd.DataFrame  # per setting: mean/std/count over seeds of x and y, cut and cost, `curve` and `setting`
    regularizers: list[str]  # those run besides "none", in the paper's order
    matched: pd.DataFrame  # per (regularizer, cut): y at that cut along the regulariser's best curve (± se)

    @property
    def base(self) -> pd.DataFrame:
        return self.points[self.points["regularizer"] == "none"]

    def curves_of(self, reg: str) -> list[str]:
        """The regulariser's curves: one, or for dropout with adversarial training one per weight."""
        return sorted(set(self.points.loc[self.points["regularizer"] == reg, "curve"]))

    def curve(self, label: str) -> pd.DataFrame:
        """The unregularised point, then the curve's strengths in increasing order."""
        return pd.concat([self.base, self.points[self.points["curve"] == label]]).sort_values("reg_strength")


def regulariser_points(training: pd.DataFrame) -> RegulariserPoints:
    """x: final training accuracy on random labels (real inputs); y: best validation accuracy on real data,
    per setting (regulariser, adversarial weight, strength), mean, std and count over seeds; `cut` and `cost`:
    how much x and y fall from no regularisation; and y at matched cuts (`matched_cuts`)."""
    summary = per_run_summary(training)
    weights = dict(zip(training["run_id"], adversarial_weight(training)))
    summary["adversarial_weight"] = summary["run_id"].map(weights).astype("Float64")
    key = ["regularizer", "adversarial_weight", "reg_strength"]
    by = {"sort": True, "dropna": False}  # the unregularised runs have no adversarial weight
    rand = summary[is_random_labels(summary)].groupby(key, **by)["final_train_acc"].agg(["mean", "std"])
    real = summary[is_real(summary)].groupby(key, **by)["best_val_acc"].agg(["mean", "std", "count"])
    points = rand.add_suffix("_rand").join(real.add_suffix("_real"), how="inner").reset_index()
    base = points[points["regularizer"] == "none"].iloc[0]
    points = points.assign(
        cut=base["mean_rand"] - points["mean_rand"],
        cost=base["mean_real"] - points["mean_real"],
        se_real=standard_error(points["std_real"], points["count_real"]),
        curve=regulariser_curve(points),
        setting=regulariser_setting(points),
    )
    regularizers = [r for r in REGULARIZERS if r in set(points["regularizer"]) and r != "none"]
    return RegulariserPoints(points, regularizers, matched_cuts(points, regularizers))


def at_cut(curve: pd.DataFrame, cut: float) -> tuple[float, float] | None:
    """Best validation accuracy (mean, standard error) where a curve cuts random-label training accuracy by
    `cut`: linear between the two settings whose cuts bracket it, the standard error of that weighted mean of
    two independent means; None beyond the curve's largest cut (no setting of it cuts that much)."""
    curve = curve.sort_values("cut", kind="stable")
    x, y, se = (curve[c].to_numpy(dtype=np.float64) for c in ("cut", "mean_real", "se_real"))
    if cut > x.max():
        return None
    i = int(np.searchsorted(x, cut))
    if x[i] == cut or i == 0:
        return float(y[i]), float(se[i])
    t = (cut - x[i - 1]) / (x[i] - x[i - 1])
    return float((1 - t) * y[i - 1] + t * y[i]), float(np.hypot((1 - t) * se[i - 1], t * se[i]))


def matched_cuts(points: pd.DataFrame, regularizers: list[str]) -> pd.DataFrame:
    """Per regulariser and matched cut (every MATCHED_STEP up to the largest cut any setting reaches): best
    validation accuracy at that cut along each of its curves (`at_cut`), the best of its curves (for dropout
    with adversarial training, the weight that does best there: the paper sweeps both). A regulariser whose
    settings never cut that much has no row at that cut."""
    base = points[points["regularizer"] == "none"]
    top = points["cut"].max()
    cuts = [round(k * MATCHED_STEP, 10) for k in range(1, int(np.floor(top / MATCHED_STEP + 1e-9)) + 1)]
    rows = []
    for reg in regularizers:
        curves = {c: pd.concat([base, g]) for c, g in points[points["regularizer"] == reg].groupby("curve")}
        for cut in cuts:
            found = {label: at_cut(curve, cut) for label, curve in curves.items()}
            found = {label: v for label, v in found.items() if v is not None}
            if found:
                label = max(found, key=lambda k: found[k][0])
                rows.append({"regularizer": reg, "cut": cut, "val_acc": found[label][0], "se": found[label][1],
                             "curve": label})  # fmt: skip
    return pd.DataFrame(rows, columns=["regularizer", "cut", "val_acc", "se", "curve"])


def findings(p: RegulariserPoints) -> list[str]:
    lines = [
        "change from no regularisation, per strength: random-label training accuracy / real-data best "
        "validation accuracy"
    ]
    for reg in p.regularizers:
        for label in p.curves_of(reg):
            changes = [
                f"{r.reg_strength:g}: {-r.cut:+.3f} / {-r.cost:+.3f}" for r in p.curve(label).iloc[1:].itertuples()
            ]
            lines.append(f"{label}: {'; '.join(changes)}")
    lines.append(
        "best validation accuracy at matched cuts of random-label training accuracy (interpolated along each "
        "curve; mean ± standard error over seeds), highest first:"
    )
    for cut, g in p.matched.groupby("cut"):
        ranked = g.sort_values("val_acc", ascending=False)
        lines.append(
            f"cut {cut:g}: " + ", ".join(f"{r.curve} {r.val_acc:.4f} ± {r.se:.4f}" for r in ranked.itertuples())
        )
    return lines


def draw(p: RegulariserPoints):
    """One panel per regulariser on shared axes (the others in grey behind it), so the strength labels of
    different curves never collide; dropout with adversarial training has a line per weight. Beside them, the
    claims' reading: best validation accuracy at matched cuts, per regulariser."""
    import matplotlib.pyplot as plt

    regs = p.regularizers
    cols = min(3, max(1, len(regs)))
    rows = int(np.ceil(len(regs) / cols)) or 1
    fig = plt.figure(figsize=(3.3 * cols + 4.2, 2.9 * rows + 0.4), layout="constrained")
    left, right = fig.subfigures(1, 2, width_ratios=[3.3 * cols, 4.2])
    axes = left.subplots(rows, cols, sharex=True, sharey=True, squeeze=False)
    colors = {reg: plt.get_cmap("tab10")(i) for i, reg in enumerate(regs)}
    labels = [label for reg in regs for label in p.curves_of(reg)]
    for ax, reg in zip(axes.flat, regs):
        own, labelled = p.curves_of(reg), set()
        for other in labels:
            if other not in own:  # not by name: "dropout_adversarial, w 0.5" starts with "dropout"
                g = p.curve(other)
                ax.plot(g["mean_rand"], g["mean_real"], color="0.85", lw=1, zorder=1)
        for k, label in enumerate(own):
            g = p.curve(label)
            ax.errorbar(
                g["mean_rand"],
                g["mean_real"],
                xerr=g["std_rand"].fillna(0),
                yerr=g["std_real"].fillna(0),
                marker="o",
                capsize=2,
                color=colors[reg],
                alpha=1.0 - 0.55 * k / max(1, len(own) - 1),
                label=label.split(", ")[1] if ", " in label else None,
                zorder=3,
            )
            for i, (_, r) in enumerate(g.iloc[1:].iterrows()):
                if r["reg_strength"] in labelled:  # each strength once a panel: the weights' points lie close
                    continue
                labelled.add(r["reg_strength"])
                ax.annotate(
                    f"{r['reg_strength']:g}",
                    (r["mean_rand"], r["mean_real"]),
                    fontsize=7,
                    textcoords="offset points",
                    xytext=(4, 4 if i % 2 == 0 else -10),
                )
        ax.plot(p.base["mean_rand"], p.base["mean_real"], "ks", ms=5, zorder=4, label="no regulariser")
        ax.set_title(reg.replace("_", " "))
        if len(own) > 1 or reg == regs[0]:
            ax.legend(loc="lower left", fontsize=7)
    for ax in axes.flat[len(regs) :]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("final training accuracy,\nrandom labels")
    for ax in axes[:, 0]:
        ax.set_ylabel("best validation accuracy,\nreal data")
    ax = right.subplots()
    for reg in regs:
        g = p.matched[p.matched["regularizer"] == reg]
        ax.errorbar(g["cut"], g["val_acc"], yerr=g["se"], marker="o", capsize=2, color=colors[reg], label=reg)
    ax.set_xlabel("cut of random-label training accuracy\n(from no regularisation)")
    ax.set_ylabel("best validation accuracy, real data\n(interpolated; ± standard error)")
    ax.set_title("at matched cuts (higher is better)")
    ax.legend(fontsize=7, loc="lower left")
    fig.suptitle("Regularisers: memorisation vs generalisation (Arpit et al. Fig. 10)")
    return fig


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
            parts.append(f"{best['setting']}: cut {best['cut']:.3f}, validation cost {best['cost']:+.3f}")
    return Verdict("; ".join(parts), holds)


def steeper_curves(p: RegulariserPoints) -> Verdict:
    """Validation accuracy lost per point of memorisation cut, at each regulariser's strongest setting: weight
    decay and input Gaussian noise lose more than dropout."""
    strongest = p.points[p.points["regularizer"] != "none"].sort_values("cut").groupby("regularizer").tail(1)
    slope = (strongest.set_index("regularizer")["cost"] / strongest.set_index("regularizer")["cut"]).to_dict()
    value = ", ".join(f"{k} {v:+.3f}" for k, v in sorted(slope.items()))
    return Verdict(value, bool(all(slope.get(k, -np.inf) > slope["dropout"] for k in ("weight_decay", "input_noise"))))


def dropout_adversarial_best(p: RegulariserPoints) -> Verdict:
    """The paper's "best" is the flattest curve: the highest validation accuracy for a given reduction of
    memorisation. At each matched cut that dropout with adversarial training reaches (`matched_cuts`), its
    best validation accuracy is not below any other regulariser's there beyond the seeds' spread
    (report.stats.not_below); a regulariser that never cuts that much does not compete at that cut."""
    m = p.matched
    combination = m[m["regularizer"] == "dropout_adversarial"]
    if combination.empty:
        return Verdict("no dropout_adversarial setting cuts random-label training accuracy", False)
    parts, holds = [], True
    for r in combination.itertuples():
        others = m[(m["cut"] == r.cut) & (m["regularizer"] != "dropout_adversarial")]
        own = f"cut {r.cut:g}: {r.val_acc:.4f} ± {r.se:.4f}"
        if others.empty:
            parts.append(f"{own}, no other reaches it")
            continue
        top = others.loc[others["val_acc"].idxmax()]
        holds &= bool(not_below(r.val_acc, r.se, top["val_acc"], top["se"]))
        parts.append(f"{own} vs {top['regularizer']} {top['val_acc']:.4f} ± {top['se']:.4f}")
    return Verdict("dropout_adversarial against the best other: " + "; ".join(parts), holds)


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
        "best real-data validation accuracy at matched cuts of random-label training accuracy (every 0.1, "
        "interpolated along each curve; the best adversarial weight at each)",
        "dropout with adversarial training's is the highest at every cut it reaches, up to the seeds' spread",
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
