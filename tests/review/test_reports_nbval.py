"""The report notebooks run cell by cell in an ordinary Jupyter kernel on a small organisation.

The review runs its reports in kernels forked from a kernel server that has imported their
libraries already (``test_e2e.py``). Here the templates run as an analyst would open them, in
a ``python3`` kernel with nothing preloaded: each is parameterized (papermill injects the
parameters cell, nothing is executed) for the shared review run's artifacts, then every cell
is executed; any cell that raises fails the test (what ``pytest --nbval-lax`` checks;
tests/conftest.py runs the kernels in-process). No output is compared (figures differ by
pixels).

The default suite runs the three templates in one kernel, its namespace reset between them
(``execute_notebooks``); ``make test-slow`` also runs each in a kernel of its own.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from spm_models.review.params import TEMPLATES

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "notebooks" / "reports"


def _parameterized(template: str, artifacts: Path):
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    agents = pd.read_parquet(artifacts / "agents.parquet")
    subject = {
        "agent_report": {"agent_id": str(agents["agent_id"].iloc[0])},
        "territory_report": {"territory_id": str(agents["territory_id"].iloc[0])},
        "monthly_review": {},
    }
    nb = load_notebook_node(str(TEMPLATE_DIR / f"{template}.ipynb"))
    return parameterize_notebook(nb, {"run_dir": str(artifacts), **subject[template]})


def _every_code_cell_ran(nb) -> bool:
    code = [c for c in nb.cells if c.cell_type == "code"]
    return bool(code) and all(c.get("execution_count") for c in code)


def test_report_notebooks_run_in_a_plain_kernel(review_run, execute_notebooks, tmp_path):
    notebooks = {t: _parameterized(t, review_run.artifacts) for t in sorted(TEMPLATES)}
    failures = execute_notebooks(notebooks, cwd=tmp_path)
    assert not failures, "\n\n".join(f"{name}:\n{error}" for name, error in failures.items())
    assert [name for name, nb in notebooks.items() if not _every_code_cell_ran(nb)] == []


@pytest.mark.slow
@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_report_notebook_runs_in_a_plain_kernel_of_its_own(template, review_run, execute_notebook, tmp_path):
    assert _every_code_cell_ran(execute_notebook(_parameterized(template, review_run.artifacts), cwd=tmp_path))


def test_the_runner_reports_a_raising_cell_and_resets_the_namespace(execute_notebooks, tmp_path):
    """The runner above can fail: a raising cell is reported with its error, the next notebook
    still runs, and it does not see the names the previous one made."""
    import nbformat

    cell = nbformat.v4.new_code_cell
    notebooks = {
        "broken": nbformat.v4.new_notebook(cells=[cell("x = 1"), cell("raise RuntimeError('broken cell')")]),
        "leaning": nbformat.v4.new_notebook(cells=[cell("x")]),
        "fine": nbformat.v4.new_notebook(cells=[cell("y = 2")]),
    }
    failures = execute_notebooks(notebooks, cwd=tmp_path)
    assert set(failures) == {"broken", "leaning"}
    assert "broken cell" in str(failures["broken"]) and "NameError" in str(failures["leaning"])
    assert notebooks["fine"].cells[0].execution_count
