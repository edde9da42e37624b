"""What a user gets from ``pip install spm-workbench``: every import declared, every file shipped.

Each third-party module that ``spm_models`` or a report notebook imports belongs to a
distribution pyproject.toml declares (pinned alike in environment.yml); the explicit package
list of pyproject.toml names every subpackage; and a wheel built from the checkout, installed
(not editable) into a fresh virtual environment, runs ``spm demo`` end to end outside the
checkout.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import re
import site
import subprocess
import sys
import time
import tomllib
import zipfile
from pathlib import Path

import pytest

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


# ---------------------------------------------------------------------------- the wheel


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)
    assert proc.returncode == 0, f"{cmd[:4]} exited {proc.returncode}:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc


_PROBE = """
import json, sys, importlib.util
import spm_models
from spm_models.review.params import template_dir
print(json.dumps({
    "file": spm_models.__file__,
    "origin": importlib.util.find_spec("spm_models").origin,
    "templates": str(template_dir()),
    "path": sys.path,
    "finders": [repr(f) for f in sys.meta_path],
    "editable": sorted(m for m in sys.modules if "__editable__" in m),
}))
"""


@pytest.mark.packaging
def test_the_wheel_installs_and_runs_the_demo(tmp_path):
    """Build sdist and wheel, install the wheel into a fresh venv, run ``spm demo --agents 5``.

    The trade-off: the wheel is built without build isolation (``python -m build
    --no-isolation``: setuptools and build come from the test extra, nothing is downloaded) and
    installed with ``--no-deps``; the fresh venv reaches the pinned dependencies through a
    ``.pth`` line naming this interpreter's site-packages instead of installing the stack from
    the index, which would take minutes, and a link to this environment's ``share/jupyter``,
    where pip puts the data files of the dependencies (the python3 kernel spec) outside
    site-packages. That site-packages also holds the editable install, but
    a ``.pth`` line only adds a directory to ``sys.path``: the ``.pth`` files inside it, the
    editable install's finder among them, are not run there, so ``spm_models`` can only come
    from the wheel (the probe below checks that, and that nothing from the checkout is on the
    path). What this does not check is that the declared pins resolve from an index; the
    dependency test above and ``make install`` cover the declarations.
    """
    started = time.monotonic()
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", dist, ROOT])
    (wheel,) = dist.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {f"spm_models/review/templates/{p.name}" for p in REPORTS.glob("*.ipynb")}
    assert shipped and shipped <= names
    assert "spm_models/data/mappings/maven.toml" in names

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv])
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", wheel])
    purelib = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    (Path(purelib) / "_spm_test_dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    jupyter_data = Path(sys.prefix) / "share" / "jupyter"  # kernel specs live here
    if jupyter_data.is_dir():
        (venv / "share").mkdir()
        (venv / "share" / "jupyter").symlink_to(jupyter_data, target_is_directory=True)

    work = tmp_path / "elsewhere"  # the working directory: outside the checkout
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "SPM_HOME"}}
    probe = json.loads(_run([python, "-c", _PROBE], cwd=work, env=env).stdout)
    for key in ("file", "origin", "templates"):
        assert Path(probe[key]).is_relative_to(venv), (key, probe[key])
    assert not probe["editable"] and not any("Editable" in f for f in probe["finders"])
    # The checkout's .venv may be on the path (for the dependencies), the checkout's package never.
    holders = [Path(p or work) for p in probe["path"] if (Path(p or work) / "spm_models").exists()]
    assert holders and all(h.is_relative_to(venv) for h in holders), holders

    project = tmp_path / "project"
    demo = _run([venv / "bin" / "spm", "demo", "--agents", "5", "--project-dir", project], cwd=work, env=env)
    (index,) = project.glob("reports/*/index.html")
    assert str(index) in demo.stdout
    print(f"wheel build, install and demo: {time.monotonic() - started:.1f} s")
