"""A draft beside the plans in force on one forecast, and the backtest of the forecast cost.

A small synthetic organisation under the two shipped example books: the runs are paired (same
bookings scenarios), the backtest's realised cost is the settled cost of the quarter, and the
coverage and its Wilson interval are checked against hand computation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spm_models.exceptions import ConfigError, DataError
from spm_models.insights.incentives import (
    PlanContext,
    backtest_plan_cost,
    company_totals,
    compare_plans,
    cost_coverage,
    cost_scenarios,
    default_as_of,
    plan_runs,
)
from spm_models.insights.incentives.rollout import last_sunday
from spm_models.models import make_model


@pytest.fixture(scope="module")
def calibrated(plan_data, plan_books):
    """The calibrated backtest of the two books (one run of it, read by two tests; read-only)."""
    return backtest_plan_cost(plan_data, plan_books, model=make_model("Mean"), n_draws=60)


def test_last_sunday_and_default_as_of(plan_data):
    assert last_sunday("2025-06-30") == pd.Timestamp("2025-06-29")  # a Monday: the day before
    assert last_sunday("2025-06-29") == pd.Timestamp("2025-06-29")  # a Sunday: itself
    day = default_as_of(plan_data)
    assert day == day + pd.offsets.MonthEnd(0)  # a month's last day
    opps = plan_data.tables["opportunities"]
    last = max(opps["created_date"].max(), opps["close_date"].max())
    assert day <= last < day + pd.offsets.MonthEnd(1) + pd.Timedelta(days=1)


def test_two_books_see_the_same_scenarios(plan_data, plan_books):
    runs = plan_runs(plan_data, plan_books, model=make_model("Mean"), as_of="2025-03-31", n_draws=60)
    cur, dra = runs["current"], runs["draft"]
    assert cur.context is dra.context and cur.context.quarter_label == "2025-Q2"
    table = compare_plans(runs)
    assert table.loc["expected bookings", "current"] == table.loc["expected bookings", "draft"]
    diff = dra.expected.total() - cur.expected.total()
    assert table.loc["cost minus current, mean", "draft"] == pytest.approx(diff.mean())
    assert table.loc["cost minus current, 10th percentile", "draft"] == pytest.approx(np.quantile(diff, 0.1))
    draws = cost_scenarios(runs)
    assert len(draws) == 2 * 60 and draws.groupby("plan")["cost"].mean()["draft"] == pytest.approx(
        table.loc["expected cost", "draft"]
    )


def test_backtest_realised_is_the_settled_cost(plan_data, plan_books, calibrated):
    bt = calibrated
    assert (bt["period_start"] >= pd.Timestamp("2024-01-01")).all()  # not before the books start
    assert (bt["origin"].dt.day_of_week == 6).all() and (bt["origin"] < bt["period_start"]).all()
    assert (bt["period_start"] - bt["origin"] <= pd.Timedelta(days=7)).all()
    held = (bt["cost_q10"] <= bt["realised_cost"]) & (bt["realised_cost"] <= bt["cost_q90"])
    assert bt["held"].tolist() == held.tolist()
    last = bt["period_start"].max()
    settled = PlanContext(plan_data.tables, calendar=plan_data.fiscal_calendar, as_of=last + pd.offsets.QuarterEnd(0))
    done = company_totals(settled.evaluate(plan_books["draft"], scenarios=False)).set_index("period_start")
    row = bt[(bt["plan"] == "draft") & (bt["period_start"] == last)].iloc[0]
    assert row["realised_cost"] == pytest.approx(done.loc[last, "earned_to_date"])
    assert done.loc[last, "status"] == "final" and row["realised_cost"] > 0


def test_backtest_scenarios_are_recalibrated_where_a_factor_was_learned(plan_data, plan_books, calibrated):
    """Quarters with three ended before them get the review's factor (a wider range here, where
    the quarters varied more than the agents' independent draws say); the first keep the model's
    own draws, exactly as ``calibrate=False`` gives them."""
    cal = calibrated
    raw = backtest_plan_cost(plan_data, plan_books, model=make_model("Mean"), n_draws=60, calibrate=False)
    assert raw[["drift", "spread", "territory_spread"]].isna().all().all()
    np.testing.assert_array_equal(cal["realised_cost"], raw["realised_cost"])
    own = cal["drift"].isna().to_numpy()
    assert own[:2].all() and not own.all()
    np.testing.assert_allclose(cal.loc[own, ["cost_q10", "cost_q90"]], raw.loc[own, ["cost_q10", "cost_q90"]])
    width = (cal["cost_q90"] - cal["cost_q10"]) / (raw["cost_q90"] - raw["cost_q10"])
    assert (width[~own] > 1.2).all()


def test_coverage_by_hand():
    bt = pd.DataFrame(
        {
            "plan": ["a"] * 4 + ["b"],
            "cost_q10": [10.0, 10.0, 10.0, 10.0, 1.0],
            "cost_q90": [20.0, 20.0, 20.0, 20.0, 2.0],
            "realised_cost": [15.0, 5.0, 25.0, 20.0, 1.5],
        }
    ).assign(held=lambda f: (f["cost_q10"] <= f["realised_cost"]) & (f["realised_cost"] <= f["cost_q90"]))
    cov = cost_coverage(bt).set_index("plan")
    assert cov.loc["a", ["quarters", "held", "below", "above"]].tolist() == [4, 2, 1, 1]
    # Wilson, n = 4, p = 0.5, z = 1.6449: centre 0.5, half z sqrt(1/16 + z^2/64) / (1 + z^2/4) = 0.5324 / 1.6764
    z = 1.6448536269514722
    half = z * np.sqrt(0.25 / 4 + z * z / 64) / (1 + z * z / 4)
    assert cov.loc["a", "coverage"] == 0.5 and cov.loc["a", "coverage_se"] == pytest.approx(0.25)  # sqrt(.25 / 4)
    assert cov.loc["a", "coverage_low"] == pytest.approx(0.5 - half) and half == pytest.approx(0.3176, abs=1e-4)
    assert cov.loc["b", "coverage"] == 1.0 and cov.loc["b", "coverage_high"] == pytest.approx(1.0)


def test_bad_arguments_are_named(plan_data, plan_books):
    with pytest.raises(ConfigError, match="at least one plan book"):
        plan_runs(plan_data, {}, model=make_model("Mean"))
    with pytest.raises(ConfigError, match="ForecastModel"):
        backtest_plan_cost(plan_data, plan_books, model="Mean")
    with pytest.raises(DataError, match="weeks of bookings history"):
        plan_runs(plan_data, plan_books, model=make_model("Mean"), as_of="2023-01-15")
