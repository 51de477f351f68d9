"""The gradient of one training step's batch loss, Σ_s mean_b ℓ(z_{s,b}, y_{s,b}) (every seed's model on its
own batch): for the MLP written out, for any other model by autograd. The training step, the
loss-sensitivity replay's re-stepping (both through sgd.train_step) and the replay's curvature
(memorization.engine.curvature, which reads the written-out pass's activations and backward errors) share it.

Why by hand for the MLP: at the default's 2 seeds of 64-256-256-10 and batch 32 a step's products are a few
microseconds each, and autograd's bookkeeping around them (the graph, the saved tensors, the gradients'
accumulation) cost as much again; the pass written out is a dozen operations (measured: 1.0 ms a step by
autograd, 0.7 ms written out, the same parameters to the last bit after three epochs). tests/test_backprop.py
checks it against autograd for both losses and every stochastic layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .models import Arch, _dense, example_losses, forward
from .products import add_outer_, outer, through_weights

WRITTEN_OUT_LOSSES = ("cross_entropy", "smoothed_log")


def written_out(arch: Arch, loss: str) -> bool:
    """Whether the step's gradient and curvature are written out (the MLP, either loss) or left to autograd."""
    return arch.kind == "mlp" and not arch.crop and loss in WRITTEN_OUT_LOSSES


@dataclass(frozen=True)
class OuterProduct:
    """A dense kernel's gradient hᵀδ (h: (S, B, in) the layer's inputs, δ: (S, B, out) its backward errors),
    kept as its two factors: the in-place update adds it into the momentum or the weights inside one batched
    product (`baddbmm_`), so the gradient is never written out and read back (the MLP's written-out
    gradient gives its kernels' this way: 1.3x faster steps at 2 seeds and at 100, measured)."""

    h: torch.Tensor
    delta: torch.Tensor

    def dense(self) -> torch.Tensor:
        return outer(self.h, self.delta)

    def add_to_(self, out: torch.Tensor, *, beta: float = 1.0, alpha: float = 1.0) -> None:
        """out ← β·out + α·hᵀδ in place (products.add_outer_)."""
        add_outer_(out, self.h, self.delta, beta=beta, alpha=alpha)


def dense_gradients(grads: dict) -> dict:
    """The gradients with every OuterProduct multiplied out."""
    return {k: g.dense() if isinstance(g, OuterProduct) else g for k, g in grads.items()}


@dataclass
class MLPPass:
    """One training forward and backward pass of the MLP, z_l = h_l W_l + b_l, a_l = relu(z_l), h_{l+1} =
    noise(a_l): what its gradient and the curvature along any direction are made of. Per layer l (the
    output layer last), (S, B, units) tensors."""

    inputs: list[torch.Tensor]  # h_l, the input of dense layer l (after the layer below's ReLU and noise)
    active: list[torch.Tensor]  # a_l of the hidden layers, before their noise: ReLU's derivative is a_l > 0
    logits: torch.Tensor
    losses: torch.Tensor  # (S, B) per-example losses
    p: torch.Tensor  # softmax of the logits
    c: torch.Tensor  # (S, B, 1): ∂L/∂z = c·(p − e_y), the batch mean included
    dc_dpy: torch.Tensor | None  # dc/dp_y (smoothed_log's c depends on p_y), the batch mean included
    deltas: list[torch.Tensor]  # δ_l = ∂L/∂z_l

    def gradients(self) -> dict:
        """∂L/∂W_l = h_lᵀ δ_l (kept as its factors, an OuterProduct) and ∂L/∂b_l = Σ_b δ_l, for every seed."""
        grads = {}
        for layer, (h, delta) in enumerate(zip(self.inputs, self.deltas)):
            grads[f"fc{layer}.weight"] = OuterProduct(h, delta)
            grads[f"fc{layer}.bias"] = delta.sum(1)
        return grads


def relu_backward(t: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
    """t where the ReLU's output `active` is positive, else 0 (broadcast over t's leading axes): one pass,
    where a product with a boolean mask converts the mask to floats first."""
    return torch.ops.aten.threshold_backward(t, active, 0)


def mlp_pass(arch: Arch, params: dict, x: torch.Tensor, y: torch.Tensor, loss: str, noise) -> MLPPass:
    """The MLP's training pass on batches x (S, B, ...) and labels y (S, B), with the step's noise (a
    regularizers.LayerNoise, its draws repeated from the first layer) or None. The forward pass is
    models.forward's, operation for operation."""
    n = len(arch.hidden)
    noise = noise.again() if noise is not None else None
    h = (noise.inputs(x) if noise is not None else x).flatten(start_dim=2)
    inputs, active = [h], []
    for layer in range(n):
        a = _dense(h, params, f"fc{layer}", relu=True)
        active.append(a)
        h = noise.hidden(a) if noise is not None else a
        inputs.append(h)
    logits = _dense(h, params, f"fc{n}")
    losses, p, c, dc_dpy = _loss_head(logits, y, loss)
    deltas = [None] * (n + 1)
    deltas[n] = _output_error(p, c, y)
    for layer in reversed(range(n)):
        back = through_weights(deltas[layer + 1], params[f"fc{layer + 1}.weight"])
        if noise is not None:
            back = noise.linear(layer + 1, slice(None), back)
        deltas[layer] = relu_backward(back, active[layer])
    return MLPPass(inputs, active, logits, losses, p, c, dc_dpy, deltas)


def _loss_head(logits: torch.Tensor, y: torch.Tensor, loss: str):
    """Per-example losses and, for ∂L/∂z = c·(p − e_y) and its derivative, p, c and dc/dp_y (None for
    cross-entropy, whose c is 1/B); c and dc/dp_y carry the batch mean's 1/B.
    smoothed_log ℓ = −log(0.1 + p_y)/C: c = p_y / (C(0.1 + p_y)), dc/dp_y = 0.1 / (C(0.1 + p_y)²)."""
    B, C = logits.shape[1], logits.shape[-1]
    at_y = y.unsqueeze(2)
    lse = torch.logsumexp(logits, -1, keepdim=True)  # as models.example_losses: faster than log_softmax
    p = (logits - lse).exp_()
    if loss == "cross_entropy":
        return (lse - logits.gather(2, at_y)).squeeze(2), p, torch.full_like(p[..., :1], 1.0 / B), None
    p_y = p.gather(2, at_y)
    losses = (-torch.log(0.1 + p_y) / C).squeeze(2)
    return losses, p, p_y / (C * (0.1 + p_y)) / B, 0.1 / (C * (0.1 + p_y) ** 2) / B


def _output_error(p: torch.Tensor, c: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """δ = c·(p − e_y): c·p with −c added at the labels (a scatter of S·B entries, no one-hot tensor)."""
    delta = p * c
    return delta.scatter_add_(2, y.unsqueeze(2), -c)


def loss_gradients(arch: Arch, params: dict, buffers: dict, x, y, loss: str, noise):
    """(gradients, per-example losses (S, B), logits, updated BatchNorm buffers) of one training step's batch
    loss; params are the step's (S, ...) tensors, not modified."""
    if written_out(arch, loss):
        step = mlp_pass(arch, params, x, y, loss, noise)
        return step.gradients(), step.losses, step.logits, {}  # no BatchNorm

    def losses_of(leaves):
        logits, new_buffers = forward(arch, leaves, buffers, x, train=True, noise=noise)
        return example_losses(logits, y, loss), logits, new_buffers

    return by_autograd(params, losses_of)


def by_autograd(params: dict, losses_of):
    """loss_gradients by autograd of losses_of(params) -> (per-example losses (S, B), logits, buffers)."""
    leaves = {k: v.detach().requires_grad_(True) for k, v in params.items()}
    with torch.enable_grad():
        losses, logits, new_buffers = losses_of(leaves)
        # summed over seeds: each seed gets the gradient of its solo run
        grads = torch.autograd.grad(losses.mean(1).sum(), list(leaves.values()))
    return dict(zip(leaves, grads)), losses.detach(), logits.detach(), new_buffers
