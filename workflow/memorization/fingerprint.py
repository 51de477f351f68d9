"""Fingerprints of the code each job runs, so that editing it reruns exactly what it changes.

Snakemake reruns a job when its script changes, but not when a module the script imports changes. So every
rule passes a fingerprint of the code it runs through `params:` (which Snakemake tracks): the job's
function in `memorization.jobs`, every package module that function imports, followed transitively
(imports inside functions too), and the registered implementations it dispatches to. Of an implementation
it is the function and what it uses of its file (the file's definitions it names, followed transitively,
and the package modules those import): appending an unrelated function to an `analyses:` file reruns
nothing, and editing a figure's drawing reruns the figure but not the scorecard, which runs the figure's
statistic and claims. Editing the training code reruns training and what reads its checkpoints.

What is hashed is the syntax tree without docstrings, so comments, docstrings and formatting (`ruff format`)
change no fingerprint. `registry` is left out: what it holds reaches the jobs through their params (run
specs, metric settings, column types, captions), and a new caption must not retrain anything.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import importlib.util
import inspect
from functools import cache
from pathlib import Path

PACKAGE = __name__.rpartition(".")[0]
HERE = Path(__file__).resolve().parent
NOT_CODE = {f"{PACKAGE}.registry"}


@cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _module_path(module: str) -> Path:
    """The file of a package module (`memorization.papers` is a package: its __init__.py)."""
    parts = module.split(".")[1:]
    folder = HERE.joinpath(*parts)
    return folder / "__init__.py" if folder.is_dir() else HERE.joinpath(*parts[:-1], f"{parts[-1]}.py")


def _is_module(name: str) -> bool:
    return name.startswith(f"{PACKAGE}.") and (_module_path(name).is_file())


def _imported(node: ast.AST, within: str = PACKAGE) -> set[str]:
    """Package modules imported anywhere inside `node`, a part of module `within` (relative imports are
    resolved against it): `from .x import y`, `from ...claims import Verdict`, `from . import x`."""
    package = within if within == PACKAGE or _module_path(within).name == "__init__.py" else within.rpartition(".")[0]
    found = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.ImportFrom):
            base = (
                importlib.util.resolve_name("." * sub.level + (sub.module or ""), package) if sub.level else sub.module
            )
            # `from base import name`: name is a module of the package, or a name defined in base
            names = [f"{base}.{a.name}" for a in sub.names if _is_module(f"{base}.{a.name}")] + [base]
        elif isinstance(sub, ast.Import):
            names = [a.name for a in sub.names]
        else:
            continue
        found.update(n for n in names if n and _is_module(n))
    return found


def closure(modules) -> list[str]:
    """The package modules in `modules` and everything they import, transitively; sorted."""
    todo, seen = [m for m in modules if m.startswith(f"{PACKAGE}.")], set()
    while todo:
        module = todo.pop()
        if module in seen or module in NOT_CODE:
            continue
        seen.add(module)
        todo.extend(_imported(_tree(_module_path(module)), module))
    return sorted(seen)


def _used_definitions(tree: ast.Module, name: str) -> list[ast.stmt] | None:
    """The top-level statements of a file that function `name` depends on: its definition, and every
    definition or import of the file whose name it uses, followed transitively; None if `name` is not a
    top-level definition (then the whole file counts)."""
    defined: dict[str, ast.stmt] = {}
    for stmt in tree.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined[stmt.name] = stmt
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            for alias in stmt.names:
                defined[(alias.asname or alias.name).split(".")[0]] = stmt
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            for target in stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]:
                for node in ast.walk(target):
                    if isinstance(node, ast.Name):
                        defined[node.id] = stmt
    if name not in defined:
        return None
    todo, used = [defined[name]], []
    while todo:
        stmt = todo.pop()
        if any(stmt is u for u in used):
            continue
        used.append(stmt)
        todo += [defined[n.id] for n in ast.walk(stmt) if isinstance(n, ast.Name) and n.id in defined]
    return sorted(used, key=lambda s: s.lineno)


def _implementation_code(target) -> tuple[str, set[str]]:
    """What a registered implementation depends on: (the definitions of its module that it uses, as text; the
    package modules those import). A figure's claims thus depend on its statistic, not on its drawing."""
    if callable(target):
        module, name = target.__module__, target.__qualname__.split(".")[0]  # a nested function: its outer one
        path = Path(inspect.getsourcefile(target))
    else:
        module, _, name = target.partition(":")
        inside = module.startswith(f"{PACKAGE}.")
        path = _module_path(module) if inside else Path(inspect.getsourcefile(importlib.import_module(module)))
    if module in NOT_CODE:  # e.g. a default defined in the registry
        return "", set()
    tree = _tree(path)
    used = _used_definitions(tree, name)
    body = ast.Module(body=tree.body if used is None else used, type_ignores=[])  # a lambda: the whole file
    within = module if module.startswith(f"{PACKAGE}.") else PACKAGE
    return f"{module}:{name}\n{_without_docstrings(body)}", _imported(body, within)


def _without_docstrings(tree: ast.AST) -> str:
    tree = ast.parse(ast.unparse(tree))  # a copy
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(getattr(body[0], "value", None), ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, annotate_fields=False)


def _job_function(name: str) -> ast.FunctionDef:
    for node in _tree(HERE / "jobs.py").body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return node
    raise KeyError(f"no job function {name!r} in {PACKAGE}.jobs")


def job_fingerprint(job: str, implementations=()) -> str:
    """A 16-hex-digit fingerprint of the code that job `job` (a function of memorization.jobs) runs, and of
    the registered `implementations` it dispatches to at run time ("module:function" or the function): a
    package module with its imports, or the whole file of an analysis registered from outside the package."""
    function = _job_function(job)
    modules, used = set(_imported(function, f"{PACKAGE}.jobs")), set()
    for target in implementations:
        code, imported = _implementation_code(target)
        used.add(code)
        modules |= imported
    parts = [_without_docstrings(function)]
    parts += [f"{m}\n{_without_docstrings(_tree(_module_path(m)))}" for m in closure(modules)]
    parts += sorted(used)
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
