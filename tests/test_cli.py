"""The `memorization` command: the runs of a config with their status read from real run folders in each
state, one run shown, every subcommand behind it; and the live progress a training run writes."""

import json
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd

from memorization import config as S
from memorization.engine.train import train_run
from memorization.pipeline import cli

from .test_faults import interrupted, make


def test_a_runs_status_in_each_state(tmp_path):
    spec, data = make()
    assert cli.run_status(tmp_path / "nothing") == "not started"
    whole, part = interrupted(tmp_path, spec, data, at_step=7)  # 3 steps an epoch: evaluated at step 6
    status = cli.run_status(part)
    assert status.startswith("training: step 6 of 12, epoch 2, train loss ") and "(mean of 2 seeds)" in status
    assert cli.run_status(whole) == "done"
    log = tmp_path / "train.log"
    log.write_text("training 2 seed(s) of run x on cpu: e\nTraceback (most recent call last):\n  ...\n"
                   "FloatingPointError: training diverged: the loss of seed(s) [0] is not finite\n")  # fmt: skip
    assert cli.run_status(part, log).startswith("failed: FloatingPointError: training diverged")
    log.write_text(log.read_text() + "training 2 seed(s) of run x on cpu: e\nepoch 1/4 step 3/12: ...\n")
    assert cli.run_status(part, log).startswith("training: step 6")  # its retry went on after the error


def test_runs_lists_every_run_with_what_sets_it_apart(tmp_path):
    config = S.load_config(
        {
            "experiments": {
                "widths": {
                    "spec": {
                        "dataset": "digits",
                        "train_size": 96,
                        "epochs": 4,
                        "lr": 0.05,
                        "checkpoints": {"unit": "epoch", "every": 1},
                    },
                    "grid": {"width": [16, 32]},
                    "seeds": 2,
                }
            }
        }
    )
    specs = config.experiments["widths"]
    results = tmp_path / "results"
    _, data = make()
    train_run(specs[0], data, results / "runs" / specs[0].run_id, progress=False)
    rows = cli.runs_table(config, results)
    assert [(r["experiment"], r["differs in"], r["status"]) for r in rows] == [
        ("widths", "width=16", "done"),
        ("widths", "width=32", "not started"),
    ]
    assert cli.format_table(rows).splitlines()[-1] == "1 done, 1 not started"
    shown = cli.show(results, specs[0].run_id)
    assert "width: 16" in shown and "checkpoints at steps: 0, 3, 6, 9, 12" in shown and "evaluations: 5" in shown


def test_training_reports_each_evaluation_in_its_log_and_in_progress_csv(tmp_path, capfd):
    spec, data = make()
    train_run(spec, data, tmp_path)
    err = capfd.readouterr().err
    assert "epoch 4/4 step 12/12: train loss " in err and "val acc " in err and "(2 seeds)" in err
    progress = pd.read_csv(tmp_path / "progress.csv")
    assert progress["step"].tolist() == [0, 3, 6, 9, 12] and (progress["seeds"] == 2).all()
    with np.load(tmp_path / "evals" / "step_000000012.npz") as ev:
        assert progress["train_acc"].iloc[-1] == float(f"{ev['train_acc'].mean():.6g}")


def test_the_command_runs_its_subcommands(tmp_path):
    command = [sys.executable, "-m", "memorization"]
    shutil.copy(cli_root() / "config.yaml", tmp_path)  # away from the results of the checkout's own runs
    out = subprocess.run([*command, "check", "config.yaml"], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0 and out.stdout.startswith("valid: ")
    out = subprocess.run([*command, "claims", "--list"], capture_output=True, text=True)
    assert "fig01_real_uneven" in out.stdout and "pleiss2020_mislabeled_low_aum" in out.stdout
    bad = subprocess.run([*command, "runs", "nope.yaml"], capture_output=True, text=True)
    assert bad.returncode != 0 and "nope.yaml" in bad.stderr


def cli_root():
    from .conftest import ROOT

    return ROOT


def report_categories(page: Path) -> list[str]:
    """A report's categories in the order of its menu (sorted by name)."""
    return sorted(json.loads(re.search(r"var categories = (\{.*?\});\n", page.read_text()).group(1)))


def test_the_report_of_a_partial_run(tiny_done, tmp_path_factory, monkeypatch):
    """`snakemake --report` and `memorization report` report what is there while a figure is missing. The
    scorecard is the report's first category."""
    from .conftest import copy_of, snakemake

    workdir = copy_of(tiny_done, tmp_path_factory, "report")
    snakemake(workdir, "--report", str(workdir / "full.html"))
    assert report_categories(workdir / "full.html") == [
        "1. Reproduction scorecard", "2. What this run shows", "3. Figures"
    ]  # fmt: skip
    (
        workdir / "results" / "config" / "figures" / "fig01_difficulty.png"
    ).unlink()  # as if the figure job had not run yet
    # was: "marked for report but does not exist"
    snakemake(workdir, "--report", str(workdir / "plain.html"))
    assert report_categories(workdir / "plain.html") == ["1. Reproduction scorecard"]
    config = S.load_config(files=[workdir / "config.yaml"])
    out = workdir / "results" / "config"
    assert cli.report_targets(config.figures, out) == [f"{out}/scorecard.html"]
    monkeypatch.chdir(workdir)
    assert cli.report([str(workdir / "config.yaml")], "partial.html", workdir / "results") == 0
    assert report_categories(workdir / "partial.html") == ["1. Reproduction scorecard"]


def test_runs_watch_follows_a_run_from_not_started_to_done(tmp_path):
    """`memorization runs --watch S` redraws the table every S seconds from the run folders alone."""
    import time

    import yaml

    experiment = {"spec": {"dataset": "digits", "train_size": 96, "width": 16, "epochs": 4, "lr": 0.05}, "seeds": 2}
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump({"experiments": {"watched": experiment}}))
    (spec,) = S.load_config(files=[config_file]).experiments["watched"]
    results = tmp_path / "results"
    command = [sys.executable, "-m", "memorization", "runs", str(config_file), "--results", str(results)]
    watcher = subprocess.Popen([*command, "--watch", "0.2"], stdout=subprocess.PIPE, text=True)
    chunks = []
    threading.Thread(target=lambda: chunks.extend(iter(lambda: watcher.stdout.read(1), "")), daemon=True).start()
    try:

        def wait_for(text):
            deadline = time.time() + 60
            while text not in "".join(chunks).rsplit("\033[2J", 1)[-1]:  # in the latest frame
                assert time.time() < deadline and watcher.poll() is None, "".join(chunks)[-2000:]
                time.sleep(0.05)

        wait_for("\n1 not started\n")
        _, data = make()
        train_run(spec, data, results / "runs" / spec.run_id, progress=False)
        wait_for("\n1 done\n")
    finally:
        watcher.kill()
        watcher.wait()
    frames = "".join(chunks).split("\033[2J\033[H")[1:]
    assert len(frames) >= 2 and all(re.match(r"\d\d:\d\d:\d\d \(every 0.2 s\)\n", f) for f in frames)
