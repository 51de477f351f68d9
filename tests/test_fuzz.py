"""A fuzz test of the front door: Hypothesis mutates the default config.yaml and tests/slurm/tiny.yaml (wrong
types, out-of-range values, unknown keys, huge and empty containers, unicode, YAML aliases and alias bombs,
deletions, broken YAML text; and, apart, the file's bytes: bytes replaced or inserted, UTF-16, a file cut
short, nesting too deep) and reads each mutation as the workflow does, before any job. Each one is either
accepted (and then every run resolves, is named and has a memory model, as the Snakefile needs) or refused
with a ConfigError of one line that names the key, or the file and line; any other exception is a crash.

The suite tries FUZZ_EXAMPLES examples (300); `make fuzz` tries 5,000 and prints the counts."""

from __future__ import annotations

import copy
import functools
import itertools
import os
import re
from collections import Counter
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memorization import config as configuration
from memorization.config.schema import schema
from memorization.engine import memory

from .conftest import ROOT

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))
DOCUMENTS = {name: yaml.safe_load((ROOT / name).read_text()) for name in ("config.yaml", "tests/slurm/tiny.yaml")}

# What a key or value of a config could be, hostile included: every YAML scalar type, edges of the numbers,
# unicode (control characters, right-to-left marks, surrogates' neighbours), text too long for a path.
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)
KEYS = ["experiments", "seeds", "spec", "grid", "tables", "figures", "base", "defaults", "metrics", "device",
        "analyses", "width", "lr", "epochs"]  # fmt: skip
NAMES = st.one_of(TEXT, st.sampled_from(KEYS))
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 1, 2**31, 2**63, 10**100]),
    st.floats(allow_nan=True, allow_infinity=True),
    TEXT,
    st.sampled_from(["", "digits", "random", "gaussian", "cpu", "cuda", "true", "1e3", "nan", "~", "../../etc"]),
    st.text(max_size=1).map(lambda c: c * 5000),  # a long value, for the messages that quote it
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(NAMES, inner, max_size=4)),
    max_leaves=8,
)


def paths(tree, prefix=(), seen=None):
    """Every (path, value) of a parsed YAML tree, the root included; a container shared by aliases (an alias
    bomb) or a long one (a huge mutation) is entered once, at most 50 children."""
    seen = set() if seen is None else seen
    yield prefix, tree
    if id(tree) in seen:
        return
    seen.add(id(tree))
    children = tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, list) else ()
    for key, child in itertools.islice(children, 50):
        yield from paths(child, (*prefix, key), seen)


def at(tree, path):
    for part in path:
        tree = tree[part]
    return tree


def alias_bomb(depth: int, width: int):
    """`depth` levels of `width` aliases of the level below: width**depth values from a few lines of YAML."""
    level = ["x"]
    for _ in range(depth):
        level = [level] * width
    return level


@functools.cache
def huge_text(kind: str, n: int) -> str:
    """A list or mapping of n values as one line of YAML: written directly, as dumping 120,000 values through
    PyYAML took a second per example (and the fuzz test minutes)."""
    return (
        "[" + ", ".join(map(str, range(n))) + "]"
        if kind == "list"
        else "{" + ", ".join(f"k{i}: {i}" for i in range(n)) + "}"
    )


@st.composite
def mutations(draw):
    """(name of the document mutated, its YAML text after 1–3 mutations)."""
    name = draw(st.sampled_from(sorted(DOCUMENTS)))
    doc = copy.deepcopy(DOCUMENTS[name])
    for _ in range(draw(st.integers(1, 3))):
        places = list(paths(doc))
        path, value = draw(st.sampled_from(places))
        kind = draw(st.sampled_from(["delete", "replace", "add key", "alias", "bomb", "empty", "huge", "text"]))
        if kind == "delete" and path:
            parent = at(doc, path[:-1])
            del parent[path[-1]]
        elif kind == "replace" and path:
            at(doc, path[:-1])[path[-1]] = draw(VALUES)
        elif kind == "add key" and isinstance(value, dict):
            value[draw(NAMES)] = draw(VALUES)
        elif kind == "alias" and path:  # the same subtree in a second place: YAML writes an anchor and an alias
            other, _ = draw(st.sampled_from(places))
            if other and not (path[: len(other)] == other or other[: len(path)] == path):
                at(doc, other[:-1])[other[-1]] = value
        elif kind == "bomb" and path:
            at(doc, path[:-1])[path[-1]] = alias_bomb(draw(st.integers(2, 9)), draw(st.integers(2, 9)))
        elif kind == "empty" and path:
            at(doc, path[:-1])[path[-1]] = draw(st.sampled_from([[], {}, "", None]))
        elif kind == "huge" and path:  # a placeholder, its text put in after dumping (see huge_text)
            n = draw(st.sampled_from([1_000, 120_000]))
            at(doc, path[:-1])[path[-1]] = f"HUGE_{'list' if draw(st.booleans()) else 'dict'}_{n}"
    text = re.sub(r"\bHUGE_(list|dict)_(\d+)\b", lambda m: huge_text(m.group(1), int(m.group(2))),
                  yaml.dump(doc, allow_unicode=True, sort_keys=False))  # fmt: skip
    if draw(st.booleans()) and draw(st.booleans()):  # a broken file: text inserted or cut anywhere
        cut = draw(st.integers(0, len(text)))
        text = text[:cut] + draw(st.sampled_from(["", ":", "- ", "{", "*a ", "&a [", "\t", '"', "\n  x: 1\n"]))
        text += text[cut:] if draw(st.booleans()) else ""
    return name, text


def top_keys(text: str) -> set[str]:
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError:
        return set()
    return {str(k) for k in loaded} if isinstance(loaded, dict) else set()


def refusal_is_readable(message: str, file: Path, text: str) -> bool:
    """One line, bounded, naming the key (`config key experiments.x.seeds: …`, `experiments.x (grid point …): …`)
    or the file and where in it; or a count of errors and such a line for each."""
    lines = message.splitlines()
    if re.fullmatch(r"\d+ errors:", lines[0]):  # each error a line, the first 20 of them, then how many more
        items = lines[1:-1] if re.fullmatch(r"  - and \d+ more", lines[-1]) else lines[1:]
        count = int(lines[0].split()[0])
        return len(items) == min(count, 20) and all(
            line.startswith("  - ") and refusal_is_readable(line[4:], file, text) for line in items
        )
    if len(lines) != 1 or len(message) > 1500:
        return False
    if message.startswith("config key ["):  # a key of odd characters, quoted
        return True
    key = re.match(r"(?:config key )?(<top level>|[A-Za-z0-9_]+)[.\[:]|(experiments)\.\w+ \(grid point", message)
    if key:
        first = key.group(1) or key.group(2)
        return first == "<top level>" or first in top_keys(text) or first in schema()["properties"]
    return message.startswith(f"{file}") or message.startswith("config file") or "base" in message


def read_as_the_workflow_does(file: Path) -> dict:
    config = configuration.load_config(files=[file], workdir=file.parent)
    config.labels  # noqa: B018 (computed as the workflow computes it)
    for runs in config.experiments.values():
        for run in runs:
            memory.training_memory_mb(run)
            run.run_id, run.data.dataset_id  # noqa: B018
    return config.experiments


def fuzz(strategy, write, file: Path, label: str, capsys) -> None:
    """Every example of `strategy`, written to `file` by `write`, is accepted or refused in one readable line
    (never a crash); the counts are printed, and both doors must have been reached."""
    counts = Counter()

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=EXAMPLES <= 300,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(strategy)
    def one(example):
        name, content = example
        write(file, content)
        counts["tried"] += 1
        try:
            read_as_the_workflow_does(file)
        except configuration.ConfigError as err:
            counts["refused"] += 1
            text = file.read_bytes().decode("utf-8", errors="replace")
            assert refusal_is_readable(str(err), file, text), f"unreadable refusal of a mutated {name}: {err}"
        else:
            counts["accepted"] += 1

    one()
    with capsys.disabled():
        tried, accepted, refused = counts["tried"], counts["accepted"], counts["refused"]
        print(f"\n{label}: {tried} tried, {accepted} accepted, {refused} refused, 0 crashes")
    assert counts["accepted"] > 0 and counts["refused"] > 0  # the mutations reach both sides of the door


def test_every_mutated_config_is_accepted_or_refused_in_one_line_naming_the_key(tmp_path, capsys):
    fuzz(mutations(), Path.write_text, tmp_path / "config.yaml", "fuzz", capsys)


@st.composite
def byte_mutations(draw):
    """(name of the document, its file's bytes after 1–3 mutations of the bytes themselves): a byte replaced
    or inserted anywhere (a NUL, a Latin-1 letter, a lone UTF-8 continuation byte, a control character), the
    whole file in UTF-16 or cut short, brackets nested deeper than a config can be."""
    name = draw(st.sampled_from(sorted(DOCUMENTS)))
    data = yaml.dump(DOCUMENTS[name], allow_unicode=True, sort_keys=False).encode()
    for _ in range(draw(st.integers(1, 3))):
        at_ = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["replace", "insert", "utf16", "cut", "nest"]))
        byte = draw(st.one_of(st.sampled_from([b"\x00", b"\xe9", b"\x80", b"\x1b", b"\xff\xfe", b"\r"]),
                              st.binary(min_size=1, max_size=3)))  # fmt: skip
        if kind == "replace":
            data = data[:at_] + byte + data[at_ + len(byte) :]
        elif kind == "insert":
            data = data[:at_] + byte + data[at_:]
        elif kind == "utf16":
            data = data.decode("utf-8", errors="replace").encode("utf-16")
        elif kind == "cut":
            data = data[:at_]
        else:
            depth = draw(st.sampled_from([60, 500, 5000]))
            data = data[:at_] + b" " + b"[" * depth + b"]" * depth + data[at_:]
    return name, data


def test_every_byte_mutated_file_is_accepted_or_refused_in_one_line(tmp_path, capsys):
    """Was: a Latin-1 byte, a UTF-16 file or a NUL byte gave UnicodeDecodeError or ReaderError without the
    file's name, a file nested 500 deep a RecursionError of thousands of traceback lines."""
    fuzz(byte_mutations(), Path.write_bytes, tmp_path / "config.yaml", "byte fuzz", capsys)


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_the_unmutated_documents_are_accepted(name, tmp_path):
    file = tmp_path / "config.yaml"
    file.write_text(yaml.dump(DOCUMENTS[name], allow_unicode=True, sort_keys=False))
    assert read_as_the_workflow_does(file)
