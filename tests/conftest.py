"""Shared helpers: tiny configs and a Snakemake driver (the CLI in a subprocess: Snakemake's Python API is internal)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from memorization import papers  # noqa: F401 (the built-in figures and claims, registered as the workflow does)

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


def bare_python(folder: Path) -> Path:
    """An interpreter with this environment's packages but not the `memorization` package, and no
    PYTHONPATH: what a job has in a conda env built from envs/ (Snakemake clears PYTHONPATH there). A venv
    whose one .pth file lists this environment's site-packages: the editable install's own .pth file there is
    not read (Python reads .pth files only in its site directories)."""
    import site
    import venv

    venv.create(folder, with_pip=False, symlinks=True)
    python = Path(folder) / "bin" / "python"
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    Path(purelib, "environment.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    found = subprocess.run([python, "-c", "import memorization"], capture_output=True, env=_without_pythonpath())
    assert found.returncode != 0, "the bare interpreter must not find the package by itself"
    return python


def _without_pythonpath() -> dict:
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def snakemake(
    workdir: Path,
    *args,
    config: Path | None = None,
    configfile: bool = True,
    check=True,
    snakefile: Path = ROOT / "Snakefile",
    python: Path | None = None,
    **kwargs,
):
    """Run the workflow in `workdir` with a config file (workdir/config.yaml unless `config` is given; none at
    all with configfile=False); return the CompletedProcess (stdout+stderr merged). With `python`, Snakemake
    runs under that interpreter (its jobs too), without PYTHONPATH."""
    launcher = [str(python), "-m", "snakemake"] if python else [str(SNAKEMAKE)]
    cmd = [*launcher, "-s", str(snakefile), "-d", str(workdir), "--workflow-profile", "none", "--cores", "2"]
    if configfile:
        cmd += ["--configfile", str(config or Path(workdir) / "config.yaml")]
    env = {**(_without_pythonpath() if python else os.environ), "CUDA_VISIBLE_DEVICES": ""}  # tests stay on the CPU
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


@pytest.fixture(scope="session")
def tiny_done(tmp_path_factory) -> Path:
    """TINY run to completion, once per test process (the workflow tests of several modules read it); a test
    that changes it works on a copy (`copy_of`)."""
    return completed_workdir(tmp_path_factory, "tiny", TINY)


def copy_of(workdir: Path, tmp_path_factory, name: str) -> Path:
    """A copy of a completed working directory, modification times kept: as complete as the original."""
    import shutil

    return Path(shutil.copytree(workdir, tmp_path_factory.mktemp(name) / "work", symlinks=True))


# Under pytest-xdist (`make test` runs two workers on this two-core machine) each worker computes on one
# thread: two workers of two OpenMP threads each on two cores made torch's work up to ten times slower.
if os.environ.get("PYTEST_XDIST_WORKER"):
    import torch

    torch.set_num_threads(1)


@pytest.fixture
def tiny_config():
    import copy

    return copy.deepcopy(TINY)
