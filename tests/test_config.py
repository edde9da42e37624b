"""Project paths and project settings (spm.toml), and the fiscal year they carry into ingest."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from spm_models.calendar import Calendar
from spm_models.cli import main
from spm_models.config import ProjectPaths, ProjectSettings
from spm_models.data.warehouse import Warehouse, fingerprint
from spm_models.exceptions import ConfigError

GOOD = Path(__file__).parent / "data" / "good_small"
MAPPED = Path(__file__).parent / "data" / "mapping" / "good"


def test_settings_default_to_the_calendar_year_without_a_file(tmp_path):
    paths = ProjectPaths.from_root(tmp_path)
    assert paths.settings_file == tmp_path / "spm.toml"
    assert paths.settings() == ProjectSettings() and paths.settings().calendar == Calendar()


def test_settings_file_sets_the_fiscal_year_and_refuses_what_it_does_not_know(tmp_path):
    f = tmp_path / "spm.toml"
    f.write_text('fiscal_year_start = "February"\nfiscal_year_label = "start"\n')
    s = ProjectSettings.load(f)
    assert s.fiscal_year_start == 2 and s.calendar == Calendar(2, "start")
    f.write_text("fiscal_year_begins = 2\n")
    with pytest.raises(ConfigError, match="unknown project setting.*fiscal_year_begins.*fiscal_year_start"):
        ProjectSettings.load(f)
    f.write_text("fiscal_year_start = 0\n")
    with pytest.raises(ConfigError, match=r"spm.toml: fiscal_year_start must be the month"):
        ProjectSettings.load(f)
    f.write_text("fiscal_year_start = [\n")
    with pytest.raises(ConfigError, match="cannot read the project settings"):
        ProjectSettings.load(f)


def test_ingest_stores_the_projects_fiscal_year_unless_the_mapping_says_its_own(tmp_path, capsys):
    (tmp_path / "spm.toml").write_text("fiscal_year_start = 4\n")
    db = tmp_path / "w.duckdb"
    assert main(["ingest", str(GOOD), "--db", str(db), "--project-dir", str(tmp_path)]) == 0
    assert Warehouse(db).load().calendar == Calendar(4)
    export = tmp_path / "export"
    shutil.copytree(MAPPED, export)
    mapping = export / "mapping.toml"
    mapping.write_text("fiscal_year_start = 7\n" + mapping.read_text(encoding="utf-8"), encoding="utf-8")
    assert main(["ingest", str(mapping), "--db", str(db), "--project-dir", str(tmp_path)]) == 0
    assert Warehouse(db).load().calendar == Calendar(7)
    (tmp_path / "spm.toml").write_text("fiscal_year_start = 13\n")
    assert main(["ingest", str(GOOD), "--db", str(db), "--project-dir", str(tmp_path)]) == 2
    assert "fiscal_year_start" in capsys.readouterr().err


def test_the_bookings_measure_is_a_project_setting_stored_with_the_snapshot(tmp_path, capsys):
    """Like the fiscal year: spm.toml says it, a mapping file may say its own, the warehouse keeps it,
    and it is part of the fingerprint (deals counted as money would be other data)."""
    assert ProjectSettings().bookings_measure == "money"
    db = tmp_path / "w.duckdb"
    assert main(["ingest", str(GOOD), "--db", str(db), "--project-dir", str(tmp_path)]) == 0
    money = Warehouse(db).load()
    assert money.bookings_measure == "money" and money["opportunities"]["amount"].max() > 1
    (tmp_path / "spm.toml").write_text('bookings_measure = "deals"\n')
    assert main(["ingest", str(GOOD), "--db", str(db), "--project-dir", str(tmp_path)]) == 0
    deals = Warehouse(db).load()
    assert deals.bookings_measure == "deals" and (deals["opportunities"]["amount"] == 1.0).all()
    assert Warehouse(db).last_ingest()["fingerprint"] != fingerprint(money)
    assert "amounts ignored: bookings are counted in deals" in capsys.readouterr().err
    export = tmp_path / "export"
    shutil.copytree(MAPPED, export)
    mapping = export / "mapping.toml"
    mapping.write_text('bookings_measure = "money"\n' + mapping.read_text(encoding="utf-8"), encoding="utf-8")
    assert main(["ingest", str(mapping), "--db", str(db), "--project-dir", str(tmp_path)]) == 0
    assert Warehouse(db).load().bookings_measure == "money"  # the mapping's own wins
    (tmp_path / "spm.toml").write_text('bookings_measure = "pounds"\n')
    assert main(["ingest", str(GOOD), "--db", str(db), "--project-dir", str(tmp_path)]) == 2
    assert "bookings_measure must be one of 'money', 'deals'" in capsys.readouterr().err
