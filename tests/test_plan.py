"""The cost plan's arithmetic on a toy config with given timings, and its calibration cache."""

import json
import math

import pytest

from memorization import config as S
from memorization.pipeline import plan

CONFIG = {
    "experiments": {
        "a": {"spec": {"train_size": 64, "width": 8, "epochs": 3}, "seeds": 2, "tables": ["training", "csr"]},
        "b": {
            "spec": {"train_size": 64, "width": 8, "epochs": 3, "checkpoints": {"unit": "epoch", "every": 1}},
            "seeds": 2,  # the same run as "a": once
            "grid": {"stop_when_fit": [False, True]},
        },
    },
    "metrics": {"csr": {"points": 10, "max_iter": 4, "splits": ["val"]}},
}
T = {
    "step": 0.01,
    "eval_example": 0.001,
    "lass_point_iteration": 0.002,
    "backward_output_step": 0.0,
}


def test_job_costs_follow_from_the_specs_and_the_timings():
    config = S.load_config(CONFIG)
    runs = [r for rs in config.experiments.values() for r in rs]
    timings = {plan.shape_key(r): T for r in runs}
    jobs = plan.jobs(config, timings)
    train = [j for j in jobs if j.kind == "train"]
    assert len(train) == 2  # the shared run counted once, the stop-at-fit run is another
    # 64 examples at batch 32: 2 steps per epoch, 3 epochs; evaluations at 0..3 over 64 + 500 examples
    expected = 6 * 0.01 + 4 * (64 + 500) * 0.001 + plan.JOB_START["torch"]
    assert train[0].seconds == pytest.approx(expected) and not train[0].bounded
    assert train[1].bounded  # stops at fit: counted to its cap
    (csr,) = [j for j in jobs if j.kind == "metric:csr"]
    # checkpoints at every epoch (0..3) x 2 seeds x 10 points x 4 iterations
    assert csr.seconds == pytest.approx(4 * 2 * 10 * 4 * 0.002 + plan.JOB_START["torch"]) and csr.bounded
    assert plan.wall_time(jobs, 1) == pytest.approx(sum(j.seconds for j in jobs if j.kind != "table"))
    assert plan.wall_time(jobs, 8) == pytest.approx(max(j.seconds for j in jobs if j.kind != "table"))
    text = plan.report(jobs, 2, "cpu")
    assert "a" in text and "metric:csr" in text and "wall time on 2 device(s)" in text


def test_calibration_is_measured_once_per_shape_and_cached(tmp_path):
    config = S.load_config(CONFIG)
    runs = [r for rs in config.experiments.values() for r in rs]
    calls = []

    def fake(spec, device):
        calls.append(plan.shape_key(spec))
        return T

    cache = tmp_path / "cache.json"
    plan.calibrations(runs, "cpu", cache, measure_fn=fake)
    assert len(calls) == 1  # both runs have the same shape (stop_when_fit does not change a step's cost)
    plan.calibrations(runs, "cpu", cache, measure_fn=fake)
    assert len(calls) == 1 and json.loads(cache.read_text()) == {f"v{plan.CALIBRATION_VERSION} {calls[0]}": T}


def test_a_real_calibration_measures_every_quantity(tmp_path):
    spec = S.resolve({"train_size": 64, "width": 8}, seeds=[0, 1])
    t = plan.measure(spec, "cpu", steps=10)
    assert set(t) == {
        "step",
        "eval_example",
        "lass_point_iteration",
        "backward_output_step",
        "backward_pass_step",
    }
    # the structure, not the speed: a busy machine slows any timing, and the per-output cost is a difference of
    # two timings, which may come out 0 (the plan clips it there)
    assert all(isinstance(v, float) and math.isfinite(v) and v >= 0 for v in t.values()) and t["step"] > 0
