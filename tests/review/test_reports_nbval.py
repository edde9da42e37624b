"""The report notebooks run cell by cell under nbval (lax mode) on a small organisation.

nbval executes a notebook as it is stored, so each template is parameterized (papermill
injects the parameters cell, nothing is executed) for a small synthetic organisation's
artifacts, then ``pytest --nbval-lax`` runs every cell in an ordinary Jupyter kernel: any
cell that raises fails the test. Lax mode compares no outputs (figures differ by pixels).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from papermill.iorw import load_notebook_node
from papermill.parameterize import parameterize_notebook

from spm_models.data.validation import validate
from spm_models.review.artifacts import build_artifacts
from spm_models.synthetic.generator import generate_organisation

TEMPLATES = Path(__file__).resolve().parents[2] / "notebooks" / "reports"


@pytest.fixture(scope="module")
def notebooks(tmp_path_factory):
    root = tmp_path_factory.mktemp("nbval")
    art = root / "2024-11" / "artifacts"
    build_artifacts(
        validate(generate_organisation(6, years=2, seed=4).dataset), month="2024-11", out_dir=art, runs_root=root
    )
    agents = pd.read_parquet(art / "agents.parquet")
    params = {
        "agent_report": {"run_dir": str(art), "agent_id": str(agents["agent_id"].iloc[0])},
        "territory_report": {"run_dir": str(art), "territory_id": str(agents["territory_id"].iloc[0])},
        "monthly_review": {"run_dir": str(art)},
    }
    paths = []
    for name, p in params.items():
        nb = parameterize_notebook(load_notebook_node(str(TEMPLATES / f"{name}.ipynb")), p)
        path = root / f"{name}.ipynb"
        nbformat.write(nb, path)
        paths.append(path)
    return root, paths


def test_report_notebooks_pass_nbval_lax(notebooks):
    root, paths = notebooks
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--nbval-lax",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:xdist",
            "--rootdir",
            str(root),
            *map(str, paths),
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert (
        f"{sum(len([c for c in nbformat.read(p, as_version=4).cells if c.cell_type == 'code']) for p in paths)} passed"
        in proc.stdout
    )
