"""The canonical CSV folder: reading every file, all problems at once, round trip with the writer."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from spm_models.data.sources.canonical import (
    read_canonical_files,
    read_canonical_folder,
    write_canonical_folder,
)
from spm_models.data.validation import validate
from spm_models.exceptions import DataValidationError

HERE = Path(__file__).parent
GOOD = HERE / "good_small"


@pytest.fixture
def folder(tmp_path) -> Path:
    dst = tmp_path / "canonical"
    shutil.copytree(GOOD, dst)
    return dst


def _problems(call) -> list[str]:
    with pytest.raises(DataValidationError) as info:
        call()
    return [str(p) for p in info.value.problems]


def test_reads_every_table_as_text_with_row_numbers():
    ds = read_canonical_folder(GOOD)
    assert list(ds.tables) == [
        "territories",
        "agents",
        "accounts",
        "products",
        "opportunities",
        "stage_history",
        "activities",
        "targets",
        "indicators",
    ]
    agents = ds["agents"]
    assert list(agents.columns) == ["agent_id", "agent_name", "territory_id", "manager", "hire_date", "leave_date"]
    assert agents.loc[2, "hire_date"] is None and agents.loc[3, "leave_date"] == "2024-06-30"
    assert ds["accounts"].loc[0, "account_name"] == "Acme, Inc."
    assert ds.ref("opportunities").file == "opportunities.csv"
    assert ds.ref("opportunities").row_of(0) == 2 and ds.ref("opportunities").row_of(14) == 16
    assert ds.source == str(GOOD) and ds.warnings == []


def test_optional_files_may_be_absent(folder):
    for name in ("accounts", "products", "stage_history", "activities", "targets", "indicators"):
        (folder / f"{name}.csv").unlink()
    (folder / "opportunities.csv").write_text(
        (folder / "opportunities.csv").read_text().replace(",AC1,", ",,").replace(",AC2,", ",,").replace(",AC3,", ",,")
    )
    ds = read_canonical_folder(folder)
    assert set(ds.tables) == {"territories", "agents", "opportunities"}
    validate(ds)  # references to the absent accounts/products tables are skipped


def test_missing_required_files_are_all_named(folder):
    (folder / "agents.csv").unlink()
    (folder / "territories.csv").unlink()
    problems = _problems(lambda: read_canonical_folder(folder))
    assert any(p.startswith("territories.csv: required file is missing") for p in problems)
    assert any(p.startswith("agents.csv: required file is missing") for p in problems)


def test_empty_file_is_reported_with_the_problems_of_other_files(folder):
    (folder / "products.csv").write_bytes(b"")
    (folder / "targets.csv").write_text("agent_id,territory_id,period_start,period_end,quota\nA1,,2024-01-01\n")
    (folder / "indicators.csv").write_text("date,name,territory_id\n2024-01-01,x,T1\n")
    problems = _problems(lambda: read_canonical_folder(folder))
    assert "products.csv: file is empty: expected a header row and data rows" in problems
    assert "targets.csv, row 2: row has 3 fields but the header has 5" in problems
    assert "indicators.csv, row 1, column 'value': required column 'value' is missing from the header" in problems
    assert len(problems) == 3


def test_header_only_optional_file_is_an_empty_table(folder):
    (folder / "indicators.csv").write_text("date,name,value,territory_id\n")
    ds = read_canonical_folder(folder)
    assert len(ds["indicators"]) == 0
    assert len(validate(ds)["indicators"]) == 0


def test_unknown_files_and_extra_columns_are_warnings(folder):
    (folder / "notes.csv").write_text("a,b\n1,2\n")
    (folder / "README.txt").write_text("not a table")
    agents = pd.read_csv(folder / "agents.csv", dtype=str).assign(email="x@example.com")
    agents.to_csv(folder / "agents.csv", index=False)
    ds = read_canonical_folder(folder)
    warnings = [str(w) for w in ds.warnings]
    assert any(w.startswith("notes.csv: not a canonical table; ignored") for w in warnings)
    assert "agents.csv, row 1, column 'email': column is not part of the agents table; ignored" in warnings
    assert "email" not in ds["agents"].columns
    assert not any("README" in w for w in warnings)


def test_missing_folder_is_a_problem(tmp_path):
    problems = _problems(lambda: read_canonical_folder(tmp_path / "nope"))
    assert problems == [f"{tmp_path / 'nope'}: folder not found"]


def test_files_can_be_given_one_by_one(folder):
    files = [folder / f"{n}.csv" for n in ("opportunities", "agents", "territories")]
    ds = read_canonical_files(files)
    assert list(ds.tables) == ["territories", "agents", "opportunities"]
    assert ds.ref("agents").file == "agents.csv"
    typed = validate(ds)
    assert len(typed["opportunities"]) == 15


def test_file_list_problems(folder, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    shutil.copyfile(folder / "agents.csv", other / "agents.csv")
    (folder / "deals.csv").write_text("x\n1\n")
    problems = _problems(
        lambda: read_canonical_files(
            [folder / "territories.csv", folder / "agents.csv", other / "agents.csv", folder / "deals.csv"]
        )
    )
    assert any(p.startswith("deals.csv: file name does not name a canonical table") for p in problems)
    assert any(p.startswith("agents.csv: two files for the agents table") for p in problems)
    assert any(p.startswith("opportunities.csv: required file is missing") for p in problems)


def test_write_then_read_round_trips(tmp_path):
    typed = validate(read_canonical_folder(GOOD))
    write_canonical_folder(typed, tmp_path / "out")
    again = validate(read_canonical_folder(tmp_path / "out"))
    for name in typed.tables:
        pd.testing.assert_frame_equal(again[name], typed[name])
