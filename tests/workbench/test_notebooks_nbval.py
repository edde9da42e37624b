"""Every workbench notebook runs end to end on a small synthetic warehouse.

Each notebook of ``notebooks/`` (new ones included: the list is read from the folder, and an
empty one fails at collection, ``empty_parameter_set_mark`` in ``pyproject.toml``) runs every
cell in a fresh ordinary ``python3`` kernel (``execute_notebook`` in ``tests/conftest.py``,
what ``pytest --nbval-lax`` checks) with ``SPM_WAREHOUSE`` set to the shared small warehouse
and the short fits of ``SPM_WORKBENCH_FAST``: any cell that raises fails the test.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_end_to_end(notebook, small_warehouse, execute_notebook, tmp_path):
    env = {"SPM_WAREHOUSE": str(small_warehouse), "SPM_WORKBENCH_FAST": "1", "MPLBACKEND": "Agg"}
    executed = execute_notebook(nbformat.read(notebook, as_version=4), cwd=tmp_path, env=env)
    code = [c for c in executed.cells if c.cell_type == "code"]
    assert code and all(c.get("execution_count") for c in code), "not every code cell ran"
