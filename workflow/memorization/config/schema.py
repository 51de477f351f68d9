"""The config schema (config.schema.yaml) with the values the catalog defines filled in, and validation whose
messages name the key path and what is allowed, in one readable line. We call jsonschema ourselves rather
than snakemake.utils.validate, whose message repeats the whole schema."""

from __future__ import annotations

import copy
import json
import math
import re
from functools import cache
from typing import Any

import jsonschema
import yaml

from .. import catalog
from .reading import ConfigError
from .spec import schema_file

MAX_MESSAGE_VALUE = 200  # characters of a value quoted in an error message


def schema() -> dict:
    """The schema, with the registered data sets, regularisers, tables and figures as the allowed values and
    one `metrics:` entry per table that has settings."""
    return _schema_for(tuple(catalog.DATASETS), tuple(catalog.TABLES), tuple(catalog.FIGURES))


@cache
def _schema_for(datasets: tuple, tables: tuple, figures: tuple) -> dict:
    s = copy.deepcopy(schema_file())
    defs = s["$defs"]
    defs["partial_spec"]["properties"]["dataset"]["enum"] = list(datasets)
    defs["partial_spec"]["properties"]["regularizer"]["enum"] = list(catalog.REGULARIZERS)
    defs["experiment"]["properties"]["tables"]["items"] = {"enum": list(tables)}
    defs["experiment"]["properties"]["figures"]["items"] = {"enum": list(figures)}
    metrics = {}
    for name in tables:
        settings = catalog.table(name).settings
        if isinstance(settings, dict):
            defs[f"{name}_settings"] = {"type": "object", "additionalProperties": False, "properties": settings}
            settings = f"{name}_settings"
        if settings is not None:
            metrics[name] = {"$ref": f"#/$defs/{settings}", "default": {}}
    s["properties"]["metrics"]["properties"] = metrics
    return s


def settings_properties(table: str) -> dict:
    """The JSON-schema properties of a metric table's settings ({} for a table without)."""
    settings = catalog.table(table).settings
    if settings is None:
        return {}
    return schema()["$defs"][settings]["properties"] if isinstance(settings, str) else settings


def check(instance: Any, subschema: dict, prefix: str = "") -> None:
    """Validate `instance` against a part of the schema; the first error as a ConfigError naming its key."""
    validator = jsonschema.Draft202012Validator({**subschema, "$defs": schema()["$defs"]})
    error = jsonschema.exceptions.best_match(validator.iter_errors(instance))
    if error is None:
        return
    where = shorten(key_path(prefix, error.absolute_path))
    if "propertyNames" in error.schema_path:  # a name that folders are made of
        raise ConfigError(
            f"config key {where}: the name {shorten(repr(error.instance), 80)} ({len(error.instance)} characters) "
            "is not a name: a letter, then letters, digits or _, at most "
            f"{error.schema.get('maxLength', '?')} characters in all"
        )
    if error.validator == "enum" and "figures" in error.absolute_path and not catalog.FIGURES:
        raise ConfigError(f"config key {where}: no figures are registered; import memorization.papers first")
    allowed = _allowed(error)
    raise ConfigError(f"config key {where}: {shorten(error.message)}" + (f" ({allowed})" if allowed else ""))


def check_finite(value, where: str = "") -> None:
    """Refuse NaN and infinities anywhere in a config (JSON schema's bounds do not catch NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"config key {where or '<top level>'}: {value} is not a finite number")
    for key, child in value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ():
        check_finite(child, key_path(where, [key]))


def coerce_text(config: dict) -> dict:
    """Read text values as YAML where the schema wants a number or a boolean: Snakemake hands `--config`
    values over as text unless they look like an int, a float or True/False (`download=true` stays 'true')."""
    validator = jsonschema.Draft202012Validator(schema())
    for _ in range(1000):  # one fix per pass: a fix can change which branch of the schema applies
        for error in validator.iter_errors(config):
            if isinstance(error.instance, str) and error.validator in ("type", "oneOf", "anyOf"):
                try:
                    value = yaml.safe_load(error.instance)
                except yaml.YAMLError:
                    continue
                valid = jsonschema.Draft202012Validator({**error.schema, "$defs": schema()["$defs"]}).is_valid
                if not isinstance(value, str) and valid(value):
                    *parents, last = list(error.absolute_path)
                    target = config
                    for part in parents:
                        target = target[part]
                    target[last] = value
                    break
        else:
            return config
    return config


def _allowed(error: jsonschema.ValidationError) -> str:
    """What the failing schema node accepts, in words."""
    s = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "additionalProperties":
        return "allowed keys: " + ", ".join(sorted(s.get("properties", {}))) if s.get("properties") else ""
    if "enum" in s:
        return "allowed values: " + ", ".join(json.dumps(v) for v in s["enum"])
    bounds = [f"{sym} {s[word]}" for word, sym in (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="),
                                                   ("exclusiveMaximum", "<")) if word in s]  # fmt: skip
    kind = s.get("type")
    kind = " or ".join(kind) if isinstance(kind, list) else kind
    return "allowed: " + " ".join(filter(None, [kind, " and ".join(bounds)])) if bounds or kind else ""


def key_path(prefix: str, path) -> str:
    """`experiments.fig1.grid.data[1].lr`; a key that is not a plain word (spaces, control characters, dots,
    unicode marks) is quoted, `defaults['a\\rb']`, so a message stays one readable line."""
    out = prefix
    for part in path:
        if isinstance(part, str) and re.fullmatch(r"[A-Za-z0-9_-]+", part):
            out += f".{part}" if out else part
        else:
            out += f"[{shorten(repr(part), 40)}]"
    return out or "<top level>"


def shorten(text: str, limit: int = MAX_MESSAGE_VALUE) -> str:
    """A message that quotes a value, cut to a readable length (jsonschema quotes the whole value)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
