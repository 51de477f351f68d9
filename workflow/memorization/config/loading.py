"""The config, from files to runs, resolved once: `load_config` layers the files, validates them against the
schema and resolves every experiment into its runs, and returns a `Config` that every caller reads.

How configs layer (docs/design.md): a config with experiments of its own stands alone over the built-in
defaults; `base: FILE` builds it on another config; a config without experiments (nothing but `--config
key=value`, say) builds on config.yaml; the `--config` values go on top, key by key at every depth. Below every
config lie the schema's defaults and, above them, each data set's scale-dependent ones (catalog.Dataset), so a
digits experiment gets digits-sized settings and an MNIST experiment the paper's, whatever config it sits in.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from .. import catalog
from .reading import ConfigError, check_size, merge, read_yaml
from .schema import check, check_finite, coerce_text, errors, joined, key_path, schema, settings_properties, shorten
from .spec import RunSpec, resolve, short_hash

REPOSITORY = Path(__file__).resolve().parents[3]  # a checkout: its config.yaml is the default
DEFAULT_CONFIG = "config.yaml"
MAX_RUNS = 10_000  # runs in one config (the paper's has 156): a grid is a product, so a few long axes would
# otherwise be millions of runs to resolve before anything could say so


@dataclass(frozen=True)
class Config:
    """A validated config and its runs. `values`: the config with top-level defaults filled (what Snakemake's
    `config` holds); `experiments`: each experiment's resolved runs, in grid order."""

    values: dict
    experiments: dict[str, tuple[RunSpec, ...]]
    source: str = ""  # the config file it was read from ("" for a config given as a mapping)

    @property
    def name(self) -> str:
        """What names its results folder, results/<name>/ (its tables, figures, findings and scorecard)."""
        return self.values["name"]

    @cached_property
    def runs(self) -> dict[str, RunSpec]:
        """run id → spec, each run once (two experiments may share one)."""
        return {spec.run_id: spec for runs in self.experiments.values() for spec in runs}

    def tables_of(self, experiment: str) -> list[str]:
        """The tables an experiment writes: those it asks for, then those its figures read."""
        return _tables_read(self.values["experiments"][experiment])

    @cached_property
    def figures(self) -> list[str]:
        """Every figure some experiment draws, sorted."""
        return sorted({f for exp in self.values["experiments"].values() for f in exp.get("figures", [])})

    def experiments_of(self, figure: str) -> list[str]:
        """The experiments that list a figure: its tables come from each."""
        return [name for name, exp in self.values["experiments"].items() if figure in exp.get("figures", [])]

    def settings_of(self, experiment: str) -> list[str]:
        """The spec keys that set an experiment's runs apart, in the spec's order: those its grid names and
        those whose value differs among its runs (a noise draw per seed: noise_seed); not the seeds, which
        every table has a column of. They become columns of its tables (memorization.results.tables)."""
        exp = self.values["experiments"][experiment]
        named = {k for axis, entries in (exp.get("grid") or {}).items() for e in entries
                 for k in (e if isinstance(e, dict) else {axis: e})}  # fmt: skip
        runs = self.experiments[experiment]
        keys = [f.name for f in dataclasses.fields(RunSpec) if f.name != "seeds"]
        return [
            k for k in keys
            if k in named or len({json.dumps(getattr(r, k), sort_keys=True, default=list) for r in runs}) > 1
        ]  # fmt: skip

    def metric_settings(self, table: str, dataset: str) -> dict:
        """The settings of one metric table for runs on one data set: the schema's defaults, the data set's
        (catalog.Dataset.metric_defaults), then the config's `metrics:` block; numbers are floats where the
        schema says number, so `r: 8` and `r: 8.0` are one setting. {} for a table without settings."""
        props = settings_properties(table)
        values = {k: p.get("default") for k, p in props.items()}
        values.update(catalog.DATASETS[dataset].metric_defaults.get(table, {}))
        values.update((self.values.get("metrics") or {}).get(table) or {})
        values = copy.deepcopy(values)
        for key, prop in props.items():
            if prop.get("type") == "number" and values.get(key) is not None:
                values[key] = float(values[key])
        return values

    def metric_key(self, table: str, dataset: str) -> str:
        """What tells one computation of a metric or summary table apart from another of the same run: a short
        hash of its settings (a summary's are its source's). Part of the table's file name, so a table computed
        with one config's settings is kept beside another's, and switching configs recomputes nothing."""
        entry = catalog.table(table)
        return short_hash(self.metric_settings(entry.source or table, dataset))

    @cached_property
    def labels(self) -> dict[str, str]:
        """run id → what names the run to a person: its experiment(s) and the values in which it differs from
        its experiment's other runs ("capacity: width=512, input_noise_fraction=0.4")."""
        labels: dict[str, list[str]] = {}
        for name, runs in self.experiments.items():
            shown = [r.applicable() for r in runs]
            keys = sorted({k for v in shown for k in v})
            varying = [k for k in keys if len({json.dumps(v.get(k), sort_keys=True) for v in shown}) > 1]
            for run, values in zip(runs, shown):
                text = ", ".join(f"{k}={values[k]}" for k in varying if k in values)
                labels.setdefault(run.run_id, []).append(f"{name}: {text}" if text else name)
        return {rid: "; ".join(parts) for rid, parts in labels.items()}


def load_config(
    given: dict | None = None,
    *,
    files=(),
    overrides: dict | None = None,
    workdir: str | Path = ".",
    repository: str | Path = REPOSITORY,
) -> Config:
    """The config to run, as the workflow and every command read it: `files` (as `--configfile`, merged in
    order) and `given` (a config as a mapping) laid over their `base:` or over config.yaml as the module doc
    says, the `overrides` (`--config` values) on top, the `analyses:` files imported (they register what the
    schema allows; relative to `workdir`), validated, and every experiment resolved into runs. Base files are
    looked up in `workdir`, then in `repository`. Figures named by the config must be registered (import
    memorization.papers for the built-in ones)."""
    workdir, repository = Path(workdir), Path(repository)
    layer = {}
    for path in files:
        layer = merge(layer, read_yaml(Path(path)))
    check_size(given or {}, "the config")
    check_size(overrides or {}, "the --config values")
    layer, overrides = merge(layer, given or {}), copy.deepcopy(overrides or {})
    base = overrides.pop("base", None) or layer.pop("base", None)
    layer.pop("base", None)
    if base is None and "experiments" not in layer:
        base = DEFAULT_CONFIG
    # A config's results are its own (results/<name>/): its name is its own `name:` or its file's, never a
    # base's, so that a config built on another does not write over the other's figures.
    name = overrides.get("name") or layer.get("name") or (Path(files[-1]).stem if files else None)
    layers, seen = [layer, overrides], []
    while base is not None:
        path = next((f / str(base) for f in (workdir, repository) if (f / str(base)).is_file()), None)
        if path is None:
            raise ConfigError(f"config file {str(base)!r} not found in the working directory {workdir} or in the "
                              f"repository {repository}")  # fmt: skip
        if path.resolve() in seen:
            raise ConfigError(f"config files name each other as `base:` in a cycle: {' -> '.join(map(str, seen))}")
        seen.append(path.resolve())
        loaded = read_yaml(path)
        base = loaded.pop("base", None)
        name = name or loaded.get("name") or path.stem
        loaded.pop("name", None)
        layers.insert(0, loaded)
    values = {}
    for each in layers:
        values = merge(values, each)
    experiments = values.get("experiments") or {}
    if isinstance(experiments, dict):  # anything else is refused by validation, naming the key
        experiments = {k: v for k, v in experiments.items() if v is not None}  # `name: null` drops one
    values["experiments"] = experiments
    values["name"] = name or "config"
    values = coerce_text(values)
    check(values.get("analyses", []), schema()["properties"]["analyses"], "analyses")
    catalog.load_analyses(_analysis_files(values.get("analyses", []), workdir))
    return validated(values, source=_source(files, workdir))


def _source(files, workdir: Path) -> str:
    """The config file a config was read from (the last of `files`), relative to the working directory
    where it lies inside it: what the results record as theirs, so that a copy of the folder is still the
    same config's."""
    if not files:
        return ""
    path = Path(files[-1]).resolve()
    try:
        return str(path.relative_to(workdir.resolve()))
    except ValueError:
        return str(path)


def _analysis_files(analyses, workdir: Path) -> list[Path]:
    """The `analyses:` files, checked before they are imported (which happens before the rest of the config
    is validated, as they register what the schema allows)."""
    files = [workdir / path for path in analyses]
    for given, file in zip(analyses, files):
        if file.suffix != ".py" or not file.is_file():
            raise ConfigError(
                f"config key analyses: {shorten(repr(given), 80)} is not a Python file (looked for "
                f"{shorten(str(file), 120)}); an analysis is a .py file, relative to the working directory"
            )
    return files


def validated(values: dict, source: str = "") -> Config:
    """A whole config checked against the schema (top-level defaults filled) and resolved into runs, which
    checks each run's combination of keys."""
    values = copy.deepcopy(values)
    check_finite(values)
    check(values, schema())
    for key, prop in schema()["properties"].items():
        if "default" in prop:
            values.setdefault(key, copy.deepcopy(prop["default"]))
    found = []
    for name, exp in values["experiments"].items():
        for axis, entries in (exp.get("grid") or {}).items():
            for i, entry in enumerate(entries):
                piece = entry if isinstance(entry, dict) else {axis: entry}
                found += errors(
                    piece, {"$ref": "#/$defs/partial_spec"}, key_path(f"experiments.{name}.grid", [axis, i])
                )
    if found:
        raise ConfigError(joined(found))
    return Config(values, _expand(values), source)


def _seed_groups(exp: dict) -> list[list[int]]:
    """The seeds of each run an experiment makes at one grid point: with a shared noise draw, all its seeds
    in one run (or runs of `seeds_per_job`); with a noise draw per seed, a run per seed."""
    seeds = exp.get("seeds", 1)
    seeds = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    if exp.get("noise_draws", "shared") != "shared":
        return [[s] for s in seeds]
    per_job = exp.get("seeds_per_job") or len(seeds)
    return [seeds[i : i + per_job] for i in range(0, len(seeds), per_job)]


def _tables_read(exp: dict) -> list[str]:
    """The tables an experiment writes: those it asks for, then those its figures read (Config.tables_of)."""
    wanted = list(exp.get("tables", ["training"]))
    for fig in exp.get("figures", []):
        wanted += [t for t in catalog.figure(fig).tables if t not in wanted]
    return wanted


def checkpoints_kept(tables: list[str]) -> dict | None:
    """The checkpoint times of a run whose spec does not set them, from what its experiment's tables read
    (catalog.Table.checkpoints): None (the schema's default, every epoch) where one reads them along the run;
    the first and the last where they read only those; the last alone otherwise. A checkpoint per epoch of a
    600-epoch run no table reads is gigabytes of disk."""
    needs = {catalog.table(t).checkpoints for t in tables}
    if "schedule" in needs:
        return None
    return {"unit": "epoch", "at": [0] if "ends" in needs else []}


def _expand(values: dict) -> dict[str, tuple[RunSpec, ...]]:
    """experiment name → its resolved runs, in grid order; a config of more than MAX_RUNS runs is refused
    before its grid is walked."""
    base = values.get("defaults") or {}
    experiments, planned, found = {}, 0, []
    for name, exp in values["experiments"].items():
        axes = [[v if isinstance(v, dict) else {axis: v} for v in vs] for axis, vs in (exp.get("grid") or {}).items()]
        groups = _seed_groups(exp)
        runs = math.prod(len(axis) for axis in axes) * len(groups)
        if planned + runs > MAX_RUNS:
            raise ConfigError(
                f"config key experiments.{name}.grid: {' × '.join(str(len(a)) for a in axes) or '1'} grid points × "
                f"{len(groups)} runs each = {runs:,} runs, which with the experiments before it is more than a "
                f"config may have ({MAX_RUNS:,}); shorten its axes, or split the sweep into several configs"
            )
        planned += runs
        resolved: dict[str, RunSpec] = {}  # two grid points may resolve to the same run
        kept = checkpoints_kept(_tables_read(exp))
        for combo in itertools.product(*axes):
            partial = {**base, **(exp.get("spec") or {})}
            for piece in combo:
                partial.update(piece)
            if "checkpoints" not in partial and kept is not None:
                partial["checkpoints"] = kept
            point = shorten(str(dict(kv for p in combo for kv in p.items())), 120)
            try:
                spec = resolve(partial, where=f"experiments.{name} (grid point {point})")
            except ConfigError as err:  # every grid point's error at once
                found.append(str(err))
                continue
            for seeds in groups:
                run = spec.replace(seeds=seeds)
                if exp.get("noise_draws", "shared") != "shared":  # a noise draw per seed: its own noise_seed
                    run = run.replace(noise_seed=spec.noise_seed + seeds[0])
                resolved.setdefault(run.run_id, run)
        experiments[name] = tuple(resolved.values())
    if found:
        raise ConfigError(joined(found))
    return experiments


def missing_data(config: Config, workdir: str | Path = ".") -> list[str]:
    """Each data set the config's runs train on whose raw files are not under `data_root` (and that
    `download: false` will not fetch), once, naming an experiment that uses it, where it looked and the fixes:
    said before any job runs, not when the first job fails. A data set already read into results/data/clean/
    needs its raw files no more."""
    if config.values["download"]:
        return []
    root = Path(workdir) / config.values["data_root"]
    used: dict[str, str] = {}
    for name, runs in config.experiments.items():
        for spec in runs:
            used.setdefault(spec.dataset, name)
    problems = []
    for dataset, experiment in used.items():
        missing = [f for f in catalog.DATASETS[dataset].files if not (root / f).is_file()]
        if missing and not (Path(workdir) / "results" / "data" / "clean" / f"{dataset}.npz").is_file():
            problems.append(
                f"experiments.{experiment}: data set {dataset} is not under data_root ({root.resolve()}): "
                f"{', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''} missing; copy the files there, point "
                f"`data_root` at the folder that holds them, or set `download: true`"
            )
    return problems
