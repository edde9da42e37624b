"""A broken report does not stop the others: it is recorded with its error, its executed
notebook is kept, the exit code is non-zero; a report that hangs is stopped at its timeout;
``--only-failed`` re-runs just the failures."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import nbformat
import pytest

from spm_models.cli import main
from spm_models.data.validation import validate
from spm_models.data.warehouse import Warehouse
from spm_models.exceptions import ConfigError
from spm_models.review import params as review_params
from spm_models.review.pipeline import run_review
from spm_models.synthetic.generator import generate_organisation

HERE = Path(__file__).resolve().parent
BROKEN = HERE / "broken_report.ipynb"
TEMPLATES = HERE.parents[1] / "notebooks" / "reports"


@pytest.fixture(scope="module")
def org():
    return validate(generate_organisation(6, years=2, seed=5).dataset)


@pytest.fixture()
def broken_templates(tmp_path):
    folder = tmp_path / "templates"
    shutil.copytree(TEMPLATES, folder)
    shutil.copy(BROKEN, folder / "agent_report.ipynb")
    return folder


def test_failure_isolation_timeout_and_only_failed(org, tmp_path, broken_templates):
    out = tmp_path / "reports"
    log = open(tmp_path / "log.txt", "w")
    res = run_review(
        dataset=org,
        out=out,
        agents=["A0001", "A0002", "A0003"],
        workers=3,
        timeout=5,
        templates_dir=broken_templates,
        progress=False,
        log=log,
    )
    by_id = {r["id"]: r for r in res.manifest["reports"]}
    assert res.exit_code == 1
    assert by_id["agent:A0001"]["status"] == "ok" and (res.run_folder / by_id["agent:A0001"]["output"]).is_file()
    failed = by_id["agent:A0002"]
    assert (
        failed["status"] == "failed"
        and "deliberately broken report for A0002" in failed["error"]
        and failed["output"] is None
    )
    kept = nbformat.read(res.run_folder / failed["notebook"], as_version=4)
    errors = [o for c in kept.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert errors and errors[0]["ename"] == "RuntimeError"
    hung = by_id["agent:A0003"]
    assert hung["status"] == "failed" and "timed out after 5 s" in hung["error"] and hung["duration_s"] < 60
    assert (res.run_folder / hung["notebook"]).is_file()
    index = (res.run_folder / "index.html").read_text(encoding="utf-8")
    assert "2 failed" in index and "deliberately broken report for A0002" in index
    summary = res.summary()
    assert "FAILED agent:A0002" in summary and "FAILED agent:A0003" in summary
    manifest = json.loads((res.run_folder / "manifest.json").read_text())
    assert manifest["summary"]["failed"] == 2

    fixed = run_review(
        dataset=org,
        out=out,
        agents=["A0001", "A0002", "A0003"],
        workers=2,
        only_failed=True,
        templates_dir=TEMPLATES,
        progress=False,
        log=log,
    )
    assert sorted(r.report_id for r in fixed.executed) == ["agent:A0002", "agent:A0003"]
    assert fixed.exit_code == 0 and fixed.manifest["summary"]["reused"] == 1


def test_bad_subsets_and_options_fail_before_any_kernel(org, tmp_path):
    with pytest.raises(ConfigError, match="not in this review: 'NOPE'"):
        run_review(dataset=org, out=tmp_path, agents=["NOPE"], progress=False)
    with pytest.raises(ConfigError, match="needs an earlier run"):
        run_review(dataset=org, out=tmp_path / "fresh", agents=["A0001"], only_failed=True, progress=False)
    with pytest.raises(ConfigError, match="year-month"):
        run_review(dataset=org, out=tmp_path, month="2024/11", progress=False)


def test_cli_exit_codes(org, tmp_path, monkeypatch, capsys, broken_templates):
    db = tmp_path / "w.duckdb"
    Warehouse(db).ingest(org)
    args = ["review", "--db", str(db), "--out", str(tmp_path / "r"), "--agents", "A0001,A0002", "--workers", "2"]
    monkeypatch.setattr(review_params, "template_dir", lambda: broken_templates)
    assert main(args) == 1
    out = capsys.readouterr()
    assert "1 ok, 1 failed" in out.out and "FAILED agent:A0002" in out.out
    assert main(["review", "--db", str(db), "--month", "2999-01"]) == 2
    assert "before the month 2999-01 starts" in capsys.readouterr().err


def test_review_command_has_help(capsys):
    assert main(["review", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--only-failed" in out and "--workers" in out and "--agents" in out


def test_progress_is_a_bar_on_a_terminal_and_lines_otherwise():
    import io

    from spm_models.review.pipeline import _Progress
    from spm_models.review.runner import ReportResult

    class Tty(io.StringIO):
        def isatty(self):
            return True

    ok = ReportResult("agent:A1", "ok", 1.234, "agents/a.html", "notebooks/agents/a.ipynb")
    bad = ReportResult("agent:A2", "failed", 0.5, None, "notebooks/agents/b.ipynb", "RuntimeError: boom\nmore")
    tty = Tty()
    p = _Progress(2, stream=tty, bar=None)
    p(ok), p(bad), p.close()
    assert "2/2" in tty.getvalue() and "failed: agent:A2: RuntimeError: boom" in tty.getvalue()
    plain = io.StringIO()
    p = _Progress(2, stream=plain, bar=None)
    p(ok), p(bad), p.close()
    lines = plain.getvalue().splitlines()
    # each line starts with its UTC time, then the parseable fields
    assert all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ", ln) for ln in lines)
    assert [ln.split(" ", 1)[1] for ln in lines] == [
        "report='agent:A1' status=ok seconds=1.23 output=agents/a.html",
        "report='agent:A2' status=failed seconds=0.50 output=notebooks/agents/b.ipynb error='RuntimeError: boom'",
    ]
