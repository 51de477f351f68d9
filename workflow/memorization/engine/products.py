"""The engine's batched matrix products, each written once with the kernel it runs on: a dense layer's
forward product with its bias, the backward product through a layer's weights, and a kernel's gradient
added into the weights or the momentum. Every tensor has a leading seed axis S.

On a CPU they run in oneDNN (memorization.engine.onednn) wherever it is installed and no gradient flows through
them; otherwise in torch, where a product with few output columns is computed as its transpose (NARROW).
"""

from __future__ import annotations

import torch

from . import onednn

# A product whose output has fewer columns than this runs 3-4x slower in its row-major form in MKL (it packs
# the output's rows into 16-float vector registers: with 10 classes most of each lane is wasted) than its
# transpose, (Wᵀ hᵀ)ᵀ, computed with the same operands as views; measured on 2 cores at 2 to 100 seeds.
# oneDNN needs no such form: it computes the 10 logits directly 2x faster than MKL's transposed product.
NARROW = 16


# A product of fewer multiply-adds than this runs faster in torch: a oneDNN call costs 5-10 µs more in Python
# and ctypes (measured on 2 cores: the crossover lies between 2 seeds of width 96 and 128 at batch 32).
ONEDNN_MIN_MACS = 1 << 20


def _in_onednn(macs: int, *tensors: torch.Tensor) -> bool:
    """Whether a product of `macs` multiply-adds over these tensors runs in oneDNN."""
    return macs >= ONEDNN_MIN_MACS and onednn.usable(*tensors)


def narrow(out_features: int) -> bool:
    """Whether torch computes a product with this many output columns as its transpose (NARROW)."""
    return out_features < NARROW


def dense(h: torch.Tensor, w: torch.Tensor, bias: torch.Tensor, *, relu: bool = False) -> torch.Tensor:
    """h (S or 1, B, in) · w (S, in, out) + bias (S, out), through a ReLU if `relu`: (S, B, out). The bias
    and the ReLU act inside the product in oneDNN, in place on its output in torch (one pass over the output
    instead of three); a shared input (1, B, in) is broadcast over the seeds."""
    if _in_onednn(w.shape[0] * h.shape[1] * w.shape[1] * w.shape[2], h, w, bias):
        out = onednn.matmul(h, w, bias=bias, relu=relu)
        if out is not None:
            return out
    h = h.expand(w.shape[0], -1, -1)
    if narrow(w.shape[2]):
        # made contiguous (a copy of B·out numbers per seed): the softmax, argmax and gathers that read the
        # logits along their last axis run 3x slower on the transposed view
        out = torch.baddbmm(bias.unsqueeze(2), w.mT, h.mT).mT.contiguous()
    else:
        out = torch.baddbmm(bias.unsqueeze(1), h, w)
    return out.relu_() if relu else out


def through_weights(delta: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """delta (S, B, out) · wᵀ (w: (S, in, out)): the backward product, (S, B, in)."""
    if _in_onednn(delta.numel() * w.shape[1], delta, w):
        out = onednn.matmul(delta, w.mT)
        if out is not None:
            return out
    return torch.bmm(delta, w.mT)


def outer(h: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """hᵀ δ (h: (S, B, in), δ: (S, B, out)): a dense kernel's gradient, (S, in, out)."""
    return torch.bmm(h.mT, delta)


def add_outer_(out: torch.Tensor, h: torch.Tensor, delta: torch.Tensor, *, beta: float = 1.0, alpha: float = 1.0):
    """out ← β·out + α·hᵀδ in place, inside one product (the gradient is never written out and read back)."""
    macs = out.numel() * h.shape[1]
    if _in_onednn(macs, out, h, delta) and onednn.matmul(h.mT, delta, out, alpha=alpha, beta=beta) is not None:
        return
    if not narrow(delta.shape[2]):
        out.baddbmm_(h.mT, delta, beta=beta, alpha=alpha)
        return
    # a narrow kernel through the transposed product δᵀh, 3x faster than hᵀδ there even with its extra pass
    if beta != 1.0:
        out.mul_(beta)
    out.add_(torch.bmm(delta.mT, h).mT, alpha=alpha)
