"""Out of disk, and folders that cannot be written, on real (small, in-memory) file systems.

A full disk during a review was 21 misleading NotJSONError failures, 0-byte notebooks, a
traceback while writing the manifest and temporary files left behind. Now: one clear error,
exit code 1, the published month intact, nothing left behind, and a normal run once there is
room. The tmpfs needs the right to mount (root); without it these tests are skipped, saying so.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from spm_models.data.warehouse import Warehouse

GOOD = Path(__file__).resolve().parents[1] / "data" / "good_small"


def _fill(folder, *, leave_kib: int) -> None:
    """Fill the file system of ``folder`` until ``leave_kib`` KiB are free."""
    free_kib = shutil.disk_usage(folder).free // 1024
    with open(folder / "filler", "wb") as fh:
        fh.write(b"\0" * max(0, free_kib - leave_kib) * 1024)


def test_a_full_disk_during_a_review_is_one_error_and_the_published_month_survives(
    kit, published_template, warehouses, tmp_path
):
    _, v2 = warehouses
    with kit.tmpfs(tmp_path / "disk", 20) as disk:
        reports = disk / "reports"
        shutil.copytree(published_template, reports, symlinks=True)
        folder = reports / kit.MONTH
        before = kit.digest(folder)
        _fill(disk, leave_kib=1000)  # room for the artifacts and a page, not for a month
        rc, err = kit.finish(kit.review(v2, reports, "--force"), [])
        assert rc == 1, err
        errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
        assert len(errors) == 1 and "is full" in errors[0] and "the published 2024-11 (run" in errors[0], err
        # besides the stage lines and those of reports that finished before the disk filled, that one line is all
        assert [ln for ln in err.splitlines() if ln.strip() and not kit.is_progress(ln)] == errors, err
        assert "Traceback" not in err and "NotJSONError" not in err and "status=failed" not in err
        assert kit.digest(folder) == before
        assert kit.leftovers(reports) == []
        assert not [p for p in reports.rglob("*.ipynb") if p.stat().st_size == 0]
        (disk / "filler").unlink()  # room again: the same command now succeeds
        rc, err = kit.finish(kit.review(v2, reports), [])
        assert rc == 0, err
        assert kit.leftovers(reports) == []


def test_a_full_disk_during_an_ingest_keeps_the_previous_snapshot(kit, tmp_path):
    with kit.tmpfs(tmp_path / "disk", 4) as disk:
        db = disk / "warehouse.duckdb"
        rc, err = kit.finish(kit.spm("ingest", GOOD, "--db", db), [])
        assert rc == 0, err
        before = Warehouse(db).last_ingest()["run_id"]
        changed = tmp_path / "changed"
        shutil.copytree(GOOD, changed)
        text = (changed / "activities.csv").read_text().replace("A1,2024-01-08,call,9", "A1,2024-01-08,call,10")
        (changed / "activities.csv").write_text(text)
        _fill(disk, leave_kib=0)
        rc, err = kit.finish(kit.spm("ingest", changed, "--db", db), [])
        assert rc == 1 and "is full" in err and "keeps its previous content" in err and "Traceback" not in err, err
        (disk / "filler").unlink()
        assert Warehouse(db).last_ingest()["run_id"] == before and Warehouse(db).counts()["activities"] == 9


def test_read_only_folders_are_a_message_not_a_traceback(kit, warehouses, tmp_path):
    v1, _ = warehouses
    with kit.tmpfs(tmp_path / "ro", 20) as ro:
        shutil.copyfile(v1, ro / "warehouse.duckdb")
        (ro / "reports").mkdir()
        kit.remount_read_only(ro)
        # reading a warehouse on a read-only disk works
        rc, err = kit.finish(kit.spm("kpis", "--db", ro / "warehouse.duckdb"), [])
        assert rc == 0, err
        # writing reports or a warehouse there is exit 2 with a message naming the place
        rc, err = kit.finish(kit.review(ro / "warehouse.duckdb", ro / "reports"), [])
        assert rc == 2 and "cannot write to the reports folder" in err and "Traceback" not in err, err
        rc, err = kit.finish(kit.spm("ingest", GOOD, "--db", ro / "new" / "warehouse.duckdb"), [])
        assert rc == 2 and "warehouse" in err and "Traceback" not in err, err
        rc, err = kit.finish(kit.spm("kpis", "--db", ro / "warehouse.duckdb", "--out", ro / "kpis.csv"), [])
        assert rc == 2 and "kpis.csv" in err and "Traceback" not in err, err
        subprocess.run(["mount", "-o", "remount,rw", str(ro)], check=True)
