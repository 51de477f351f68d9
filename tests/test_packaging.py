"""The software the project declares: every third-party import has a dependency with a lower bound, and the
conda environment pins what requirements.lock pins."""

import ast
import re
import sys

import tomllib
import yaml

from .conftest import ROOT

DISTRIBUTION = {"sklearn": "scikit-learn", "yaml": "pyyaml"}  # import name -> distribution, where they differ
CONDA = {"pytorch": "torch", "matplotlib-base": "matplotlib"}  # conda-forge name -> PyPI name


def third_party_imports() -> set[str]:
    found = set()
    for path in (ROOT / "workflow" / "memorization").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else ([node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else [])
            )
            for name in names:
                top = name.split(".")[0]
                if top != "memorization" and top not in sys.stdlib_module_names:
                    found.add(DISTRIBUTION.get(top, top))
    return found


def test_every_import_is_a_declared_dependency_with_a_lower_bound():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {}
    for requirement in project["dependencies"] + [
        r for extra in project["optional-dependencies"].values() for r in extra
    ]:
        name = re.split(r"[<>=\[ ]", requirement)[0].lower()
        declared.setdefault(name, []).append(requirement)
    imports = third_party_imports()
    assert {"torch", "numpy", "pandas", "pyarrow", "matplotlib", "jsonschema", "pyyaml"} <= imports
    for name in imports:
        assert name in declared, f"{name} is imported but not declared in pyproject.toml"
        assert any(">=" in r for r in declared[name]), f"{name} has no lower bound"


def test_the_conda_environment_pins_the_locked_versions():
    locked = dict(
        line.split("==")
        for line in (ROOT / "requirements.lock").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    locked = {k.lower(): v for k, v in locked.items()}
    env = yaml.safe_load((ROOT / "envs" / "memorization.yaml").read_text())
    assert env["channels"] == ["conda-forge", "nodefaults"]
    pins = dict(d.split("=") for d in env["dependencies"] if isinstance(d, str) and not d.startswith("python="))
    assert pins, "the environment pins nothing"
    for conda_name, version in pins.items():
        assert locked[CONDA.get(conda_name, conda_name)] == version, conda_name
    # what Snakemake's own process imports, not the jobs: Snakemake and psutil (pipeline/interrupt.py)
    for runtime in third_party_imports() - {"snakemake", "psutil"}:
        assert runtime in {CONDA.get(n, n) for n in pins}, f"{runtime} is missing from envs/memorization.yaml"
