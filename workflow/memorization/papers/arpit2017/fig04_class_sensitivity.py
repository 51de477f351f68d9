"""Fig. 4: per-class loss sensitivity, real against random data (the paper's §3.4)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ...catalog import Claim, Figure, Verdict, register_claims, register_figure
from ...report.stats import at_last_step, diagonal_dominance, with_condition

CAPTION = """\
**Fig. 4, per-class loss sensitivity.** Cell (i, j): sensitivity of the class-i term of the loss to
training inputs of class j, through the SGD updates, at the end of training (log colour scale).
*Paper (§3.4):* the diagonal dominates, but real data spreads more mass off the diagonal (patterns
shared across classes), so the diagonal/off-diagonal ratio D is smaller for real data. How much the
ordering depends on the number of steps T: "What this run shows" gives D at every computed
checkpoint (setting `metrics.class_sensitivity.at`); `variant: authors` computes the authors' code's
definition instead."""


@dataclass(frozen=True)
class ClassSensitivity:
    last: dict[
        str, np.ndarray
    ]  # condition -> mean matrix (i: class of the loss term, j: of the inputs) at each run's last checkpoint
    by_step: dict[int, dict[str, float]]  # checkpoint step -> condition -> D (the ordering can depend on T)
    variant: str

    def dominance(self, condition: str) -> float:
        """D = mean diagonal / mean off-diagonal at the last checkpoint."""
        return diagonal_dominance(self.last[condition])


def _matrices(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    return {
        c: g.groupby(["class_i", "class_j"])["value"].mean().unstack().to_numpy() for c, g in frame.groupby("condition")
    }


def class_sensitivity(cs: pd.DataFrame) -> ClassSensitivity:
    frame = with_condition(cs[cs["label_noise"] != "identity"])
    by_step = {
        step: {c: diagonal_dominance(m) for c, m in sorted(_matrices(at_step).items())}
        for step, at_step in frame.groupby("step")
    }
    variant = cs["variant"].iloc[0] if "variant" in cs else "paper"
    return ClassSensitivity(_matrices(at_last_step(frame)), by_step, variant)


def findings(s: ClassSensitivity) -> list[str]:
    return [f"D at step {step}: " + ", ".join(f"{c} {v:.2f}" for c, v in d.items()) for step, d in s.by_step.items()]


def draw(s: ClassSensitivity):
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    conds = [c for c in ("real data", "random inputs") if c in s.last] or sorted(s.last)
    mats = {c: s.last[c] for c in conds}
    positive = np.concatenate([m[m > 0] for m in mats.values()])  # (NaN > 0 is False)
    norm = LogNorm(vmin=positive.min(), vmax=positive.max())
    fig, axes = plt.subplots(1, len(mats), figsize=(4.6 * len(mats), 4), squeeze=False)
    for ax, (cond, m) in zip(axes[0], mats.items()):
        im = ax.imshow(np.where(m > 0, m, np.nan), norm=norm, cmap="viridis")  # NaN and 0: not drawn
        ax.set_title(f"{cond}\ndiagonal / off-diagonal = {s.dominance(cond):.1f}")
        ax.set_xlabel("class j of the training inputs x")
        ax.set_ylabel("class i of the loss term")
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.85, label=r"$\bar{g}_{ij}$")
    fig.suptitle(f"Per-class loss sensitivity at the last checkpoint ({s.variant}'s definition) (Arpit et al. Fig. 4)")
    return fig


FIGURE = register_figure(
    Figure(
        "fig04_class_sensitivity",
        ("class_sensitivity",),
        CAPTION,
        compute=class_sensitivity,
        draw=draw,
        findings=findings,
    )
)


def real_less_diagonal(s: ClassSensitivity) -> Verdict:
    real, rand = s.dominance("real data"), s.dominance("random inputs")
    return Verdict(f"D real {real:.2f}, random inputs {rand:.2f}", bool(real < rand))


def diagonal_highest(s: ClassSensitivity) -> Verdict:
    """Per condition, the classes i whose loss term is most sensitive to inputs of their own class."""
    rows = {c: np.nanargmax(m, axis=1) == np.arange(len(m)) for c, m in s.last.items()}
    value = ", ".join(f"{c} {int(r.sum())} of {len(r)} rows" for c, r in rows.items())
    return Verdict(value, bool(len(rows) >= 2 and all(r.all() for r in rows.values())))


register_claims(
    Claim(
        "fig04_diagonal_highest",
        FIGURE.name,
        "For real and for random data alike, each class's loss is most sensitive to its own class's examples.",
        "rows i of the per-class sensitivity at the last checkpoint whose largest cell is the diagonal (i, i)",
        "every row, in both conditions",
        diagonal_highest,
    ),
    Claim(
        "fig04_real_less_diagonal",
        FIGURE.name,
        "Real data spread loss sensitivity across classes more than random data.",
        "diagonal / off-diagonal ratio D of the per-class sensitivity at the last checkpoint",
        "D(real) < D(random inputs)",
        real_less_diagonal,
    ),
)
