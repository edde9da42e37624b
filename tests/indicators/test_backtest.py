"""spm_models.indicators.backtest: the out-of-sample check and the effect size, against known drivers."""

from __future__ import annotations

import numpy as np
import pytest

from spm_models.exceptions import ConfigError
from spm_models.indicators.arrays import calendar_design
from spm_models.indicators.backtest import lagged_effect, out_of_sample_value, unit_sums


def test_out_of_sample_value_of_a_known_driver(frames):
    rng = np.random.default_rng(2)
    x = rng.normal(size=158)
    y = 10 + 3 * x[:-2] + 0.5 * rng.normal(size=156)  # y_t = 10 + 3 x_{t-2} + e
    target, cands = frames(y, {"x": x[2:], "noise": rng.normal(size=156), "same_week": x[2:]})

    lags = {"x": 2, "noise": 2, "same_week": 0}
    oos = out_of_sample_value(target, cands, lags=lags, horizon=4).set_index("candidate")

    # a lead of 2 weeks informs forecasts at most 2 weeks ahead
    assert oos.loc["x", "horizon_used"] == 2 and oos.loc["x", "lag_used"] == 2
    # origins 104 .. 154: two years of training first, then every week
    assert oos.loc["x", "origins"] == 156 - 2 - 104 + 1
    # x explains 9 / 9.25 of the variance: most of the squared error goes (on the asinh scale too)
    assert oos.loc["x", "oos_improvement"] > 0.9
    assert oos.loc["x", "error_with_candidate"] < 0.1 * oos.loc["x", "error_baseline"]
    assert oos.loc["x", "oos_holds"] and oos.loc["x", "share_origins_improved"] > 0.9
    assert oos.loc["noise", "oos_improvement"] < 0.03
    assert oos.loc["same_week", "origins"] == 0 and not oos.loc["same_week", "oos_holds"]
    with pytest.raises(ConfigError, match="horizon"):
        out_of_sample_value(target, cands, lags={"x": 1}, horizon=0)


def test_unit_sums_add_the_bookings_of_entities_sharing_a_series():
    y = np.array([[1.0, 2.0, np.nan], [10.0, np.nan, np.nan], [5.0, 5.0, 5.0]])
    v = np.array([[7.0, 8.0, 9.0], [7.0, 8.0, 9.0], [1.0, 1.0, 1.0]])
    total, values = unit_sums(y, v)
    np.testing.assert_array_equal(total, [[11.0, 2.0, np.nan], [5.0, 5.0, 5.0]])
    np.testing.assert_array_equal(values, [[7.0, 8.0, 9.0], [1.0, 1.0, 1.0]])


def test_lagged_effect_recovers_a_planted_relative_change(weeks):
    # every unit's bookings are 10 % higher per standard deviation of its candidate 3 weeks before
    rng = np.random.default_rng(5)
    n_u, n_t = 30, 156
    x = rng.normal(size=(n_u, n_t))
    level = rng.uniform(1000, 5000, size=(n_u, 1))
    y = np.full((n_u, n_t), np.nan)
    y[:, 3:] = level * (1 + 0.10 * x[:, :-3] + 0.05 * rng.normal(size=(n_u, n_t - 3)))
    design, _ = calendar_design(weeks, "week")
    b, scale = lagged_effect(y, x, design, lag=3)
    assert b == pytest.approx(0.10, abs=0.01)
    np.testing.assert_allclose(scale, level[:, 0], rtol=0.05)
    b_wrong, _ = lagged_effect(y, x, design, lag=5)
    assert abs(b_wrong) < 0.01
