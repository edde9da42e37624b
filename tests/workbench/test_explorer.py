"""Explorer compute functions and widget callbacks (no browser: widgets are set in Python)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spm_models.exceptions import ConfigError, DataError
from spm_models.models.forecast import Forecast
from spm_models.synthetic.generator import generate_organisation
from spm_models.workbench.explorer import build_explorer, entity_options, kpi_view
from spm_models.workbench.forecasting import FittedModel, forecast_view, level_forecast, make_model


@pytest.fixture(scope="module")
def org():
    # Not the shared small organisation: 1.5 years, so the data end on Sunday 2024-06-30 and the
    # forecast weeks lie inside 2024Q3, whose quotas test_p_quota_shows_from_the_targets_without_a_
    # typed_quota prorates (the shared one ends on 2024-12-29: its forecast straddles a quarter).
    return generate_organisation(15, years=1.5, seed=2)


@pytest.fixture(scope="module")
def explorer(org):
    return build_explorer(org.dataset, draw=False, fast=True)


def _month_sum(opps: pd.DataFrame, column: str | None) -> pd.Series:
    won = opps[opps["outcome"] == "won"]
    month = pd.to_datetime(won["close_date"]).dt.to_period("M").dt.start_time
    values = won[column] if column else pd.Series(1.0, index=won.index)
    return values.groupby(month).sum()


AGENTS = pd.DataFrame({"agent_id": ["a1", "a2", "a3"], "territory_id": ["T1", "T1", "T2"]})


def _forecast(draws: np.ndarray) -> Forecast:
    ds = np.tile(pd.date_range("2024-01-01", periods=draws.shape[1], freq="W-MON").to_numpy(), (draws.shape[0], 1))
    return Forecast.from_draws(draws, unique_ids=["a1", "a2", "a3"][: draws.shape[0]], ds=ds, model="m", freq="W-MON")


# ------------------------------------------------------------------ compute functions


def test_kpi_view_filters_one_entity_kpi_and_range():
    kpis = pd.DataFrame(
        {
            "level": ["company"] * 3 + ["agent"],
            "entity_id": ["company"] * 3 + ["a1"],
            "grain": "month",
            "period": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01", "2024-02-01"]),
            "kpi": "bookings",
            "segment": "",
            "value": [1.0, 2.0, 3.0, 9.0],
        }
    )
    out = kpi_view(kpis, level="company", entity="company", kpi="bookings", start="2024-02-01", end="2024-02-29")
    assert out["value"].tolist() == [2.0]
    with pytest.raises(ConfigError, match="unknown KPI"):
        kpi_view(kpis, level="company", entity="company", kpi="happiness")


def test_entity_options(org):
    assert entity_options(org.dataset, "company") == ["company"]
    assert entity_options(org.dataset, "territory") == sorted(org.dataset.tables["agents"]["territory_id"].unique())
    with pytest.raises(ConfigError):
        entity_options(org.dataset, "galaxy")


def test_level_forecast_sums_draws_by_territory():
    draws = np.arange(3 * 2 * 4, dtype=float).reshape(3, 2, 4)
    terr = level_forecast(_forecast(draws), AGENTS, level="territory")
    order = list(terr.unique_ids)
    np.testing.assert_allclose(terr.draws[order.index("T1")], draws[0] + draws[1])
    np.testing.assert_allclose(terr.draws[order.index("T2")], draws[2])
    company = level_forecast(_forecast(draws), AGENTS, level="company")
    np.testing.assert_allclose(company.draws[0], draws.sum(axis=0))


def test_forecast_view_p_quota_is_the_share_of_draws_reaching_quota():
    # company total over 2 weeks per draw: 10, 20, 30, 40 -> P(total >= 25) = 0.5
    draws = np.zeros((3, 2, 4))
    draws[0, 0] = [5, 10, 15, 20]
    draws[2, 1] = [5, 10, 15, 20]
    fitted = FittedModel(name="m", model=None, frame=pd.DataFrame(), agents=AGENTS)
    fan, att = forecast_view(
        fitted, level="company", entity="company", horizon=2, quota=25.0, forecast=_forecast(draws)
    )
    assert len(fan) == 2
    assert att["p_quota"].iloc[0] == pytest.approx(0.5)
    assert att["expected_bookings"].iloc[0] == pytest.approx(25.0)
    with pytest.raises(DataError, match="no forecast"):
        forecast_view(fitted, level="territory", entity="T9", horizon=2, forecast=_forecast(draws))


def test_make_model_rejects_unknown_names():
    with pytest.raises(ConfigError, match="unknown forecasting model"):
        make_model("Crystal ball")


# ------------------------------------------------------------------ widgets


def test_changing_the_kpi_control_updates_the_table(explorer, org):
    c = explorer.controls
    c["kpi"].value = "deals_won"
    expected = _month_sum(org.dataset.tables["opportunities"], None)
    got = explorer.kpi_table.set_index("period")["value"]
    common = got.index.intersection(expected.index)
    assert len(common) >= 12
    np.testing.assert_allclose(got.loc[common].to_numpy(), expected.loc[common].to_numpy())
    c["kpi"].value = "bookings"
    got = explorer.kpi_table.set_index("period")["value"]
    expected = _month_sum(org.dataset.tables["opportunities"], "amount")
    np.testing.assert_allclose(got.loc[common].to_numpy(), expected.loc[common].to_numpy())


def test_changing_level_offers_its_entities_and_date_range_trims(explorer, org):
    c = explorer.controls
    c["level"].value = "territory"
    assert list(c["entity"].options) == entity_options(org.dataset, "territory")
    assert explorer.state.entity == c["entity"].options[0]
    assert explorer.fan is not None and explorer.error == ""
    c["start"].value = pd.Timestamp("2023-06-01").date()
    assert explorer.kpi_table["period"].min() >= pd.Timestamp("2023-06-01")
    c["start"].value = None
    c["level"].value = "company"
    assert explorer.state.entity == "company"


def test_changing_horizon_and_quota_updates_fan_and_p_quota(explorer):
    c = explorer.controls
    c["horizon"].value = 2
    assert len(explorer.fan) == 2
    company = level_forecast(
        explorer.fitted["CalendarBaseline"].forecasts[2], explorer.dataset.tables["agents"], level="company"
    )
    totals = company.draws[0].sum(axis=0)
    quota = float(np.quantile(totals, 0.3))
    c["quota"].value = quota
    assert explorer.attainment["quota"].iloc[0] == pytest.approx(quota)
    assert explorer.attainment["p_quota"].iloc[0] == pytest.approx((totals >= quota).mean())
    c["quota"].value = 0.0


def test_a_scenario_the_model_cannot_answer_is_reported_not_raised(explorer):
    explorer.regressors["activity:demo"] = 3
    c = explorer.controls
    c["activity"].options = ["", "activity:demo"]
    c["activity"].value = "activity:demo"
    c["activity_change"].value = 20
    assert "no estimated effect" in explorer.scenario["note"].iloc[0]
    c["activity"].value = ""
    c["activity_change"].value = 0


def test_p_quota_shows_from_the_targets_without_a_typed_quota(explorer, org):
    # The data end on Sunday 2024-06-30; the forecast runs into 2024Q3, which the synthetic
    # targets plan before it starts, so P(quota) needs no typed quota.
    fitted = explorer.fitted["CalendarBaseline"]
    agents, targets = org.dataset.tables["agents"], org.dataset.tables["targets"]
    agent = agents.loc[agents["leave_date"].isna(), "agent_id"].iloc[0]
    territory = agents.set_index("agent_id").at[agent, "territory_id"]
    q3 = targets[targets["period_start"] == pd.Timestamp("2024-07-01")].drop(columns="territory_id")
    q3 = q3.merge(agents[["agent_id", "territory_id"]], on="agent_id")
    share = 21 / 92  # three weeks, 2024-07-01 to 2024-07-21, of the 92 days of the quarter
    for level, entity, quarter_quota in (
        ("agent", agent, q3.loc[q3["agent_id"] == agent, "quota"].sum()),
        ("territory", territory, q3.loc[q3["territory_id"] == territory, "quota"].sum()),
        ("company", "company", q3["quota"].sum()),
    ):
        _, att = forecast_view(fitted, level=level, entity=entity, horizon=3)
        assert quarter_quota > 0
        assert att["quota"].iloc[0] == pytest.approx(quarter_quota * share)
        assert 0.0 <= att["p_quota"].iloc[0] <= 1.0
    c = explorer.controls
    c["level"].value = "territory"
    assert np.isfinite(explorer.attainment["p_quota"].iloc[0])
    c["level"].value = "company"


def test_fan_title_names_p_quota_only_when_there_is_a_quota():
    from spm_models.workbench.explorer import _quota_note

    assert _quota_note(pd.DataFrame({"p_quota": [0.8123], "quota": [562_800.0]})) == "\nP(hit quota) 81% of 562,800"
    assert _quota_note(pd.DataFrame({"p_quota": [np.nan], "quota": [np.nan]})) == ""


def test_the_scenario_table_shows_money_whole_and_attainment_in_percent():
    from spm_models.workbench.explorer import _styled

    frame = pd.DataFrame(
        {
            "case": ["as fitted"],
            "median_bookings": [633809.67],
            "expected_attainment": [1.14],
            "attainment_q0.05": [0.86],
            "p_quota": [0.75],
        }
    )
    html = _styled(frame).to_html()
    assert "633,810" in html and "114%" in html and "86%" in html and "75%" in html
    assert "633809.67" not in html and "1.14" not in html


def test_chart_subjects_name_the_level_once_for_the_company():
    from spm_models.workbench.explorer import _subject

    assert _subject("company", "company") == "company"
    assert _subject("agent", "A0001") == "agent A0001"
