"""A review killed or interrupted at any point: the published month stays whole, nothing is left
running or lying around, and the next run redoes only what is missing.

Scenarios (the issue's defects): a re-run on new data killed midway (the old index and manifest
stood in front of new and old pages); Ctrl-C and SIGTERM (every report was redone); a fit killed
(``artifacts.tmp-<pid>`` was left); a report's kernel killed (only that report fails).
"""

from __future__ import annotations

import json
import shutil
import signal
import time
from pathlib import Path

import nbformat
import pytest

from spm_models.review.pipeline import run_review
from spm_models.review.publish import STATE_DIR, Publication

TEMPLATES = Path(__file__).resolve().parents[2] / "notebooks" / "reports"


def _journal(root: Path, month: str) -> int:
    path = root / STATE_DIR / f"{month}.staging" / "progress.jsonl"
    return len(path.read_text().splitlines()) if path.exists() else 0


def _one_run(folder: Path) -> dict:
    """The published manifest, after checking index, manifest and every report come from one run."""
    manifest = json.loads((folder / "manifest.json").read_text())
    assert {e["provenance"]["run_id"] for e in manifest["reports"]} == {manifest["run_id"]}
    assert manifest["run_id"] in (folder / "index.html").read_text()
    assert json.loads((folder / "artifacts" / "run.json").read_text())["run_id"] == manifest["run_id"]
    for e in manifest["reports"]:
        assert (folder / e["output"]).is_file()
    return manifest


def test_a_run_killed_midway_leaves_the_published_month_whole_and_is_resumed(kit, reports, warehouses):
    v1, v2 = warehouses
    folder = reports / kit.MONTH
    before, old = kit.digest(folder), _one_run(folder)
    run = kit.review(v2, reports, workers=1)
    lines: list[str] = []
    kit.wait_for_reports(run, 1, lines)  # one of three done, the others running or waiting
    run.send_signal(signal.SIGSTOP)  # it cannot publish while the test looks at its processes
    started = kit.family(run.pid)
    kit.kill(run, signal.SIGKILL)
    run.wait(timeout=60)
    assert kit.digest(folder) == before, "the published month changed under a killed run"
    assert not kit.all_gone(started), "processes of the killed run are still running"
    done = _journal(reports, kit.MONTH)
    assert 1 <= done < 3

    rc, err = kit.finish(kit.review(v2, reports), [])
    assert rc == 0, err
    new = _one_run(folder)
    assert new["run_id"] != old["run_id"]
    assert new["summary"]["executed"] == new["summary"]["total"] - done, "finished reports were redone"
    assert kit.leftovers(reports) == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_run_cleans_up_releases_the_lock_and_is_resumed(kit, reports, warehouses, sig):
    v1, v2 = warehouses
    folder = reports / kit.MONTH
    before = kit.digest(folder)
    run = kit.review(v2, reports, workers=1)
    lines: list[str] = []
    kit.wait_for_reports(run, 1, lines)
    # Stopped, it cannot finish and publish while the test looks at its processes (the other two
    # reports end about a second after the first); the signal is pending and is handled first
    # when it continues.
    run.send_signal(signal.SIGSTOP)
    started = kit.family(run.pid)
    kit.kill(run, sig)
    run.send_signal(signal.SIGCONT)
    rc, err = kit.finish(run, lines, timeout=120)
    assert rc == 128 + sig, err
    assert "interrupted: the review of 2024-11 was not published" in err and "Traceback" not in err
    assert kit.digest(folder) == before
    assert not kit.all_gone(started)
    staging = reports / STATE_DIR / f"{kit.MONTH}.staging"
    assert [p for p in staging.rglob("*") if ".tmp" in p.name] == [], "temporary files left behind"
    done = _journal(reports, kit.MONTH)
    assert done >= 1
    if sig == signal.SIGTERM:  # the lock was released (resuming is the same as after Ctrl-C)
        with Publication(reports, kit.MONTH).open("another key"):
            pass
        return

    rc, err = kit.finish(kit.review(v2, reports), [])  # the lock was released: this run proceeds
    assert rc == 0, err
    manifest = _one_run(folder)
    assert manifest["summary"]["executed"] == manifest["summary"]["total"] - done
    assert kit.leftovers(reports) == []


def test_a_fit_killed_midway_leaves_nothing_the_next_run_trips_on(kit, reports, warehouses):
    v1, v2 = warehouses
    folder = reports / kit.MONTH
    before = kit.digest(folder)
    staging = reports / STATE_DIR / f"{kit.MONTH}.staging"
    run = kit.review(v2, reports, "--force")
    deadline = time.monotonic() + 120
    while not list(staging.glob("artifacts.tmp-*")):  # the fit is writing its artifacts
        assert run.poll() is None and time.monotonic() < deadline, "the fit was not seen"
        time.sleep(0.01)
    started = kit.family(run.pid)
    kit.kill(run, signal.SIGKILL)
    run.wait(timeout=60)
    assert kit.digest(folder) == before
    assert not kit.all_gone(started)

    rc, err = kit.finish(kit.review(v2, reports), [])
    assert rc == 0, err
    _one_run(folder)
    assert kit.leftovers(reports) == [], "a half-built artifacts folder survived the next run"


def test_a_killed_kernel_fails_its_report_only_and_only_failed_redoes_it(reports, warehouses, tmp_path, kit):
    v1, _ = warehouses
    templates = tmp_path / "templates"
    shutil.copytree(TEMPLATES, templates)
    nb = nbformat.read(templates / "agent_report.ipynb", as_version=4)
    nb.cells.insert(
        2,
        nbformat.v4.new_code_cell(
            "import os, signal\nif agent_id == 'A0002':\n    os.kill(os.getpid(), signal.SIGKILL)  # the kernel dies"
        ),
    )
    nbformat.write(nb, templates / "agent_report.ipynb")
    log = open(tmp_path / "log.txt", "w")
    agents = kit.AGENTS.split(",")
    res = run_review(
        db=v1, month=kit.MONTH, out=reports, agents=agents, workers=2, templates_dir=templates, force=True, log=log
    )
    by_id = {e["id"]: e for e in res.manifest["reports"]}
    assert res.exit_code == 1 and by_id["agent:A0002"]["status"] == "failed"
    assert "died" in by_id["agent:A0002"]["error"].lower(), by_id["agent:A0002"]["error"]
    assert [e["id"] for e in res.failed] == ["agent:A0002"]
    assert (res.run_folder / by_id["agent:A0002"]["notebook"]).is_file()  # kept for whoever debugs it
    fixed = run_review(db=v1, month=kit.MONTH, out=reports, agents=agents, only_failed=True, workers=2, log=log)
    assert fixed.exit_code == 0 and [r.report_id for r in fixed.executed] == ["agent:A0002"]
    assert kit.leftovers(reports) == []
