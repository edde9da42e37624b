"""Every workbench notebook runs end to end (nbval, lax) on a small synthetic warehouse."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from spm_models.data.warehouse import Warehouse
from spm_models.synthetic.generator import generate_organisation

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def small_warehouse(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("wb") / "warehouse.duckdb"
    Warehouse(path).ingest(generate_organisation(20, years=1.5, seed=5).dataset)
    return path


def test_the_five_workbench_notebooks_exist():
    assert [p.name for p in NOTEBOOKS] == [
        "explorer.ipynb",
        "leading_indicators.ipynb",
        "model_comparison.ipynb",
        "plan_modelling.ipynb",
        "quota_planning.ipynb",
    ]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_end_to_end(notebook, small_warehouse, tmp_path):
    env = {**os.environ, "SPM_WAREHOUSE": str(small_warehouse), "SPM_WORKBENCH_FAST": "1", "MPLBACKEND": "Agg"}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--nbval-lax",
            "--nbval-kernel-name",
            "python3",
            "-p",
            "no:cacheprovider",
            "-q",
            "--rootdir",
            str(tmp_path),
            str(notebook),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
