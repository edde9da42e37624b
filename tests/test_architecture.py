"""The house rule, checked on the source: data flows one way through packages named for their layer.

Each package of ``spm_models`` has one rank (the table below, also in docs/architecture.md).
A module may import modules of its own package, and of packages of a *lower* rank; packages
that share a rank are siblings and never import each other. Nothing may form an import cycle,
inside a package or across packages.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "spm_models"

#: Package (or top-level module) -> rank, from the ground up.
LAYERS: dict[str, int] = {
    "spm_models": 0,  # the package's face: __version__ only
    "spm_models.exceptions": 0,
    "spm_models.calendar": 1,
    "spm_models.config": 2,
    "spm_models.data": 3,
    "spm_models.kpi": 4,
    "spm_models.present": 4,
    "spm_models.indicators": 5,
    "spm_models.models": 6,
    "spm_models.evaluation": 7,
    "spm_models.insights": 8,
    "spm_models.review": 9,
    "spm_models.workbench": 9,
    "spm_models.synthetic": 10,
    "spm_models.demo": 11,
    "spm_models.cli": 12,
}
#: Layers that read and shape data only: no modelling, sampling or plotting library.
LIGHT = ("spm_models.calendar", "spm_models.config", "spm_models.data", "spm_models.kpi", "spm_models.exceptions")
HEAVY = {"pymc", "pytensor", "prophet", "matplotlib", "seaborn", "papermill", "nbconvert", "arviz", "nutpie", "numba"}
MAX_TOP_LEVEL_MODULES = 6


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _layer(module: str) -> str:
    """The entry of :data:`LAYERS` a module belongs to (its longest matching prefix)."""
    best = ""
    for prefix in LAYERS:
        if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > len(best):
            best = prefix
    return best


def _imports(module: str) -> set[str]:
    """Modules of spm_models that ``module`` imports (anywhere in its body, lazily or not)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(up + ([base] if base else []))
            subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES]
            names = subs or [base]
        for n in names:
            if n.split(".")[0] == "spm_models":
                while n not in MODULES and "." in n:  # an attribute of a module: the module
                    n = n.rsplit(".", 1)[0]
                if n != module:
                    out.add(n)
    return out


GRAPH = {m: _imports(m) for m in MODULES}


def test_every_layer_exists_and_every_module_has_a_layer():
    missing = [p for p in LAYERS if p not in MODULES]
    assert not missing, f"LAYERS lists what does not exist: {missing}"
    orphans = [m for m in MODULES if not _layer(m) or (_layer(m) == "spm_models" and m != "spm_models")]
    assert not orphans, f"not in any layer of tests/test_architecture.py (add a row): {orphans}"


def _upward(module: str, imports: set[str]) -> list[str]:
    """Imports of ``module`` that reach a sibling or a higher layer."""
    mine = _layer(module)
    return sorted(
        f"{m} ({_layer(m)}, rank {LAYERS[_layer(m)]})"
        for m in imports
        if _layer(m) != mine and LAYERS[_layer(m)] >= LAYERS[mine]
    )


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down_the_layers(module):
    wrong = _upward(module, GRAPH[module])
    assert not wrong, f"{module} ({_layer(module)}, rank {LAYERS[_layer(module)]}) imports a sibling or higher: {wrong}"


def test_the_layer_check_can_fail():
    assert _upward("spm_models.models.hierarchical.model", {"spm_models.evaluation.backtest"})  # up
    assert _upward("spm_models.review.views", {"spm_models.workbench.explorer"})  # a sibling
    assert not _upward("spm_models.review.views", {"spm_models.review.artifacts", "spm_models.kpi.grid"})


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of two or more modules (Tarjan, iterative)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def test_no_import_cycles():
    assert _cycles(GRAPH) == []


def test_the_cycle_check_can_fail():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_few_modules_sit_at_the_top():
    top = sorted(p.name for p in PKG.glob("*.py") if p.name != "__init__.py")
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top


def test_docs_state_the_same_table():
    """docs/architecture.md holds the table as ``| rank | package |`` rows."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\|\s*(\d+)\s*\|\s*`([a-z_.]+)`", text, flags=re.M)
    documented = {f"spm_models.{name}".rstrip("."): int(rank) for rank, name in rows}
    expected = {k: v for k, v in LAYERS.items() if k != "spm_models"}
    assert documented == expected


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _layer(m) in LIGHT))
def test_data_and_kpi_layers_never_import_modelling_or_plotting(module):
    tree = ast.parse(MODULES[module].read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module.split(".")[0])
    assert not found & HEAVY, f"{module} imports {sorted(found & HEAVY)}"


def test_importing_the_package_loads_no_heavy_library():
    code = (
        "import sys, spm_models, spm_models.kpi, spm_models.data.warehouse, spm_models.cli;"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {sorted(HEAVY)!r});"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"heavy libraries imported at import time: {out.stdout}"
