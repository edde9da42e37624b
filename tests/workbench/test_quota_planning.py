"""Quota planning from the forecast distribution (spm_models.workbench.quota_planning)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spm_models.evaluation.backtest import backtest
from spm_models.exceptions import ConfigError
from spm_models.synthetic.generator import generate_organisation
from spm_models.workbench.forecasting import fit_model, make_model
from spm_models.workbench.frames import model_frame
from spm_models.workbench.quota_planning import (
    attainment_share,
    backtest_attainment,
    fairness_summary,
    plan_backtest,
    plan_quotas,
    quota_plan,
    territory_quotas,
)

DRAWS = np.arange(1.0, 101.0)  # draws 1..100


def test_quota_is_the_one_minus_share_quantile_so_p_attain_is_the_share():
    plan = plan_quotas(np.vstack([DRAWS, 2 * DRAWS]), ["a", "b"], share=0.65)
    # numpy linear quantile at 0.35 of 1..100: 1 + 0.35 * 99 = 35.65
    np.testing.assert_allclose(plan["quota"], [35.65, 71.3])
    np.testing.assert_allclose(plan["p_attain"], [0.65, 0.65])
    np.testing.assert_allclose(plan["expected_bookings"], [50.5, 101.0])


def test_equal_probability_reconciliation_hits_the_target_with_one_probability():
    plan = plan_quotas(np.vstack([DRAWS, DRAWS]), ["a", "b"], share=0.65, company_target=101.0)
    # the median of 1..100 is 50.5, so u = 0.5 and each quota is 50.5
    np.testing.assert_allclose(plan["quota"], [50.5, 50.5], rtol=1e-3)
    assert plan["quota"].sum() == pytest.approx(101.0)
    np.testing.assert_allclose(plan["p_attain"], [0.5, 0.5], atol=0.011)


def test_proportional_reconciliation_scales_and_spreads_probabilities():
    plan = plan_quotas(
        np.vstack([DRAWS, DRAWS + 50]), ["a", "b"], share=0.65, company_target=200.0, reconcile="proportional"
    )
    base = np.array([35.65, 85.65])
    np.testing.assert_allclose(plan["quota"], base * 200.0 / base.sum())
    fair = fairness_summary(plan).iloc[0]
    assert fair["total_quota"] == pytest.approx(200.0)
    assert fair["p_max"] > fair["p_min"]  # the fairness check shows the spread
    assert fair["expected_share_attaining"] == pytest.approx(plan["p_attain"].mean())


def test_an_agent_without_a_forecast_does_not_blank_the_fairness_check():
    plan = plan_quotas(np.vstack([DRAWS, np.zeros(100)]), ["a", "gone"], share=0.65)
    assert np.isnan(plan["p_attain"].iloc[1])  # quota 0 of bookings 0: no chance to speak of
    fair = fairness_summary(plan).iloc[0]
    assert fair["agents"] == 2 and fair["no_forecast"] == 1
    assert fair["p_min"] == pytest.approx(0.65) and fair["expected_share_attaining"] == pytest.approx(0.65)


def test_territory_quotas_are_sums_of_their_agents():
    agents = pd.DataFrame({"agent_id": ["a", "b", "c"], "territory_id": ["T1", "T1", "T2"]})
    plan = plan_quotas(np.vstack([DRAWS, DRAWS, DRAWS]), ["a", "b", "c"], share=0.65, agents=agents)
    terr = territory_quotas(plan).set_index("territory_id")
    assert terr.loc["T1", "quota"] == pytest.approx(2 * 35.65)
    assert terr.loc["T1", "agents"] == 2 and terr.loc["T2", "quota"] == pytest.approx(35.65)


@pytest.mark.parametrize("kw", [{"share": 1.2}, {"share": 0.0}, {"company_target": -5.0}, {"reconcile": "vibes"}])
def test_bad_settings_are_config_errors(kw):
    with pytest.raises(ConfigError):
        plan_quotas(np.vstack([DRAWS]), ["a"], **{"share": 0.65, **kw})


@pytest.fixture(scope="module")
def org():
    # Not the shared small organisation: the backtested share of agents attaining quota is
    # compared with the target share (within 0.10), which needs a few hundred agent-quarters.
    return generate_organisation(80, years=3, seed=11)


def _attained_share(org, model_name: str) -> pd.DataFrame:
    frame = model_frame(org.dataset)
    cols = ["unique_id", "ds", "y", "group"] if model_name.startswith("Hierarchical") else ["unique_id", "ds", "y"]
    result = backtest(make_model(model_name, fast=True), frame[cols], h=13, n_origins=4, n_draws=400)
    return backtest_attainment(result, share=0.65)


def test_backtested_share_attaining_is_near_the_target_share_calendar_baseline(org):
    attained = _attained_share(org, "CalendarBaseline")
    share = attainment_share(attained)
    assert len(attained) > 200
    assert abs(share["all"] - 0.65) <= 0.10, share


@pytest.mark.slow
def test_backtested_share_attaining_is_near_the_target_share_hierarchical(org):
    share = attainment_share(_attained_share(org, "HierarchicalBayes"))
    assert abs(share["all"] - 0.65) <= 0.10, share


def test_quota_plan_for_next_quarter_reaches_the_company_target(org):
    fitted = fit_model(org.dataset, model="CalendarBaseline")
    plan = quota_plan(fitted, periods=13, share=0.65, company_target=5_000_000.0)
    assert plan["quota"].sum() == pytest.approx(5_000_000.0)
    assert plan["territory_id"].notna().all()
    free = quota_plan(fitted, periods=13, share=0.65)
    assert free["p_attain"].mean() == pytest.approx(0.65, abs=0.02)


def test_the_plan_is_backtested_with_the_model_that_planned_it(org):
    fitted = fit_model(org.dataset, model="MonthOfQuarterMean")
    result = plan_backtest(fitted, org.dataset, periods=13, n_origins=2, n_draws=200)
    assert result.model == "MonthOfQuarterMean" and result.h == 13 and len(result.origins) == 2
    # series too short for it fall back (to Mean) and say so; the rest are the planning model's
    assert result.forecasts["model"].value_counts().idxmax() == "MonthOfQuarterMean"
    attained = backtest_attainment(result, share=0.65)
    assert len(attained) > 100 and set(attained["unique_id"]) <= set(fitted.frame["unique_id"])
