"""The ``spm`` command: every command has help; errors become exit codes, not tracebacks."""

from __future__ import annotations

import subprocess
import sys

import pytest

from spm_models.cli import main

COMMANDS = ["demo-data", "ingest", "kpis", "demo", "review", "models"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "Usage" in out and command in out


def test_unknown_command_is_a_usage_error(capsys):
    assert main(["no-such-command"]) == 2
    assert "No such command" in capsys.readouterr().err


def test_missing_warehouse_is_a_clear_error(tmp_path, capsys):
    rc = main(["kpis", "--db", str(tmp_path / "none.duckdb")])
    assert rc != 0
    err = capsys.readouterr().err
    assert "none.duckdb" in err and "spm ingest" in err


def test_console_script_returns_exit_code(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "spm_models.cli", "ingest", str(tmp_path / "missing-folder")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "missing-folder" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_models_lists_the_registry_with_parameters(capsys):
    from spm_models.models import model_names

    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert all(f"{name}:" in out for name in model_names())
    assert "window=None" in out and "lookback_weeks=52" in out
