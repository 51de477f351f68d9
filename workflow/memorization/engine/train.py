"""The training loop: all seeds of one configuration at once, the data set resident on the device, no
DataLoader; and its resume state on disk. The step itself and evaluation are the SGD core
(memorization.engine.sgd), shared with the differentiable replay of loss sensitivity.

Read top to bottom: `train_run` sets a run up, resumes it from the newest readable state, then steps,
recording an evaluation and a state file where the timeline says, until the end or until every seed fits.
"""

from __future__ import annotations

import bisect
import json
import math
import os
import shutil
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..results.events import RunBoard, board_dir
from ..results.files import read_npz, written
from ..results.rundir import (
    PUBLISHED,
    checkpoint_path,
    end_path,
    eval_path,
    kept_digests,
    presentations_path,
    publish,
    relink_finished,
    run_lock,
    unfinished_dir,
)
from .architecture import Arch, params_per_model
from .data import NoisyDataset
from .memory import GROUP_PARAMS, reuse_freed_memory, seed_groups
from .regularizers import Regularizer
from .sgd import evaluate, initial_state, load_state, seed_group_step, seed_slices
from .timeline import Timeline, learning_rate

if TYPE_CHECKING:
    from ..config import RunSpec

# Between checkpoints the resume state is written at an evaluation at most this often: a kill loses at most
# this much training, and a run of 2 seeds that evaluates every epoch spent 9% of its time writing it at
# every one (60 epochs of the default's regularizer runs, measured).
RESUME_EVERY_S = 10.0


@dataclass(frozen=True)
class Run:
    """What stays fixed while a run trains: its spec, where it writes, its model, timeline and data."""

    spec: RunSpec
    run_dir: Path
    fingerprint: str  # the spec and the code version: a state file of another is never resumed from
    arch: Arch
    timeline: Timeline
    groups: list[slice]
    reg: Regularizer
    pixel_range: float
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    eval_at: frozenset[int]  # sets: looked up at every step, and a paper-scale run has 1000s of evaluations
    checkpoint_at: frozenset[int]
    trained_on: torch.Tensor | None  # (S, N) bool: each seed's training subset; None when every seed has all
    report: bool = True  # a line in the log per evaluation (at most every REPORT_EVERY_S)
    board: RunBoard | None = None  # its TensorBoard event files, where they are written

    @property
    def seeds(self) -> list[int]:
        return list(self.spec.seeds)

    @property
    def unfinished(self) -> Path:
        """Where its checkpoints, evaluations and presentations go until it ends (rundir.publish)."""
        return unfinished_dir(self.run_dir)


@dataclass
class State:
    """What a resumed run continues from: the stacked seeds' parameters, BatchNorm buffers and momentum, the
    step, the loop's running report, (S, 2) sums of (loss, accuracy) over the epoch's batches so far, and the
    epoch's presentations so far, (S, presentations per epoch) correctness and margin (written out at the
    epoch's end)."""

    params: dict
    buffers: dict
    velocity: dict
    step: int
    epoch_sums: torch.Tensor
    epoch_batches: int
    presented_correct: torch.Tensor
    presented_margin: torch.Tensor
    saved_at: float = field(default_factory=time.monotonic)  # when the last state file was written
    reported_at: float = -math.inf  # when the log last got an evaluation's line


# ----------------------------------------------------------------------------- state on disk


def _atomic_save(obj, path: Path) -> None:
    with written(path) as f:
        torch.save(obj, f)


def save_state(run: Run, state: State, path: Path) -> None:
    """A checkpoint or the resume state: tensors and plain values only (loaded with weights_only=True).
    Without momentum the velocity is no state (it stays zero) and is not written: a checkpoint of Fig. 1's
    100 seeds is half the size (sgd.load_state gives it back as zeros)."""
    _atomic_save(
        {
            "spec": run.fingerprint,
            "step": state.step,
            "params": state.params,
            "buffers": state.buffers,
            "velocity": state.velocity if run.spec.momentum else {},
            "epoch_sums": state.epoch_sums,
            "epoch_batches": state.epoch_batches,
            "presented_correct": state.presented_correct,
            "presented_margin": state.presented_margin,
        },
        path,
    )


def resume_state(run_dir: Path, fingerprint: str, device) -> dict | None:
    """The newest state to resume from: `state.pt` or the latest checkpoint, whichever is later among those
    that can be read and were written for this spec and code. A file that cannot be read (a kill while the
    disk was full, say) is reported and passed over: it never blocks the run, at worst training starts over."""

    def readable(path: Path) -> dict | None:
        try:
            state = load_state(path, device)
        except Exception as err:  # any unreadable file is passed over, whatever the reason
            print(
                f"warning: {path} cannot be read ({type(err).__name__}: {err}); resuming from an earlier state",
                file=sys.stderr,
                flush=True,
            )
            return None
        return state if isinstance(state, dict) and state.get("spec") == fingerprint else None

    state_file = run_dir / "state.pt"
    best = readable(state_file) if state_file.exists() else None
    for path in sorted((unfinished_dir(run_dir) / "checkpoints").glob("step_*.pt"), reverse=True):
        if best is not None and int(path.stem.split("_")[1]) <= best["step"]:
            break
        found = readable(path)
        if found is not None:
            return found
    return best


# ----------------------------------------------------------------------------- the loop, in order


def setup(spec: RunSpec, data: NoisyDataset, run_dir: Path, fingerprint: str, device, group_params: int | None) -> Run:
    arch = Arch.from_spec(spec, data.x_train.shape[1:], data.n_classes)
    timeline = Timeline.from_spec(spec, len(data.y_train))
    groups = seed_groups(len(spec.seeds), params_per_model(arch), group_params or GROUP_PARAMS[device.type])
    on = {
        name: torch.as_tensor(getattr(data, name), device=device) for name in ("x_train", "y_train", "x_val", "y_val")
    }
    return Run(
        spec,
        run_dir,
        fingerprint,
        arch,
        timeline,
        groups,
        Regularizer.from_spec(spec),
        data.pixel_range,
        **on,
        eval_at=frozenset(timeline.eval_steps),
        checkpoint_at=frozenset(timeline.checkpoint_steps),
        trained_on=None
        if timeline.subset_fraction == 1.0
        else torch.as_tensor(timeline.subset_mask(spec.seeds), device=device),
    )


def start(run: Run, device) -> State:
    """The newest readable state of this spec and code, or the initialisation."""
    saved = resume_state(run.run_dir, run.fingerprint, device)
    if saved is None:
        params, buffers, velocity = initial_state(run.arch, run.seeds, device)
        S, P = len(run.seeds), run.timeline.presentations_per_epoch()
        return State(
            params,
            buffers,
            velocity,
            0,
            torch.zeros((S, 2), device=device),
            0,
            torch.zeros((S, P), dtype=torch.bool, device=device),
            torch.full((S, P), float("nan"), device=device),
        )
    print(
        f"resuming run {run.run_dir.name} from step {saved['step']} of {run.timeline.total_steps}",
        file=sys.stderr,
        flush=True,
    )
    return State(**{k: saved[k] for k in State.__dataclass_fields__ if k not in ("saved_at", "reported_at")})


def next_record(run: Run, step: int) -> int:
    """The first step after `step` at which `record` writes something: the end of an epoch, an evaluation, a
    checkpoint or the last step. Training runs from one to the next (`train_until`)."""
    timeline = run.timeline
    spe = timeline.steps_per_epoch
    points = [(step // spe + 1) * spe, timeline.total_steps]
    for steps in (timeline.eval_steps, timeline.checkpoint_steps):
        later = bisect.bisect_right(steps, step)
        if later < len(steps):
            points.append(steps[later])
    return min(points)


def train_until(run: Run, state: State, stop: int) -> None:
    """Steps state.step .. stop − 1 of every seed on its batches, in place, with the loop's running report of
    the epoch and the batches' presentations. They lie in one epoch (an epoch's end is a record point).

    Each group of seeds (run.groups) takes all of these steps before the next group takes its first. Why: the
    seeds are independent, and a group sized to stay in cache (memory.GROUP_PARAMS) keeps its weights there
    from one step to the next, where stepping all seeds at each step would stream every seed's weights from
    memory at every step (100 seeds of the digits MLP: 34 MB against a 32 MB L3). Each seed's arithmetic is
    that of any other order, to the bit."""
    timeline = run.timeline
    spe, B = timeline.steps_per_epoch, timeline.batch_size
    batches = list(timeline.steps(run.seeds, state.step, stop, run.x_train.device))
    lr, seeds = learning_rate(run.spec, batches[0][1]), run.seeds
    if state.step % spe == 0:  # a new epoch: the loop's running report starts over
        state.epoch_sums, state.epoch_batches = torch.zeros_like(state.epoch_sums), 0
    for g in run.groups:
        params, buffers, velocity = (seed_slices(d, g) for d in (state.params, state.buffers, state.velocity))
        correct, margin, sums = state.presented_correct[g], state.presented_margin[g], state.epoch_sums[g]
        for t, _, batch in batches:
            rows, place = batch[g], slice((t % spe) * B, (t % spe) * B + batch.shape[1])
            sums += seed_group_step(
                run.arch, params, buffers, velocity, run.x_train[rows], run.y_train[rows], lr=lr,
                momentum=run.spec.momentum, loss=run.spec.loss, reg=run.reg, seeds=seeds[g], step=t,
                pixel_range=run.pixel_range, presented=(correct[:, place], margin[:, place]),
            )  # fmt: skip
    state.epoch_batches += len(batches)
    state.step = stop


def record(run: Run, state: State, final: bool = False) -> None:
    """At an evaluation step: evaluate every seed on both splits and write the evaluation file; at a
    checkpoint (or the end), the checkpoint, which is then the resume state; else at an evaluation, the
    resume state, when the last was written RESUME_EVERY_S ago or more. Before either, at the end of an epoch
    (or of training, within one), the epoch's presentations."""
    spe = run.timeline.steps_per_epoch
    if state.step > 0 and (state.step % spe == 0 or state.step == run.timeline.total_steps or final):
        write_presentations(run, state)
    if state.step in run.eval_at:
        write_evaluation(run, state)
    if state.step in run.checkpoint_at or final:
        save_state(run, state, checkpoint_path(run.unfinished, state.step))
        (run.run_dir / "state.pt").unlink(missing_ok=True)
        state.saved_at = time.monotonic()
    elif state.step in run.eval_at and time.monotonic() - state.saved_at >= RESUME_EVERY_S:
        save_state(run, state, run.run_dir / "state.pt")
        state.saved_at = time.monotonic()


def write_presentations(run: Run, state: State) -> None:
    """The presentations of the epoch that the last step belongs to, as many as it has had: the example of
    each is the epoch's order (Timeline.epoch_order), so it is not stored."""
    spe, epoch = run.timeline.steps_per_epoch, (state.step - 1) // run.timeline.steps_per_epoch
    filled = min((state.step - epoch * spe) * run.timeline.batch_size, state.presented_correct.shape[1])
    path = presentations_path(run.unfinished, epoch)
    with written(path) as f:
        np.savez(
            f,
            correct=state.presented_correct[:, :filled].cpu().numpy(),
            margin=state.presented_margin[:, :filled].cpu().numpy(),
        )


def write_evaluation(run: Run, state: State) -> None:
    loss = run.spec.loss
    tr_loss, tr_correct, tr_p_label = evaluate(run.arch, state.params, state.buffers, run.x_train, run.y_train, loss)
    # the training loss and accuracy are each seed's on what it trains on; correct and p_label cover every
    # training example, the held-out ones of a subset training too
    if run.trained_on is None:
        train_loss, train_acc = tr_loss.mean(1), tr_correct.float().mean(1)
    else:
        on = run.trained_on
        train_loss, train_acc = (tr_loss * on).sum(1) / on.sum(1), (tr_correct & on).sum(1) / on.sum(1)
    check_finite(run, state, train_loss)
    va_loss, va_correct, _ = evaluate(run.arch, state.params, state.buffers, run.x_val, run.y_val, loss)
    if state.epoch_batches:
        batches = (state.epoch_sums / state.epoch_batches).cpu().numpy()
    else:
        batches = np.full((len(run.seeds), 2), np.nan)
    arrays = {
        "batch_loss": batches[:, 0],
        "batch_acc": batches[:, 1],
        "train_loss": train_loss.cpu().numpy(),
        "train_acc": train_acc.cpu().numpy(),
        "val_loss": va_loss.mean(1).cpu().numpy(),
        "val_acc": va_correct.float().mean(1).cpu().numpy(),
        "correct": tr_correct.cpu().numpy(),
        "p_label": tr_p_label.cpu().numpy(),
    }
    path = eval_path(run.unfinished, state.step)
    with written(path) as f:
        np.savez(f, **arrays)
    report_progress(run, state, arrays)


PROGRESS_COLUMNS = (
    "step", "total_steps", "epoch", "seeds", "train_loss", "train_loss_std", "train_acc", "train_acc_std",
    "val_acc", "val_acc_std", "time",
)  # fmt: skip
REPORT_EVERY_S = 2.0  # the log gets an evaluation's line at most this often (and always the last one)


def report_progress(run: Run, state: State, values: dict[str, np.ndarray]) -> None:
    """An evaluation's row in the run's progress.csv, which can be read while it trains (`memorization runs`),
    and its line in the job's log: mean and spread over the seeds of the training loss and accuracy (each
    seed's on what it trains on) and the validation accuracy; all its values in the event files, if any."""
    train_loss, train_acc, val_acc = values["train_loss"], values["train_acc"], values["val_acc"]

    def spread(values):
        values = np.asarray(values, dtype=np.float64)
        return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan"), float(np.nanstd(values))

    (tl, tl_s), (ta, ta_s), (va, va_s) = spread(train_loss), spread(train_acc), spread(val_acc)
    spe, total = run.timeline.steps_per_epoch, run.timeline.total_steps
    if run.board is not None:
        run.board.evaluation(state.step, values, learning_rate(run.spec, state.step // spe), last=state.step == total)
    row = (state.step, total, state.step / spe, len(run.seeds), tl, tl_s, ta, ta_s, va, va_s, f"{time.time():.1f}")
    path = run.run_dir / "progress.csv"
    new = not path.exists()
    with path.open("a") as f:
        if new:
            f.write(",".join(PROGRESS_COLUMNS) + "\n")
        f.write(",".join(f"{v:.6g}" if isinstance(v, float) else str(v) for v in row) + "\n")
    now = time.monotonic()
    if run.report and (now - state.reported_at >= REPORT_EVERY_S or state.step == total):
        state.reported_at = now
        print(
            f"epoch {state.step / spe:g}/{total / spe:g} step {state.step}/{total}: train loss {tl:.4f} ± {tl_s:.4f}, "
            f"train acc {ta:.4f} ± {ta_s:.4f}, val acc {va:.4f} ± {va_s:.4f} ({len(run.seeds)} seeds)",
            file=sys.stderr,
            flush=True,
        )


def check_finite(run: Run, state: State, eval_loss: torch.Tensor) -> None:
    """Stop with a clear error once a seed's loss is no longer finite: NaN does not recover."""
    bad = ~(torch.isfinite(eval_loss) & torch.isfinite(state.epoch_sums[:, 0]))
    if bad.any():
        which = [run.seeds[i] for i in torch.nonzero(bad).flatten().tolist()]
        epoch = state.step // run.timeline.steps_per_epoch
        raise FloatingPointError(
            f"training diverged: the loss of seed(s) {which} is not finite at step {state.step} (epoch {epoch}) "
            f"of run {run.run_dir.name}. Lower the learning rate (lr {learning_rate(run.spec, epoch):g}) or the "
            f"regulariser's strength; the evaluations up to here are kept in {run.unfinished / 'evals'}"
        )


def fits(run: Run, step: int) -> bool:
    """Whether training stops here because every seed classifies its training set perfectly (read back
    from the evaluation file, so a resumed run decides as the uninterrupted one did)."""
    if not run.spec.stop_when_fit or step not in run.eval_at:
        return False
    return bool((read_npz(eval_path(run.unfinished, step), ["train_acc"])["train_acc"] == 1.0).all())


def finish(run: Run, state: State) -> None:
    """The end of training: always a checkpoint (a run that stopped at fit has its evaluation already), then
    end.json, which says the run is done (where it ended, and the hash of each file it wrote), then its files
    kept in trained/ and linked into the output folders (rundir.publish)."""
    if state.step < run.timeline.total_steps and state.step not in run.checkpoint_at:
        record(run, state, final=True)
        epoch = state.step / run.timeline.steps_per_epoch
        print(f"every seed fits its training set at epoch {epoch:g}: stopped", file=sys.stderr)
    end = {"step": state.step, "fingerprint": run.fingerprint, "files": kept_digests(run.run_dir)}
    with written(end_path(run.run_dir)) as f:
        f.write((json.dumps(end, sort_keys=True) + "\n").encode())
    publish(run.run_dir)
    (run.run_dir / "state.pt").unlink(missing_ok=True)


def train_run(
    spec: RunSpec,
    data: NoisyDataset,
    run_dir: str | os.PathLike,
    *,
    device: torch.device | str = "cpu",
    progress: bool = True,
    group_params: int | None = None,
    version: str = "",
    board: dict | None = None,
) -> None:
    """Train every seed of `spec` on `data`; write evaluations, checkpoints and presentations under
    `run_dir/unfinished/` and, when training ends, keep them in `run_dir/trained/` and link them into the
    output folders (rundir.publish). One process at a time trains a run (rundir.run_lock).

    Progress: spec.json is written first; every evaluation appends a row to `run_dir/progress.csv`, with
    `progress` prints a line (seed means and spreads of loss and accuracy) to stderr, the job's log, and with
    `board` (the run's hparams, results.events.hparams_of) goes to its TensorBoard event files.

    Resumable: the state is saved at every evaluation (`state.pt`) and checkpoint; a later call with the same
    arguments continues from the newest readable one (`resume_state`). A finished run (`end.json` written by
    the same spec and code `version`, its kept files unchanged) is not trained again: a job interrupted after
    training, or run again by Snakemake after it deleted the job's outputs, links them again from trained/.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with run_lock(run_dir):
        _train_run(spec, data, run_dir, torch.device(device), progress, group_params, version, board)


def _train_run(spec, data, run_dir: Path, device, progress: bool, group_params, version: str, board) -> None:
    reuse_freed_memory()  # as a metric job does at its start (jobs.metric): the same allocator for both
    (run_dir / "spec.json").write_text(json.dumps(spec.as_dict(), indent=2, sort_keys=True) + "\n")  # which run this is
    fingerprint = json.dumps({"spec": spec.as_dict(), "code": version}, sort_keys=True)
    if relink_finished(run_dir, fingerprint):
        print(f"run {run_dir.name} finished training already (end.json): not trained again", file=sys.stderr)
        return
    run = replace(setup(spec, data, run_dir, fingerprint, device, group_params), report=progress)
    for sub in PUBLISHED:
        (run.unfinished / sub).mkdir(parents=True, exist_ok=True)
    end_path(run_dir).unlink(missing_ok=True)  # a rerun recomputes the end
    state = start(run, device)
    if state.step == 0:  # a run trained from the start reports afresh
        (run_dir / "progress.csv").unlink(missing_ok=True)
        shutil.rmtree(board_dir(run_dir), ignore_errors=True)
    if board is not None:  # resumed: what the killed process wrote after its resume point is hidden
        run = replace(run, board=RunBoard(run_dir, run.seeds, purge_step=state.step + 1, hparams=board))
    with run.board or nullcontext():  # the event files closed, whatever ends the training
        if state.step == 0:
            record(run, state)
        while state.step < run.timeline.total_steps and not fits(run, state.step):
            train_until(run, state, next_record(run, state.step))
            record(run, state)
        finish(run, state)
