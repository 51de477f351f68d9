"""Results a colleague can trust: each config's results in a folder of their own, tables that say which run is
which (a typed column per setting, a description and unit per column), readers that refuse to mix
experiments silently, and checkpoints kept as the tables need them."""

import json
import re
import shutil
import subprocess
import sys

import pandas as pd
import pyarrow.parquet as pq
import pytest

from memorization.engine.memory import run_disk_bytes
from memorization.pipeline.plan import DiskPlan
from memorization.results.tables import read_provenance

from .conftest import ROOT, TINY, copy_of, dry_run_jobs, snakemake, write_config

# A second config beside TINY: the same experiment name, other runs (width 12, not 16), and a sweep of
# settings that are not identity columns.
OTHER = {
    "defaults": TINY["defaults"],
    "experiments": {
        "narrow": {**TINY["experiments"]["difficulty"], "spec": {"train_size": 64, "epochs": 2, "width": 12}},
        "widths": TINY["experiments"]["widths"],  # the same runs as TINY's: shared, not trained again
        "lr_sweep": {
            "spec": {"train_size": 64, "epochs": 2},
            "grid": {"lr": [0.01, 0.1], "depth": [1, 2]},
            "seeds": 2,
            "noise_draws": "per_seed",
        },
    },
}


@pytest.fixture(scope="module")
def both(tiny_done, tmp_path_factory):
    """TINY (config.yaml) run, its figures and scorecard read, then OTHER (other.yaml) in the same folder."""
    workdir = copy_of(tiny_done, tmp_path_factory, "two-configs")
    first = {p.relative_to(workdir): p.read_bytes() for p in drawn(workdir / "results/config")}
    other = write_config(workdir, OTHER, "other.yaml")
    planned = dry_run_jobs(workdir, other)
    snakemake(workdir, config=other)
    return workdir, first, planned


def drawn(folder):
    return sorted([*folder.glob("figures/*"), *folder.glob("scorecard.*"), folder / "findings.html"])


def test_two_configs_keep_their_own_results_and_switching_back_plans_nothing(both):
    workdir, first, _ = both
    assert {p.name for p in (workdir / "results/other/tables").iterdir()} == {"narrow", "widths", "lr_sweep"}
    assert "source: other.yaml" in (workdir / "results/other/config.yaml").read_text()
    assert {p.relative_to(workdir): p.read_bytes() for p in drawn(workdir / "results/config")} == first
    assert [rule for rule, _ in dry_run_jobs(workdir, workdir / "config.yaml")] == []
    assert "Nothing to be done" in snakemake(workdir).output
    assert {p.relative_to(workdir): p.read_bytes() for p in drawn(workdir / "results/config")} == first


def test_a_run_is_shared_by_content_between_configs(both):
    """A run of one config is the other's too when their specs agree: trained once."""
    workdir, _, planned = both
    from memorization.config import load_config

    tiny = load_config(files=[workdir / "config.yaml"], workdir=workdir)
    other = load_config(files=[workdir / "other.yaml"], workdir=workdir)
    trained = {re.search(r"results/runs/(\w+)/", out).group(1) for rule, out in planned if rule == "train"}
    shared = set(tiny.runs) & set(other.runs)
    assert shared == {s.run_id for s in other.experiments["widths"]} and trained == set(other.runs) - shared


def test_every_setting_that_sets_runs_apart_is_a_typed_described_column(both):
    workdir, *_ = both
    path = workdir / "results/other/tables/lr_sweep/training.parquet"
    frame = pd.read_parquet(path)
    assert {"lr", "depth", "noise_seed"} <= set(frame.columns)  # the grid's keys, and the noise draw per seed
    assert str(frame["lr"].dtype) == "Float64" and str(frame["depth"].dtype) == "Int64"
    final = frame.sort_values("step").groupby(["run_id", "seed"]).tail(1)
    assert final.groupby(["lr", "depth"]).size().tolist() == [2, 2, 2, 2]  # runs told apart by named columns
    schema = pq.read_schema(path)
    assert schema.field("val_acc").metadata == {
        b"description": b"accuracy on the clean validation split (NaN for identity labels)",
        b"unit": b"fraction",
    }
    assert schema.field("lr").metadata[b"description"].startswith(b"experiment setting: SGD learning rate")
    assert json.loads(read_provenance(path)["memorization.settings"]) == ["noise_seed", "depth", "lr"]


def test_a_run_shared_by_two_experiments_counts_once_whether_or_not_each_names_its_settings(both, tmp_path):
    """An experiment that does not vary a setting has no column of it, so a shared run's rows differ there
    between the two experiments' tables: read together, each run's settings are filled from its other rows,
    and the figures count its rows once."""
    from memorization.report.stats import distinct
    from memorization.results.tables import frames_by_table

    workdir, *_ = both
    frame = pd.read_parquet(workdir / "results/other/tables/lr_sweep/training.parquet")
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    frame.to_parquet(tmp_path / "a/training.parquet")
    frame.drop(columns=["lr"]).assign(experiment="another").to_parquet(tmp_path / "b/training.parquet")
    read = frames_by_table([tmp_path / "a/training.parquet", tmp_path / "b/training.parquet"])["training"]
    assert read["lr"].notna().all() and len(read) == 2 * len(frame)
    once = distinct(read)
    assert len(once) == len(frame) and once.groupby("lr").size().tolist() == frame.groupby("lr").size().tolist()


def test_the_documented_duckdb_query_answers_from_named_columns(both):
    """docs/tables.md's DuckDB example, run as written on a copied table: final validation accuracy by width
    and noise fraction with a GROUP BY on named columns."""
    duckdb = pytest.importorskip("duckdb")
    workdir, *_ = both
    doc = (ROOT / "docs/tables.md").read_text()
    query = re.search(r"```sql\n(.*?)```", doc, flags=re.S).group(1)
    table = "results/config/tables/widths/training.parquet"
    assert "results/config/tables/capacity/training.parquet" in query
    rows = duckdb.sql(query.replace("results/config/tables/capacity/training.parquet", str(workdir / table))).df()
    frame = pd.read_parquet(workdir / table)
    last = frame[frame["step"] == frame.groupby(["run_id", "seed"])["step"].transform("max")]
    expected = last.groupby(["width", "input_noise_fraction"], as_index=False)["val_acc"].mean()
    assert rows[["width", "input_noise_fraction"]].values.tolist() == expected[["width", "input_noise_fraction"]]\
        .values.tolist()  # fmt: skip
    assert rows["final_val_acc"].tolist() == pytest.approx(expected["val_acc"].tolist())


def test_a_table_of_another_experiment_copied_in_is_rebuilt(both, tmp_path_factory):
    workdir = copy_of(both[0], tmp_path_factory, "copied-table")
    ours = workdir / "results/config/tables/difficulty/examples.parquet"
    before = pd.read_parquet(ours)
    shutil.copy(workdir / "results/other/tables/narrow/examples.parquet", ours)
    dry = snakemake(workdir, "-n").output
    assert f"{ours.relative_to(workdir)} holds runs" in dry and "not its experiment's in this config" in dry
    assert "a run will rebuild it" in dry
    snakemake(workdir)
    pd.testing.assert_frame_equal(pd.read_parquet(ours), before)


def test_figures_refuse_to_pool_experiments_that_differ_in_what_they_do_not_compare(both, tmp_path):
    """Two experiments' tables in one folder, widths 16 and 12: Fig. 1 would average them into one line."""
    workdir, *_ = both
    shared = tmp_path / "tables"
    shutil.copytree(workdir / "results/config/tables", shared)
    shutil.copytree(workdir / "results/other/tables/narrow", shared / "narrow")
    proc = subprocess.run(
        [sys.executable, "-m", "memorization", "figures", str(shared), str(tmp_path / "figs")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1  # what could be drawn is drawn; the refusal is said and the exit is not 0
    assert "fig01_difficulty: not drawn: fig01_difficulty would pool experiments difficulty and narrow" in proc.stderr
    assert "which differ in width (16 against 12)" in proc.stderr
    shutil.rmtree(shared / "narrow")
    shutil.copytree(shared / "difficulty", shared / "difficulty_again")  # one experiment's tables twice
    proc = subprocess.run(
        [sys.executable, "-m", "memorization", "figures", str(shared), str(tmp_path / "figs")],
        capture_output=True,
        text=True,
    )
    assert (
        proc.returncode == 1
        and "fig01_difficulty: not drawn: experiment difficulty's examples table is " in proc.stderr
    )
    alone = subprocess.run(
        [sys.executable, "-m", "memorization", "figures", str(workdir / "results/config/tables"), str(tmp_path / "a")],
        capture_output=True,
        text=True,
    )
    assert alone.returncode == 0
    findings = (workdir / "results/config/figures/fig01_difficulty.findings.txt").read_text()
    assert "Drawn from difficulty: 3 runs × 3 seeds; dataset digits, arch mlp, width 16, train_size 64" in findings


def test_a_figure_of_an_analysis_not_loaded_says_so(both, tmp_path):
    workdir, *_ = both
    shared = tmp_path / "tables"
    shutil.copytree(workdir / "results/config/tables", shared)
    table = shared / "widths" / "training.parquet"
    frame, meta = pd.read_parquet(table), read_provenance(table)
    from memorization.results.tables import write_frame

    write_frame(frame, table, {**meta, "memorization.figures": json.dumps(["fig_of_mine"])})
    proc = subprocess.run(
        [sys.executable, "-m", "memorization", "figures", str(shared), str(tmp_path / "figs")],
        capture_output=True,
        text=True,
    )
    assert "fig_of_mine: not drawn:" in proc.stderr and "--analyses FILE" in proc.stderr


def test_checkpoints_are_kept_as_the_tables_need_them(both):
    """TINY's experiments read no checkpoint along the run (training, examples): each run keeps its last
    alone; an explicit `checkpoints:` is kept as written; the disk each run keeps is predicted from its spec."""
    workdir, *_ = both
    from memorization.config import load_config

    config = load_config(files=[workdir / "config.yaml"], workdir=workdir)
    for spec in config.runs.values():
        assert spec.checkpoints == {"unit": "epoch", "at": []}
        run = workdir / "results/runs" / spec.run_id
        assert len(list((run / "checkpoints").glob("*.pt"))) == 1
        kept = sum(p.stat().st_size for d in ("checkpoints", "evals", "presentations") for p in (run / d).iterdir())
        assert run_disk_bytes(spec) == pytest.approx(kept, rel=0.1)
    explicit = json.loads(json.dumps(TINY))
    explicit["experiments"]["widths"]["spec"]["checkpoints"] = {"unit": "epoch", "every": 1}
    from memorization.config import load_config as again

    (spec, *_) = again(explicit).experiments["widths"]
    assert spec.checkpoints == {"unit": "epoch", "every": 1}


def test_a_config_whose_checkpoints_would_not_fit_the_disk_is_refused(tmp_path):
    assert DiskPlan(total=10, to_write=10, free=20).refusal() is None
    assert "would write" in DiskPlan(total=30, to_write=30, free=20).refusal()
    huge = {
        "experiments": {
            "huge": {
                "spec": {
                    "dataset": "digits",
                    "width": 65536,
                    "depth": 64,
                    "checkpoints": {"unit": "epoch", "every": 1},
                    "epochs": 1000,
                },
                "seeds": 100,
            }  # fmt: skip
        }
    }
    dry = snakemake(tmp_path, "-n", config=write_config(tmp_path, huge))  # looked at anywhere, with a warning
    assert "warning: the runs still to train would write" in dry.output
    proc = snakemake(tmp_path, config=tmp_path / "config.yaml", check=False)
    assert proc.returncode != 0 and "invalid configuration: the runs still to train would write" in proc.output
    assert "free some space, keep fewer checkpoints" in proc.output
    assert not (tmp_path / "results").exists()  # refused before any job


def memorization(workdir, *args):
    return subprocess.run([sys.executable, "-m", "memorization", *args], cwd=workdir, capture_output=True, text=True)


def test_the_command_line_finds_the_config_of_the_results_and_the_run_a_person_names(both, tmp_path):
    workdir, *_ = both
    newest = memorization(workdir, "runs")  # no config given: the newest results' record (other.yaml's)
    assert newest.returncode == 0 and "lr_sweep" in newest.stdout and "config other (the newest" in newest.stderr
    ours = memorization(workdir, "runs", "--results", "results/config")  # one config's folder
    assert "lr_sweep" not in ours.stdout and "difficulty" in ours.stdout and "done" in ours.stdout
    named = memorization(workdir, "runs", "--config", "config.yaml")
    assert named.stdout == ours.stdout
    swept = memorization(workdir, "runs", "other.yaml", "--where", "depth=2", "--where", "experiment=lr_sweep",
                         "--sort", "lr")  # fmt: skip
    rows = [line.split() for line in swept.stdout.splitlines()[1:-1]]
    assert [r[0] for r in rows] == ["lr_sweep"] * 4 and "4 done" in swept.stdout
    assert [r[2] for r in rows] == ["—", "—", "lr=0.1", "lr=0.1"]  # lr 0.01 (the default) first, then 0.1
    wrong = memorization(workdir, "runs", "other.yaml", "--where", "widht=8")
    assert wrong.returncode != 0 and "did you mean 'width'?" in wrong.stderr
    from memorization.config import load_config

    config = load_config(files=[workdir / "config.yaml"], workdir=workdir)
    (narrow, *_) = [s for s in config.experiments["widths"] if s.width == 12]
    for name in (narrow.run_id, narrow.run_id[:5], "widths 12", "widths: width=12"):
        shown = memorization(workdir, "show", name, "config.yaml")
        assert shown.returncode == 0 and shown.stdout.startswith(f"run {narrow.run_id}: done"), name
        assert "final metrics per seed" in shown.stdout
    seeds = pd.read_parquet(workdir / "results/runs" / narrow.run_id / "training.parquet")
    last = seeds[seeds["step"] == seeds["step"].max()].sort_values("seed")
    assert f"{last['val_acc'].iloc[1]:.4f}" in shown.stdout.split("final metrics per seed")[1]
    several = memorization(workdir, "show", "widths", "config.yaml")
    assert several.returncode != 0 and "names 2 runs" in several.stderr
    deployed = tmp_path / "deployment"
    (deployed / "config").mkdir(parents=True)
    (deployed / "config" / "config.yaml").write_text((ROOT / "config" / "config.yaml").read_text())
    found = memorization(deployed, "runs")  # a snakedeploy deployment: config/config.yaml
    assert found.returncode == 0 and "difficulty" in found.stdout and "not started" in found.stdout
    nothing = memorization(tmp_path, "runs")
    assert nothing.returncode != 0 and "no config found" in nothing.stderr and "Traceback" not in nothing.stderr
