"""The DAG end to end on tiny configs in temporary directories, driven through Snakemake's CLI."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from memorization.catalog import table as registered
from memorization.results.tables import read_provenance

from .conftest import ROOT, SNAKEMAKE, TINY, bare_python, copy_of, dry_run_jobs, snakemake, write_config


@pytest.fixture(scope="module")
def done(tiny_done, tmp_path_factory):
    """The tiny config, run to completion (a copy of the shared run: tests here run it again)."""
    return copy_of(tiny_done, tmp_path_factory, "tiny")


def snapshot(directory):
    return {p: p.stat().st_mtime_ns for p in directory.rglob("*") if p.is_file() and ".snakemake" not in p.parts}


def test_tables_follow_the_contract(done):
    training = pd.read_parquet(done / "results/config/tables/difficulty/training.parquet")
    examples = pd.read_parquet(done / "results/config/tables/difficulty/examples.parquet")
    for table, frame in (("training", training), ("examples", examples)):
        assert list(frame.columns) == list(registered(table).dtypes())
        assert frame["experiment"].eq("difficulty").all() and frame["arch"].eq("mlp").all()
        assert frame["train_size"].eq(64).all() and frame["width"].eq(16).all()
    # 3 data conditions x 3 seeds x 3 evaluations (initialisation, epoch 1, epoch 2); 64 examples each
    assert len(training) == 27 and len(examples) == 27 * 64
    assert training["run_id"].nunique() == 3 and sorted(training["seed"].unique()) == [0, 1, 2]
    assert sorted(training["epoch"].unique()) == [0.0, 1.0, 2.0] and sorted(training["step"].unique()) == [0, 2, 4]
    for col in ("train_acc", "val_acc"):
        assert training[col].between(0, 1).all()
    assert (training[["train_loss", "val_loss"]] > 0).all().all()
    conditions = examples.groupby("run_id").agg(
        noisy=("is_noisy", "mean"), inp=("input_noise", "first"), lab=("label_noise", "first")
    )
    assert sorted(map(tuple, conditions[["inp", "lab"]].values)) == [
        ("gaussian", "none"),
        ("none", "none"),
        ("none", "random"),
    ]
    assert conditions.loc[conditions["inp"] == "gaussian", "noisy"].eq(1.0).all()
    assert conditions.loc[(conditions["inp"] == "none") & (conditions["lab"] == "none"), "noisy"].eq(0.0).all()
    assert examples["correct"].dtype == bool
    prov = read_provenance(done / "results/config/tables/difficulty/training.parquet")
    specs = json.loads(prov["memorization.run_specs"])
    assert set(specs) == set(training["run_id"]) and "torch" in prov["memorization.library_versions"]
    widths = pd.read_parquet(done / "results/config/tables/widths/training.parquet")
    assert sorted(widths["width"].unique()) == [8, 12] and len(widths) == 2 * 2 * 3
    assert not (done / "results/config/tables/widths/examples.parquet").exists()  # not asked for
    # nor are the per-example rows of its runs made (only experiments that ask for them pay for them)
    assert not any((done / "results/runs" / run / "examples.parquet").exists() for run in widths["run_id"].unique())


def test_fig01_is_drawn(done):
    for ext in ("png", "pdf"):
        assert (done / f"results/config/figures/fig01_difficulty.{ext}").stat().st_size > 10_000


def test_fig01_findings_and_claims_read_the_same_ratio(done):
    """The spread of real data's difficulty, recomputed here from the examples table, is what the figure's
    findings and its claim both show."""
    from memorization.report.stats import difficulty_spread, distinct, first_epoch_difficulty

    examples = distinct(pd.read_parquet(done / "results/config/tables/difficulty/examples.parquet"))
    ratio = difficulty_spread(first_epoch_difficulty(examples)).set_index("condition")["ratio"]
    findings = (done / "results/config/figures/fig01_difficulty.findings.txt").read_text()
    assert (
        f"real data {ratio['real data']:.1f}" in findings and f"random inputs {ratio['random inputs']:.1f}" in findings
    )
    value = (
        pd.read_parquet(done / "results/config/scorecard.parquet").set_index("claim").loc["fig01_real_uneven", "value"]
    )
    assert value == f"real {ratio['real data']:.2f}, random inputs {ratio['random inputs']:.2f}"


def test_a_second_run_has_nothing_to_do(done):
    assert "Nothing to be done" in snakemake(done).output


def test_changing_one_experiment_reruns_only_that_experiment(done, tmp_path):
    changed = json.loads(json.dumps(TINY))
    changed["experiments"]["widths"]["spec"]["lr"] = 0.02
    jobs = dry_run_jobs(done, write_config(tmp_path, changed))
    rules = sorted(rule for rule, _ in jobs)
    assert rules == ["all", "config_record", "experiment_table", "train", "train"]  # the record: the new config
    assert all("difficulty" not in output for _, output in jobs)
    assert [o for r, o in jobs if r == "experiment_table"] == ["results/config/tables/widths/training.parquet"]


def test_a_bad_config_stops_before_anything_is_written_or_lost(done, tmp_path):
    before = snapshot(done)
    bad = json.loads(json.dumps(TINY))
    bad["experiments"]["widths"]["grid"]["width"] = [8, -3]
    proc = snakemake(done, config=write_config(tmp_path, bad), check=False)
    assert proc.returncode != 0
    assert "config key experiments.widths.grid.width[1].width: -3 is less than the minimum of 1" in proc.output
    assert snapshot(done) == before


def test_missing_mnist_files_are_named_before_any_job_and_nothing_is_lost(done, tmp_path):
    """Data files that are not there are an error of the config, named with where they were looked for and
    the fixes, before any job runs (a dry run too), not a traceback of the first job that reads them."""
    before = snapshot(done)
    config = json.loads(json.dumps(TINY))
    config["data_root"] = str(tmp_path / "data")
    config["experiments"]["mnist"] = {"spec": {"dataset": "mnist", "train_size": 100}}
    for args in (["-n"], []):
        proc = snakemake(done, *args, config=write_config(tmp_path, config), check=False)
        assert proc.returncode != 0 and "rule " not in proc.output  # no job planned or run
        assert f"experiments.mnist: data set mnist is not under data_root ({tmp_path / 'data'})" in proc.output
        assert "train-images-idx3-ubyte" in proc.output and "set `download: true`" in proc.output
    assert {p: t for p, t in snapshot(done).items() if p in before} == before  # nothing computed was lost
    out = subprocess.run([sys.executable, "-m", "memorization", "check", str(tmp_path / "config.yaml")],
                         cwd=done, capture_output=True, text=True)  # fmt: skip
    assert out.returncode == 1 and "data set mnist is not under data_root" in out.stderr


def test_a_killed_training_job_resumes_and_gives_the_uninterrupted_tables(tmp_path):
    config = {
        "experiments": {
            "long": {
                "spec": {
                    "dataset": "digits",
                    "train_size": 500,
                    "width": 32,
                    "epochs": 60,
                    "lr": 0.05,
                    "checkpoints": {"unit": "epoch", "every": 1},
                },
                "seeds": 2,
                "tables": ["training", "examples"],
            }
        }
    }
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    for d in (killed, whole):
        d.mkdir()
        write_config(d, config)
    cmd = [
        str(SNAKEMAKE),
        "-s",
        str(ROOT / "Snakefile"),
        "-d",
        str(killed),
        "--workflow-profile",
        "none",
        "--cores",
        "2",
    ]
    proc = subprocess.Popen(
        cmd,
        cwd=killed,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
    )
    deadline = time.time() + 120
    while not list(killed.glob("results/runs/*/unfinished/evals/step_000000160.npz")):  # 10 of 60 epochs done
        assert time.time() < deadline and proc.poll() is None, "training never got going"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    # killed mid-run: checkpoints but no end, no tables (the checkpoints are the resume states here), kept in
    # unfinished/, where Snakemake (which deletes a job's outputs before it reruns it) leaves them
    assert len(list(killed.glob("results/runs/*/unfinished/checkpoints/*.pt"))) > 1
    assert not list(killed.glob("results/runs/*/end.json")) and not list(
        killed.glob("results/config/tables/*/*.parquet")
    )
    snakemake(killed, "--unlock")  # Snakemake's own directory lock survives a SIGKILL
    snakemake(killed)
    log = next(killed.glob("results/logs/train/*.log")).read_text()
    step = int(re.search(r"resuming run \w+ from step (\d+) of 960", log).group(1))
    assert 160 <= step < 960
    snakemake(whole)
    for table in ("training", "examples"):
        pd.testing.assert_frame_equal(
            pd.read_parquet(killed / f"results/config/tables/long/{table}.parquet"),
            pd.read_parquet(whole / f"results/config/tables/long/{table}.parquet"),
        )


def test_the_workflow_runs_as_a_module_of_another_snakefile(tmp_path):
    """`module m: snakefile: …/Snakefile` + `use rule * from m as m_*`, under an interpreter without the
    package: the default is found from the workflow's own location (not the user's folder)."""
    module = f'module m:\n    snakefile: "{ROOT / "Snakefile"}"\n\nuse rule * from m as m_*\n'
    (tmp_path / "Snakefile").write_text(module)
    python = bare_python(tmp_path / "env")
    dry = snakemake(tmp_path, "-n", configfile=False, snakefile=tmp_path / "Snakefile", python=python).output
    assert "m_train" in dry and "results/config/tables/difficulty/examples.parquet" in dry


def deployable_copy(folder: Path) -> Path:
    """The files of this repository a deployment uses (not its environment or results)."""
    import shutil

    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", ".snakemake")  # (the package has a results/)
    folder.mkdir()
    for name in ("Snakefile", "config.yaml", "LICENSE"):
        shutil.copy2(ROOT / name, folder / name)
    for name in ("config", "rules", "workflow", "envs", "profiles"):
        shutil.copytree(ROOT / name, folder / name, ignore=ignore)
    return folder


def test_snakedeploy_of_a_local_clone_dry_runs_the_default_and_runs_a_config_of_its_own(tmp_path):
    """As the Snakemake workflow catalog says workflows are used: `snakedeploy deploy-workflow` writes
    config/config.yaml (ours, which runs the default) and a Snakefile that uses this one as a module. Run under
    an interpreter without the package and without PYTHONPATH (as in a conda env built from envs/), so every
    job imports the library from the workflow's own folder."""
    source = deployable_copy(tmp_path / "memorization")
    dest = tmp_path / "deployed"
    snakedeploy = Path(sys.executable).with_name("snakedeploy")
    subprocess.run([snakedeploy, "deploy-workflow", source, dest, "--branch", "main"], check=True, capture_output=True)
    assert (dest / "config/config.yaml").read_text() == (source / "config/config.yaml").read_text()
    snakefile = dest / "workflow" / "Snakefile"
    # for a local source snakedeploy names the Snakefile relative to the deployment: point it at the source
    text = snakefile.read_text()
    assert 'configfile: "config/config.yaml"' in text and '"Snakefile"' in text
    snakefile.write_text(text.replace('"Snakefile"', f'"{source / "Snakefile"}"'))
    python = bare_python(tmp_path / "env")
    dry = snakemake(dest, "-n", configfile=False, snakefile=snakefile, python=python).output
    assert "rule train:" in dry and "results/config/tables/difficulty/examples.parquet" in dry
    tiny = {"spec": {"dataset": "digits", "train_size": 96, "width": 16, "epochs": 2}, "seeds": 2}
    write_config(dest / "config", {"experiments": {"tiny": tiny}})
    snakemake(dest, configfile=False, snakefile=snakefile, python=python)
    run = next((dest / "results/runs").iterdir())
    assert (dest / "results/config/tables/tiny/training.parquet").is_file()
    folders = ["checkpoints", "evals", "presentations", "tensorboard", "trained"]
    assert sorted(p.name for p in run.iterdir() if p.is_dir()) == folders
