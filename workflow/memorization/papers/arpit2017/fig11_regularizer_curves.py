"""Fig. 11: training loss under regularisers, random labels against real data (the paper's §5).

The training loss is the loop's (`batch_loss`: the train-mode loss with the regulariser active, averaged over
the epoch's batches), what the authors' Keras training curves show; the eval-mode loss over the training set
(`train_loss`) would hide what a regulariser does to the loss the optimiser sees."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ...catalog import REGULARIZER_AXES, REGULARIZERS, Claim, Figure, Verdict, register_claims, register_figure
from ...report.stats import at_last_step, is_random_labels, is_real, mean_band, regulariser_setting

CAPTION = """\
**Fig. 11, training loss under regularisers**, per epoch, on random labels (left) and real data
(right): the loss the training loop reports (train mode, regulariser active, averaged over the
epoch's batches). *Paper (§5):* the vertical order of the regularisers differs between random labels
and real data: they differ in how much they slow memorisation compared with learning."""

LOSS = "batch_loss"
PANELS = ("random labels", "real data")


@dataclass(frozen=True)
class LossCurves:
    settings: list[str]  # regulariser settings ("dropout 0.5"), in the paper's order of regularisers
    curves: pd.DataFrame  # per (panel, setting, epoch): mean, std and count over seeds of the loss
    final: dict[str, pd.DataFrame]  # panel -> per setting: mean and std over seeds at each run's last epoch

    def order(self, panel: str) -> list[str]:
        """The settings from the lowest to the highest final loss."""
        return list(self.final[panel]["mean"].sort_values().index)

    def robust_flips(self) -> list[str]:
        """Pairs of settings ordered one way on random labels and the other on real data, with both gaps
        larger than the seeds' spread (the two stds added in quadrature)."""
        stats = self.final
        settings = sorted(set(stats["random labels"].index) & set(stats["real data"].index))
        flips = []
        for i, a in enumerate(settings):
            for b in settings[i + 1 :]:
                gaps = {k: s.loc[a, "mean"] - s.loc[b, "mean"] for k, s in stats.items()}
                spread = {k: float(np.nan_to_num(np.hypot(s.loc[a, "std"], s.loc[b, "std"]))) for k, s in stats.items()}
                if np.sign(gaps["random labels"]) != np.sign(gaps["real data"]) and all(
                    abs(gaps[k]) > spread[k] for k in gaps
                ):
                    flips.append(f"{a} vs {b}")
        return flips


def loss_curves(training: pd.DataFrame) -> LossCurves:
    frame = training.assign(setting=regulariser_setting(training))
    settings = sorted(frame["setting"].unique(), key=lambda s: (REGULARIZERS.index(s.split()[0]), s))
    curves, final = [], {}
    for panel, mask in zip(PANELS, (is_random_labels(frame), is_real(frame))):
        runs = frame[mask]
        curves.append(mean_band(runs, "epoch", LOSS, "setting").assign(panel=panel))
        final[panel] = at_last_step(runs, by="epoch").groupby("setting")[LOSS].agg(["mean", "std"])
    return LossCurves(settings, pd.concat(curves, ignore_index=True), final)


def findings(c: LossCurves) -> list[str]:
    orders = {panel: c.order(panel) for panel in PANELS}
    lines = [f"{p}, lowest to highest final training loss (the loop's): {', '.join(o)}" for p, o in orders.items()]
    lines.append(f"the two orders {'differ' if orders[PANELS[0]] != orders[PANELS[1]] else 'are the same'}")
    return lines


def draw(c: LossCurves):
    import matplotlib.pyplot as plt

    from ...report.plotting import curves, panel_row, titled

    fig, axes = panel_row(len(PANELS), 5.5)
    cmap = plt.get_cmap("tab10")
    colors = {s: cmap(i % 10) for i, s in enumerate(c.settings)}
    for ax, panel in zip(axes, PANELS):
        curves(ax, c.curves[c.curves["panel"] == panel], "epoch", "setting", c.settings, colors, marker=None)
        ax.set(xlabel="epoch", ylabel="training loss (the loop's, regulariser active)", title=panel)
        ax.legend(fontsize=7)
    return titled(fig, "Training loss under regularisers (Arpit et al. Fig. 11)")


FIGURE = register_figure(
    Figure(
        "fig11_regularizer_curves",
        ("training",),
        CAPTION,
        compute=loss_curves,
        draw=draw,
        findings=findings,
        axes=REGULARIZER_AXES,
    )
)


def order_differs(c: LossCurves) -> Verdict:
    """The order of the settings by the loop's training loss at the last epoch differs between random labels
    and real data, for at least one pair whose gaps on both sides exceed the seeds' spread."""
    flips = c.robust_flips()
    value = (
        f"random labels: {' < '.join(c.order('random labels'))}; real data: {' < '.join(c.order('real data'))}; "
        f"robust flips: {', '.join(flips) or 'none'}"
    )
    return Verdict(value, bool(flips))


register_claims(
    Claim(
        "fig11_order_differs",
        FIGURE.name,
        "The order of the regularisers' training-loss curves differs between random labels and real data.",
        "order of the settings by the loop's training loss at the last epoch, random labels vs real data",
        "at least one pair flips, with both gaps larger than the seeds' spread",
        order_differs,
    )
)
