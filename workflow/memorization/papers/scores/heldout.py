"""Scores from subset trainings: held-out memorization (Feldman & Zhang 2020), the C-score (Jiang et al. 2021)
and confident learning's self-confidence of out-of-sample predictions (Northcutt et al. 2021), from many
models trained each on its own random subset of the training set (docs/science.md §10)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ...catalog import Claim, Figure, register_claims, register_figure
from ...report.stats import c_scores, heldout_estimates, noise_detection
from .score_agreement import DETECTOR, finds

CAPTION = """\
**Held-out memorization and the C-score.** Many models, each trained on its own random subset of the
training set, and every training example judged by the models that trained on it and by those that did not.
Left: memorization, P(correct | trained on it) − P(correct | held out) (Feldman & Zhang 2020), of the
clean and the noisy examples. Middle: the C-score, the held-out accuracy averaged over the subset ratios
(Jiang et al. 2021), sorted. Right: ROC AUC of each at finding the noisy examples, with confident learning's
self-confidence of the held-out predictions (Northcutt et al. 2021). *The papers:* mislabeled examples
are memorized (high memorization), have low C-scores, and are found by out-of-sample confidence."""


@dataclass(frozen=True)
class Heldout:
    estimates: pd.DataFrame  # per (run, example): p_in, p_out, memorization, self_confidence, n_in, n_out, ...
    c_score: pd.DataFrame  # per (experiment, condition, example): c_score, ratios, is_noisy
    detection: pd.DataFrame  # per (condition, score): auc (high score = noisy)
    models: int  # models trained


def heldout_statistic(heldout: pd.DataFrame) -> Heldout:
    if heldout["in_subset"].all():
        raise ValueError("every seed trained on every example: held-out estimates need subset_fraction < 1")
    est = heldout_estimates(heldout)
    cs = c_scores(est)
    # each score oriented so that high marks an example as noisy; the C-score is one per experiment
    held = est.assign(self_confidence=-est["self_confidence"])
    detection = pd.concat(
        [
            noise_detection(held, ["memorization", "self_confidence"]),
            noise_detection(cs.assign(run_id=cs["experiment"], c_score=-cs["c_score"]), ["c_score"]),
        ],
        ignore_index=True,
    )
    models = int(heldout.drop_duplicates(["run_id", "seed"]).shape[0])
    return Heldout(est, cs, detection, models)


def findings(h: Heldout) -> list[str]:
    m = h.estimates.groupby("is_noisy")["memorization"].mean()
    lines = [
        f"{h.models} models; mean memorization: "
        + ", ".join(f"{'noisy' if k else 'clean'} {v:.3f}" for k, v in m.items())
    ]
    lines += [
        f"ROC AUC at finding the noisy examples ({c}): "
        + ", ".join(f"{r.score} {r.auc:.2f}" for r in h.detection[h.detection["condition"] == c].itertuples())
        for c in h.detection["condition"].unique()
    ]
    return lines


def draw(h: Heldout):
    import matplotlib.pyplot as plt

    fig, (a, b, c) = plt.subplots(1, 3, figsize=(15, 4.5))
    bins = np.linspace(-1, 1, 41)
    for noisy, g in h.estimates.groupby("is_noisy"):
        a.hist(g["memorization"].dropna(), bins=bins, alpha=0.6, density=True, label="noisy" if noisy else "clean")
    a.set_xlabel("memorization: P(correct | in) − P(correct | out)")
    a.set_ylabel("density")
    a.legend()
    a.set_title(f"Held-out memorization ({h.models} models)")
    for (_, cond), g in h.c_score.groupby(["experiment", "condition"]):
        b.plot(np.sort(g["c_score"].dropna().to_numpy())[::-1], label=f"{cond} ({g['ratios'].max()} ratios)")
    b.set_xlabel("example (sorted)")
    b.set_ylabel("C-score")
    b.set_ylim(-0.02, 1.02)
    b.legend(fontsize=8)
    b.set_title("C-score")
    scores = list(h.detection["score"].unique())
    for i, cond in enumerate(h.detection["condition"].unique()):
        d = h.detection[h.detection["condition"] == cond].set_index("score").reindex(scores)
        c.bar(np.arange(len(scores)) + 0.35 * i, d["auc"], 0.35, label=cond)
    c.axhline(0.5, color="k", lw=0.8, ls="--")
    c.set_xticks(np.arange(len(scores)), scores)
    c.set_ylim(0, 1)
    c.set_ylabel("ROC AUC, noisy vs clean")
    c.legend(fontsize=8)
    c.set_title("Finding the noisy examples")
    fig.tight_layout()
    return fig


FIGURE = register_figure(
    Figure("heldout_memorization", ("heldout",), CAPTION, compute=heldout_statistic, draw=draw, findings=findings)
)


register_claims(
    Claim(
        "feldman2020_mislabeled_memorized",
        FIGURE.name,
        "Feldman & Zhang 2020: mislabeled examples are memorized: high held-out memorization estimates.",
        "ROC AUC of memorization (P(correct|in) − P(correct|out) over the subset trainings) at finding the "
        "noisy examples, per noise condition",
        f">= {DETECTOR} in every condition",
        finds("memorization"),
    ),
    Claim(
        "jiang2021_mislabeled_low_cscore",
        FIGURE.name,
        "Jiang et al. 2021: mislabeled examples have low C-scores (they are irregular).",
        "ROC AUC of the C-score (low = mislabeled) at finding the noisy examples, per noise condition",
        f">= {DETECTOR} in every condition",
        finds("c_score"),
    ),
    Claim(
        "northcutt2021_out_of_sample_confidence",
        FIGURE.name,
        "Northcutt et al. 2021: out-of-sample predicted probabilities find label errors (self-confidence).",
        "ROC AUC of the held-out models' mean probability of the label (low = mislabeled) at finding the "
        "noisy examples, per noise condition",
        f">= {DETECTOR} in every condition",
        finds("self_confidence"),
    ),
)
