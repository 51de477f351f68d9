"""Fingerprints of the code each job runs, function by function, so that an edit reruns exactly the jobs whose
code it changes.

Snakemake reruns a job when its script changes, not when the library it calls changes, so every rule passes
the fingerprint of its job's code through `params:` (which Snakemake tracks). A job's code is its function
in memorization.pipeline.jobs and the catalog implementations it dispatches to (a metric table's `compute`,
a figure's statistic, drawing and findings, a claim's `evaluate`), and, followed by name through the
package, every function, class and constant those use: `from ..engine.sgd import train_step`, `catalog.table`,
`card.write` inside a function body are each followed to the one definition they name, and no further. So an
edit of `lass.csr` reruns the csr jobs and not training, which uses `lass.lass`; a function appended to a
module and used by nothing reruns nothing; an edit of one figure's statistic reruns that figure and the
scorecard. An implementation in an analysis file of a user's is followed the same way through its file.

What is hashed is each definition's syntax tree without docstrings and type annotations, so comments,
docstrings, annotations and formatting (`ruff format`) change nothing. Not followed: the catalog (its
declarations reach the jobs through their params: run specs, metric settings, column types, captions), the
modules outside the package, and what a module does at import beyond defining names (registering entries).

A job's code map, {"module:definition": hash}, says which definitions it depends on; `memorization why RUN`
compares the map a run's outputs were made with (results/code/<fingerprint>.json, written when a run of the
workflow starts) with today's, naming what changed.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import inspect
import json
import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from .. import catalog
from ..results.files import written

PACKAGE = __name__.split(".")[0]
ROOT = Path(__file__).resolve().parents[1]  # the package's folder
NOT_CODE = f"{PACKAGE}.catalog"  # the catalog and its modules


@dataclass
class Module:
    """A parsed file: its top-level definitions (name → statements) and its imports (name → what it names:
    a module, or (module, name) of a definition in it)."""

    name: str  # memorization.engine.sgd, or an analysis file's name
    package: str | None  # the package its relative imports resolve against (None outside the package)
    definitions: dict[str, list[ast.stmt]] = field(default_factory=dict)
    imports: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    analysed: dict[str, tuple] = field(default_factory=dict)  # name -> (hash, what it uses): `_analysed`


def _module_path(module: str) -> Path | None:
    """The file of a package module, or None for anything else."""
    if module != PACKAGE and not module.startswith(f"{PACKAGE}."):
        return None
    folder = ROOT.joinpath(*module.split(".")[1:])
    for path in (folder / "__init__.py", folder.with_suffix(".py")):
        if path.is_file():
            return path
    return None


def _is_type_checking(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.If) and "TYPE_CHECKING" in ast.unparse(stmt.test)


def _bind_imports(stmt: ast.stmt, package: str | None, into: dict) -> None:
    """The names an import statement binds, each to (module, None) or (module, name)."""
    if isinstance(stmt, ast.Import):
        for alias in stmt.names:  # `import a.b as c` binds c to a.b; `import a.b` binds a
            bound = alias.name if alias.asname else alias.name.split(".")[0]
            into[alias.asname or bound] = (bound, None)
    elif isinstance(stmt, ast.ImportFrom):
        base = stmt.module or ""
        if stmt.level:
            if package is None:
                return
            base = importlib.util.resolve_name("." * stmt.level + base, package)
        for alias in stmt.names:
            target = f"{base}.{alias.name}"
            into[alias.asname or alias.name] = (target, None) if _module_path(target) else (base, alias.name)


@cache
def _parse(path: Path, name: str, package: str | None, stamp: tuple) -> Module:  # noqa: ARG001 (stamp: the cache key)
    module = Module(name, package)

    def collect(body):
        for stmt in body:
            if _is_type_checking(stmt):
                continue
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                module.definitions.setdefault(stmt.name, []).append(stmt)
            elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
                _bind_imports(stmt, package, module.imports)
            elif isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                for target in stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]:
                    for node in ast.walk(target):
                        if isinstance(node, ast.Name):
                            module.definitions.setdefault(node.id, []).append(stmt)
            elif isinstance(stmt, (ast.If, ast.Try, ast.With)):  # definitions made under a condition
                for part in ("body", "orelse", "finalbody"):
                    collect(getattr(stmt, part, []))
                for handler in getattr(stmt, "handlers", []):
                    collect(handler.body)

    collect(ast.parse(path.read_text(), filename=str(path)).body)
    return module


def _load(name: str, path: Path | None = None) -> Module | None:
    """A package module by name, or a file outside the package by its path (an analysis file)."""
    path = path or _module_path(name)
    if path is None:
        return None
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    inside = name.startswith(f"{PACKAGE}.")
    st = path.stat()
    return _parse(path, name, package if inside else None, (st.st_mtime_ns, st.st_size))


_NOT_CODE_FIELDS = {"annotation", "returns", "type_comment", "ctx"}  # what changes nothing a job computes


def _without_docstrings(stmts: list[ast.stmt]) -> str:
    """The statements' syntax trees as text, without docstrings, type annotations and positions."""

    def text(node) -> str:
        if isinstance(node, list):
            return "[" + ",".join(map(text, node)) + "]"
        if not isinstance(node, ast.AST):
            return repr(node)
        fields = []
        for name in node._fields:
            value = getattr(node, name, None)
            if name in _NOT_CODE_FIELDS:
                continue
            if name == "body" and value and isinstance(value, list) and isinstance(value[0], ast.Expr):
                first = value[0].value
                value = value[1:] if isinstance(first, ast.Constant) and isinstance(first.value, str) else value
            fields.append(text(value))
        return f"{type(node).__name__}({','.join(fields)})"

    return text(stmts)


class _Uses(ast.NodeVisitor):
    """The names some statements use, as attribute chains (`card.write` → ["card", "write"]), annotations left
    out (they change nothing a job computes), and the imports made inside them (a function's own)."""

    def __init__(self):
        self.chains: list[list[str]] = []
        self.imports: list[ast.stmt] = []

    def visit_Import(self, node):
        self.imports.append(node)

    visit_ImportFrom = visit_Import

    def visit_arg(self, node):  # an argument's name is no use of anything, its annotation neither
        pass

    def visit_AnnAssign(self, node):
        self.visit(node.target)
        if node.value is not None:
            self.visit(node.value)

    def visit_FunctionDef(self, node):
        for part in (*node.decorator_list, node.args, *node.body):
            self.visit(part)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Name(self, node):
        if isinstance(node.ctx, ast.Load):
            self.chains.append([node.id])

    def visit_Attribute(self, node):
        parts, inner = [node.attr], node.value
        while isinstance(inner, ast.Attribute):
            parts.insert(0, inner.attr)
            inner = inner.value
        if isinstance(inner, ast.Name):
            self.chains.append([inner.id, *parts])
        else:
            self.visit(inner)


def _resolve(module: Module, chain: list[str], local: dict) -> tuple[str, str] | None:
    """The definition (module name, name) that a chain of names used in `module` leads to, if any."""
    head, *rest = chain
    if head in local:
        target = local[head]
    elif head in module.definitions:
        return module.name, head
    elif head in module.imports:
        target = module.imports[head]
    else:
        return None  # a builtin, a local variable, an argument
    return _follow(target, rest)


def _follow(target: tuple[str, str | None], rest: list[str], depth: int = 0) -> tuple[str, str] | None:
    """Follow (module, name) and then the attributes `rest` to a definition of the package."""
    name, attr = target
    if depth > 20 or not (name == PACKAGE or name.startswith(f"{PACKAGE}.")) or name.startswith(NOT_CODE):
        return None
    if attr is None:  # a module: its attribute
        if not rest:
            return None
        attr, rest = rest[0], rest[1:]
        if _module_path(f"{name}.{attr}"):
            return _follow((f"{name}.{attr}", None), rest, depth + 1)
    module = _load(name)
    if module is None:
        return None
    if attr in module.definitions:
        return module.name, attr
    if attr in module.imports:  # re-exported
        return _follow(module.imports[attr], rest, depth + 1)
    return None


def _root(target) -> tuple[Module, str]:
    """The module and top-level name of an implementation: "module:function", or the function itself."""
    if callable(target):
        name = target.__qualname__.split(".")[0]  # a nested function: its outer one
        module = target.__module__
        path = Path(inspect.getsourcefile(target))
    else:
        module, _, name = target.partition(":")
        path = _module_path(module) or Path(inspect.getsourcefile(importlib.import_module(module)))
    loaded = _load(module, path) if module.startswith(f"{PACKAGE}.") else _load(path.name, path)
    return loaded, name


def _analysed(module: Module, name: str) -> tuple[str, list[tuple[Module, str]]]:
    """A definition's hash and the definitions it uses (each worked out once per file and process)."""
    if name not in module.analysed:
        stmts = module.definitions[name]
        uses, local = _Uses(), {}
        for stmt in stmts:
            uses.visit(stmt)
        for stmt in uses.imports:
            _bind_imports(stmt, module.package, local)
        found = [_resolve(module, chain, local) for chain in uses.chains]
        used = [(module if m == module.name else _load(m), n) for m, n in filter(None, found)]
        digest = hashlib.sha256(_without_docstrings(stmts).encode()).hexdigest()[:12]
        module.analysed[name] = digest, [(m, n) for m, n in used if m is not None]
    return module.analysed[name]


def code_map(job: str, implementations=()) -> dict[str, str]:
    """{"module:definition": hash} of every definition job `job` (a function of memorization.pipeline.jobs)
    and the implementations it dispatches to depend on, followed through the package."""
    todo = [_root(f"{PACKAGE}.pipeline.jobs:{job}")]
    todo += [_root(t) for t in implementations if not (callable(t) and t.__module__.startswith(NOT_CODE))]
    todo = [(m, n) for m, n in todo if m is not None and not m.name.startswith(NOT_CODE)]
    if not todo[0][0].definitions.get(job):
        raise KeyError(f"no job function {job!r} in {PACKAGE}.pipeline.jobs")
    seen: dict[tuple[str, str], str] = {}
    while todo:
        module, name = todo.pop()
        if (module.name, name) in seen or name not in module.definitions:
            continue
        seen[(module.name, name)], used = _analysed(module, name)
        todo += used
    return {f"{_short(m)}:{n}": h for (m, n), h in sorted(seen.items())}


def _short(module: str) -> str:
    """A module's name without the package's (engine.sgd), or an analysis file's name as it is."""
    return module.removeprefix(f"{PACKAGE}.")


def fingerprint(code: dict[str, str]) -> str:
    """16 hex digits standing for a code map."""
    return hashlib.sha256(json.dumps(code, sort_keys=True).encode()).hexdigest()[:16]


def changes(before: dict[str, str], now: dict[str, str]) -> list[str]:
    """What differs between two code maps, in words: "engine.sgd:seed_group_step changed", "... is new"."""
    out = [f"{k} changed" for k in sorted(before.keys() & now.keys()) if before[k] != now[k]]
    out += [f"{k} is new to it" for k in sorted(now.keys() - before.keys())]
    out += [f"{k} is no longer used" for k in sorted(before.keys() - now.keys())]
    return out


def metric_implementations(table: str) -> tuple:
    """What a metric job of `table` dispatches to: the table's compute, and the compute of each score it
    declares (catalog.Score)."""
    entry = catalog.table(table)
    return (entry.compute, *dict.fromkeys(c.compute for c in entry.columns if isinstance(c, catalog.Score)))


def record(code_maps: dict[str, dict], folder: str | os.PathLike) -> None:
    """Write each code map as <folder>/<fingerprint>.json, once (a fingerprint always stands for one map)."""
    folder = Path(folder)
    for print_, code in code_maps.items():
        path = folder / f"{print_}.json"
        if not path.exists():
            folder.mkdir(parents=True, exist_ok=True)
            with written(path) as f:
                f.write((json.dumps(code, indent=1, sort_keys=True) + "\n").encode())


def recorded(folder: str | os.PathLike, print_: str) -> dict | None:
    """The code map a fingerprint stands for, as `record` wrote it (None if it was not recorded)."""
    try:
        return json.loads((Path(folder) / f"{print_}.json").read_text())
    except (OSError, ValueError):
        return None


def explain(folder: str | os.PathLike, before: str, now: str | dict) -> str:
    """What changed between the code of fingerprint `before` and `now` (a fingerprint, or the code map itself),
    in words, from the maps recorded in `folder`."""
    old, new = recorded(folder, before), now if isinstance(now, dict) else recorded(folder, now)
    if old is None or new is None:
        missing = before if old is None else now
        return f"its code changed (the code of fingerprint {missing} is not recorded in {folder})"
    return "; ".join(changes(old, new)) or "its code changed"
