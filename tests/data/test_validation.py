"""Validation of canonical data: every rule, every problem at once, nothing stored on failure.

The first half runs the purpose-built failing inputs of ``tests/data/bad`` end to end (read,
validate, ingest, CLI) against a warehouse that already holds ``good_small`` and checks the
error names file, row, column and rule, the warehouse file is byte-identical afterwards, and
the CLI exits non-zero. The second half checks rules one at a time on in-memory datasets.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spm_models.cli import main
from spm_models.data.dataset import Dataset, SourceRef
from spm_models.data.formulas import is_formula
from spm_models.data.sources.canonical import read_canonical_files, read_canonical_folder
from spm_models.data.validation import DATE_DTYPE, MAX_PER_RULE, validate
from spm_models.data.warehouse import Warehouse
from spm_models.exceptions import DataValidationError, Problem

HERE = Path(__file__).parent
GOOD = HERE / "good_small"
BAD = HERE / "bad"


# --------------------------------------------------------------------------- helpers


def _case_folder(tmp_path: Path, case: str) -> Path:
    """good_small with the files of ``bad/<case>`` copied over it."""
    folder = tmp_path / case
    shutil.copytree(GOOD, folder)
    for f in (BAD / case).iterdir():
        shutil.copyfile(f, folder / f.name)
    return folder


def _snapshot(db: Path):
    return hashlib.sha256(db.read_bytes()).hexdigest(), db.stat().st_mtime_ns, sorted(os.listdir(db.parent))


@pytest.fixture(scope="module")
def _good_db(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("template") / "warehouse.duckdb"
    Warehouse(db).ingest(read_canonical_folder(GOOD))
    return db


@pytest.fixture
def stored_db(tmp_path, _good_db) -> Path:
    """A warehouse holding good_small (a copy of one ingested once per module)."""
    db = tmp_path / "wh" / "warehouse.duckdb"
    db.parent.mkdir()
    shutil.copyfile(_good_db, db)
    return db


def _rejected(paths: list[Path], db: Path, capsys, **kw) -> tuple[list[Problem], str]:
    """Ingest ``paths`` (one folder or several files), expect rejection; return problems and CLI stderr."""
    before = _snapshot(db)
    with pytest.raises(DataValidationError) as info:
        dataset = read_canonical_folder(paths[0]) if paths[0].is_dir() else read_canonical_files(paths)
        Warehouse(db).ingest(dataset, **kw)
    assert _snapshot(db) == before, "a failed ingest changed the warehouse file"
    capsys.readouterr()
    rc = main(["ingest", *map(str, paths), "--db", str(db)])
    err = capsys.readouterr().err
    assert rc == 2
    assert _snapshot(db) == before, "a failed CLI ingest changed the warehouse file"
    return info.value.problems, err


def _find(problems: list[Problem], file, row, column, rule_part) -> Problem:
    hits = [p for p in problems if p.file == file and p.row == row and p.column == column and rule_part in p.rule]
    assert hits, f"no problem {file} row {row} column {column} '{rule_part}' in:\n" + "\n".join(map(str, problems))
    return hits[0]


# --------------------------------------------------------------------------- bad inputs, end to end

SINGLE_PROBLEM_CASES = [
    # case, file, row, column, words of the rule, offending value
    ("missing_column", "opportunities.csv", 1, "created_date", "required column 'created_date' is missing", None),
    ("text_in_amount", "opportunities.csv", 5, "amount", "expected a number", "4.8k"),
    ("unparsable_date", "opportunities.csv", 8, "created_date", "expected a date like 2024-01-31", "2024-02-30"),
    ("negative_amount", "opportunities.csv", 11, "amount", "amount must be zero or more", "-5200"),
    ("duplicate_id", "opportunities.csv", 13, "opportunity_id", "'O03' appears more than once (also row 4)", "O03"),
    ("unknown_agent", "opportunities.csv", 9, "agent_id", "agent 'A9' is not in agents.csv", "A9"),
    (
        "close_before_created",
        "opportunities.csv",
        15,
        "close_date",
        "close date is before the created date",
        "2024-03-25",
    ),
    ("won_without_close_date", "opportunities.csv", 2, "close_date", "needs a close date", None),
    ("targets_agent_and_territory", "targets.csv", 3, "territory_id", "not both", "T1"),
    ("ragged_row", "activities.csv", 4, None, "row has 5 fields but the header has 4", None),
]


@pytest.mark.parametrize(
    ("case", "file", "row", "column", "rule", "value"), SINGLE_PROBLEM_CASES, ids=[c[0] for c in SINGLE_PROBLEM_CASES]
)
def test_bad_input_is_rejected_with_file_row_column_and_rule(
    tmp_path, stored_db, capsys, case, file, row, column, rule, value
):
    problems, err = _rejected([_case_folder(tmp_path, case)], stored_db, capsys)
    assert len(problems) == 1, "\n".join(map(str, problems))
    p = _find(problems, file, row, column, rule)
    assert p.value == value
    assert file in err and rule in err and (f"row {row}" in err)


def test_empty_file_is_named(tmp_path, stored_db, capsys):
    problems, err = _rejected([_case_folder(tmp_path, "empty_file")], stored_db, capsys)
    _find(problems, "agents.csv", None, None, "file is empty")
    assert "agents.csv" in err and "empty" in err


def test_non_utf8_file_is_named_with_its_row(tmp_path, stored_db, capsys):
    problems, err = _rejected([_case_folder(tmp_path, "latin1")], stored_db, capsys)
    p = _find(problems, "agents.csv", 3, None, "not valid utf-8")
    assert "0xe9" in p.rule
    assert "agents.csv" in err and "utf-8" in err


def test_latin1_file_reads_when_its_encoding_is_declared(tmp_path):
    folder = _case_folder(tmp_path, "latin1")
    for f in folder.iterdir():  # make every file latin-1 so one encoding fits all
        if f.name != "agents.csv":
            f.write_bytes(f.read_text(encoding="utf-8").encode("latin-1"))
    typed = validate(read_canonical_folder(folder, encoding="latin-1"))
    assert "Jos\u00e9 Okafor" in typed["agents"]["agent_name"].tolist()


def test_quoted_line_break_is_an_error_and_later_rows_keep_their_numbers(tmp_path, stored_db, capsys):
    problems, err = _rejected([_case_folder(tmp_path, "quoted_newline")], stored_db, capsys)
    assert len(problems) == 2, "\n".join(map(str, problems))
    _find(problems, "agents.csv", 2, "agent_name", "line break inside the field")
    # A4 is on physical line 6 but spreadsheet row 5: the two-line record counts once.
    _find(problems, "agents.csv", 5, "leave_date", "leave date is before the hire date")
    assert "row 5" in err


def test_formula_cell_is_rejected_by_default(tmp_path, stored_db, capsys):
    problems, err = _rejected([_case_folder(tmp_path, "formula")], stored_db, capsys)
    p = _find(problems, "agents.csv", 3, "agent_name", "spreadsheet formula")
    assert p.value == '=HYPERLINK("http://x","y")'
    assert "--allow-formula-text" in err


def test_formula_cell_is_stored_verbatim_when_allowed(tmp_path, stored_db, capsys):
    folder = _case_folder(tmp_path, "formula")
    result = Warehouse(stored_db).ingest(read_canonical_folder(folder), allow_formula_text=True)
    assert result.changed
    w = _find(result.warnings, "agents.csv", 3, "agent_name", "never evaluated")
    assert w.value == '=HYPERLINK("http://x","y")'
    names = Warehouse(stored_db).read("agents", where="agent_id = 'A2'")["agent_name"].tolist()
    assert names == ['=HYPERLINK("http://x","y")']
    # The CLI flag does the same (unchanged now, but accepted) and prints the warning.
    assert main(["ingest", str(folder), "--db", str(stored_db), "--allow-formula-text"]) == 0


def test_one_empty_file_among_several_is_reported_with_the_other_files_problems(tmp_path, stored_db, capsys):
    folder = _case_folder(tmp_path, "multi_file_empty")
    files = sorted(folder.glob("*.csv"))
    problems, err = _rejected(files, stored_db, capsys)
    _find(problems, "opportunities.csv", None, None, "file is empty")
    _find(problems, "agents.csv", 4, None, "row has 4 fields but the header has 6")
    assert "opportunities.csv" in err and "agents.csv" in err


def test_missing_required_file_is_named(tmp_path, stored_db, capsys):
    folder = _case_folder(tmp_path, "empty_file")
    (folder / "agents.csv").unlink()
    problems, _ = _rejected([folder], stored_db, capsys)
    _find(problems, "agents.csv", None, None, "required file is missing")


def test_several_problems_in_several_files_come_back_in_one_error(tmp_path, stored_db, capsys):
    folder = _case_folder(tmp_path, "negative_amount")
    shutil.copyfile(BAD / "formula" / "agents.csv", folder / "agents.csv")
    shutil.copyfile(BAD / "targets_agent_and_territory" / "targets.csv", folder / "targets.csv")
    problems, _ = _rejected([folder], stored_db, capsys)
    assert {(p.file, p.row) for p in problems} == {("agents.csv", 3), ("opportunities.csv", 11), ("targets.csv", 3)}


# --------------------------------------------------------------------------- rules one at a time


def _good() -> Dataset:
    return read_canonical_folder(GOOD)


def _with(ds: Dataset, table: str, row: int, column: str, value) -> Dataset:
    """Copy of ``ds`` with the cell at spreadsheet ``row`` of ``table`` set to ``value``."""
    frame = ds.tables[table].copy()
    frame.loc[row - 2, column] = value
    tables = dict(ds.tables)
    tables[table] = frame
    return Dataset(tables=tables, refs=dict(ds.refs), source=ds.source)


def _problems(ds: Dataset, **kw) -> list[Problem]:
    with pytest.raises(DataValidationError) as info:
        validate(ds, **kw)
    return info.value.problems


def test_output_is_typed():
    typed = validate(_good())
    opp = typed["opportunities"]
    assert opp["created_date"].dtype == DATE_DTYPE == "datetime64[us]"
    assert opp["amount"].dtype == "float64"
    assert opp["opportunity_id"].dtype == "str"
    assert typed["activities"]["count"].dtype == "int64"
    assert opp.loc[0, "created_date"] == pd.Timestamp("2024-01-03")
    assert opp.loc[3, "amount"] == 4800.5
    assert pd.isna(opp.loc[2, "account_id"])  # empty cell -> missing
    assert typed["activities"]["count"].sum() == 12 + 30 + 9 + 7 + 2 + 15 + 1 + 0 + 11
    assert list(opp.columns) == [
        "opportunity_id",
        "agent_id",
        "account_id",
        "product_id",
        "created_date",
        "stage",
        "outcome",
        "close_date",
        "amount",
        "cost",
        "margin",
    ]
    assert opp["cost"].isna().all() and opp["margin"].dtype == "float64"  # later columns, absent: empty
    assert typed["agents"]["is_person"].dtype == bool and typed["agents"]["is_person"].all()


def test_all_empty_optional_columns_are_typed_and_stored(tmp_path):
    ds = _good()
    ds.tables["agents"] = ds.tables["agents"].assign(manager=None, hire_date=None, leave_date=None)
    ds.tables["products"] = ds.tables["products"].assign(list_price=None)
    typed = validate(ds)
    assert typed["agents"]["hire_date"].dtype == DATE_DTYPE and typed["agents"]["hire_date"].isna().all()
    assert typed["products"]["list_price"].dtype == "float64" and typed["agents"]["manager"].dtype == "str"
    Warehouse(tmp_path / "w.duckdb").ingest(ds)
    pd.testing.assert_frame_equal(Warehouse(tmp_path / "w.duckdb").read("agents"), typed["agents"])


def test_values_are_normalised():
    ds = _with(_good(), "opportunities", 2, "outcome", " WON ")
    ds = _with(ds, "opportunities", 3, "stage", "Needs Assessment")
    ds = _with(ds, "activities", 2, "activity_type", " Call ")
    ds = _with(ds, "agents", 2, "agent_name", "  Ana Silva ")
    typed = validate(ds)
    assert typed["opportunities"].loc[0, "outcome"] == "won"
    assert typed["opportunities"].loc[1, "stage"] == "needs_assessment"
    assert typed["activities"].loc[0, "activity_type"] == "call"
    assert typed["agents"].loc[0, "agent_name"] == "Ana Silva"


def test_iso_datetime_is_accepted_and_keeps_its_written_date():
    typed = validate(_with(_good(), "opportunities", 2, "created_date", "2024-01-03T23:30:00-05:00"))
    assert typed["opportunities"].loc[0, "created_date"] == pd.Timestamp("2024-01-03")


def test_source_date_format_and_column_names_are_used():
    ds = _good()
    frame = ds.tables["opportunities"].copy()
    frame["created_date"] = pd.to_datetime(frame["created_date"]).dt.strftime("%d/%m/%Y")
    frame["close_date"] = (
        pd.to_datetime(frame["close_date"]).dt.strftime("%d/%m/%Y").where(frame["close_date"].notna(), None)
    )
    frame.loc[4, "created_date"] = "2024-02-01"  # ISO where the source writes dd/mm/yyyy
    ds.tables["opportunities"] = frame
    ds.refs["opportunities"] = SourceRef(
        "deals.xlsx", rows=np.arange(10, 25), columns={"created_date": "Created On"}, date_format="%d/%m/%Y"
    )
    problems = _problems(ds)
    assert len(problems) == 1
    p = _find(problems, "deals.xlsx", 14, "Created On", "expected a date in the format %d/%m/%Y (like 31/01/2024)")
    assert p.value == "2024-02-01"


def test_typed_input_from_a_generator_is_accepted():
    typed = validate(_good())
    again = Dataset(tables={k: v.copy() for k, v in typed.tables.items()}, source="typed")
    again.tables["opportunities"]["created_date"] = again.tables["opportunities"]["created_date"].astype(
        "datetime64[ns]"
    )
    again.tables["activities"]["count"] = again.tables["activities"]["count"].astype("int32")
    out = validate(again)
    for name in typed.tables:
        pd.testing.assert_frame_equal(out[name], typed[name])


def test_typed_input_is_checked_too():
    typed = validate(_good())
    tables = {k: v.copy() for k, v in typed.tables.items()}
    tables["opportunities"].loc[2, "amount"] = -1.0
    problems = _problems(Dataset(tables=tables))
    _find(problems, "opportunities (in memory)", 4, "amount", "amount must be zero or more")


@pytest.mark.parametrize(
    "text",
    [
        "=1+1",
        '=HYPERLINK("http://x","y")',
        "+HYPERLINK(1)",
        "-cmd|' /C calc'!A0",
        "@SUM(A1:A2)",
        "  =A1",
        "+(1)",
        "-=1",
        "-2+3+cmd|' /C calc'!A0",  # a DDE payload behind a number
        "@1+",
        "\t=1+1",
    ],
)
def test_formula_cells_are_recognised(text):
    assert is_formula(pd.Series([text], dtype="str")).tolist() == [True]


@pytest.mark.parametrize(
    "text",
    ["-5", "+44 20 7946 0000", "-1,234.50", "Anne-Marie", "O'Brien", "-", "a=b", "ana@example.com", "@", "+", "100%"],
)
def test_ordinary_text_is_not_a_formula(text):
    assert is_formula(pd.Series([text], dtype="str")).tolist() == [False]


def test_negative_number_in_a_text_field_is_fine_but_a_formula_is_not():
    ds = _with(_good(), "agents", 2, "manager", "-5")
    validate(ds)
    problems = _problems(_with(ds, "accounts", 3, "sector", "@SUM(A1)"))
    _find(problems, "accounts.csv", 3, "sector", "spreadsheet formula")


def test_missing_required_table_and_empty_required_table():
    ds = _good()
    del ds.tables["territories"]
    ds.tables["agents"] = ds.tables["agents"].iloc[0:0]
    problems = _problems(ds)
    _find(problems, "territories.csv", None, None, "territories table is required but missing")
    _find(problems, "agents.csv", None, None, "no data rows")


def test_required_value_missing():
    problems = _problems(_with(_good(), "agents", 4, "agent_name", "   "))
    _find(problems, "agents.csv", 4, "agent_name", "a value is required")


def test_open_deal_with_close_date_and_won_deal_without_amount():
    ds = _with(_good(), "opportunities", 4, "close_date", "2024-03-01")  # O03 is open
    ds = _with(ds, "opportunities", 11, "amount", None)  # O10 is won
    problems = _problems(ds)
    assert len(problems) == 2
    _find(problems, "opportunities.csv", 4, "close_date", "open opportunity must not have a close date")
    _find(problems, "opportunities.csv", 11, "amount", "a won deal needs an amount")


def test_unparsable_cell_is_reported_once():
    problems = _problems(_with(_good(), "opportunities", 2, "amount", "1,000"))  # won deal
    assert len(problems) == 1
    _find(problems, "opportunities.csv", 2, "amount", "no currency symbol or thousands separator")


def test_stage_and_outcome_must_be_canonical():
    ds = _with(_good(), "opportunities", 2, "stage", "closing")
    ds = _with(ds, "opportunities", 3, "outcome", "maybe")
    ds = _with(ds, "stage_history", 3, "stage", "won")
    problems = _problems(ds)
    _find(problems, "opportunities.csv", 2, "stage", "stage must be one of prospecting")
    _find(problems, "opportunities.csv", 3, "outcome", "outcome must be one of open, won, lost")
    _find(problems, "stage_history.csv", 3, "stage", "stage must be one of")


def test_activity_count_must_be_a_whole_number_of_zero_or_more():
    ds = _with(_good(), "activities", 2, "count", "2.5")
    ds = _with(ds, "activities", 3, "count", "-1")
    ds = _with(ds, "activities", 4, "count", "many")
    problems = _problems(ds)
    assert len(problems) == 3
    _find(problems, "activities.csv", 2, "count", "count must be a whole number")
    _find(problems, "activities.csv", 3, "count", "count must be zero or more")
    _find(problems, "activities.csv", 4, "count", "expected a whole number")


def test_target_rules():
    ds = _with(_good(), "targets", 2, "agent_id", None)  # neither agent nor territory
    ds = _with(ds, "targets", 3, "period_end", "2023-12-31")
    problems = _problems(ds)
    _find(problems, "targets.csv", 2, "agent_id", "needs an agent_id or a territory_id")
    _find(problems, "targets.csv", 3, "period_end", "period end is before the period start")


def test_composite_key_duplicate_names_the_combination():
    ds = _with(_good(), "activities", 4, "date", "2024-01-01")  # A1 call 2024-01-08 -> same as row 2
    problems = _problems(ds)
    p = _find(problems, "activities.csv", 4, "agent_id, date, activity_type", "appears more than once (also row 2)")
    assert "agent_id='A1'" in p.rule and "date='2024-01-01'" in p.rule and "activity_type='call'" in p.rule


def test_references_to_present_optional_tables_are_checked_and_absent_ones_skipped():
    ds = _with(_good(), "opportunities", 3, "account_id", "AC9")
    _find(_problems(ds), "opportunities.csv", 3, "account_id", "account 'AC9' is not in accounts.csv")
    del ds.tables["accounts"]
    typed = validate(ds)
    assert "accounts" not in typed.tables


def test_row_numbers_come_from_the_source_ref():
    ds = _with(_good(), "territories", 3, "territory_id", "T1")
    ds.refs["territories"] = SourceRef("regions.csv", rows=np.array([7, 12]), columns={"territory_id": "Region Code"})
    problems = _problems(ds)
    p = _find(problems, "regions.csv", 12, "Region Code", "Region Code 'T1' appears more than once (also row 7)")
    assert p.value == "T1"


def test_unknown_tables_and_extra_columns_are_warnings():
    ds = _good()
    ds.tables["notes"] = pd.DataFrame({"x": ["1"]})
    ds.tables["agents"] = ds.tables["agents"].assign(nickname="x")
    typed = validate(ds)
    assert "notes" not in typed.tables and "nickname" not in typed["agents"].columns
    rules = [str(w) for w in typed.warnings]
    assert any("'notes' is not a canonical table" in r for r in rules)
    assert any("nickname" in r and "ignored" in r for r in rules)


def test_many_problems_of_one_kind_are_summarised():
    n = MAX_PER_RULE + 500
    tables = dict(_good().tables)
    tables["indicators"] = pd.DataFrame(
        {
            "date": ["2024-01-01"] * n,
            "name": [f"s{i}" for i in range(n)],
            "value": ["x"] * n,
            "territory_id": [None] * n,
        }
    )
    with pytest.raises(DataValidationError) as info:
        validate(Dataset(tables=tables))
    problems = info.value.problems
    assert len(problems) == MAX_PER_RULE + 1  # the first rows, then one line counting them all
    assert [p.row for p in problems[:3]] == [2, 3, 4]
    assert problems[-1].count == 500 and problems[-1].row is None
    assert f"{n:,} rows in all break this rule (the first {MAX_PER_RULE} are listed above)" in problems[-1].rule
    assert info.value.total == n  # exact, not capped
    message = str(info.value)
    assert message.startswith(f"{n:,} problems found") and f"{n:,} rows in all" in message


def test_every_rule_keeps_its_exact_count_in_the_message():
    """8,000 bad numbers and 3,000 bad dates: both counts are in the message, none capped."""
    tables = dict(_good().tables)
    n_value, n_date = 8000, 3000
    tables["indicators"] = pd.DataFrame(
        {
            "date": ["2024-01-01"] * (n_value - n_date) + ["31/01/2024"] * n_date,
            "name": [f"s{i}" for i in range(n_value)],
            "value": ["x"] * n_value,
            "territory_id": [None] * n_value,
        }
    )
    with pytest.raises(DataValidationError) as info:
        validate(Dataset(tables=tables))
    assert info.value.total == n_value + n_date
    message = str(info.value)
    assert message.startswith("11,000 problems found")
    assert "8,000 rows in all break this rule" in message and "3,000 rows in all break this rule" in message


@pytest.mark.slow
def test_three_million_activity_rows_validate():
    """Validation copes with 3M activity rows; how long it takes is measured by bench/ingest.py
    (a benchmark, not a timed assert)."""
    n = 3_000_000
    idx = np.arange(n)
    # 120 rows a day (4 agents x 30 activity types), so the dates stay in the plausible window
    days = pd.date_range("2010-01-01", periods=n // 120 + 1).strftime("%Y-%m-%d").to_numpy(dtype=object)
    tables = dict(_good().tables)
    tables["activities"] = pd.DataFrame(
        {
            "agent_id": np.array(["A1", "A2", "A3", "A4"], dtype=object)[idx % 4],
            "date": days[idx // 120],
            "activity_type": np.array([f"type{k}" for k in range(30)], dtype=object)[(idx // 4) % 30],
            "count": (idx % 37).astype(str).astype(object),
        }
    )
    typed = validate(Dataset(tables=tables))
    assert len(typed["activities"]) == n
    assert typed["activities"]["count"].sum() == int((idx % 37).sum())


def test_leads_are_checked_against_opportunities_agents_and_their_own_dates():
    tables = dict(_good().tables)
    opp = tables["opportunities"]["opportunity_id"].iloc[0]
    tables["leads"] = pd.DataFrame(
        {
            "lead_id": ["L1", "L2", "L3", "L3"],
            "created_date": ["2024-01-05", "2024-01-06", "2024-02-01", "2024-02-02"],
            "channel": ["web", None, "event", "web"],
            "campaign": [None, None, None, None],
            "opportunity_id": [opp, "NOPE", None, None],
            "agent_id": [None, None, "ghost", None],
            "disqualified_date": [None, None, "2024-01-15", None],
        }
    )
    with pytest.raises(DataValidationError) as err:
        validate(Dataset(tables=tables))
    got = {(p.row, p.column, p.rule.split(" (")[0]) for p in err.value.problems if p.file.startswith("leads")}
    assert got == {
        (3, "opportunity_id", "opportunity 'NOPE' is not in opportunities"),
        (4, "agent_id", "agent 'ghost' is not in agents"),
        (4, "disqualified_date", "disqualified before the lead was created"),
        (5, "lead_id", "lead_id 'L3' appears more than once"),
    }
    tables["leads"] = tables["leads"].iloc[:1]
    typed = validate(Dataset(tables=tables))
    assert typed["leads"]["created_date"].dtype == DATE_DTYPE and typed["leads"]["channel"].iloc[0] == "web"
