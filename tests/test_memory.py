"""The jobs' memory model (memorization.memory): the replay's segments, each job's mem_mb, the machine's share."""

import re

import pytest
import torch

from memorization import config as S
from memorization.engine import memory
from memorization.engine.architecture import Arch
from memorization.measures.sensitivity import Trajectory

from .conftest import snakemake, write_config

IDENTITY = Arch("mlp", (1, 8, 8), 1000, hidden=(32, 32))  # Fig. 3's identity-label set-up on digits


@pytest.mark.parametrize("n_steps", [10, 1000, 5000, 30000, 100000])
def test_the_segment_length_minimises_the_replays_memory(n_steps):
    chosen = memory.replay_segment(n_steps)
    at = {
        L: memory.replay_bytes(IDENTITY, 1, 32, 1000, n_steps, 250, segment=L) for L in range(1, min(n_steps, 800) + 1)
    }
    assert at[chosen] <= min(at.values()) * 1.001  # the continuous optimum, rounded


def test_the_replay_at_the_authors_stride_fits_4_gb_up_to_t_100000():
    # window 500 at stride 2: 250 output rows in one pass (chunk 256)
    sizes = {T: memory.job_mb(memory.replay_bytes(IDENTITY, 1, 32, 1000, T, 250)) for T in (5000, 30000, 100000)}
    assert all(mb <= 4096 for mb in sizes.values()), sizes
    assert sizes[100000] < 1.2 * sizes[5000]  # the rows' cotangents dominate; the states grow as √T


def test_the_trajectory_is_stored_in_the_memory_balanced_segments():
    spec = S.resolve({"dataset": "digits", "width": 8, "steps": 60, "train_size": 64, "sampling": "replacement"})
    spec = spec.replace(seeds=[0])
    x, y = torch.rand(64, 1, 8, 8, dtype=torch.float64), torch.randint(10, (64,))
    traj = Trajectory.replay(spec, x, y, 10, 0, 59)
    assert traj.starts == list(range(0, 60, memory.replay_segment(60)))
    # stepping a segment again gives the stored state of the next one
    steps = traj.segment(1)
    assert [t for t, *_ in steps] == list(range(traj.starts[1], traj.starts[2]))
    assert all(torch.equal(v, traj.states[1][0][k]) for k, v in steps[0][3].items())
    again = Trajectory.replay(spec, x, y, 10, 0, 59, segment=1)
    assert all(torch.equal(v, again.states[traj.starts[1] + 3][0][k]) for k, v in steps[3][3].items())


def test_jobs_ask_for_what_their_work_holds():
    spec = S.resolve({"dataset": "digits", "width": 256, "epochs": 1})
    few, many = spec.replace(seeds=[0]), spec.replace(seeds=list(range(100)))
    assert memory.training_memory_mb(few) >= memory.PROCESS_MB
    # 100 seeds hold 99 more models' parameters, momentum, gradients and a state being written
    extra = 99 * 5 * sum(a * b + b for a, b in ((64, 256), (256, 256), (256, 10))) * 4 / memory.MB
    assert memory.training_memory_mb(many) - memory.training_memory_mb(few) >= extra
    replay = S.resolve(
        {"dataset": "digits", "width": 32, "label_noise": "identity", "steps": 30000, "sampling": "replacement"}
    )
    replay = replay.replace(seeds=[0])
    settings = {"window": 500, "stride": 2, "chunk": 256, "horizon": None}
    needs = memory.metric_memory_mb("sensitivity", replay, settings)
    assert needs > memory.training_memory_mb(replay) + 300  # the rows: cotangents, Jacobian, tangents
    assert memory.metric_memory_mb("csr", replay, {}) == memory.training_memory_mb(replay)  # no memory model


def test_the_workflow_shares_out_this_machines_memory_unless_told(tmp_path, tiny_config):
    write_config(tmp_path, tiny_config)
    target = "results/data/clean/digits.npz"
    told = snakemake(tmp_path, "--resources", "mem_mb=1234", "--", target).output
    assert 'Provided resources: mem_mb=Resource("mem_mb", 1234)' in told
    (tmp_path / target).unlink()
    found = re.search(r'mem_mb=Resource\("mem_mb", (\d+)\)', snakemake(tmp_path, "--", target).output)
    assert found and int(found.group(1)) == memory.machine_mb()


def test_a_training_job_larger_than_the_machine_is_named_with_its_fix(tmp_path, tiny_config):
    write_config(tmp_path, tiny_config)
    name = next(iter(tiny_config["experiments"]))
    small = snakemake(tmp_path, "-n", "--resources", f"mem_mb={memory.PROCESS_MB - 1}").output
    assert f"experiments.{name}: a training job of" in small and "set its seeds_per_job" in small
    assert "seeds_per_job" not in snakemake(tmp_path, "-n", "--resources", "mem_mb=100000").output
