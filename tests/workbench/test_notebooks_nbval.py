"""Every workbench notebook runs end to end on a small synthetic warehouse.

Each notebook of ``notebooks/`` (new ones included: the list is read from the folder, and an
empty one fails at collection, ``empty_parameter_set_mark`` in ``pyproject.toml``) runs every
cell in an ordinary ``python3`` kernel with ``SPM_WAREHOUSE`` set to the shared small warehouse
and the short fits of ``SPM_WORKBENCH_FAST``: any cell that raises fails the test (what
``pytest --nbval-lax`` checks; tests/conftest.py runs the kernels in-process).

The default suite runs the four in one kernel, its namespace reset between notebooks
(``execute_notebooks``): each kernel start and import of the libraries costs about 2 CPU s.
``make test-slow`` also runs each under nbval itself (``pytest -p nbval --nbval-lax``, the
Makefile), in a kernel of its own as an analyst opens it, which catches a notebook that uses a
module it never imports but a previous notebook did.

Three purpose-built notebooks run after them in the same kernel and show the runner could have
failed them: one raises, one uses a name only the one before it made, one is fine.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _env(warehouse: Path) -> dict[str, str]:
    return {"SPM_WAREHOUSE": str(warehouse), "SPM_WORKBENCH_FAST": "1", "MPLBACKEND": "Agg"}


def test_the_five_workbench_notebooks_exist():
    assert [p.name for p in NOTEBOOKS] == [
        "explorer.ipynb",
        "leading_indicators.ipynb",
        "model_comparison.ipynb",
        "plan_modelling.ipynb",
        "quota_planning.ipynb",
    ]


def _every_code_cell_ran(nb) -> bool:
    code = [c for c in nb.cells if c.cell_type == "code"]
    return bool(code) and all(c.get("execution_count") for c in code)


def _runner_checks() -> dict:
    cell = nbformat.v4.new_code_cell
    return {
        "check:raises": nbformat.v4.new_notebook(cells=[cell("x = 1"), cell("raise RuntimeError('broken cell')")]),
        "check:leans": nbformat.v4.new_notebook(cells=[cell("x")]),
        "check:fine": nbformat.v4.new_notebook(cells=[cell("y = 2")]),
    }


def test_every_notebook_runs_end_to_end(small_warehouse, execute_notebooks, tmp_path):
    assert NOTEBOOKS, "no workbench notebook found"
    notebooks = {p.stem: nbformat.read(p, as_version=4) for p in NOTEBOOKS}
    checks = _runner_checks()
    failures = execute_notebooks({**notebooks, **checks}, cwd=tmp_path, env=_env(small_warehouse))
    broken = {name: error for name, error in failures.items() if name in notebooks}
    assert not broken, "\n\n".join(f"{name}:\n{error}" for name, error in broken.items())
    assert [name for name, nb in notebooks.items() if not _every_code_cell_ran(nb)] == []
    # the runner reports a raising cell, resets the names before each notebook and goes on
    assert set(failures) == {"check:raises", "check:leans"}, failures
    assert "broken cell" in str(failures["check:raises"]) and "NameError" in str(failures["check:leans"])
    assert _every_code_cell_ran(checks["check:fine"])
