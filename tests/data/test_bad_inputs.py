"""The corpus of bad inputs (tests/data/bad, one folder per case, README table): each case through `spm ingest`.

Every case is ingested through the CLI into a warehouse that already holds ``good_small``:

* ``expect = "error"``: exit code 2, the message names what ``words`` says, and the warehouse
  file is byte-identical (and its folder unchanged) afterwards;
* ``expect = "warning"``: exit code 0, a ``warning:`` line names what ``words`` says, and the
  data are stored;
* never a traceback, never an internal error, never a line of a file outside the export.

A case folder holds canonical CSV files that replace their namesakes in ``good_small`` (or, with
``source = "mapping"``, files of the small mapped export in ``mapping/good`` plus
``mapping_edits`` to its mapping.toml), and ``case.toml``. What cannot live in git (a named pipe,
a folder or link named like a table, an unreadable file) is made by ``setup``.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from spm_models.cli import main
from spm_models.data.sources.canonical import read_canonical_folder
from spm_models.data.warehouse import Warehouse

HERE = Path(__file__).parent
BAD = HERE / "bad"
GOOD = HERE / "good_small"
MAPPED = HERE / "mapping" / "good"
SECRET = "s3cr3t-first-line-of-a-file-outside-the-export"
CASES = sorted(p.name for p in BAD.iterdir() if p.is_dir())


def _spec(case: str) -> dict:
    return tomllib.loads((BAD / case / "case.toml").read_text(encoding="utf-8"))


def _snapshot(db: Path):
    return hashlib.sha256(db.read_bytes()).hexdigest(), db.stat().st_mtime_ns, sorted(os.listdir(db.parent))


def _setup(folder: Path, setup: dict | None, outside: Path) -> None:
    if not setup:
        return
    target = folder / setup["name"]
    if target.exists() or target.is_symlink():
        target.unlink()
    kind = setup["kind"]
    if kind == "folder":
        target.mkdir()
    elif kind == "broken_link":
        os.symlink("no-such-file.csv", target)
    elif kind == "fifo":
        os.mkfifo(target)
    elif kind == "link_outside":
        os.symlink(outside, target)
    elif kind == "unreadable":
        shutil.copyfile((GOOD if (GOOD / setup["name"]).exists() else MAPPED) / setup["name"], target)
        target.chmod(0)
    elif kind != "remove":
        raise AssertionError(f"unknown setup {kind!r}")


def prepare(case: str, where: Path) -> tuple[Path, list[str]]:
    """The folder (or mapping file) to ingest for ``case``, built under ``where``, and extra CLI args."""
    spec = _spec(case)
    outside = where / "outside" / "secret.csv"
    outside.parent.mkdir(parents=True)
    outside.write_text(f"{SECRET},x\n1,2\n")
    folder = where / "export"
    mapped = spec.get("source") == "mapping"
    shutil.copytree(MAPPED if mapped else GOOD, folder)
    for f in (BAD / case).iterdir():
        if f.name != "case.toml":
            shutil.copyfile(f, folder / f.name)
    if mapped:
        mapping = folder / "mapping.toml"
        text = mapping.read_text(encoding="utf-8")
        for old, new in spec.get("mapping_edits", []):
            assert old == "__ALL__" or old in text, (case, old)
            text = new if old == "__ALL__" else text.replace(old, new, 1)
        mapping.write_text(text, encoding="utf-8")
    _setup(folder, spec.get("setup"), outside)
    return (folder / "mapping.toml" if mapped else folder), list(spec.get("args", []))


def _drop_read_override() -> None:
    """In the child before exec: drop root's power to read any file (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH).

    Removed from the capability bounding set, they are not in the new program's permitted set,
    so root then obeys file permissions like any user.
    """
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    pr_capbset_drop, cap_dac_override, cap_dac_read_search = 24, 1, 2
    for cap in (cap_dac_override, cap_dac_read_search):
        if libc.prctl(pr_capbset_drop, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) refused")


def _as_unprivileged(argv: list[str]) -> tuple[int, str]:
    """Run the CLI as a root that obeys file permissions (root otherwise reads every file)."""
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "spm_models.cli", *argv],
            capture_output=True,
            text=True,
            preexec_fn=_drop_read_override,
            timeout=120,
        )
    except subprocess.SubprocessError as exc:  # the sandbox forbids dropping capabilities
        pytest.skip(f"cannot make a file unreadable for root here ({exc}); run the tests as a normal user")
    return proc.returncode, proc.stderr


@pytest.fixture(scope="module")
def _good_db(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("template") / "warehouse.duckdb"
    Warehouse(db).ingest(read_canonical_folder(GOOD))
    return db


def test_the_corpus_has_at_least_sixty_cases_each_in_the_readme():
    assert len(CASES) >= 60
    readme = (BAD / "README.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `([a-z0-9_]+)` \|.*\| (exit 2|warning) \|$", readme, re.M))
    assert sorted(rows) == CASES, "the README table and the case folders differ"
    for case in CASES:
        expected = "exit 2" if _spec(case)["expect"] == "error" else "warning"
        assert rows[case] == expected, case


@pytest.mark.parametrize("case", CASES)
def test_bad_input_gives_its_message_and_leaves_the_warehouse_as_it_was(case, tmp_path, _good_db, capsys):
    spec = _spec(case)
    db = tmp_path / "wh" / "warehouse.duckdb"
    db.parent.mkdir()
    shutil.copyfile(_good_db, db)
    target, args = prepare(case, tmp_path)
    before = _snapshot(db)
    argv = ["ingest", str(target), "--db", str(db), *args]
    if (spec.get("setup") or {}).get("kind") == "unreadable" and os.geteuid() == 0:
        rc, err = _as_unprivileged(argv)
    else:
        rc = main(argv)
        err = capsys.readouterr().err
    assert "Traceback" not in err and "internal error" not in err, err
    assert SECRET not in err, "a message showed the content of a file outside the export"
    for words in spec["words"]:
        assert words in err, f"{words!r} not in:\n{err}"
    if spec["expect"] == "error":
        assert rc == 2, err
        assert err.startswith("error: ") or "\nerror: " in err, err
        assert _snapshot(db) == before, "a rejected ingest changed the warehouse"
    else:
        assert rc == 0, err
        assert "warning: " in err
        assert Warehouse(db).last_ingest()["n_warnings"] >= 1
