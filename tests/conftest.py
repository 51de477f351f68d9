"""Shared helpers: tiny configs and a Snakemake driver (the CLI in a subprocess: Snakemake's Python API is internal)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")

# A CPU-small configuration: two experiments so that a change to one can be seen to leave the other alone.
TINY = {
    "defaults": {"dataset": "digits", "arch": "mlp", "width": 16, "depth": 2, "lr": 0.05, "batch_size": 32},
    "experiments": {
        "difficulty": {
            "spec": {"train_size": 64, "epochs": 2},
            "grid": {"data": [{}, {"input_noise": "gaussian"}, {"label_noise": "random"}]},
            "seeds": 3,
            "figures": ["fig01_difficulty"],
        },
        "widths": {
            "spec": {"train_size": 100, "epochs": 2},
            "grid": {"width": [8, 12]},
            "seeds": 2,
            "tables": ["training"],
        },
    },
}


def write_config(directory: Path, config: dict, name: str = "config.yaml") -> Path:
    path = Path(directory) / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def snakemake(
    workdir: Path,
    *args,
    config: Path | None = None,
    configfile: bool = True,
    check=True,
    snakefile: Path = ROOT / "Snakefile",
    **kwargs,
):
    """Run the workflow in `workdir` with a config file (workdir/config.yaml unless `config` is given; none at
    all with configfile=False); return the CompletedProcess (stdout+stderr merged)."""
    cmd = [str(SNAKEMAKE), "-s", str(snakefile), "-d", str(workdir), "--workflow-profile", "none", "--cores", "2"]
    if configfile:
        cmd += ["--configfile", str(config or Path(workdir) / "config.yaml")]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # tests stay on the CPU even on a GPU machine
    proc = subprocess.run([*cmd, *args], cwd=workdir, capture_output=True, text=True, env=env, **kwargs)
    proc.output = proc.stdout + proc.stderr
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(map(str, args))} failed:\n{proc.output[-5000:]}")
    return proc


def dry_run_jobs(workdir, config, *args, **kwargs):
    """(rule, outputs) of every job a dry run would execute."""
    out = snakemake(workdir, "-n", *args, config=config, **kwargs).output
    jobs = []
    for block in re.split(r"^\[.*\d{4}\]$", out, flags=re.M):
        rule = re.search(r"^(?:local)?rule (\w+):", block, flags=re.M)
        if rule:
            output = re.search(r"^\s+output: (.*)$", block, flags=re.M)
            jobs.append((rule.group(1), output.group(1) if output else ""))
    return jobs


def completed_workdir(tmp_path_factory, name: str, config: dict) -> Path:
    """A fresh working directory in which `config` has been run to completion."""
    workdir = tmp_path_factory.mktemp(name)
    write_config(workdir, config)
    snakemake(workdir)
    return workdir


@pytest.fixture
def tiny_config():
    import copy

    return copy.deepcopy(TINY)
