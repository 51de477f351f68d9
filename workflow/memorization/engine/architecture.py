"""What a network looks like, without torch: the architecture of a run (`Arch`) and its parameters' shapes.
The models (memorization.engine.models) compute with it; the plan sizes jobs with it (their memory and time) where
Snakemake reads the workflow, which must not import torch."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import RunSpec


@dataclass(frozen=True)
class Arch:
    """What the network looks like; built from a run spec and the data's shape."""

    kind: str  # mlp | cnn
    in_shape: tuple[int, int, int]  # (C, H, W)
    n_classes: int
    hidden: tuple[int, ...] = ()  # mlp: widths of the hidden layers
    channels: int = 0  # cnn: filters of each 5x5 convolution
    dense: tuple[int, ...] = ()  # cnn: dense layer widths
    crop: int = 0  # cnn: pixels removed from each border (the paper's Crop(2,2))
    bn_momentum: float = 0.99  # cnn: Keras' BatchNorm momentum, the weight of the old running statistics

    @classmethod
    def from_spec(cls, spec: RunSpec, in_shape, n_classes: int) -> Arch:
        if spec.arch == "mlp":
            return cls("mlp", tuple(in_shape), n_classes, hidden=(spec.width,) * spec.depth)
        return cls(
            "cnn",
            tuple(in_shape),
            n_classes,
            channels=spec.cnn_channels,
            dense=tuple(spec.cnn_dense),
            crop=spec.crop,
            bn_momentum=spec.batchnorm_momentum,
        )

    def cnn_flat_features(self) -> int:
        c, h, w = self.in_shape
        h, w = h - 2 * self.crop, w - 2 * self.crop
        for _ in range(2):  # "same" 5x5 convs keep the size; 3x3 max-pools with stride 2, padding 1 halve it
            h, w = (h - 1) // 2 + 1, (w - 1) // 2 + 1
        return self.channels * h * w


def layer_shapes(arch: Arch) -> dict[str, tuple[int, ...]]:
    """Parameter shapes of one model, in initialisation order. Dense weights are (in, out)."""
    shapes: dict[str, tuple[int, ...]] = {}
    if arch.kind == "mlp":
        widths = [math.prod(arch.in_shape), *arch.hidden, arch.n_classes]
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
            shapes[f"fc{i}.weight"], shapes[f"fc{i}.bias"] = (a, b), (b,)
        return shapes
    c = arch.in_shape[0]
    for i, c_in in enumerate((c, arch.channels)):
        shapes[f"conv{i}.weight"], shapes[f"conv{i}.bias"] = (arch.channels, c_in, 5, 5), (arch.channels,)
        shapes[f"conv{i}.bn.weight"], shapes[f"conv{i}.bn.bias"] = (arch.channels,), (arch.channels,)
    widths = [arch.cnn_flat_features(), *arch.dense, arch.n_classes]
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        shapes[f"fc{i}.weight"], shapes[f"fc{i}.bias"] = (a, b), (b,)
        if i < len(arch.dense):
            shapes[f"fc{i}.bn.weight"], shapes[f"fc{i}.bn.bias"] = (b,), (b,)
    return shapes


def params_per_model(arch: Arch) -> int:
    return sum(math.prod(shape) for shape in layer_shapes(arch).values())


def activations_per_example(arch: Arch) -> int:
    """Values one example's forward pass produces, summed over the layers (for sizing a job's memory)."""
    if arch.kind == "mlp":
        return sum(arch.hidden) + arch.n_classes
    _, h, w = arch.in_shape
    h, w = h - 2 * arch.crop, w - 2 * arch.crop
    return arch.channels * (h * w + (h * w) // 4) * 2 + sum(arch.dense) + arch.n_classes
