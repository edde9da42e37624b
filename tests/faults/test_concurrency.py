"""Two runs of one month at once: the second is refused, naming the first; the first is unharmed.

They used to both proceed and overwrite each other's pages, index and manifest. (Runs of
different months hold different locks: tests/review/test_publish.py.)
"""

from __future__ import annotations

import json
import signal
import time


def test_a_second_run_of_the_same_month_is_refused_naming_the_first(kit, reports, warehouses):
    v1, v2 = warehouses
    first = kit.review(v2, reports)
    lines: list[str] = []
    kit.wait_for_reports(first, 1, lines)  # the first run holds the month and is writing reports
    first.send_signal(signal.SIGSTOP)  # a slow first run: it keeps the month while the second starts
    try:
        t0 = time.monotonic()
        rc, err = kit.finish(kit.review(v1, reports, "--force"), [], timeout=120)
    finally:
        first.send_signal(signal.SIGCONT)
    assert rc == 1, err
    assert f"another review of {kit.MONTH} is running" in err and f"process {first.pid} on " in err, err
    assert "changed nothing" in err and "Traceback" not in err
    assert time.monotonic() - t0 < 60, "the second run waited instead of refusing"
    rc, err = kit.finish(first, lines)
    assert rc == 0, err
    manifest = json.loads((reports / kit.MONTH / "manifest.json").read_text())
    assert manifest["summary"]["ok"] == manifest["summary"]["total"]
    assert {e["provenance"]["run_id"] for e in manifest["reports"]} == {manifest["run_id"]}
    assert kit.leftovers(reports) == []
