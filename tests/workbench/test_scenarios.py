"""Scenarios: the fitted model's effects applied to the forecast, checked against the planted truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spm_models.exceptions import ConfigError
from spm_models.synthetic.generator import generate_organisation
from spm_models.workbench.explorer import ExplorerState, build_explorer
from spm_models.workbench.forecasting import fit_model
from spm_models.workbench.scenarios import (
    Scenario,
    default_scenario,
    effect_table,
    indicator_dz,
    scenario_forecast,
    scenario_view,
)

REGS = {"activity:demo": 3, "indicator:market_index": 8}
H = 3


@pytest.fixture(scope="module")
def org():
    # Not the shared small organisation: the scenario's uplift is compared with the planted
    # demo effect (within 50%), a fair test only when the fitted effect is a precise estimate,
    # from a few dozen agents rather than a handful.
    return generate_organisation(40, years=2, seed=3)


@pytest.fixture(scope="module")
def explorer(org):
    state = ExplorerState(model="HierarchicalBayes", horizon=H)
    return build_explorer(org.dataset, regressors=REGS, draw=False, fast=True, state=state)


def _true_uplift(org, change: float) -> float:
    """Relative change of expected bookings in the last 13 weeks if every agent's demos were
    ``change`` higher: the planted demo effect (logit of negotiation->won per SD of the agent's
    own weekly demos) moved by ``dz_i = change * mean_i / sd_i``."""
    truth = org.truth
    effect = truth.indicator_effects.set_index("name").loc["demo", "effect"]
    acts = org.dataset.tables["activities"]
    demos = acts[acts["activity_type"] == "demo"].groupby("agent_id")["count"]
    dz = change * demos.mean() / demos.std(ddof=0)
    aw = truth.agent_weeks
    last = aw[(aw["week_start"] > aw["week_start"].max() - pd.Timedelta(weeks=13)) & aw["employed"]]
    p = last["p_negotiation_won"].to_numpy()
    z = last["agent_id"].map(dz).fillna(0.0).to_numpy()
    new_p = 1 / (1 + np.exp(-(np.log(p / (1 - p)) + effect * z)))
    e = last["expected_bookings"].to_numpy()
    return float((e * new_p / p).sum() / e.sum() - 1)


def test_raising_demos_raises_expected_bookings_by_about_the_true_effect(explorer, org):
    c = explorer.controls
    c["activity"].value = "activity:demo"
    c["activity_change"].value = 50  # percent
    truth = 100 * _true_uplift(org, 0.5)
    got = explorer.scenario.set_index("case").loc["scenario", "change_pct"]
    assert truth > 5
    assert got == pytest.approx(truth, rel=0.5), (got, truth)
    # a larger change moves the forecast further, and a cut lowers it
    c["activity_change"].value = 100
    assert explorer.scenario.set_index("case").loc["scenario", "change_pct"] > got
    c["activity_change"].value = -30
    assert explorer.scenario.set_index("case").loc["scenario", "change_pct"] < 0
    c["activity_change"].value = 0
    assert explorer.scenario.set_index("case").loc["scenario", "change_pct"] == pytest.approx(0.0)


def test_an_added_agent_adds_the_territory_average_agent(explorer, org):
    fitted = explorer.fitted["HierarchicalBayes"]
    base = fitted.forecasts[H]
    terr = org.dataset.tables["agents"].set_index("agent_id")["territory_id"]
    members = pd.Series(base.unique_ids.astype(str)).map(terr).to_numpy() == "T01"
    per_agent = base.draws[members].sum(axis=1).mean(axis=1)  # expected H-week bookings of each T01 agent
    view = scenario_view(fitted, Scenario(territory="T01", agent_change=1), level="territory", entity="T01", horizon=H)
    rows = view.set_index("case")["expected_bookings"]
    assert rows["scenario"] - rows["as fitted"] == pytest.approx(per_agent.mean(), rel=1e-9)
    gone = scenario_view(
        fitted, Scenario(territory="T01", agent_change=-2), level="company", entity="company", horizon=H
    )
    rows = gone.set_index("case")["expected_bookings"]
    assert rows["as fitted"] - rows["scenario"] == pytest.approx(2 * per_agent.mean(), rel=1e-9)
    with pytest.raises(ConfigError, match="no agents"):
        scenario_forecast(fitted, Scenario(territory="T99", agent_change=1), horizon=H)


def test_a_market_path_changes_only_the_periods_it_moves(explorer):
    fitted = explorer.fitted["HierarchicalBayes"]
    base = fitted.forecasts[H]
    fc, _ = scenario_forecast(
        fitted, Scenario(indicator="indicator:market_index", indicator_shift=[0.0, 5.0, 5.0]), horizon=H
    )
    np.testing.assert_allclose(fc.draws[:, 0], base.draws[:, 0])
    eff = effect_table(fitted).set_index("name").loc["indicator:market_index", "pct_mean"]
    later = fc.draws[:, 1:].mean() / base.draws[:, 1:].mean() - 1
    assert np.sign(later) == np.sign(eff)


def test_effect_table_reports_intervals_of_every_indicator(explorer):
    table = effect_table(explorer.fitted["HierarchicalBayes"]).set_index("name")
    assert {"activity:demo", "indicator:market_index", "quarter_end_push"} <= set(table.index)
    assert (table["pct_q0.05"] <= table["pct_mean"]).all() and (table["pct_mean"] <= table["pct_q0.95"]).all()
    assert (table["interval_width"] > 0).all()
    assert default_scenario(explorer.fitted["HierarchicalBayes"]).activity == "activity:demo"


def test_indicator_dz_by_hand():
    frame = pd.DataFrame({"unique_id": ["a", "a", "b", "b"], "x": [1.0, 3.0, 5.0, 5.0]})
    dz = indicator_dz(frame, "x", np.array(["a", "b", "c"]), change=0.5, h=2)
    np.testing.assert_allclose(dz, [[1.0, 1.0], [0.0, 0.0], [0.0, 0.0]])  # a: 0.5 * 2 / 1; b: sd 0; c: absent
    dz = indicator_dz(frame, "x", np.array(["a"]), shift=[2.0, -1.0], h=2)
    np.testing.assert_allclose(dz, [[2.0, -1.0]])


def test_a_model_without_effects_cannot_run_an_activity_scenario(org):
    fitted = fit_model(org.dataset, model="CalendarBaseline")
    with pytest.raises(ConfigError, match="no estimated effect"):
        scenario_forecast(fitted, Scenario(activity="activity:demo", activity_change=0.2), horizon=2)
    assert effect_table(fitted).empty
    assert Scenario().is_baseline and not Scenario(territory="T01", agent_change=1).is_baseline
