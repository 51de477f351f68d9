"""Fig. 1: per-example difficulty after one epoch, over many runs (the paper's §3.1)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ...catalog import Claim, Figure, Verdict, register_claims, register_figure
from ...report.stats import binomial_reference, difficulty_spread, first_epoch_difficulty

CAPTION = """\
**Fig. 1, per-example difficulty.** Per-example misclassification rate after one epoch, averaged over
many independently initialised and shuffled runs, sorted; dashed: what random inputs would give if
every example were equally hard (binomial). *Paper (§3.1):* on real data difficulty varies between
examples (easy and hard examples); random inputs match the binomial curve; random labels lie in
between."""

ORDER = ["real data", "random labels", "random inputs"]


@dataclass(frozen=True)
class Difficulty:
    difficulty: pd.DataFrame  # per (config, example): condition, n_runs, p_correct, misclassification
    spread: pd.DataFrame  # per condition (the index): variance of P(correct) / the binomial variance, ...
    conditions: list[str]  # in legend order
    epochs: tuple[float, ...] = (1.0,)  # the epoch(s) the rates are read at: each run's last evaluation

    def ratio(self, condition: str) -> float:
        return float(self.spread.loc[condition, "ratio"])


def difficulty(examples: pd.DataFrame) -> Difficulty:
    """Per-example misclassification at each run's last logged epoch, pooled over seeds, and its spread."""
    diff = first_epoch_difficulty(examples)
    conditions = sorted(diff["condition"].unique(), key=lambda c: (ORDER.index(c) if c in ORDER else 99, c))
    epochs = tuple(sorted(examples.groupby("config_id")["epoch"].max().unique().tolist()))
    return Difficulty(diff, difficulty_spread(diff).set_index("condition"), conditions, epochs)


def findings(d: Difficulty) -> list[str]:
    return [
        "variance of P(correct) across examples / binomial variance: "
        + ", ".join(f"{c} {d.ratio(c):.1f}" for c in d.conditions)
    ]


def draw(d: Difficulty):
    """Sorted misclassification rates per condition, and the binomial curve expected if every random-input
    example were equally hard."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for cond in d.conditions:
        g = d.difficulty[d.difficulty["condition"] == cond]
        curve = np.sort(g["misclassification"].to_numpy())[::-1]
        ax.plot(np.arange(len(curve)), curve, lw=2, label=f"{cond} (var/binomial = {d.ratio(cond):.1f})")
    if "random inputs" in d.spread.index:
        ref = d.spread.loc["random inputs"]
        n_runs, n = int(ref["n_runs"]), int(ref["n_examples"])
        curve = np.sort(binomial_reference(ref["mean_p_correct"], n_runs, n))[::-1]
        ax.plot(np.arange(n), curve, "k--", lw=1.2, label=f"binomial(n={n_runs}, p̄ of random inputs)")
    ax.set_xlabel("example (sorted by misclassification rate)")
    after = " or ".join(f"{e:g}" for e in d.epochs)
    ax.set_ylabel(f"misclassification rate after {after} epoch{'' if d.epochs == (1.0,) else 's'}")
    ax.set_title(f"Per-example difficulty over {int(d.difficulty['n_runs'].max())} runs (Arpit et al. Fig. 1)")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=8, loc="lower left")
    return fig


FIGURE = register_figure(
    Figure("fig01_difficulty", ("examples",), CAPTION, compute=difficulty, draw=draw, findings=findings)
)


def real_uneven(d: Difficulty) -> Verdict:
    real, rand = d.ratio("real data"), d.ratio("random inputs")
    return Verdict(f"real {real:.2f}, random inputs {rand:.2f}", bool(real >= 2 * rand))


def random_inputs_binomial(d: Difficulty) -> Verdict:
    r = d.ratio("random inputs")
    return Verdict(f"{r:.2f}", bool(0.5 <= r <= 2.0))


def random_labels_above(d: Difficulty) -> Verdict:
    labels, inputs = d.ratio("random labels"), d.ratio("random inputs")
    return Verdict(f"random labels {labels:.2f}, random inputs {inputs:.2f}", bool(labels >= 1.5 * inputs))


register_claims(
    Claim(
        "fig01_real_uneven",
        FIGURE.name,
        "Real data has easy and hard examples: difficulty varies far more than chance.",
        "variance of P(correct) across examples / binomial variance",
        "real data >= 2x random inputs",
        real_uneven,
    ),
    Claim(
        "fig01_random_inputs_binomial",
        FIGURE.name,
        "On random inputs every example is equally hard: the curve matches the binomial one.",
        "variance of P(correct) across random-input examples / binomial variance",
        "between 0.5 and 2",
        random_inputs_binomial,
    ),
    Claim(
        "fig01_random_labels_above",
        FIGURE.name,
        "Random labels are not binomial-like: some shared patterns are used even then.",
        "variance ratio, random labels vs random inputs",
        "random labels >= 1.5x random inputs",
        random_labels_above,
    ),
)
