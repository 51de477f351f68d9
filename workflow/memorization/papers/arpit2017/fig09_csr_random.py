"""Fig. 9: critical sample ratio during training of models fit to real data, random inputs and random labels;
footnote 5: the training split's CSR of the real-data model (the paper's §4.1)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ...catalog import Claim, Figure, Verdict, register_claims, register_figure
from ...report.stats import mean_band, not_below, standard_errors, with_condition

CAPTION = """\
**Fig. 9, critical sample ratio during training** of models trained on real data, random inputs and
random labels (mean and band over seeds); dashed: the training split of the real-data model.
*Paper (§4.1):* much higher for the models fit to noise (a more complex decision surface); all rise,
then plateau. Footnote 5: training-set CSR on real data first rises, then falls."""

LATER = 2  # "after the first few epochs": from epoch 2 on


@dataclass(frozen=True)
class CsrCurves:
    val: pd.DataFrame  # per (condition, epoch): mean, std and count over seeds of the validation CSR
    train: pd.DataFrame  # the same for the training split (measured where `splits` has train)
    lass: dict  # the LASS settings, from the table

    @staticmethod
    def means(curves: pd.DataFrame) -> pd.DataFrame:
        """epoch x condition: the mean CSR over seeds."""
        return curves.pivot(index="epoch", columns="condition", values="mean")

    def later(self) -> pd.DataFrame:
        m = self.means(self.val)
        return m[m.index >= LATER]

    def later_errors(self) -> pd.DataFrame:
        """epoch x condition: the standard error of each mean of `later`."""
        se = standard_errors(self.val, "epoch")
        return se[se.index >= LATER]

    def real_train(self) -> pd.Series:
        return self.means(self.train)["real data"]


def csr_curves(csr: pd.DataFrame) -> CsrCurves:
    frame = with_condition(csr)
    val, train = frame[frame["split"] == "val"], frame[frame["split"] == "train"]
    row = val.iloc[0]
    lass = {k: row[f"lass_{k}"] for k in ("r", "alpha", "beta", "max_iter")} | {"points": int(row["n_points"])}
    return CsrCurves(mean_band(val, "epoch", "csr"), mean_band(train, "epoch", "csr"), lass)


def findings(c: CsrCurves) -> list[str]:
    lines = [
        f"mean validation CSR from epoch {LATER}: "
        + ", ".join(f"{cond} {v:.2f}" for cond, v in c.later().mean().sort_index().items())
    ]
    if "real data" in set(c.train["condition"]):
        lines.append("training-split CSR, real data: " + " ".join(f"{v:.2f}" for v in c.real_train()))
    return lines


def draw(c: CsrCurves):
    import matplotlib.pyplot as plt

    from ...report.plotting import curves

    fig, ax = plt.subplots(figsize=(6, 4))
    curves(ax, c.val, "epoch", bounds=(0, 1))
    if "real data" in set(c.train["condition"]):
        g = c.real_train()
        ax.plot(g.index, g.to_numpy(), "k--", lw=1, label="real data, training split")
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))  # whole epochs: checkpoints are at epochs
    ax.set_ylabel("critical sample ratio")
    s = c.lass
    ax.set_title(
        f"CSR during training (Arpit et al. Fig. 9)\nLASS r={s['r']:g}, α={s['alpha']:g}, β={s['beta']:g} "
        f"(0–255 scale), ≤{s['max_iter']} iterations, {s['points']} points",
        fontsize=9,
    )
    ax.legend(fontsize=8)
    return fig


FIGURE = register_figure(
    Figure("fig09_csr_random", ("csr",), CAPTION, compute=csr_curves, draw=draw, findings=findings)
)


def noise_more_complex(c: CsrCurves) -> Verdict:
    later, se = c.later(), c.later_errors()
    real, real_se = later["real data"], se["real data"]
    above = not_below(later["random inputs"], se["random inputs"], real, real_se) & not_below(
        later["random labels"], se["random labels"], real, real_se
    )
    return Verdict(
        f"at {int(above.sum())} of {len(above)} checkpoints from epoch {LATER}; means: real "
        f"{later['real data'].mean():.2f}, random inputs {later['random inputs'].mean():.2f}, random "
        f"labels {later['random labels'].mean():.2f}",
        bool(above.all()),
    )


def rise_then_plateau(c: CsrCurves) -> Verdict:
    """Rise: CSR over the second half of training above CSR after the first epoch. Plateau: the last quarter
    of training moves CSR by less than 0.05."""
    m = c.means(c.val)
    end = m.index.max()
    first = m[m.index > 0].iloc[0]
    second_half = m[m.index >= end / 2].mean()
    last_quarter = m[m.index >= 3 * end / 4]
    moves = last_quarter.max() - last_quarter.min()
    value = "; ".join(
        f"{k}: {first[k]:.2f} -> {second_half[k]:.2f}, last quarter moves {moves[k]:.2f}" for k in m.columns
    )
    return Verdict(value, bool((second_half > first).all() and (moves < 0.05).all()))


def training_csr(c: CsrCurves) -> Verdict:
    t = c.real_train()
    peak = t.idxmax()
    rises, falls = t.max() > t.iloc[0] + 0.01, t.iloc[-1] < t.max() - 0.01
    return Verdict(
        f"{t.iloc[0]:.2f} at initialisation, peak {t.max():.2f} at epoch {peak:g}, {t.iloc[-1]:.2f} at the end",
        bool(rises and falls and peak > t.index.min()),
    )


register_claims(
    Claim(
        "fig09_noise_more_complex",
        FIGURE.name,
        "Models fit to random inputs or random labels have a much higher critical sample ratio.",
        f"validation CSR of the random-input and random-label models vs the real-data model, from epoch {LATER}",
        "both higher at every checkpoint, up to the seeds' spread",
        noise_more_complex,
    ),
    Claim(
        "fig09_rise_then_plateau",
        FIGURE.name,
        "CSR rises over training, then plateaus.",
        "validation CSR after the first epoch vs the mean over the second half; range over the last quarter",
        "higher later, and the last quarter moves < 0.05, for every model",
        rise_then_plateau,
        note="On the 8x8 digits the CNN classifies most validation digits within its first epoch, so the real-data "
        "model has no rising phase to see: its CSR falls from the first epoch on. The claim is tested as the paper "
        "states it, and fails here for that reason (docs/science.md §6).",
    ),
    Claim(
        "footnote5_training_csr",
        FIGURE.name,
        "Training-set CSR on real data first rises, then falls (footnote 5).",
        "training-split CSR of the real-data model: initial, peak, final",
        "peak after the start and > 1 point above it, final > 1 point below the peak",
        training_csr,
    ),
)
