"""The curvature of one training step's batch loss along many directions at once: the product of its Hessian
with R parameter directions a, over the parameters (H_ww·a) and over the batch's inputs (H_xw·a). The
loss-sensitivity replay carries one cotangent per output row back through every SGD step; a step's
transpose needs exactly these two products for every row (sgd.sgd_step_vjp_).

The loss is the training step's: Σ_s mean_b ℓ(z_{s,b}, y_{s,b}), every seed's model on its own batch, so the
Hessian is block-diagonal over seeds. Directions and results carry the seed axis first and the rows second:
(S, R, ...), so the rows of one seed are contiguous and the active rows of a sweep are a slice (a view).

Two implementations, one answer (tests/test_curvature.py checks them against each other in float64):
- the MLP's products written out (forward-over-reverse by hand): every row is one more matrix beside the
  batch in the same products, and the loss's Hessian along a direction is a rank-one correction plus one
  element-wise product instead of the dozen passes over (rows x batch x classes) that autograd's generic
  double backward makes; on the digits identity-label set-up (1,000 classes) that pass count is the cost,
  since each is bound by memory bandwidth, not arithmetic;
- any other model (the CNN, BatchNorm) by torch.func: the reverse-mode product of the gradient, vmapped over
  the rows.
"""

from __future__ import annotations

import torch

from .backprop import MLPPass, mlp_pass, relu_backward, written_out
from .models import Arch, example_losses, forward

# Rows are taken in blocks of this many, so that a block's tangents and cotangents stay in cache between the
# products (the digits identity-label set-up, 256 rows, 2 cores: in blocks of 32, 54 ms; in one block, 91 ms,
# measured before the logits' tangent had its reused buffer; with it, blocks of 16 to 128 are within this
# VM's noise of each other, 44-48 ms at best).
ROW_BLOCK = 32


def add_loss_hvp_(out: dict, arch: Arch, params: dict, buffers: dict, x, y, loss: str, noise, directions: dict):
    """out[k] += (H_ww·a)[k] for every parameter k, and return H_xw·a: (S, R, B, *input shape).

    params: (S, ...) the step's parameters; x (S, B, ...) and y (S, B) its batches; noise: its
    regularizers.LayerNoise or None; directions and out: {name: (S, R, *shape)}, out written in place."""
    if written_out(arch, loss):
        return _mlp_hvp_(out, arch, params, buffers, x, y, loss, noise, directions)
    return _autograd_hvp_(out, arch, params, buffers, x, y, loss, noise, directions)


@torch.no_grad()  # torch.func's transforms differentiate inside it; their outputs then carry no graph
def _autograd_hvp_(out, arch, params, buffers, x, y, loss, noise, directions):
    """H·a = ∂⟨∇_w L, a⟩/∂(w, x): the vector-Jacobian product of the gradient, one vmapped row per direction.
    (Without no_grad its outputs would require grad, and the replay's cotangents and Jacobian rows, which
    accumulate them, would keep a graph of every step swept.)"""

    def total(p, xb):
        logits, _ = forward(arch, p, buffers, xb, train=True, noise=noise.again() if noise else None)
        return example_losses(logits, y, loss).mean(1).sum()

    if noise is not None:  # draw the step's masks once, outside the transforms
        with torch.no_grad():
            total(params, x)
    _, pullback = torch.func.vjp(torch.func.grad(total), params, x)
    hw, hx = torch.func.vmap(pullback, in_dims=1, out_dims=1)(directions)
    torch._foreach_add_([out[k] for k in hw], [hw[k] for k in hw])
    return hx


def _mlp_hvp_(out, arch, params, buffers, x, y, loss, noise, directions):  # noqa: ARG001 (no BatchNorm)
    """The MLP's H·a written out, over the training pass (backprop.mlp_pass: z_l = h_l W_l + b_l, a_l =
    relu(z_l), h_{l+1} = noise(a_l), δ_l = ∂L/∂z_l). The tangent along a = (A_l, a_l) is dz_l = h_l A_l + a_l +
    dh_l W_l; the gradient's tangent is then dG_l = h_lᵀ dδ_l + dh_lᵀ δ_l and dδh_l = dδ_l W_lᵀ + δ_l A_lᵀ
    (ReLU's second derivative is zero), and at the loss dδ = c·p⊙(dz − p·dz) + dc·(p − e_y). Rows are folded
    into the products' outer dimensions, seed by seed."""
    S = y.shape[0]
    n = len(arch.hidden)
    rows = next(iter(directions.values())).shape[1]
    step = mlp_pass(arch, params, x, y, loss, noise)

    def linear(site, s, t):
        return noise.linear(site, s, t) if noise else t

    hx = [[] for _ in range(S)]
    for s in range(S):
        for first in range(0, rows, ROW_BLOCK):
            block = slice(first, first + ROW_BLOCK)
            A = [directions[f"fc{layer}.weight"][s, block] for layer in range(n + 1)]
            a = [directions[f"fc{layer}.bias"][s, block] for layer in range(n + 1)]
            lam = {k: v[s, block] for k, v in out.items()}
            hx[s].append(_mlp_rows_(lam, s, params, step, y, A, a, x.shape[1:], linear))
    return torch.stack([torch.cat(h) for h in hx])


def _mlp_rows_(lam, s, params, step: MLPPass, y, A, a, batch_shape, linear):
    """One seed's H·a for a block of rows: lam (its out) += H_ww·a, returns H_xw·a (R, B, ...)."""
    n = len(A) - 1
    W = [params[f"fc{layer}.weight"][s] for layer in range(n + 1)]
    h = [step.inputs[layer][s] for layer in range(n + 1)]
    active = [step.active[layer][s] for layer in range(n)]
    # the tangent of the forward pass up to the last hidden layer, (R, B, units)
    tangents = [None]
    for layer in range(n):
        dz = _preactivation_tangent(h[layer], tangents[layer], W[layer], A[layer], a[layer])
        tangents.append(linear(layer + 1, s, relu_backward(dz, active[layer])))
    dz = _preactivation_tangent(h[n], tangents[n], W[n], A[n], a[n], out=_scratch)
    dd = _loss_tangent_(dz, step.p[s], step.c[s], y[s], None if step.dc_dpy is None else step.dc_dpy[s])
    # back through the layers: dG_l = h_lᵀ dδ_l + dh_lᵀ δ_l into lam, dδh_l = dδ_l W_lᵀ + δ_l A_lᵀ
    back = None  # dδh of the layer above
    for layer in reversed(range(n + 1)):
        if back is not None:
            dd = relu_backward(linear(layer + 1, s, back), active[layer])
        delta, lam_w, rows, B = step.deltas[layer][s], lam[f"fc{layer}.weight"], *dd.shape[:2]
        lam_w.baddbmm_(h[layer].T.expand(rows, *h[layer].T.shape), dd)
        if tangents[layer] is not None:
            lam_w.baddbmm_(tangents[layer].transpose(1, 2), delta.expand(rows, *delta.shape))
        lam[f"fc{layer}.bias"].add_(dd.sum(1))
        i = W[layer].shape[0]
        back = torch.mm(dd.view(rows * B, -1), W[layer].T).view(rows, B, i)
        back += torch.mm(A[layer].reshape(rows * i, -1), delta.T).view(rows, i, B).transpose(1, 2)
    return linear(0, s, back.view(rows, *batch_shape))


def _preactivation_tangent(h, dh, W, A, a, out=None):
    """A dense layer's pre-activation tangent dz = hA + a + dh W for every row (R, B, units); dh None at the
    first layer (the inputs have no tangent). out: a function of (shape, like) giving the buffer to write into."""
    rows, (B, i) = A.shape[0], h.shape
    buffer = out((rows, B, W.shape[1]), W) if out else None
    dz = torch.baddbmm(a.unsqueeze(1), h.expand(rows, B, i), A, out=buffer)
    if dh is not None:
        dz.view(rows * B, -1).addmm_(dh.reshape(rows * B, -1), W)
    return dz


def _loss_tangent_(dz, p, c, y, dc_dpy):
    """The tangent of δ = ∂L/∂z at the loss, in place of the logits' tangent dz (R, B, classes), the one large
    tensor of a step: dδ = c·p⊙dz + u⊗p + v⊗e_y with u = dc − c·(p·dz), v = −dc (dc = 0 for cross-entropy)."""
    rows, B = dz.shape[:2]
    at_y = y.expand(rows, B).unsqueeze(2)
    dz_y = dz.gather(2, at_y).squeeze(2)
    dd = dz.mul_(p)
    p_dz = dd.sum(2)  # (R, B)
    u = -c.T * p_dz
    if dc_dpy is not None:  # smoothed_log: c depends on p_y
        dc = dc_dpy.T * (p.gather(1, y[:, None]).T * (dz_y - p_dz))
        u = u + dc
    dd.mul_(c).addcmul_(u.unsqueeze(2), p)
    if dc_dpy is not None:
        dd.scatter_add_(2, at_y, -dc.unsqueeze(2))
    return dd


_SCRATCH: dict = {}


def _scratch(shape, dz_like: torch.Tensor) -> torch.Tensor:
    """A reused buffer for the logits' tangent, the one large tensor of a step: a fresh one of tens of MB per
    step costs more in page faults on a CPU than the products that fill it."""
    key = (dz_like.dtype, dz_like.device)
    numel = shape[0] * shape[1] * shape[2]
    if key not in _SCRATCH or _SCRATCH[key].numel() < numel:
        _SCRATCH[key] = torch.empty(numel, dtype=dz_like.dtype, device=dz_like.device)
    return _SCRATCH[key][:numel].view(shape)
