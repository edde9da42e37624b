"""The Maven Analytics CRM export through its bundled mapping (spm_models.data.sources.maven).

Expected counts come from the shipped files (see data/examples/maven_crm/SOURCE.md):
8,800 pipeline rows = 4,238 Won + 2,473 Lost + 1,589 Engaging + 500 Prospecting; the 500
Prospecting rows have no engage date and are left out, so 8,300 opportunities remain.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from spm_models.data.sources.mapping import load_mapping
from spm_models.data.sources.maven import MAVEN_MAPPING, load_maven
from spm_models.exceptions import DataValidationError

MAVEN = Path(__file__).resolve().parents[2] / "data" / "examples" / "maven_crm"
AGENTS_WITHOUT_DEALS = {"Carl Lin", "Carol Thompson", "Elizabeth Anderson", "Mei-Mei Johns", "Natalya Ivanova"}


def raw_pipeline() -> list[dict[str, str]]:
    with open(MAVEN / "sales_pipeline.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def maven():
    return load_maven(MAVEN)


def test_the_bundled_mapping_is_valid_and_shipped_with_the_package():
    assert MAVEN_MAPPING.is_file()
    assert MAVEN_MAPPING.parent.name == "mappings"
    m = load_mapping(MAVEN_MAPPING)
    assert set(m.tables) == {"territories", "agents", "accounts", "products", "opportunities"}


def test_row_counts(maven):
    assert len(maven["opportunities"]) == 8800 - 500
    assert len(maven["agents"]) == 35
    assert len(maven["territories"]) == 3
    assert len(maven["accounts"]) == 85
    assert len(maven["products"]) == 7
    for absent in ("stage_history", "activities", "targets", "indicators"):
        assert absent not in maven


def test_offices_are_territories_and_managers_are_kept(maven):
    assert sorted(maven["territories"]["territory_id"]) == ["Central", "East", "West"]
    agents = maven["agents"]
    assert agents["manager"].nunique() == 6
    assert agents["manager"].notna().all()
    assert agents.groupby("territory_id").size().to_dict() == {"Central": 11, "East": 12, "West": 12}
    assert agents.set_index("agent_id").loc["Anna Snelling", "manager"] == "Dustin Brinkmann"


def test_agents_without_opportunities_are_kept(maven):
    without = set(maven["agents"]["agent_id"]) - set(maven["opportunities"]["agent_id"])
    assert without == AGENTS_WITHOUT_DEALS


def test_known_dirt_is_cleaned(maven):
    assert sum(r["product"] == "GTXPro" for r in raw_pipeline()) == 1480  # the dirt is there
    opps, products = maven["opportunities"], maven["products"]
    assert not (opps["product_id"] == "GTXPro").any()
    assert set(opps["product_id"]) <= set(products["product_id"])
    sectors = maven["accounts"]["sector"]
    assert not (sectors == "technolgy").any()
    assert (sectors == "technology").sum() == 12


def test_prospecting_rows_without_engage_date_are_left_out_with_a_warning(maven):
    raw = raw_pipeline()
    undated = {r["opportunity_id"] for r in raw if not r["engage_date"]}
    assert len(undated) == 500 and {r["deal_stage"] for r in raw if not r["engage_date"]} == {"Prospecting"}
    assert not undated & set(maven["opportunities"]["opportunity_id"])
    (warning,) = [w for w in maven.warnings if w.column == "engage_date"]
    assert warning.file == "sales_pipeline.csv"
    assert warning.rule.startswith("500 rows left out of opportunities")
    assert "8302" in warning.rule  # the first Prospecting row of the file


def test_outcomes_stages_and_close_dates(maven):
    opps = maven["opportunities"]
    assert opps["outcome"].value_counts().to_dict() == {"won": 4238, "lost": 2473, "open": 1589}
    open_ = opps[opps["outcome"] == "open"]
    assert open_["close_date"].isna().all()
    assert (open_["stage"] == "qualification").all()  # Engaging
    closed = opps[opps["outcome"] != "open"]
    assert closed["close_date"].notna().all()
    assert closed["stage"].isna().all()  # the export does not say which stage a deal closed from


def test_amounts(maven):
    raw = {r["opportunity_id"]: r for r in raw_pipeline()}
    opps = maven["opportunities"].set_index("opportunity_id")
    won = opps[opps["outcome"] == "won"]
    assert all(won["amount"] == [raw[i]["close_value"] for i in won.index])
    lost = opps[opps["outcome"] == "lost"]
    assert (lost["amount"] == "0").all()
    # Open deals take the product's list price: HAXMC4IX is an Engaging MG Advanced deal (3393),
    # UP409DSB too, EG7OFLFR an Engaging GTX Basic deal (550).
    assert opps.loc["HAXMC4IX", "amount"] == "3393"
    assert opps.loc["EG7OFLFR", "amount"] == "550"
    assert opps.loc[opps["outcome"] == "open", "amount"].notna().all()
    assert any(w.column == "close_value" and "1,589 open deals" in w.rule for w in maven.warnings)


def test_open_deals_may_lack_an_account(maven):
    opps = maven["opportunities"].set_index("opportunity_id")
    assert opps.loc["HAXMC4IX", "account_id"] is None
    assert opps.loc["UP409DSB", "account_id"] == "Ganjaflex"


def test_errors_point_at_the_users_columns(maven):
    ref = maven.ref("opportunities")
    assert ref.file == "sales_pipeline.csv"
    assert ref.column_of("created_date") == "engage_date"
    assert ref.column_of("outcome") == "deal_stage"
    assert ref.rows[0] == 2


def test_validate_accepts_the_maven_export(maven):
    from spm_models.data.validation import validate

    typed = validate(maven)
    assert len(typed["opportunities"]) == 8300
    opps = typed["opportunities"]
    assert opps["created_date"].min().strftime("%Y-%m-%d") == "2016-10-20"
    assert opps["created_date"].max().strftime("%Y-%m-%d") == "2017-12-27"


def test_default_folder_is_the_shipped_copy():
    assert len(load_maven()["opportunities"]) == 8300


def test_a_folder_missing_the_teams_file_is_reported_once(tmp_path):
    for name in ("sales_pipeline.csv", "accounts.csv", "products.csv"):
        shutil.copy(MAVEN / name, tmp_path / name)
    with pytest.raises(DataValidationError) as err:
        load_maven(tmp_path)
    # Territories and agents both come from it; the missing file is one problem, not two.
    assert [p.file for p in err.value.problems] == ["sales_teams.csv"]
    assert "sales_teams.csv" in str(err.value)


def test_the_documented_mapping_is_the_bundled_one():
    import re
    import tomllib

    doc = (Path(__file__).resolve().parents[2] / "docs" / "your-own-data.md").read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"```toml\n(.*?)```", doc, flags=re.S) if "sales_teams.csv" in b]
    assert len(blocks) == 1
    assert tomllib.loads(blocks[0]) == tomllib.loads(MAVEN_MAPPING.read_text(encoding="utf-8"))
