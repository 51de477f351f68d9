"""Fig. 7: the MLP under partial input noise and label noise: accuracy and critical sample ratio against
epochs (the paper's §4.1). The sweep's statistic, drawing and claims serve Fig. 8 (the CNN) as well."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ...catalog import DATASETS, Claim, Figure, Verdict, numbers, register_claims, register_figure
from ...report.stats import (
    at_last_step,
    mean_band,
    monotone,
    monotone_within_spread,
    noise_levels,
    per_run_summary,
    standard_error,
    with_noise,
)

KINDS = ("input", "label")
FIT_MARGIN = 0.05  # the noisy labels are being fit once training accuracy exceeds the clean part's by this


@dataclass(frozen=True)
class Sweep:
    """Per noise kind (the clean run belongs to both): curves over epochs and what the claims compare."""

    levels: dict[str, list[tuple[float, str]]]  # kind -> (fraction, noise_label), by fraction
    curves: pd.DataFrame  # per (quantity, kind, noise_label, epoch): mean, std, count over seeds
    ends: pd.DataFrame  # per (kind, fraction): final val CSR (each run's last checkpoint), best and final val
    # acc, each a mean over seeds with its standard error (<name>_se)
    peaks: pd.DataFrame  # per label-noise fraction >= 0.4: the validation peak against the start of the noise fit
    lass: dict  # the CSR's LASS settings (r, points), from the table

    @property
    def kinds(self) -> list[str]:
        return list(self.levels)

    def of(self, quantity: str, kind: str) -> pd.DataFrame:
        c = self.curves
        return c[(c["quantity"] == quantity) & (c["kind"] == kind)]


def sweep(training: pd.DataFrame, csr: pd.DataFrame) -> Sweep:
    """Best validation accuracy: each seed's best over its evaluations, averaged over seeds (as Figs 5 and 10).
    Final CSR: each run's last checkpoint. The validation peak: of the seed-mean curve; the noise fit starts
    at the first epoch at which training accuracy exceeds what fitting only the clean part gives (1 - f(1 -
    1/C): a random label is right by chance) by FIT_MARGIN."""
    training = with_noise(training)
    val_csr = with_noise(csr[csr["split"] == "val"])
    summary = with_noise(per_run_summary(training))
    last_csr = at_last_step(val_csr)
    levels, curves, ends = {}, [], []
    for kind in (k for k in KINDS if k in set(training["noise"])):
        t = training[training["noise"].isin([kind, "none"])]
        c = val_csr[val_csr["noise"].isin([kind, "none"])]
        levels[kind] = noise_levels(t)
        for quantity, frame in (("train_acc", t), ("val_acc", t), ("csr", c)):
            curves.append(mean_band(frame, "epoch", quantity, "noise_label").assign(quantity=quantity, kind=kind))
        runs = summary[summary["noise"].isin([kind, "none"])].groupby("fraction")
        final = last_csr[last_csr["noise"].isin([kind, "none"])].groupby("fraction")["csr"]
        ends.append(
            pd.DataFrame(
                {
                    "kind": kind,
                    "final_csr": final.mean(),
                    "final_csr_se": _se(final),
                    "best_val_acc": runs["best_val_acc"].mean(),
                    "best_val_acc_se": _se(runs["best_val_acc"]),
                    "final_val_acc": runs["final_val_acc"].mean(),
                    "final_val_acc_se": _se(runs["final_val_acc"]),
                }
            ).rename_axis("fraction")
        )
    n_classes = DATASETS[training["dataset"].iloc[0]].n_classes if "dataset" in training else 10
    first = val_csr.iloc[0] if len(val_csr) else None
    return Sweep(
        levels,
        pd.concat(curves, ignore_index=True),
        pd.concat(ends).reset_index(),
        _peaks(training, val_csr, n_classes),
        {} if first is None else {"r": first["lass_r"], "points": int(first["n_points"])},
    )


def _se(grouped) -> pd.Series:
    return standard_error(grouped.std(), grouped.count())


def _peaks(training: pd.DataFrame, val_csr: pd.DataFrame, n_classes: int) -> pd.DataFrame:
    rows = []
    label = training[training["noise"] == "label"]
    for frac in sorted(f for f in label["fraction"].unique() if f >= 0.4):
        curve = label[label["fraction"] == frac].groupby("epoch")[["train_acc", "val_acc"]].mean()
        peak = curve["val_acc"].idxmax()
        fitting = curve.index[curve["train_acc"] > 1 - frac * (1 - 1 / n_classes) + FIT_MARGIN]
        c = val_csr[(val_csr["noise"] == "label") & (val_csr["fraction"] == frac)].groupby("epoch")["csr"].mean()
        rows.append(
            {
                "fraction": frac,
                "peak_epoch": peak,
                "fit_epoch": fitting.min() if len(fitting) else np.inf,
                "val_peak": curve["val_acc"].max(),
                "val_end": curve["val_acc"].iloc[-1],
                "csr_at_peak": c.iloc[np.abs(c.index.to_numpy() - peak).argmin()],
                "csr_end": c.iloc[-1],
            }
        )
    return pd.DataFrame(
        rows, columns=["fraction", "peak_epoch", "fit_epoch", "val_peak", "val_end", "csr_at_peak", "csr_end"]
    )


def findings(s: Sweep) -> list[str]:
    lines = []
    for kind in s.kinds:
        e = s.ends[s.ends["kind"] == kind]
        final, best = e["final_csr"].tolist(), e["best_val_acc"].tolist()
        lines.append(
            f"{kind} noise {', '.join(f'{f:g}' for f in e['fraction'])}: final val CSR "
            f"{' '.join(f'{v:.2f}' for v in final)} (increasing: {monotone(final)}); best val acc "
            f"{' '.join(f'{v:.3f}' for v in best)} (decreasing: {monotone(best, False)})"
        )
    if len(s.peaks):
        lines.append(
            "label noise, validation accuracy peak then end: "
            + "; ".join(
                f"{p.fraction:g}: peak {p.val_peak:.3f} at epoch {p.peak_epoch:g}, final {p.val_end:.3f}"
                for p in s.peaks.itertuples()
            )
        )
    return lines


def drawing(title: str):
    """The draw function of a sweep figure: per noise kind (rows), training (solid) and validation (dotted)
    accuracy and the validation CSR against epochs, one colour per noise fraction."""

    def draw(s: Sweep):
        import matplotlib.pyplot as plt

        from ...report.plotting import curves, fraction_colors, titled

        fig, axes = plt.subplots(len(s.kinds), 2, figsize=(11, 3.8 * len(s.kinds)), squeeze=False)
        for row, kind in zip(axes, s.kinds):
            colors = fraction_colors(s.levels[kind])
            order = [label for _, label in s.levels[kind]]
            style = {"order": order, "colors": colors, "bounds": (0, 1)}
            curves(row[0], s.of("train_acc", kind), "epoch", "noise_label", marker=None, **style)
            curves(row[0], s.of("val_acc", kind), "epoch", "noise_label", marker=None, ls=":", **style)
            row[0].set_ylabel("accuracy (solid: training, dotted: validation)")
            row[0].set_title(f"{kind} noise: accuracy")
            handles, labels = row[0].get_legend_handles_labels()
            row[0].legend(handles[: len(order)], labels[: len(order)], fontsize=7)
            curves(row[1], s.of("csr", kind), "epoch", "noise_label", **style)
            row[1].set_ylabel("critical sample ratio (validation)")
            row[1].set_title(f"{kind} noise: CSR")
            for ax in row:
                ax.set_xlabel("epoch")
        lass = f"; LASS r={s.lass['r']:g} (0-255 scale), {s.lass['points']} validation points" if s.lass else ""
        return titled(fig, f"{title}{lass}", fontsize=10)

    return draw


def noise_ordering(s: Sweep) -> Verdict:
    parts, holds = [], True
    for kind in s.kinds:
        e = s.ends[s.ends["kind"] == kind]
        final, best = e["final_csr"].to_numpy(), e["best_val_acc"].to_numpy()
        holds &= monotone_within_spread(final, e["final_csr_se"]) and monotone_within_spread(
            best, e["best_val_acc_se"], increasing=False
        )
        parts.append(f"{kind} noise {numbers(e['fraction'])}: final CSR {numbers(final)}, best val acc {numbers(best)}")
    return Verdict("; ".join(parts), holds)


def final_accuracy_ordering(s: Sweep) -> Verdict:
    parts, holds = [], True
    for kind in s.kinds:
        e = s.ends[s.ends["kind"] == kind]
        final = e["final_val_acc"].to_numpy()
        holds &= monotone_within_spread(final, e["final_val_acc_se"], increasing=False)
        parts.append(f"{kind} noise {numbers(e['fraction'])}: final val acc {numbers(final)}")
    return Verdict("; ".join(parts), holds)


def patterns_first(s: Sweep) -> Verdict:
    """For label-noise fractions >= 0.4: validation accuracy peaks before the noisy labels start being fit,
    ends more than a point below its peak, and validation CSR at the end exceeds CSR at the peak."""
    holds = bool(
        (
            (s.peaks["peak_epoch"] < s.peaks["fit_epoch"])
            & (s.peaks["val_end"] < s.peaks["val_peak"] - 0.01)
            & (s.peaks["csr_end"] > s.peaks["csr_at_peak"])
        ).all()
    )
    value = "; ".join(
        f"{p.fraction:g}: val peak epoch {p.peak_epoch:g}, noise fit from epoch {p.fit_epoch:g}, val "
        f"{p.val_peak:.3f} -> {p.val_end:.3f}, CSR {p.csr_at_peak:.2f} -> {p.csr_end:.2f}"
        for p in s.peaks.itertuples()
    )
    return Verdict(value, holds)


ORDERING = "final validation CSR and best validation accuracy against the noise fraction, input and label noise"
PEAKS = (
    "for label-noise fractions >= 0.4: epoch of the validation peak, first epoch at which training accuracy "
    "exceeds the clean part by 5 points, validation and CSR from the peak to the end"
)
PEAKS_RULE = "peak earlier, final accuracy > 1 point below the peak, CSR higher at the end"


def register_sweep(name: str, title: str, caption: str, model: str, like: str | None = None) -> None:
    """Register a sweep figure and its claims, `<figNN>_noise_ordering`, `<figNN>_final_accuracy` and
    `<figNN>_patterns_first`;
    `like`: the figure whose patterns claim this one's statistic and rule refer to rather than repeat."""
    register_figure(Figure(name, ("training", "csr"), caption, compute=sweep, draw=drawing(title), findings=findings))
    prefix = name.split("_")[0]
    peaks, rule = (PEAKS, PEAKS_RULE) if like is None else (f"as {like}_patterns_first",) * 2
    register_claims(
        Claim(
            f"{prefix}_noise_ordering",
            name,
            f"{model}: more noise, higher critical sample ratio and lower best validation accuracy.",
            ORDERING,
            "CSR non-decreasing and accuracy non-increasing in the fraction, up to the seeds' spread",
            noise_ordering,
        ),
        Claim(
            f"{prefix}_final_accuracy",
            name,
            f"{model}: the final validation accuracy is lower, too, for noisier data.",
            "validation accuracy at the last epoch against the noise fraction, input and label noise",
            "non-increasing in the fraction, up to the seeds' spread",
            final_accuracy_ordering,
        ),
        Claim(
            f"{prefix}_patterns_first",
            name,
            f"{model} with label noise: validation accuracy peaks before the noise is fit, then falls while CSR rises.",
            peaks,
            rule,
            patterns_first,
        ),
    )


register_sweep(
    "fig07_mlp_noise",
    "MLP, partial noise: accuracy and critical sample ratio (Arpit et al. Fig. 7)",
    """\
        **Fig. 7, the MLP under partial noise.** Training (solid) and validation (dotted) accuracy, and the
        validation critical sample ratio, per epoch, for 0-80% of the training inputs (top) or labels (bottom)
        replaced by noise. *Paper (§4.1):* CSR is higher and final and best validation accuracy lower for
        noisier data; with label noise, validation accuracy peaks before the noisy labels are fit, then falls
        while CSR rises: patterns first, memorisation afterwards.""",
    "MLP",
)
