"""A run's spec, typed: every setting of one training configuration (data set, noise, model, optimiser,
training length, regulariser, checkpoints) and its seeds, fully resolved from the config once and read by attribute.

Its id is a short hash of the canonical spec with the schema's default values left out, so that adding an
option with a default does not rename (and retrain) old runs; int and float spellings of a number are one
value. A noisy data set gets an id the same way from its data keys alone (`DataSpec`), shared by every run
that uses it. The spec travels to the jobs as `as_dict()` (Snakemake tracks plain values only).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from .. import catalog
from .reading import ConfigError

SCHEMA_PATH = Path(__file__).with_name("config.schema.yaml")
ADVERSARIAL_KEYS = ("adversarial_weight", "adversarial_r", "adversarial_alpha", "adversarial_beta",
                    "adversarial_max_iter")  # fmt: skip


@cache
def schema_file() -> dict:
    return yaml.safe_load(SCHEMA_PATH.read_text())


@cache
def spec_defaults() -> dict[str, Any]:
    """The schema's default of every run-spec key (the same for every data set: ids leave these out)."""
    return {key: prop["default"] for key, prop in schema_file()["$defs"]["partial_spec"]["properties"].items()}


def short_hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:12]


def identity(values: dict) -> dict:
    """The values with defaults and not-applicable (None) ones left out: what an id is made from."""
    defaults = spec_defaults()
    return {k: v for k, v in sorted(values.items()) if v is not None and (k not in defaults or v != defaults[k])}


@dataclass(frozen=True)
class DataSpec:
    """The keys that define a noisy data set; every other spec key belongs to training."""

    dataset: str
    train_size: int | None
    input_noise: str
    input_noise_fraction: float
    label_noise: str
    label_noise_fraction: float
    noise_seed: int

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def dataset_id(self) -> str:
        """The id of the noisy data set: its data keys alone (a run's spec has the same)."""
        keys = {f.name: getattr(self, f.name) for f in dataclasses.fields(DataSpec)}
        return f"{self.dataset}-{short_hash(identity(keys))}"


@dataclass(frozen=True)
class RunSpec(DataSpec):
    """One run: the config's resolved values of every key of the schema's `partial_spec` (their meanings are
    there; the data keys first, a DataSpec's) and the seeds trained together. None marks a key that does not
    apply (the CNN's width)."""

    arch: str
    width: int | None
    depth: int | None
    cnn_channels: int | None
    cnn_dense: tuple[int, ...] | None
    batchnorm_momentum: float | None
    crop: int | None
    loss: str
    lr: float
    momentum: float
    lr_decay_every: int | None
    lr_decay_factor: float | None
    batch_size: int
    sampling: str
    subset_fraction: float
    epochs: int | None
    steps: int | None
    stop_when_fit: bool
    regularizer: str
    reg_strength: float
    adversarial_weight: float | None
    adversarial_r: float | None
    adversarial_alpha: float | None
    adversarial_beta: float | None
    adversarial_max_iter: int | None
    log_every: int
    checkpoints: dict  # the checkpoint times: {unit: epoch|step, every|at|log_count: ...}
    seeds: tuple[int, ...] = (0,)

    __hash__ = None  # a spec holds a mapping; its identity is `run_id`

    def __getitem__(self, key):
        raise TypeError(f"a run spec is read by attribute (spec.{key}), not by key; spec.as_dict() is its values")

    @classmethod
    def from_dict(cls, values: dict) -> RunSpec:
        """The spec of `as_dict()`'s values (lists become tuples)."""
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        return cls(**{**values, "checkpoints": copy.deepcopy(values["checkpoints"])})

    def as_dict(self) -> dict:
        """Plain values in key order: what params, spec.json, checkpoints and table provenance hold."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {k: list(v) if isinstance(v, tuple) else copy.deepcopy(v) for k, v in sorted(values.items())}

    def replace(self, **changes) -> RunSpec:
        return dataclasses.replace(self, **{k: tuple(v) if isinstance(v, list) else v for k, v in changes.items()})

    @property
    def run_id(self) -> str:
        return short_hash(identity(self.as_dict()))

    @property
    def config_id(self) -> str:
        """The run's configuration apart from its seeds and its noise draw: runs of one grid point drawn with
        `noise_draws: per_seed` share it (for shared draws it stands for exactly one run)."""
        return short_hash(identity({k: v for k, v in self.as_dict().items() if k not in ("seeds", "noise_seed")}))

    @property
    def data(self) -> DataSpec:
        """The keys of its noisy data set alone."""
        return DataSpec(**{f.name: getattr(self, f.name) for f in dataclasses.fields(DataSpec)})

    def applicable(self) -> dict:
        """The values that mean something for this run (its identity, less the seeds, a noise fraction
        without its noise and the adversarial settings of another regulariser): what names it to a person."""
        values = {k: v for k, v in identity(self.as_dict()).items() if k not in ("seeds", "noise_seed")}
        for kind in ("input", "label"):
            if getattr(self, f"{kind}_noise") == "none":
                values.pop(f"{kind}_noise_fraction", None)
        if self.regularizer != "dropout_adversarial":
            for key in ADVERSARIAL_KEYS:
                values.pop(key, None)
        return values


def resolve(partial: dict, *, seeds=(0,), where: str = "spec") -> RunSpec:
    """A spec from the keys a config sets: the schema's defaults, then the data set's (catalog.Dataset
    .spec_defaults), then `partial`; canonical (numbers float where the schema says number, keys that do not
    apply None); combinations that make no sense refused, naming `where`."""
    props = schema_file()["$defs"]["partial_spec"]["properties"]
    dataset = partial.get("dataset", spec_defaults()["dataset"])
    values = copy.deepcopy({**spec_defaults(), **catalog.DATASETS[dataset].spec_defaults, **partial})
    for key, prop in props.items():
        if prop.get("type") == "number":
            values[key] = float(values[key])
    for kind in ("input_noise", "label_noise"):  # a noise of "none" has no fraction: 0 in the tables, not in ids
        if values[kind] == "none":
            values[f"{kind}_fraction"] = 0.0
        elif values[f"{kind}_fraction"] == 0.0:
            raise ConfigError(f"{where}: {kind} is {values[kind]!r} with {kind}_fraction 0; use {kind}: none instead")
    n_train = catalog.DATASETS[dataset].n_train
    if values["train_size"] is not None and values["train_size"] > n_train:
        raise ConfigError(
            f"{where}: train_size {values['train_size']} is larger than the {dataset} training split "
            f"({n_train} examples); lower train_size (or leave it out for the whole split)"
        )
    if values["label_noise"] == "identity" and values["label_noise_fraction"] != 1.0:
        raise ConfigError(
            f"{where}: label_noise identity gives every example its own class, so label_noise_fraction must be 1"
        )
    if values["arch"] == "mlp":
        if values["width"] is None:
            raise ConfigError(f"{where}: arch mlp needs width (hidden units per layer)")
        values.update(cnn_channels=None, cnn_dense=None, crop=None, batchnorm_momentum=None)
    else:
        values.update(width=None, depth=None)
    reg, strength = values["regularizer"], values["reg_strength"]
    if reg == "none" and strength:
        raise ConfigError(f"{where}: reg_strength {strength:g} without a regularizer; set regularizer too")
    if reg not in ("none", "dropout_adversarial") and strength == 0.0:
        raise ConfigError(
            f"{where}: regularizer {reg} with reg_strength 0 is no regularisation; use regularizer: none instead"
        )
    if reg in ("dropout", "input_dropout", "dropout_adversarial") and strength >= 1.0:
        raise ConfigError(f"{where}: {reg} drop rate reg_strength must be below 1, got {strength:g}")
    if reg != "dropout_adversarial":
        values.update(dict.fromkeys(ADVERSARIAL_KEYS))
    if values["lr_decay_every"] is None:
        values["lr_decay_factor"] = None
    if values["steps"] is not None:
        values["epochs"] = None
    _check_records(values, n_train if values["train_size"] is None else values["train_size"], where)
    return RunSpec.from_dict({**values, "seeds": [int(s) for s in seeds]})


def subset_size(n_train: int, fraction: float) -> int:
    """Examples in a seed's training subset: round(fraction · n_train), at least one."""
    return max(1, round(fraction * n_train))


MAX_RECORDS = 10_000  # checkpoints, and evaluations, of one run (the paper's longest runs have about 1,000)


def record_counts(values: dict, n_train: int) -> dict[str, int]:
    """A run's SGD steps, steps per epoch, checkpoints and evaluations, counted from its spec's values without
    listing them (a count may be too large to list: `_check_records` refuses those)."""
    per_epoch = math.ceil(subset_size(n_train, values["subset_fraction"]) / values["batch_size"])
    steps = values["steps"] if values["steps"] is not None else values["epochs"] * per_epoch
    times = values["checkpoints"]
    every = times.get("every", 0) * (per_epoch if times["unit"] == "epoch" else 1)

    def multiples(interval: int) -> int:  # steps 0, interval, 2·interval, ... and the last
        return steps // interval + 1 + (steps % interval != 0)

    if every:
        checkpoints = multiples(every)
    elif "at" in times:  # at most 10,000 times (the schema): listed, each once, the last always in
        scale = per_epoch if times["unit"] == "epoch" else 1
        checkpoints = len({a * scale for a in times["at"] if a * scale <= steps} | {steps})
    else:
        checkpoints = times["log_count"] + 1
    return {
        "steps": steps,
        "steps_per_epoch": per_epoch,
        "checkpoints": checkpoints,
        "evaluations": multiples(values["log_every"] * per_epoch),
    }


def _check_records(values: dict, n_train: int, where: str) -> None:
    """Refuse a run that would write more than MAX_RECORDS checkpoints or evaluations (each a file, and a
    row of its tables per example) before any job runs, naming the key; a count the schema cannot bound
    alone, as it follows from the steps, the epoch's length and the times."""
    counts = record_counts(values, n_train)
    for key, count, fix in (("checkpoints", counts["checkpoints"], "checkpoint less often"),
                            ("log_every", counts["evaluations"], "evaluate less often (a larger log_every)"),
                            ):  # fmt: skip
        if count > MAX_RECORDS:
            raise ConfigError(
                f"{where}: {key}: {count:,} {'checkpoints' if key == 'checkpoints' else 'evaluations'} in "
                f"{counts['steps']:,} steps, more than a run may write ({MAX_RECORDS:,}); {fix}"
            )
