"""Every command, given bad options, values or paths, answers with one message and exit code 2.

Never a traceback: each case runs ``spm_models.cli.main`` in-process, so an exception that
escaped it would fail the test, and the message is checked for the words a user needs.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from spm_models.cli import main
from spm_models.data.sources.canonical import read_canonical_folder
from spm_models.data.warehouse import Warehouse

GOOD = Path(__file__).parent / "data" / "good_small"
MAPPED = Path(__file__).parent / "data" / "mapping" / "good"


@pytest.fixture(scope="module")
def place(tmp_path_factory) -> Path:
    """A folder with a warehouse, a plain file, a folder, a deep TOML and other hostile paths."""
    root = tmp_path_factory.mktemp("cli")
    Warehouse(root / "w.duckdb").ingest(read_canonical_folder(GOOD))
    (root / "plain.txt").write_text("not a folder\n")
    (root / "folder.csv").mkdir()
    (root / "deep.toml").write_text("x = " + "[" * 3000 + "]" * 3000 + "\n")
    (root / "bad.toml").write_text("model = [\n")
    (root / "unknown.toml").write_text('colour = "blue"\n')
    (root / "latin1.toml").write_bytes('name = "M\xfcller"\n'.encode("latin-1"))
    os.mkfifo(root / "pipe.toml")
    export = root / "export"
    shutil.copytree(MAPPED, export)
    text = (export / "mapping.toml").read_text(encoding="utf-8")
    (export / "rot13.toml").write_text(text.replace('encoding = "cp1252"', 'encoding = "rot13"'), encoding="utf-8")
    (export / "badfmt.toml").write_text(text.replace('"%d/%m/%Y"', '"%Q-%Y"'), encoding="utf-8")
    (export / "escape.toml").write_text(text.replace('"artikel.csv"', '"../../../etc/passwd"'), encoding="utf-8")
    (root / "project").mkdir()
    (root / "project" / "spm.toml").write_text('earliest_date = "someday"\n')
    return root


# argv (with {p} for the fixture folder), words expected in stderr
CASES = [
    # demo-data
    (["demo-data", "--agents", "0"], "--agents"),
    (["demo-data", "--agents", "many"], "--agents"),
    (["demo-data", "--years", "-1"], "--years"),
    (["demo-data", "--seed", "x"], "--seed"),
    (["demo-data", "--agents", "5", "--years", "0.5", "--out", "{p}/plain.txt/org"], "plain.txt"),
    (["demo-data", "--colour", "blue"], "No such option"),
    # ingest
    (["ingest"], "Missing argument"),
    (["ingest", "{p}/nothing-here"], "nothing-here"),
    (["ingest", str(GOOD), "--source", "excel", "--db", "{p}/x.duckdb"], "unknown source"),
    (["ingest", str(GOOD), "--encoding", "utf8x", "--db", "{p}/x.duckdb"], "utf8x"),
    (["ingest", str(GOOD), "--encoding", "rot13", "--db", "{p}/x.duckdb"], "not a text encoding"),
    (["ingest", str(GOOD), "--db", "{p}/plain.txt/w.duckdb"], "plain.txt"),
    (["ingest", str(GOOD), "--db", "{p}/folder.csv"], "folder.csv"),
    (["ingest", "{p}/pipe.toml", "--db", "{p}/x.duckdb"], "named pipe"),
    (["ingest", "{p}/deep.toml", "--db", "{p}/x.duckdb"], "levels deep"),
    (["ingest", "{p}/bad.toml", "--db", "{p}/x.duckdb"], "not valid TOML"),
    (["ingest", "{p}/latin1.toml", "--db", "{p}/x.duckdb"], "not UTF-8"),
    (["ingest", "{p}/export/rot13.toml", "--db", "{p}/x.duckdb"], "not a text encoding 'rot13'"),
    (["ingest", "{p}/export/badfmt.toml", "--db", "{p}/x.duckdb"], "%Q-%Y"),
    (["ingest", "{p}/export/escape.toml", "--db", "{p}/x.duckdb"], "export folder"),
    (["ingest", str(GOOD), "--source", "maven", "--db", "{p}/x.duckdb"], "sales_pipeline.csv"),
    (["ingest", str(GOOD), "--db", "{p}/x.duckdb", "--project-dir", "{p}/project"], "earliest_date"),
    # kpis
    (["kpis", "--db", "{p}/w.duckdb", "--grain", "fortnight"], "fortnight"),
    (["kpis", "--db", "{p}/w.duckdb", "--level", "planet"], "planet"),
    (["kpis", "--db", "{p}/w.duckdb", "--period", "garbage"], "garbage"),
    (["kpis", "--db", "{p}/w.duckdb", "--period", "1999-01"], "no KPIs for period"),
    (["kpis", "--db", "{p}/w.duckdb", "--out", "{p}/folder.csv"], "folder"),
    (["kpis", "--db", "{p}/w.duckdb", "--out", "{p}/kpis.txt"], ".csv or .parquet"),
    (["kpis", "--db", "{p}/w.duckdb", "--out", "{p}/plain.txt/kpis.csv"], "plain.txt"),
    (["kpis", "--db", "{p}/none.duckdb"], "spm ingest"),
    (["kpis", "--db", "{p}/plain.txt"], "cannot open the warehouse"),
    (["kpis", "--db", "{p}/folder.csv"], "folder.csv"),
    # demo
    (["demo", "--agents", "1"], "--agents"),
    (["demo", "--years", "99"], "--years"),
    # models
    (["models", "extra"], "unexpected extra argument"),
    # review
    (["review", "--db", "{p}/w.duckdb", "--out", "{p}/r", "--month", "2025-13"], "2025-13"),
    (["review", "--db", "{p}/w.duckdb", "--out", "{p}/r", "--month", "june"], "june"),
    (["review", "--db", "{p}/w.duckdb", "--out", "{p}/r", "--month", "9999-12"], "before the month 9999-12"),
    (["review", "--db", "{p}/w.duckdb", "--workers", "0"], "--workers"),
    (["review", "--db", "{p}/w.duckdb", "--timeout", "0"], "--timeout"),
    (["review", "--db", "{p}/w.duckdb", "--kernels", "warp"], "warp"),
    (["review", "--db", "{p}/w.duckdb", "--config", "{p}/missing.toml"], "missing.toml"),
    (["review", "--db", "{p}/w.duckdb", "--config", "{p}/folder.csv"], "folder"),
    (["review", "--db", "{p}/w.duckdb", "--config", "{p}/deep.toml"], "levels deep"),
    (["review", "--db", "{p}/w.duckdb", "--config", "{p}/pipe.toml"], "named pipe"),
    (["review", "--db", "{p}/w.duckdb", "--config", "{p}/unknown.toml"], "colour"),
    (["review", "--db", "{p}/w.duckdb", "--only-failed", "--force", "--out", "{p}/r"], "not both"),
    (["review", "--db", "{p}/none.duckdb"], "spm ingest"),
    (["review", "--db", "{p}/w.duckdb", "--out", "{p}/r", "--month", "1999-01"], "the data start on 2024-01-01"),
    (["review", "--db", "{p}/w.duckdb", "--out", "{p}/r", "--agents", ",,"], "--agents needs at least one id"),
    (["review", "--db", "{p}/w.duckdb", "--out", "{p}/r", "--territories", " "], "--territories needs"),
    (["review", "--db", "{p}/w.duckdb", "--out", "{p}/plain.txt/reports", "--month", "2024-03"], "plain.txt"),
]


@pytest.mark.parametrize(("argv", "words"), CASES, ids=[" ".join(c[0][:3]) for c in CASES])
def test_bad_options_values_and_paths_are_one_message_and_exit_2(place, argv, words, capsys):
    args = [a.replace("{p}", str(place)) for a in argv]
    rc = main(args)
    captured = capsys.readouterr()
    err = captured.err
    assert rc == 2, err
    assert "Traceback" not in err + captured.out and "internal error" not in err
    assert words in err, err


def test_an_unexpected_error_is_one_line_and_a_file(monkeypatch, tmp_path, capsys):
    """The safety net for bugs: exit code 1, no traceback on the terminal, the traceback in a file."""

    def boom(*args, **kwargs):
        raise ZeroDivisionError("deliberate")

    monkeypatch.setattr("spm_models.models.registry.describe_models", boom)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    assert main(["models"]) == 1
    err = capsys.readouterr().err
    assert "internal error (ZeroDivisionError: deliberate)" in err and "Traceback" not in err
    (report,) = tmp_path.glob("spm-error-*.txt")
    assert "Traceback" in report.read_text() and "deliberate" in report.read_text()
