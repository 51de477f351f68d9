"""Fingerprints of the code each job runs, so that editing it reruns exactly what it changes.

Snakemake reruns a job when its script changes, but not when a module the script imports changes. So every
rule passes a fingerprint of the code it runs through `params:` (which Snakemake tracks): the job's
function in `memorization.jobs`, every package module that function imports, followed transitively
(imports inside functions too), and the module of the registered implementation it dispatches to (for
an analysis registered from outside the package: its whole file). Editing the training code reruns
training and what reads its checkpoints; editing a figure reruns only figures.

What is hashed is the syntax tree without docstrings, so comments, docstrings and formatting (`ruff format`)
change no fingerprint. `registry` is left out: what it holds reaches the jobs through their params (run
specs, metric settings, column types, captions), and a new caption must not retrain anything.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
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
    return HERE / f"{module.split('.', 1)[1]}.py"


def _imported(node: ast.AST) -> set[str]:
    """Package modules imported anywhere inside `node`."""
    found = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.ImportFrom):
            base = sub.module or ""
            if sub.level == 1:  # from .x import y / from . import x
                names = [f"{PACKAGE}.{base}"] if base else [f"{PACKAGE}.{a.name}" for a in sub.names]
            elif base == PACKAGE:
                names = [f"{PACKAGE}.{a.name}" for a in sub.names]
            else:
                names = [base] if base.startswith(f"{PACKAGE}.") else []
        elif isinstance(sub, ast.Import):
            names = [a.name for a in sub.names if a.name.startswith(f"{PACKAGE}.")]
        else:
            continue
        found.update(n for n in names if _module_path(n).is_file())
    return found


def closure(modules) -> list[str]:
    """The package modules in `modules` and everything they import, transitively; sorted."""
    todo, seen = [m for m in modules if m.startswith(f"{PACKAGE}.")], set()
    while todo:
        module = todo.pop()
        if module in seen or module in NOT_CODE:
            continue
        seen.add(module)
        todo.extend(_imported(_tree(_module_path(module))))
    return sorted(seen)


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
    modules, files = set(_imported(function)), set()
    for target in implementations:
        module = target.partition(":")[0] if isinstance(target, str) else target.__module__
        if module.startswith(f"{PACKAGE}."):
            modules.add(module)
        else:
            files.add(
                inspect.getsourcefile(target)
                if callable(target)
                else inspect.getsourcefile(importlib.import_module(module))
            )
    parts = [_without_docstrings(function)]
    parts += [f"{m}\n{_without_docstrings(_tree(_module_path(m)))}" for m in closure(modules)]
    parts += [_without_docstrings(ast.parse(Path(f).read_text())) for f in sorted(files)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
