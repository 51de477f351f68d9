"""The per-example scores of the literature that followed the paper, from one finished run's files, every seed
(docs/science.md §10 gives each definition, its paper and its reference code):

- from the presentations the training step recorded (presentations/epoch_*.npz): forgetting events and the
  first-learned epoch (Toneva et al. 2019), the area under the margin (Pleiss et al. 2020);
- from the evaluations at the end of each epoch: the data map's confidence, variability and correctness
  (Swayamdipta et al. 2020);
- from checkpoints: EL2N and GraNd early in training (Paul et al. 2021), the variance of gradients over the
  checkpoints (Agarwal et al. 2022).

The scores are small pure functions of arrays; `scores_frame` reads a run and calls them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from .backprop import WRITTEN_OUT_LOSSES, by_autograd, mlp_pass, written_out
from .data import NoisyDataset
from .files import read_npz
from .memory import EVAL_BATCH
from .models import Arch, example_losses, forward
from .rundir import checkpoint_path, eval_path, presentations_path
from .sgd import Schedule, completed_schedule, load_state

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


def read_presentations(spec: dict, plan: Schedule, run_dir):
    """(example, step, correct, margin), each (S, P) over the whole run in time order: the epochs' files, with
    each presentation's example from the epoch's order (the schedule is stateless) and the step it was in."""
    epochs = -(-plan.total_steps // plan.steps_per_epoch)
    parts = []
    for epoch in range(epochs):
        f = read_npz(presentations_path(run_dir, epoch), ["correct", "margin"])
        correct, margin = f["correct"], f["margin"]
        k = correct.shape[1]
        example = plan.epoch_order(spec["seeds"], epoch)[:, :k].numpy()
        step = epoch * plan.steps_per_epoch + np.arange(k) // plan.batch_size + 1  # steps count from 1
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
    Σ_l (‖h_l‖² + 1)·‖δ_l‖², from one written-out pass over a chunk (memorization.backprop; its δ carry the
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


# ----------------------------------------------------------------------------- cost model (memorization.plan)

# In evaluations of the examples by every seed (the plan's `eval_example`), measured on the default's scores
# runs: a checkpoint's input gradients (VoG) 2.3-2.8; the MLP's GraNd in closed form 2; the CNN's per-example
# gradients, materialised for each seed, about 45 per seed.
VOG_EVALS = 3.0
MLP_GRAND_EVALS = 2.0
GRAND_EVALS_PER_SEED = 45.0


def scores_cost(spec: dict, settings: dict, t: dict, shape) -> float:
    """Seconds: VoG's input gradients at every checkpoint after the initialisation, and GraNd at one (the
    presentations and evaluations are only read)."""
    checkpoints = len([s for s in shape.schedule.checkpoint_steps if s > 0])
    closed_form = spec["arch"] == "mlp" and not spec.get("crop") and spec["loss"] in WRITTEN_OUT_LOSSES
    grand_evals = MLP_GRAND_EVALS if closed_form else GRAND_EVALS_PER_SEED * len(spec["seeds"])
    return shape.n_train * t["eval_example"] * (VOG_EVALS * checkpoints + grand_evals)


# ----------------------------------------------------------------------------- one run's table


def scores_frame(spec: dict, data: NoisyDataset, run_dir, settings: dict, device="cpu") -> pd.DataFrame:
    """Every per-example score of every seed of a finished run: one row per (seed, training example)."""
    x = torch.as_tensor(data.x_train, device=device)
    y = torch.as_tensor(data.y_train, device=device)
    labels, n, seeds = data.y_train, len(data.y_train), list(spec["seeds"])
    arch = Arch.from_spec(spec, data.x_train.shape[1:], data.n_classes)
    plan = completed_schedule(spec, n, run_dir)

    example, step, correct, margin = read_presentations(spec, plan, run_dir)
    presented = [presentation_scores(example[s], correct[s], margin[s], n) for s in range(len(seeds))]
    first_step = [np.where(p["first_learned"] >= 0, step[s][p["first_learned"]], -1) for s, p in enumerate(presented)]

    p_label, eval_correct = [], []
    for s in plan.eval_steps[1:]:  # the end of every epoch (of every log_every-th), not the initialisation
        ev = read_npz(eval_path(run_dir, s), ["p_label", "correct"])
        p_label.append(ev["p_label"])
        eval_correct.append(ev["correct"])
    dmap = data_map(np.stack(p_label).astype(np.float64), np.stack(eval_correct))

    early = nearest_checkpoint(plan.checkpoint_steps, settings["early_epoch"] * plan.steps_per_epoch)
    state = load_state(checkpoint_path(run_dir, early), device)
    with torch.no_grad():
        chunk = EVAL_BATCH[x.device.type]
        logits = torch.cat(
            [forward(arch, state["params"], state["buffers"], x[i : i + chunk], train=False)[0]
             for i in range(0, n, chunk)], 1,
        )  # fmt: skip
    early_el2n = el2n(logits, y)
    early_grand = grand(arch, state["params"], state["buffers"], x, y, spec["loss"], settings["chunk"])

    vog_steps, chunk = [s for s in plan.checkpoint_steps if s > 0], settings["chunk"]
    g_sum = torch.zeros((len(seeds), *x.shape), dtype=torch.float64)
    g_sq = torch.zeros_like(g_sum)
    for s in vog_steps:
        state = load_state(checkpoint_path(run_dir, s), device)
        for i in range(0, n, chunk):
            g = label_logit_input_gradients(arch, state["params"], state["buffers"], x[i : i + chunk], y[i : i + chunk])
            g = g.cpu().double()
            g_sum[:, i : i + chunk] += g
            g_sq[:, i : i + chunk] += g**2
    if len(vog_steps) >= 2:
        raw = vog(g_sum, g_sq, len(vog_steps)).numpy()
        normalized = class_normalized(raw, labels)
    else:  # one checkpoint has no variance over checkpoints
        raw = normalized = np.full((len(seeds), n), np.nan)

    epoch = plan.steps_per_epoch
    frames = []
    for s, seed in enumerate(seeds):
        p = presented[s]
        frames.append(
            pd.DataFrame(
                {
                    "seed": seed,
                    "example": np.arange(n),
                    "label": labels.astype(np.int64),
                    "is_noisy": data.is_noisy,
                    "presentations": p["presentations"],
                    "forgetting_events": p["forgetting_events"],
                    "never_learned": p["never_learned"],
                    "forgetting": p["forgetting"],
                    "first_learned_epoch": pd.array(
                        [st / epoch if st >= 0 else None for st in first_step[s]], dtype="Float64"
                    ),
                    "aum": p["aum"],
                    **{k: v[s] for k, v in dmap.items()},
                    "el2n": early_el2n[s].cpu().double().numpy(),
                    "grand": early_grand[s].cpu().double().numpy(),
                    "early_step": early,
                    "vog": pd.array(np.where(np.isnan(normalized[s]), None, normalized[s]), dtype="Float64"),
                    "vog_unnormalized": pd.array(np.where(np.isnan(raw[s]), None, raw[s]), dtype="Float64"),
                    "vog_checkpoints": len(vog_steps),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


# ----------------------------------------------------------------------------- subset trainings


def heldout_frame(spec: dict, data: NoisyDataset, run_dir, settings: dict | None = None, device="cpu") -> pd.DataFrame:
    """What every seed's model makes of every training example at the end of training, and whether the seed
    trained on it: the records Feldman & Zhang's code saves per model (its subset and its correctness), from
    which held-out memorization and the C-score are estimated across seeds and runs (memorization.stats).
    (settings and device: the metric signature; unused.)"""
    plan = completed_schedule(spec, len(data.y_train), run_dir)
    ev = read_npz(eval_path(run_dir, plan.total_steps), ["correct", "p_label"])
    correct, p_label = ev["correct"], ev["p_label"]
    mask, n = plan.subset_mask(spec["seeds"]), len(data.y_train)
    return pd.DataFrame(
        {
            "seed": np.repeat(spec["seeds"], n),
            "example": np.tile(np.arange(n), len(spec["seeds"])),
            "label": np.tile(data.y_train.astype(np.int64), len(spec["seeds"])),
            "is_noisy": np.tile(data.is_noisy, len(spec["seeds"])),
            "subset_fraction": plan.subset_fraction,
            "in_subset": mask.reshape(-1),
            "correct": correct.reshape(-1),
            "p_label": p_label.reshape(-1).astype(np.float64),
        }
    )
