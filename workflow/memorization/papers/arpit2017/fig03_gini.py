"""Fig. 3: concentration (Gini coefficient) of the loss sensitivity over the training examples against SGD
steps, with the data's labels and with one class per example (the paper's §3.2-3.3)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ...catalog import Claim, Figure, Verdict, register_claims, register_figure
from ...report.stats import mean_band, not_below, standard_errors, with_condition

CAPTION = """\
**Fig. 3, concentration of loss sensitivity.** Gini coefficient, across the training examples, of
each example's loss sensitivity (its influence on the loss through the SGD updates, averaged over a
window of steps), against SGD steps. *Paper (§3.2-3.3):* higher for real data than for random
inputs at every step, also when every example is its own class; 50% real data lies in between."""

CLASSES, IDENTITY = "labels: the real classes", "labels: one class per example"
ORDER = ["real data", "50% random inputs", "random inputs", "identity labels", "random inputs, identity labels"]
REAL = {CLASSES: "real data", IDENTITY: "identity labels"}
RANDOM = {CLASSES: "random inputs", IDENTITY: "random inputs, identity labels"}


@dataclass(frozen=True)
class Gini:
    curves: pd.DataFrame  # per (panel, condition, step): mean, std and count of the Gini over seeds
    steps: dict[str, list[int]]  # panel -> its checkpoint steps

    @property
    def panels(self) -> list[str]:
        return list(self.steps)

    def means(self, panel: str) -> pd.DataFrame:
        """step x condition: the mean Gini over seeds."""
        g = self.curves[self.curves["panel"] == panel]
        return g.pivot(index="step", columns="condition", values="mean")

    def errors(self, panel: str) -> pd.DataFrame:
        """step x condition: the standard error of each mean."""
        return standard_errors(self.curves[self.curves["panel"] == panel], "step")

    def real_above_random(self, panel: str) -> pd.Series:
        """Per checkpoint: real data's Gini not below random inputs' beyond the seeds' spread (stats.not_below)."""
        m, se = self.means(panel), self.errors(panel)
        return not_below(m[REAL[panel]], se[REAL[panel]], m[RANDOM[panel]], se[RANDOM[panel]])


def gini(table: pd.DataFrame) -> Gini:
    frame = with_condition(table)
    identity = frame["label_noise"] == "identity"
    panels = {p: f for p, f in ((CLASSES, frame[~identity]), (IDENTITY, frame[identity])) if len(f)}
    curves = pd.concat([mean_band(f, "step", "gini").assign(panel=p) for p, f in panels.items()], ignore_index=True)
    return Gini(curves, {p: sorted(f["step"].unique()) for p, f in panels.items()})


def findings(g: Gini) -> list[str]:
    def line(panel: str) -> str:
        m, above = g.means(panel), g.real_above_random(panel)
        last = f"T={m.index[-1]}: {m[REAL[panel]].iloc[-1]:.3f} vs {m[RANDOM[panel]].iloc[-1]:.3f}"
        return f"{panel}: Gini real > random inputs at {int(above.sum())} of {len(above)} checkpoints (last, {last})"

    return [line(p) for p in g.panels if {REAL[p], RANDOM[p]} <= set(g.means(p).columns)]


def draw(g: Gini):

    from ...report.plotting import curves, panel_row, plain_log_axis, titled

    fig, axes = panel_row(len(g.panels), 5.5)
    for ax, panel in zip(axes, g.panels):
        curves(ax, g.curves[g.curves["panel"] == panel], "step", order=ORDER, bounds=(0, 1))
        plain_log_axis(ax, ticks=g.steps[panel])
        ax.set(xlabel="SGD steps", ylabel=r"Gini coefficient of $\bar{g}_x$", title=panel)
        ax.legend(fontsize=8)
    return titled(fig, "Loss-sensitivity concentration (Arpit et al. Fig. 3)")


FIGURE = register_figure(Figure("fig03_gini", ("gini",), CAPTION, compute=gini, draw=draw, findings=findings))


def real_above_random(g: Gini) -> Verdict:
    above = g.real_above_random(CLASSES)
    steps = ", ".join(map(str, above.index))
    return Verdict(f"{int(above.sum())} of {len(above)} checkpoints (T = {steps})", bool(above.all()))


def half_between(g: Gini) -> Verdict:
    m, se = g.means(CLASSES), g.errors(CLASSES)
    real_low = m["real data"] <= m["random inputs"]
    lo, hi = m["real data"].where(real_low, m["random inputs"]), m["random inputs"].where(real_low, m["real data"])
    lo_se = se["real data"].where(real_low, se["random inputs"])
    hi_se = se["random inputs"].where(real_low, se["real data"])
    half, half_se = m["50% random inputs"], se["50% random inputs"]
    between = not_below(half, half_se, lo, lo_se) & not_below(hi, hi_se, half, half_se)
    return Verdict(f"{int(between.sum())} of {len(between)} checkpoints", bool(between.sum() > len(between) / 2))


def identity_labels(g: Gini) -> Verdict:
    above = g.real_above_random(IDENTITY)
    return Verdict(f"{int(above.sum())} of {len(above)} checkpoints", bool(above.all()))


register_claims(
    Claim(
        "fig03_real_above_random",
        FIGURE.name,
        "Loss sensitivity is more concentrated (higher Gini) on real data than on random inputs.",
        "checkpoints T at which Gini(real) > Gini(random inputs)",
        "every checkpoint, up to the seeds' spread",
        real_above_random,
    ),
    Claim(
        "fig03_half_between",
        FIGURE.name,
        "With 50% real data the Gini lies between real and random data.",
        "checkpoints at which the 50% Gini lies between the two",
        "more than half of them, up to the seeds' spread",
        half_between,
    ),
    Claim(
        "fig03_identity_labels",
        FIGURE.name,
        "The same holds when every example is its own class.",
        "checkpoints at which Gini(real) > Gini(random inputs), identity labels",
        "every checkpoint, up to the seeds' spread",
        identity_labels,
    ),
)
