"""Generic CRM import through a TOML mapping file (spm_models.data.sources.mapping).

The fixture ``data/mapping/good`` is a small German export: semicolon-delimited Windows-1252
files with DD/MM/YYYY dates, German column and stage names, one UTF-8 comma file (targets),
a misspelled customer, a deal without a creation date, and an open deal without an amount.
Every expected value below was read off those files by hand.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spm_models.data.sources.mapping import Mapping, StageRule, load_mapping, read_mapped_export
from spm_models.exceptions import ConfigError, DataValidationError

GOOD = Path(__file__).parent / "mapping" / "good"
MAPPING = GOOD / "mapping.toml"
N = None


def frame(columns: str, *rows: tuple) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=columns.split(), dtype=object)


def variant(tmp_path: Path, old: str, new: str) -> Path:
    """The good mapping with one edit, written next to nothing (files are read from GOOD)."""
    text = MAPPING.read_text(encoding="utf-8")
    assert old in text, f"fixture changed: {old!r} not in mapping.toml"
    path = tmp_path / "variant.toml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def good():
    return read_mapped_export(MAPPING)


# --------------------------------------------------------------------------- the good export


def test_load_mapping_reads_settings_and_stage_rules():
    m = load_mapping(MAPPING)
    assert isinstance(m, Mapping)
    assert m.name == "Kleines CRM"
    assert set(m.tables) == {"territories", "agents", "accounts", "products", "opportunities", "targets"}
    opp = m.tables["opportunities"]
    assert (opp.delimiter, opp.encoding, opp.date_format) == (";", "cp1252", "%d/%m/%Y")
    assert m.tables["targets"].delimiter == ","  # per-table override
    assert m.tables["targets"].encoding == "utf-8"
    assert opp.stages["Gewonnen"] == StageRule(stage="negotiation", outcome="won")
    assert opp.stages["Verloren"] == StageRule(stage=None, outcome="lost")


def test_territories_are_the_distinct_regions_of_the_agent_file(good):
    expected = frame("territory_id territory_name", ("Nord", "Nord"), ("Süd", "Süd"))
    pd.testing.assert_frame_equal(good["territories"], expected)
    assert good.ref("territories").rows.tolist() == [2, 3]  # first row of each region


def test_agents_keep_manager_and_default_fills_the_empty_one(good):
    expected = frame(
        "agent_id agent_name territory_id manager hire_date leave_date",
        ("AB", "Anna Bäcker", "Nord", "Jörg Lang", "01/02/2019", N),
        ("CD", "Carl Dürr", "Süd", "Vertriebsleitung", "15/03/2020", N),
        ("EF", "Eva Fuß", "Nord", "Jörg Lang", N, N),
    )
    pd.testing.assert_frame_equal(good["agents"], expected)


def test_accounts_derived_from_deals_skip_empty_and_merge_the_cleaned_spelling(good):
    # Kunde: Müller AG (row 2), Mueller AG -> Müller AG (row 3, duplicate), Schulz KG (4),
    # empty (5, skipped), Schulz KG (6, duplicate).
    expected = frame("account_id account_name sector", ("Müller AG", "Müller AG", N), ("Schulz KG", "Schulz KG", N))
    pd.testing.assert_frame_equal(good["accounts"], expected)
    assert good.ref("accounts").rows.tolist() == [2, 4]


def test_opportunities_translate_stages_drop_undated_rows_and_price_open_deals(good):
    expected = frame(
        "opportunity_id agent_id account_id product_id created_date stage outcome close_date amount",
        ("101", "AB", "Müller AG", "P1", "03/01/2021", "negotiation", "won", "28/02/2021", "1100"),
        ("102", "AB", "Müller AG", "P2", "10/01/2021", N, "lost", "15/03/2021", "0"),
        ("103", "CD", "Schulz KG", "P2", "05/02/2021", "proposal", "open", N, "450"),  # P2 list price
        ("105", "CD", "Schulz KG", "P1", "12/02/2021", "needs_assessment", "open", N, "900"),  # own amount kept
    )
    pd.testing.assert_frame_equal(good["opportunities"], expected)
    ref = good.ref("opportunities")
    assert ref.file == "chancen.csv"
    assert ref.rows.tolist() == [2, 3, 4, 6]  # row 5 (deal 104) has no creation date
    assert ref.date_format == "%d/%m/%Y"
    assert ref.column_of("created_date") == "Angelegt"
    assert ref.column_of("outcome") == "Phase"
    assert ref.column_of("agent_id") == "Verkäufer"


def test_targets_read_from_a_utf8_comma_file(good):
    expected = frame(
        "agent_id territory_id period_start period_end quota",
        ("AB", N, "01/01/2021", "31/03/2021", "5000"),
        ("CD", N, "01/01/2021", "31/03/2021", "4000"),
    )
    pd.testing.assert_frame_equal(good["targets"], expected)


def test_warnings_say_which_rows_were_left_out_and_which_amounts_filled(good):
    assert len(good.warnings) == 2
    dropped, priced = good.warnings
    assert (dropped.file, dropped.column) == ("chancen.csv", "Angelegt")
    assert "1 row left out" in dropped.rule and dropped.rule.endswith("; row 5")
    assert (priced.file, priced.column) == ("chancen.csv", "Betrag")
    assert "1 open deal " in priced.rule and "list price" in priced.rule


def test_files_are_read_from_the_given_folder(tmp_path):
    shutil.copytree(GOOD, tmp_path / "export")
    (tmp_path / "export" / "mapping.toml").unlink()
    d = read_mapped_export(MAPPING, folder=tmp_path / "export")
    assert len(d["opportunities"]) == 4
    assert str(tmp_path / "export") in d.source


def test_the_good_export_passes_validation_with_its_date_format(good):
    from spm_models.data.validation import validate

    typed = validate(good)
    opp = typed["opportunities"].set_index("opportunity_id")
    # 03/01/2021 is 3 January, not 1 March: the day comes first.
    assert opp.loc["101", "created_date"] == pd.Timestamp("2021-01-03")
    assert opp.loc["101", "close_date"] == pd.Timestamp("2021-02-28")
    assert opp.loc["103", "amount"] == 450.0
    assert typed["agents"].set_index("agent_id").loc["CD", "hire_date"] == pd.Timestamp("2020-03-15")


# --------------------------------------------------------------------------- mapping-file errors


@pytest.mark.parametrize(
    ("old", "new", "key", "hint"),
    [
        ('delimiter = ";"', 'delimter = ";"', "key 'delimter'", "unknown key"),
        ("[products]\nfile", "[products]\nfiel", "key 'products.fiel'", "unknown key"),
        ('file = "artikel.csv"\n', "", "key 'products.file'", "missing required key"),
        ("agent_name = ", "agent_nam = ", "key 'agents.columns.agent_nam'", "not a column of the agents table"),
        ('created_date = "Angelegt", ', "", "key 'opportunities.columns.created_date'", "needs created_date"),
        (
            'Angebot = { stage = "proposal"',
            'Angebot = { stage = "closing"',
            "key 'opportunities.stages.Angebot.stage'",
            "'closing' is not a pipeline stage",
        ),
        (
            'outcome = "lost"',
            'outcome = "verloren"',
            "key 'opportunities.stages.Verloren.outcome'",
            "not a deal outcome",
        ),
        ('outcome = "lost" }', "}", "key 'opportunities.stages.Verloren.outcome'", "missing"),
        (
            'replace = { Kunde = { "Mueller',
            'replace = { Customer = { "Mueller',
            "key 'accounts.replace.Customer'",
            "not a column this section maps",
        ),
        ('encoding = "cp1252"', 'encoding = "cp9999"', "key 'encoding'", "unknown text encoding"),
        ('delimiter = ";"', 'delimiter = ";;"', "key 'delimiter'", "one character"),
        ('date_format = "%d/%m/%Y"', 'date_format = "DD/MM/YYYY"', "key 'date_format'", "strptime"),
        ("distinct = true", 'distinct = "yes"', "key 'territories.distinct'", "true or false"),
        ("[territories]", "[territory]", "key 'territory'", "unknown key"),
    ],
)
def test_mapping_errors_name_the_file_and_the_key(tmp_path, old, new, key, hint):
    path = variant(tmp_path, old, new)
    with pytest.raises(ConfigError) as err:
        load_mapping(path)
    msg = str(err.value)
    assert str(path) in msg
    assert key in msg
    assert hint in msg


def test_stages_are_only_allowed_on_opportunities(tmp_path):
    path = variant(tmp_path, "[targets]\n", '[targets]\nopen_amount = "list_price"\n')
    with pytest.raises(ConfigError, match=r"targets\.open_amount.*only the \[opportunities\]"):
        load_mapping(path)


def test_list_price_rule_needs_products_with_a_list_price(tmp_path):
    path = variant(tmp_path, ', list_price = "Listenpreis"', "")
    with pytest.raises(ConfigError, match=r"opportunities\.open_amount.*list_price"):
        load_mapping(path)


def test_every_mapping_problem_is_reported_at_once(tmp_path):
    text = MAPPING.read_text(encoding="utf-8")
    text = text.replace('delimiter = ";"', 'delimter = ";"').replace('stage = "proposal"', 'stage = "closing"')
    path = tmp_path / "two.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_mapping(path)
    assert "2 problems" in str(err.value)
    assert "'delimter'" in str(err.value) and "'closing'" in str(err.value)


def test_missing_or_broken_mapping_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_mapping(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[agents\nfile = 1", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.toml is not valid TOML"):
        load_mapping(bad)


# --------------------------------------------------------------------------- export errors


def test_missing_source_file_names_the_file_and_mapping_key(tmp_path):
    path = variant(tmp_path, 'file = "artikel.csv"', 'file = "produkte.csv"')
    with pytest.raises(DataValidationError) as err:
        read_mapped_export(path, folder=GOOD)
    (problem,) = err.value.problems
    assert problem.file == "produkte.csv"
    assert "file not found" in problem.rule and "products.file" in problem.rule


def test_missing_source_column_names_the_file_and_column(tmp_path):
    path = variant(tmp_path, 'amount = "Betrag"', 'amount = "Summe"')
    with pytest.raises(DataValidationError) as err:
        read_mapped_export(path, folder=GOOD)
    (problem,) = err.value.problems
    assert (problem.file, problem.row, problem.column) == ("chancen.csv", 1, "Summe")
    assert "opportunities.amount" in problem.rule and "Betrag" in problem.rule  # lists the real header


def test_problems_across_files_are_raised_once(tmp_path):
    text = MAPPING.read_text(encoding="utf-8")
    text = text.replace('file = "artikel.csv"', 'file = "produkte.csv"').replace('"Soll"', '"Quote"')
    path = tmp_path / "two.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataValidationError) as err:
        read_mapped_export(path, folder=GOOD)
    assert [(p.file, p.column) for p in err.value.problems] == [("produkte.csv", None), ("ziele.csv", "Quote")]


def test_stage_name_missing_from_the_mapping_is_reported_with_row_and_column(tmp_path):
    export = tmp_path / "export"
    shutil.copytree(GOOD, export)
    deals = export / "chancen.csv"
    text = deals.read_text(encoding="cp1252").replace(";Angebot;", ";Offerte;")
    deals.write_text(text, encoding="cp1252", newline="")
    with pytest.raises(DataValidationError) as err:
        read_mapped_export(export / "mapping.toml")
    (problem,) = err.value.problems
    assert (problem.file, problem.row, problem.column, problem.value) == ("chancen.csv", 4, "Phase", "Offerte")
    assert "[opportunities.stages]" in problem.rule and "'Gewonnen'" in problem.rule


def test_wrong_encoding_is_reported_not_garbled(tmp_path):
    path = variant(tmp_path, 'encoding = "cp1252"', 'encoding = "utf-8"')  # cp1252 files read as UTF-8
    with pytest.raises(DataValidationError) as err:
        read_mapped_export(path, folder=GOOD)
    files = sorted({p.file for p in err.value.problems})
    assert files == ["chancen.csv", "verkaeufer.csv"]  # artikel.csv is plain ASCII
    assert all("not valid utf-8" in p.rule for p in err.value.problems)


def test_rows_are_numbered_as_in_the_spreadsheet(good):
    rows = good.ref("opportunities").rows
    assert rows.dtype.kind == "i"
    assert np.all(np.diff(rows) > 0)


def test_a_mapping_may_declare_the_fiscal_year(tmp_path):
    export = tmp_path / "export"
    shutil.copytree(GOOD, export)
    path = export / "mapping.toml"
    text = path.read_text(encoding="utf-8")
    path.write_text('fiscal_year_start = "April"\n' + text, encoding="utf-8")
    assert load_mapping(path).calendar.fiscal_year_start == 4
    assert read_mapped_export(path).calendar.quarter_label("2025-05-01") == "FY2026-Q1"
    assert load_mapping(MAPPING).calendar is None  # not declared: the project's setting applies
    path.write_text("fiscal_year_start = 13\n" + text, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"key 'fiscal_year_start': fiscal_year_start must be the month"):
        load_mapping(path)
