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


FINDINGS_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; margin: 0 auto;
       max-width: 72rem; padding: 1rem 1.5rem 3rem; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { margin-top: 2.5rem; border-bottom: 1px solid #ddd; }
.lead { color: #555; max-width: 52rem; }
table { border-collapse: collapse; font-size: .85rem; width: 100%; }
th, td { border-bottom: 1px solid #e4e4e4; padding: .3rem .5rem; text-align: left; vertical-align: top; }
th { background: #f6f6f6; }
.verdict { font-weight: 600; white-space: nowrap; border-radius: .25rem; padding: .05rem .4rem; }
.holds { background: #d8f3dc; color: #1b5e20; } .fails { background: #fde2e1; color: #9b1c1c; }
.not-run { background: #eee; color: #555; }
figure { margin: 1rem 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: .9rem; max-width: 60rem; }
.findings li { margin: .15rem 0; } .claims td:first-child { white-space: nowrap; }
"""


def _verdict(holds) -> str:
    if pd.isna(holds):
        return "<span class='verdict not-run'>not run</span>"
    return "<span class='verdict holds'>holds</span>" if holds else "<span class='verdict fails'>fails</span>"


def _claim_row(r, *cells: str) -> str:
    """A scorecard row as a table row: the claim, the given cells (HTML), this run's value and the verdict."""
    from html import escape

    inner = "".join(f"<td>{c}</td>" for c in (f"<code>{escape(r.claim)}</code>", *cells, escape(str(r.value))))
    return f"<tr>{inner}<td>{_verdict(r.holds)}</td></tr>"


def findings_html(
    findings: dict[str, list[str]], images: dict[str, str] | None = None, card: pd.DataFrame | None = None
) -> str:
    """What this run shows, as one page to open in a browser (the report shows it too): the scorecard at the
    top, each claim's verdict coloured; then each figure, its image inline (PNG files, embedded, so the page
    travels alone), its caption (the paper's claim), its findings and its claims."""
    import base64
    from html import escape

    images = images or {}
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>What this run shows</title><style>{FINDINGS_STYLE}</style></head><body>",
        "<h1>What this run shows</h1>",
        "<p class='lead'>Computed from this run's tables alone: each figure with what it shows here (its findings) "
        "and the paper's claims about it, tested (docs/science.md §6 states each rule).</p>",
    ]
    if card is not None and len(card):
        counted = card.dropna(subset=["holds"])
        parts.append(
            f"<h2 id='scorecard'>Scorecard: {int(counted['holds'].sum())} of {len(counted)} claims hold</h2>"
            "<table class='claims'><tr><th>claim</th><th>figure</th><th>the paper</th><th>this run</th><th></th></tr>"
        )
        for r in card.itertuples():
            link = f"<a href='#{escape(r.figure)}'>{escape(r.figure)}</a>"
            parts.append(_claim_row(r, link, escape(r.statement)))
        parts.append("</table>")
    for name, lines in findings.items():
        parts.append(f"<h2 id='{escape(name)}'>{escape(name)}</h2>")
        if name in images:
            data = base64.b64encode(Path(images[name]).read_bytes()).decode("ascii")
            caption = catalog.FIGURES[name].caption if name in catalog.FIGURES else ""
            parts.append(
                f"<figure><img alt='{escape(name)}' src='data:image/png;base64,{data}'>"
                f"<figcaption>{escape(caption.replace('**', '').replace('*', ''))}</figcaption></figure>"
            )
        parts.append("<ul class='findings'>" + "".join(f"<li>{escape(line)}</li>" for line in lines) + "</ul>")
        claims = card[card["figure"] == name] if card is not None and len(card) else []
        if len(claims):
            parts.append("<table class='claims'><tr><th>claim</th><th>rule</th><th>this run</th><th></th></tr>")
            for r in claims.itertuples():
                parts.append(_claim_row(r, f"{escape(r.statistic)} ({escape(r.rule)})"))
            parts.append("</table>")
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
