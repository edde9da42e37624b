"""The ``spm`` command: every command has help; errors become exit codes, not tracebacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from spm_models.cli import main

COMMANDS = ["demo-data", "ingest", "kpis", "demo", "review", "models", "plan"]


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


def test_plan_check_and_statements_on_a_small_warehouse(tmp_path, capsys):
    """spm plan check and spm plan statements: a commission for everyone on the small canonical data."""
    import pandas as pd

    from spm_models.data.sources.canonical import read_canonical_folder
    from spm_models.data.warehouse import Warehouse

    good = Path(__file__).parent / "data" / "good_small"
    db = tmp_path / "w.duckdb"
    Warehouse(db).ingest(read_canonical_folder(good))
    plan = tmp_path / "plan.toml"
    plan.write_text(
        '[[plans]]\nid = "all"\neffective_from = 2024-01-01\n'
        '[[plans.components]]\ntype = "commission"\nid = "c"\ntiers = [[0.0, 0.05], [1.0, 0.08]]\n'
    )
    assert main(["plan", "check", str(plan), "--db", str(db)]) == 0
    assert "ok; 1 plan(s), 0 contest(s), from 2024-01-01" in capsys.readouterr().out
    out = tmp_path / "statements.csv"
    assert main(["plan", "statements", str(plan), "--db", str(db), "--out", str(out)]) == 0
    lines = pd.read_csv(out)
    assert len(lines) and set(lines["component_id"]) == {"c"}
    # the statements pay what the rule says on each person-quarter's bookings and quota
    final = lines[lines["status"] == "final"]
    assert len(final) and final["amount_to_date"].sum() > 0
    by_rule = [0.05 * min(b, q) + 0.08 * max(b - q, 0) for b, q in zip(final["value_to_date"], final["quota"])]
    assert final["amount_to_date"].tolist() == pytest.approx(by_rule)
    assert main(["plan", "model", str(plan), str(plan), "--db", str(db), "--model", "Nope"]) == 2
    assert "unknown forecasting model 'Nope'" in capsys.readouterr().err


def test_kpis_prints_the_latest_full_period_with_segmented_kpis(small_warehouse, capsys):
    """The KPI frame's text columns are categorical: the table's names (``kpi[segment]``) are
    built from them without a TypeError (it ended `spm kpis` in an internal error once)."""
    assert main(["kpis", "--db", str(small_warehouse), "--grain", "month", "--level", "agent"]) == 0
    out = capsys.readouterr().out
    assert "activity_volume[call]" in out and "activity_volume[demo]" in out and "A0001" in out
