"""The mapping rules real exports need: lookups, derived columns, per-column date formats, counting
rows, filters, per-row fixes, SQL in a sandbox, and warnings for rules that matched nothing.

Each test writes a small two-file funnel export (leads, won deals) by hand into a temporary
folder; every expected value is read off those few lines.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from spm_models.cli import main
from spm_models.data.sources.mapping import load_mapping, read_mapped_export
from spm_models.data.validation import validate
from spm_models.exceptions import ConfigError, DataValidationError

LEADS = """lead id,first contact,channel
L1,03-01-2024,web
L2,05-01-2024,event
L3,09-01-2024,web
L4,10-01-2024,referral
L5,16-01-2024,web
"""
WON = """lead id,rep,won at,segment
L2,r1,20-02-2024 10:15,retail
L4,,01-03-2024 16:40,health
"""
HEAD = """
bookings_measure = "deals"

[territories]
file = "won.csv"
distinct = true
defaults = { territory_id = "all", territory_name = "All reps" }

[agents]
file = "won.csv"
distinct = true
columns = { agent_id = "rep", agent_name = "rep" }
defaults = { agent_id = "unassigned", agent_name = "unassigned", territory_id = "all" }
not_people = ["unassigned"]
"""
OPPS = """
[opportunities]
file = "leads.csv"
date_formats = { created_date = "%d-%m-%Y", close_date = "%d-%m-%Y %H:%M" }
columns = { opportunity_id = "lead id", agent_id = "rep", created_date = "first contact", close_date = "won at" }
defaults = { agent_id = "unassigned" }
derive = { outcome = "CASE WHEN \\"won at\\" IS NULL THEN 'lost' ELSE 'won' END" }

[[opportunities.lookup]]
file = "won.csv"
on = { "lead id" = "lead id" }
take = ["rep", "won at"]
"""
LEADS_SECTION = """
[leads]
file = "leads.csv"
date_format = "%d-%m-%Y"
columns = { lead_id = "lead id", created_date = "first contact", channel = "channel", opportunity_id = "won lead" }

[[leads.lookup]]
file = "won.csv"
on = { "lead id" = "lead id" }
take = { "won lead" = "lead id" }
"""


def export(tmp_path: Path, mapping: str, *, leads: str = LEADS, won: str = WON) -> Path:
    folder = tmp_path / "export"
    folder.mkdir(exist_ok=True)
    (folder / "leads.csv").write_text(leads, encoding="utf-8")
    (folder / "won.csv").write_text(won, encoding="utf-8")
    path = folder / "mapping.toml"
    path.write_text(mapping, encoding="utf-8")
    return path


@pytest.fixture
def funnel(tmp_path):
    return export(tmp_path, HEAD + OPPS + LEADS_SECTION)


def test_lookup_and_derived_outcome_join_the_two_files(funnel):
    d = read_mapped_export(funnel)
    opp = d["opportunities"].set_index("opportunity_id")
    assert opp["outcome"].to_dict() == {"L1": "lost", "L2": "won", "L3": "lost", "L4": "won", "L5": "lost"}
    assert opp["close_date"].to_dict() == {
        "L1": None,
        "L2": "20-02-2024 10:15",
        "L3": None,
        "L4": "01-03-2024 16:40",
        "L5": None,
    }
    # L4's deal has no rep: the default owner; leads that never converted too
    assert opp["agent_id"].to_dict() == {"L1": "unassigned", "L2": "r1", "L3": "unassigned", "L4": "unassigned"} | {
        "L5": "unassigned"
    }
    ref = d.ref("opportunities")
    assert ref.rows.tolist() == [2, 3, 4, 5, 6] and ref.column_of("agent_id") == "rep (from won.csv)"
    assert ref.date_format_of("close_date") == "%d-%m-%Y %H:%M" and ref.date_format_of("created_date") == "%d-%m-%Y"
    leads = d["leads"].set_index("lead_id")
    assert leads["opportunity_id"].dropna().to_dict() == {"L2": "L2", "L4": "L4"}


def test_per_column_date_formats_with_and_without_time_validate(funnel):
    typed = validate(read_mapped_export(funnel))
    opp = typed["opportunities"].set_index("opportunity_id")
    assert opp.loc["L2", "close_date"] == pd.Timestamp("2024-02-20")  # the time is dropped
    assert opp.loc["L4", "created_date"] == pd.Timestamp("2024-01-10")
    assert pd.isna(opp.loc["L1", "close_date"])  # lost without a date: allowed
    assert typed.bookings_measure == "deals" and (opp["amount"] == 1.0).all()
    agents = typed["agents"].set_index("agent_id")
    assert agents["is_person"].to_dict() == {"r1": True, "unassigned": False}


def test_a_close_date_taken_from_one_of_two_columns(tmp_path):
    won = "lead id,rep,won at,lost at,segment\nL2,r1,20-02-2024 10:15,,x\nL4,,,02-03-2024 09:00,y\n"
    mapping = (
        (HEAD + OPPS)
        .replace('take = ["rep", "won at"]', 'take = ["rep", "won at", "lost at"]')
        .replace(', close_date = "won at" }', " }")
        .replace(
            "derive = { outcome",
            'derive = { close_date = "coalesce(\\"won at\\", \\"lost at\\")", outcome',
        )
    )
    typed = validate(read_mapped_export(export(tmp_path, mapping, won=won)))
    opp = typed["opportunities"].set_index("opportunity_id")
    assert opp.loc["L4", "close_date"] == pd.Timestamp("2024-03-02") and opp.loc["L4", "outcome"] == "lost"
    assert opp.loc["L2", "close_date"] == pd.Timestamp("2024-02-20")


def test_lookup_key_that_repeats_in_the_other_file_is_a_problem(tmp_path):
    won = WON + "L2,r2,21-02-2024 11:00,retail\n"
    with pytest.raises(DataValidationError) as err:
        read_mapped_export(export(tmp_path, HEAD + OPPS, won=won))
    (problem,) = [p for p in err.value.problems if "more than once" in p.rule]
    assert (problem.file, problem.row, problem.column) == ("won.csv", 4, "lead id")
    assert "opportunities.lookup[1]" in problem.rule


def test_count_rows_turns_leads_into_weekly_indicators(tmp_path):
    mapping = (
        HEAD
        + OPPS
        + (
            '\n[indicators]\nfile = "leads.csv"\ndate_format = "%d-%m-%Y"\ncount_rows = true\ncount_period = "week"\n'
            'columns = { date = "first contact" }\nderive = { name = "\'leads_\' || channel" }\n'
        )
    )
    typed = validate(read_mapped_export(export(tmp_path, mapping)))
    ind = typed["indicators"].sort_values(["date", "name"]).reset_index(drop=True)
    got = [(d.strftime("%Y-%m-%d"), n, v) for d, n, v in zip(ind["date"], ind["name"], ind["value"])]
    # 3 Jan (Wed) and 5 Jan (Fri) are in the week of Monday 1 Jan; 9 and 10 Jan in that of 8 Jan
    assert got == [
        ("2024-01-01", "leads_event", 1.0),
        ("2024-01-01", "leads_web", 1.0),
        ("2024-01-08", "leads_referral", 1.0),
        ("2024-01-08", "leads_web", 1.0),
        ("2024-01-15", "leads_web", 1.0),
    ]


def test_where_filters_rows_and_says_how_many(tmp_path):
    mapping = (HEAD + OPPS).replace(
        "[[opportunities.lookup]]", "where = \"channel <> 'event'\"\n\n[[opportunities.lookup]]"
    )
    d = read_mapped_export(export(tmp_path, mapping))
    assert d["opportunities"]["opportunity_id"].tolist() == ["L1", "L3", "L4", "L5"]
    (w,) = [w for w in d.warnings if "where" in w.rule]
    assert "1 row left out of opportunities" in w.rule and w.rule.endswith("row 3")


def test_fixes_set_cells_or_drop_rows_and_a_fix_matching_nothing_is_a_warning(tmp_path):
    fixes = (
        '\n[[opportunities.fix]]\nrow = 6\nset = { "first contact" = "17-01-2024" }\n'
        '\n[[opportunities.fix]]\nmatch = { "lead id" = "L3" }\ndrop = true\n'
        '\n[[opportunities.fix]]\nmatch = { "lead id" = "L9" }\ndrop = true\n'
    )
    d = read_mapped_export(export(tmp_path, HEAD + OPPS + fixes))
    opp = d["opportunities"].set_index("opportunity_id")
    assert "L3" not in opp.index and opp.loc["L5", "created_date"] == "17-01-2024"
    (w,) = [w for w in d.warnings if "fix" in w.rule]
    assert "opportunities.fix[3] matched nothing" in w.rule


def test_replace_that_matched_nothing_is_a_warning(tmp_path):
    mapping = (HEAD + OPPS).replace(
        "[[opportunities.lookup]]", 'replace = { rep = { "R1" = "r1" } }\n\n[[opportunities.lookup]]'
    )
    d = read_mapped_export(export(tmp_path, mapping))
    (w,) = [w for w in d.warnings if "replace" in w.rule]
    assert w.column == "rep" and "no cell is 'R1'" in w.rule


def test_a_table_as_one_sql_query_keeps_file_rows_for_problems(tmp_path):
    sql_section = """
[leads]
files = { l = "leads.csv", w = "won.csv" }
date_format = "%d-%m-%Y"
sql = '''
SELECT l."lead id" AS lead_id, l."first contact" AS created_date, l.channel, w."lead id" AS opportunity_id, l._row
FROM l LEFT JOIN w ON w."lead id" = l."lead id"
'''
"""
    leads = LEADS.replace("09-01-2024", "2024-01-09")
    path = export(tmp_path, HEAD + OPPS + sql_section, leads=leads)
    d = read_mapped_export(path)
    assert d["leads"].set_index("lead_id")["opportunity_id"].dropna().to_dict() == {"L2": "L2", "L4": "L4"}
    with pytest.raises(DataValidationError) as err:
        validate(d)
    bad = [(p.file, p.row, p.column, p.value) for p in err.value.problems if "leads.sql" in p.column]
    assert bad == [("leads.csv", 4, "created_date (from leads.sql)", "2024-01-09")]  # the file's own row


def test_a_failing_expression_names_the_file_row_and_column_of_its_value(tmp_path):
    mapping = (HEAD + OPPS).replace(
        "derive = { outcome", 'derive = { amount = "CAST(\\"lead id\\" AS INTEGER)", outcome'
    )
    with pytest.raises(DataValidationError) as err:
        read_mapped_export(export(tmp_path, mapping))
    (problem,) = err.value.problems
    assert (problem.file, problem.row, problem.column, problem.value) == ("leads.csv", 2, "lead id", "L1")
    assert "opportunities.derive.amount" in problem.rule


def test_an_unknown_column_in_an_expression_lists_the_real_ones(tmp_path):
    mapping = (HEAD + OPPS).replace('\\"won at\\" IS NULL', '\\"won_at\\" IS NULL')
    with pytest.raises(DataValidationError) as err:
        read_mapped_export(export(tmp_path, mapping))
    (problem,) = err.value.problems
    assert problem.column == "won_at" and '"won at"' not in problem.column and "first contact" in problem.rule


# --------------------------------------------------------------------------- the sandbox

SECRET = "TOP-SECRET-ROW-7f3a"


@pytest.fixture
def secret(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    path = outside / "secret.csv"
    path.write_text(f"lead id,first contact,channel\n{SECRET},01-01-2024,web\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "how",
    ["relative", "absolute", "symlink", "sql_read_csv", "sql_read_text", "sql_copy"],
)
def test_nothing_outside_the_export_folder_is_read(tmp_path, secret, capsys, how):
    mapping = HEAD + OPPS
    folder = tmp_path / "export"
    if how == "relative":
        mapping += '\n[leads]\nfile = "../outside/secret.csv"\ncolumns = { lead_id = "lead id", created_date = "x" }\n'
    elif how == "absolute":
        mapping += f'\n[leads]\nfile = "{secret}"\ncolumns = {{ lead_id = "lead id", created_date = "x" }}\n'
    elif how == "symlink":
        folder.mkdir()
        os.symlink(secret, folder / "innocent.csv")
        mapping += '\n[leads]\nfile = "innocent.csv"\ncolumns = { lead_id = "lead id", created_date = "x" }\n'
    else:
        query = {
            "sql_read_csv": f"SELECT * FROM read_csv('{secret}')",
            "sql_read_text": f"SELECT content AS lead_id FROM read_text('{secret}')",
            "sql_copy": f"COPY (SELECT 1) TO '{tmp_path / 'written.csv'}'",
        }[how]
        mapping += f'\n[leads]\nfiles = {{ l = "leads.csv" }}\nsql = "{query}"\n'
    path = export(tmp_path, mapping)
    with pytest.raises(DataValidationError) as err:
        read_mapped_export(path)
    assert SECRET not in str(err.value)
    code = main(["ingest", str(path), "--db", str(tmp_path / "w.duckdb"), "--project-dir", str(tmp_path)])
    out = capsys.readouterr()
    assert code == 2
    assert SECRET not in out.out + out.err
    assert not (tmp_path / "w.duckdb").exists() and not (tmp_path / "written.csv").exists()
    if how in ("relative", "absolute", "symlink"):
        assert "outside the export folder" in out.err
    else:
        assert "disabled by configuration" in out.err or "give exactly one SELECT" in out.err


def test_sql_cannot_switch_the_sandbox_off(tmp_path, secret):
    mapping = (
        HEAD
        + OPPS
        + (
            '\n[leads]\nfiles = { l = "leads.csv" }\n'
            f"sql = \"SELECT 1 AS lead_id; SET enable_external_access = true; SELECT * FROM read_csv('{secret}')\"\n"
        )
    )
    with pytest.raises(DataValidationError, match="exactly one SELECT"):
        read_mapped_export(export(tmp_path, mapping))
    spliced = (HEAD + OPPS).replace(
        "derive = { outcome = ",
        'derive = { amount = "1) FROM this; SET enable_external_access = true; SELECT (1", outcome = ',
    )
    with pytest.raises(DataValidationError, match="one SQL expression, not statements"):
        read_mapped_export(export(tmp_path, spliced))


# --------------------------------------------------------------------------- mapping-file errors


@pytest.mark.parametrize(
    ("extra", "key", "hint"),
    [
        ('\n[[opportunities.fix]]\nrow = 1\nset = { rep = "x" }\n', "opportunities.fix[1].row", "2 or more"),
        ("\n[[opportunities.fix]]\nrow = 3\n", "opportunities.fix[1]", "set (the cells to change) or drop"),
        ('\n[[opportunities.fix]]\nset = { rep = "x" }\n', "opportunities.fix[1]", "exactly one of row"),
        ('\n[leads]\nfile = "leads.csv"\ncount_rows = true\n', "leads.count_rows", "only rows of"),
        ('\n[leads]\nfile = "leads.csv"\nsql = "SELECT 1"\n', "leads.file", "gets every column from its query"),
        ('\n[leads]\nsql = "SELECT 1"\n', "leads.files", "name the files the query reads"),
    ],
)
def test_rule_mistakes_are_named_by_key(tmp_path, extra, key, hint):
    path = export(tmp_path, HEAD + OPPS + extra)
    with pytest.raises(ConfigError) as err:
        load_mapping(path)
    assert f"key '{key}" in str(err.value) and hint in str(err.value)


def test_a_lookup_needs_file_on_and_take(tmp_path):
    path = export(tmp_path, (HEAD + OPPS).replace('take = ["rep", "won at"]\n', ""))
    with pytest.raises(ConfigError, match=r"key 'opportunities\.lookup\[1\]\.take': missing required key"):
        load_mapping(path)
