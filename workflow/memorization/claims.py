"""The reproduction scorecard: each of the paper's claims, tested by a statistic computed from the tables.

Every claim is registered once (registry.CLAIMS) with its figure, the paper's statement, the statistic and
the rule that decides whether it holds; its `evaluate(tables) -> Verdict` lives here. The tables are those
of the claim's figure (every experiment that lists the figure), with runs shared by two experiments counted
once. A claim whose figure was not run is "not run", not false.

    python -m memorization.claims path/to/tables [--out DIR]     # the scorecard from shared tables alone
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import registry
from .analysis import (
    condition,
    diagonal_dominance,
    difficulty_spread,
    distinct,
    filter_arrays,
    first_epoch_difficulty,
    neighbour_correlation,
    noise_fraction,
    noise_kind,
    per_run_summary,
)

SCORECARD_COLUMNS = {
    "claim": "string",
    "figure": "string",
    "statement": "string",
    "statistic": "string",
    "rule": "string",
    "value": "string",
    "holds": "boolean",
}


@dataclass(frozen=True)
class Verdict:
    value: str  # this run's value of the statistic, in words and numbers
    holds: bool


def _with_condition(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(condition=frame.apply(condition, axis=1))


def _with_noise(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(noise=frame.apply(noise_kind, axis=1), fraction=frame.apply(noise_fraction, axis=1))


def _fmt(values) -> str:
    return " ".join(f"{v:.3g}" for v in values)


# ----------------------------------------------------------------------------- Fig. 1


def _spread(tables) -> pd.Series:
    return difficulty_spread(first_epoch_difficulty(tables["examples"])).set_index("condition")["ratio"]


def fig01_real_uneven(tables) -> Verdict:
    r = _spread(tables)
    return Verdict(
        f"real {r['real data']:.2f}, random inputs {r['random inputs']:.2f}",
        bool(r["real data"] >= 2 * r["random inputs"]),
    )


def fig01_random_inputs_binomial(tables) -> Verdict:
    r = _spread(tables)["random inputs"]
    return Verdict(f"{r:.2f}", bool(0.5 <= r <= 2.0))


def fig01_random_labels_above(tables) -> Verdict:
    r = _spread(tables)
    return Verdict(
        f"random labels {r['random labels']:.2f}, random inputs {r['random inputs']:.2f}",
        bool(r["random labels"] >= 1.5 * r["random inputs"]),
    )


# ----------------------------------------------------------------------------- Fig. 2


def fig02_random_label_filters(tables) -> Verdict:
    frame = _with_condition(tables["filters"])
    frame = frame[frame["condition"] == "random labels"]
    arrays = filter_arrays(frame)
    gains = []
    for (run, seed), g in frame.groupby(["run_id", "seed"]):
        first, last = g["step"].min(), g["step"].max()
        w0, w1 = arrays[(run, seed, first)], arrays[(run, seed, last)]
        gains.append(neighbour_correlation(w1 - w0) - neighbour_correlation(w0))
    return Verdict(f"per seed {_fmt(gains)}", bool(len(gains) and min(gains) > 0))


# ----------------------------------------------------------------------------- Figs 3 and 4


def _gini_by_condition(tables, identity: bool) -> pd.DataFrame:
    frame = _with_condition(tables["gini"])
    frame = frame[(frame["label_noise"] == "identity") == identity]
    return frame.groupby(["step", "condition"])["gini"].mean().unstack()


def fig03_real_above_random(tables) -> Verdict:
    g = _gini_by_condition(tables, identity=False)
    above = g["real data"] > g["random inputs"]
    return Verdict(
        f"{int(above.sum())} of {len(above)} checkpoints (T = {', '.join(map(str, g.index))})", bool(above.all())
    )


def fig03_half_between(tables) -> Verdict:
    g = _gini_by_condition(tables, identity=False)
    lo, hi = np.minimum(g["real data"], g["random inputs"]), np.maximum(g["real data"], g["random inputs"])
    between = (g["50% random inputs"] >= lo) & (g["50% random inputs"] <= hi)
    return Verdict(f"{int(between.sum())} of {len(between)} checkpoints", bool(between.sum() > len(between) / 2))


def fig03_identity_labels(tables) -> Verdict:
    g = _gini_by_condition(tables, identity=True)
    above = g["identity labels"] > g["random inputs, identity labels"]
    return Verdict(f"{int(above.sum())} of {len(above)} checkpoints", bool(above.all()))


def fig04_real_less_diagonal(tables) -> Verdict:
    frame = _with_condition(tables["class_sensitivity"])
    frame = frame[frame["step"] == frame.groupby("run_id")["step"].transform("max")]
    d = {
        c: diagonal_dominance(g.groupby(["class_i", "class_j"])["value"].mean().unstack().to_numpy())
        for c, g in frame.groupby("condition")
    }
    return Verdict(
        f"D real {d['real data']:.2f}, random inputs {d['random inputs']:.2f}",
        bool(d["real data"] < d["random inputs"]),
    )


# ----------------------------------------------------------------------------- Figs 5 and 6


def needed_width(curve: pd.Series, tolerance: float = 0.005) -> int:
    """The smallest width whose accuracy is within `tolerance` of the curve's best."""
    return int(curve[curve >= curve.max() - tolerance].index.min())


def fig05_noise_needs_capacity(tables) -> Verdict:
    summary = _with_noise(per_run_summary(tables["training"]))
    summary = summary[summary["train_size"] == summary["train_size"].max()]
    curves = summary.groupby(["fraction", "width"])["best_val_acc"].mean().unstack(0)
    needed = {f: needed_width(curves[f]) for f in curves.columns}
    ordered = [needed[f] for f in sorted(needed)]
    value = ", ".join(f"noise {f:g}: {needed[f]}" for f in sorted(needed))
    holds = all(n >= ordered[0] for n in ordered) and ordered[-1] > ordered[0]
    return Verdict(value, bool(holds))


def _epochs_to_fit(convergence: pd.DataFrame) -> pd.DataFrame:
    frame = _with_noise(convergence)
    return frame.assign(epochs=frame["epochs_to_fit"].astype("float64").fillna(frame["max_epochs"]))


def _growth(frame: pd.DataFrame, x: str) -> pd.Series:
    """Per noise fraction: mean epochs to fit at the largest x over those at the smallest x."""
    means = frame.groupby(["fraction", x])["epochs"].mean().unstack(x)
    return means.iloc[:, -1] / means.iloc[:, 0]


def fig06_width_helps_noise_more(tables) -> Verdict:
    frame = _epochs_to_fit(tables["convergence"])
    frame = frame[frame["train_size"] == frame.groupby("width")["train_size"].transform("max")]
    frame = frame[frame["train_size"] == frame["train_size"].max()]
    ratio = _growth(frame, "width")  # < 1: fewer epochs at the largest width
    value = ", ".join(f"noise {f:g}: x{r:.2f}" for f, r in ratio.items())
    holds = (ratio < 1).all() and ratio.iloc[0] > ratio.iloc[1:].max()  # clean data gains the least
    return Verdict(value, bool(holds))


def fig06_size_slows_noise_more(tables) -> Verdict:
    frame = _epochs_to_fit(tables["convergence"])
    width = frame.groupby("width")["train_size"].nunique().idxmax()
    ratio = _growth(frame[frame["width"] == width], "train_size")
    value = f"width {width}: " + ", ".join(f"noise {f:g}: x{r:.2f}" for f, r in ratio.items())
    holds = ratio.iloc[0] < ratio.iloc[1:].min() and (ratio.iloc[1:] > 1).all()
    return Verdict(value, bool(holds))


# ----------------------------------------------------------------------------- Figs 7 and 8


def _noise_orderings(tables) -> tuple[str, bool]:
    training = _with_noise(per_run_summary(tables["training"]))
    csr = _with_noise(tables["csr"][tables["csr"]["split"] == "val"])
    csr = csr[csr["step"] == csr.groupby("run_id")["step"].transform("max")]
    parts, holds = [], True
    for kind in ("input", "label"):
        best = training[training["noise"].isin([kind, "none"])].groupby("fraction")["best_val_acc"].mean()
        final = csr[csr["noise"].isin([kind, "none"])].groupby("fraction")["csr"].mean()
        holds &= bool((np.diff(final.to_numpy()) >= 0).all() and (np.diff(best.to_numpy()) <= 0).all())
        parts.append(f"{kind} noise {_fmt(final.index)}: final CSR {_fmt(final)}, best val acc {_fmt(best)}")
    return "; ".join(parts), holds


def _label_noise_peaks(tables, n_classes: int = 10) -> tuple[str, bool]:
    """For label-noise fractions >= 0.4: validation accuracy peaks before the noisy labels start being fit
    (training accuracy above what fitting only the clean part gives, plus 5 points), ends below its peak,
    and validation CSR at the end exceeds CSR at the checkpoint nearest the peak."""
    training = _with_noise(tables["training"])
    csr = _with_noise(tables["csr"][tables["csr"]["split"] == "val"])
    parts, holds = [], True
    for frac in sorted(f for f in training.loc[training["noise"] == "label", "fraction"].unique() if f >= 0.4):
        t = training[(training["noise"] == "label") & (training["fraction"] == frac)]
        curve = t.groupby("epoch")[["train_acc", "val_acc"]].mean()
        peak = curve["val_acc"].idxmax()
        clean_part = 1 - frac * (1 - 1 / n_classes)
        fitting = curve.index[curve["train_acc"] > clean_part + 0.05]
        start = fitting.min() if len(fitting) else np.inf
        c = csr[(csr["noise"] == "label") & (csr["fraction"] == frac)].groupby("epoch")["csr"].mean()
        at_peak = c.iloc[np.abs(c.index.to_numpy() - peak).argmin()]
        ok = peak < start and curve["val_acc"].iloc[-1] < curve["val_acc"].max() - 0.01 and c.iloc[-1] > at_peak
        holds &= bool(ok)
        parts.append(
            f"{frac:g}: val peak epoch {peak:g}, noise fit from epoch {start:g}, val "
            f"{curve['val_acc'].max():.3f} -> {curve['val_acc'].iloc[-1]:.3f}, CSR {at_peak:.2f} -> "
            f"{c.iloc[-1]:.2f}"
        )
    return "; ".join(parts), holds


def fig07_noise_ordering(tables) -> Verdict:
    return Verdict(*_noise_orderings(tables))


def fig07_patterns_first(tables) -> Verdict:
    return Verdict(*_label_noise_peaks(tables))


def fig08_noise_ordering(tables) -> Verdict:
    return Verdict(*_noise_orderings(tables))


def fig08_patterns_first(tables) -> Verdict:
    return Verdict(*_label_noise_peaks(tables))


# ----------------------------------------------------------------------------- Fig. 9 and footnote 5


def _csr_curves(tables, split: str) -> pd.DataFrame:
    frame = _with_condition(tables["csr"])
    return frame[frame["split"] == split].groupby(["epoch", "condition"])["csr"].mean().unstack()


def fig09_noise_more_complex(tables) -> Verdict:
    c = _csr_curves(tables, "val")
    later = c[c.index >= 2]
    above = (later["random inputs"] > later["real data"]) & (later["random labels"] > later["real data"])
    return Verdict(
        f"at {int(above.sum())} of {len(above)} checkpoints from epoch 2; means: real "
        f"{later['real data'].mean():.2f}, random inputs {later['random inputs'].mean():.2f}, random "
        f"labels {later['random labels'].mean():.2f}",
        bool(above.all()),
    )


def fig09_rise_then_plateau(tables) -> Verdict:
    """Rise: CSR over the second half of training above CSR after the first epoch. Plateau: the last quarter
    of training moves CSR by less than 0.05."""
    c = _csr_curves(tables, "val")
    end = c.index.max()
    first = c[c.index > 0].iloc[0]
    second_half = c[c.index >= end / 2].mean()
    last_quarter = c[c.index >= 3 * end / 4]
    moves = last_quarter.max() - last_quarter.min()
    rises, flat = second_half > first, moves < 0.05
    value = "; ".join(
        f"{k}: {first[k]:.2f} -> {second_half[k]:.2f}, last quarter moves {moves[k]:.2f}" for k in c.columns
    )
    return Verdict(value, bool(rises.all() and flat.all()))


def footnote5_training_csr(tables) -> Verdict:
    c = _csr_curves(tables, "train")["real data"]
    peak = c.idxmax()
    rises, falls = c.max() > c.iloc[0] + 0.01, c.iloc[-1] < c.max() - 0.01
    return Verdict(
        f"{c.iloc[0]:.2f} at initialisation, peak {c.max():.2f} at epoch {peak:g}, {c.iloc[-1]:.2f} at the end",
        bool(rises and falls and peak > c.index.min()),
    )


# ----------------------------------------------------------------------------- Figs 10 and 11


def regulariser_points(training: pd.DataFrame) -> pd.DataFrame:
    """Per (regulariser, strength): final random-label training accuracy and best real-data validation
    accuracy (mean and std over seeds), and their changes from no regularisation (Fig. 10's points)."""
    summary = per_run_summary(training)
    real = (summary["input_noise"] == "none") & (summary["label_noise"] == "none")
    rand = (summary["label_noise"] == "random") & (summary["label_noise_fraction"] == 1.0)
    key = ["regularizer", "reg_strength"]
    points = (
        summary[rand]
        .groupby(key)["final_train_acc"]
        .agg(["mean", "std"])
        .add_suffix("_rand")
        .join(summary[real].groupby(key)["best_val_acc"].agg(["mean", "std"]).add_suffix("_real"), how="inner")
        .reset_index()
    )
    base = points[points["regularizer"] == "none"].iloc[0]
    return points.assign(cut=base["mean_rand"] - points["mean_rand"], cost=base["mean_real"] - points["mean_real"])


def fig10_dropout_hinders_memorisation(tables) -> Verdict:
    """Some dropout strength, and some dropout + adversarial strength, cuts random-label training accuracy by
    at least 30 points while best real-data validation accuracy drops by at most 2 points."""
    points = regulariser_points(tables["training"])
    parts, holds = [], True
    for reg in ("dropout", "dropout_adversarial"):
        p = points[points["regularizer"] == reg]
        good = p[(p["cut"] >= 0.30) & (p["cost"] <= 0.02)]
        best = p.loc[p["cut"].idxmax()] if len(p) else None
        holds &= bool(len(good))
        if best is not None:
            parts.append(f"{reg} {best['reg_strength']:g}: cut {best['cut']:.3f}, validation cost {best['cost']:+.3f}")
    return Verdict("; ".join(parts), holds)


def fig10_steeper_curves(tables) -> Verdict:
    """Validation accuracy lost per point of memorisation cut, at each regulariser's strongest setting: weight
    decay and input Gaussian noise lose more than dropout."""
    points = regulariser_points(tables["training"])
    strongest = points[points["regularizer"] != "none"].sort_values("cut").groupby("regularizer").tail(1)
    slope = (strongest.set_index("regularizer")["cost"] / strongest.set_index("regularizer")["cut"]).to_dict()
    value = ", ".join(f"{k} {v:+.3f}" for k, v in sorted(slope.items()))
    holds = all(slope.get(k, -np.inf) > slope["dropout"] for k in ("weight_decay", "input_noise"))
    return Verdict(value, bool(holds))


def fig11_order_differs(tables) -> Verdict:
    """The order of the regularisers by the loop's training loss at the last epoch differs between random
    labels and real data, for at least one pair whose gaps on both sides exceed the seeds' spread."""
    frame = tables["training"]
    frame = frame[frame["epoch"] == frame.groupby("run_id")["epoch"].transform("max")]
    frame = frame.assign(
        setting=[r if r == "none" else f"{r} {s:g}" for r, s in zip(frame["regularizer"], frame["reg_strength"])]
    )
    real = (frame["input_noise"] == "none") & (frame["label_noise"] == "none")
    stats = {
        name: frame[mask].groupby("setting")["batch_loss"].agg(["mean", "std"])
        for name, mask in (("random labels", frame["label_noise"] == "random"), ("real data", real))
    }
    flips = []
    settings = sorted(set(stats["random labels"].index) & set(stats["real data"].index))
    for i, a in enumerate(settings):
        for b in settings[i + 1 :]:
            gaps = {k: s.loc[a, "mean"] - s.loc[b, "mean"] for k, s in stats.items()}
            spread = {k: float(np.nan_to_num(np.hypot(s.loc[a, "std"], s.loc[b, "std"]))) for k, s in stats.items()}
            if np.sign(gaps["random labels"]) != np.sign(gaps["real data"]) and all(
                abs(gaps[k]) > spread[k] for k in gaps
            ):
                flips.append(f"{a} vs {b}")
    orders = {k: " < ".join(s["mean"].sort_values().index) for k, s in stats.items()}
    value = f"random labels: {orders['random labels']}; real data: {orders['real data']}; robust flips: " + (
        ", ".join(flips) or "none"
    )
    return Verdict(value, bool(flips))


# ----------------------------------------------------------------------------- the scorecard


def evaluate(claim: registry.Claim, tables: dict[str, pd.DataFrame] | None) -> dict:
    """One row of the scorecard. `tables`: the claim's figure's tables (None if the figure was not run)."""
    row = {
        "claim": claim.name,
        "figure": claim.figure,
        "statement": claim.statement,
        "statistic": claim.statistic,
        "rule": claim.rule,
        "value": "not run",
        "holds": None,
    }
    if tables is not None:
        try:
            verdict = registry.resolve(claim.evaluate)({t: distinct(f) for t, f in tables.items()})
        except (KeyError, IndexError, ValueError) as err:  # e.g. a config without the conditions it compares
            row.update(value=f"not computable from these tables ({type(err).__name__}: {err})")
        else:
            row.update(value=verdict.value, holds=verdict.holds)
    return row


def scorecard(tables_by_figure: dict[str, dict[str, pd.DataFrame]]) -> pd.DataFrame:
    """Every registered claim, evaluated on the tables of its figure where that figure was run."""
    rows = [evaluate(c, tables_by_figure.get(c.figure)) for c in registry.CLAIMS.values()]
    return pd.DataFrame(rows, columns=list(SCORECARD_COLUMNS)).astype(SCORECARD_COLUMNS)


def markdown(card: pd.DataFrame) -> str:
    def mark(h):
        return "—" if pd.isna(h) else ("**holds**" if h else "**fails**")

    lines = ["| claim | figure | the paper | statistic (rule) | this run | |", "|---|---|---|---|---|---|"]
    for r in card.itertuples():
        cells = [f"`{r.claim}`", r.figure, r.statement, f"{r.statistic} ({r.rule})", r.value, mark(r.holds)]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    counted = card["holds"].dropna()
    lines.append("")
    lines.append(
        f"{int(counted.sum())} of {len(counted)} evaluated claims hold"
        + (f"; {int(card['holds'].isna().sum())} not run." if card["holds"].isna().any() else ".")
    )
    return "\n".join(lines) + "\n"


def html(card: pd.DataFrame) -> str:
    from html import escape

    rows = []
    for r in card.itertuples():
        colour = "#eee" if pd.isna(r.holds) else ("#d4f4d4" if r.holds else "#f8d0d0")
        verdict = "—" if pd.isna(r.holds) else ("holds" if r.holds else "fails")
        cells = [r.claim, r.figure, r.statement, f"{r.statistic} ({r.rule})", r.value, verdict]
        rows.append(
            f"<tr style='background:{colour}'>" + "".join(f"<td>{escape(str(c))}</td>" for c in cells) + "</tr>"
        )
    head = "".join(f"<th>{h}</th>" for h in ("claim", "figure", "the paper", "statistic (rule)", "this run", ""))
    return (
        "<html><head><meta charset='utf-8'><title>Reproduction scorecard</title></head><body>"
        "<h2>Reproduction scorecard</h2><p>Each claim of the paper, tested on this run's tables.</p>"
        f"<table border='1' cellpadding='4' style='border-collapse:collapse'><tr>{head}</tr>"
        + "\n".join(rows)
        + "</table></body></html>\n"
    )


def write(card: pd.DataFrame, parquet: str | os.PathLike, md: str | os.PathLike, page: str | os.PathLike) -> None:
    from .tables import write_frame

    write_frame(card, parquet, {"memorization.contract": "the reproduction scorecard (docs/science.md §6)"})
    Path(md).write_text(markdown(card))
    Path(page).write_text(html(card))


def claims_markdown() -> str:
    """The registered claims as a Markdown table (docs/science.md §6 holds a copy; a test keeps it current)."""
    lines = ["| claim | figure | the paper | statistic | holds when |", "|---|---|---|---|---|"]
    for c in registry.CLAIMS.values():
        cells = [f"`{c.name}`", c.figure, c.statement, c.statistic, c.rule]
        lines.append("| " + " | ".join(x.replace("|", "\\|") for x in cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    import argparse

    ap = argparse.ArgumentParser(
        prog="python -m memorization.claims", description="The reproduction scorecard from a copy of results/tables/."
    )
    ap.add_argument("tables_dir", nargs="?", help="a directory laid out as results/tables/<experiment>/<table>.parquet")
    ap.add_argument("--out", help="also write scorecard.parquet, scorecard.md and scorecard.html here")
    ap.add_argument("--list", action="store_true", help="print the registered claims (no tables needed)")
    ap.add_argument("--readme", help="write the scorecard into this README's generated results section")
    args = ap.parse_args(argv)
    if args.list:
        print(claims_markdown(), end="")
        return
    if not args.tables_dir:
        ap.error("give the tables directory (or --list)")
    from .tables import tables_by_figure

    card = scorecard(tables_by_figure(args.tables_dir))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        write(card, out / "scorecard.parquet", out / "scorecard.md", out / "scorecard.html")
    if args.readme:
        into_readme(args.readme, markdown(card))
    print(markdown(card), end="")


README_BEGIN = "<!-- scorecard: generated by `make readme-scorecard` -->\n"
README_END = "<!-- end of scorecard -->"


def into_readme(path: str | os.PathLike, scorecard_md: str) -> None:
    """Replace the README's generated results section with a scorecard."""
    text = Path(path).read_text()
    start, stop = text.index(README_BEGIN) + len(README_BEGIN), text.index(README_END)
    Path(path).write_text(text[:start] + scorecard_md + text[stop:])


if __name__ == "__main__":
    main()
