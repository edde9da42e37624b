"""A plan's cost before roll-out and its backtest are modelled on the review's own scenarios.

:func:`~spm_models.insights.incentives.plan_runs` and
:func:`~spm_models.insights.incentives.backtest_plan_cost` cannot import the review (it sits
above them), so they learn the quota calibration through the same evaluation functions. Here
their calibration is checked against what :func:`~spm_models.review.recalibration.learn_recalibration`
learns on the data as of the same day, and their draws against the review's factor.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spm_models.insights.incentives import backtest_plan_cost, plan_runs
from spm_models.insights.incentives.scenarios import (
    CALIBRATION_DRAWS,
    CALIBRATION_MIN_ROWS,
    CALIBRATION_QUARTERS,
    agent_territories,
)
from spm_models.models import CalendarBaseline
from spm_models.review import outlook as ol
from spm_models.review import recalibration as rc
from spm_models.review.settings import ReviewConfig


def _review_calibration(data, month):
    cal = ol.review_calendar(month, data_end=ol.data_last_day(data), calendar=data.fiscal_calendar)
    r, _ = rc.learn_recalibration(
        ol.as_of_dataset(data, cal.as_of), CalendarBaseline(), cal, ReviewConfig(model="CalendarBaseline")
    )
    return cal, r.calibration


def test_the_defaults_are_the_reviews():
    config = ReviewConfig()
    assert (config.recalibration_quarters, config.recalibration_draws, config.recalibration_min_rows) == (
        CALIBRATION_QUARTERS,
        CALIBRATION_DRAWS,
        CALIBRATION_MIN_ROWS,
    )


def test_the_backtest_learns_what_a_review_the_day_before_each_quarter_learns(plan_data, plan_books):
    bt = backtest_plan_cost(plan_data, plan_books, model=CalendarBaseline(), n_draws=40)
    learned = bt[(bt["plan"] == "current") & bt["drift"].notna()]
    assert len(learned) >= 2 and bt.loc[bt["drift"].isna(), "period_start"].min() == bt["period_start"].min()
    for _, row in learned.iloc[[0, -1]].iterrows():  # the first quarter with a factor and the last
        as_of = row["period_start"] - pd.Timedelta(days=1)
        cal, c = _review_calibration(plan_data, f"{as_of:%Y-%m}")
        assert cal.as_of == as_of and cal.forecast_quarter == row["period_start"]
        assert row["drift"] == pytest.approx(c.drift, rel=1e-9)
        assert row["spread"] == pytest.approx(c.spread, rel=1e-9)
        assert (np.isnan(row["territory_spread"]) and c.group_spread is None) or row[
            "territory_spread"
        ] == pytest.approx(c.group_spread)


def test_plan_runs_draws_are_the_models_times_the_reviews_factor(plan_data, plan_books):
    """Mid-quarter (offset 8 weeks): the calibration is the review's of that month, and every
    agent's draws are the model's own times ``F_j G_gj`` of the review's seed."""
    kw = dict(model=CalendarBaseline(), as_of="2025-02-28", n_draws=50, seed=0)
    ctx = plan_runs(plan_data, plan_books, **kw)["current"].context
    raw = plan_runs(plan_data, plan_books, calibrate=False, **kw)["current"].context
    _, c = _review_calibration(plan_data, "2025-02")
    assert ctx.calibration.factor_applied and raw.calibration is None
    assert (ctx.calibration.drift, ctx.calibration.spread) == pytest.approx((c.drift, c.spread), rel=1e-9)
    fc, fc_raw = ctx.projection.forecast, raw.projection.forecast
    terr = agent_territories(plan_data.tables)
    f = c.factors(50, seed=0, groups=[terr.get(u, "") for u in fc.unique_ids.astype(str)])
    np.testing.assert_allclose(fc.draws, fc_raw.draws * f[:, None, :], rtol=1e-6)
