"""The paper's MLP and CNN as pure functions over stacked parameters: every tensor has a leading seed
axis S, so all seeds of one configuration train as one batched computation (matmul over S for dense
layers, grouped convolution with groups=S for convolutions, BatchNorm statistics per seed).

Why hand-written batched layers rather than torch.func.vmap over nn.Modules: BatchNorm running statistics
do not update under vmap, and the explicit form keeps one seed's arithmetic identical to a solo run.
A solo run is simply S = 1.

Parameters are initialised as in Keras 2017 / the authors' code: Glorot-uniform weights, zero biases
(docs/science.md §1.2, §3.2), from a generator seeded per seed on the CPU, so a seed's initial weights do not
depend on the device or on which other seeds share its job.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .architecture import Arch, layer_shapes

# BatchNorm as in Keras, which the paper used: eps 1e-3 (PyTorch's default is 1e-5), and running statistics
# kept as m * old + (1 - m) * batch with m the spec's `batchnorm_momentum` (Keras' `momentum`, default 0.99;
# PyTorch counts the other way: its momentum=0.01). Our choice, since the paper states none (docs/science.md §7).
BN_EPS = 1e-3


def _glorot_bound(name: str, shape: tuple[int, ...]) -> float:
    if len(shape) == 2:  # dense (in, out)
        fan_in, fan_out = shape
    else:  # conv (out, in, k, k)
        field = shape[2] * shape[3]
        fan_in, fan_out = shape[1] * field, shape[0] * field
    return math.sqrt(6.0 / (fan_in + fan_out))


def init_params(arch: Arch, seeds: list[int]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(parameters, BatchNorm buffers), each tensor stacked over seeds: shape (S, *shape)."""
    shapes = layer_shapes(arch)
    per_seed = []
    for seed in seeds:
        gen = torch.Generator().manual_seed(seed_for(seed, "init"))
        p = {}
        for name, shape in shapes.items():
            if name.endswith("bn.weight"):
                p[name] = torch.ones(shape)
            elif name.endswith("weight"):
                bound = _glorot_bound(name, shape)
                p[name] = torch.rand(shape, generator=gen) * (2 * bound) - bound
            else:
                p[name] = torch.zeros(shape)
        per_seed.append(p)
    params = {k: torch.stack([p[k] for p in per_seed]) for k in shapes}
    buffers = {}
    for name in shapes:
        if name.endswith("bn.weight"):
            base = name[: -len("weight")]
            n = shapes[name][0]
            buffers[base + "running_mean"] = torch.zeros(len(seeds), n)
            buffers[base + "running_var"] = torch.ones(len(seeds), n)
    return params, buffers


STREAMS = {"init": 0, "batches": 1, "regularizer": 2, "adversarial": 3, "subset": 4}


def seed_for(seed: int, stream: str, *counters: int) -> int:
    """A 63-bit generator seed for (seed, purpose, counters...): independent streams, no stored RNG state,
    so training resumes mid-run and steps can be replayed exactly."""
    return int(np.random.SeedSequence([seed, STREAMS[stream], *counters]).generate_state(2, np.uint64)[0] >> 1)


# ----------------------------------------------------------------------------- forward


def _batch_norm(h, params, buffers, name, *, train: bool, seed_axis: int, channel_axis: int, momentum: float):
    """BatchNorm with per-seed statistics. h has the seed axis at `seed_axis` and channels at `channel_axis`;
    the remaining axes are reduced. Returns (output, updated running buffers or {})."""
    reduce = tuple(d for d in range(h.dim()) if d not in (seed_axis, channel_axis))
    shape = [1] * h.dim()
    shape[seed_axis], shape[channel_axis] = h.shape[seed_axis], h.shape[channel_axis]
    updates = {}
    if train:
        mean = h.mean(dim=reduce)
        var = h.var(dim=reduce, unbiased=False)
        n = h.numel() // (h.shape[seed_axis] * h.shape[channel_axis])
        with torch.no_grad():
            rm, rv = buffers[f"{name}.bn.running_mean"], buffers[f"{name}.bn.running_var"]
            updates[f"{name}.bn.running_mean"] = momentum * rm + (1 - momentum) * mean.detach()
            updates[f"{name}.bn.running_var"] = momentum * rv + (1 - momentum) * var.detach() * n / max(n - 1, 1)
    else:
        mean, var = buffers[f"{name}.bn.running_mean"], buffers[f"{name}.bn.running_var"]
    scale = params[f"{name}.bn.weight"] * torch.rsqrt(var + BN_EPS)
    shift = params[f"{name}.bn.bias"] - mean * scale
    return h * scale.reshape(shape) + shift.reshape(shape), updates


def _dense(h, params, name):
    """h (S or 1, B, in) · W (S, in, out) + bias, the bias added inside the product (one pass over the output
    instead of two); a shared input (1, B, in) is broadcast over the seeds as a view."""
    w = params[f"{name}.weight"]
    return torch.baddbmm(params[f"{name}.bias"].unsqueeze(1), h.expand(w.shape[0], -1, -1), w)


def forward(arch: Arch, params, buffers, x: torch.Tensor, *, train: bool, noise=None):
    """Logits of every seed's model: (S, B, n_classes), and the updated BatchNorm buffers.

    x is (S, B, C, H, W), one batch per seed, or (B, C, H, W), shared by all seeds (evaluation).
    noise: the stochastic layers of a regulariser (regularizers.LayerNoise), applied in training only.
    """
    S = next(iter(params.values())).shape[0]
    new_buffers = dict(buffers)
    if not train:
        noise = None
    if arch.crop:
        c = arch.crop
        x = x[..., c:-c, c:-c]
    if noise is not None:
        x = noise.inputs(x)
    if arch.kind == "mlp":
        h = x.flatten(start_dim=-3)
        if h.dim() == 2:
            h = h.unsqueeze(0)
        n = len(arch.hidden)
        for i in range(n):
            h = torch.relu(_dense(h, params, f"fc{i}"))
            if noise is not None:
                h = noise.hidden(h)
        return _dense(h, params, f"fc{n}"), new_buffers

    if x.dim() == 4:
        x = x.unsqueeze(0).expand(S, *x.shape)
    B = x.shape[1]
    h = x.transpose(0, 1).reshape(B, -1, *x.shape[-2:])  # (B, S*C, H, W): seeds become conv groups
    # On a CPU the convolutions and pools run channels-last (oneDNN's layout): for the digits CNN's 8x8 maps
    # pooling NCHW is 6x slower than converting and pooling channels-last, and evaluation runs 2x faster.
    layout = torch.channels_last if h.device.type == "cpu" else torch.contiguous_format
    h = h.contiguous(memory_format=layout)
    for i in range(2):
        w, b = params[f"conv{i}.weight"], params[f"conv{i}.bias"]
        h = F.conv2d(h, w.flatten(0, 1), b.flatten(), padding=2, groups=S)
        h5 = h.view(B, S, arch.channels, *h.shape[-2:])
        h5, upd = _batch_norm(
            h5, params, buffers, f"conv{i}", train=train, seed_axis=1, channel_axis=2, momentum=arch.bn_momentum
        )
        new_buffers.update(upd)
        h = F.max_pool2d(torch.relu(h5).flatten(1, 2).contiguous(memory_format=layout), 3, stride=2, padding=1)
    h = h.reshape(B, S, -1).transpose(0, 1)  # (S, B, features), each seed's features in (C, H, W) order
    for i in range(len(arch.dense)):
        h = _dense(h, params, f"fc{i}")
        h, upd = _batch_norm(
            h, params, buffers, f"fc{i}", train=train, seed_axis=0, channel_axis=2, momentum=arch.bn_momentum
        )
        new_buffers.update(upd)
        h = torch.relu(h)
        if noise is not None:
            h = noise.hidden(h)
    return _dense(h, params, f"fc{len(arch.dense)}"), new_buffers


def example_losses(logits: torch.Tensor, y: torch.Tensor, kind: str = "cross_entropy") -> torch.Tensor:
    """Per-example losses (S, B) of every seed's logits (S, B, C) against labels (S, B) or (B,).

    smoothed_log is the authors' loss-sensitivity loss, −log(0.1 + p_y)/C (docs/science.md §3.2): bounded, so
    every example keeps contributing gradient.
    """
    S, B, K = logits.shape
    y = (y.expand(S, B) if y.dim() == 1 else y).reshape(S * B)
    flat = logits.reshape(S * B, K)
    if kind == "cross_entropy":
        return F.cross_entropy(flat, y, reduction="none").view(S, B)
    if kind == "smoothed_log":
        # p_y = exp(z_y − logsumexp z), z_y by a one-hot product: the replay's curvature of a CNN
        # differentiates this twice under vmap (memorization.curvature), where softmax's and gather's backward
        # have no batching rule and run one row at a time; logsumexp and products batch.
        z_y = (flat * F.one_hot(y, K).to(flat.dtype)).sum(1)
        p_y = torch.exp(z_y - torch.logsumexp(flat, dim=1))
        return (-torch.log(0.1 + p_y) / K).view(S, B)
    raise ValueError(f"unknown loss {kind!r}")
