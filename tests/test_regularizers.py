"""Regularisers (docs/science.md §5): each one's effect on the forward pass and the step, and the convergence stop."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from memorization import config as S
from memorization.engine.data import build_noisy_dataset
from memorization.engine.lass import lass
from memorization.engine.models import Arch, example_losses, forward, init_params, seed_for
from memorization.engine.regularizers import LayerNoise, Regularizer, adversarial_mix, layer_noise
from memorization.engine.sgd import adversarial_losses, load_state, train_step
from memorization.engine.timeline import Timeline, completed_timeline
from memorization.engine.train import train_run
from memorization.measures.metrics import run_tables
from memorization.measures.sensitivity import Trajectory, loss_terms
from memorization.results.rundir import checkpoint_path

MLP = Arch("mlp", (1, 8, 8), 10, hidden=(64, 64))
CNN = Arch("cnn", (1, 8, 8), 10, channels=4, dense=(16, 8))


def reg(kind, strength, **adv):
    return Regularizer.from_spec(S.resolve({"regularizer": kind, "reg_strength": strength, **adv}))


@pytest.mark.parametrize("arch", [MLP, CNN])
@pytest.mark.parametrize(
    "kind,strength", [("dropout", 0.5), ("input_dropout", 0.5), ("input_noise", 0.3), ("hidden_noise", 0.3)]
)
def test_stochastic_layers_act_in_training_only(arch, kind, strength):
    params, buffers = init_params(arch, [0, 1])
    x = torch.rand(2, 20, 1, 8, 8)
    noise = LayerNoise(reg(kind, strength), [0, 1], step=3, device="cpu")
    plain_eval, _ = forward(arch, params, buffers, x, train=False)
    noisy_eval, _ = forward(arch, params, buffers, x, train=False, noise=noise)
    torch.testing.assert_close(noisy_eval, plain_eval)  # evaluation (and so CSR, LASS) is deterministic
    plain_train, _ = forward(arch, params, buffers, x, train=True)
    noisy_train, _ = forward(arch, params, buffers, x, train=True, noise=noise)
    assert (noisy_train - plain_train).abs().max() > 1e-3
    again, _ = forward(arch, params, buffers, x, train=True, noise=LayerNoise(noise.reg, [0, 1], 3, "cpu"))
    torch.testing.assert_close(again, noisy_train)  # the same (seeds, step) redraws the same masks
    other, _ = forward(arch, params, buffers, x, train=True, noise=LayerNoise(noise.reg, [0, 1], 4, "cpu"))
    assert (other - noisy_train).abs().max() > 1e-3


def test_dropout_drops_at_its_rate_and_keeps_the_mean():
    h = torch.ones(2, 500, 400)
    out = LayerNoise(reg("dropout", 0.3), [0, 1], 0, "cpu").hidden(h)
    assert (out == 0).float().mean().item() == pytest.approx(0.3, abs=0.01)
    assert out.mean().item() == pytest.approx(1.0, abs=0.01)  # inverted dropout: no rescaling at test time
    assert torch.equal(LayerNoise(reg("input_dropout", 0.3), [0], 0, "cpu").hidden(h[:1]), h[:1])  # inputs only


def test_gaussian_noise_has_its_std_where_it_belongs():
    x = torch.zeros(1, 400, 1, 8, 8)
    assert LayerNoise(reg("input_noise", 0.7), [5], 0, "cpu").inputs(x).std().item() == pytest.approx(0.7, rel=0.02)
    assert torch.equal(LayerNoise(reg("input_noise", 0.7), [5], 0, "cpu").hidden(x), x)
    h = torch.zeros(1, 400, 64)
    assert LayerNoise(reg("hidden_noise", 0.2), [5], 0, "cpu").hidden(h).std().item() == pytest.approx(0.2, rel=0.02)
    assert layer_noise(reg("weight_decay", 0.1), [0], 0, "cpu") is None  # deterministic regularisers draw nothing


def test_a_seeds_masks_do_not_depend_on_its_group():
    h = torch.ones(3, 10, 32)
    both = LayerNoise(reg("dropout", 0.5), [0, 7, 9], 2, "cpu").hidden(h)
    alone = LayerNoise(reg("dropout", 0.5), [7], 2, "cpu").hidden(h[:1])
    torch.testing.assert_close(both[1:2], alone)


def test_weight_decay_pulls_the_kernels_towards_zero_and_leaves_biases_and_batchnorm_alone():
    params, buffers = init_params(MLP, [0])
    params = {k: v + 0.1 for k, v in params.items()}  # non-zero biases, so that decaying them would show
    x, y = torch.rand(1, 8, 1, 8, 8), torch.randint(10, (1, 8))
    plain = {k: v.clone() for k, v in params.items()}
    decayed = {k: v.clone() for k, v in params.items()}
    for p, r in ((plain, Regularizer()), (decayed, reg("weight_decay", 0.5))):
        train_step(
            MLP,
            p,
            dict(buffers),
            {k: torch.zeros_like(v) for k, v in p.items()},
            x,
            y,
            lr=0.1,
            momentum=0.0,
            groups=[slice(0, 1)],
            reg=r,
            seeds=[0],
        )
    assert sorted(params) == ["fc0.bias", "fc0.weight", "fc1.bias", "fc1.weight", "fc2.bias", "fc2.weight"]
    for k in params:  # kernels: w' = w - lr (g + λ w), the difference is exactly lr·λ·w; biases: none
        expected = 0.1 * 0.5 * params[k] if k.endswith("weight") else torch.zeros_like(params[k])
        torch.testing.assert_close(plain[k] - decayed[k], expected, rtol=1e-4, atol=1e-6)
    from memorization.engine.sgd import decays

    assert [decays(n) for n in ("conv0.weight", "conv0.bias", "conv0.bn.weight", "fc1.bn.bias")] == [
        True,
        False,
        False,
        False,
    ]


def test_adversarial_mix_only_touches_critical_samples():
    clean, adv = torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[5.0, 7.0, 9.0]])
    mixed = adversarial_mix(clean, adv, torch.tensor([[True, False, True]]), 0.25)
    torch.testing.assert_close(mixed, torch.tensor([[2.0, 2.0, 4.5]]))


R = 20.0  # L∞ radius (0-255 scale) at which some but not all of these points are critical


def test_adversarial_step_trains_on_the_critical_points_lass_finds():
    arch = Arch("mlp", (1, 8, 8), 10, hidden=(16,))
    params, buffers = init_params(arch, [0, 1])
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(2, 12, 1, 8, 8, generator=gen), torch.randint(10, (2, 12), generator=gen)
    adv = {"adversarial_weight": 0.4, "adversarial_r": R, "adversarial_alpha": 20.0, "adversarial_beta": 5.0}
    r = reg("dropout_adversarial", 0.0, **adv)  # dropout 0: deterministic, so the mix can be checked by hand
    losses, clean_logits, _ = adversarial_losses(
        arch, params, buffers, x, y, r, [0, 1], step=0, pixel_range=1.0, loss="cross_entropy", noise=None
    )
    clean = example_losses(forward(arch, params, buffers, x, train=True)[0], y)
    changed = (losses - clean).abs() > 1e-6
    assert changed.any() and not changed.all()  # critical samples mixed in, the others left as they were
    # the same search as the CSR metric: the points it trains on flip the prediction within the box
    first = {k: v[:1] for k, v in params.items()}
    found = lass(
        lambda xb: forward(arch, first, buffers, xb, train=False)[0][0],
        x[0],
        alpha=20 / 255,
        beta=5 / 255,
        r=R / 255,
        max_iter=10,
        seed=seed_for(0, "adversarial", 0),
    )
    assert torch.equal(found.critical, changed[0])
    assert (found.x_hat - x[0]).abs().max() <= R / 255 + 1e-6
    adv_loss = example_losses(forward(arch, first, buffers, found.x_hat[None], train=True)[0], y[:1])
    torch.testing.assert_close(losses[0], torch.where(found.critical, 0.6 * clean[0] + 0.4 * adv_loss[0], clean[0]))
    # with a ball too small to flip anything, the step is exactly the unregularised one
    tiny = reg("dropout_adversarial", 0.0, **{**adv, "adversarial_r": 1e-6})
    losses, clean_logits, _ = adversarial_losses(
        arch, params, buffers, x, y, tiny, [0, 1], 0, 1.0, "cross_entropy", None
    )
    torch.testing.assert_close(losses, clean)


def make(**keys):
    spec = S.resolve({"dataset": "digits", "train_size": 60, "width": 32, "lr": 0.1, "momentum": 0.9, **keys})
    return spec, build_noisy_dataset(spec.data)


def test_training_stops_when_every_seed_fits_and_records_the_cap(tmp_path):
    spec, data = make(epochs=300, stop_when_fit=True)
    spec = spec.replace(seeds=[0, 1])
    train_run(spec, data, tmp_path, progress=False)
    timeline = completed_timeline(spec, 60, tmp_path)
    assert timeline.total_steps < Timeline.from_spec(spec, 60).total_steps  # stopped early
    assert checkpoint_path(tmp_path, timeline.total_steps).exists()  # the stop is a checkpoint
    training, convergence = run_tables(spec, data, tmp_path)
    assert training["step"].max() == timeline.total_steps
    last = training[training["step"] == timeline.total_steps]
    assert (last["train_acc"] == 1.0).all()
    before = training[training["step"] < timeline.total_steps]
    for seed in (0, 1):  # epochs_to_fit: the first logged epoch at 100% training accuracy
        first = training[(training["seed"] == seed) & (training["train_acc"] == 1.0)]["epoch"].min()
        assert convergence.set_index("seed").loc[seed, "epochs_to_fit"] == first
    assert not (before.groupby("step")["train_acc"].min() == 1.0).any()  # not all seeds fit any earlier
    assert (convergence["max_epochs"] == 300).all()
    assert json.loads((tmp_path / "end.json").read_text())["step"] == timeline.total_steps


def test_a_run_that_never_fits_trains_to_the_cap(tmp_path):
    spec, data = make(epochs=3, stop_when_fit=True, width=2, label_noise="random")
    spec = spec.replace(seeds=[0])
    train_run(spec, data, tmp_path, progress=False)
    _, convergence = run_tables(spec, data, tmp_path)
    assert completed_timeline(spec, 60, tmp_path).total_steps == Timeline.from_spec(spec, 60).total_steps
    assert pd.isna(convergence["epochs_to_fit"].iloc[0]) and convergence["max_epochs"].iloc[0] == 3


def test_replay_redraws_the_training_masks(tmp_path):
    """Loss sensitivity replays training; with dropout it must replay the same masks to reach the same weights."""
    spec, data = make(steps=6, regularizer="dropout", reg_strength=0.5, width=8, batch_size=10, momentum=0.0)
    spec = spec.replace(seeds=[0, 1], checkpoints={"unit": "step", "at": [6]})
    train_run(spec, data, tmp_path, progress=False)
    x, y = torch.as_tensor(data.x_train), torch.as_tensor(data.y_train)
    trajectory = Trajectory.replay(spec, x, y, 10, 0, 5, segment=2)  # segments from steps 0, 2 and 4
    t, _, idx, params_5, buffers_5 = trajectory.segment(len(trajectory.starts) - 1)[-1]  # θ_5: replays steps 0..4
    logits, _ = forward(
        Arch.from_spec(spec, x.shape[1:], 10),
        params_5,
        buffers_5,
        x[idx],
        train=True,
        noise=layer_noise(Regularizer.from_spec(spec), [0, 1], t, "cpu"),
    )
    L = loss_terms("batch", spec.loss, 10, [5])(5, logits, y[idx]).detach()[None]
    arch = Arch.from_spec(spec, x.shape[1:], 10)
    params, buffers = init_params(arch, [0, 1])
    velocity = {k: torch.zeros_like(v) for k, v in params.items()}
    timeline = Timeline.from_spec(spec, 60)
    r = Regularizer.from_spec(spec)
    for t, _, idx in timeline.steps([0, 1], 0, 5):
        train_step(
            arch,
            params,
            buffers,
            velocity,
            x[idx],
            y[idx],
            lr=spec.lr,
            momentum=0.0,
            groups=[slice(0, 2)],
            reg=r,
            seeds=[0, 1],
            step=t,
        )
    idx = next(iter(timeline.steps([0, 1], 5, 6)))[2]
    logits, _ = forward(arch, params, buffers, x[idx], train=True, noise=layer_noise(r, [0, 1], 5, "cpu"))
    torch.testing.assert_close(L[0, :, 0], example_losses(logits, y[idx]).mean(1), rtol=1e-5, atol=1e-6)
    final = load_state(checkpoint_path(tmp_path, 6))["params"]
    assert not torch.equal(final["fc0.weight"], init_params(arch, [0, 1])[0]["fc0.weight"])


def test_regularizer_values_are_checked():
    with pytest.raises(S.ConfigError, match="use regularizer: none"):
        S.resolve({"regularizer": "dropout", "reg_strength": 0})
    with pytest.raises(S.ConfigError, match="below 1"):
        S.resolve({"regularizer": "dropout", "reg_strength": 1.0})
    with pytest.raises(S.ConfigError, match="without a regularizer"):
        S.resolve({"reg_strength": 0.5})
    plain = S.resolve({"regularizer": "dropout", "reg_strength": 0.5})
    assert plain.adversarial_weight is None  # not part of a dropout run's id
    assert S.resolve({}).run_id == S.resolve({"regularizer": "none"}).run_id
    assert np.isclose(reg("weight_decay", 0.01).weight_decay, 0.01) and reg("dropout", 0.2).weight_decay == 0
