"""The per-example scores of the literature that followed the paper, from one finished run's files, every seed
(docs/science.md §10 gives each definition, its paper and its reference code):

- from the presentations the training step recorded (presentations/epoch_*.npz): forgetting events and the
  first-learned epoch (Toneva et al. 2019), the area under the margin (Pleiss et al. 2020);
- from the evaluations at the end of each epoch: the data map's confidence, variability and correctness
  (Swayamdipta et al. 2020);
- from checkpoints: EL2N and GraNd early in training (Paul et al. 2021), the variance of gradients over the
  checkpoints (Agarwal et al. 2022).

The scores are small pure functions of arrays. Each column of the `scores` table is declared once, in the
catalog (catalog.SCORES), naming the function here that computes it with its siblings from a `ScoredRun`;
`scores_frame` calls each once and lays the columns out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from .. import catalog
from ..engine.backprop import WRITTEN_OUT_LOSSES, by_autograd, mlp_pass, written_out
from ..engine.data import NoisyDataset
from ..engine.memory import EVAL_BATCH
from ..engine.models import Arch, example_losses, forward
from ..engine.sgd import load_state
from ..engine.timeline import Timeline, completed_timeline
from ..results.files import read_npz
from ..results.rundir import checkpoint_path, eval_path, presentations_path

if TYPE_CHECKING:
    from ..config import RunSpec

# ----------------------------------------------------------------------------- from the presentations


def presentation_scores(example: np.ndarray, correct: np.ndarray, margin: np.ndarray, n: int) -> dict:
    """One seed's presentation-based scores from its presentations in time order (example index, whether the
    training forward pass classified it as labelled, its margin; (P,) arrays each), for examples 0..n-1:

    presentations: how often the example was presented;
    forgetting_events: 1→0 changes of correctness between consecutive presentations (Toneva et al.);
    never_learned: never correct on any presentation;
    forgetting: the events, or the presentations for an example never learned (Toneva et al.'s code sorts
      those as the most forgotten: the maximum count);
    first_learned: the first presentation (its position in time, -1 if never) at which it was correct;
    aum: the margin averaged over the presentations (Pleiss et al.; NaN if never presented)."""
    order = np.argsort(example, kind="stable")  # each example's presentations together, still in time order
    ex, ok = example[order], correct[order]
    same = ex[1:] == ex[:-1]
    forgotten = same & ok[:-1] & ~ok[1:]
    presentations = np.bincount(example, minlength=n)
    events = np.bincount(ex[1:][forgotten], minlength=n)
    learned = np.bincount(example[correct], minlength=n) > 0
    first = np.full(n, -1, dtype=np.int64)
    hits = np.flatnonzero(correct)
    # the first hit of each example: np.unique returns the first position of each value
    hit_examples, at = np.unique(example[hits], return_index=True)
    first[hit_examples] = hits[at]
    with np.errstate(invalid="ignore", divide="ignore"):
        aum = np.bincount(example, weights=margin.astype(np.float64), minlength=n) / presentations
    return {
        "presentations": presentations,
        "forgetting_events": events,
        "never_learned": ~learned,
        "forgetting": np.where(learned, events, presentations).astype(np.float64),
        "first_learned": first,
        "aum": aum,
    }


def read_presentations(spec: RunSpec, timeline: Timeline, run_dir):
    """(example, step, correct, margin), each (S, P) over the whole run in time order: the epochs' files, with
    each presentation's example from the epoch's order (the timeline is stateless) and the step it was in."""
    epochs = -(-timeline.total_steps // timeline.steps_per_epoch)
    parts = []
    for epoch in range(epochs):
        f = read_npz(presentations_path(run_dir, epoch), ["correct", "margin"])
        correct, margin = f["correct"], f["margin"]
        k = correct.shape[1]
        example = timeline.epoch_order(spec.seeds, epoch)[:, :k].numpy()
        step = epoch * timeline.steps_per_epoch + np.arange(k) // timeline.batch_size + 1  # steps count from 1
        parts.append((example, np.broadcast_to(step, example.shape), correct, margin))
    return tuple(np.concatenate([p[i] for p in parts], axis=1) for i in range(4))


# ----------------------------------------------------------------------------- from the evaluations


def data_map(p_label: np.ndarray, correct: np.ndarray) -> dict:
    """Swayamdipta et al.'s data map from the evaluations at the end of the epochs, (E, S, N) each: confidence
    (mean over epochs of the probability of the label), variability (its standard deviation, ddof 0 as their
    code) and correctness (the fraction of epochs classified as labelled); (S, N) each."""
    return {
        "confidence": p_label.mean(0),
        "variability": p_label.std(0),
        "correctness": correct.mean(0),
    }


# ----------------------------------------------------------------------------- from checkpoints


def el2n(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """EL2N (Paul et al.): ‖softmax(z) − onehot(y)‖₂ per example, (S, N) from logits (S, N, C)."""
    p = torch.softmax(logits, -1)
    return (p - torch.nn.functional.one_hot(y.expand(p.shape[:2]), p.shape[-1]).to(p.dtype)).norm(dim=-1)


def grand(arch: Arch, params: dict, buffers: dict, x: torch.Tensor, y: torch.Tensor, loss: str, chunk: int):
    """GraNd (Paul et al.): the norm of each example's gradient of its loss over all the parameters (not the
    last layer only, as some re-implementations do), eval mode; (S, N). The MLP's in closed form
    (`_mlp_grand`); any other model's per-example gradients come from the engine's stacked seeds: `chunk`
    copies of one seed's model, each with one example as its batch, so autograd of their summed losses gives
    each copy its example's gradient (torch.func's vmap cannot batch the CNN's channels-last convolutions)."""
    S = next(iter(params.values())).shape[0]
    if written_out(arch, loss):
        return _mlp_grand(arch, params, x, y, loss, chunk)
    out = torch.empty((S, len(x)), device=x.device)
    for s in range(S):
        for i in range(0, len(x), chunk):
            xb, yb = x[i : i + chunk], y[i : i + chunk]
            copies = {k: v[s : s + 1].expand(len(xb), *v.shape[1:]) for k, v in params.items()}
            b = {k: v[s : s + 1].expand(len(xb), *v.shape[1:]) for k, v in buffers.items()}

            def losses_of(leaves, b=b, xb=xb, yb=yb):
                logits, _ = forward(arch, leaves, b, xb.unsqueeze(1), train=False)  # (copies, 1, C)
                return example_losses(logits, yb.unsqueeze(1), loss), logits, b

            grads, _, _, _ = by_autograd(copies, losses_of)  # each copy's gradient of its batch-of-one loss
            out[s, i : i + chunk] = torch.stack([g.flatten(1).pow(2).sum(1) for g in grads.values()]).sum(0).sqrt()
    return out


def _mlp_grand(arch: Arch, params: dict, x: torch.Tensor, y: torch.Tensor, loss: str, chunk: int) -> torch.Tensor:
    """GraNd of the MLP in closed form: an example's gradient of a dense layer's kernel is the outer product
    h δᵀ of its input and backward error, whose norm is ‖h‖·‖δ‖, and its bias gradient is δ; so ‖∇θ ℓ‖² =
    Σ_l (‖h_l‖² + 1)·‖δ_l‖², from one written-out pass over a chunk (memorization.engine.backprop; its δ carry the
    batch mean's 1/B, undone here). 100x faster than materialising the per-example gradients."""
    S = next(iter(params.values())).shape[0]
    out = torch.empty((S, len(x)), device=x.device)
    for i in range(0, len(x), chunk):
        xb, yb = x[i : i + chunk], y[i : i + chunk]
        step = mlp_pass(arch, params, xb.unsqueeze(0), yb.expand(S, -1), loss, None)
        squares = sum(
            (h.pow(2).sum(-1) + 1) * d.pow(2).sum(-1) for h, d in zip(step.inputs, step.deltas)
        )  # (S or 1, B) x (S, B)
        out[:, i : i + chunk] = squares.sqrt() * len(xb)
    return out


def label_logit_input_gradients(arch: Arch, params: dict, buffers: dict, x: torch.Tensor, y: torch.Tensor):
    """∂z_y/∂x of every seed's model (eval mode) at every example: (S, N, *x's shape). The examples do not
    interact in eval mode, so one backward pass of the summed label logits gives each example's gradient."""
    S = next(iter(params.values())).shape[0]
    xs = x.expand(S, *x.shape).clone().requires_grad_(True)
    with torch.enable_grad():
        logits, _ = forward(arch, params, buffers, xs, train=False)
        (g,) = torch.autograd.grad(logits.gather(2, y.expand(S, -1).unsqueeze(2)).sum(), xs)
    return g


def vog(gradients_sum: torch.Tensor, squares_sum: torch.Tensor, k: int) -> torch.Tensor:
    """Agarwal et al.'s VoG before class normalisation: per input dimension the standard deviation over the k
    checkpoints of ∂z_y/∂x (from their sum and the sum of their squares, float64), averaged over the input
    dimensions; (S, N)."""
    mean = gradients_sum / k
    variance = (squares_sum / k - mean**2).clamp_min(0)
    return variance.sqrt().flatten(2).mean(2)


def class_normalized(values: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(v − mean of its class) / std of its class, per seed (rows), as Agarwal et al. normalise VoG: the
    classes' scales differ, and the score ranks within a class. NaN where a class's spread is 0."""
    out = np.full(values.shape, np.nan)
    for c in np.unique(labels):
        of = labels == c
        mean, std = values[:, of].mean(1, keepdims=True), values[:, of].std(1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, of] = np.where(std > 0, (values[:, of] - mean) / std, np.nan)
    return out


def nearest_checkpoint(steps, step: float) -> int:
    """The checkpoint step nearest `step` (the earlier one on a tie), the initialisation excluded."""
    candidates = [s for s in steps if s > 0]
    return min(candidates, key=lambda s: (abs(s - step), s))


# ----------------------------------------------------------------------------- cost model (memorization.pipeline.plan)

# In evaluations of the examples by every seed (the plan's `eval_example`), measured on the default's scores
# runs: a checkpoint's input gradients (VoG) 2.3-2.8; the MLP's GraNd in closed form 2; the CNN's per-example
# gradients, materialised for each seed, about 45 per seed.
VOG_EVALS = 3.0
MLP_GRAND_EVALS = 2.0
GRAND_EVALS_PER_SEED = 45.0


def scores_cost(spec: RunSpec, settings: dict, t: dict, shape) -> float:
    """Seconds: VoG's input gradients at every checkpoint after the initialisation, and GraNd at one (the
    presentations and evaluations are only read)."""
    checkpoints = len([s for s in shape.timeline.checkpoint_steps if s > 0])
    closed_form = spec.arch == "mlp" and not spec.crop and spec.loss in WRITTEN_OUT_LOSSES
    grand_evals = MLP_GRAND_EVALS if closed_form else GRAND_EVALS_PER_SEED * len(spec.seeds)
    return shape.n_train * t["eval_example"] * (VOG_EVALS * checkpoints + grand_evals)


# ----------------------------------------------------------------------------- one run's table


@dataclass(frozen=True)
class ScoredRun:
    """A finished run as its scores read it: its spec, data, folder and the table's settings, with its model's
    architecture, the timeline it followed and its training set on the device."""

    spec: RunSpec
    data: NoisyDataset
    run_dir: Path
    settings: dict
    arch: Arch
    timeline: Timeline
    x: torch.Tensor
    y: torch.Tensor

    @classmethod
    def read(cls, spec: RunSpec, data: NoisyDataset, run_dir, settings: dict, device) -> ScoredRun:
        arch = Arch.from_spec(spec, data.x_train.shape[1:], data.n_classes)
        timeline = completed_timeline(spec, len(data.y_train), run_dir)
        x, y = (torch.as_tensor(a, device=device) for a in (data.x_train, data.y_train))
        return cls(spec, data, Path(run_dir), settings, arch, timeline, x, y)


def presented(run: ScoredRun) -> dict:
    """The scores of the presentations (`presentation_scores`), (S, N) each; the first-learned epoch NaN where
    never learned."""
    example, step, correct, margin = read_presentations(run.spec, run.timeline, run.run_dir)
    seeds = [presentation_scores(example[s], correct[s], margin[s], len(run.y)) for s in range(len(run.spec.seeds))]
    out = {k: np.stack([p[k] for p in seeds]) for k in ("presentations", "forgetting_events", "never_learned",
                                                        "forgetting", "aum")}  # fmt: skip
    first = [np.where(p["first_learned"] >= 0, step[s][p["first_learned"]], -1) for s, p in enumerate(seeds)]
    out["first_learned_epoch"] = np.where(np.stack(first) >= 0, np.stack(first) / run.timeline.steps_per_epoch, np.nan)
    return out


def data_map_of(run: ScoredRun) -> dict:
    """The data map (`data_map`) over the evaluations at the end of every epoch (of every log_every-th), not
    the initialisation."""
    evaluations = [read_npz(eval_path(run.run_dir, s), ["p_label", "correct"]) for s in run.timeline.eval_steps[1:]]
    p_label = np.stack([ev["p_label"] for ev in evaluations]).astype(np.float64)
    return data_map(p_label, np.stack([ev["correct"] for ev in evaluations]))


def early(run: ScoredRun) -> dict:
    """EL2N and GraNd at the checkpoint nearest the setting early_epoch, and that checkpoint's step."""
    timeline, x, n = run.timeline, run.x, len(run.y)
    step = nearest_checkpoint(timeline.checkpoint_steps, run.settings["early_epoch"] * timeline.steps_per_epoch)
    state = load_state(checkpoint_path(run.run_dir, step), x.device)
    with torch.no_grad():
        chunk = EVAL_BATCH[x.device.type]
        logits = torch.cat(
            [forward(run.arch, state["params"], state["buffers"], x[i : i + chunk], train=False)[0]
             for i in range(0, n, chunk)], 1,
        )  # fmt: skip
    grands = grand(run.arch, state["params"], state["buffers"], x, run.y, run.spec.loss, run.settings["chunk"])
    return {"el2n": el2n(logits, run.y).cpu().double().numpy(), "grand": grands.cpu().double().numpy(),
            "early_step": step}  # fmt: skip


def variance_of_gradients(run: ScoredRun) -> dict:
    """VoG over the checkpoints after the initialisation, before and after the normalisation within each
    class (NaN with fewer than 2 checkpoints), and how many checkpoints it is taken over."""
    x, y, chunk = run.x, run.y, run.settings["chunk"]
    steps = [s for s in run.timeline.checkpoint_steps if s > 0]
    g_sum = torch.zeros((len(run.spec.seeds), *x.shape), dtype=torch.float64)
    g_sq = torch.zeros_like(g_sum)
    for s in steps:
        state = load_state(checkpoint_path(run.run_dir, s), x.device)
        for i in range(0, len(x), chunk):
            g = label_logit_input_gradients(
                run.arch, state["params"], state["buffers"], x[i : i + chunk], y[i : i + chunk]
            )
            g = g.cpu().double()
            g_sum[:, i : i + chunk] += g
            g_sq[:, i : i + chunk] += g**2
    if len(steps) < 2:  # one checkpoint has no variance over checkpoints
        raw = normalized = np.full((len(run.spec.seeds), len(x)), np.nan)
    else:
        raw = vog(g_sum, g_sq, len(steps)).numpy()
        normalized = class_normalized(raw, run.data.y_train)
    return {"vog": normalized, "vog_unnormalized": raw, "vog_checkpoints": len(steps)}


def scores_frame(spec: RunSpec, data: NoisyDataset, run_dir, settings: dict, device="cpu") -> pd.DataFrame:
    """Every per-example score of every seed of a finished run: one row per (seed, training example), a column
    per score the catalog declares (catalog.SCORES), each computed with its siblings by the function it names."""
    run = ScoredRun.read(spec, data, run_dir, settings, device)
    columns = {}
    for compute in dict.fromkeys(score.compute for score in catalog.SCORES):
        columns |= catalog.implementation(compute)(run)
    S, n = len(spec.seeds), len(data.y_train)
    frame = pd.DataFrame(
        {
            "seed": np.repeat(spec.seeds, n),
            "example": np.tile(np.arange(n), S),
            "label": np.tile(data.y_train.astype(np.int64), S),
            "is_noisy": np.tile(data.is_noisy, S),
            **{score.name: np.broadcast_to(columns[score.name], (S, n)).reshape(-1) for score in catalog.SCORES},
        }
    )
    return frame.astype({score.name: score.dtype for score in catalog.SCORES})


# ----------------------------------------------------------------------------- subset trainings


def heldout_frame(
    spec: RunSpec, data: NoisyDataset, run_dir, settings: dict | None = None, device="cpu"
) -> pd.DataFrame:
    """What every seed's model makes of every training example at the end of training, and whether the seed
    trained on it: the records Feldman & Zhang's code saves per model (its subset and its correctness), from
    which held-out memorization and the C-score are estimated across seeds and runs (memorization.report.stats).
    (settings and device: the metric signature; unused.)"""
    timeline = completed_timeline(spec, len(data.y_train), run_dir)
    ev = read_npz(eval_path(run_dir, timeline.total_steps), ["correct", "p_label"])
    correct, p_label = ev["correct"], ev["p_label"]
    mask, n = timeline.subset_mask(spec.seeds), len(data.y_train)
    return pd.DataFrame(
        {
            "seed": np.repeat(spec.seeds, n),
            "example": np.tile(np.arange(n), len(spec.seeds)),
            "label": np.tile(data.y_train.astype(np.int64), len(spec.seeds)),
            "is_noisy": np.tile(data.is_noisy, len(spec.seeds)),
            "subset_fraction": timeline.subset_fraction,
            "in_subset": mask.reshape(-1),
            "correct": correct.reshape(-1),
            "p_label": p_label.reshape(-1).astype(np.float64),
        }
    )


def scores_board(frame: pd.DataFrame):
    """Each ranked score's distribution over the training examples, per seed, at the run's end; the noisy and
    the clean examples apart where the run has both: for the run's TensorBoard (results.events)."""
    from ..results.events import BoardValue

    parts = {"": frame}
    if frame["is_noisy"].any() and not frame["is_noisy"].all():
        parts = {" (noisy examples)": frame[frame["is_noisy"]], " (clean examples)": frame[~frame["is_noisy"]]}
    return [
        BoardValue(
            "histogram",
            f"scores/{score.name}{part}",
            None,
            {s: g[score.name].to_numpy(float) for s, g in rows.groupby("seed")},
        )
        for score in catalog.SCORES
        if score.direction is not None
        for part, rows in parts.items()
    ]
