"""`memorization board`: TensorBoard on the runs of a config, live while Snakemake trains them.

Each run writes its own event files (results.events, results/runs/<run>/tensorboard/); this starts the
`tensorboard` program on those of the config's runs, each named as `memorization runs` names it, on
127.0.0.1 and a free port. TensorBoard rereads the folders every few seconds, so runs that start or go on
training after it started appear as they write."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..results.events import board_dir

if TYPE_CHECKING:
    from ..config import Config

RELOAD_S = 5  # how often TensorBoard rereads the event files (its default)


def run_names(config: Config, results: Path) -> dict[str, Path]:
    """{TensorBoard run name: the run's event folder} for every run of a config: "experiment/what sets it apart"
    (its first experiment's, as `memorization runs` shows it), with the run id, so that two names never
    collide. TensorBoard's --logdir_spec separates runs by commas and a name from its folder by a colon, so
    neither is left in a name."""
    names = {}
    for rid in config.runs:
        label = config.labels.get(rid, "").split("; ")[0]
        experiment, _, apart = label.partition(": ")
        name = f"{experiment}/{apart + ' ' if apart else ''}[{rid}]"
        names[re.sub(r"[,:]", " ", name).replace("  ", " ")] = board_dir(results / "runs" / rid)
    return names


def free_port(host: str) -> int:
    """A port nothing listens on now (the system's pick), for TensorBoard to take."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def tensorboard_command(config: Config, results: Path, host: str, port: int) -> list[str]:
    spec = ",".join(f"{name}:{path.resolve()}" for name, path in run_names(config, results).items())
    return [
        sys.executable, "-m", "tensorboard.main", "--logdir_spec", spec, "--host", host, "--port", str(port),
        "--reload_interval", str(RELOAD_S),
    ]  # fmt: skip


def board(config: Config, results: Path, host: str = "127.0.0.1", port: int | None = None) -> int:
    """Start TensorBoard on the runs of `config` and wait for it (Ctrl-C ends both); its exit status."""
    port = port or free_port(host)
    runs = len(config.runs)
    started = sum(board_dir(results / "runs" / rid).exists() for rid in config.runs)
    print(
        f"TensorBoard on http://{host}:{port}/ : the {runs} run{'s' if runs > 1 else ''} of config {config.name!r} "
        f"({started} with event files so far; the others appear as they start). Ctrl-C ends it.",
        flush=True,
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}  # TensorBoard's notes about running without TensorFlow
    try:
        return subprocess.run(tensorboard_command(config, results, host, port), env=env).returncode
    except KeyboardInterrupt:
        return 0
