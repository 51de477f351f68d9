"""Fig. 6: time to convergence against capacity and against the training-set size, per input-noise level
(the paper's §4)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ...catalog import DATA_CONDITIONS, Claim, Figure, Verdict, register_claims, register_figure
from ...report.stats import mean_band, noise_levels, not_below, standard_errors, with_noise

CAPTION = """\
**Fig. 6, time to convergence.** Epochs until the whole training set is classified correctly,
against hidden units (left) and training-set size (right), per input-noise level; hollow circles:
runs that never fit (drawn at the cap). *Paper (§4):* less capacity or more data slows training,
much more for noisy data: extra units help real data less, and time to fit grows much faster with
the data set size for noise."""


@dataclass(frozen=True)
class Panel:
    x: str  # width | train_size
    title: str
    runs: pd.DataFrame  # per (run, seed): epochs to fit (the cap for a run that never fit), capped
    curves: pd.DataFrame  # per (noise_label, x): mean, std and count over seeds of the epochs to fit


@dataclass(frozen=True)
class Convergence:
    panels: list[Panel]  # against the width at the full training set; against the size at one width
    levels: list[tuple[float, str]]  # (fraction, noise_label), by fraction
    fixed: dict[str, int]  # x -> the value the other axis is held at: {"width": train size, "train_size": width}

    def panel(self, x: str) -> Panel:
        return next(p for p in self.panels if p.x == x)

    def growth(self, x: str) -> dict[float, tuple[float, float, object, object]]:
        """Per noise fraction: (mean epochs at the smallest x, at the largest x, smallest x, largest x)."""
        p, out = self.panel(x), {}
        for fraction, label in self.levels:
            g = p.curves[p.curves["noise_label"] == label].set_index(x)["mean"]
            if len(g) > 1:
                out[fraction] = (g.iloc[0], g.iloc[-1], g.index[0], g.index[-1])
        return out

    def ratios(self, x: str) -> pd.Series:
        """Per noise fraction: mean epochs to fit at the largest x over those at the smallest."""
        return pd.Series({f: last / first for f, (first, last, _, _) in self.growth(x).items()})


def convergence(table: pd.DataFrame) -> Convergence:
    """The width panel is drawn at the largest training-set size run at several widths (the paper: its whole
    50,000 examples), the size panel at the width with the most sizes (the paper: 4096 units)."""
    frame = with_noise(table)
    frame = frame.assign(
        epochs=frame["epochs_to_fit"].astype("float64").fillna(frame["max_epochs"]),
        capped=frame["epochs_to_fit"].isna(),
    )
    widths = frame.groupby("train_size")["width"].nunique()
    full = widths[widths > 1].index.max() if (widths > 1).any() else widths.idxmax()
    fixed = frame.groupby("width")["train_size"].nunique().idxmax()
    panels = []
    for x, runs, title in (
        ("width", frame[frame["train_size"] == full], f"training set: {full} examples"),
        ("train_size", frame[frame["width"] == fixed], f"{fixed} hidden units"),
    ):
        if runs[x].nunique() > 1:
            panels.append(Panel(x, title, runs, mean_band(runs, x, "epochs", "noise_label")))
    return Convergence(panels, noise_levels(frame), {"width": int(full), "train_size": int(fixed)})


def findings(c: Convergence) -> list[str]:
    lines = []
    for p in c.panels:
        labels = dict(c.levels)
        for fraction, (first, last, x0, x1) in c.growth(p.x).items():
            lines.append(
                f"{p.title}, {labels[fraction]}: {first:.1f} -> {last:.1f} epochs from {p.x} {x0} to {x1} "
                f"(x{last / first:.2f})"
            )
    return lines


def draw(c: Convergence):
    """Runs that never fit are drawn at their cap, hollow."""

    from ...report.plotting import curves, fraction_colors, panel_row, plain_log_axis, titled

    fig, axes = panel_row(len(c.panels), 5.5)
    colors = fraction_colors(c.levels)
    order = [label for _, label in c.levels]
    for ax, p in zip(axes, c.panels):
        curves(ax, p.curves, p.x, "noise_label", order, colors)
        capped = p.runs[p.runs["capped"]]
        if len(capped):
            ax.scatter(
                capped[p.x],
                capped["epochs"],
                facecolors="none",
                edgecolors="k",
                s=40,
                zorder=5,
                label="never fit (cap)",
            )
        plain_log_axis(ax, base=2, ticks=p.runs[p.x])  # ticks at the sizes run (160, 640, ...), not powers of 2
        xlabel = "hidden units per layer" if p.x == "width" else "training examples"
        ax.set(xlabel=xlabel, ylabel="epochs to 100% training accuracy", title=p.title)
        ax.legend(fontsize=7)
    return titled(fig, "Time to convergence (Arpit et al. Fig. 6)")


FIGURE = register_figure(
    Figure(
        "fig06_convergence",
        ("convergence",),
        CAPTION,
        compute=convergence,
        draw=draw,
        findings=findings,
        axes=(*DATA_CONDITIONS, "width", "train_size"),  # its two panels: width, and the data set's size
    )
)


def width_helps_noise_more(c: Convergence) -> Verdict:
    ratio = c.ratios("width")  # < 1: fewer epochs at the largest width
    value = ", ".join(f"noise {f:g}: x{r:.2f}" for f, r in ratio.items())
    return Verdict(value, bool((ratio < 1).all() and ratio.iloc[0] > ratio.iloc[1:].max()))  # clean gains least


def size_ratios(c: Convergence) -> tuple[pd.Series, str]:
    """Per noise fraction, epochs to fit at the largest / at the smallest training set, and those in words."""
    ratio = c.ratios("train_size")
    return ratio, f"width {c.fixed['train_size']}: " + ", ".join(f"noise {f:g}: x{r:.2f}" for f, r in ratio.items())


def size_slows_noise_more(c: Convergence) -> Verdict:
    ratio, value = size_ratios(c)
    return Verdict(value, bool(ratio.iloc[0] < ratio.iloc[1:].min() and (ratio.iloc[1:] > 1).all()))


def noise_fits_slower(c: Convergence) -> Verdict:
    """At every width and every training-set size of the two panels, each noisy level takes more epochs to fit
    than clean data (mean over seeds, runs that never fit counted at their cap)."""
    points = slower = 0
    parts = []
    for p in c.panels:
        epochs = p.curves.pivot(index=p.x, columns="noise_label", values="mean")[[label for _, label in c.levels]]
        se = standard_errors(p.curves, p.x, "noise_label")[epochs.columns]
        clean, clean_se = epochs.iloc[:, 0], se.iloc[:, 0]
        ok = pd.concat([not_below(epochs[c], se[c], clean, clean_se) for c in epochs.columns[1:]], axis=1).all(
            axis=1
        )  # every noisy level not faster than clean data beyond the seeds' spread
        points, slower = points + len(ok), slower + int(ok.sum())
        if not ok.all():
            parts.append(f"not at {p.x} " + ", ".join(str(x) for x in ok.index[~ok]))
    value = f"{slower} of {points} points" + (f" ({'; '.join(parts)})" if parts else "")
    return Verdict(value, bool(points and slower == points))


def size_slows_all(c: Convergence) -> Verdict:
    """At every level, no fewer epochs at the largest training set than at the smallest beyond the seeds'
    spread."""
    ratio, value = size_ratios(c)
    p = c.panel("train_size")
    means = p.curves.pivot(index="train_size", columns="noise_label", values="mean")
    se = standard_errors(p.curves, "train_size", "noise_label")
    first, last = means.iloc[0], means.iloc[-1]
    slower = [bool(not_below(last[k], se[k].iloc[-1], first[k], se[k].iloc[0])) for _, k in c.levels]
    return Verdict(value, bool(len(ratio) and all(slower)))


register_claims(
    Claim(
        "fig06_noise_fits_slower",
        FIGURE.name,
        "On noisy data time to convergence is longer.",
        "epochs to fit per noise level at every width and every training-set size of the two panels",
        "every noisy level above clean data at every point, up to the seeds' spread",
        noise_fits_slower,
    ),
    Claim(
        "fig06_size_slows_all",
        FIGURE.name,
        "More data slows training, for real and noisy data alike.",
        "epochs to fit at the largest / at the smallest training set, per input-noise level",
        "> 1 at every level, clean data included, up to the seeds' spread",
        size_slows_all,
    ),
    Claim(
        "fig06_width_helps_noise_more",
        FIGURE.name,
        "More units fit faster, with stronger diminishing returns for real data.",
        "epochs to fit at the largest / at the smallest width, per input-noise level",
        "< 1 at every level, and closest to 1 for clean data",
        width_helps_noise_more,
    ),
    Claim(
        "fig06_size_slows_noise_more",
        FIGURE.name,
        "Time to fit grows with the data set size much faster for noisy data.",
        "epochs to fit at the largest / at the smallest training set, per input-noise level",
        "smallest for clean data, > 1 for every noisy level",
        size_slows_noise_more,
    ),
)
