"""Drawing a registered figure from its tables: its statistic computed once (report.stats), its drawing in the
common style (report.plotting), its findings beside it; the findings page; every figure a folder of tables
feeds, without runs, checkpoints or Snakemake (`memorization figures`)."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import pandas as pd

from .. import catalog
from ..results.tables import MixedExperiments, tables_by_figure
from .plotting import STYLE, save
from .stats import figure_statistic


def build(figure: str, tables: dict[str, pd.DataFrame]):
    """(matplotlib figure, findings) of one registered figure from its tables."""
    entry = catalog.figure(figure)
    value, pooled = figure_statistic(figure, tables)
    with matplotlib.rc_context(STYLE):
        return entry.draw(value), [*entry.findings(value), *pooled]


def draw(figure: str, tables: dict[str, pd.DataFrame], stem: str | os.PathLike, *, stamp: bool = False) -> list[str]:
    """Draw `figure` from its tables, save it as PNG and PDF, and return (and print) its findings: what this
    run shows, computed from the tables. `stamp` also prints them under the plot."""
    fig, findings = build(figure, tables)
    for line in findings:
        print(f"{figure}: {line}")
    with matplotlib.rc_context(STYLE):
        save(fig, stem, findings, stamp=stamp)
    return findings


def findings_html(findings: dict[str, list[str]]) -> str:
    """The findings of several figures as one small HTML page (the report shows it)."""
    from html import escape

    parts = [
        "<html><head><meta charset='utf-8'><title>What this run shows</title></head><body>",
        "<h2>What this run shows, figure by figure</h2>",
        "<p>Computed from this run's tables by each figure's job; the paper's claims are in the captions.</p>",
    ]
    for name, lines in findings.items():
        items = "".join(f"<li>{escape(line)}</li>" for line in lines)
        parts.append(f"<h3>{escape(name)}</h3><ul>{items}</ul>")
    return "\n".join(parts + ["</body></html>"]) + "\n"


def figures_from_tables(
    tables_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    stamp: bool = False,
    skipped: dict[str, str] | None = None,
) -> list[Path]:
    """Draw every registered figure that the tables under `tables_dir` (laid out as
    results/<config>/tables/<experiment>/) feed, into `out_dir`, from the tables alone: no runs, checkpoints or
    Snakemake needed. The paper's figures are registered by importing memorization.papers (as `memorization
    figures` does). The figures that could not be drawn go into `skipped`, each with why."""
    if not catalog.FIGURES:
        raise RuntimeError("no figure is registered: import memorization.papers first (the papers' figures)")
    skipped = {} if skipped is None else skipped
    written = []
    for fig, frames in tables_by_figure(tables_dir, skipped).items():
        stem = Path(out_dir) / fig
        try:
            draw(fig, frames, stem, stamp=stamp)
        except MixedExperiments as err:
            skipped[fig] = f"not drawn: {err}"
            continue
        written += [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    return written
