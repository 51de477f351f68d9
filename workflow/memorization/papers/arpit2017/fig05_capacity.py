"""Fig. 5: best validation accuracy against capacity, per input-noise level (the paper's §4)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ...catalog import DATA_CONDITIONS, Claim, Figure, Verdict, register_claims, register_figure
from ...report.stats import mean_band, noise_levels, per_run_summary, with_noise

CAPTION = """\
**Fig. 5, validation accuracy against capacity.** Best validation accuracy (clean data) against
hidden units per layer, one curve per fraction of training inputs replaced by Gaussian noise (mean
and band over seeds). *Paper (§4):* on clean data accuracy is near its best at a moderate width;
with noise more units are needed to reach the best validation accuracy."""

TOLERANCE = 0.005  # "within 0.5 points of the best validation accuracy"


@dataclass(frozen=True)
class Capacity:
    curves: pd.DataFrame  # per (noise_label, width): mean, std and count over seeds of the best validation accuracy
    levels: list[tuple[float, str]]  # (fraction, noise_label), by fraction

    def curve(self, label: str) -> pd.Series:
        """Mean best validation accuracy by width, at one noise level."""
        return self.curves[self.curves["noise_label"] == label].set_index("width")["mean"]

    def needed_width(self, label: str) -> int:
        """The smallest width within TOLERANCE of the level's best accuracy."""
        c = self.curve(label)
        return int(c[c >= c.max() - TOLERANCE].index.min())


def capacity(training: pd.DataFrame) -> Capacity:
    """Each seed's best validation accuracy over its evaluations, on the full training set."""
    summary = with_noise(per_run_summary(training))
    summary = summary[summary["train_size"] == summary["train_size"].max()]
    return Capacity(mean_band(summary, "width", "best_val_acc", "noise_label"), noise_levels(summary))


def findings(c: Capacity) -> list[str]:
    def line(label: str, g: pd.Series) -> str:
        widest = f"at the widest, {g.index[-1]}, {g.iloc[-1]:.3f} ({g.max() - g.iloc[-1]:.3f} below the best)"
        return f"{label}: best width {g.idxmax()} ({g.max():.3f}); {widest}"

    return [line(label, c.curve(label)) for _, label in c.levels]


def draw(c: Capacity):
    import matplotlib.pyplot as plt

    from ...report.plotting import curves, fraction_colors, plain_log_axis

    fig, ax = plt.subplots(figsize=(6, 4))
    order = [label for _, label in c.levels]
    curves(ax, c.curves, "width", "noise_label", order, fraction_colors(c.levels), bounds=(0, 1))
    plain_log_axis(ax, base=2)
    ax.set_xlabel("hidden units per layer")
    ax.set_ylabel("best validation accuracy (clean data)")
    ax.set_title("Validation accuracy against capacity (Arpit et al. Fig. 5)")
    ax.legend(fontsize=8)
    return fig


FIGURE = register_figure(
    Figure(
        "fig05_capacity",
        ("training",),
        CAPTION,
        compute=capacity,
        draw=draw,
        findings=findings,
        axes=(*DATA_CONDITIONS, "width"),
    )
)


def noise_needs_capacity(c: Capacity) -> Verdict:
    needed = [c.needed_width(label) for _, label in c.levels]
    value = ", ".join(f"noise {f:g}: {n}" for (f, _), n in zip(c.levels, needed))
    return Verdict(value, bool(all(n >= needed[0] for n in needed) and needed[-1] > needed[0]))


def clean_saturates(c: Capacity) -> Verdict:
    clean = c.levels[0][1]
    needed, widest = c.needed_width(clean), int(c.curve(clean).index.max())
    return Verdict(f"{clean}: within 0.5 points of its best from width {needed} (widest {widest})", needed < widest)


register_claims(
    Claim(
        "fig05_clean_saturates",
        FIGURE.name,
        "On clean data validation accuracy is already near its best below the largest width.",
        "clean data: the smallest width within 0.5 points of its best validation accuracy",
        "smaller than the widest width",
        clean_saturates,
    ),
    Claim(
        "fig05_noise_needs_capacity",
        FIGURE.name,
        "With noise in the training set more units are needed to reach the best validation accuracy.",
        "per input-noise level, the smallest width within 0.5 points of that level's best validation accuracy",
        "never smaller than clean data's, larger at the highest level",
        noise_needs_capacity,
    ),
)
