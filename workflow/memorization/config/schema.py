"""The config schema (config.schema.yaml) with the values the catalog defines filled in, and validation whose
messages name the key path and what is allowed, in one readable line. We call jsonschema ourselves rather
than snakemake.utils.validate, whose message repeats the whole schema."""

from __future__ import annotations

import copy
import difflib
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
    """Validate `instance` against a part of the schema; every error at once as a ConfigError, a line each,
    naming its key, what is allowed, and the nearest allowed name where one was misspelt."""
    found = errors(instance, subschema, prefix)
    if found:
        raise ConfigError(joined(found))


MAX_ERRORS = 20  # listed in one refusal; a config with more is named by its first ones and a count


def joined(messages: list[str]) -> str:
    """One message, or a count and a line each (the first MAX_ERRORS, then how many more)."""
    if len(messages) == 1:
        return messages[0]
    shown = [f"  - {m}" for m in messages[:MAX_ERRORS]]
    if len(messages) > MAX_ERRORS:
        shown.append(f"  - and {len(messages) - MAX_ERRORS} more")
    return f"{len(messages)} errors:\n" + "\n".join(shown)


def errors(instance: Any, subschema: dict, prefix: str = "") -> list[str]:
    """Every schema error of `instance`, one message each, in the order of the keys."""
    validator = jsonschema.Draft202012Validator({**subschema, "$defs": schema()["$defs"]})
    out = []
    for error in sorted(validator.iter_errors(instance), key=lambda e: [str(p) for p in e.absolute_path]):
        message = _message(jsonschema.exceptions.best_match([error]), prefix)
        if message not in out:
            out.append(message)
    return out


def _message(error: jsonschema.ValidationError, prefix: str) -> str:
    where = shorten(key_path(prefix, error.absolute_path))
    if "propertyNames" in error.schema_path:  # a name that folders are made of
        return (
            f"config key {where}: the name {shorten(repr(error.instance), 80)} ({len(error.instance)} characters) "
            "is not a name: a letter, then letters, digits or _, at most "
            f"{error.schema.get('maxLength', '?')} characters in all"
        )
    if error.validator == "enum" and "figures" in error.absolute_path and not catalog.FIGURES:
        return f"config key {where}: no figures are registered; import memorization.papers first"
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(error.schema.get("properties", {}))
        unknown = [k for k in error.instance if k not in allowed]
        spec_keys = schema()["$defs"]["partial_spec"]["properties"]
        parent = where if error.absolute_path or prefix else ""
        if all(k in spec_keys for k in unknown) and not set(allowed) & set(spec_keys):
            hint = " (run-spec keys: under defaults: or an experiment's spec:)"
        else:
            hint = f" (allowed keys: {', '.join(allowed)})" if allowed else ""
        if len(unknown) == 1:
            name = key_path(parent, unknown)
            return f"config key {name}: not a key here{did_you_mean(unknown[0], allowed)}{hint}".replace(
                "run-spec keys", "a run-spec key"
            )
        named = ", ".join(
            shorten(key_path("", [k]), 40) + (f" ({hint_[2:]})" if (hint_ := did_you_mean(k, allowed)) else "")
            for k in unknown[:3]
        )
        more = f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""
        return f"config key {parent or '<top level>'}: {len(unknown)} keys that are not keys here, {named}{more}{hint}"
    if error.validator == "pattern" and "x-means" in error.schema:
        return f"config key {where}: {shorten(repr(error.instance), 80)} is not {error.schema['x-means']}"
    if error.validator == "enum" and isinstance(error.instance, str):
        allowed = [v for v in error.schema["enum"] if isinstance(v, str)]
        return (
            f"config key {where}: {shorten(repr(error.instance), 80)} is not allowed"
            f"{did_you_mean(error.instance, allowed)}"
            f" (allowed values: {', '.join(json.dumps(v) for v in error.schema['enum'])})"
        )
    allowed = _allowed(error)
    return f"config key {where}: {shorten(error.message)}" + (f" ({allowed})" if allowed else "")


def did_you_mean(given: str, names: list[str]) -> str:
    given = str(given)
    close = difflib.get_close_matches(given, names, n=1, cutoff=0.6) or sorted(
        (n for n in names if len(n) > 1 and (given.startswith(n) or n.startswith(given))), key=len, reverse=True
    )  # a near spelling, else a name it extends or shortens (lr_rate: lr)
    return f"; did you mean {close[0]!r}?" if close else ""


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
