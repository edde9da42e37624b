"""Values that parse but cannot be right (spm_models.data.plausibility), one rule at a time.

Each test starts from ``good_small`` (which passes every rule), changes one cell at a known
spreadsheet row, and checks the problem (file, row, column, rule) or the warning, and what is
stored when a value is accepted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spm_models.cli import main
from spm_models.data.dataset import Dataset
from spm_models.data.plausibility import MAX_AMOUNT, MAX_COUNT
from spm_models.data.sources.canonical import read_canonical_folder
from spm_models.data.validation import validate
from spm_models.data.warehouse import Warehouse
from spm_models.exceptions import DataValidationError, Problem

GOOD = Path(__file__).parent / "good_small"
TODAY = pd.Timestamp("2025-01-15")


def _good() -> Dataset:
    return read_canonical_folder(GOOD)


def _with(ds: Dataset, table: str, row: int, column: str, value) -> Dataset:
    frame = ds.tables[table].copy()
    frame.loc[row - 2, column] = value
    return Dataset(tables={**ds.tables, table: frame}, refs=dict(ds.refs), source=ds.source)


def _append(ds: Dataset, table: str, **values) -> Dataset:
    frame = pd.concat([ds.tables[table], pd.DataFrame([values], dtype=object)], ignore_index=True)
    ref = ds.refs[table]
    rows = np.append(ref.rows, ref.rows[-1] + 1)
    refs = {**ds.refs, table: type(ref)(file=ref.file, rows=rows)}
    return Dataset(tables={**ds.tables, table: frame.astype(object).where(frame.notna(), None)}, refs=refs)


def _problems(ds: Dataset, **kw) -> list[Problem]:
    with pytest.raises(DataValidationError) as info:
        validate(ds, today=TODAY, **kw)
    return info.value.problems


def _only(problems: list[Problem]) -> Problem:
    assert len(problems) == 1, "\n".join(map(str, problems))
    return problems[0]


def _warnings(ds: Dataset, **kw) -> list[str]:
    return [str(w) for w in validate(ds, today=TODAY, **kw).warnings]


# --------------------------------------------------------------------------- dates


@pytest.mark.parametrize(
    ("table", "row", "column", "value"),
    [
        ("opportunities", 2, "close_date", "9999-12-31"),  # a won deal "closed" on the placeholder
        ("opportunities", 3, "created_date", "0001-01-10"),
        ("opportunities", 3, "created_date", "0000-01-10"),  # year zero parses as 1 BC
        ("activities", 2, "date", "1979-12-31"),  # one day before the window
        ("activities", 2, "date", "2101-01-01"),  # one day after it
        ("stage_history", 2, "entered_date", "2500-01-01"),
        ("targets", 2, "period_end", "9999-12-31"),  # an open-ended target would overlap every later one
        ("indicators", 2, "date", "1900-01-01"),
        ("agents", 2, "hire_date", "1850-05-05"),  # not a placeholder: a wrong date
    ],
)
def test_a_date_outside_the_window_is_refused_with_its_place(table, row, column, value):
    p = _only(_problems(_with(_good(), table, row, column, value)))
    assert (p.file, p.row, p.column, p.value) == (f"{table}.csv", row, column, value)
    assert "outside the plausible range 1980-01-01 to 2100-12-31" in p.rule and "spm.toml" in p.rule


def test_the_window_edges_are_inside():
    ds = _with(_good(), "activities", 2, "date", "1980-01-01")
    ds = _with(ds, "activities", 3, "date", "2100-12-31")
    typed = validate(ds, today=TODAY)
    assert typed["activities"]["date"].iloc[:2].tolist() == [pd.Timestamp("1980-01-01"), pd.Timestamp("2100-12-31")]


def test_the_window_is_a_setting(tmp_path, capsys):
    ds = _with(_good(), "activities", 2, "date", "1975-06-02")
    window = (pd.Timestamp("1970-01-01"), pd.Timestamp("2030-12-31"))
    assert validate(ds, date_window=window, today=TODAY)["activities"]["date"].iloc[0] == pd.Timestamp("1975-06-02")
    # spm.toml carries it into `spm ingest`
    (tmp_path / "spm.toml").write_text('earliest_date = "2024-01-01"\n')
    assert main(["ingest", str(GOOD), "--db", str(tmp_path / "w.duckdb"), "--project-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "agents.csv, row 2, column 'hire_date'" in err and "2024-01-01 to 2100-12-31" in err


def test_placeholders_mean_no_date_only_where_empty_means_the_same():
    ds = _with(_good(), "agents", 5, "leave_date", "9999-12-31")
    ds = _with(ds, "agents", 4, "hire_date", "1900-01-01")
    typed = validate(ds, today=TODAY)
    agents = typed["agents"].set_index("agent_id")
    assert pd.isna(agents.at["A4", "leave_date"]) and pd.isna(agents.at["A3", "hire_date"])
    warnings = _warnings(ds)
    assert any(
        "column 'leave_date': placeholder date 9999-12-31 read as no leave date" in w and "(row 5)" in w
        for w in warnings
    )
    assert any("column 'hire_date': placeholder date 1900-01-01 read as no hire date" in w for w in warnings)
    # the same placeholder where it would not mean "none" is an error
    p = _only(_problems(_with(_good(), "agents", 5, "hire_date", "9999-12-31")))
    assert (p.row, p.column) == (5, "hire_date") and "outside the plausible range" in p.rule


def test_a_review_of_placeholder_data_is_never_reached(tmp_path, capsys):
    """The defect: a won deal closed 9999-12-31 made `spm kpis` run out of memory. Now refused."""
    folder = tmp_path / "export"
    folder.mkdir()
    for f in GOOD.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    opp = (folder / "opportunities.csv").read_text().replace("won,2024-01-20,1000", "won,9999-12-31,1000")
    (folder / "opportunities.csv").write_text(opp)
    db = tmp_path / "w.duckdb"
    assert main(["ingest", str(folder), "--db", str(db)]) == 2
    assert not db.exists()
    assert "opportunities.csv, row 2, column 'close_date'" in capsys.readouterr().err


# --------------------------------------------------------------------------- numbers


def test_counts_up_to_two_to_the_53_are_stored_exactly_and_larger_ones_refused(tmp_path):
    ok = _with(_good(), "activities", 2, "count", str(MAX_COUNT))
    db = tmp_path / "w.duckdb"
    Warehouse(db).ingest(ok)
    stored = Warehouse(db).read("activities")
    assert int(stored["count"].max()) == 9_007_199_254_740_991
    for value in ("9007199254740992", "1e20", "9223372036854775807", "18446744073709551616"):
        p = _only(_problems(_with(_good(), "activities", 2, "count", value)))
        assert (p.row, p.column, p.value) == (2, "count", value) and "at most 9,007,199,254,740,991" in p.rule


@pytest.mark.parametrize(
    ("table", "row", "column", "value"),
    [
        ("opportunities", 2, "amount", "1.7e308"),
        ("opportunities", 2, "amount", "1000000000000000001000"),
        ("targets", 3, "quota", "2e18"),
        ("products", 2, "list_price", "1e19"),
        ("indicators", 2, "value", "-1.7e308"),
    ],
)
def test_amounts_that_would_overflow_a_sum_are_refused(table, row, column, value):
    p = _only(_problems(_with(_good(), table, row, column, value)))
    assert (p.file, p.row, p.column, p.value) == (f"{table}.csv", row, column, value)
    assert "too large" in p.rule and "1,000,000,000,000,000,000" in p.rule


def test_the_largest_amounts_are_accepted_and_sum_to_a_finite_number():
    ds = _with(_good(), "opportunities", 2, "amount", str(MAX_AMOUNT))
    ds = _with(ds, "opportunities", 5, "amount", "1e18")
    ds = _with(ds, "indicators", 2, "value", "-1e18")
    typed = validate(ds, today=TODAY)
    assert np.isfinite(typed["opportunities"]["amount"].sum()) and typed["indicators"]["value"].min() == -1e18


# --------------------------------------------------------------------------- text


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b", "\x7f", "\x85", "\u2028", "\u202e"])
def test_control_characters_in_names_and_ids_are_refused(char):
    p = _only(_problems(_with(_good(), "agents", 3, "agent_name", f"Ben{char}Okafor")))
    assert (p.row, p.column) == (3, "agent_name") and "control character" in p.rule
    p = _only(_problems(_with(_good(), "accounts", 2, "sector", f"re{char}tail")))
    assert (p.file, p.row, p.column) == ("accounts.csv", 2, "sector")


def test_tabs_are_text():
    typed = validate(_with(_good(), "agents", 3, "agent_name", "Ben\tOkafor"), today=TODAY)
    assert typed["agents"]["agent_name"].iloc[1] == "Ben\tOkafor"


@pytest.mark.parametrize("value", ["-2+3+cmd|' /C calc'!A0", "@1+", "+A1", "=1+1"])
def test_formula_like_cells_are_refused(value):
    p = _only(_problems(_with(_good(), "agents", 2, "agent_name", value)))
    assert (p.row, p.column) == (2, "agent_name") and "spreadsheet formula" in p.rule


# --------------------------------------------------------------------------- targets


def test_overlapping_targets_of_one_agent_are_refused_naming_both_rows():
    # targets.csv rows 2-5 are Q1 2024 for A1..A4; row 8 (appended) gives A1 Feb-Apr too
    ds = _append(
        _good(),
        "targets",
        agent_id="A1",
        territory_id=None,
        period_start="2024-02-01",
        period_end="2024-04-30",
        quota="7000",
    )
    p = _only(_problems(ds))
    assert (p.file, p.row, p.column) == ("targets.csv", 8, "agent_id")
    assert "2024-02-01 to 2024-04-30 overlaps the one for 2024-01-01 to 2024-03-31 at row 2" in p.rule
    assert "added together" in p.rule


def test_adjacent_targets_and_targets_of_different_owners_do_not_overlap():
    ds = _append(
        _good(),
        "targets",
        agent_id="A1",
        territory_id=None,
        period_start="2024-04-01",
        period_end="2024-06-30",
        quota="7000",
    )
    # a territory target over the same quarter as its agents' targets is a different owner
    typed = validate(ds, today=TODAY)
    assert len(typed["targets"]) == 7


def test_overlap_is_found_against_the_longest_earlier_period():
    """A year target and two later quarter targets: both quarters overlap the year (row 8)."""
    ds = _good()
    frame = ds.tables["targets"]
    ds = _append(
        ds, "targets", agent_id="A2", territory_id=None, period_start="2023-01-01", period_end="2023-12-31", quota="1"
    )
    ds = _append(
        ds, "targets", agent_id="A2", territory_id=None, period_start="2023-04-01", period_end="2023-06-30", quota="1"
    )
    ds = _append(
        ds, "targets", agent_id="A2", territory_id=None, period_start="2023-10-01", period_end="2023-12-31", quota="1"
    )
    assert len(frame) == 6
    problems = _problems(ds)
    assert [(p.row, "at row 8" in p.rule) for p in problems] == [(9, True), (10, True)]


# --------------------------------------------------------------------------- warnings


def test_silent_oddities_become_warnings_and_are_stored():
    ds = _good()
    # A4 left 2024-06-30: a deal created (and closed) after that, and an activity after it
    ds = _with(ds, "opportunities", 16, "agent_id", "A4")
    ds = _with(ds, "opportunities", 16, "created_date", "2024-07-10")
    ds = _with(ds, "opportunities", 16, "close_date", "2024-07-30")
    ds = _append(ds, "activities", agent_id="A4", date="2024-08-05", activity_type="call", count="3")
    # O02 was created 2024-01-10; a stage entered on 2024-01-01
    ds = _append(ds, "stage_history", opportunity_id="O02", stage="qualification", entered_date="2024-01-01")
    warnings = _warnings(ds)
    assert any(
        "opportunities.csv, column 'created_date': deal created after its agent's leave date" in w and "(row 16)" in w
        for w in warnings
    )
    assert any(
        "activities.csv, column 'date': activity logged after its agent's leave date" in w and "(row 11)" in w
        for w in warnings
    )
    assert any(
        "stage_history.csv, column 'entered_date': stage entered before its opportunity was created" in w
        and "(row 7)" in w
        for w in warnings
    )


def test_events_after_today_are_a_warning():
    ds = _with(_good(), "opportunities", 15, "close_date", "2025-04-25")
    warnings = _warnings(ds)
    assert any("column 'close_date': date after today (2025-01-15)" in w and "(row 15)" in w for w in warnings)
    assert not any("after today" in w for w in _warnings(_good()))


def test_good_small_passes_every_plausibility_rule_without_a_warning():
    assert _warnings(_good()) == []
