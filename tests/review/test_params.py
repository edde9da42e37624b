"""Report parameters are typed and checked before a kernel starts; templates stay thin;
output file names are safe whatever a name contains."""

from __future__ import annotations

import ast
import builtins
from pathlib import Path

import nbformat
import pytest

from spm_models.exceptions import ConfigError, ReportError
from spm_models.review.naming import inside, report_file_name, slug
from spm_models.review.params import (
    TEMPLATES,
    AgentReportParams,
    check_parameters,
    check_template,
    notebook_parameters,
    template_dir,
    template_path,
)

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "notebooks" / "reports"
HOSTILE = [
    "<script>alert(1)</script>",
    "../../etc/passwd",
    "$$ Money $ Maker $",
    "Zoë 🚀",
    "🚀🚀",
    "..",
    "/",
    "a" * 300,
    "",
]


# ---------------------------------------------------------------------------- parameters


def test_good_parameters_become_the_dataclass():
    p = check_parameters("agent_report", {"run_dir": "/x", "agent_id": "A1"})
    assert p == AgentReportParams(run_dir="/x", agent_id="A1")


@pytest.mark.parametrize(
    "params, message",
    [
        ({"run_dir": "/x", "agent_id": "A1", "colour": "red"}, "unknown parameter"),
        ({"run_dir": "/x"}, "missing parameter"),
        ({"run_dir": "/x", "agent_id": 7}, "must be str"),
        ({"run_dir": "/x", "agent_id": "  "}, "must not be empty"),
    ],
)
def test_bad_parameters_are_errors(params, message):
    with pytest.raises(ConfigError, match=message):
        check_parameters("agent_report", params)


def test_every_problem_is_listed_at_once():
    with pytest.raises(ConfigError) as e:
        check_parameters("territory_report", {"run_dir": 1, "colour": "red"})
    assert "unknown" in str(e.value) and "missing" in str(e.value) and "must be str" in str(e.value)


def test_unknown_template():
    with pytest.raises(ConfigError, match="unknown report template"):
        check_parameters("nope", {})


def test_a_source_checkout_reads_the_templates_in_notebooks_reports():
    # The installed-wheel side (spm_models/review/templates) is tests/test_packaging.py's.
    assert template_dir() == TEMPLATE_DIR
    assert template_path("monthly_review") == TEMPLATE_DIR / "monthly_review.ipynb"


def test_a_missing_template_says_where_templates_live(tmp_path):
    with pytest.raises(ConfigError, match="notebooks/reports"):
        template_path("agent_report", folder=tmp_path)


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_templates_declare_exactly_their_parameters(template):
    nb = nbformat.read(template_path(template, folder=TEMPLATE_DIR), as_version=4)
    check_template(template, nb)
    assert set(notebook_parameters(nb)) == set(TEMPLATES[template].__dataclass_fields__)


def test_a_template_that_drifts_is_caught():
    nb = nbformat.read(template_path("agent_report", folder=TEMPLATE_DIR), as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    cell.source += "\nextra = 3"
    with pytest.raises(ReportError, match="declares"):
        check_template("agent_report", nb)
    cell.source = 'run_dir = ""\nagent_id = 5'
    with pytest.raises(ReportError, match="default of agent_id"):
        check_template("agent_report", nb)
    cell.source = "run_dir = compute()"
    with pytest.raises(ReportError, match="literal"):
        notebook_parameters(nb)


# ---------------------------------------------------------------------------- thin notebooks


def _code_cells(template):
    nb = nbformat.read(template_path(template, folder=TEMPLATE_DIR), as_version=4)
    return [c.source for c in nb.cells if c.cell_type == "code"]


def test_every_call_in_a_report_cell_shows_its_output():
    """Report cells hold one section each (a cell's fixed cost is paid per cell, bench/review.py),
    so the first cell after the parameters makes every call of a cell show its output (with no
    magic: a ``%config`` line would import every IPython magic module in every kernel)."""
    for template in sorted(TEMPLATES):
        setup = _code_cells(template)[1]
        assert 'get_ipython().ast_node_interactivity = "all"' in setup, template


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_templates_are_thin(template):
    """Imports, calls into spm_models, attribute access and string labels only: no def, no
    class, no loops or comprehensions, no subscripts, no arithmetic beyond joining text."""
    for source in _code_cells(template):
        tree = ast.parse(source)
        for node in ast.walk(tree):
            assert not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)), source
            assert not isinstance(
                node, (ast.For, ast.While, ast.ListComp, ast.DictComp, ast.SetComp, ast.GeneratorExp)
            ), source
            assert not isinstance(node, ast.Subscript), f"indexing in a report cell: {source}"
            if isinstance(node, ast.BinOp):
                assert (
                    isinstance(node.op, ast.Add)
                    and isinstance(node.left, ast.Constant)
                    and isinstance(node.left.value, str)
                ), source
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                mod = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
                assert mod.startswith("spm_models"), f"report cells import only spm_models: {source}"


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_templates_need_nothing_the_kernel_server_preloaded(template):
    """A review's report kernels are forked from a server that has imported pandas, matplotlib
    and the package already (test_e2e runs every template that way); an analyst's kernel has
    nothing. A template that imports only with ``from spm_models... import name`` and uses only
    names its own cells bind (parameters, imports, assignments) cannot lean on what the server
    loaded: every module it touches is one it imported itself. make test-slow also runs each
    template in a plain kernel (tests/review/test_reports_nbval.py)."""
    bound = set(dir(builtins)) | {"get_ipython"}  # IPython puts it in every kernel's namespace
    for source in _code_cells(template):
        for stmt in ast.parse(source).body:
            assert not isinstance(stmt, ast.Import), f"use 'from spm_models... import name': {source}"
            used = {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
            assert used <= bound, f"{sorted(used - bound)} used before this template binds them: {source}"
            for node in ast.walk(stmt):
                if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                    bound.add(node.id)
                elif isinstance(node, ast.ImportFrom):
                    bound.update(alias.asname or alias.name for alias in node.names)


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_templates_end_with_provenance(template):
    assert "render.provenance(view.provenance)" in _code_cells(template)[-1]


# ---------------------------------------------------------------------------- file names


@pytest.mark.parametrize("name", HOSTILE)
def test_report_file_names_are_plain_ascii_and_stay_inside(tmp_path, name):
    f = report_file_name(name, name)
    assert f.endswith(".html") and "/" not in f and "\\" not in f and not f.startswith(".")
    assert all(c.isascii() and (c.isalnum() or c in "-.") for c in f)
    assert len(f) <= 60
    assert inside(tmp_path, f"agents/{f}").parent == (tmp_path / "agents").resolve()


def test_same_name_different_ids_get_different_files():
    assert report_file_name("Sam Lee", "A1") != report_file_name("Sam Lee", "A2")


def test_file_names_are_stable_across_runs_and_renames():
    # 16a36e86 = sha256("A1")[:8]. A fixed value, not a second call in this process: a name built
    # on Python's salted hash() or on anything but the id would change from one run to the next.
    assert report_file_name("Sam Lee", "A1") == "sam-lee-16a36e86.html"
    assert report_file_name("Samantha Lee-Wong", "A1").endswith("-16a36e86.html")  # renamed: same hash


def test_slug_examples():
    assert slug("../../etc/passwd") == "etc-passwd"
    assert slug("Zoë Müller") == "zoe-muller"
    assert slug("🚀") == "report"


@pytest.mark.parametrize("bad", ["../x.html", "/etc/passwd", "agents/../../x.html"])
def test_inside_refuses_paths_leaving_the_folder(tmp_path, bad):
    with pytest.raises(ReportError):
        inside(tmp_path, bad)
