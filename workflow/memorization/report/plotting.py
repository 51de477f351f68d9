"""What every figure shares: one style, and the helpers the rooms draw with (curves with a band over seeds,
plain log axes, panels, colours per noise level), and saving as PNG and PDF. Each figure itself lives in its
room (memorization/papers/<paper>/figNN_*.py)."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # figures are files; no display on workers
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import pandas as pd  # noqa: E402

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
