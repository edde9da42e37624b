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
from spm_models.exceptions import ConfigError
from spm_models.review import params as review_params
from spm_models.review.pipeline import run_review
from spm_models.review.settings import ReviewConfig, load_config

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


def _settings_file(config, path: Path) -> Path:
    """A review settings TOML holding ``config``'s commission plan (the rest left at defaults)."""
    plan = config.commission
    tiers = ", ".join(f"[{t.from_attainment!r}, {t.rate!r}]" for t in plan.tiers)
    lines = ["[commission]", f"name = {json.dumps(plan.name)}", f"tiers = [{tiers}]"]
    if plan.cap_attainment is not None:
        lines.append(f"cap_attainment = {plan.cap_attainment!r}")
    lines.append(f"no_quota_rate = {plan.no_quota_rate!r}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_failure_isolation_timeout_exit_code_and_only_failed(
    small_warehouse, review_run, tmp_path, monkeypatch, capsys, broken_templates
):
    """One ``spm review`` of three agents with the broken template (A0001 ok, A0002 raises,
    A0003 hangs past the 5 s timeout), then ``only_failed`` with the real templates."""
    # The warehouse holds the shared review run's data and the settings file its settings: the
    # copied run is current here, so nothing is fitted again and the three agents' reports are
    # re-run (their template changed) while every other report is kept (a copy: the shared run
    # is read-only).
    out = tmp_path / "reports"
    shutil.copytree(review_run.out, out)
    settings = _settings_file(review_run.config, tmp_path / "review.toml")
    assert load_config(settings).key() == review_run.config.key()
    total = review_run.manifest["summary"]["total"]
    monkeypatch.setattr(review_params, "template_dir", lambda: broken_templates)
    args = ["review", "--db", str(small_warehouse), "--out", str(out), "--config", str(settings)]
    assert main([*args, "--agents", "A0001,A0002,A0003", "--workers", "3", "--timeout", "5"]) == 1
    printed = capsys.readouterr().out
    assert f"{total - 2} ok, 2 failed" in printed
    assert "FAILED agent:A0002" in printed and "FAILED agent:A0003" in printed

    run = out / review_run.run_folder.name
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["summary"]["failed"] == 2 and manifest["summary"]["executed"] == 3
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

    monkeypatch.setattr(review_params, "template_dir", lambda: TEMPLATES)
    with open(tmp_path / "log.txt", "w") as log:
        fixed = run_review(
            db=small_warehouse,
            out=out,
            config=review_run.config,
            agents=["A0001", "A0002", "A0003"],
            workers=2,
            only_failed=True,
            progress=False,
            log=log,
        )
    assert sorted(r.report_id for r in fixed.executed) == ["agent:A0002", "agent:A0003"]
    assert fixed.exit_code == 0 and fixed.manifest["summary"]["reused"] == total - 2
    assert f"{total} ok, 0 failed" in fixed.summary() and "FAILED" not in fixed.summary()


def test_bad_subsets_and_options_fail_before_any_kernel(review_run, tmp_path):
    # On a copy of the shared run, whose artifacts are current for its dataset and settings, so
    # nothing is refitted (the shared run itself is read-only: a run takes its month's lock).
    ds, config = review_run.dataset, review_run.config
    out = tmp_path / "reports"
    shutil.copytree(review_run.out, out)
    with pytest.raises(ConfigError, match="not in this review: 'NOPE'"):
        run_review(dataset=ds, out=out, config=config, agents=["NOPE"], progress=False)
    # No earlier run to take the failures of: the artifacts are built first, so the cheapest
    # settings keep that fit short.
    cheap = ReviewConfig(model="CalendarBaseline", recalibrate=False)
    with pytest.raises(ConfigError, match="needs an earlier run"):
        run_review(dataset=ds, out=tmp_path / "fresh", config=cheap, agents=["A0001"], only_failed=True, progress=False)
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
    lines = plain.getvalue().splitlines()
    # each line starts with its UTC time, then the parseable fields
    assert all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ", ln) for ln in lines)
    assert [ln.split(" ", 1)[1] for ln in lines] == [
        "report='agent:A1' status=ok seconds=1.23 output=agents/a.html",
        "report='agent:A2' status=failed seconds=0.50 output=notebooks/agents/b.ipynb error='RuntimeError: boom'",
    ]
