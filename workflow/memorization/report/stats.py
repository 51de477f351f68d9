"""Statistics computed from the tables (never from checkpoints), shared by the figure rooms: each figure's
statistic, which its drawing, its findings and its claims all read, is computed from these."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import catalog
from ..results.tables import pool_of


def distinct(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of a table with runs shared by several experiments counted once: a shared run appears in
    every experiment's table, identical but for `experiment` (docs/tables.md)."""
    if "experiment" not in frame:
        return frame
    return frame.drop_duplicates(subset=[c for c in frame.columns if c != "experiment"], ignore_index=True)


def figure_statistic(figure: str, tables: dict[str, pd.DataFrame]):
    """The statistic of a registered figure from its tables (name -> the concatenated frame), runs shared by
    experiments counted once: what its drawing, its findings and its claims all read (catalog.Figure); and
    what it pooled, in words (results.tables.pool_of, which refuses experiments that differ in what the
    figure does not compare)."""
    entry = catalog.figure(figure)
    pooled = pool_of(figure, tables)
    return entry.compute(*[distinct(tables[t]) for t in entry.tables]), pooled


def condition(row) -> str:
    """A short human name for a run's data condition, used as a legend label."""
    parts = []
    if row["input_noise"] != "none":
        f = row["input_noise_fraction"]
        parts.append("random inputs" if f == 1 else f"{f:.0%} random inputs")
    if row["label_noise"] == "identity":
        parts.append("identity labels")
    elif row["label_noise"] != "none":
        f = row["label_noise_fraction"]
        parts.append("random labels" if f == 1 else f"{f:.0%} random labels")
    return ", ".join(parts) or "real data"


def with_condition(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with a `condition` column (`condition` of each row)."""
    return frame.assign(condition=frame.apply(condition, axis=1))


def first_epoch_difficulty(examples: pd.DataFrame) -> pd.DataFrame:
    """Per-example misclassification rate over seeds at each run's last logged epoch (docs/science.md §3.1).

    Seeds are pooled per configuration (`config_id`), so runs with a noise draw per seed count together.
    Returns one row per (config_id, example): condition, n_runs, p_correct, misclassification.
    """
    last = examples[examples["step"] == examples.groupby("config_id")["step"].transform("max")]
    out = (
        last.groupby(["config_id", "example"], sort=True)
        .agg(
            p_correct=("correct", "mean"),
            n_runs=("seed", "nunique"),
            input_noise=("input_noise", "first"),
            input_noise_fraction=("input_noise_fraction", "first"),
            label_noise=("label_noise", "first"),
            label_noise_fraction=("label_noise_fraction", "first"),
        )
        .reset_index()
    )
    out["condition"] = out.apply(condition, axis=1)
    out["misclassification"] = 1.0 - out["p_correct"]
    return out[["config_id", "condition", "example", "n_runs", "p_correct", "misclassification"]]


def binomial_reference(p_correct: float, n_runs: int, n_examples: int, seed: int = 0) -> np.ndarray:
    """Misclassification rates of examples that are all equally hard: 1 − Binomial(n_runs, p)/n_runs."""
    k = np.random.default_rng(seed).binomial(n_runs, p_correct, size=n_examples)
    return 1.0 - k / n_runs


def difficulty_spread(difficulty: pd.DataFrame) -> pd.DataFrame:
    """Per condition: across-example variance of P(correct) against the binomial variance p̄(1−p̄)/R.

    A ratio near 1 means every example is equally hard (the paper's randX); far above 1 means there are
    easy and hard examples (real data).
    """
    rows = []
    for cond, g in difficulty.groupby("condition", sort=False):
        p, r = g["p_correct"].mean(), g["n_runs"].iloc[0]
        binom = p * (1 - p) / r
        var = g["p_correct"].var(ddof=1)
        rows.append(
            {
                "condition": cond,
                "mean_p_correct": p,
                "variance": var,
                "binomial_variance": binom,
                "ratio": var / binom if binom > 0 else np.nan,
                "n_runs": r,
                "n_examples": len(g),
            }
        )
    return pd.DataFrame(rows)


def diagonal_dominance(matrix) -> float:
    """D = mean of the diagonal / mean off the diagonal of a per-class sensitivity matrix (docs/science.md §3.4).
    The paper: D is smaller for real data (more sensitivity across classes) than for random data."""
    m = np.asarray(matrix, dtype=np.float64)
    off = ~np.eye(len(m), dtype=bool)
    return float(np.nanmean(np.diag(m)) / np.nanmean(m[off]))  # NaN: a class absent from the authors' batch


def mean_band(frame: pd.DataFrame, x: str, y: str, by: str = "condition") -> pd.DataFrame:
    """Mean and standard deviation over seeds of y at each x, per group: what a curve with a band shows."""
    return frame.groupby([by, x], sort=True)[y].agg(["mean", "std", "count"]).reset_index()


def standard_error(std, count):
    """The standard error of a mean over seeds, std / √count; 0 for one seed (whose std is NaN)."""
    return (std / np.sqrt(count)).fillna(0.0)


def standard_errors(curves: pd.DataFrame, x: str, by: str = "condition") -> pd.DataFrame:
    """x × group: the standard error of each mean of a `mean_band` frame."""
    se = curves.assign(se=standard_error(curves["std"], curves["count"]))
    return se.pivot(index=x, columns=by, values="se")


def not_below(a, a_se, b, b_se):
    """Whether mean `a` is not below mean `b` beyond the seeds' spread: b − a ≤ √(se_a² + se_b²), the pooled
    standard error of the two means. The one rule by which every claim that compares means over seeds counts
    a violation (docs/science.md §6): a difference within the seeds' spread is a tie, and a tie is no
    violation. Elementwise on arrays and Series."""
    return (b - a) <= np.sqrt(np.square(a_se) + np.square(b_se))


def monotone_within_spread(means, ses, increasing: bool = True) -> bool:
    """Whether a sequence of means never goes the wrong way by more than the pooled standard error of the
    two means of a step (`not_below` of each step)."""
    m, s = np.asarray(means, dtype=np.float64), np.asarray(ses, dtype=np.float64)
    if not increasing:
        m = -m
    return bool(not_below(m[1:], s[1:], m[:-1], s[:-1]).all())


def noise_kind(row) -> str:
    """Which kind of noise a run has: "input", "label" or "none" (the clean run belongs to both sweeps)."""
    if row["input_noise"] != "none":
        return "input"
    if row["label_noise"] != "none":
        return "label"
    return "none"


def noise_fraction(row) -> float:
    kind = noise_kind(row)
    return float(row[f"{kind}_noise_fraction"]) if kind != "none" else 0.0


def with_noise(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with `noise` (input | label | none), `fraction` and a legend label `noise_label`."""
    kind = frame.apply(noise_kind, axis=1)
    fraction = frame.apply(noise_fraction, axis=1)
    label = [("no noise" if k == "none" else f"{k} noise {f:g}") for k, f in zip(kind, fraction)]
    return frame.assign(noise=kind, fraction=fraction, noise_label=label)


def noise_levels(frame: pd.DataFrame) -> list[tuple[float, str]]:
    """(fraction, noise_label) of every noise level of a `with_noise` frame, by fraction."""
    return sorted(set(zip(frame["fraction"], frame["noise_label"])))


def is_real(frame: pd.DataFrame) -> pd.Series:
    """Rows of runs on the real data: no input noise, no label noise."""
    return (frame["input_noise"] == "none") & (frame["label_noise"] == "none")


def is_random_labels(frame: pd.DataFrame) -> pd.Series:
    """Rows of runs on the paper's randY: the real inputs, every label drawn at random."""
    return (
        (frame["label_noise"] == "random") & (frame["label_noise_fraction"] == 1.0) & (frame["input_noise"] == "none")
    )


def adversarial_weight(frame: pd.DataFrame) -> pd.Series:
    """Each row's adversarial-training weight: the `adversarial_weight` setting column of an experiment that
    varies it, null where the regulariser is not dropout_adversarial or the table has no such column (its
    runs all have the spec's weight)."""
    weight = frame["adversarial_weight"] if "adversarial_weight" in frame else pd.Series(np.nan, index=frame.index)
    return weight.astype("Float64").where(frame["regularizer"] == "dropout_adversarial")


def regulariser_curve(frame: pd.DataFrame) -> list[str]:
    """Each row's regulariser as the figures draw its curve: the regulariser, and for dropout with adversarial
    training at a known weight, the weight ("dropout_adversarial, w 0.2")."""
    return [r if pd.isna(w) else f"{r}, w {w:g}" for r, w in zip(frame["regularizer"], adversarial_weight(frame))]


def regulariser_setting(frame: pd.DataFrame) -> list[str]:
    """Each row's regulariser setting as a label: "none", or the regulariser and its strength ("dropout 0.5";
    "dropout_adversarial 0.5, w 0.2" where the adversarial weight is known)."""
    weights = adversarial_weight(frame)
    return [
        "none" if r == "none" else f"{r} {s:g}" + ("" if pd.isna(w) else f", w {w:g}")
        for r, s, w in zip(frame["regularizer"], frame["reg_strength"], weights)
    ]


def at_last_step(frame: pd.DataFrame, key: str = "run_id", by: str = "step") -> pd.DataFrame:
    """The rows at each run's last step (or epoch): where it ended, whatever the others did."""
    return frame[frame[by] == frame.groupby(key)[by].transform("max")]


def per_run_summary(training: pd.DataFrame) -> pd.DataFrame:
    """One row per (run, seed): best validation accuracy over the logged epochs, and final training accuracy,
    training loss and epoch (Figs 5 and 10 read these)."""
    key = ["run_id", "seed"]
    ordered = training.sort_values("step")
    last = ordered.groupby(key).tail(1).set_index(key)
    ident = [c.name for c in catalog.IDENTITY if c.name not in key and c.name in training]
    out = last[ident].copy()
    out["best_val_acc"] = ordered.groupby(key)["val_acc"].max()
    out["final_val_acc"] = last["val_acc"]
    out["final_train_acc"] = last["train_acc"]
    out["final_train_loss"] = last["train_loss"]
    out["final_epoch"] = last["epoch"]
    return out.reset_index()


def neighbour_correlation(filters: np.ndarray) -> float:
    """Mean correlation between horizontally and vertically adjacent weights of 2-D filters (..., H, W):
    about 0 for white noise (e.g. Glorot initialisation), positive for smooth, structured filters."""
    f = np.asarray(filters, dtype=np.float64)
    f = f - f.mean(axis=(-2, -1), keepdims=True)
    pairs = [(f[..., :, :-1], f[..., :, 1:]), (f[..., :-1, :], f[..., 1:, :])]
    num = sum((a * b).sum() for a, b in pairs)
    den = sum(np.sqrt((a * a).sum() * (b * b).sum()) for a, b in pairs)
    return float(num / den) if den > 0 else float("nan")


def filter_arrays(filters: pd.DataFrame) -> dict[tuple[str, int, int], np.ndarray]:
    """(run_id, seed, step) → weights (filters, channels, rows, cols) from the tidy filters table."""
    out = {}
    for key, g in filters.groupby(["run_id", "seed", "step"], sort=True):
        shape = [g[c].max() + 1 for c in ("filter", "channel", "row", "col")]
        arr = np.zeros(shape)
        arr[g["filter"], g["channel"], g["row"], g["col"]] = g["value"]
        out[key] = arr
    return out


def monotone(values, increasing: bool = True) -> bool:
    """Whether a sequence never goes the wrong way."""
    d = np.diff(np.asarray(values, dtype=np.float64))
    return bool((d >= 0).all() if increasing else (d <= 0).all())


# ----------------------------------------------------------------------------- per-example scores

# Each per-example score of the `scores` table with the direction in which it marks an example as hard or
# memorized (+1: high is hard), as the catalog declares it: what the ROC AUC against the noise mask and the
# agreement read.
SCORE_DIRECTIONS = {score.name: score.direction for score in catalog.SCORES if score.direction is not None}


def roc_auc(score, positive) -> float:
    """ROC AUC of `score` at telling the positive examples from the others: the Mann–Whitney statistic with
    ties counted half (the probability that a positive example outscores a negative one). Written out
    (average ranks) because the base install that reads shared tables has no scikit-learn. Examples without
    a score (NaN) are left out; NaN when either class is then empty."""
    score, positive = np.asarray(score, dtype=float), np.asarray(positive, dtype=bool)
    known = ~np.isnan(score)
    score, positive = pd.Series(score[known]), positive[known]
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = score.rank(method="average").to_numpy()
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def hardness(scores: pd.DataFrame) -> pd.DataFrame:
    """Each score oriented so that high marks an example as hard (SCORE_DIRECTIONS), never learned examples
    after every learned one: the columns the AUCs and rank correlations read."""
    out = pd.DataFrame(index=scores.index)
    for name, sign in SCORE_DIRECTIONS.items():
        values = scores[name].astype(float)
        if name == "first_learned_epoch":
            values = values.fillna(values.max() + 1 if values.notna().any() else 0.0)
        out[name] = sign * values
    return out


def seed_mean_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """Per (run, example): every score, oriented (`hardness`), averaged over the run's seeds (as Paul et al.
    average EL2N and Toneva et al. sum forgetting over seeds), with the run's condition and noise mask."""
    oriented = pd.concat([scores[["run_id", "example", "is_noisy"]], hardness(scores)], axis=1)
    mean = oriented.groupby(["run_id", "example"], sort=True).mean(numeric_only=True).reset_index()
    runs = with_condition(scores.drop_duplicates("run_id"))[["run_id", "condition", "dataset"]]
    return mean.assign(is_noisy=mean["is_noisy"] > 0).merge(runs, on="run_id")


def noise_detection(mean: pd.DataFrame, names) -> pd.DataFrame:
    """Per (condition, score): the ROC AUC of the seed-mean score at finding the noisy examples, for the runs
    with noise (a condition's AUC averaged over its runs)."""
    rows = []
    for (condition, _), g in mean.groupby(["condition", "run_id"], sort=True):
        if g["is_noisy"].all() or not g["is_noisy"].any():
            continue
        rows += [{"condition": condition, "score": s, "auc": roc_auc(g[s], g["is_noisy"])} for s in names]
    frame = pd.DataFrame(rows, columns=["condition", "score", "auc"])
    return frame.groupby(["condition", "score"], sort=False)["auc"].mean().reset_index()


def aucs_by_condition(detection: pd.DataFrame, score: str) -> pd.Series:
    """One score's ROC AUC per noise condition, from a `noise_detection` frame."""
    d = detection[detection["score"] == score]
    if d.empty:
        raise ValueError(f"no run with noisy examples for {score}: the noise detection needs label or input noise")
    return d.set_index("condition")["auc"]


def rank_agreement(mean: pd.DataFrame, names) -> pd.DataFrame:
    """Spearman rank correlation between the seed-mean scores across examples, per run, averaged over runs:
    (score × score)."""
    per_run = [g[list(names)].corr(method="spearman") for _, g in mean.groupby("run_id", sort=True)]
    return sum(per_run) / len(per_run)


def seed_stability(scores: pd.DataFrame, names) -> pd.DataFrame:
    """Per score: the Spearman rank correlation across examples between two seeds of a run, averaged over
    every pair of seeds of every run with two or more (NaN where none has)."""
    oriented = pd.concat([scores[["run_id", "seed", "example"]], hardness(scores)], axis=1)
    rows = []
    for _, g in oriented.groupby("run_id", sort=True):
        for name in names:
            wide = g.pivot(index="example", columns="seed", values=name)
            if wide.shape[1] < 2:
                continue
            corr = wide.corr(method="spearman").to_numpy()
            pairs = corr[np.triu_indices(len(corr), 1)]
            rows.append({"score": name, "spearman": float(np.nanmean(pairs)), "pairs": len(pairs)})
    frame = pd.DataFrame(rows, columns=["score", "spearman", "pairs"])
    return (
        frame.groupby("score", sort=False)
        .agg(spearman=("spearman", "mean"), pairs=("pairs", "sum"))
        .reindex(list(names))
    )


def heldout_estimates(heldout: pd.DataFrame) -> pd.DataFrame:
    """Per (run, example), from its seeds' subset trainings: P(correct | trained on it) and P(correct | held
    out), held-out memorization (Feldman & Zhang 2020: their difference), the self-confidence of the
    out-of-sample predictions (the mean held-out probability of the label, confident learning's
    `self_confidence`), and the seed counts of each side."""
    h = heldout.assign(correct=heldout["correct"].astype(float))
    side = h.groupby(["run_id", "example", "in_subset"], sort=True).agg(
        p_correct=("correct", "mean"), p_label=("p_label", "mean"), n=("seed", "count")
    )
    wide = side.unstack("in_subset")
    keys = h.drop_duplicates(["run_id", "example"]).set_index(["run_id", "example"])
    out = pd.DataFrame(
        {
            "p_in": wide[("p_correct", True)],
            "p_out": wide[("p_correct", False)],
            "self_confidence": wide[("p_label", False)],
            "n_in": wide[("n", True)],
            "n_out": wide[("n", False)],
        }
    )
    out["memorization"] = out["p_in"] - out["p_out"]
    cols = ["experiment", "dataset", "is_noisy", "subset_fraction", "input_noise", "input_noise_fraction",
            "label_noise", "label_noise_fraction"]  # fmt: skip
    return with_condition(out.join(keys[cols]).reset_index())


def c_scores(estimates: pd.DataFrame) -> pd.DataFrame:
    """Jiang et al. 2021's C-score per (experiment, condition, example): the held-out accuracy averaged over
    the subset ratios (its runs' subset_fraction), with how many ratios it averages."""
    return (
        estimates.groupby(["experiment", "condition", "example"], sort=True)
        .agg(c_score=("p_out", "mean"), ratios=("subset_fraction", "nunique"), is_noisy=("is_noisy", "first"))
        .reset_index()
    )
