"""Nothing wrong goes unnoticed: run files checked by content, every file read failing one way (the file,
what is wrong, the fix), bounded configs. Each test here failed before its fix."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from memorization import config as S
from memorization.results.files import DamagedFile, load_checkpoint, read_npz
from memorization.results.rundir import RUN_FILES, read_manifest, run_files_digest
from memorization.results.tables import read_provenance, write_frame

from .conftest import ROOT, completed_workdir, snakemake

CONFIG = {
    "experiments": {
        "e": {
            "spec": {
                "dataset": "digits",
                "train_size": 40,
                "width": 8,
                "epochs": 2,
                "checkpoints": {"unit": "epoch", "every": 1},
            },
            "seeds": 2,
            "grid": {"data": [{}, {"label_noise": "random"}]},
            "tables": ["training", "examples", "filters"],
            "figures": ["fig01_difficulty"],
        }
    }
}


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    return completed_workdir(tmp_path_factory, "integrity", CONFIG)


def runs(done):
    """The two runs, the one with a filters table (the clean data's) first."""
    found = (p.parent for p in done.glob("results/runs/*/manifest.json"))
    return sorted(found, key=lambda r: not list((done / "results/metrics" / r.name).glob("filters.*.parquet")))


def flipped(data: bytes, n: int = 40) -> bytes:
    """`data` with n bytes in its middle inverted: the same size."""
    middle = len(data) // 2
    return data[:middle] + bytes(b ^ 0xFF for b in data[middle : middle + n]) + data[middle + n :]


def test_a_swapped_checkpoint_or_flipped_bytes_stop_the_workflow_and_a_metric_job(done):
    a, b = runs(done)
    mine, other = (sorted(r.glob("checkpoints/*.pt"))[-1] for r in (a, b))
    saved, stat = mine.read_bytes(), mine.stat()
    assert len(saved) == other.stat().st_size  # the same model: another run's checkpoint of the same size
    (table,) = (done / "results" / "metrics" / a.name).glob("filters.*.parquet")
    before = pd.read_parquet(table)
    try:
        for damage in (lambda: shutil.copyfile(other, mine), lambda: mine.write_bytes(flipped(saved))):
            damage()
            proc = snakemake(done, "-n", check=False)
            assert proc.returncode != 0
            assert f"{mine.relative_to(done)} is not the file training wrote (its content hash differs)" in proc.output
            assert f"snakemake --forcerun results/runs/{a.name}/manifest.json" in proc.output
        # flipped with its modification time put back: the check before the DAG (size and time) lets it
        # through, the metric job (which hashes what it reads) does not
        os.utime(mine, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        proc = snakemake(done, "--forcerun", str(table.relative_to(done)), check=False)
        assert proc.returncode != 0
        log = (done / "results" / "logs" / "metrics" / a.name / table.name.replace(".parquet", ".log")).read_text()
        assert f"run {a.name} changed since training" in log and "content hash differs" in log
        assert "Traceback" not in log and "Traceback" not in proc.output  # the refusal alone, not buried
    finally:
        mine.write_bytes(saved)
        os.utime(mine, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert not table.exists()  # Snakemake removes a failed job's output; nothing downstream was touched
    snakemake(done, "--forcerun", str(table.relative_to(done)))  # the right checkpoint back: as it was
    pd.testing.assert_frame_equal(pd.read_parquet(table), before)


def test_a_later_checkpoint_copied_over_an_earlier_one_is_refused(done):
    """Was: with its manifest entry removed and step 4 copied over step 2, the CSR was recomputed from the
    wrong weights, rc 0. A file the manifest does not list is damage, and a checkpoint's step is its name's."""
    import json

    from memorization.pipeline.jobs import check_run_files

    a = runs(done)[0]
    spec = S.load_config(files=[done / "config.yaml"], workdir=done).runs[a.name]
    first, last = sorted(a.glob("checkpoints/*.pt"))[1], sorted(a.glob("checkpoints/*.pt"))[-1]
    manifest = a / "manifest.json"
    saved, listing = first.read_bytes(), manifest.read_text()
    try:
        shutil.copyfile(last, first)
        files = json.loads(listing)
        del files["files"][str(first.relative_to(a))]
        manifest.write_text(json.dumps(files))
        proc = snakemake(done, "-n", check=False)
        assert proc.returncode != 0 and f"{first.relative_to(done)} is not in the run's manifest" in proc.output
        with pytest.raises(RuntimeError, match=f"{first} holds the state of step"):
            check_run_files(a, spec)
    finally:
        first.write_bytes(saved)
        manifest.write_text(listing)


def test_a_checkpoint_of_another_spec_is_refused_by_the_metric_job(done):
    """A checkpoint whose embedded spec is another run's, with the manifest rewritten to match (as if the
    run's files were swapped wholesale): the metric job compares the spec inside every checkpoint."""
    from memorization.pipeline.jobs import check_run_files

    a, b = runs(done)
    by_id = S.load_config(files=[done / "config.yaml"], workdir=done).runs
    check_run_files(a, by_id[a.name])  # as trained
    with pytest.raises(RuntimeError, match=rf"checkpoints/step_\d+\.pt was trained for another spec than run {a.name}"):
        check_run_files(a, by_id[b.name])


def files_and_times(folder) -> dict:
    """Every file under a folder with its modification time."""
    return {p: p.stat().st_mtime_ns for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_metric_table_computed_from_other_files_is_rebuilt(done):
    a = runs(done)[0]
    (table,) = (done / "results" / "metrics" / a.name).glob("filters.*.parquet")
    frame, meta = pd.read_parquet(table), read_provenance(table)
    assert meta[RUN_FILES] == run_files_digest(a)  # what each metric table records
    write_frame(frame, table, {**meta, RUN_FILES: "0" * 64})  # as if computed from files since replaced
    why = f"{table.relative_to(done)} was computed from other files than run {a.name}'s present ones"
    before = files_and_times(done / "results")
    assert f"{why}: a run will rebuild it" in snakemake(done, "-n").output
    assert files_and_times(done / "results") == before  # a dry run writes nothing, not even a modification time
    experiment_table = done / "results" / "config" / "tables" / "e" / "filters.parquet"
    stamp = experiment_table.stat().st_mtime_ns
    out = snakemake(done).output
    assert f"{why}: rebuilding it" in out and "rule metric:" in out and "rule experiment_table:" in out
    assert read_provenance(table)[RUN_FILES] == run_files_digest(a)
    pd.testing.assert_frame_equal(pd.read_parquet(table), frame)
    assert experiment_table.stat().st_mtime_ns != stamp


def test_a_truncated_or_foreign_table_is_named_by_every_reader_and_rebuilt_by_the_workflow(done, tmp_path):
    copy = tmp_path / "tables"
    shutil.copytree(done / "results" / "config" / "tables", copy)
    damaged = copy / "e" / "examples.parquet"  # the table fig01 reads
    damaged.write_bytes(damaged.read_bytes()[:-100])  # a copy cut short
    shutil.copyfile(copy / "e" / "training.parquet", tmp_path / "training.parquet")
    for problem in ("cannot be read as a Parquet table (truncated or not Parquet)", "lacks the columns"):
        for command in (["claims", str(copy)], ["figures", str(copy), str(tmp_path / "figures")]):
            proc = subprocess.run([sys.executable, "-m", "memorization", *command], capture_output=True, text=True)
            assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr
            assert f"{damaged} " in proc.stderr and problem in proc.stderr
        shutil.copyfile(tmp_path / "training.parquet", damaged)  # a valid table of the workflow, but another one
    table = done / "results" / "config" / "tables" / "e" / "training.parquet"
    before = pd.read_parquet(table)
    table.write_bytes(table.read_bytes()[:-100])
    out = snakemake(done).output
    assert (
        "results/config/tables/e/training.parquet cannot be read as a Parquet table" in out and "rebuilding it" in out
    )
    pd.testing.assert_frame_equal(pd.read_parquet(table), before)


# ----------------------------------------------------------------------------- each kind of file, one way


class NotATensor:
    pass


def test_a_checkpoint_that_is_not_plain_tensors_is_named_with_the_fix_never_with_torchs_advice(tmp_path):
    folder = tmp_path / "results" / "runs" / "0123456789ab" / "checkpoints"
    folder.mkdir(parents=True)
    cases = {
        "object.pt": lambda p: torch.save({"params": NotATensor()}, p),  # pickled code: never loaded
        "cut.pt": lambda p: p.write_bytes(_a_checkpoint()[:200]),
        "empty.pt": lambda p: p.write_bytes(b""),
        "foreign.pt": lambda p: torch.save({"weights": torch.zeros(2)}, p),
    }
    for name, write in cases.items():
        write(folder / name)
        with pytest.raises(DamagedFile) as err:
            load_checkpoint(folder / name)
        message = str(err.value)
        assert message.startswith(str(folder / name)) and "weights_only" not in message
        assert "snakemake --forcerun results/runs/0123456789ab/manifest.json" in message


def _a_checkpoint() -> bytes:
    import io

    buffer = io.BytesIO()
    torch.save({"params": {"w": torch.ones(100)}}, buffer)
    return buffer.getvalue()


def test_an_array_file_with_an_object_array_or_cut_short_is_named(tmp_path):
    path = tmp_path / "results" / "runs" / "0123456789ab" / "evals" / "step_000000001.npz"
    path.parent.mkdir(parents=True)
    np.savez(path, correct=np.array([{"a": 1}], dtype=object))
    with pytest.raises(DamagedFile, match=r"holds an object array .*never loaded.*snakemake --forcerun"):
        read_npz(path)
    np.savez(path, correct=np.ones(1000))
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(DamagedFile, match=rf"{path} cannot be read as an array file"):
        read_npz(path)


def test_a_damaged_manifest_is_named_with_the_fix(tmp_path):
    (tmp_path / "manifest.json").write_text('{"files": {"checkpoints/step_000000001.pt": ')
    with pytest.raises(ValueError, match=r"manifest.json cannot be read as a run's manifest.*--forcerun"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text('{"files": {"checkpoints/step_000000001.pt": 123}}')  # before hashes
    assert read_manifest(tmp_path) == {"checkpoints/step_000000001.pt": {"size": 123}}


# ----------------------------------------------------------------------------- bounded configs


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """YAML of a few hundred bytes whose aliases expand to width**levels values."""
    inner = "&a0 [" + ", ".join(["lol"] * width) + "]"
    for level in range(1, levels):
        inner = f"&a{level} [{inner}, " + ", ".join([f"*a{level - 1}"] * (width - 1)) + "]"
    return inner


@pytest.mark.parametrize("where", ["description", "top"])
def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path, where):
    bomb = alias_bomb()
    if where == "top":  # an unknown top-level key
        text = f"lots: {bomb}\nexperiments: {{e: {{spec: {{dataset: digits}}}}}}\n"
    else:
        text = f"experiments:\n  e:\n    spec: {{dataset: digits}}\n    description: {bomb}\n"
    (tmp_path / "c.yaml").write_text(text)
    # was: 107 s of CPU, or MemoryError at 2.3 GB; the message is the size check's, made before anything walks it
    with pytest.raises(S.ConfigError, match=r"c.yaml: more than 100,000 values once its YAML aliases are expanded"):
        S.load_config(files=[tmp_path / "c.yaml"], workdir=tmp_path)


@pytest.mark.parametrize("name, problem", [("a" * 300, "300 characters"), ("evil\n", "'evil\\n'"), ("x" * 65, "65")])
def test_an_experiment_name_is_a_whole_name_short_enough_for_a_folder(name, problem):
    with pytest.raises(S.ConfigError) as err:
        S.load_config({"experiments": {name: {"spec": {"dataset": "digits"}}}})
    message = str(err.value)
    assert problem in message and "at most 64 characters" in message and len(message) < 300
    S.load_config({"experiments": {"x" * 64: {"spec": {"dataset": "digits"}}}})  # the longest accepted


def test_an_error_message_quotes_a_huge_value_in_short(tmp_path):
    with pytest.raises(S.ConfigError) as err:
        S.load_config({"experiments": {"e": {"description": list(range(50_000))}}})
    assert len(str(err.value)) < 400


# What the fuzz test (tests/test_fuzz.py) found: each failed before its fix.


def test_a_grid_of_too_many_runs_is_refused_before_it_is_walked():
    # was: 60,000 × 60,000 grid points walked one by one until the kernel killed the process for memory; a grid
    # of 9 million runs in 6,000 values (a config's values are bounded too) is refused before one is resolved
    grid = {"train_size": list(range(1, 3_001)), "lr": [0.01 * (i + 1) for i in range(3_000)]}
    with pytest.raises(S.ConfigError, match=r"config key experiments.e.grid: 3000 × 3000 grid points × 1 runs"):
        S.load_config({"experiments": {"e": {"spec": {"dataset": "digits"}, "grid": grid}}})
    small = {"width": list(range(1, 101)), "lr": [0.01, 0.02]}  # 200 runs: planned as before
    config = S.load_config({"experiments": {"e": {"spec": {"dataset": "digits"}, "grid": small}}})
    assert len(config.experiments["e"]) == 200


def test_a_key_of_odd_characters_is_quoted_so_the_message_stays_one_line():
    with pytest.raises(S.ConfigError) as err:  # was: "config key experiments.e.grid.a<CR>b…": a line cut in two
        S.load_config({"experiments": {"e": {"spec": {"dataset": "digits"}, "grid": {"a\rb\u2028c": None}}}})
    assert len(str(err.value).splitlines()) == 1
    assert str(err.value).startswith("config key experiments.e.grid['a\\rb\\u2028c']: None is not of type 'array'")


def test_experiments_that_are_not_a_mapping_are_refused_naming_the_key(tmp_path):
    (tmp_path / "c.yaml").write_text("experiments: [[x], [x]]\n")  # was: AttributeError: 'list' … 'items'
    with pytest.raises(S.ConfigError, match=r"^config key experiments: .* is not of type 'object'"):
        S.load_config(files=[tmp_path / "c.yaml"], workdir=tmp_path)


@pytest.mark.parametrize("analyses", [True, [None], [""], ["config.yaml"], "x.py"])
def test_analyses_that_are_not_python_files_are_refused_before_any_is_imported(tmp_path, analyses):
    # was: TypeError ('bool' object is not iterable; … not NoneType), FileNotFoundError of the folder, and
    # config.yaml imported as Python
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({"analyses": analyses, "experiments": {"e": {}}}))
    with pytest.raises(S.ConfigError, match=r"^config key analyses"):
        S.load_config(files=[tmp_path / "c.yaml"], workdir=tmp_path)


# ----------------------------------------------------------------------------- a full disk


@pytest.fixture
def small_disk(tmp_path):
    """A 16 MB tmpfs mounted for the test (as root only; skipped where it cannot be mounted)."""
    folder = tmp_path / "disk"
    folder.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a tmpfs needs root")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", folder], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", folder], check=False)


def test_on_a_full_disk_jobs_fail_with_their_message_and_a_rerun_after_freeing_space_gives_the_clean_tables(
    done, small_disk
):
    from .conftest import write_config

    workdir = small_disk / "work"
    workdir.mkdir()
    write_config(workdir, CONFIG)
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * (shutil.disk_usage(small_disk).free - 300_000))  # 300 KB left: too little
    proc = snakemake(workdir, "--show-failed-logs", check=False)  # as the default profile does
    assert proc.returncode != 0 and "exit status 120" not in proc.output  # was: status 120 and an empty log
    # the failed write's temporary file is removed, so the job's exception fits in its log, which Snakemake shows
    logs = [log.read_text() for log in workdir.glob("results/logs/**/*.log")]
    assert any("OSError: [Errno 28] No space left on device" in log for log in logs)
    assert "OSError: [Errno 28] No space left on device" in proc.output
    assert not list(workdir.rglob("*.tmp")), "a failed write leaves no temporary file"
    filler.unlink()
    snakemake(workdir)
    for clean in sorted((done / "results" / "config" / "tables" / "e").glob("*.parquet")):
        rerun = workdir / "results" / "config" / "tables" / "e" / clean.name
        pd.testing.assert_frame_equal(pd.read_parquet(rerun), pd.read_parquet(clean))


def test_a_job_whose_log_cannot_be_written_shows_its_exception_and_why_on_snakemakes_stderr():
    # /dev/full opens but every write fails with ENOSPC, as a log on a full disk does
    job = (
        "from memorization.pipeline.jobs import log_to; log_to('/dev/full'); print('training…'); "
        "raise ValueError('the cause')"
    )
    proc = subprocess.run([sys.executable, "-c", job], capture_output=True, text=True, cwd=ROOT / "workflow")
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.startswith("(this job's log /dev/full could not be written: [Errno 28] No space left on device")
    assert "training…\n" in proc.stderr and "ValueError: the cause" in proc.stderr


# ----------------------------------------------------------------------------- values the machine cannot take


@pytest.mark.parametrize(
    "experiment, key, message",
    [
        ({"spec": {"checkpoints": {"unit": "step", "log_count": 1_000_000_000}}}, "checkpoints.log_count", "10000"),
        ({"spec": {"steps": 100_000_000, "checkpoints": {"unit": "step", "every": 1}}}, "checkpoints",
         "100,000,001 checkpoints in 100,000,000 steps, more than a run may write (10,000)"),
        ({"spec": {"steps": 100_000_000, "checkpoints": {"unit": "step", "log_count": 10}}}, "log_every",
         "evaluations in 100,000,000 steps"),
        ({"seeds": [10**24]}, "experiments.e.seeds", None),
        ({"spec": {"depth": 100_000}}, "experiments.e.spec.depth", "<= 64"),
        ({"spec": {"arch": "cnn", "cnn_channels": 10**9}}, "experiments.e.spec.cnn_channels", "<= 4096"),
    ],
)  # fmt: skip
def test_counts_that_size_memory_or_time_are_bounded_before_any_job(experiment, key, message):
    """Was: these passed `memorization check` and `snakemake -n`, then died of MemoryError or OverflowError."""
    with pytest.raises(S.ConfigError) as err:
        S.load_config({"experiments": {"e": {"spec": {"dataset": "digits", "width": 8}, **experiment}}})
    assert key in str(err.value) and (message is None or message in str(err.value)), str(err.value)


def test_a_metric_window_beyond_the_run_is_bounded_and_stops_at_step_0():
    """Was: a window of 10^12 passed the schema and the window's loop went on past step 0 for ever."""
    from memorization.measures.sensitivity import window_steps

    with pytest.raises(S.ConfigError, match="config key metrics.sensitivity.window: .* is greater than the maximum"):
        S.load_config({"metrics": {"sensitivity": {"window": 10**12}}, "experiments": {"e": {}}})
    assert window_steps(7, 100_000_000, 2) == [1, 3, 5]


@pytest.mark.parametrize("value", ["not json", "5", "[" * 5000 + "]" * 5000, '{"fig01_difficulty": 1}', "[[1]]"])
def test_table_metadata_that_is_not_what_it_should_be_is_named(done, tmp_path, value):
    """Was: metadata under memorization.* that was not JSON, a number or nested deeply made `memorization
    figures` print a traceback."""
    copy = tmp_path / "tables"
    shutil.copytree(done / "results" / "config" / "tables", copy)
    table = copy / "e" / "examples.parquet"
    write_frame(pd.read_parquet(table), table, {**read_provenance(table), "memorization.figures": value})
    for command in (["figures", str(copy), str(tmp_path / "figures")], ["claims", str(copy)]):
        proc = subprocess.run([sys.executable, "-m", "memorization", *command], capture_output=True, text=True)
        assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr
        assert f"{table} has metadata memorization.figures that is not a list" in proc.stderr
