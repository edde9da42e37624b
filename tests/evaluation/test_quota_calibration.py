"""Tests of spm_models.evaluation.quota.calibration: logistic recalibration of P(quota)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spm_models.evaluation.quota.calibration import Recalibration, fit_recalibration, rolling_recalibration
from spm_models.evaluation.quota.probability import reliability_table
from spm_models.exceptions import ConfigError, DataError


def _overconfident(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A model whose logit is twice the true logit (too sure), and what happened."""
    z = rng.normal(-0.5, 1.0, size=n)
    truth = 1 / (1 + np.exp(-z))
    p = 1 / (1 + np.exp(-2.0 * z))
    return p, (rng.uniform(size=n) < truth).astype(float)


def test_recovers_the_slope_of_an_overconfident_model():
    p, hit = _overconfident(20_000, np.random.default_rng(0))
    cal = fit_recalibration(p, hit)
    assert cal.slope == pytest.approx(0.5, abs=0.05)
    assert cal.intercept == pytest.approx(0.0, abs=0.05)
    before = reliability_table(p, hit)
    after = reliability_table(cal(p), hit)
    assert before["abs_gap"].max() > 0.1  # the problem is there ...
    assert after.loc[after["enough"], "abs_gap"].max() < 0.05  # ... and gone


def test_calibrated_probabilities_are_left_almost_alone():
    rng = np.random.default_rng(1)
    p = rng.uniform(0.02, 0.98, size=20_000)
    cal = fit_recalibration(p, rng.uniform(size=p.size) < p)
    assert cal.slope == pytest.approx(1.0, abs=0.06) and abs(cal.intercept) < 0.05
    assert np.abs(cal(p) - p).max() < 0.05


def test_nan_stays_nan_and_order_is_kept():
    cal = Recalibration(intercept=-0.3, slope=0.6, n=100)
    out = cal([0.1, np.nan, 0.5, 0.9])
    assert np.isnan(out[1])
    assert out[0] < out[2] < out[3]


def test_refuses_too_little_or_one_sided_history():
    with pytest.raises(DataError, match="at least 50"):
        fit_recalibration([0.2] * 10, [1] * 5 + [0] * 5)
    with pytest.raises(DataError, match="both hits and misses"):
        fit_recalibration(np.linspace(0, 1, 100), np.ones(100))
    with pytest.raises(DataError, match="in \\[0, 1\\]"):
        fit_recalibration([1.5] * 60, [1, 0] * 30)


def _backtest_frame(rng: np.random.Generator) -> pd.DataFrame:
    quarters = pd.date_range("2023-01-01", periods=8, freq="QS")
    rows = []
    for q in quarters:
        p, hit = _overconfident(400, rng)
        rows.append(
            pd.DataFrame(
                {
                    "origin": q - pd.Timedelta(days=1),
                    "period_end": q + pd.offsets.QuarterEnd(0),
                    "offset_weeks": 0,
                    "p_quota": p,
                    "hit": hit.astype(bool),
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def test_rolling_recalibration_uses_only_quarters_that_had_ended():
    bt = _backtest_frame(np.random.default_rng(2))
    out = rolling_recalibration(bt, min_rows=200)
    first = out["origin"] == out["origin"].min()
    assert out.loc[first, "p_recalibrated"].isna().all()  # nothing had ended before the first quarter
    assert out.loc[~first, "p_recalibrated"].notna().all()
    # changing what happens in the last quarter cannot change any earlier recalibration
    last = bt["origin"] == bt["origin"].max()
    flipped = bt.assign(hit=np.where(last, ~bt["hit"], bt["hit"]))
    again = rolling_recalibration(flipped, min_rows=200)
    pd.testing.assert_series_equal(out["p_recalibrated"], again["p_recalibrated"])
    assert out.loc[~first, "recal_slope"].between(0.3, 0.8).all()
    sub = out[~first]
    table = reliability_table(sub["p_recalibrated"], sub["hit"])
    assert table.loc[table["enough"], "abs_gap"].max() < 0.1


def test_rolling_recalibration_names_missing_columns():
    with pytest.raises(ConfigError, match="offset_weeks"):
        rolling_recalibration(pd.DataFrame({"origin": [], "period_end": [], "p_quota": [], "hit": []}))
