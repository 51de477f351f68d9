"""The training-run scores side by side: how well each finds the noisy examples, how far they agree, and how
stable each is across seeds (docs/science.md §10)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ...catalog import Claim, Figure, Verdict, numbers, register_claims, register_figure
from ...report.stats import (
    SCORE_DIRECTIONS,
    aucs_by_condition,
    noise_detection,
    rank_agreement,
    seed_mean_scores,
    seed_stability,
)

CAPTION = """\
**Per-example scores, side by side.** Every score of the training runs (forgetting and first-learned epoch,
Toneva et al. 2019; AUM, Pleiss et al. 2020; the data map's confidence, variability and correctness,
Swayamdipta et al. 2020; EL2N and GraNd early in training, Paul et al. 2021; VoG, Agarwal et al. 2022), each
oriented in the direction its paper gives for hard, mislabeled or memorised examples (low AUM, low
confidence, low variability: the data map's hard-to-learn region; high VoG). Left: ROC AUC of each
seed-averaged score at finding the examples whose label or input was replaced, per noise condition (0.5 =
chance; a bar below it, hatched, ranks the noisy examples the other way round from its paper). Middle: Spearman
rank correlation between the scores across examples. Right: Spearman correlation of each score between two
seeds of a run. *The papers:* mislabeled examples have low AUM, are forgotten more often and lie in the
hard-to-learn region of the data map; forgetting is consistent across seeds; EL2N early in training agrees
with forgetting."""

NAMES = tuple(SCORE_DIRECTIONS)
DETECTOR = 0.8  # an AUC from which a score is said to find the noisy examples (a rule, set before the runs)


@dataclass(frozen=True)
class Scores:
    detection: pd.DataFrame  # per (condition, score): auc
    agreement: pd.DataFrame  # score x score: Spearman across examples
    stability: pd.DataFrame  # per score (index): spearman between seeds, pairs
    datasets: list[str]


def scores_statistic(scores: pd.DataFrame) -> Scores:
    mean = seed_mean_scores(scores)
    return Scores(
        noise_detection(mean, NAMES),
        rank_agreement(mean, NAMES),
        seed_stability(scores, NAMES),
        sorted(scores["dataset"].unique()),
    )


def findings(s: Scores) -> list[str]:
    lines = [
        f"ROC AUC at finding the noisy examples ({c}): "
        + ", ".join(f"{r.score} {r.auc:.2f}" for r in s.detection[s.detection["condition"] == c].itertuples())
        for c in s.detection["condition"].unique()
    ]
    reversed_ = sorted(set(s.detection.loc[s.detection["auc"] < 0.5, "score"]), key=NAMES.index)
    if reversed_:
        lines.append(
            f"below 0.5, so ranking the noisy examples the other way round from its paper: {', '.join(reversed_)}"
        )
    lines.append("Spearman between seeds: " + ", ".join(f"{k} {v:.2f}" for k, v in s.stability["spearman"].items()))
    lines.append(f"Spearman of EL2N with forgetting: {s.agreement.loc['el2n', 'forgetting']:.2f}")
    return lines


def draw(s: Scores):
    import matplotlib.pyplot as plt

    fig, (a, b, c) = plt.subplots(1, 3, figsize=(16, 4.8), gridspec_kw={"width_ratios": [1.2, 1, 0.8]})
    conditions = list(s.detection["condition"].unique())
    width = 0.8 / max(1, len(conditions))
    for i, cond in enumerate(conditions):
        d = s.detection[s.detection["condition"] == cond].set_index("score").reindex(NAMES)
        bars = a.bar(np.arange(len(NAMES)) + i * width, d["auc"], width, label=cond)
        for bar, auc in zip(bars, d["auc"]):
            if auc < 0.5:  # the other way round from the score's paper: say so on the bar
                bar.set_hatch("//")
                a.annotate(f"{auc:.2f}", (bar.get_x() + bar.get_width() / 2, auc), ha="center", va="bottom",
                           fontsize=6)  # fmt: skip
    a.axhline(0.5, color="k", lw=0.8, ls="--")
    a.set_xticks(np.arange(len(NAMES)) + width * (len(conditions) - 1) / 2, NAMES, rotation=45, ha="right")
    a.set_ylim(0, 1)
    a.set_ylabel("ROC AUC, noisy vs clean examples")
    a.set_title("Finding the noisy examples")
    a.legend(fontsize=7, loc="lower left")
    im = b.imshow(s.agreement.to_numpy(), vmin=-1, vmax=1, cmap="RdBu_r")
    b.set_xticks(range(len(NAMES)), NAMES, rotation=45, ha="right", fontsize=8)
    b.set_yticks(range(len(NAMES)), NAMES, fontsize=8)
    for (i, j), v in np.ndenumerate(s.agreement.to_numpy()):
        b.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6)
    fig.colorbar(im, ax=b, fraction=0.046)
    b.set_title("Agreement (Spearman across examples)")
    c.barh(NAMES[::-1], s.stability["spearman"].reindex(NAMES[::-1]))
    c.set_xlim(-0.1, 1)
    c.set_xlabel("Spearman between two seeds")
    c.set_title("Stability across seeds")
    fig.suptitle(f"Per-example scores on {', '.join(s.datasets)}")
    fig.tight_layout()
    return fig


FIGURE = register_figure(
    Figure("scores_agreement", ("scores",), CAPTION, compute=scores_statistic, draw=draw, findings=findings)
)


def finds(score: str, holds=lambda aucs: aucs >= DETECTOR):
    """A claim that `score` finds the noisy examples: `holds` of its ROC AUCs (from the statistic's
    `detection`), in every noise condition."""

    def evaluate(statistic) -> Verdict:
        aucs = aucs_by_condition(statistic.detection, score)
        return Verdict("ROC AUC " + ", ".join(f"{c} {v:.3g}" for c, v in aucs.items()), bool(holds(aucs).all()))

    return evaluate


def forgetting_consistent(s: Scores) -> Verdict:
    rho = float(s.stability.loc["forgetting", "spearman"])
    if np.isnan(rho):
        raise ValueError("every run of the scores has one seed: the stability needs two or more")
    return Verdict(f"{rho:.3g} over {int(s.stability.loc['forgetting', 'pairs'])} seed pairs", bool(rho >= 0.5))


def el2n_agrees_with_forgetting(s: Scores) -> Verdict:
    rho = float(s.agreement.loc["el2n", "forgetting"])
    return Verdict(numbers([rho]), bool(rho >= 0.5))


register_claims(
    Claim(
        "toneva2019_noisy_forgotten_more",
        FIGURE.name,
        "Toneva et al. 2019: examples with noisy labels are forgotten more often than the others.",
        "ROC AUC of the seed-mean forgetting score at finding the noisy examples, per noise condition",
        "> 0.5 in every condition",
        finds("forgetting", lambda aucs: aucs > 0.5),
    ),
    Claim(
        "toneva2019_forgetting_consistent",
        FIGURE.name,
        "Toneva et al. 2019: which examples are forgotten is consistent across random seeds.",
        "Spearman rank correlation of forgetting scores between two seeds of a run, averaged over seed pairs",
        ">= 0.5",
        forgetting_consistent,
    ),
    Claim(
        "pleiss2020_mislabeled_low_aum",
        FIGURE.name,
        "Pleiss et al. 2020: mislabeled examples have a low area under the margin, which separates them.",
        "ROC AUC of the seed-mean AUM (low = mislabeled) at finding the noisy examples, per noise condition",
        f">= {DETECTOR} in every condition",
        finds("aum"),
    ),
    Claim(
        "swayamdipta2020_mislabeled_hard_to_learn",
        FIGURE.name,
        "Swayamdipta et al. 2020: mislabeled examples lie in the data map's hard-to-learn region (low confidence).",
        "ROC AUC of the seed-mean confidence (low = mislabeled) at finding the noisy examples, per condition",
        f">= {DETECTOR} in every condition",
        finds("confidence"),
    ),
    Claim(
        "paul2021_el2n_agrees_with_forgetting",
        FIGURE.name,
        "Paul et al. 2021: EL2N early in training ranks examples as the forgetting score does.",
        "Spearman rank correlation between seed-mean EL2N (at early_step) and forgetting across examples",
        ">= 0.5",
        el2n_agrees_with_forgetting,
    ),
)
