"""Data flows one way: each layer imports only the layers beneath it (checked on the source)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "spm_models"

# Layer rank of each module (by dotted path prefix). A module may import modules of a lower
# or equal rank only.
LAYERS = [
    ("spm_models.exceptions", 0),
    ("spm_models.config", 0),
    ("spm_models.schemas", 0),
    ("spm_models.dataset", 1),
    ("spm_models.csvio", 1),
    ("spm_models.periods", 1),
    ("spm_models.sources", 2),
    ("spm_models.validation", 2),
    ("spm_models.warehouse", 3),
    ("spm_models.ingest", 4),
    ("spm_models.kpi", 4),
    ("spm_models.funnel", 4),
    ("spm_models.indicators", 4),
    ("spm_models.indicator_series", 4),
    ("spm_models.exports", 4),
    ("spm_models.models", 5),
    ("spm_models.metrics", 5),
    ("spm_models.backtest", 5),
    ("spm_models.pipeline_forecast", 5),
    ("spm_models.pipeline_history", 5),
    ("spm_models.quota_probability", 5),
    ("spm_models.quota_backtest", 5),
    ("spm_models.quota_calibration", 5),
    ("spm_models.tracking", 5),
    ("spm_models.scorecard", 5),
    ("spm_models.coaching", 5),
    ("spm_models.commission", 5),
    ("spm_models.plots", 6),
    ("spm_models.review", 6),
    ("spm_models.demo", 6),
    ("spm_models.workbench", 6),
    ("spm_models.reports", 7),
    ("spm_models.cli", 8),
]
HEAVY = {"pymc", "pytensor", "prophet", "matplotlib", "seaborn", "papermill", "nbconvert", "arviz", "nutpie"}


def _rank(module: str) -> int | None:
    if module == "spm_models":
        return 0
    best = None
    for prefix, rank in LAYERS:
        if module == prefix or module.startswith(prefix + "."):
            best = rank
    return best


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    mod = _module_name(path)
    package = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
                if node.module is None:
                    out.extend(f"{target}.{a.name}" for a in node.names)
                else:
                    out.append(target)
            elif node.module:
                out.append(node.module)
    return out


MODULES = sorted(p for p in PKG.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PKG)))
def test_imports_point_down_the_layers(path):
    me = _module_name(path)
    my_rank = _rank(me)
    if my_rank is None:
        pytest.fail(f"{me} is not assigned a layer in tests/test_architecture.py; add it to LAYERS")
    upward = [
        m for m in _imports(path) if m.startswith("spm_models") and (_rank(m) or 0) > my_rank
    ]
    assert not upward, f"{me} (layer {my_rank}) imports higher layers: {upward}"


@pytest.mark.parametrize("path", [p for p in MODULES if _rank(_module_name(p)) is not None and _rank(_module_name(p)) <= 4], ids=lambda p: str(p.relative_to(PKG)))
def test_data_and_kpi_layers_never_import_modelling_or_plotting(path):
    heavy = [m for m in _imports(path) if m.split(".")[0] in HEAVY]
    assert not heavy, f"{_module_name(path)} imports {heavy}"


def test_importing_the_package_loads_no_heavy_library():
    code = (
        "import sys, spm_models, spm_models.kpi, spm_models.warehouse, spm_models.cli;"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {sorted(HEAVY)!r});"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"heavy libraries imported at import time: {out.stdout}"
