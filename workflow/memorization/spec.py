"""Config → validated, fully resolved run specs with stable ids.

A *run* is one training configuration (data set, noise, model, optimiser, schedule) trained for a list
of seeds in one job. Its id is a short hash of the canonical spec with default values left out, so that
adding an option with a default to the schema does not rename (and retrain) old runs. A *noisy data set*
gets an id the same way from the data keys alone, and is shared by every run that uses it.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import yaml

SCHEMA_PATH = Path(__file__).with_name("config.schema.yaml")

# The keys that define a noisy data set; every other spec key belongs to training.
DATA_KEYS = (
    "dataset",
    "train_size",
    "input_noise",
    "input_noise_fraction",
    "label_noise",
    "label_noise_fraction",
    "noise_seed",
)


# Settings of adversarial training, meaningful only with regularizer dropout_adversarial.
ADVERSARIAL_KEYS = ("adversarial_weight", "adversarial_r", "adversarial_alpha", "adversarial_beta",
                    "adversarial_max_iter")


class ConfigError(ValueError):
    """A config value that cannot be used; the message names the key path and what is allowed."""


@cache
def schema() -> dict:
    return yaml.safe_load(SCHEMA_PATH.read_text())


@cache
def spec_defaults() -> dict[str, Any]:
    props = schema()["$defs"]["partial_spec"]["properties"]
    return {key: prop["default"] for key, prop in props.items()}


@cache
def _float_keys() -> frozenset[str]:
    props = schema()["$defs"]["partial_spec"]["properties"]
    return frozenset(k for k, p in props.items() if p.get("type") == "number")


# ----------------------------------------------------------------------------- validation


def _allowed(error: jsonschema.ValidationError) -> str:
    """What the failing schema node accepts, in words."""
    s = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "additionalProperties":
        return "allowed keys: " + ", ".join(sorted(s.get("properties", {}))) if s.get("properties") else ""
    if "enum" in s:
        return "allowed values: " + ", ".join(json.dumps(v) for v in s["enum"])
    bounds = []
    for word, sym in (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="), ("exclusiveMaximum", "<")):
        if word in s:
            bounds.append(f"{sym} {s[word]}")
    kind = s.get("type")
    kind = " or ".join(kind) if isinstance(kind, list) else kind
    if bounds or kind:
        return "allowed: " + " ".join(filter(None, [kind, " and ".join(bounds)]))
    return ""


def _key_path(prefix: str, path) -> str:
    out = prefix
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<top level>"


def _check(instance: Any, subschema: dict, prefix: str) -> None:
    root = schema()
    validator = jsonschema.Draft202012Validator({**subschema, "$defs": root["$defs"]})
    error = jsonschema.exceptions.best_match(validator.iter_errors(instance))
    if error is None:
        return
    where = _key_path(prefix, error.absolute_path)
    allowed = _allowed(error)
    raise ConfigError(f"config key {where}: {error.message}" + (f" ({allowed})" if allowed else ""))


def metric_settings(config: dict, family: str) -> dict:
    """The settings of one metric family: the config's values over the schema's defaults ({} for a family
    without settings, such as filters)."""
    families = schema()["properties"]["metrics"]["properties"]
    if family not in families:
        return {}
    ref = families[family]["$ref"].split("/")[-1]
    props = schema()["$defs"][ref]["properties"]
    given = (config.get("metrics") or {}).get(family) or {}
    return {k: copy.deepcopy(given.get(k, p["default"])) for k, p in props.items()}


def validate(config: dict) -> dict:
    """Validate a whole config against the schema; return a copy with top-level defaults filled.

    We call jsonschema ourselves rather than snakemake.utils.validate because its message repeats the
    whole schema; ours names the key path (``experiments.fig1.grid.data[1].lr``) and the allowed values.
    """
    config = copy.deepcopy(config or {})
    _check(config, schema(), "")
    for key, prop in schema()["properties"].items():
        if "default" in prop:
            config.setdefault(key, copy.deepcopy(prop["default"]))
    for name, exp in config["experiments"].items():
        for axis, values in (exp.get("grid") or {}).items():
            for i, value in enumerate(values):
                piece = value if isinstance(value, dict) else {axis: value}
                _check(piece, {"$ref": "#/$defs/partial_spec"}, f"experiments.{name}.grid.{axis}[{i}]")
    expand(config)  # cross-key checks on every resolved run
    return config


# ----------------------------------------------------------------------------- resolution


def resolve(partial: dict, *, where: str = "spec") -> dict:
    """Fill defaults and canonicalise a spec; reject combinations that make no sense."""
    spec = {**copy.deepcopy(spec_defaults()), **copy.deepcopy(partial)}
    for key in _float_keys():
        spec[key] = float(spec[key])
    # A noise kind of "none" has no fraction; keep the column meaningful (0) and the id free of it.
    for kind in ("input_noise", "label_noise"):
        if spec[kind] == "none":
            spec[f"{kind}_fraction"] = 0.0
        elif spec[f"{kind}_fraction"] == 0.0:
            raise ConfigError(f"{where}: {kind} is {spec[kind]!r} with {kind}_fraction 0; use {kind}: none instead")
    if spec["label_noise"] == "identity" and spec["label_noise_fraction"] != 1.0:
        raise ConfigError(
            f"{where}: label_noise identity gives every example its own class, so label_noise_fraction must be 1"
        )
    if spec["arch"] == "mlp":
        if spec["width"] is None:
            raise ConfigError(f"{where}: arch mlp needs width (hidden units per layer)")
        for key in ("cnn_channels", "cnn_dense", "crop"):
            spec[key] = None
    else:
        spec["width"] = spec["depth"] = None
    reg, strength = spec["regularizer"], spec["reg_strength"]
    if reg == "none" and strength:
        raise ConfigError(f"{where}: reg_strength {strength:g} without a regularizer; set regularizer too")
    if reg not in ("none", "dropout_adversarial") and strength == 0.0:
        raise ConfigError(f"{where}: regularizer {reg} with reg_strength 0 is no regularisation; "
                          f"use regularizer: none instead")
    if reg in ("dropout", "input_dropout", "dropout_adversarial") and strength >= 1.0:
        raise ConfigError(f"{where}: {reg} drop rate reg_strength must be below 1, got {strength:g}")
    if reg != "dropout_adversarial":
        for key in ADVERSARIAL_KEYS:
            spec[key] = None
    if spec["lr_decay_every"] is None:
        spec["lr_decay_factor"] = None
    if spec["steps"] is not None:
        spec["epochs"] = None
    return spec


def identity(spec: dict, keys=None) -> dict:
    """The spec with defaults and not-applicable (None) values left out: what an id is made from."""
    defaults = spec_defaults()
    return {
        k: v
        for k, v in sorted(spec.items())
        if (keys is None or k in keys) and v is not None and (k not in defaults or v != defaults[k])
    }


def short_hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:12]


def dataset_spec(spec: dict) -> dict:
    return {k: spec[k] for k in DATA_KEYS}


def dataset_id(spec: dict) -> str:
    ident = identity(spec, DATA_KEYS)
    return f"{spec['dataset']}-{short_hash(ident)}"


def run_id(spec: dict) -> str:
    return short_hash(identity(spec))


def _seeds(value) -> list[int]:
    return list(range(value)) if isinstance(value, int) else [int(s) for s in value]


def expand(config: dict) -> dict[str, list[dict]]:
    """experiment name → its resolved run specs (each with ``seeds``), in grid order."""
    base = config.get("defaults") or {}
    experiments = {}
    for name, exp in config["experiments"].items():
        grid = exp.get("grid") or {}
        axes = [
            [v if isinstance(v, dict) else {axis: v} for v in values] for axis, values in grid.items()
        ]
        runs, seen = [], set()
        for combo in itertools.product(*axes):
            partial = {**base, **(exp.get("spec") or {})}
            for piece in combo:
                partial.update(piece)
            label = f"experiments.{name} (grid point {dict(kv for p in combo for kv in p.items())})"
            spec = resolve(partial, where=label)
            spec["seeds"] = _seeds(exp.get("seeds", 1))
            rid = run_id(spec)
            if rid not in seen:  # two grid points may resolve to the same run
                seen.add(rid)
                runs.append(spec)
        experiments[name] = runs
    return experiments


def schedule_steps(schedule: dict, *, steps_per_epoch: int, total_steps: int) -> list[int]:
    """Steps (counted from 0 = initialisation) at which a schedule fires; the last step is always in."""
    scale = steps_per_epoch if schedule["unit"] == "epoch" else 1
    if "every" in schedule:
        points = range(0, total_steps + 1, schedule["every"] * scale)
    elif "at" in schedule:
        points = [a * scale for a in schedule["at"]]
    else:  # log-spaced, as the paper's Fig. 3 x-axis
        points = np.unique(np.round(np.geomspace(1, total_steps, schedule["log_count"])).astype(int)).tolist()
    return sorted({p for p in points if 0 <= p <= total_steps} | {total_steps})
