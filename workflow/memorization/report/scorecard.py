"""The reproduction scorecard: each registered claim, evaluated on the statistic of its figure.

A claim lives in its figure's room (memorization/papers/<paper>/figNN_*.py) with the statement, the
statistic in words and the rule that decides whether it holds; its `evaluate(statistic) -> Verdict` reads
the same statistic the figure draws and prints. The tables are those of the claim's figure (every
experiment that lists the figure), with runs shared by two experiments counted once. A claim whose figure
was not run is "not run", not false. `memorization claims TABLES` makes it from shared tables alone.
"""

from __future__ import annotations

import os
from html import escape
from pathlib import Path

import pandas as pd

from .. import catalog
from ..results.tables import MixedExperiments, write_frame
from .stats import figure_statistic

SCORECARD_COLUMNS = {
    "claim": "string",
    "figure": "string",
    "dataset": "string",
    "statement": "string",
    "statistic": "string",
    "rule": "string",
    "value": "string",
    "holds": "boolean",
}
# What a statistic cannot be computed from, or a claim evaluated on: e.g. a config without the conditions it
# compares. The scorecard says so for that figure's claims instead of failing.
NOT_COMPUTABLE = (KeyError, IndexError, ValueError, MixedExperiments)


def datasets_of(tables: dict[str, pd.DataFrame] | None) -> str | None:
    """The data set(s) a figure's tables were computed on, as the scorecard names them ("digits",
    "mnist5k14", or "digits, mnist5k" for a figure drawn from both); None for a figure not run."""
    if not tables:
        return None
    names = sorted({d for t in tables.values() if "dataset" in t for d in t["dataset"].dropna().unique()})
    return ", ".join(names) or None


def _not_computable(err: Exception) -> str:
    """Why a claim could not be evaluated, in words: the condition its statistic compares and the tables lack
    (a KeyError names it), or the refusal's or the statistic's own message."""
    if isinstance(err, KeyError) and err.args:
        return (
            f"not computable: these tables have no {err.args[0]!r}, which the claim compares; add it to the "
            "figure's experiment (its grid)"
        )
    return f"not computable from these tables: {err}"


def _row(claim, value: str = "not run", holds=None, dataset: str | None = None) -> dict:
    return {
        "claim": claim.name,
        "figure": claim.figure,
        "dataset": dataset,
        "statement": claim.statement,
        "statistic": claim.statistic,
        "rule": claim.rule,
        "value": value,
        "holds": holds,
    }


def evaluate_figure(figure: str, tables: dict[str, pd.DataFrame] | None) -> list[dict]:
    """The scorecard rows of one figure's claims: its statistic computed once from its tables (None: the
    figure was not run), every claim evaluated on it."""
    claims = catalog.claims_of(figure)
    if tables is None:
        return [_row(c) for c in claims]
    dataset = datasets_of(tables)
    try:
        value, _ = figure_statistic(figure, tables)
    except NOT_COMPUTABLE as err:
        return [_row(c, _not_computable(err), dataset=dataset) for c in claims]
    rows = []
    for claim in claims:
        try:
            verdict = claim.evaluate(value)
        except NOT_COMPUTABLE as err:
            rows.append(_row(claim, _not_computable(err), dataset=dataset))
        else:
            rows.append(_row(claim, verdict.value, bool(verdict.holds), dataset))
    return rows


def scorecard(tables_by_figure: dict[str, dict[str, pd.DataFrame]]) -> pd.DataFrame:
    """Every registered claim, evaluated on the statistic of its figure where that figure was run, in the
    order the claims were registered."""
    rows = {}
    for figure in dict.fromkeys(c.figure for c in catalog.CLAIMS.values()):
        rows |= {row["claim"]: row for row in evaluate_figure(figure, tables_by_figure.get(figure))}
    ordered = [rows[name] for name in catalog.CLAIMS]
    return pd.DataFrame(ordered, columns=list(SCORECARD_COLUMNS)).astype(SCORECARD_COLUMNS)


def markdown(card: pd.DataFrame) -> str:
    def mark(h):
        return "—" if pd.isna(h) else ("**holds**" if h else "**fails**")

    lines = [
        "| claim | figure | data set | the paper | statistic (rule) | this run | |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in card.itertuples():
        data = "—" if pd.isna(r.dataset) else r.dataset
        cells = [f"`{r.claim}`", r.figure, data, r.statement, f"{r.statistic} ({r.rule})", r.value, mark(r.holds)]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    notes = [(c.name, c.note) for c in catalog.CLAIMS.values() if c.note and c.name in set(card["claim"])]
    if notes:
        lines += ["", "Notes:"] + [f"- `{name}`: {note}" for name, note in notes]
    counted = card["holds"].dropna()
    lines.append("")
    lines.append(
        f"{int(counted.sum())} of {len(counted)} evaluated claims hold"
        + (f"; {int(card['holds'].isna().sum())} not run." if card["holds"].isna().any() else ".")
    )
    return "\n".join(lines) + "\n"


def paper_of(claim: str) -> str:
    """The title of the paper package a claim was registered from (its `TITLE`), or the package's name."""
    import sys

    module = catalog.CLAIMS[claim].evaluate.__module__
    package = ".".join(module.split(".")[:3])  # memorization.papers.<paper>
    return getattr(sys.modules.get(package), "TITLE", package.rsplit(".", 1)[-1])


def summary(card: pd.DataFrame, page: str = "docs/scorecard.md") -> str:
    """A few lines for the README: per paper, how many of its evaluated claims hold and which do not, with a
    link to the whole scorecard."""
    lines = []
    for paper, rows in card.groupby(card["claim"].map(paper_of), sort=False):
        counted = rows.dropna(subset=["holds"])
        failing = counted[~counted["holds"].astype(bool)]["claim"].tolist()
        line = f"- **{paper}**: {int(counted['holds'].sum())} of {len(counted)} evaluated claims hold"
        line += f"; not: {', '.join(f'`{c}`' for c in failing)}" if failing else ""
        if rows["holds"].isna().any():
            line += f" ({int(rows['holds'].isna().sum())} not run)"
        lines.append(line + ".")
    return "\n".join(lines) + f"\n\nEvery claim, its rule and this run's value: [{page}]({page}).\n"


def page(card: pd.DataFrame) -> str:
    """The whole scorecard as a Markdown page of its own (docs/scorecard.md)."""
    return (
        "# Reproduction scorecard\n\n"
        "<!-- generated by `make readme-scorecard` from a fresh-clone `make run` of config.yaml; do not edit -->\n"
        "Each claim of the paper, and of the papers on per-example scores that followed it (named in each "
        "statement), tested on the tables of the default run (the statistics and rules: docs/science.md §6 "
        "and §10).\n\n" + markdown(card)
    )


def html(card: pd.DataFrame) -> str:
    rows = []
    for r in card.itertuples():
        colour = "#eee" if pd.isna(r.holds) else ("#d4f4d4" if r.holds else "#f8d0d0")
        verdict = "—" if pd.isna(r.holds) else ("holds" if r.holds else "fails")
        data = "—" if pd.isna(r.dataset) else r.dataset
        cells = [r.claim, r.figure, data, r.statement, f"{r.statistic} ({r.rule})", r.value, verdict]
        rows.append(
            f"<tr style='background:{colour}'>" + "".join(f"<td>{escape(str(c))}</td>" for c in cells) + "</tr>"
        )
    headings = ("claim", "figure", "data set", "the paper", "statistic (rule)", "this run", "")
    head = "".join(f"<th>{h}</th>" for h in headings)
    return (
        "<html><head><meta charset='utf-8'><title>Reproduction scorecard</title></head><body>"
        "<h2>Reproduction scorecard</h2><p>Each claim of the paper, tested on this run's tables.</p>"
        f"<table border='1' cellpadding='4' style='border-collapse:collapse'><tr>{head}</tr>"
        + "\n".join(rows)
        + "</table></body></html>\n"
    )


def write(card: pd.DataFrame, parquet: str | os.PathLike, md: str | os.PathLike, page: str | os.PathLike) -> None:
    write_frame(card, parquet, {"memorization.contract": "the reproduction scorecard (docs/science.md §6)"})
    Path(md).write_text(markdown(card))
    Path(page).write_text(html(card))


def claims_markdown() -> str:
    """The registered claims as a Markdown table (docs/science.md §6 holds a copy; a test keeps it current)."""
    lines = ["| claim | figure | the paper | statistic | holds when |", "|---|---|---|---|---|"]
    for c in catalog.CLAIMS.values():
        cells = [f"`{c.name}`", c.figure, c.statement, c.statistic, c.rule]
        lines.append("| " + " | ".join(x.replace("|", "\\|") for x in cells) + " |")
    return "\n".join(lines) + "\n"
