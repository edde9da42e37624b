"""What a user gets from ``pip install spm-workbench``: every import declared, every file shipped.

Each third-party module that ``spm_models`` or a report notebook imports belongs to a
distribution pyproject.toml declares (pinned alike in environment.yml), and the explicit
package list of pyproject.toml names every subpackage.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import re
import sys
import tomllib
from pathlib import Path

from spm_models.review.kernels.server import KERNEL_PRELOAD

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "spm_models"
REPORTS = ROOT / "notebooks" / "reports"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _normalize(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared(requirements: list[str]) -> set[str]:
    return {_normalize(re.match(r"[A-Za-z0-9._-]+", r).group()) for r in requirements}


def _top_level_imports(source: str) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _notebook_code(path: Path) -> str:
    nb = json.loads(path.read_text(encoding="utf-8"))
    lines = [
        line
        for cell in nb["cells"]
        if cell["cell_type"] == "code"
        for line in "".join(cell["source"]).splitlines()
        if not line.lstrip().startswith(("%", "!"))  # IPython magics and shell lines
    ]
    return "\n".join(lines)


def imports_by_module() -> dict[str, set[str]]:
    """Third-party top-level module -> the files that import it (spm_models and report notebooks)."""
    found: dict[str, set[str]] = {}
    sources = [(p, p.read_text(encoding="utf-8")) for p in sorted(PKG.rglob("*.py"))]
    sources += [(p, _notebook_code(p)) for p in sorted(REPORTS.glob("*.ipynb"))]
    for path, source in sources:
        for name in _top_level_imports(source):
            found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    # The report kernels' fork server imports these by name (importlib.import_module).
    for name in KERNEL_PRELOAD:
        found.setdefault(name.split(".")[0], set()).add("KERNEL_PRELOAD")
    ours = {"spm_models", "__future__"}
    return {m: f for m, f in found.items() if m not in sys.stdlib_module_names and m not in ours}


def undeclared(imports: dict[str, set[str]], declared: set[str], providers: dict[str, list[str]]) -> list[str]:
    """One line per imported module whose distribution is not declared (or not installed)."""
    problems = []
    for module, files in sorted(imports.items()):
        dists = {_normalize(d) for d in providers.get(module, [])}
        if not dists:
            problems.append(f"{module} (imported by {', '.join(sorted(files))}) is not installed")
        elif not dists & declared:
            problems.append(
                f"{module} (imported by {', '.join(sorted(files))}) comes from {' or '.join(sorted(dists))}, "
                "which pyproject.toml does not declare"
            )
    return problems


def test_every_imported_distribution_is_declared():
    declared = _declared(PYPROJECT["project"]["dependencies"])
    problems = undeclared(imports_by_module(), declared, importlib.metadata.packages_distributions())
    assert not problems, "declare them in pyproject.toml and environment.yml:\n" + "\n".join(problems)


def test_an_undeclared_import_is_caught():
    imports = {"tqdm": {"spm_models/review/pipeline.py"}, "numpy": {"spm_models/calendar.py"}}
    providers = {"tqdm": ["tqdm"], "numpy": ["numpy"]}
    (problem,) = undeclared(imports, {"numpy"}, providers)
    assert problem.startswith("tqdm (imported by spm_models/review/pipeline.py) comes from tqdm")
    assert undeclared({"nope": {"x.py"}}, {"numpy"}, providers) == ["nope (imported by x.py) is not installed"]


def test_environment_yml_pins_what_pyproject_pins():
    # conda-forge names of the distributions whose names differ there.
    conda = {"duckdb": "python-duckdb", "pandera": "pandera-pandas", "build": "python-build"}
    pins = {}
    for req in PYPROJECT["project"]["dependencies"] + PYPROJECT["project"]["optional-dependencies"]["test"]:
        name, version = re.fullmatch(r"([A-Za-z0-9._-]+)(?:\[[^]]*\])?==(\S+)", req).groups()
        pins[conda.get(_normalize(name), _normalize(name))] = version
    text = (ROOT / "environment.yml").read_text(encoding="utf-8")
    listed = {_normalize(n): v for n, v in re.findall(r"^  - ([A-Za-z0-9._-]+)=(\S+)$", text, flags=re.M)}
    assert {n: listed.get(n) for n in pins} == pins


def test_the_package_list_names_every_subpackage():
    from setuptools import find_namespace_packages

    tool = PYPROJECT["tool"]["setuptools"]
    found = find_namespace_packages(where=str(ROOT), include=["spm_models*"], exclude=["*__pycache__*"])
    assert sorted(tool["packages"]) == sorted({*found, *tool["package-dir"]})
    for package, folder in tool["package-dir"].items():
        assert (ROOT / folder).is_dir(), f"{package} maps to a missing folder {folder}"
    # The templates have one home in the repository; the wheel's copy is made at build time.
    assert not (PKG / "review" / "templates").exists()
