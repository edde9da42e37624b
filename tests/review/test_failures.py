"""A broken report does not stop the others: it is recorded with its error, its executed
notebook is kept, the exit code is non-zero; a report that hangs is stopped at its timeout;
``--only-failed`` re-runs just the failures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest

from spm_models.cli import main
from spm_models.exceptions import ConfigError
from spm_models.review import params as review_params
from spm_models.review.pipeline import run_review

HERE = Path(__file__).resolve().parent
BROKEN = HERE / "broken_report.ipynb"
TEMPLATES = HERE.parents[1] / "notebooks" / "reports"


@pytest.fixture()
def broken_templates(tmp_path):
    """The report templates with an agent report that fails for A0002 and hangs for A0003."""
    folder = tmp_path / "templates"
    shutil.copytree(TEMPLATES, folder)
    shutil.copy(BROKEN, folder / "agent_report.ipynb")
    return folder


def test_failure_isolation_timeout_exit_code_and_only_failed(
    small_warehouse, review_run, tmp_path, monkeypatch, capsys, broken_templates
):
    """One ``spm review`` of three agents with the broken template (A0001 ok, A0002 raises,
    A0003 hangs past the 5 s timeout), then ``only_failed`` with the real templates."""
    out = tmp_path / "reports"
    # The warehouse holds the shared review run's data: its artifacts are current here, so
    # the run does not fit the model again (a copy: the shared run is read-only).
    shutil.copytree(review_run.artifacts, out / "2024-11" / "artifacts")
    monkeypatch.setattr(review_params, "TEMPLATE_DIR", broken_templates)
    args = ["review", "--db", str(small_warehouse), "--out", str(out), "--agents", "A0001,A0002,A0003"]
    assert main([*args, "--workers", "3", "--timeout", "5"]) == 1
    printed = capsys.readouterr().out
    assert "1 ok, 2 failed" in printed and "FAILED agent:A0002" in printed and "FAILED agent:A0003" in printed

    run = out / "2024-11"
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["summary"]["failed"] == 2
    assert manifest["artifacts_reused"]  # the warehouse's data have the in-memory dataset's key
    by_id = {r["id"]: r for r in manifest["reports"]}
    assert by_id["agent:A0001"]["status"] == "ok" and (run / by_id["agent:A0001"]["output"]).is_file()
    failed = by_id["agent:A0002"]
    assert (
        failed["status"] == "failed"
        and "deliberately broken report for A0002" in failed["error"]
        and failed["output"] is None
    )
    kept = nbformat.read(run / failed["notebook"], as_version=4)
    errors = [o for c in kept.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert errors and errors[0]["ename"] == "RuntimeError"
    hung = by_id["agent:A0003"]
    assert hung["status"] == "failed" and "timed out after 5 s" in hung["error"] and hung["duration_s"] < 60
    assert (run / hung["notebook"]).is_file()
    index = (run / "index.html").read_text(encoding="utf-8")
    assert "2 failed" in index and "deliberately broken report for A0002" in index

    monkeypatch.setattr(review_params, "TEMPLATE_DIR", TEMPLATES)
    with open(tmp_path / "log.txt", "w") as log:
        fixed = run_review(
            db=small_warehouse,
            out=out,
            agents=["A0001", "A0002", "A0003"],
            workers=2,
            only_failed=True,
            progress=False,
            log=log,
        )
    assert sorted(r.report_id for r in fixed.executed) == ["agent:A0002", "agent:A0003"]
    assert fixed.exit_code == 0 and fixed.manifest["summary"]["reused"] == 1
    assert "0 failed" in fixed.summary() and "FAILED" not in fixed.summary()


def test_bad_subsets_and_options_fail_before_any_kernel(review_run, tmp_path):
    # The shared run's artifacts are current for its dataset, so nothing is refitted; the
    # errors come before anything is written (the shared run's files are checked unchanged).
    ds = review_run.dataset
    with pytest.raises(ConfigError, match="not in this review: 'NOPE'"):
        run_review(dataset=ds, out=review_run.out, agents=["NOPE"], progress=False)
    fresh = tmp_path / "fresh" / review_run.run_folder.name
    shutil.copytree(review_run.artifacts, fresh / "artifacts")  # artifacts, no earlier manifest
    with pytest.raises(ConfigError, match="needs an earlier run"):
        run_review(dataset=ds, out=fresh.parent, agents=["A0001"], only_failed=True, progress=False)
    with pytest.raises(ConfigError, match="year-month"):
        run_review(dataset=ds, out=tmp_path, month="2024/11", progress=False)


def test_cli_exit_code_for_a_month_the_data_do_not_reach(small_warehouse, capsys):
    assert main(["review", "--db", str(small_warehouse), "--month", "2999-01"]) == 2
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
    assert plain.getvalue().splitlines() == [
        "report='agent:A1' status=ok seconds=1.23 output=agents/a.html",
        "report='agent:A2' status=failed seconds=0.50 output=notebooks/agents/b.ipynb error='RuntimeError: boom'",
    ]
