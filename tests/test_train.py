import numpy as np
import pytest
import torch

from memorization import config as S
from memorization.engine.data import build_noisy_dataset
from memorization.engine.models import Arch, forward, init_params
from memorization.engine.sgd import evaluate, load_state, sgd_step
from memorization.engine.timeline import Timeline, learning_rate
from memorization.engine.train import train_run
from memorization.results.rundir import PUBLISHED, checkpoint_path


def make(**keys):
    spec = S.resolve({"dataset": "digits", "train_size": 96, "width": 16, "epochs": 2, "lr": 0.05, **keys})
    return spec, build_noisy_dataset(spec.data)


def test_sgd_step_is_pytorch_sgd_with_momentum_and_weight_decay():
    torch.manual_seed(0)
    w0 = torch.randn(5, 3)
    ref = torch.nn.Parameter(w0.clone())
    opt = torch.optim.SGD([ref], lr=0.1, momentum=0.9, weight_decay=0.01)
    params, velocity = {"fc0.weight": w0.clone()}, {"fc0.weight": torch.zeros_like(w0)}
    for _ in range(4):
        g = torch.randn(5, 3)
        ref.grad = g.clone()
        opt.step()
        params, velocity = sgd_step(params, {"fc0.weight": g}, velocity, lr=0.1, momentum=0.9, weight_decay=0.01)
    torch.testing.assert_close(params["fc0.weight"], ref.detach())


def test_sgd_step_is_differentiable_for_the_replay():
    w = torch.randn(3, requires_grad=True)
    new, _ = sgd_step({"w": w}, {"w": 2 * w}, {"w": torch.zeros(3)}, lr=0.25, momentum=0.0, weight_decay=0.0)
    (g,) = torch.autograd.grad(new["w"].sum(), w)
    torch.testing.assert_close(g, torch.full((3,), 0.5))  # d/dw (w - 0.25 * 2w) = 0.5


def test_learning_rate_steps_down_every_k_epochs():
    spec = S.resolve({"width": 8, "lr": 0.01, "lr_decay_every": 15})
    assert [learning_rate(spec, e) for e in (0, 14, 15, 30)] == [0.01, 0.01, 0.005, 0.0025]


def test_batch_plan_shuffles_each_epoch_and_samples_with_replacement_when_asked():
    spec, _ = make(batch_size=10)
    timeline = Timeline.from_spec(spec, 96)
    assert timeline.steps_per_epoch == 10 and timeline.total_steps == 20 and timeline.eval_steps == (0, 10, 20)
    order = timeline.epoch_order([3, 4], epoch=0)
    assert sorted(order[0].tolist()) == list(range(96))  # a permutation: every example once per epoch
    assert not torch.equal(order[0], order[1])  # each seed its own shuffle
    assert not torch.equal(order[0], timeline.epoch_order([3], epoch=1)[0])  # and a new one each epoch
    assert timeline.batch(order, 19).shape == (2, 6)  # the last batch of an epoch is the remainder
    spec, _ = make(batch_size=10, sampling="replacement", steps=7)
    timeline = Timeline.from_spec(spec, 96)
    order = timeline.epoch_order([0], 0)
    assert timeline.total_steps == 7 and order.shape == (1, 100) and len(set(order[0].tolist())) < 96


@pytest.mark.parametrize(
    "arch", [{"arch": "mlp", "width": 16}, {"arch": "cnn", "cnn_channels": 4, "cnn_dense": [8, 6], "momentum": 0.9}]
)
def test_each_seed_of_a_batched_job_equals_its_solo_run(tmp_path, arch):
    spec, data = make(**arch)
    together = spec.replace(seeds=[0, 1, 2])
    alone = spec.replace(seeds=[1])
    train_run(together, data, tmp_path / "together", progress=False)
    train_run(alone, data, tmp_path / "alone", progress=False)
    last = Timeline.from_spec(spec, len(data.y_train)).total_steps
    a = load_state(checkpoint_path(tmp_path / "together", last))
    b = load_state(checkpoint_path(tmp_path / "alone", last))
    for group in ("params", "buffers"):
        for name in a[group]:
            torch.testing.assert_close(a[group][name][1], b[group][name][0], rtol=1e-5, atol=1e-6)
    # and training actually moved the weights
    p0, _ = init_params(Arch.from_spec(spec, data.x_train.shape[1:], 10), [1])
    assert any((b["params"][k][0] - p0[k][0]).abs().max() > 1e-3 for k in p0)
    assert not (tmp_path / "together" / "state.pt").exists()  # the resume state goes once the run is done


def test_seed_groups_stepping_one_after_another_give_the_files_of_one_group_to_the_bit(tmp_path):
    # train.train_until: each group takes every step up to the next record point before the next group;
    # checkpoints inside both epochs (3 steps each) cut them into segments of 1 and 2 steps
    from memorization.engine.architecture import params_per_model
    from memorization.engine.train import next_record, setup

    spec, data = make(width=256, momentum=0.9, checkpoints={"unit": "step", "at": [1, 4]})
    spec = spec.replace(seeds=[0, 1, 2, 3, 4, 5])
    per_seed = params_per_model(Arch.from_spec(spec, data.x_train.shape[1:], 10))
    train_run(spec, data, tmp_path / "one", progress=False, group_params=6 * per_seed)
    train_run(spec, data, tmp_path / "three", progress=False, group_params=2 * per_seed)
    run = setup(spec, data, tmp_path / "three", "", torch.device("cpu"), 2 * per_seed)
    assert len(run.groups) == 3 and [next_record(run, s) for s in (0, 1, 3, 4)] == [1, 3, 4, 6]
    one = tmp_path / "one"
    files = sorted(p.relative_to(one) for p in one.glob("*/*") if p.parent.name in PUBLISHED)
    assert len(files) == 8  # checkpoints at steps 1, 4, 6; evaluations at 0, 3, 6; both epochs' presentations
    for name in files:
        a, b = tmp_path / "one" / name, tmp_path / "three" / name
        if name.suffix == ".npz":
            with np.load(a) as x, np.load(b) as y:
                assert all(np.array_equal(x[k], y[k], equal_nan=True) for k in x.files), name
        else:
            x, y = load_state(a), load_state(b)
            for part in ("params", "velocity"):
                assert all(torch.equal(x[part][k], y[part][k]) for k in x[part]), name
            assert torch.equal(x["epoch_sums"], y["epoch_sums"]) and x["epoch_batches"] == y["epoch_batches"]


def test_checkpoints_load_with_weights_only_and_reproduce_the_logged_accuracy(tmp_path):
    spec, data = make()
    spec = spec.replace(seeds=[0, 1])
    train_run(spec, data, tmp_path, progress=False)
    state = load_state(checkpoint_path(tmp_path, 6))  # torch.load(weights_only=True)
    arch = Arch.from_spec(spec, data.x_train.shape[1:], 10)
    _, correct, _ = evaluate(
        arch, state["params"], state["buffers"], torch.as_tensor(data.x_train), torch.as_tensor(data.y_train)
    )
    with np.load(tmp_path / "evals" / "step_000000006.npz") as ev:
        np.testing.assert_allclose(correct.float().mean(1).numpy(), ev["train_acc"])
        assert ev["correct"].shape == (2, 96)


def test_a_checkpoint_without_momentum_holds_no_velocity_and_loads_it_as_zeros(tmp_path):
    spec, data = make()
    for momentum, run_dir in ((0.0, tmp_path / "plain"), (0.9, tmp_path / "momentum")):
        train_run(spec.replace(momentum=momentum, seeds=[0]), data, run_dir, progress=False)
        path = checkpoint_path(run_dir, 6)
        written = torch.load(path, weights_only=True)["velocity"]
        state = load_state(path)
        assert set(state["velocity"]) == set(state["params"])
        if momentum:
            assert written and any(v.abs().sum() > 0 for v in state["velocity"].values())
        else:
            assert written == {} and all(not v.any() for v in state["velocity"].values())
            assert all(state["velocity"][k].shape == v.shape for k, v in state["params"].items())


@pytest.mark.parametrize("shape", [(32, 2 * 3, 5, 5), (32, 2 * 3)])  # a convolution's maps, a dense layer
def test_batch_norm_is_keras_batch_norm_per_seed_and_channel(shape):
    from memorization.engine.models import BN_EPS, _batch_norm

    gen = torch.Generator().manual_seed(0)
    h = torch.randn(shape, generator=gen, dtype=torch.float64) * 3 + 1
    params = {
        "l.bn.weight": torch.rand(2, 3, dtype=torch.float64) + 0.5,
        "l.bn.bias": torch.randn(2, 3, dtype=torch.float64),
    }
    buffers = {
        "l.bn.running_mean": torch.randn(2, 3, dtype=torch.float64),
        "l.bn.running_var": torch.rand(2, 3, dtype=torch.float64) + 1,
    }
    out, new = _batch_norm(h, params, buffers, "l", train=True, momentum=0.9)
    reduce = [d for d in range(h.dim()) if d != 1]  # every axis but (seed, channel)
    n = h.numel() // h.shape[1]
    mean, var = h.mean(reduce), h.var(reduce, unbiased=False)
    at = (1, -1) + (1,) * (h.dim() - 2)
    expected = (h - mean.view(at)) / torch.sqrt(var.view(at) + BN_EPS) * params["l.bn.weight"].reshape(at)
    torch.testing.assert_close(out, expected + params["l.bn.bias"].reshape(at))
    # Keras' running statistics: m·old + (1 − m)·batch, the variance unbiased
    torch.testing.assert_close(new["l.bn.running_mean"], 0.9 * buffers["l.bn.running_mean"] + 0.1 * mean.view(2, 3))
    unbiased = var.view(2, 3) * n / (n - 1)
    torch.testing.assert_close(new["l.bn.running_var"], 0.9 * buffers["l.bn.running_var"] + 0.1 * unbiased)
    assert buffers["l.bn.running_mean"] is not new["l.bn.running_mean"]  # the given buffers are not written
    evaluated, none = _batch_norm(h, params, new, "l", train=False, momentum=0.9)
    rm, rv = new["l.bn.running_mean"].reshape(at), new["l.bn.running_var"].reshape(at)
    torch.testing.assert_close(
        evaluated,
        (h - rm) / torch.sqrt(rv + BN_EPS) * params["l.bn.weight"].reshape(at) + params["l.bn.bias"].reshape(at),
    )
    assert none == {}


def test_batch_norm_of_a_single_example_gives_the_shift():
    from memorization.engine.models import _batch_norm

    h = torch.randn(1, 6, dtype=torch.float64, requires_grad=True)  # an epoch's last batch of one, 2 seeds x 3
    params = {"l.bn.weight": torch.rand(2, 3, dtype=torch.float64), "l.bn.bias": torch.randn(2, 3, dtype=torch.float64)}
    buffers = {
        "l.bn.running_mean": torch.zeros(2, 3, dtype=torch.float64),
        "l.bn.running_var": torch.ones(2, 3, dtype=torch.float64),
    }
    out, new = _batch_norm(h, params, buffers, "l", train=True, momentum=0.9)
    torch.testing.assert_close(out, params["l.bn.bias"].reshape(1, 6))
    torch.testing.assert_close(new["l.bn.running_mean"], 0.1 * h.detach().view(2, 3))
    torch.testing.assert_close(new["l.bn.running_var"], torch.full((2, 3), 0.9, dtype=torch.float64))
    (grad,) = torch.autograd.grad(out.sum(), h)
    assert not grad.any()


def test_a_cnn_trains_through_an_epochs_last_batch_of_one(tmp_path):
    spec, data = make(arch="cnn", train_size=65, epochs=1, cnn_channels=2, cnn_dense=[4])  # 2 x 32 + 1
    train_run(spec.replace(seeds=[0, 1]), data, tmp_path, progress=False)
    assert all(torch.isfinite(v).all() for v in load_state(checkpoint_path(tmp_path, 3))["params"].values())


def test_mlp_forward_shares_one_input_batch_across_seeds():
    arch = Arch("mlp", (1, 8, 8), 10, hidden=(7, 7))
    params, buffers = init_params(arch, [0, 1])
    x = torch.rand(5, 1, 8, 8)
    shared, _ = forward(arch, params, buffers, x, train=False)
    per_seed, _ = forward(arch, params, buffers, x.expand(2, *x.shape), train=False)
    torch.testing.assert_close(shared, per_seed)
    assert shared.shape == (2, 5, 10) and not torch.allclose(shared[0], shared[1])


def test_the_training_loop_reports_the_train_mode_loss_averaged_over_the_epochs_batches(tmp_path):
    """batch_loss/batch_acc: what a Keras-style loop prints (train mode, regulariser active, mean over the
    epoch's batches), recomputed here step by step from the initial state with the same train_step."""
    from memorization.engine.regularizers import Regularizer
    from memorization.engine.sgd import initial_state, train_step

    spec, data = make(regularizer="dropout", reg_strength=0.5, momentum=0.9)
    spec = spec.replace(seeds=[0, 1])
    train_run(spec, data, tmp_path, progress=False)
    arch = Arch.from_spec(spec, data.x_train.shape[1:], 10)
    timeline = Timeline.from_spec(spec, len(data.y_train))
    params, buffers, velocity = initial_state(arch, spec.seeds, "cpu")
    x, y = torch.as_tensor(data.x_train), torch.as_tensor(data.y_train)
    reports = []
    for step, epoch, idx in timeline.steps(spec.seeds, 0, timeline.total_steps):
        reports.append(
            train_step(
                arch,
                params,
                buffers,
                velocity,
                x[idx],
                y[idx],
                lr=learning_rate(spec, epoch),
                momentum=0.9,
                groups=[slice(0, 2)],
                reg=Regularizer.from_spec(spec),
                seeds=spec.seeds,
                step=step,
            )
        )
    second_epoch = torch.stack(reports[timeline.steps_per_epoch :]).mean(0)
    with np.load(tmp_path / "evals" / f"step_{timeline.total_steps:09d}.npz") as ev:
        np.testing.assert_allclose(ev["batch_loss"], second_epoch[:, 0].numpy(), rtol=1e-6)
        np.testing.assert_allclose(ev["batch_acc"], second_epoch[:, 1].numpy(), rtol=1e-6)
        assert not np.allclose(ev["batch_loss"], ev["train_loss"])  # dropout on: not the eval-mode loss
    with np.load(tmp_path / "evals" / "step_000000000.npz") as ev:
        assert np.isnan(ev["batch_loss"]).all()  # no batch before the first step
