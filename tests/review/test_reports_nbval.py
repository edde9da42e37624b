"""The report notebooks run cell by cell in an ordinary Jupyter kernel on a small organisation
(make test-slow).

The review runs its reports in kernels forked from a kernel server that has imported their
libraries already (``test_e2e.py`` runs every template that way on the shared review run).
Here each template runs as an analyst would open it, in a ``python3`` kernel of its own with
nothing preloaded: it is parameterized (papermill injects the parameters cell, nothing is
executed) for the shared review run's artifacts, then every cell is executed; any cell that
raises fails the test (what ``pytest --nbval-lax`` checks; tests/conftest.py runs the kernel
in-process). No output is compared (figures differ by pixels).

These kernels (about 2 CPU s each) run in make test-slow. The default suite keeps what they
would catch that the forked kernels do not, a template that leans on something the server
imported, by ``test_templates_need_nothing_the_kernel_server_preloaded`` (test_params.py):
the templates import every module they use by name and use no name they do not bind.
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


@pytest.mark.slow
@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_report_notebook_runs_in_a_plain_kernel_of_its_own(template, review_run, execute_notebook, tmp_path):
    assert _every_code_cell_ran(execute_notebook(_parameterized(template, review_run.artifacts), cwd=tmp_path))
