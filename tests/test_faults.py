"""Faults that lose nothing: damaged resume states, diverging training, changed run files, short tables, and
mistakes caught before any job runs."""

import os
import re
import signal
import subprocess
import time

import numpy as np
import pandas as pd
import pytest
import torch

from memorization import config as S
from memorization.engine.data import build_noisy_dataset
from memorization.engine.sgd import load_state
from memorization.engine.train import train_run
from memorization.pipeline.jobs import experiment_table, run_metadata
from memorization.results.rundir import PUBLISHED, checkpoint_path, end_path, eval_path, unfinished_dir
from memorization.results.tables import write_frame

from .conftest import ROOT, SNAKEMAKE, completed_workdir, dry_run_jobs, snakemake, write_config


def make(**keys):
    spec = S.resolve(
        {"dataset": "digits", "train_size": 96, "width": 16, "epochs": 4, "lr": 0.05, **keys}, seeds=[0, 1]
    )
    return spec, build_noisy_dataset(spec.data)


def interrupted(tmp_path, spec, data, at_step, resume_every_s=0.0):
    """A run killed after `at_step` steps: its files as the training loop leaves them there (the resume state
    written at every evaluation unless resume_every_s says otherwise). Its seeds are one group, so each call
    of the group's step is a step."""
    whole = tmp_path / "whole"
    train_run(spec, data, whole, progress=False)
    part = tmp_path / "part"

    class Stop(Exception):
        pass

    import memorization.engine.train as T

    original = T.seed_group_step
    calls = {"n": 0}

    def counting(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > at_step:
            raise Stop
        return original(*args, **kwargs)

    T.seed_group_step, every = counting, T.RESUME_EVERY_S
    T.RESUME_EVERY_S = resume_every_s
    try:
        with pytest.raises(Stop):
            train_run(spec, data, part, progress=False)
    finally:
        T.seed_group_step, T.RESUME_EVERY_S = original, every
    return whole, part


def test_the_resume_state_is_written_at_most_every_resume_interval_and_a_resume_is_exact_either_way(tmp_path):
    spec, data = make(checkpoints={"unit": "epoch", "every": 2})  # checkpoints at epochs 0, 2, 4; evals every epoch
    whole, part = interrupted(tmp_path, spec, data, at_step=3 * 3 + 1, resume_every_s=3600)  # into epoch 4
    assert not (part / "state.pt").exists()  # epoch 3's evaluation came seconds after epoch 2's checkpoint
    train_run(spec, data, part, progress=False)  # from the checkpoint at epoch 2
    for step in (6, 12):
        a, b = load_state(checkpoint_path(whole, step)), load_state(checkpoint_path(part, step))
        for name in a["params"]:
            torch.testing.assert_close(a["params"][name], b["params"][name], rtol=0, atol=0)


def test_a_damaged_resume_state_falls_back_to_the_last_checkpoint_and_ends_as_an_uninterrupted_run(tmp_path, capfd):
    spec, data = make(checkpoints={"unit": "epoch", "every": 2})  # checkpoints at epochs 0, 2, 4; evals every epoch
    whole, part = interrupted(tmp_path, spec, data, at_step=3 * 3 + 1)  # 3 steps/epoch: into epoch 4
    state = part / "state.pt"
    assert state.exists() and os.stat(state).st_nlink == 1  # a file of its own, never a checkpoint's link
    good = checkpoint_path(unfinished_dir(part), 6).read_bytes()  # training's files stay in unfinished/ until it ends
    assert not (part / "checkpoints").exists()
    state.write_bytes(state.read_bytes()[:100])  # a kill while the disk was full
    train_run(spec, data, part, progress=False)
    assert "state.pt cannot be read" in capfd.readouterr().err
    assert checkpoint_path(part, 6).read_bytes() == good  # the checkpoint was not touched, only moved into place
    assert not unfinished_dir(part).exists()
    for step in (6, 12):
        a, b = load_state(checkpoint_path(whole, step)), load_state(checkpoint_path(part, step))
        for name in a["params"]:
            torch.testing.assert_close(a["params"][name], b["params"][name], rtol=0, atol=0)
    with np.load(eval_path(whole, 12)) as x, np.load(eval_path(part, 12)) as y:
        np.testing.assert_array_equal(x["correct"], y["correct"])


def test_every_state_damaged_means_a_fresh_start_not_a_blocked_run(tmp_path):
    spec, data = make()
    _, part = interrupted(tmp_path, spec, data, at_step=5)
    for path in [part / "state.pt", *unfinished_dir(part).glob("checkpoints/*.pt")]:
        path.write_bytes(b"")
    train_run(spec, data, part, progress=False)
    assert end_path(part).exists() and load_state(checkpoint_path(part, 12))["step"] == 12


def test_a_finished_run_is_not_trained_again_unless_its_code_changed(tmp_path, capfd):
    spec, data = make()
    train_run(spec, data, tmp_path, progress=False, version="v1")
    stamp = checkpoint_path(tmp_path, 12).stat().st_mtime_ns
    train_run(spec, data, tmp_path, progress=False, version="v1")  # e.g. a job Snakemake marked incomplete
    assert "finished training already" in capfd.readouterr().err
    assert checkpoint_path(tmp_path, 12).stat().st_mtime_ns == stamp
    train_run(spec, data, tmp_path, progress=False, version="v2")
    assert checkpoint_path(tmp_path, 12).stat().st_mtime_ns != stamp


def test_a_finished_run_whose_outputs_snakemake_deleted_is_linked_again_not_trained_again(tmp_path, capfd):
    """Was: an interrupted workflow left a finished run marked incomplete; Snakemake deleted the job's output
    folders before running it again, and the run was trained again from step 0."""
    import shutil

    spec, data = make()
    train_run(spec, data, tmp_path, progress=False, version="v1")
    files = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.glob("*/*") if p.parent.name in PUBLISHED}
    progress = (tmp_path / "progress.csv").read_text()
    for sub in PUBLISHED:  # what Snakemake does to a job's outputs before it runs the job again
        shutil.rmtree(tmp_path / sub)
    capfd.readouterr()
    train_run(spec, data, tmp_path, progress=False, version="v1")
    assert "finished training already" in capfd.readouterr().err
    assert {
        p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.glob("*/*") if p.parent.name in PUBLISHED
    } == files
    assert (tmp_path / "progress.csv").read_text() == progress  # not a step was trained
    assert os.stat(checkpoint_path(tmp_path, 12)).st_nlink == 2  # linked to its kept file, not copied
    kept = tmp_path / "trained" / checkpoint_path(tmp_path, 12).relative_to(tmp_path)
    kept.write_bytes(kept.read_bytes()[:-8] + bytes(8))  # a kept file changed: trained again, as --forcerun wants
    train_run(spec, data, tmp_path, progress=False, version="v1")
    assert "is not the file training wrote: training it again" in capfd.readouterr().err
    assert checkpoint_path(tmp_path, 12).read_bytes() == files[checkpoint_path(tmp_path, 12).relative_to(tmp_path)]


def test_one_process_at_a_time_trains_a_run(tmp_path, capfd):
    """Was: an orphaned trainer and the retry of its job wrote one run folder at once (the retry died on a
    missing .tmp, and the run trained again from scratch next time). The second trainer now waits for the
    first, then finds the run finished."""
    import sys

    keys = {"dataset": "digits", "train_size": 96, "width": 16, "epochs": 300, "lr": 0.05}
    spec, data = make(**keys)
    first = subprocess.Popen(
        [sys.executable, "-c", (
            "from memorization import config as S; from memorization.engine.data import build_noisy_dataset; "
            "from memorization.engine.train import train_run; "
            f"spec = S.resolve({keys!r}, seeds=[0, 1]); "
            f"train_run(spec, build_noisy_dataset(spec.data), {str(tmp_path)!r}, progress=False)"
        )],
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""}, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.time() + 120
    while not (tmp_path / "progress.csv").exists():  # the first is training
        assert time.time() < deadline and first.poll() is None, first.communicate()[1]
        time.sleep(0.02)
    train_run(spec, data, tmp_path, progress=False)
    err = capfd.readouterr().err
    assert "is being trained by another process: waiting for it to end" in err
    assert "finished training already" in err
    assert first.wait(60) == 0, first.communicate()[1]
    assert end_path(tmp_path).exists() and not unfinished_dir(tmp_path).exists()


def test_training_that_diverges_stops_with_a_clear_error(tmp_path):
    spec, data = make(lr=1e9, momentum=0.9)
    with pytest.raises(FloatingPointError, match=r"training diverged: the loss of seed\(s\) \[0, 1\] is not finite"):
        train_run(spec, data, tmp_path, progress=False)
    assert eval_path(unfinished_dir(tmp_path), 0).exists()  # what was computed is kept (as the message says)


def test_a_short_or_foreign_run_table_is_refused_when_tables_are_assembled(tmp_path):
    spec = S.resolve({"width": 8}, seeds=[0, 1])
    rows = pd.DataFrame(
        {
            "seed": [0, 0, 1, 1],
            "train_size": 10,
            "step": [0, 5, 0, 5],
            "gini": 0.5,
            "window": 10,
            "stride": 2,
            "norm": "l1",
            "horizon": None,
        }
    )
    run = tmp_path / "abc" / "gini.parquet"
    write_frame(rows, run, run_metadata("abc", spec, rows))
    out = tmp_path / "table.parquet"
    experiment_table("e", "gini", {"abc": spec.as_dict()}, [str(run)], str(out))  # the whole file is accepted
    assert len(pd.read_parquet(out)) == 4
    for frame, meta, message in (
        (rows.iloc[:3], run_metadata("abc", spec, rows), "holds 3 rows, its job wrote 4"),
        (rows.iloc[:3], None, "was not written by the job of run abc"),
        (rows.iloc[:3], run_metadata("abc", spec, rows.iloc[:3]), "the seeds have different rows per step"),
        (rows[rows["seed"] == 0], run_metadata("abc", spec, rows[rows["seed"] == 0]), "expected \\[0, 1\\]"),
    ):
        write_frame(frame, run, meta)
        with pytest.raises(ValueError, match=message):
            experiment_table("e", "gini", {"abc": spec.as_dict()}, [str(run)], str(out))


TINY = {
    "experiments": {
        "e": {
            "spec": {"train_size": 40, "width": 8, "epochs": 2},
            "seeds": 2,
            "grid": {"data": [{}, {"label_noise": "random"}]},
            "tables": ["training", "examples", "filters"],
        }
    }
}


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    return completed_workdir(tmp_path_factory, "faults", TINY)


def test_a_changed_checkpoint_is_noticed_before_anything_runs(done):
    run = next(done.glob("results/runs/*/manifest.json")).parent
    checkpoint = sorted(run.glob("checkpoints/*.pt"))[-1]
    saved = checkpoint.read_bytes()
    try:
        checkpoint.unlink()
        proc = snakemake(done, "-n", check=False)
        assert proc.returncode != 0
        assert f"{checkpoint.relative_to(done)} is missing" in proc.output
        assert f"snakemake --forcerun results/runs/{run.name}/manifest.json" in proc.output
        checkpoint.write_bytes(saved[:-10])
        assert "when training wrote it" in snakemake(done, "-n", check=False).output
    finally:
        checkpoint.write_bytes(saved)
    assert "Nothing to be done" in snakemake(done).output


def test_retraining_a_run_reruns_what_reads_it(done):
    run = next(done.glob("results/runs/*/manifest.json")).parent
    jobs = dry_run_jobs(done, None, "--forcerun", f"results/runs/{run.name}/manifest.json")
    rules = sorted(r for r, _ in jobs)
    assert rules.count("train") == 1 and rules.count("metric") == 2  # examples and filters of that run
    assert all(run.name in o for r, o in jobs if r in ("train", "metric"))


@pytest.mark.parametrize(
    "config, message",
    [
        ({"experiments": {"e": {"spec": {"lr": float("nan")}}}}, "experiments.e.spec.lr: nan is not a finite number"),
        ({"experiments": {"e": {"seeds": 1000000}}}, "1000000 is greater than the maximum of 10000"),
        ({"experiments": {"e": {"spec": {"train_size": 2000}}}}, "train_size 2000 is larger than the digits"),
        ({"device": "cuda", "experiments": {"e": {}}}, "config key device: cuda was asked for, but no CUDA GPU"),
        ({"device": "cuda:3", "experiments": {"e": {}}}, "config key device: cuda:3 was asked for"),
    ],
)
def test_mistakes_stop_the_workflow_before_any_job(tmp_path, config, message):
    write_config(tmp_path, config)
    proc = snakemake(tmp_path, check=False)
    assert proc.returncode != 0 and message in proc.output
    assert not (tmp_path / "results").exists()


def test_a_duplicate_key_in_a_config_file_is_named_with_its_line(tmp_path):
    (tmp_path / "config.yaml").write_text("experiments:\n  e: {seeds: 1}\n  e: {seeds: 2}\n")
    proc = snakemake(tmp_path, "-n", check=False)
    assert proc.returncode != 0
    assert "config.yaml, line 3, column 3: the key 'e' appears twice (first on line 2)" in proc.output
    (tmp_path / "bad.yaml").write_text("experiments:\n  e: {seeds: 1\n")
    # given as `--config base=FILE`, a config is read by the workflow itself: YAML errors name their line
    proc = snakemake(tmp_path, "-n", "--config", "base=bad.yaml", check=False, configfile=False)
    assert proc.returncode != 0 and "bad.yaml, line 3, column 1: not valid YAML" in proc.output
    check = subprocess.run(
        [str(SNAKEMAKE.with_name("python")), "-m", "memorization", "check", "bad.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert check.returncode != 0 and "bad.yaml, line 3, column 1: not valid YAML" in check.stderr


def test_an_error_inside_a_job_is_shown_with_the_default_profile_and_not_retried(tmp_path):
    """profiles/default shows failed jobs' logs: the user sees the job's own message, not just its path."""
    write_config(tmp_path, {"experiments": {"e": {"spec": {"width": 8, "lr": 1e9, "momentum": 0.9, "epochs": 3}}}})
    cmd = [
        str(SNAKEMAKE),
        "-s",
        str(ROOT / "Snakefile"),
        "-d",
        str(tmp_path),
        "--configfile",
        str(tmp_path / "config.yaml"),
        "--workflow-profile",
        str(ROOT / "profiles" / "default"),
        "--cores",
        "1",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert proc.returncode != 0 and "training diverged" in proc.stdout + proc.stderr
    # not retried on this machine (it would fail again; and an interrupt is not a fault): profiles/slurm retries
    assert len(re.findall(r"^(?:local)?rule train:", proc.stdout + proc.stderr, flags=re.M)) == 1


def test_interrupting_snakemake_alone_does_not_retrain_finished_runs(tmp_path):
    """Ctrl-C to Snakemake (not to its jobs): jobs it had not recorded as finished are rerun, and a run that
    had finished training is not trained again (its job rewrites only its tables)."""
    config = {
        "experiments": {
            "e": {
                "spec": {"train_size": 200, "width": 16, "epochs": 30},
                "seeds": 2,
                "grid": {"lr": [0.01, 0.02, 0.03, 0.04]},
            }
        }
    }
    write_config(tmp_path, config)
    cmd = [
        str(SNAKEMAKE),
        "-s",
        str(ROOT / "Snakefile"),
        "-d",
        str(tmp_path),
        "--configfile",
        str(tmp_path / "config.yaml"),
        "--workflow-profile",
        "none",
        "--cores",
        "1",
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # not ignored, whoever runs the tests
    )  # fmt: skip
    deadline = time.time() + 120
    while not list(tmp_path.glob("results/runs/*/end.json")):
        assert time.time() < deadline and proc.poll() is None
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    proc.wait(60)
    finished = {p.parent.name for p in tmp_path.glob("results/runs/*/end.json")}
    snakemake(tmp_path, "--rerun-incomplete")
    for run in finished:
        log = (tmp_path / "results/logs/train" / f"{run}.log").read_text()
        assert log.count("training 2 seed(s)") >= 1 and "resuming" not in log.split("training 2 seed(s)")[-1]
        if log.count("training 2 seed(s)") > 1:  # its job ran again: it did not train again
            assert "finished training already" in log
    assert len(list(tmp_path.glob("results/runs/*/manifest.json"))) == 4


def test_an_interrupt_of_snakemake_alone_stops_its_jobs_and_is_not_retried(tmp_path):
    """`kill -INT <snakemake's pid>`: Snakemake's local executor would wait for its jobs, and a training job
    trained on to its end, unrecorded. Its jobs stop at once (pipeline/interrupt.py), say so in their logs
    without a traceback, are not retried, and the next run resumes the run where it stopped."""
    import psutil

    config = {
        "experiments": {
            "long": {
                "spec": {
                    "train_size": 1000,
                    "width": 32,
                    "epochs": 3000,
                    "lr": 0.01,
                    "label_noise": "random",
                    "checkpoints": {"unit": "epoch", "every": 1},
                },  # fmt: skip
                "seeds": 2,
                "tables": ["training"],
            }
        }
    }
    write_config(tmp_path, config)
    profile = str(ROOT / "profiles" / "default")
    cmd = [str(SNAKEMAKE), "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path), "--configfile",
           str(tmp_path / "config.yaml"), "--workflow-profile", profile, "--cores", "1"]  # fmt: skip
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # not ignored, whoever runs the tests
    )  # fmt: skip
    deadline = time.time() + 180
    progress = None
    while progress is None or len(progress.read_text().splitlines()) < 20:  # training, well under way
        assert time.time() < deadline and proc.poll() is None, proc.communicate()[0][-3000:]
        progress = next(tmp_path.glob("results/runs/*/progress.csv"), None)
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    output = proc.communicate(timeout=120)[0]
    assert proc.returncode != 0
    scripts = str(tmp_path / ".snakemake" / "scripts")
    left = [p.pid for p in psutil.process_iter(["cmdline"]) if scripts in " ".join(p.info["cmdline"] or [])]
    assert not left, f"jobs outlived Snakemake: {left}"
    run_dir = progress.parent
    assert not (run_dir / "end.json").exists()  # stopped, not trained to its end
    assert len(re.findall(r"^(?:local)?rule train:", output, flags=re.M)) == 1, output  # not retried
    log = (tmp_path / "results/logs/train" / f"{run_dir.name}.log").read_text()
    assert "interrupted: the same command goes on from here" in log and "Traceback" not in log

    # the same command again resumes the run (then is interrupted in its turn)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    log_path = tmp_path / "results/logs/train" / f"{run_dir.name}.log"
    while not log_path.exists() or "resuming run" not in log_path.read_text():
        assert time.time() < deadline and proc.poll() is None, proc.communicate()[0][-3000:]
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    output = proc.communicate(timeout=120)[0]
    assert len(re.findall(r"^(?:local)?rule train:", output, flags=re.M)) == 1, output
    resumed = log_path.read_text().split("resuming run")[1].splitlines()[0]
    assert int(resumed.split("from step ")[1].split()[0]) > 0, resumed


def test_the_clean_cache_is_rebuilt_when_the_raw_files_change(tmp_path):
    """MNIST's raw files are inputs of its clean cache: replacing them (e.g. after a damaged download was
    fixed) rebuilds the cache and everything trained on it; a damaged file stops that job, naming it."""
    from .test_data import write_mnist

    write_mnist(tmp_path / "data", n_train=60)
    config = {
        "data_root": str(tmp_path / "data"),
        "experiments": {"m": {"spec": {"dataset": "mnist", "train_size": 20, "width": 8}}},
    }
    write_config(tmp_path, config)
    snakemake(tmp_path)
    assert "Nothing to be done" in snakemake(tmp_path).output
    labels = tmp_path / "data" / "MNIST" / "raw" / "train-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes()[:4] + (53).to_bytes(4, "big") + labels.read_bytes()[8:-7])  # 53 for 60
    rules = sorted(r for r, _ in dry_run_jobs(tmp_path, None))
    assert rules[:2] == ["all", "dataset"] and "train" in rules
    proc = snakemake(tmp_path, "--show-failed-logs", check=False)
    assert proc.returncode != 0 and "60 images but 53 labels" in proc.output
    assert not (tmp_path / "results" / "data" / "clean" / "mnist.npz").exists()  # nothing bad was cached
