"""The report notebooks run cell by cell in an ordinary Jupyter kernel on a small organisation.

The review runs its reports in kernels forked from a kernel server that has imported their
libraries already (``test_e2e.py``). Here each template runs as an analyst would open it: a
fresh ``python3`` kernel with nothing preloaded. The template is parameterized (papermill
injects the parameters cell, nothing is executed) for the shared review run's artifacts,
then every cell is executed (``execute_notebook`` in ``tests/conftest.py``, what
``pytest --nbval-lax`` checks): any cell that raises fails the test. No output is compared
(figures differ by pixels).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from spm_models.review.params import TEMPLATES

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "notebooks" / "reports"


def _parameters(template: str, artifacts: Path) -> dict:
    agents = pd.read_parquet(artifacts / "agents.parquet")
    subject = {
        "agent_report": {"agent_id": str(agents["agent_id"].iloc[0])},
        "territory_report": {"territory_id": str(agents["territory_id"].iloc[0])},
        "monthly_review": {},
    }
    return {"run_dir": str(artifacts), **subject[template]}


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_report_notebook_runs_in_a_plain_kernel(template, review_run, execute_notebook, tmp_path):
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    nb = load_notebook_node(str(TEMPLATE_DIR / f"{template}.ipynb"))
    nb = parameterize_notebook(nb, _parameters(template, review_run.artifacts))
    executed = execute_notebook(nb, cwd=tmp_path)
    code = [c for c in executed.cells if c.cell_type == "code"]
    assert code and all(c.get("execution_count") for c in code), "not every code cell ran"


def test_a_cell_that_raises_fails_the_notebook(execute_notebook, tmp_path):
    """The runner above can fail: a raising cell stops it with the cell's error."""
    import nbformat
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("raise RuntimeError('broken cell')")]
    )
    with pytest.raises(CellExecutionError, match="broken cell"):
        execute_notebook(nb, cwd=tmp_path)
