"""Reading config files safely: YAML's safe loader refusing a key given twice, errors that name the file and
line, and bounds on a config's size checked before anything walks it (a YAML alias bomb is a few lines)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

MAX_CONFIG_BYTES = 1_000_000
MAX_CONFIG_VALUES = 100_000
MAX_DEPTH = 50  # levels of nesting (the schema's deepest path is 6)


class ConfigError(ValueError):
    """A config value that cannot be used; the message names the key path (or file and line) and what is
    allowed."""


class _StrictLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """YAML's safe loader, refusing a key that appears twice in one mapping (plain YAML keeps the last and
    silently drops the first: a second experiment of the same name would replace the first). Its parser is
    libyaml's where PyYAML was built with it (as its wheels are): the same documents and marks, read about ten
    times as fast, which a config near the size bound (a million bytes) needs."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                continue  # `<<: *anchor` merges keys that the mapping's own keys may override
            if key_node.value in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"the key {key_node.value!r} appears twice (first on line {seen[key_node.value] + 1})",
                    key_node.start_mark,
                )
            seen[key_node.value] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def check_size(value: Any, where: str) -> None:
    """Refuse a config that expands to more than MAX_CONFIG_VALUES values, counting a value once per place it
    appears (as everything downstream will), in time proportional to its distinct values: what YAML aliases
    share is counted by multiplying, never by walking it again; or one nested more than MAX_DEPTH deep."""
    sizes: dict[int, int] = {}

    def size(v, depth: int) -> int:
        if depth > MAX_DEPTH:
            raise ConfigError(f"{where}: nested more deeply than a config can be ({MAX_DEPTH} levels at most)")
        if id(v) in sizes:
            return sizes[id(v)]
        total = 1
        for child in v.values() if isinstance(v, dict) else v if isinstance(v, list) else ():
            total += size(child, depth + 1)
            if total > MAX_CONFIG_VALUES:
                break
        sizes[id(v)] = total
        return total

    if size(value, 0) > MAX_CONFIG_VALUES:
        raise ConfigError(
            f"{where}: more than {MAX_CONFIG_VALUES:,} values once its YAML aliases are expanded; a config is a "
            "page of keys (are aliases nested in aliases?)"
        )


def read_yaml(path: Path) -> dict:
    """One config file as a mapping, or a ConfigError naming the file, line and column."""
    if not path.is_file():
        raise ConfigError(f"{path}: not a regular file; a config is a YAML file")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: {path.stat().st_size:,} bytes, more than a config may have ({MAX_CONFIG_BYTES:,})")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start}); save it "
                          "as UTF-8") from None  # fmt: skip
    try:
        loaded = yaml.load(text, Loader=_StrictLoader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark else str(path)
        if isinstance(err, yaml.constructor.ConstructorError):
            raise ConfigError(f"{where}: {err.problem}") from None
        raise ConfigError(f"{where}: not valid YAML ({err.problem or err.context})") from None
    except yaml.reader.ReaderError as err:  # a character YAML does not allow (a NUL byte, a control character)
        raise ConfigError(f"{path}, character {err.position + 1}: not valid YAML ({err.reason})") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested more deeply than a config can be ({MAX_DEPTH} levels at most)") from None
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
