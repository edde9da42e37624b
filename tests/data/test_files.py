"""Hostile files (spm_models.data.files): only regular files, only inside the export folder.

A named input that is missing, a folder, a broken link, a named pipe or unreadable is a problem
(never an empty table); a mapping's file names stay inside the export folder, and a message
about one that does not never shows what the file it points to holds.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from spm_models.cli import main
from spm_models.data.files import check_encoding, confine, read_input
from spm_models.data.sources.canonical import read_canonical_folder
from spm_models.data.warehouse import Warehouse
from spm_models.exceptions import ConfigError, DataValidationError

HERE = Path(__file__).parent
GOOD = HERE / "good_small"
MAPPED = HERE / "mapping" / "good"
SECRET = "s3cr3t-line-that-must-never-be-printed"


def _rule(exc_info) -> str:
    problems = exc_info.value.problems
    assert len(problems) == 1
    return str(problems[0])


@pytest.fixture
def outside(tmp_path) -> Path:
    """A file outside every export folder, whose first line must never be shown."""
    f = tmp_path / "private" / "secret.csv"
    f.parent.mkdir()
    f.write_text(f"{SECRET};b\n1;2\n")
    return f


@pytest.fixture
def export(tmp_path) -> Path:
    folder = tmp_path / "export"
    shutil.copytree(MAPPED, folder)
    return folder


# --------------------------------------------------------------------------- confine


def test_confine_accepts_a_file_and_a_link_that_stays_inside(export):
    assert confine(export, "artikel.csv") == (export / "artikel.csv").resolve()
    (export / "sub").mkdir()
    os.symlink("../artikel.csv", export / "sub" / "link.csv")
    assert confine(export, "sub/link.csv") == (export / "artikel.csv").resolve()


@pytest.mark.parametrize("how", ["dotdot", "absolute", "link", "dir_link"])
def test_confine_refuses_names_that_leave_the_folder(export, outside, how):
    if how == "dotdot":
        name = os.path.relpath(outside, export)
    elif how == "absolute":
        name = str(outside)
    elif how == "link":
        os.symlink(outside, export / "innocent.csv")
        name = "innocent.csv"
    else:
        os.symlink(outside.parent, export / "sub")
        name = "sub/secret.csv"
    with pytest.raises(DataValidationError) as info:
        confine(export, name, named_by="named by products.file in mapping file mapping.toml")
    text = _rule(info)
    assert "export folder" in text and "products.file" in text and SECRET not in text


def test_confine_names_what_the_file_is(export):
    (export / "folder.csv").mkdir()
    os.symlink("missing.csv", export / "broken.csv")
    os.mkfifo(export / "pipe.csv")
    os.symlink("loop.csv", export / "loop.csv")
    expected = {
        "nothing.csv": "file not found",
        "folder.csv": "is a folder",
        "broken.csv": "is a link to missing.csv, which does not exist",
        "pipe.csv": "is a named pipe (FIFO)",
        "loop.csv": "circle",
    }
    for name, words in expected.items():
        with pytest.raises(DataValidationError) as info:
            confine(export, name)
        assert words in _rule(info), name


# --------------------------------------------------------------------------- read_input


def test_read_input_refuses_what_is_not_a_regular_file(tmp_path):
    (tmp_path / "d.csv").mkdir()
    os.mkfifo(tmp_path / "p.csv")  # opened without blocking: a reader would otherwise hang here
    os.symlink(tmp_path / "none.csv", tmp_path / "l.csv")
    for name, words in {"d.csv": "is a folder", "p.csv": "named pipe", "l.csv": "which does not exist"}.items():
        with pytest.raises(DataValidationError) as info:
            read_input(tmp_path / name)
        assert words in _rule(info)
    with pytest.raises(DataValidationError, match="a device"):
        read_input("/dev/null")


def test_read_input_says_permission_denied(tmp_path, monkeypatch):
    f = tmp_path / "locked.csv"
    f.write_text("a\n1\n")
    if os.geteuid() != 0:
        f.chmod(0)
    else:  # root reads every file; the fault suite checks this as an unprivileged user

        def denied(*args, **kwargs):
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr("spm_models.config.os.open", denied)
    with pytest.raises(DataValidationError) as info:
        read_input(f)
    assert "permission denied" in _rule(info)


# --------------------------------------------------------------------------- encodings


@pytest.mark.parametrize("name", ["rot13", "zlib", "base64", "utf8x", "", 3])
def test_only_text_encodings_are_accepted(name):
    with pytest.raises(ConfigError, match="encoding"):
        check_encoding(name)


def test_text_encodings_are_accepted():
    assert [check_encoding(n) for n in ("utf-8", "cp1252", "latin-1")] == ["utf-8", "cp1252", "latin-1"]


# --------------------------------------------------------------------------- end to end


@pytest.mark.parametrize("kind", ["folder", "broken_link", "fifo", "link_outside"])
def test_an_optional_table_that_is_not_a_file_fails_the_ingest(tmp_path, outside, kind, capsys):
    """The defect: activities.csv as a folder or broken link emptied the stored activities."""
    db = tmp_path / "w.duckdb"
    Warehouse(db).ingest(read_canonical_folder(GOOD))
    before = db.read_bytes()
    folder = tmp_path / "export"
    shutil.copytree(GOOD, folder)
    (folder / "activities.csv").unlink()
    target = folder / "activities.csv"
    if kind == "folder":
        target.mkdir()
    elif kind == "broken_link":
        os.symlink("gone.csv", target)
    elif kind == "fifo":
        os.mkfifo(target)
    else:
        os.symlink(outside, target)
    assert main(["ingest", str(folder), "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert "activities.csv" in err and SECRET not in err and "Traceback" not in err
    assert db.read_bytes() == before
    assert Warehouse(db).counts()["activities"] == 9


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "link.csv"])
def test_a_mapping_never_reads_or_shows_a_file_outside_its_folder(export, tmp_path, outside, name, capsys):
    if name == "link.csv":
        os.symlink(outside, export / "link.csv")
    mapping = export / "mapping.toml"
    mapping.write_text(
        mapping.read_text(encoding="utf-8").replace('file = "artikel.csv"', f'file = "{name}"'), encoding="utf-8"
    )
    assert main(["ingest", str(mapping), "--db", str(tmp_path / "w.duckdb")]) == 2
    err = capsys.readouterr().err
    assert "products.file" in err and "export folder" in err and "Traceback" not in err
    assert SECRET not in err and "root:" not in err
    assert not (tmp_path / "w.duckdb").exists()


@pytest.mark.skipif(sys.platform == "win32", reason="no named pipes on Windows")
def test_a_mapping_file_that_is_a_pipe_does_not_hang(tmp_path, capsys):
    fifo = tmp_path / "mapping.toml"
    os.mkfifo(fifo)
    assert main(["ingest", str(fifo), "--db", str(tmp_path / "w.duckdb")]) == 2
    assert "named pipe" in capsys.readouterr().err
