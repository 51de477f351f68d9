"""Explicit regularisers of the paper's §5 (docs/science.md §5): what each does to a training step.

Where the stochastic layers sit (the paper does not say): input dropout and input Gaussian noise act on
the network's input; dropout and hidden Gaussian noise act after every hidden dense layer (after its
ReLU; in the CNN that is the dense part, the usual AlexNet placement). Dropout is inverted (kept units are
scaled by 1/(1 − rate)), so evaluation needs no rescaling. All of them act in training forward passes only:
evaluation, CSR and LASS always see the deterministic network.

Their randomness comes from a generator per (seed, step), like the batches: a seed's masks do not depend on
which seeds share its job, a resumed run draws the same masks, and the loss-sensitivity replay can redraw
exactly the masks of any training step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from .models import seed_for

if TYPE_CHECKING:
    from ..config import RunSpec


@dataclass(frozen=True)
class Regularizer:
    kind: str = "none"
    strength: float = 0.0
    adversarial_weight: float = 0.0
    adversarial_r: float = 0.0  # LASS settings on the 0–255 scale, as the CSR metric's
    adversarial_alpha: float = 0.0
    adversarial_beta: float = 0.0
    adversarial_max_iter: int = 0

    @classmethod
    def from_spec(cls, spec: RunSpec) -> Regularizer:
        kind = spec.regularizer
        if kind != "dropout_adversarial":
            return cls(kind, float(spec.reg_strength))
        return cls(
            kind,
            float(spec.reg_strength),
            spec.adversarial_weight,
            spec.adversarial_r,
            spec.adversarial_alpha,
            spec.adversarial_beta,
            spec.adversarial_max_iter,
        )

    @property
    def weight_decay(self) -> float:
        return self.strength if self.kind == "weight_decay" else 0.0

    @property
    def dropout(self) -> float:
        return self.strength if self.kind in ("dropout", "dropout_adversarial") else 0.0

    @property
    def input_dropout(self) -> float:
        return self.strength if self.kind == "input_dropout" else 0.0

    @property
    def input_std(self) -> float:
        return self.strength if self.kind == "input_noise" else 0.0

    @property
    def hidden_std(self) -> float:
        return self.strength if self.kind == "hidden_noise" else 0.0

    @property
    def adversarial(self) -> bool:
        return self.kind == "dropout_adversarial" and self.adversarial_weight > 0

    @property
    def stochastic(self) -> bool:
        """Whether a training forward pass draws random numbers."""
        return bool(self.dropout or self.input_dropout or self.input_std or self.hidden_std)


NONE = Regularizer()


class LayerNoise:
    """The random draws of the stochastic layers of one training step, for a group of seeds stacked on the
    leading axis. Draws happen in forward order; a new LayerNoise for the same (seeds, step) redraws the
    same numbers."""

    def __init__(self, reg: Regularizer, seeds, step: int, device):
        self.reg = reg
        self.gens = [torch.Generator(device=device).manual_seed(seed_for(s, "regularizer", step)) for s in seeds]
        # Every draw is kept, so a forward pass can be repeated with the same numbers (`again`): inside
        # torch.func's transforms, which the replay's curvature runs the pass under, random draws are refused.
        self._drawn: list[torch.Tensor] = []
        self._next = 0
        self.sites: list[tuple[torch.Tensor | None, float]] = []  # per layer of this pass: (dropout's keep mask, rate)

    def again(self) -> LayerNoise:
        """The same draws once more, from the first layer."""
        self._next, self.sites = 0, []
        return self

    def _draw(self, like: torch.Tensor, sample) -> torch.Tensor:
        """One draw per seed of `sample` (torch.rand or torch.randn) in the shape and dtype of `like`."""
        if like.shape[0] != len(self.gens):
            raise ValueError(f"noise for {len(self.gens)} seeds, tensor has {like.shape[0]} on its seed axis")
        if self._next == len(self._drawn):
            self._drawn.append(
                torch.stack(
                    [sample(like.shape[1:], generator=g, device=like.device, dtype=like.dtype) for g in self.gens]
                )
            )
        self._next += 1
        return self._drawn[self._next - 1]

    def _perturb(self, h: torch.Tensor, rate: float, std: float) -> torch.Tensor:
        """Inverted dropout at `rate`, then additive Gaussian noise of `std` (each only when non-zero)."""
        keep = self._draw(h, torch.rand) >= rate if rate else None
        self.sites.append((keep, rate))
        if rate:
            h = h * keep / (1.0 - rate)
        if std:
            h = h + std * self._draw(h, torch.randn)
        return h

    def linear(self, site: int, seed, t: torch.Tensor) -> torch.Tensor:
        """The derivative of this pass's perturbation number `site` (in forward order) for the seed at position
        `seed` (or a slice of seeds), applied to tangents t (..., *that layer's output from its seed axis on,
        less that axis for one seed): dropout's mask and scale; additive noise has no derivative."""
        keep, rate = self.sites[site]
        return t if keep is None else t * keep[seed] / (1.0 - rate)

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        """x: (S, B, ...) one batch per seed."""
        return self._perturb(x, self.reg.input_dropout, self.reg.input_std)

    def hidden(self, h: torch.Tensor) -> torch.Tensor:
        """h: (S, B, units), the output of a hidden dense layer after its ReLU."""
        return self._perturb(h, self.reg.dropout, self.reg.hidden_std)


def layer_noise(reg: Regularizer, seeds, step: int, device) -> LayerNoise | None:
    """The noise of one training step, or None for a deterministic network."""
    return LayerNoise(reg, seeds, step, device) if reg.stochastic else None


def adversarial_mix(clean: torch.Tensor, adversarial: torch.Tensor, critical: torch.Tensor, weight: float):
    """Per-example losses of adversarial training: (1 − w)·ℓ(x) + w·ℓ(x̂) for critical samples, ℓ(x) for the
    others (they have no adversarial point). Our choice; the paper leaves the mix open (docs/science.md §5)."""
    w = weight * critical.to(clean.dtype)
    return (1 - w) * clean + w * adversarial
