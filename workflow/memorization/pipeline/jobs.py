"""One function per workflow job, with plain arguments: the rules' scripts only unpack `snakemake` and
call these, so every stage can also be run and tested without Snakemake.

Each function imports what it needs itself: a job is a fresh process, and importing torch and matplotlib
into every table or data-set job would cost seconds per job (measured: 4.2 s to import everything; 0.2 s
for the data-set module, 2.5 s of it is torch). A job's code fingerprint follows what its function calls
(memorization.pipeline.fingerprint).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import RunSpec

CODE = "memorization.code"  # the metadata key under which a metric or summary table records its code's fingerprint


class _Log:
    """A job's log file that, once a write to it fails (a full disk), writes to the stderr Snakemake shows
    instead, saying why once: a job's output and exception are never lost with its log. Unbuffered, so a
    failed write loses no text held in a buffer (a job writes lines, not megabytes)."""

    encoding = "utf-8"

    def __init__(self, path: str, log, shown):
        self.path, self.log, self.shown = path, log, shown

    def write(self, text: str) -> int:
        if self.log is not None:
            try:
                self.log.write(text.encode())
                return len(text)
            except OSError as err:
                self.log = None
                self.shown.write(f"(this job's log {self.path} could not be written: {err}; its output follows here)\n")
        return self.shown.write(text)

    def flush(self) -> None:
        self.shown.flush()

    def isatty(self) -> bool:
        return False


def log_to(path: str, mode: str = "w") -> None:
    """A job's stdout and stderr into its log (line by line), and its exception there before it exits. Where
    the log cannot be written (a full disk), the output and the exception go to the stderr Snakemake shows,
    with why: a job never fails silently with an empty log."""
    import traceback

    from ..results.files import Refusal

    shown = sys.__stderr__
    try:
        log = open(path, mode + "b", buffering=0)  # noqa: SIM115 (open for the rest of the job)
    except OSError as err:
        print(f"this job's log {path} cannot be written ({err}): its output follows here", file=shown, flush=True)
        return
    sys.stdout = sys.stderr = _Log(path, log, shown)

    def report(kind, value, tb):
        if isinstance(value, Refusal):  # its message says it all: not buried under a traceback
            sys.stderr.write(f"{kind.__name__}: {value}\n")
        elif isinstance(value, KeyboardInterrupt):  # a user's, not a fault
            sys.stderr.write("interrupted: the same command goes on from here (a run from its last resume point)\n")
        else:
            sys.stderr.write("".join(traceback.format_exception(kind, value, tb)))
        sys.stderr.flush()

    sys.excepthook = report


def clean_dataset(name: str, out: str, *, data_root: str, download: bool, analyses=()) -> None:
    from ..catalog import load_analyses
    from ..engine.data import save_clean

    load_analyses(analyses)
    save_clean(name, out, root=data_root, download=download)
    print(f"{out}: the clean {name} splits")


def make_dataset(spec: dict, clean: str, out: str, analyses=()) -> None:
    """One noisy data set from its data keys (a DataSpec's values)."""
    from ..catalog import load_analyses
    from ..config import DataSpec
    from ..engine.data import build_noisy_dataset, load_clean_file

    load_analyses(analyses)
    splits = load_clean_file(clean)
    data = build_noisy_dataset(DataSpec(**spec), clean=splits)
    data.save(out)
    print(
        f"{out}: {len(data.y_train)} training examples ({int(data.is_noisy.sum())} noisy), "
        f"{len(data.y_val)} validation, {data.n_classes} classes"
    )


def train(
    spec: dict,
    dataset: str,
    *,
    manifest_out: str,
    training_out: str,
    convergence_out: str,
    device: str = "auto",
    tf32: bool = False,
    lock_dir: str | None = None,
    threads: int = 1,
    version: str = "",
    label: str = "",
    tensorboard: bool = True,
) -> None:
    """Train one run (its spec's values, RunSpec.as_dict); `label` names it to a person (its experiments and
    the values that set it apart, config.Config.labels), in the log's first line and its TensorBoard hparams
    (with `tensorboard`, event files written as it trains: results.events)."""
    import torch

    from ..config import RunSpec
    from ..engine import devices
    from ..engine.data import NoisyDataset
    from ..engine.train import train_run
    from ..measures.metrics import run_tables
    from ..results.events import hparams_of
    from ..results.rundir import read_end, write_manifest
    from ..results.tables import write_frame
    from .fingerprint import explain

    board = hparams_of(spec, label) if tensorboard else None
    spec = RunSpec.from_dict(spec)
    torch.set_num_threads(max(1, threads))
    run_dir = Path(manifest_out).parent
    data = NoisyDataset.load(dataset)
    with devices.lease(device, lock_dir, tf32=tf32) as dev:
        print(f"training {len(spec.seeds)} seed(s) of run {run_dir.name} on {dev}: {label}", flush=True)
        trained = trained_with(run_dir)
        if trained not in (None, version):
            print(f"trained before with other code: {explain(run_dir.parents[1] / 'code', trained, version)}")
        train_run(spec, data, run_dir, device=dev, version=version, board=board)
    training, convergence = run_tables(spec, data, run_dir)
    write_frame(training, training_out, run_metadata(run_dir.name, spec, training))
    write_frame(convergence, convergence_out, run_metadata(run_dir.name, spec, convergence))
    write_manifest(run_dir, read_end(run_dir)["files"])


def trained_with(run_dir: Path) -> str | None:
    """The fingerprint of the code a run was last trained with (end.json), None if it has not finished."""
    from ..results.rundir import read_end

    try:
        return json.loads(read_end(run_dir)["fingerprint"])["code"]
    except (ValueError, KeyError, TypeError):
        return None


def run_metadata(run_id: str, spec: RunSpec, frame) -> dict[str, str]:
    """What a per-run table file says of itself, checked when experiment tables are assembled: which run
    wrote it, for which seeds, and how many rows it holds (a short or foreign file is refused there)."""
    return {
        "memorization.run_id": run_id,
        "memorization.seeds": json.dumps(list(spec.seeds)),
        "memorization.rows": str(len(frame)),
    }


def metric(
    table: str,
    spec: dict,
    dataset: str,
    run_dir: str,
    settings: dict,
    out: str,
    *,
    device: str = "auto",
    lock_dir: str | None = None,
    threads: int = 1,
    analyses=(),
    version: str = "",
    tensorboard: bool = True,
) -> None:
    """One metric table (catalog stage "metric") of one finished run, all seeds and checkpoints; `version`, the
    fingerprint of its code, is recorded in the table; with `tensorboard`, its headline values go to the
    run's event files (`to_board`)."""
    import torch

    from .. import catalog
    from ..config import RunSpec
    from ..engine import devices
    from ..engine.data import NoisyDataset
    from ..engine.memory import reuse_freed_memory
    from ..results.rundir import RUN_FILES, run_files_digest
    from ..results.tables import write_frame

    spec = RunSpec.from_dict(spec)
    torch.set_num_threads(max(1, threads))
    reuse_freed_memory()
    catalog.load_analyses(analyses)
    check_run_files(run_dir, spec)
    entry = catalog.table(table)
    compute = catalog.implementation(entry.compute)
    data = NoisyDataset.load(dataset)
    # the lease's default precision: metrics are computed in IEEE float32, whatever the config's tf32 says
    with devices.lease(device if entry.device else "cpu", lock_dir) as dev:
        print(f"{table} of run {Path(run_dir).name} ({len(spec.seeds)} seeds) on {dev}: {settings}", flush=True)
        frame = compute(spec, data, run_dir, settings, device=dev)
    if "train_size" not in frame:
        frame.insert(1, "train_size", len(data.y_train))
    # the run's files it was computed from: the workflow recomputes a table whose files have changed since
    meta = {**run_metadata(Path(run_dir).name, spec, frame), RUN_FILES: run_files_digest(run_dir), CODE: version}
    write_frame(frame, out, meta)
    if tensorboard:
        to_board(entry, frame, run_dir)


def to_board(entry, frame, run_dir) -> None:
    """A table's headline values (catalog.Table.board) in its run's TensorBoard event files, in a file of this
    job's own beside the training job's."""
    from .. import catalog
    from ..results.events import RunBoard
    from ..results.rundir import read_end

    if entry.board is None:
        return
    values = catalog.implementation(entry.board)(frame)
    with RunBoard(run_dir, sorted(frame["seed"].unique().tolist())) as board:
        board.values(values, last_step=read_end(run_dir)["step"])


def check_run_files(run_dir, spec: RunSpec) -> None:
    """Before a metric job reads a run: every file of its manifest is there with the content training wrote
    (each hashed: the job reads them all anyway), and every checkpoint says it was trained for this run's
    spec. Else an error naming the files and the command that retrains the run."""
    from ..engine.sgd import load_state
    from ..results.files import DamagedFile
    from ..results.rundir import changed_files

    run_dir = Path(run_dir)
    problems = changed_files(run_dir, verify=True)
    for path in sorted((run_dir / "checkpoints").glob("step_*.pt")):
        state = load_state(path)
        if json.loads(state.get("spec") or "{}").get("spec") != spec.as_dict():
            problems.append(f"{path} was trained for another spec than run {run_dir.name}'s")
        elif state.get("step") != int(path.stem.split("_")[1]):
            problems.append(f"{path} holds the state of step {state.get('step')}, not of the step its name says")
    if problems:
        raise DamagedFile(
            f"run {run_dir.name} changed since training: {'; '.join(problems[:5])}"
            f"{f' (and {len(problems) - 5} more)' if len(problems) > 5 else ''}. Put the files back, or train it "
            f"again: snakemake --forcerun {run_dir / 'manifest.json'}"
        )


def summary(name: str, source: str, out: str, analyses=(), version: str = "", run_dir: str | None = None) -> None:
    """A summary table (catalog stage "summary", e.g. gini) of one run, from the run's source table; `version`,
    the fingerprint of its code, is recorded in the table; with `run_dir`, its headline values go to the run's
    TensorBoard event files (`to_board`)."""
    from .. import catalog
    from ..results.files import read_parquet
    from ..results.tables import read_provenance, write_frame

    catalog.load_analyses(analyses)
    frame = catalog.implementation(catalog.table(name).compute)(read_parquet(source))
    meta = read_provenance(source)
    write_frame(frame, out, {**meta, "memorization.rows": str(len(frame)), CODE: version})
    if run_dir is not None:
        to_board(catalog.table(name), frame, run_dir)


def experiment_table(
    experiment: str,
    table: str,
    run_specs: dict[str, dict],
    inputs: list[str],
    out: str,
    figures: list[str] = (),
    analyses=(),
    settings: list[str] = (),
) -> None:
    """One contract table of one experiment: its runs' rows (run id -> the spec's values) with the identity
    columns and the experiment's setting columns (`settings`: the spec keys that set its runs apart), and
    provenance."""
    import pandas as pd

    from .. import catalog
    from ..catalog import load_analyses
    from ..config import RunSpec
    from ..results import tables

    load_analyses(analyses)
    specs = {rid: RunSpec.from_dict(values) for rid, values in run_specs.items()}
    columns = tables.setting_columns(settings, [c.name for c in catalog.table(table).columns])
    frames = []
    for path in inputs:
        rid = Path(path).parent.name
        frame = tables.read_run_table(path, rid, specs[rid].seeds)
        frame = tables.with_identity(frame, tables.identity_values(experiment, specs[rid]))
        frames.append(frame.assign(**tables.setting_values(specs[rid], columns)))
    frame = pd.concat(frames, ignore_index=True)
    tables.write_table(frame, out, table=table, specs=run_specs, figures=figures, settings=columns)


def figure(name: str, inputs: list[str], out_png: str, findings_out: str, *, stamp: bool = False, analyses=()) -> None:
    """One figure from its tables, and what this run shows (the findings) as text beside it."""
    from .. import papers  # noqa: F401 (registers the built-in figures)
    from ..catalog import load_analyses
    from ..report import figures
    from ..results.tables import frames_by_table

    load_analyses(analyses)
    frames = frames_by_table(inputs)
    findings = figures.draw(name, frames, Path(out_png).with_suffix(""), stamp=stamp)
    Path(findings_out).write_text("".join(f"{line}\n" for line in findings))


def findings_page(
    figure_names: list[str], findings: list[str], images: list[str], out: str, card: str | None = None, analyses=()
) -> None:
    """One HTML page of every figure, its findings and its claims, with the scorecard (its parquet) at the top."""
    from .. import papers  # noqa: F401 (registers the built-in figures: their captions)
    from ..catalog import load_analyses
    from ..report.figures import findings_html
    from ..results.files import read_parquet, written

    load_analyses(analyses)
    lines = {n: Path(f).read_text().splitlines() for n, f in zip(figure_names, findings)}
    page = findings_html(lines, dict(zip(figure_names, images)), read_parquet(card) if card else None)
    with written(out) as f:
        f.write(page.encode())


def scorecard(inputs: dict[str, list[str]], parquet: str, md: str, page: str, analyses=()) -> None:
    """The reproduction scorecard from the tables of each figure that has claims (figure -> table paths)."""
    from .. import papers  # noqa: F401 (registers the built-in figures and claims)
    from ..catalog import load_analyses
    from ..report import scorecard as card
    from ..results.tables import frames_by_table

    load_analyses(analyses)
    tables = {fig: frames_by_table(paths) for fig, paths in inputs.items()}
    result = card.scorecard(tables)
    card.write(result, parquet, md, page)
    print(card.markdown(result))
