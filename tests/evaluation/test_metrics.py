"""Metrics against hand-computed values and closed forms."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from spm_models.evaluation.metrics import (
    SCORE_COLUMNS,
    coverage,
    crps_draws,
    crps_quantiles,
    mase,
    mase_scale,
    mean_error,
    percent_bias,
    pinball_loss,
    randomized_pit,
    score,
    summarize,
)
from spm_models.exceptions import DataError
from spm_models.models import Forecast

# ------------------------------------------------------------------ CRPS


def test_crps_of_a_point_mass_is_the_absolute_error():
    assert crps_draws(np.full(50, 3.0), 5.5) == pytest.approx(2.5)
    assert crps_draws(np.full(7, -1.0), -4.0) == pytest.approx(3.0)


def test_crps_of_three_draws_by_hand():
    # draws 0, 1, 2 and y = 1: E|X - y| = 2/3; E|X - X'| over 9 pairs = 8/9; CRPS = 2/3 - 4/9 = 2/9
    assert crps_draws([2.0, 0.0, 1.0], 1.0) == pytest.approx(2 / 9)


def test_crps_of_normal_draws_matches_the_closed_form():
    # CRPS(N(0,1), y) = y (2 Phi(y) - 1) + 2 phi(y) - 1 / sqrt(pi)   (Gneiting & Raftery 2007)
    rng = np.random.default_rng(0)
    draws = rng.standard_normal(40_000)
    for y in (-1.7, 0.0, 0.4, 2.5):
        exact = y * (2 * norm.cdf(y) - 1) + 2 * norm.pdf(y) - 1 / math.sqrt(math.pi)
        assert crps_draws(draws, y) == pytest.approx(exact, abs=0.01)


def test_crps_sorting_form_equals_the_pairwise_definition():
    rng = np.random.default_rng(1)
    draws = rng.gamma(0.5, 10.0, size=(4, 3, 200))
    y = rng.gamma(0.5, 10.0, size=(4, 3))
    pair = np.abs(draws[..., :, None] - draws[..., None, :]).mean(axis=(-1, -2))
    naive = np.abs(draws - y[..., None]).mean(axis=-1) - 0.5 * pair
    np.testing.assert_allclose(crps_draws(draws, y), naive, rtol=1e-10, atol=1e-10)


def test_crps_skips_missing_actuals():
    out = crps_draws(np.zeros((2, 5)), np.array([1.0, np.nan]))
    assert out[0] == pytest.approx(1.0) and np.isnan(out[1])


def test_crps_from_quantiles_by_hand():
    # levels 0.1, 0.5, 0.9 at 0, 1, 2 and y = 3: pinball 0.3, 1.0, 0.9 -> 2 * mean = 4.4 / 3
    assert crps_quantiles([0.0, 1.0, 2.0], [0.1, 0.5, 0.9], 3.0) == pytest.approx(4.4 / 3)
    assert pinball_loss(3.0, 2.0, 0.9) == pytest.approx(0.9)
    assert pinball_loss(1.0, 2.0, 0.9) == pytest.approx(0.1)


def test_crps_from_quantiles_of_a_point_forecast_is_the_absolute_error():
    levels = [0.025, 0.1, 0.5, 0.9, 0.975]
    assert crps_quantiles(np.full(5, 4.0), levels, 1.5) == pytest.approx(2.5)
    assert crps_quantiles(np.full(5, 4.0), levels, 7.0) == pytest.approx(3.0)


def test_crps_from_many_quantiles_approaches_crps_from_draws():
    levels = (np.arange(99) + 0.5) / 99
    q = norm.ppf(levels)
    exact = 0.4 * (2 * norm.cdf(0.4) - 1) + 2 * norm.pdf(0.4) - 1 / math.sqrt(math.pi)
    assert crps_quantiles(q, levels, 0.4) == pytest.approx(exact, rel=0.02)


# ------------------------------------------------------------------ MASE, coverage, bias


def test_mase_by_hand():
    train = [1.0, 3.0, 2.0, 5.0]  # |diffs| 2, 1, 3 -> scale 2
    assert mase_scale(train) == pytest.approx(2.0)
    assert mase([4.0, 6.0], [5.0, 5.0], y_train=train) == pytest.approx(0.5)  # MAE 1 / 2
    # season 2: |2 - 1|, |5 - 3| -> scale 1.5
    assert mase_scale(train, season=2) == pytest.approx(1.5)
    assert mase([4.0, 6.0], [5.0, 5.0], y_train=train, season=2) == pytest.approx(1 / 1.5)


def test_mase_is_nan_safe():
    train = [1.0, 3.0, np.nan, 2.0, 5.0]  # usable |diffs|: |5-2| = 3, |3-1| = 2 -> 2.5
    assert mase_scale(train) == pytest.approx(2.5)
    assert mase([4.0, np.nan], [5.0, 100.0], y_train=train) == pytest.approx(1 / 2.5)
    assert math.isnan(mase([1.0], [2.0], y_train=[3.0, 3.0, 3.0]))  # zero scale
    assert math.isnan(mase([1.0], [2.0], y_train=[3.0]))  # no scale


def test_coverage_by_hand():
    y = [1.0, 2.0, 3.0, 4.0, np.nan]
    lo = [0.0, 2.5, 3.0, 0.0, 0.0]
    hi = [2.0, 3.0, 3.0, 3.0, 0.0]
    # inside, below, on both bounds (inside), above; the NaN actual is not counted
    assert coverage(y, lo, hi) == pytest.approx(0.5)


def test_randomized_pit_covers_80_percent_for_the_true_law_with_an_atom():
    """Zero-heavy bookings: P(0) = 0.4, else lognormal. The true law's [q0.1, q0.9] covers
    every zero, so its plain coverage is 0.9, not 0.8; the randomised PIT is uniform."""
    rng = np.random.default_rng(3)
    n, k = 4000, 500  # 4,000 forecasts of 500 draws each: the PIT's resolution is 1/500

    def law(size):
        return np.where(rng.uniform(size=size) < 0.4, 0.0, rng.lognormal(8, 1, size=size))

    draws = law((n, k))
    y = law(n)
    lo, hi = np.quantile(draws, [0.1, 0.9], axis=1)
    assert np.mean((lo <= y) & (y <= hi)) == pytest.approx(0.9, abs=0.02)
    u = randomized_pit(draws, y)
    assert np.mean((u >= 0.1) & (u <= 0.9)) == pytest.approx(0.8, abs=0.02)
    assert np.histogram(u, bins=5, range=(0, 1))[0].min() > 0.9 * n / 5
    # a forecast twice too wide is caught: its PIT piles up in the middle
    wide = np.where(rng.uniform(size=(n, k)) < 0.4, 0.0, rng.lognormal(8, 2, size=(n, k)))
    u = randomized_pit(wide, y)
    assert np.mean((u >= 0.1) & (u <= 0.9)) > 0.86


def test_randomized_pit_by_hand_and_nan():
    u = randomized_pit(np.array([[0.0, 0.0, 1.0, 2.0], [0.0, 1.0, 2.0, 3.0]]), np.array([0.0, np.nan]))
    assert 0.0 <= u[0] <= 0.5 and np.isnan(u[1])
    assert randomized_pit(np.array([[1.0, 2.0, 3.0, 4.0]]), np.array([3.5]))[0] == 0.75


def test_bias_by_hand():
    assert mean_error([1.0, 3.0], [2.0, 2.0]) == pytest.approx(0.0)
    assert mean_error([1.0, 3.0], [3.0, 3.0]) == pytest.approx(1.0)  # over-forecast is positive
    assert percent_bias([1.0, 3.0], [3.0, 3.0]) == pytest.approx(50.0)  # 2 over an actual total of 4
    assert percent_bias([0.0, 0.0, 4.0], [1.0, 1.0, 1.0]) == pytest.approx(-25.0)
    assert math.isnan(percent_bias([0.0], [1.0]))


# ------------------------------------------------------------------ score / summarize


def _forecast() -> Forecast:
    """Two series, two weeks. Series a: point masses at 10 and 20; series b: draws 0..4."""
    ds = np.array([pd.date_range("2024-01-08", periods=2, freq="W-MON").to_numpy()] * 2)
    draws = np.stack(
        [
            np.stack([np.full(5, 10.0), np.full(5, 20.0)]),
            np.stack([np.arange(5.0), np.arange(5.0)]),
        ]
    )
    return Forecast.from_draws(draws, unique_ids=["a", "b"], ds=ds, model="Hand", freq="W-MON")


def test_score_per_series_by_hand():
    fc = _forecast()
    actuals = pd.DataFrame(
        {
            "unique_id": ["a", "a", "b", "b"],
            "ds": pd.to_datetime(["2024-01-08", "2024-01-15", "2024-01-08", "2024-01-15"]),
            "y": [12.0, 20.0, 2.0, 10.0],
        }
    )
    train = pd.DataFrame(
        {
            "unique_id": ["a", "a", "a", "b", "b"],
            "ds": pd.to_datetime(["2023-12-18", "2023-12-25", "2024-01-01", "2023-12-25", "2024-01-01"]),
            "y": [10.0, 14.0, 12.0, 1.0, 3.0],  # scales: a mean(4, 2) = 3, b 2
        }
    )
    s = score(fc, actuals, train=train).set_index("unique_id")
    assert list(s.reset_index().columns) == list(SCORE_COLUMNS)
    a, b = s.loc["a"], s.loc["b"]
    assert a["n"] == 2 and b["n"] == 2
    # a: errors 10-12 = -2 and 0: MAE 1, MASE 1/3; point masses: CRPS = |error|
    assert a["mae"] == pytest.approx(1.0) and a["mase"] == pytest.approx(1 / 3)
    assert a["crps"] == pytest.approx(1.0) and a["scaled_crps"] == pytest.approx(1 / 3)
    assert a["crps_quantiles"] == pytest.approx(1.0)
    assert a["coverage_80"] == pytest.approx(0.5)  # 12 outside [10, 10], 20 inside [20, 20]
    assert a["mean_error"] == pytest.approx(-1.0)
    assert a["bias_pct"] == pytest.approx(100 * (30 - 32) / 32)
    # b: mean forecast 2; errors 0 and -8: MAE 4, MASE 2
    assert b["mae"] == pytest.approx(4.0) and b["mase"] == pytest.approx(2.0)
    # draws 0..4: E|X-X'| = 40/25 = 1.6. y=2: E|X-2| = 6/5 -> 0.4; y=10: E|X-10| = 8 -> 7.2
    assert b["crps"] == pytest.approx((0.4 + 7.2) / 2)
    # 80% interval of 0..4 by linear interpolation: [0.4, 3.6] covers 2 but not 10
    assert b["coverage_80"] == pytest.approx(0.5) and b["coverage_95"] == pytest.approx(0.5)
    assert b["sum_actual"] == pytest.approx(12.0) and b["sum_forecast"] == pytest.approx(4.0)


def test_score_ignores_periods_without_actuals_and_reports_series_without_any():
    fc = _forecast()
    actuals = pd.DataFrame({"unique_id": ["a"], "ds": pd.to_datetime(["2024-01-15"]), "y": [25.0]})
    train = pd.DataFrame({"unique_id": ["a", "a"], "ds": pd.to_datetime(["2023-12-25", "2024-01-01"]), "y": [1.0, 6.0]})
    s = score(fc, actuals, train=train).set_index("unique_id")
    assert s.loc["a", "n"] == 1 and s.loc["a", "mae"] == pytest.approx(5.0) and s.loc["a", "mase"] == pytest.approx(1.0)
    assert s.loc["b", "n"] == 0 and np.isnan(s.loc["b", "mae"]) and np.isnan(s.loc["b", "scale"])


def test_score_rejects_repeated_actuals_and_unknown_point():
    fc = _forecast()
    act = pd.DataFrame({"unique_id": ["a", "a"], "ds": pd.to_datetime(["2024-01-08"] * 2), "y": [1.0, 2.0]})
    with pytest.raises(DataError, match="repeat"):
        score(fc, act, train=act.iloc[:0])
    with pytest.raises(DataError, match="point"):
        score(fc, act.iloc[:1], train=act.iloc[:0], point="q0.42")


def test_summarize_pools_by_level():
    scores = pd.DataFrame(
        {
            "unique_id": ["a1", "a2", "t1"],
            "fallback": [False, True, False],
            "n": [2, 6, 4],
            "mase": [1.0, 3.0, 0.5],
            "crps": [1.0, 2.0, 3.0],
            "scaled_crps": [0.1, 0.3, 0.2],
            "crps_quantiles": [1.0, 1.0, 1.0],
            "coverage_80": [1.0, 0.5, 0.75],
            "coverage_95": [1.0, 1.0, 1.0],
            "mean_error": [1.0, -1.0, 0.0],
            "sum_actual": [10.0, 30.0, 40.0],
            "sum_forecast": [12.0, 24.0, 40.0],
        }
    )
    out = summarize(scores, level={"a1": "agent", "a2": "agent", "t1": "territory"}).set_index("level")
    ag = out.loc["agent"]
    assert ag["n_series"] == 2 and ag["n"] == 8 and ag["n_fallback"] == 1
    assert ag["mase"] == pytest.approx(2.0)
    assert ag["coverage_80"] == pytest.approx((2 * 1.0 + 6 * 0.5) / 8)  # pooled over periods
    assert ag["mean_error"] == pytest.approx((2 - 6) / 8)
    assert ag["bias_pct"] == pytest.approx(100 * (36 - 40) / 40)
    assert out.loc["territory", "bias_pct"] == pytest.approx(0.0)
    everything = summarize(scores)
    assert everything["level"].tolist() == ["all"] and everything["n"].iloc[0] == 12
    with pytest.raises(DataError, match="without a level"):
        summarize(scores, level={"a1": "agent"})


def test_metrics_module_imports_no_plotting_library():
    code = "import sys, spm_models.evaluation.metrics; print(any(m.split('.')[0] == 'matplotlib' for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
