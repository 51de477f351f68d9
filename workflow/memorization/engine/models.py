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
from .products import dense

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
    params = {
        name: (torch.ones if name.endswith("bn.weight") else torch.zeros)((len(seeds), *shape))
        for name, shape in shapes.items()
    }
    kernels = [name for name in shapes if name.endswith("weight") and not name.endswith("bn.weight")]
    for i, seed in enumerate(seeds):  # each seed's draws written into its slice: no per-seed tensors to stack
        gen = torch.Generator().manual_seed(seed_for(seed, "init"))
        for name in kernels:
            bound, w = _glorot_bound(name, shapes[name]), params[name][i]
            torch.rand(shapes[name], generator=gen, out=w).mul_(2 * bound).sub_(bound)
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


def _batch_norm(h, params, buffers, name, *, train: bool, momentum: float):
    """BatchNorm with per-seed statistics, by PyTorch's fused kernel (one operation forward and one backward,
    where mean, variance and the affine map written out were a dozen of each: the digits CNN's 2-seed steps
    about 2x faster). h is (N, S·C, ...): every (seed, channel) pair is one of the kernel's channels, reduced
    over N and the rest. Returns (output, updated running buffers or {})."""
    mean, var = buffers[f"{name}.bn.running_mean"], buffers[f"{name}.bn.running_var"]
    shape = mean.shape
    if train and h.numel() == h.shape[1]:  # one example (an epoch's last batch): the kernel refuses it
        # h − mean is 0 and so is the variance: the output is the shift, as Keras' BatchNorm gives (written
        # out, so that the layers below stay in the graph with zero gradients)
        scale = params[f"{name}.bn.weight"].reshape(1, -1) / math.sqrt(BN_EPS)
        out = (h - h.mean(0, keepdim=True)) * scale + params[f"{name}.bn.bias"].reshape(1, -1)
        return out, {
            f"{name}.bn.running_mean": momentum * mean + (1 - momentum) * h.detach().view(shape),
            f"{name}.bn.running_var": momentum * var,
        }
    if train:  # the kernel updates the running statistics in place: it gets copies, returned as the update
        mean, var = mean.flatten().clone(), var.flatten().clone()
    else:
        mean, var = mean.flatten(), var.flatten()
    out = F.batch_norm(
        h, mean, var, params[f"{name}.bn.weight"].flatten(), params[f"{name}.bn.bias"].flatten(),
        training=train, momentum=1 - momentum, eps=BN_EPS,
    )  # fmt: skip
    if not train:
        return out, {}
    return out, {f"{name}.bn.running_mean": mean.view(shape), f"{name}.bn.running_var": var.view(shape)}


def _dense(h, params, name, *, relu: bool = False):
    """Dense layer `name` of every seed: h (S or 1, B, in) · W (S, in, out) + bias, through a ReLU if `relu`
    (products.dense)."""
    return dense(h, params[f"{name}.weight"], params[f"{name}.bias"], relu=relu)


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
            h = _dense(h, params, f"fc{i}", relu=True)
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
        h, upd = _batch_norm(h, params, buffers, f"conv{i}", train=train, momentum=arch.bn_momentum)
        new_buffers.update(upd)
        h = F.max_pool2d(torch.relu(h).contiguous(memory_format=layout), 3, stride=2, padding=1)
    h = h.reshape(B, S, -1).transpose(0, 1)  # (S, B, features), each seed's features in (C, H, W) order
    for i in range(len(arch.dense)):
        h = _dense(h, params, f"fc{i}")
        units = h.shape[-1]
        h, upd = _batch_norm(
            h.transpose(0, 1).reshape(B, S * units), params, buffers, f"fc{i}", train=train, momentum=arch.bn_momentum
        )
        new_buffers.update(upd)
        h = torch.relu(h.view(B, S, units).transpose(0, 1))
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
        # logsumexp z − z_y: 3.6x faster on a CPU than F.cross_entropy's log-softmax along a 10-wide axis
        # (56,000 rows of 10 logits, measured), equal to it within a float32 rounding
        return (torch.logsumexp(flat, 1) - flat.gather(1, y.unsqueeze(1)).squeeze(1)).view(S, B)
    if kind == "smoothed_log":
        # p_y = exp(z_y − logsumexp z), z_y by a one-hot product: the replay's curvature of a CNN
        # differentiates this twice under vmap (memorization.engine.curvature), where softmax's and gather's backward
        # have no batching rule and run one row at a time; logsumexp and products batch.
        z_y = (flat * F.one_hot(y, K).to(flat.dtype)).sum(1)
        p_y = torch.exp(z_y - torch.logsumexp(flat, dim=1))
        return (-torch.log(0.1 + p_y) / K).view(S, B)
    raise ValueError(f"unknown loss {kind!r}")
