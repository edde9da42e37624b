"""The KPI engine on the Maven CRM export, against numbers computed here from the raw CSVs.

The expected values come straight from ``sales_pipeline.csv`` and ``sales_teams.csv`` with
plain pandas (no project code): for June 2017, deals are counted by ``close_date``;
bookings = sum of ``close_value`` of Won deals, win rate = Won / (Won + Lost), average deal
size = bookings / Won, median cycle = median of ``close_date - engage_date`` in days over
Won deals. The engine's values come from ``load_maven()`` -> ``validate()`` ->
``compute_kpis()``, with agent and office ids looked up by name in the agents and
territories tables (the adapter decides what the ids are).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from spm_models.data.sources.maven import load_maven
from spm_models.data.validation import validate
from spm_models.kpi import compute_kpis

MAVEN = Path(__file__).resolve().parents[2] / "data" / "examples" / "maven_crm"
MONTH = pd.Timestamp("2017-06-01")
# The busiest agents of June 2017: each closed at least 20 deals that month.
AGENTS = ["Darcel Schlecht", "Anna Snelling", "Vicki Laflamme"]
OFFICE = "Central"
KPIS = ["bookings", "win_rate", "average_deal_size", "cycle_days_median"]


def expected_from_raw_csv() -> dict[tuple[str, str], dict[str, float]]:
    """(level, agent name / office / 'company') -> KPI -> value, from the raw export."""
    pipeline = pd.read_csv(MAVEN / "sales_pipeline.csv", dtype=str, keep_default_na=False)
    teams = pd.read_csv(MAVEN / "sales_teams.csv", dtype=str, keep_default_na=False)
    pipeline = pipeline.merge(teams, on="sales_agent", how="left")
    june = pipeline[pipeline["close_date"].str.startswith("2017-06")].copy()
    june["value"] = pd.to_numeric(june["close_value"])
    june["cycle"] = (pd.to_datetime(june["close_date"]) - pd.to_datetime(june["engage_date"])).dt.days

    def kpis(deals: pd.DataFrame) -> dict[str, float]:
        won = deals[deals["deal_stage"] == "Won"]
        lost = deals[deals["deal_stage"] == "Lost"]
        bookings = won["value"].sum()
        return {
            "closed": len(won) + len(lost),
            "bookings": bookings,
            "win_rate": len(won) / (len(won) + len(lost)),
            "average_deal_size": bookings / len(won),
            "cycle_days_median": won["cycle"].median(),
        }

    out = {("agent", name): kpis(june[june["sales_agent"] == name]) for name in AGENTS}
    out[("territory", OFFICE)] = kpis(june[june["regional_office"] == OFFICE])
    out[("company", "company")] = kpis(june)
    return out


@pytest.fixture(scope="module")
def engine_values():
    ds = validate(load_maven(MAVEN))
    frame = compute_kpis(ds, grain="month", kpis=KPIS)
    agent_id = dict(zip(ds["agents"]["agent_name"], ds["agents"]["agent_id"]))
    if "territories" in ds:
        territory_id = dict(zip(ds["territories"]["territory_name"], ds["territories"]["territory_id"]))
    else:
        territory_id = {OFFICE: OFFICE}
    ids = {("agent", n): agent_id[n] for n in AGENTS}
    ids[("territory", OFFICE)] = territory_id[OFFICE]
    ids[("company", "company")] = "company"
    june = frame[frame["period"] == MONTH]
    return {
        key: {
            k: float(june[(june.level == key[0]) & (june.entity_id == eid) & (june.kpi == k)].value.iloc[0])
            for k in KPIS
        }
        for key, eid in ids.items()
    }


@pytest.fixture(scope="module")
def expected():
    return expected_from_raw_csv()


@pytest.mark.parametrize(
    "key",
    [("agent", n) for n in AGENTS] + [("territory", OFFICE), ("company", "company")],
    ids=lambda k: f"{k[0]}:{k[1]}",
)
@pytest.mark.parametrize("kpi_name", KPIS)
def test_engine_matches_the_raw_export(engine_values, expected, key, kpi_name):
    assert engine_values[key][kpi_name] == pytest.approx(expected[key][kpi_name], rel=1e-12)
