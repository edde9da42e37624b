"""Publishing a month whole (spm_models.review.publish): lock, staging, journal, switch, clean-up.

These tests drive :class:`Publication` directly with small files; the fault suite
(tests/faults) does the same to whole ``spm review`` runs that are killed, interrupted, run
twice at once or run out of disk.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from spm_models.exceptions import ReviewBusyError
from spm_models.review import publish
from spm_models.review.publish import Publication, published_path


def _publish_month(root: Path, key: str, pages: dict[str, str]) -> None:
    """A published month from run ``key`` with the given files."""
    with Publication(root, "2025-06").open(key) as pub:
        for name, text in pages.items():
            (pub.staging / name).parent.mkdir(parents=True, exist_ok=True)
            (pub.staging / name).write_text(text)
        (pub.staging / "manifest.json").write_text(json.dumps({"key": key, "reports": []}))
        pub.publish()


def _files(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): p.read_text() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_second_run_of_the_month_is_refused_naming_the_first(tmp_path):
    first = Publication(tmp_path, "2025-06")
    with first.open("k1"):
        with pytest.raises(ReviewBusyError) as info, Publication(tmp_path, "2025-06").open("k1"):
            pass
        assert f"process {os.getpid()} on " in str(info.value) and "changed nothing" in str(info.value)
        with Publication(tmp_path, "2025-07").open("k1"):  # another month is another lock
            pass
    with Publication(tmp_path, "2025-06").open("k1"):  # released when the first one ended
        pass


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, time
                from spm_models.review.publish import Publication
                with Publication({str(tmp_path)!r}, "2025-06").open("k1"):
                    print("locked", flush=True)
                    time.sleep(60)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(ReviewBusyError, match=f"process {holder.pid} "):
        with Publication(tmp_path, "2025-06").open("k1"):
            pass
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with Publication(tmp_path, "2025-06").open("k1") as pub:  # the system dropped the dead holder's lock
        assert pub.held


def test_publish_switches_the_whole_folder_and_leaves_nothing_behind(tmp_path):
    _publish_month(tmp_path, "k1", {"index.html": "run 1", "agents/a.html": "a1", "agents/gone.html": "g1"})
    assert _files(tmp_path / "2025-06")["agents/gone.html"] == "g1"
    # a new run (another key) starts empty: nothing of run 1 is published again
    with Publication(tmp_path, "2025-06").open("k2") as pub:
        assert list(pub.staging.iterdir()) == [pub.staging / "staging.json"]
        assert _files(tmp_path / "2025-06")["index.html"] == "run 1"  # untouched while building
        (pub.staging / "agents").mkdir()
        (pub.staging / "agents" / "a.html").write_text("a2")
        (pub.staging / "index.html").write_text("run 2")
        pub.publish()
    assert _files(tmp_path / "2025-06") == {"agents/a.html": "a2", "index.html": "run 2"}
    assert [p.name for p in (tmp_path / ".spm").iterdir()] == ["2025-06.lock"]


def test_the_same_run_key_starts_from_hard_links_and_never_changes_the_published_files(tmp_path):
    _publish_month(tmp_path, "k1", {"agents/a.html": "a1", "agents/b.html": "b1"})
    published = tmp_path / "2025-06" / "agents" / "a.html"
    with Publication(tmp_path, "2025-06").open("k1") as pub:
        staged = pub.staging / "agents" / "a.html"
        assert staged.stat().st_ino == published.stat().st_ino  # reused without a copy
        tmp = staged.with_name(".a.html.tmp-1")
        tmp.write_text("a2")
        os.replace(tmp, staged)  # how every file is written: beside, then renamed
        assert published.read_text() == "a1"
        pub.publish()
    assert published.read_text() == "a2" and (tmp_path / "2025-06" / "agents" / "b.html").read_text() == "b1"


def test_the_two_rename_switch_is_used_where_exchange_is_not_available(tmp_path, monkeypatch):
    monkeypatch.setattr(publish, "_exchange", lambda a, b: False)
    _publish_month(tmp_path, "k1", {"index.html": "run 1"})
    _publish_month(tmp_path, "k2", {"index.html": "run 2"})
    assert _files(tmp_path / "2025-06")["index.html"] == "run 2"
    assert [p.name for p in (tmp_path / ".spm").iterdir()] == ["2025-06.lock"]


def test_a_switch_cut_between_its_two_renames_is_undone_by_the_next_run(tmp_path):
    _publish_month(tmp_path, "k1", {"index.html": "run 1"})
    aside = tmp_path / ".spm" / "2025-06.old-123-456"
    os.rename(tmp_path / "2025-06", aside)  # the crash: published renamed aside, staging not yet in
    with Publication(tmp_path, "2025-06").open("k2"):
        assert _files(tmp_path / "2025-06")["index.html"] == "run 1"
    assert not aside.exists()


def test_an_error_removes_the_staging_folder_and_keeps_the_published_month(tmp_path):
    _publish_month(tmp_path, "k1", {"index.html": "run 1"})
    with pytest.raises(RuntimeError, match="a report crashed"), Publication(tmp_path, "2025-06").open("k2") as pub:
        (pub.staging / "index.html").write_text("half")
        raise RuntimeError("a report crashed")
    assert not pub.staging.exists() and _files(tmp_path / "2025-06")["index.html"] == "run 1"


def test_an_interrupted_run_is_resumed_by_the_next_one_with_the_same_key(tmp_path):
    with pytest.raises(KeyboardInterrupt), Publication(tmp_path, "2025-06").open("k1") as pub:
        pub.record({"id": "agent:A1", "status": "ok"})
        pub.record({"id": "agent:A2", "status": "ok"})
        (pub.staging / "agents").mkdir()
        (pub.staging / "agents" / ".tmp-99-a3.ipynb").write_text("{")  # cut short
        (pub.staging / "artifacts.tmp-4242").mkdir()  # a fit that was killed
        with open(pub.staging / "progress.jsonl", "a") as fh:
            fh.write('{"id": "agent:A3", "sta')  # a line cut short by a kill
        raise KeyboardInterrupt
    assert pub.staging.is_dir()
    assert (
        not (pub.staging / "agents" / ".tmp-99-a3.ipynb").exists() and not (pub.staging / "artifacts.tmp-4242").exists()
    )
    with Publication(tmp_path, "2025-06").open("k1") as again:
        assert sorted(again.recorded()) == ["agent:A1", "agent:A2"] and again.resumed == 2
    with Publication(tmp_path, "2025-06").open("k2") as other:  # other data: start over
        assert other.recorded() == {}


def test_published_path_names_where_a_staged_file_will_be():
    staged = Path("/r/.spm/2025-06.staging/artifacts")
    assert published_path(staged) == Path("/r/2025-06/artifacts")
    assert published_path("/r/2025-06/artifacts") == Path("/r/2025-06/artifacts")


def test_a_reports_folder_that_cannot_be_written_is_a_config_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    from spm_models.exceptions import ConfigError

    with (
        pytest.raises(ConfigError, match="cannot write to the reports folder"),
        Publication(blocker, "2025-06").open("k"),
    ):
        pass


def test_a_file_where_the_month_folder_belongs_is_replaced_by_the_run(tmp_path):
    (tmp_path / "2025-06").write_text("not a folder")
    _publish_month(tmp_path, "k1", {"index.html": "run 1"})
    assert _files(tmp_path / "2025-06")["index.html"] == "run 1"
    assert [p.name for p in (tmp_path / ".spm").iterdir()] == ["2025-06.lock"]


def test_a_run_killed_between_switch_and_tidying_up_leaves_nothing_in_the_published_month(tmp_path):
    _publish_month(tmp_path, "k1", {"index.html": "run 1"})
    (tmp_path / "2025-06" / "progress.jsonl").write_text("{}\n")  # what that kill would leave
    with Publication(tmp_path, "2025-06").open("k1"):
        assert not (tmp_path / "2025-06" / "progress.jsonl").exists()
