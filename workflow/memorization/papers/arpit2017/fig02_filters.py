"""Fig. 2: first-layer filters after training on real data, random labels and random inputs (the paper's §3.1)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ...catalog import Claim, Figure, Verdict, register_claims, register_figure
from ...report.stats import filter_arrays, neighbour_correlation, with_condition

CAPTION = """\
**Fig. 2, first-layer filters** at the end of training on real data, random labels and random inputs
(seed 0, each filter scaled to its range). *Paper (§3.1):* filters learned on random labels are not
white noise: training on noise still picks up shared structure of the images. The number above each
panel is the correlation of neighbouring weights of what training changed (about 0 for white
noise)."""

ORDER = ["real data", "random labels", "random inputs"]
SHOWN = 16  # filters drawn per panel


@dataclass(frozen=True)
class Filters:
    conditions: list[str]
    shown: dict[str, np.ndarray]  # condition -> the last weights of its first run's first seed (F, C, H, W)
    structure: pd.DataFrame  # per (condition, run_id, seed): `learned` (W_T - W_0) and `initial` (W_0) correlation
    arch: str

    def mean(self, condition: str, column: str) -> float:
        return float(self.structure.loc[self.structure["condition"] == condition, column].mean())


def filters(table: pd.DataFrame) -> Filters:
    """How structured what training changed is: the neighbour-weight correlation of W_T - W_0 (about 0 for
    white noise), against that of the initial W_0, per seed, each seed from its own first to last step."""
    frame = with_condition(table)
    arrays = filter_arrays(frame)
    conditions = [c for c in ORDER if c in set(frame["condition"])] or sorted(frame["condition"].unique())
    shown, rows = {}, []
    for cond in conditions:
        g = frame[frame["condition"] == cond]
        shown[cond] = arrays[(g["run_id"].iloc[0], int(g["seed"].min()), g["step"].max())]
        for (run, seed), h in g.groupby(["run_id", "seed"]):
            w0, w1 = arrays[(run, seed, h["step"].min())], arrays[(run, seed, h["step"].max())]
            rows.append(
                {
                    "condition": cond,
                    "run_id": run,
                    "seed": seed,
                    "learned": neighbour_correlation(w1 - w0),
                    "initial": neighbour_correlation(w0),
                }
            )
    return Filters(conditions, shown, pd.DataFrame(rows), frame["arch"].iloc[0])


def findings(f: Filters) -> list[str]:
    return [
        f"{c}: neighbour-pixel correlation of W_T - W_0 {f.mean(c, 'learned'):.2f} (initial filters "
        f"{f.mean(c, 'initial'):.2f}), over {int((f.structure['condition'] == c).sum())} seed(s)"
        for c in f.conditions
    ]


def draw(f: Filters):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(f.conditions), figsize=(4.2 * len(f.conditions), 4.4), squeeze=False)
    for ax, cond in zip(axes[0], f.conditions):
        w = f.shown[cond]
        k = min(SHOWN, len(w))
        cols = int(np.ceil(np.sqrt(k)))
        rows = int(np.ceil(k / cols))
        C, H, W = w.shape[1:]
        tiles = np.full((rows * (H + 1) - 1, cols * (W + 1) - 1, 3 if C == 3 else 1), np.nan)
        for i in range(k):
            one = np.moveaxis(w[i], 0, -1)
            one = (one - one.min()) / (one.max() - one.min() + 1e-12)
            r, c = divmod(i, cols)
            tiles[r * (H + 1) : r * (H + 1) + H, c * (W + 1) : c * (W + 1) + W] = one
        ax.imshow(tiles if C == 3 else tiles[..., 0], cmap=None if C == 3 else "gray", interpolation="nearest")
        ax.set_axis_off()  # a mosaic, not a plot: no ticks, no frame around it
        ax.set_title(f"{cond}\nneighbour correlation of the learned change: {f.mean(cond, 'learned'):.2f}", fontsize=9)
    what = "first-layer 5x5 filters" if f.arch == "cnn" else "first-layer units as images"
    fig.suptitle(f"{what} at the end of training, seed 0, each scaled to its range (Arpit et al. Fig. 2)", fontsize=10)
    return fig


FIGURE = register_figure(Figure("fig02_filters", ("filters",), CAPTION, compute=filters, draw=draw, findings=findings))


def structured(f: Filters, condition: str) -> Verdict:
    s = f.structure[f.structure["condition"] == condition]
    gains = (s["learned"] - s["initial"]).to_numpy()
    return Verdict(f"per seed {' '.join(f'{v:.3g}' for v in gains)}", bool(len(gains) and gains.min() > 0))


def real_filters(f: Filters) -> Verdict:
    return structured(f, "real data")


def random_label_filters(f: Filters) -> Verdict:
    return structured(f, "random labels")


register_claims(
    Claim(
        "fig02_real_filters",
        FIGURE.name,
        "First-layer filters learned on real data are structured (edge detectors), not white noise.",
        "neighbour-weight correlation of W_T - W_0 minus that of W_0 (white noise), real data",
        "> 0 in every seed",
        real_filters,
    ),
    Claim(
        "fig02_random_label_filters",
        FIGURE.name,
        "First-layer filters learned on random labels are not white noise.",
        "neighbour-weight correlation of W_T - W_0 minus that of W_0 (white noise), random labels",
        "> 0 in every seed",
        random_label_filters,
    ),
)
