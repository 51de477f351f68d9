"""The config, from files to runs: layering (`base:`, config.yaml, the built-in and per-data-set defaults),
validation against the schema, and resolution into fully resolved run specs with stable ids.

A *run* is one training configuration (data set, noise, model, optimiser, schedule) trained for a list
of seeds in one job. Its id is a short hash of the canonical spec with default values left out, so that
adding an option with a default to the schema does not rename (and retrain) old runs. A *noisy data set*
gets an id the same way from the data keys alone, and is shared by every run that uses it.

How configs layer (docs/design.md): a config with experiments of its own stands alone over the built-in
defaults; `base: FILE` builds it on another config; a config without experiments (e.g. nothing but
`--config key=value` overrides) builds on config.yaml. Below every config lie the schema's defaults and,
above them, each data set's own scale-dependent defaults (registry.DATASETS), so a digits experiment gets
digits-sized settings and an MNIST experiment the paper's, whatever config it sits in.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from . import registry

SCHEMA_PATH = Path(__file__).with_name("config.schema.yaml")
DEFAULT_CONFIG = "config.yaml"

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
ADVERSARIAL_KEYS = (
    "adversarial_weight",
    "adversarial_r",
    "adversarial_alpha",
    "adversarial_beta",
    "adversarial_max_iter",
)


class ConfigError(ValueError):
    """A config value that cannot be used; the message names the key path and what is allowed."""


@cache
def _schema_file() -> dict:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def schema() -> dict:
    """The config schema, with the allowed values that the registries define filled in: data set names,
    tables, figures, and one `metrics:` entry per table that has settings."""
    return _schema_for(tuple(registry.DATASETS), tuple(registry.TABLES), tuple(registry.FIGURES))


@cache
def _schema_for(datasets: tuple, tables: tuple, figures: tuple) -> dict:
    s = copy.deepcopy(_schema_file())
    defs = s["$defs"]
    defs["partial_spec"]["properties"]["dataset"]["enum"] = list(datasets)
    defs["partial_spec"]["properties"]["regularizer"]["enum"] = list(registry.REGULARIZERS)
    defs["experiment"]["properties"]["tables"]["items"] = {"enum": list(tables)}
    defs["experiment"]["properties"]["figures"]["items"] = {"enum": list(figures)}
    metrics = {}
    for name in tables:
        settings = registry.table(name).settings
        if settings is None:
            continue
        if not isinstance(settings, str):
            defs[f"{name}_settings"] = {"type": "object", "additionalProperties": False, "properties": settings}
            settings = f"{name}_settings"
        metrics[name] = {"$ref": f"#/$defs/{settings}", "default": {}}
    s["properties"]["metrics"]["properties"] = metrics
    return s


@cache
def spec_defaults() -> dict[str, Any]:
    """The schema's default of every run-spec key (the same for every data set: run ids leave these out)."""
    props = _schema_file()["$defs"]["partial_spec"]["properties"]
    return {key: prop["default"] for key, prop in props.items()}


@cache
def _float_keys() -> frozenset[str]:
    props = _schema_file()["$defs"]["partial_spec"]["properties"]
    return frozenset(k for k, p in props.items() if p.get("type") == "number")


# ----------------------------------------------------------------------------- layering


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key that appears twice in one mapping (plain YAML keeps the last and
    silently drops the first: a second experiment of the same name would replace the first)."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                continue  # `<<: *anchor` merges keys that the mapping's own keys may override
            key = key_node.value
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"the key {key!r} appears twice (first on line {seen[key] + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


# Bounds on what a config may be, checked before anything else reads it: a config is a page of keys, and a
# YAML alias bomb (a few lines whose aliases nest into billions of values) must be refused before layering,
# validation or an error message walks it.
MAX_CONFIG_BYTES = 1_000_000
MAX_CONFIG_VALUES = 100_000
MAX_MESSAGE_VALUE = 200  # characters of a value quoted in an error message


def check_size(value: Any, where: str) -> None:
    """Refuse a config (or --config value) that expands to more than MAX_CONFIG_VALUES values, counting a
    value once per place it appears (as everything downstream will), in time proportional to its distinct
    values: what YAML aliases share is counted by multiplying, never by walking it again."""
    sizes: dict[int, int] = {}

    def size(v) -> int:
        if id(v) in sizes:
            return sizes[id(v)]
        children = v.values() if isinstance(v, dict) else v if isinstance(v, list) else ()
        total = 1
        for child in children:
            total += size(child)
            if total > MAX_CONFIG_VALUES:
                break
        sizes[id(v)] = total
        return total

    if size(value) > MAX_CONFIG_VALUES:
        raise ConfigError(
            f"{where}: more than {MAX_CONFIG_VALUES:,} values once its YAML aliases are expanded; a config is a "
            "page of keys (are aliases nested in aliases?)"
        )


def _read_yaml(path: Path) -> dict:
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: {path.stat().st_size:,} bytes, more than a config may have ({MAX_CONFIG_BYTES:,})")
    try:
        loaded = yaml.load(path.read_text(), Loader=_StrictLoader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark else str(path)
        if isinstance(err, yaml.constructor.ConstructorError):
            raise ConfigError(f"{where}: {err.problem}") from None
        raise ConfigError(f"{where}: not valid YAML ({err.problem or err.context})") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: a config file holds a mapping of keys, not a {type(loaded).__name__}")
    check_size(loaded, str(path))
    return loaded


def merge(base: dict, over: dict) -> dict:
    """`over` on top of `base`: mappings merge key by key (recursively), anything else is replaced."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _find(name: str, workdir: Path, repository: Path) -> Path:
    for folder in (workdir, repository):
        if (folder / name).is_file():
            return (folder / name).resolve()
    raise ConfigError(
        f"config file {name!r} not found in the working directory {workdir} or in the repository {repository}"
    )


def load_config(
    given: dict, *, overrides: dict | None = None, workdir: str | Path = ".", repository: str | Path = "."
) -> dict:
    """The config to run, from what Snakemake was given: `given`, its --configfile files merged (or a config
    already merged with the --config values, for callers that have no separate overrides), and `overrides`,
    its --config values.

    - A config that names `base: FILE` is laid over that file (which may name a base of its own); so is one
      given `--config base=FILE`.
    - A config without experiments of its own is laid over config.yaml (so `--config device=cpu` alone runs
      the default with that change).
    - Otherwise it stands alone over the built-in defaults.
    - The --config values go on top, key by key at every depth: `--config 'experiments={difficulty: {seeds:
      3}}'` changes that one value of the default (or of the --configfile), never replaces the rest.
    Base files are looked up in the working directory, then in the repository. `experiments: {name: null}`
    drops an experiment the base defines. Values given as text on the command line (`--config
    download=true`) are read as YAML where the schema expects a number or a boolean.
    """
    workdir, repository = Path(workdir), Path(repository)
    check_size(given or {}, "the config")
    check_size(overrides or {}, "the --config values")
    given, overrides = copy.deepcopy(given or {}), copy.deepcopy(overrides or {})
    base = overrides.pop("base", None) or given.pop("base", None)
    given.pop("base", None)
    if base is None and "experiments" not in given:
        base = DEFAULT_CONFIG
    layers, seen = [given, overrides], []
    while base is not None:
        path = _find(str(base), workdir, repository)
        if path in seen:
            raise ConfigError(f"config files name each other as `base:` in a cycle: {' -> '.join(map(str, seen))}")
        seen.append(path)
        loaded = _read_yaml(path)
        base = loaded.pop("base", None)
        layers.insert(0, loaded)
    config = {}
    for layer in layers:
        config = merge(config, layer)
    experiments = config.get("experiments") or {}
    if isinstance(experiments, dict):  # anything else is refused by validation, naming the key
        experiments = {k: v for k, v in experiments.items() if v is not None}
    config["experiments"] = experiments
    return _coerce_text(config)


def read_files(paths) -> dict:
    """Config files merged in order, read as this module does (duplicate keys refused, YAML errors with file
    and line): the files Snakemake itself loaded for --configfile, whose own reader keeps the last of
    duplicate keys."""
    config = {}
    for path in paths:
        config = merge(config, _read_yaml(Path(path)))
    return config


def _finite(value, where: str = "") -> None:
    """Refuse NaN and infinities anywhere in a config (JSON schema's bounds do not catch NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"config key {where or '<top level>'}: {value} is not a finite number")
    if isinstance(value, dict):
        for k, v in value.items():
            _finite(v, _key_path(where, [k]))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _finite(v, f"{where}[{i}]")


def _coerce_text(config: dict) -> dict:
    """Read text values as YAML where the schema wants a number or a boolean. Snakemake hands `--config`
    values over as text unless they look like an int, a float or True/False (`download=true` stays 'true')."""
    validator = jsonschema.Draft202012Validator(schema())
    for _ in range(1000):  # one fix per pass: a fix can change which branch of the schema applies
        for error in validator.iter_errors(config):
            if isinstance(error.instance, str) and error.validator in ("type", "oneOf", "anyOf"):
                try:
                    value = yaml.safe_load(error.instance)
                except yaml.YAMLError:
                    continue
                if not isinstance(value, str) and _is_valid(value, error.schema):
                    _set(config, error.absolute_path, value)
                    break
        else:
            return config
    return config


def _is_valid(value, subschema: dict) -> bool:
    return jsonschema.Draft202012Validator({**subschema, "$defs": schema()["$defs"]}).is_valid(value)


def _set(obj, path, value) -> None:
    *parents, last = list(path)
    for part in parents:
        obj = obj[part]
    obj[last] = value


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
    """`experiments.fig1.grid.data[1].lr`; a key that is not a plain word (spaces, control characters, dots,
    unicode marks) is quoted, `defaults['a\\rb']`, so a message stays one readable line."""
    out = prefix
    for part in path:
        if isinstance(part, str) and re.fullmatch(r"[A-Za-z0-9_-]+", part):
            out += f".{part}" if out else part
        else:
            out += f"[{_shorten(repr(part), 40)}]"
    return out or "<top level>"


def _check(instance: Any, subschema: dict, prefix: str) -> None:
    root = schema()
    validator = jsonschema.Draft202012Validator({**subschema, "$defs": root["$defs"]})
    error = jsonschema.exceptions.best_match(validator.iter_errors(instance))
    if error is None:
        return
    where = _shorten(_key_path(prefix, error.absolute_path))
    if "propertyNames" in error.schema_path:  # a name that folders are made of
        raise ConfigError(
            f"config key {where}: the name {_shorten(repr(error.instance), 80)} ({len(error.instance)} characters) "
            "is not a name: a letter, then letters, digits or _, at most "
            f"{error.schema.get('maxLength', '?')} characters in all"
        )
    allowed = _allowed(error)
    raise ConfigError(f"config key {where}: {_shorten(error.message)}" + (f" ({allowed})" if allowed else ""))


def _shorten(text: str, limit: int = MAX_MESSAGE_VALUE) -> str:
    """A message that quotes a value, cut to a readable length (jsonschema quotes the whole value)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _settings_properties(table: str) -> dict:
    settings = registry.table(table).settings
    if settings is None:
        return {}
    return _schema_file()["$defs"][settings]["properties"] if isinstance(settings, str) else settings


def metric_settings(config: dict, table: str, dataset: str) -> dict:
    """The settings of one metric table for runs on one data set: the schema's defaults, then the data set's
    (registry.Dataset.metric_defaults), then the config's `metrics:` block. Numbers are canonical floats where
    the schema says number, so `r: 8` and `r: 8.0` are the same setting. {} for a table without settings."""
    props = _settings_properties(table)
    values = {k: copy.deepcopy(p.get("default")) for k, p in props.items()}
    values.update(copy.deepcopy(registry.DATASETS[dataset].metric_defaults.get(table, {})))
    values.update(copy.deepcopy((config.get("metrics") or {}).get(table) or {}))
    for key, prop in props.items():
        if prop.get("type") == "number" and values.get(key) is not None:
            values[key] = float(values[key])
    return values


def validate(config: dict) -> dict:
    """Validate a whole config against the schema; return a copy with top-level defaults filled.

    We call jsonschema ourselves rather than snakemake.utils.validate because its message repeats the
    whole schema; ours names the key path (``experiments.fig1.grid.data[1].lr``) and the allowed values.
    """
    config = copy.deepcopy(config or {})
    _finite(config)
    _check(config, schema(), "")
    for key, prop in schema()["properties"].items():
        if "default" in prop:
            config.setdefault(key, copy.deepcopy(prop["default"]))
    for name, exp in config["experiments"].items():
        for axis, values in (exp.get("grid") or {}).items():
            for i, value in enumerate(values):
                piece = value if isinstance(value, dict) else {axis: value}
                _check(piece, {"$ref": "#/$defs/partial_spec"}, _key_path(f"experiments.{name}.grid", [axis, i]))
    expand(config)  # cross-key checks on every resolved run
    return config


def load(
    given: dict, *, overrides: dict | None = None, workdir: str | Path = ".", repository: str | Path = "."
) -> dict:
    """The config to run, as every entry point reads it (the workflow, `python -m memorization.spec`, the
    cost plan): layered (`load_config`), its `analyses:` files imported (they register the data sets, tables,
    figures and claims the schema must know; paths relative to `workdir`), then validated."""
    config = load_config(given, overrides=overrides, workdir=workdir, repository=repository)
    registry.load_analyses(_analysis_files(config.get("analyses") or [], Path(workdir)))
    return validate(config)


def _analysis_files(analyses, workdir: Path) -> list[Path]:
    """The `analyses:` files, checked before they are imported (which happens before the rest of the config
    is validated, as they register what the schema allows): a list of Python files that exist."""
    _check(analyses, schema()["properties"]["analyses"], "analyses")
    files = [workdir / path for path in analyses]
    for given, file in zip(analyses, files):
        if file.suffix != ".py" or not file.is_file():
            raise ConfigError(
                f"config key analyses: {_shorten(repr(given), 80)} is not a Python file (looked for "
                f"{_shorten(str(file), 120)}); an analysis is a .py file, relative to the working directory"
            )
    return files


def experiment_tables(config: dict, name: str) -> list[str]:
    """The tables an experiment writes: those it asks for, then those its figures read."""
    exp = config["experiments"][name]
    wanted = list(exp.get("tables", ["training"]))
    for fig in exp.get("figures", []):
        wanted += [t for t in registry.figure(fig).tables if t not in wanted]
    return wanted


# ----------------------------------------------------------------------------- resolution


def resolve(partial: dict, *, where: str = "spec") -> dict:
    """Fill defaults and canonicalise a spec; reject combinations that make no sense."""
    dataset = partial.get("dataset", spec_defaults()["dataset"])
    spec = {
        **copy.deepcopy(spec_defaults()),
        **copy.deepcopy(registry.DATASETS[dataset].spec_defaults),
        **copy.deepcopy(partial),
    }
    for key in _float_keys():
        spec[key] = float(spec[key])
    # A noise kind of "none" has no fraction; keep the column meaningful (0) and the id free of it.
    for kind in ("input_noise", "label_noise"):
        if spec[kind] == "none":
            spec[f"{kind}_fraction"] = 0.0
        elif spec[f"{kind}_fraction"] == 0.0:
            raise ConfigError(f"{where}: {kind} is {spec[kind]!r} with {kind}_fraction 0; use {kind}: none instead")
    n_train = registry.DATASETS[dataset].n_train
    if spec["train_size"] is not None and spec["train_size"] > n_train:
        raise ConfigError(
            f"{where}: train_size {spec['train_size']} is larger than the {dataset} training split "
            f"({n_train} examples); lower train_size (or leave it out for the whole split)"
        )
    if spec["label_noise"] == "identity" and spec["label_noise_fraction"] != 1.0:
        raise ConfigError(
            f"{where}: label_noise identity gives every example its own class, so label_noise_fraction must be 1"
        )
    if spec["arch"] == "mlp":
        if spec["width"] is None:
            raise ConfigError(f"{where}: arch mlp needs width (hidden units per layer)")
        for key in ("cnn_channels", "cnn_dense", "crop", "batchnorm_momentum"):
            spec[key] = None
    else:
        spec["width"] = spec["depth"] = None
    reg, strength = spec["regularizer"], spec["reg_strength"]
    if reg == "none" and strength:
        raise ConfigError(f"{where}: reg_strength {strength:g} without a regularizer; set regularizer too")
    if reg not in ("none", "dropout_adversarial") and strength == 0.0:
        raise ConfigError(
            f"{where}: regularizer {reg} with reg_strength 0 is no regularisation; use regularizer: none instead"
        )
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


def config_id(spec: dict) -> str:
    """The run's configuration apart from its seeds and its noise draw: runs of one grid point drawn with
    `noise_draws: per_seed` share it (for shared draws it stands for exactly one run)."""
    return short_hash(identity({k: v for k, v in spec.items() if k not in ("seeds", "noise_seed")}))


def _seeds(value) -> list[int]:
    return list(range(value)) if isinstance(value, int) else [int(s) for s in value]


def _seed_groups(exp: dict) -> list[list[int]]:
    """The seeds of each run an experiment makes at one grid point: with a shared noise draw, all its seeds
    in one run (or runs of `seeds_per_job`); with a noise draw per seed, a run per seed."""
    seeds = _seeds(exp.get("seeds", 1))
    if exp.get("noise_draws", "shared") != "shared":
        return [[s] for s in seeds]
    per_job = exp.get("seeds_per_job") or len(seeds)
    return [seeds[i : i + per_job] for i in range(0, len(seeds), per_job)]


MAX_RUNS = 10_000  # runs in one config (the paper-scale config has 156): a grid is a product, so a few long
# axes would otherwise be millions of runs to resolve before anything could say so


def _check_run_count(name: str, axes: list, per_point: int, before: int) -> int:
    """How many runs an experiment's grid makes at most (`per_point` runs at each point); a config over
    MAX_RUNS is refused here, before the product is walked."""
    runs = math.prod(len(axis) for axis in axes) * per_point
    if before + runs > MAX_RUNS:
        sizes = " × ".join(str(len(axis)) for axis in axes) or "1"
        raise ConfigError(
            f"config key experiments.{name}.grid: {sizes} grid points × {per_point} runs each = "
            f"{runs:,} runs, which with the experiments before it is more than a config may have "
            f"({MAX_RUNS:,}); shorten its axes, or split the sweep into several configs"
        )
    return runs


def expand(config: dict) -> dict[str, list[dict]]:
    """experiment name → its resolved run specs (each with ``seeds``), in grid order."""
    base = config.get("defaults") or {}
    experiments, planned = {}, 0
    for name, exp in config["experiments"].items():
        grid = exp.get("grid") or {}
        axes = [[v if isinstance(v, dict) else {axis: v} for v in values] for axis, values in grid.items()]
        groups = _seed_groups(exp)
        planned += _check_run_count(name, axes, len(groups), planned)
        per_seed_noise = exp.get("noise_draws", "shared") != "shared"
        runs, seen = [], set()
        for combo in itertools.product(*axes):
            partial = {**base, **(exp.get("spec") or {})}
            for piece in combo:
                partial.update(piece)
            label = f"experiments.{name} (grid point {_shorten(str(dict(kv for p in combo for kv in p.items())), 120)})"
            spec = resolve(partial, where=label)
            for seeds in groups:
                run = {**spec, "seeds": seeds}
                if per_seed_noise:  # a noise draw per seed: noise_seed offset by the seed
                    run["noise_seed"] = spec["noise_seed"] + seeds[0]
                rid = run_id(run)
                if rid not in seen:  # two grid points may resolve to the same run
                    seen.add(rid)
                    runs.append(run)
        experiments[name] = runs
    return experiments


def load_files(paths, *, workdir: str | Path = ".") -> dict:
    """The config of these files (as `snakemake --configfile A B`: merged in order; none: config.yaml),
    layered and validated as the workflow reads it."""
    repository = Path(__file__).resolve().parents[2]
    return load(read_files(paths), workdir=Path(workdir), repository=repository)


def _applicable(spec: dict) -> dict:
    """The spec values that mean something for this run (its identity, less the seeds, a noise fraction
    without its noise and the adversarial settings of another regulariser)."""
    values = {k: v for k, v in identity(spec).items() if k not in ("seeds", "noise_seed")}
    for kind in ("input", "label"):
        if spec.get(f"{kind}_noise", "none") == "none":
            values.pop(f"{kind}_noise_fraction", None)
    if spec.get("regularizer") != "dropout_adversarial":
        for key in ADVERSARIAL_KEYS:
            values.pop(key, None)
    return values


def run_labels(experiments: dict[str, list[dict]]) -> dict[str, str]:
    """run id → what names the run to a person: its experiment(s) and the spec values in which it differs
    from its experiment's other runs ("capacity: width=512, input_noise_fraction=0.4"); a run shared by
    experiments lists each."""
    labels: dict[str, list[str]] = {}
    for name, runs in experiments.items():
        shown = [_applicable(r) for r in runs]
        keys = sorted({k for v in shown for k in v})
        varying = [k for k in keys if len({json.dumps(v.get(k), sort_keys=True) for v in shown}) > 1]
        for run, values in zip(runs, shown):
            text = ", ".join(f"{k}={values[k]}" for k in varying if k in values)
            labels.setdefault(run_id(run), []).append(f"{name}: {text}" if text else name)
    return {rid: "; ".join(parts) for rid, parts in labels.items()}


def main(argv=None) -> None:
    """python -m memorization.spec CONFIG...: check config files as the workflow will, before running it.
    Snakemake's own reader of --configfile names no line for a YAML mistake; this does."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m memorization.spec", description=main.__doc__.split("\n")[0])
    ap.add_argument("configs", nargs="+", help="config files, as given to snakemake --configfile (merged in order)")
    args = ap.parse_args(argv)
    try:
        config = load_files(args.configs, workdir=Path.cwd())
    except (ConfigError, FileNotFoundError) as err:
        raise SystemExit(f"invalid configuration: {err}") from None
    experiments = expand(config)
    runs = {run_id(r) for rs in experiments.values() for r in rs}
    print(f"valid: {len(experiments)} experiments, {len(runs)} runs")


if __name__ == "__main__":
    main()
