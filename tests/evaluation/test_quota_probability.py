"""Tests of spm_models.evaluation.quota.probability: attainment draws, reliability tables, oracle backtest."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spm_models.evaluation.quota.probability import (
    attainment_distribution,
    calibration_summary,
    quota_for_period,
    reliability_table,
)
from spm_models.exceptions import ConfigError, DataError
from spm_models.models.forecast import Forecast
from spm_models.synthetic.generator import generate_organisation
from spm_models.synthetic.oracle import oracle_forecast, oracle_quota_backtest


def _forecast(draws, *, start="2024-04-08", ids=("A",), freq="W-MON") -> Forecast:
    draws = np.asarray(draws, dtype=float)
    ds = pd.date_range(start, periods=draws.shape[1], freq=freq).to_numpy()
    return Forecast.from_draws(draws, unique_ids=list(ids), ds=np.tile(ds, (len(ids), 1)), model="T", freq=freq)


def test_hand_computed_attainment():
    # two whole weeks (2024-04-08 .. 2024-04-21), four draws; closed 50, quota 70
    fc = _forecast([[[0, 10, 20, 30], [0, 0, 10, 10]]])
    out = attainment_distribution({"A": 50.0}, fc, 70.0, period_end="2024-04-21").iloc[0]
    # bookings 50 + [0, 10, 30, 40] = [50, 60, 80, 90]
    assert out["p_quota"] == 0.5
    assert out["expected_remaining"] == 20.0 and out["expected_bookings"] == 70.0
    assert out["expected_attainment"] == pytest.approx(1.0)
    assert out["expected_shortfall"] == pytest.approx((20 + 10 + 0 + 0) / 4)
    # numpy's linear quantile: the 25% point of [50, 60, 80, 90] is 50 + 0.75 * 10
    assert out["attainment_q0.25"] == pytest.approx(57.5 / 70)
    assert out["attainment_q0.5"] == pytest.approx(70 / 70)
    assert out["attainment_q0.95"] == pytest.approx((80 + 0.85 * 10) / 70)


def test_partial_periods_are_prorated_by_days():
    fc = _forecast([[[70.0], [70.0]]])
    # quota period Wed 2024-04-10 .. Wed 2024-04-17: 5 of 7 days of week 1, 3 of week 2
    cal = attainment_distribution(None, fc, 82.0, period_start="2024-04-10", period_end="2024-04-17").iloc[0]
    assert cal["expected_bookings"] == pytest.approx(70 * 5 / 7 + 70 * 3 / 7)
    # working days only: Wed-Fri = 3 of 5, Mon-Wed = 3 of 5
    biz = attainment_distribution(
        None, fc, 82.0, period_start="2024-04-10", period_end="2024-04-17", day_count="business"
    ).iloc[0]
    assert biz["expected_bookings"] == pytest.approx(70 * 3 / 5 + 70 * 3 / 5)
    # 80 falls short of 82, 84 makes it
    assert cal["p_quota"] == 0.0 and biz["p_quota"] == 1.0


def test_quota_from_targets_is_prorated_by_kpi():
    targets = pd.DataFrame(
        {
            "agent_id": pd.array(["A", "B"], dtype="str"),
            "territory_id": pd.array([None, None], dtype="str"),
            "period_start": pd.to_datetime(["2024-04-01", "2024-04-01"]),
            "period_end": pd.to_datetime(["2024-06-30", "2024-06-30"]),
            "quota": [91_000.0, 9_100.0],
        }
    )
    # April is 30 of the quarter's 91 days
    q = quota_for_period(targets, period_start="2024-04-01", period_end="2024-04-30")
    assert q.to_dict() == pytest.approx({"A": 30_000.0, "B": 3_000.0})
    fc = _forecast(np.full((3, 5, 2), 1000.0), start="2024-04-01", ids=("A", "B", "C"))
    out = attainment_distribution({"B": 2_000.0}, fc, targets, period_start="2024-04-01", period_end="2024-04-30")
    np.testing.assert_allclose(out["quota"], [30_000.0, 3_000.0, np.nan])
    # B: 2,000 closed + 4 whole weeks and 2 of 7 days of the week of 29 April
    assert out.loc[1, "expected_bookings"] == pytest.approx(2_000 + 4_000 + 2 / 7 * 1_000)
    assert out.loc[1, "p_quota"] == 1.0
    assert np.isnan(out.loc[2, "p_quota"]) and np.isnan(out.loc[2, "expected_attainment"])
    with pytest.raises(ConfigError, match="boundaries"):
        quota_for_period(targets, period_start="2024-04-03", period_end="2024-04-30")


def test_forecast_must_reach_the_period_end():
    with pytest.raises(DataError, match="forecast more periods"):
        attainment_distribution(None, _forecast([[[1.0], [1.0]]]), 10.0, period_end="2024-04-30")


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(0, 1e5), min_size=5, max_size=40), st.floats(1, 1e5), st.floats(1, 1e5))
def test_probability_falls_as_quota_rises(values, q1, q2):
    fc = _forecast(np.asarray(values)[None, None, :])
    lo, hi = sorted((q1, q2))
    a = attainment_distribution(None, fc, lo, period_end="2024-04-14").iloc[0]
    b = attainment_distribution(None, fc, hi, period_end="2024-04-14").iloc[0]
    assert a["p_quota"] >= b["p_quota"]
    assert a["expected_shortfall"] <= b["expected_shortfall"] + 1e-9
    # the exact share of draws at or above the quota
    assert a["p_quota"] == np.mean(np.asarray(values) >= lo)


def test_reliability_table_by_hand():
    p = [0.05, 0.15, 0.15, 0.95, 1.0]
    y = [0, 1, 0, 1, 1]
    t = reliability_table(p, y, bins=[0, 0.1, 0.5, 1.0], min_count=2)
    assert t["n"].tolist() == [1, 2, 2]
    np.testing.assert_allclose(t["mean_predicted"], [0.05, 0.15, 0.975])
    np.testing.assert_allclose(t["observed_rate"], [0.0, 0.5, 1.0])
    np.testing.assert_allclose(t["abs_gap"], [0.05, 0.35, 0.025])
    assert t["enough"].tolist() == [False, True, True]
    s = calibration_summary(p, y, bins=[0, 0.1, 0.5, 1.0], min_count=2)
    assert s["brier"] == pytest.approx((0.05**2 + 0.85**2 + 0.15**2 + 0.05**2 + 0) / 5)
    assert s["ece"] == pytest.approx((0.05 + 2 * 0.35 + 2 * 0.025) / 5)
    assert s["max_gap"] == pytest.approx(0.35) and s["bins_checked"] == 2
    with pytest.raises(DataError):
        reliability_table([0.5, 1.2], [0, 1])
    with pytest.raises(DataError):
        reliability_table([0.5], [0, 1])


def test_reliability_of_calibrated_and_miscalibrated_probabilities():
    rng = np.random.default_rng(7)
    p = rng.uniform(size=5000)
    good = reliability_table(p, rng.uniform(size=p.size) < p, bins=10, min_count=30)
    assert good["enough"].all()
    assert (good["abs_gap"] < 0.1).all()
    bad = reliability_table(p, rng.uniform(size=p.size) < p**2, bins=10, min_count=30)
    assert bad["abs_gap"].max() > 0.2  # the check can fail


def test_oracle_forecast_matches_the_ground_truth():
    # 20 agents: the mean of 4,000 draws of their 4-week total is within 3% of the truth (a
    # handful of agents' total is too skewed for that)
    org = generate_organisation(20, years=1, seed=5)
    fc = oracle_forecast(org, start="2023-03-06", h=4, n_draws=4000, seed=1)
    aw = org.truth.agent_weeks
    truth = aw[aw["week_start"].between("2023-03-06", "2023-03-27")].groupby("agent_id")["expected_bookings"].sum()
    got = pd.Series(fc.draws.sum(axis=1).mean(axis=1), index=fc.unique_ids)
    assert got.sum() == pytest.approx(truth.sum(), rel=0.03)


@pytest.fixture(scope="module")
def oracle_backtest():
    # 400 agents give every probability bin hundreds of agent-quarters; 200 draws per
    # probability put its Monte Carlo error (sd at most 0.035) well inside the 0.1 tolerance
    org = generate_organisation(400, years=3, seed=0)
    return oracle_quota_backtest(org, offsets_weeks=(0, 4, 8), n_draws=200, seed=0)


def test_oracle_quota_probabilities_are_calibrated(oracle_backtest):
    bt = oracle_backtest
    # 10 whole quarters x about 355 agents with a quota x 3 origins
    assert len(bt) > 10_000 and set(bt["offset_weeks"]) == {0, 4, 8}
    table = reliability_table(bt["p_quota"], bt["hit"], bins=10, min_count=30)
    checked = table[table["enough"]]
    assert len(checked) >= 8
    assert (checked["abs_gap"] < 0.1).all(), table
    summary = calibration_summary(bt["p_quota"], bt["hit"])
    assert abs(summary["mean_predicted"] - summary["observed_rate"]) < 0.02
    # later in the quarter more is known, so the forecast is sharper (lower Brier score)
    brier = bt.assign(se=(bt["p_quota"] - bt["hit"]) ** 2).groupby("offset_weeks")["se"].mean()
    assert brier[8] < brier[4] < brier[0]
