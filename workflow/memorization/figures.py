"""What every figure shares: the style, the curve helpers the rooms draw with, saving, the findings page,
and drawing every figure from a folder of tables. Each figure itself lives in its room
(memorization/papers/<paper>/figNN_*.py): its statistic, its drawing, its findings and its claims."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # figures are files; no display on workers
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import pandas as pd  # noqa: E402

from . import registry  # noqa: E402
from .stats import figure_statistic  # noqa: E402
from .tables import tables_by_figure  # noqa: E402

CONDITION_ORDER = ["real data", "random labels", "random inputs"]

# One style for every figure: sizes for a two-column paper at 150 dpi, no top/right spines, light grid.
STYLE = {
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "font.size": 9,
    "axes.titlesize": 9.5,
    "axes.labelsize": 9,
    "legend.fontsize": 7.5,
    "legend.frameon": False,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.25,
    "grid.linewidth": 0.6,
    "lines.linewidth": 1.6,
    "lines.markersize": 3.5,
    "figure.titlesize": 10.5,
}


def save(fig, stem: str | os.PathLike, findings: list[str] = (), *, stamp: bool = False) -> list[Path]:
    """Write `stem`.png and `stem`.pdf; PDF without a creation date so reruns give the same bytes.
    With `stamp`, the findings (what this run shows) are also printed under the plot."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    if stamp and findings:
        fig.text(0.01, -0.01, "This run: " + "\n".join(findings), ha="left", va="top", fontsize=7, family="monospace")
    paths = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    fig.savefig(paths[0], bbox_inches="tight", metadata={"Software": None})
    fig.savefig(paths[1], bbox_inches="tight", metadata={"CreationDate": None, "Producer": None})
    plt.close(fig)
    return paths


def plain_log_axis(ax, base: int = 10, ticks=None) -> None:
    """A log x-axis whose ticks read as plain numbers (50, 1000), not 5x10^1; at `ticks` if given (the data's
    own x values: within one decade a log axis would otherwise label a single tick)."""
    ax.set_xscale("log", base=base)
    if ticks is not None:
        ax.set_xticks(sorted(set(ticks)))
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def panel_row(n: int, width: float, height: float = 4):
    """A figure of `n` panels side by side, each `width` wide: (figure, the panels' axes)."""
    fig, axes = plt.subplots(1, n, figsize=(width * n, height), squeeze=False)
    return fig, list(axes[0])


def titled(fig, title: str, **style):
    """The figure with its title over all panels, laid out tight."""
    fig.suptitle(title, **style)
    fig.tight_layout()
    return fig


def ordered(groups, order=CONDITION_ORDER) -> list:
    """Groups in a figure's legend order: those of `order` first, in its order, then the others sorted."""
    return sorted(set(groups), key=lambda c: (order.index(c) if c in order else 50, c))


def curves(
    ax, stats: pd.DataFrame, x: str, by: str = "condition", order=CONDITION_ORDER, colors=None, bounds=None, **style
):
    """One line per group of a `stats.mean_band` frame, its mean with a ±1 std band over seeds. `bounds`
    (low, high) clips the band to the range the quantity can take (a ratio's band never goes below 0)."""
    for group in ordered(stats[by].unique(), order):
        g = stats[stats[by] == group]
        kw = {"marker": "o", "ms": 3, "lw": 1.8, "label": group, **style}
        if colors is not None:
            kw["color"] = colors[group]
        (line,) = ax.plot(g[x], g["mean"], **kw)
        if (g["count"] > 1).any():
            low, high = g["mean"] - g["std"].fillna(0), g["mean"] + g["std"].fillna(0)
            if bounds is not None:
                low, high = low.clip(*bounds), high.clip(*bounds)
            ax.fill_between(g[x], low, high, color=line.get_color(), alpha=0.2, lw=0)


def fraction_colors(levels) -> dict:
    """A colour per noise level, (fraction, label) pairs as `stats.noise_levels` gives them: the viridis
    map by fraction."""
    cmap = plt.get_cmap("viridis")
    by_fraction = dict(levels)
    fr = sorted(by_fraction)
    return {by_fraction[f]: cmap(0.9 * i / max(1, len(fr) - 1)) for i, f in enumerate(fr)}


def build(figure: str, tables: dict[str, pd.DataFrame]):
    """(matplotlib figure, findings) of one registered figure from its tables."""
    entry = registry.figure(figure)
    value = figure_statistic(figure, tables)
    with plt.rc_context(STYLE):
        return entry.draw(value), list(entry.findings(value))


def draw(figure: str, tables: dict[str, pd.DataFrame], stem: str | os.PathLike, *, stamp: bool = False) -> list[str]:
    """Draw `figure` from its tables, save it as PNG and PDF, and return (and print) its findings: what this
    run shows, computed from the tables. `stamp` also prints them under the plot."""
    fig, findings = build(figure, tables)
    for line in findings:
        print(f"{figure}: {line}")
    with plt.rc_context(STYLE):
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
    tables_dir: str | os.PathLike, out_dir: str | os.PathLike, *, stamp: bool = False
) -> list[Path]:
    """Draw every figure that the tables under `tables_dir` (laid out as results/tables/<experiment>/) feed,
    into `out_dir`, from the tables alone: no runs, checkpoints or Snakemake needed."""
    written = []
    for fig, frames in tables_by_figure(tables_dir).items():
        stem = Path(out_dir) / fig
        draw(fig, frames, stem, stamp=stamp)
        written += [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    return written


def main(argv=None) -> None:
    import argparse

    ap = argparse.ArgumentParser(
        prog="python -m memorization.figures",
        description="Regenerate the paper's figures from a copy of results/tables/.",
    )
    ap.add_argument("tables_dir", help="a directory laid out as results/tables/<experiment>/<table>.parquet")
    ap.add_argument("out_dir", nargs="?", default="figures", help="where to write figNN_<slug>.png/.pdf")
    ap.add_argument("--stamp-findings", action="store_true", help="print what this run shows under each plot")
    args = ap.parse_args(argv)
    written = figures_from_tables(args.tables_dir, args.out_dir, stamp=args.stamp_findings)
    if not written:
        raise SystemExit(
            f"no figure could be drawn from {args.tables_dir}: expected "
            f"<experiment>/<table>.parquet files written by this workflow"
        )
    for path in written:
        print(path)


if __name__ == "__main__":
    from .files import reported

    reported(main)()
