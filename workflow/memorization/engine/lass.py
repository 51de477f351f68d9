"""Langevin Adversarial Sample Search (docs/science.md §3.5, Algorithm 1) and the critical sample ratio.

A point x is critical if some x̂ with ‖x̂ − x‖∞ ≤ r changes the model's *own* prediction at x. LASS climbs
the cross-entropy of that predicted class from the current point with sign-gradient steps plus Gaussian
noise, projecting back into the L∞ box after each step, until the prediction flips or the iteration cap.

Written here rather than taken from an attack library: none of torchattacks, foolbox, advertorch or ART
stops per example on a flip of the model's own prediction while adding Langevin noise. One implementation
serves the CSR metric and adversarial training.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class LassResult:
    critical: torch.Tensor  # bool (n,): the prediction flipped within the box
    x_hat: torch.Tensor  # (n, ...): the point that flipped it (critical) or the last point tried
    iterations: torch.Tensor  # int (n,): iteration of the first flip, 0 if none


def lass(
    predict: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    *,
    alpha: float,
    beta: float,
    r: float,
    max_iter: int = 100,
    stop: str = "example",
    global_min_new: int = 20,
    seed: int = 0,
    batch_size: int = 4096,
) -> LassResult:
    """LASS on a batch of points, in the model's input units (see `csr` for the 0–255 conversion).

    predict: eval-mode logits (n, C) of inputs (n, ...), differentiable with respect to the input.
    stop: "example" (Algorithm 1: each point stops at its first flip; finished points are frozen and the
    active set shrinks) or "global" (the authors' code: every point keeps moving, and the search ends when
    an iteration finds fewer than `global_min_new` new critical points).
    """
    if stop not in ("example", "global"):
        raise ValueError(f"unknown LASS stop rule {stop!r}; 'example' or 'global'")
    gen = torch.Generator(device=x.device).manual_seed(seed)

    def logits_and_gradient(points, labels, gradient: bool = True):
        """Logits at the points and the gradient of the labels' cross-entropy there, in chunks: one
        forward pass serves both the flip test of one iteration and the step of the next."""
        logits, grads = [], []
        for chunk in range(0, len(points), batch_size):
            xa = points[chunk : chunk + batch_size].detach().requires_grad_(gradient)
            with torch.enable_grad() if gradient else torch.no_grad():
                z = predict(xa)
                y = z.argmax(1) if labels is None else labels[chunk : chunk + batch_size]
                if gradient:
                    grads.append(torch.autograd.grad(F.cross_entropy(z, y, reduction="sum"), xa)[0])
            logits.append(z.detach())
        logits = torch.cat(logits) if logits else torch.empty(0, device=points.device)
        return logits, (torch.cat(grads) if gradient and grads else None)

    z0, grads = logits_and_gradient(x, None)  # the prediction to flip, and the first step's gradient
    y0 = z0.argmax(1) if len(x) else torch.zeros(0, dtype=torch.long, device=x.device)
    x_tilde, x_hat = x.clone(), x.clone()
    critical = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    iterations = torch.zeros(len(x), dtype=torch.long, device=x.device)
    active = torch.arange(len(x), device=x.device)
    for it in range(1, max_iter + 1):
        if len(active) == 0:
            break
        with torch.no_grad():
            step = alpha * grads.sign() + beta * torch.randn(
                (len(active), *x.shape[1:]), generator=gen, device=x.device, dtype=x.dtype
            )
            origin = x[active]
            moved = torch.maximum(torch.minimum(x_tilde[active] + step, origin + r), origin - r)  # L∞ box
            x_tilde[active] = moved
        logits, grads = logits_and_gradient(moved, y0[active], gradient=it < max_iter)
        with torch.no_grad():
            flipped = logits.argmax(1) != y0[active]
            new = active[flipped & ~critical[active]]
            critical[new] = True
            iterations[new] = it
            x_hat[new] = x_tilde[new]
            if stop == "example":
                active = active[~flipped]  # freeze finished points: compact the active set
                grads = grads[~flipped] if grads is not None else None
            elif len(new) < global_min_new:
                break
    with torch.no_grad():
        x_hat[~critical] = x_tilde[~critical]
    return LassResult(critical, x_hat, iterations)


def to_input_units(value_255: float, pixel_range: float) -> float:
    """A distance on the 0–255 pixel scale in the model's input units (pixel_range: the width of the pixel
    range in input units, 1 for [0, 1] inputs)."""
    return value_255 / 255.0 * pixel_range


def csr(
    predict,
    x: torch.Tensor,
    *,
    r: float,
    alpha: float,
    beta: float,
    pixel_range: float = 1.0,
    max_iter: int = 100,
    stop: str = "example",
    global_min_new: int = 20,
    seed: int = 0,
) -> dict:
    """Critical sample ratio of the points x; r, alpha, beta on the 0–255 scale. Returns the ratio with
    everything needed to interpret it."""
    res = lass(
        predict,
        x,
        alpha=to_input_units(alpha, pixel_range),
        beta=to_input_units(beta, pixel_range),
        r=to_input_units(r, pixel_range),
        max_iter=max_iter,
        stop=stop,
        global_min_new=global_min_new,
        seed=seed,
    )
    n_critical = int(res.critical.sum())
    return {
        "csr": n_critical / max(1, len(x)),
        "n_points": len(x),
        "n_critical": n_critical,
        "mean_iterations": float(res.iterations[res.critical].float().mean()) if n_critical else float("nan"),
        "max_distance": float((res.x_hat - x).abs().max()) / max(pixel_range, 1e-12) * 255.0 if len(x) else 0.0,
        "lass_r": r,
        "lass_alpha": alpha,
        "lass_beta": beta,
        "lass_max_iter": max_iter,
        "lass_stop": stop,
    }
