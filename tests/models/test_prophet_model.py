"""ProphetForecaster: lagged leading indicators, quarter-end effects, fallback, draws.

The contract suite (tests/models/test_contract.py) covers the rest of the model contract.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from spm_models.exceptions import ConfigError, DataError
from spm_models.models import ProphetForecaster
from spm_models.models.prophet_model import period_end_indicators

START = pd.Timestamp("2023-01-02")  # a Monday
FAST = {"uncertainty_samples": 200}


def _lagged_frame(n: int = 90, h: int = 4, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """y_t = 3 x_{t-4} + noise(sd 2); returns (training frame, the next h true means)."""
    rng = np.random.default_rng(seed)
    total = n + h
    x = rng.gamma(4.0, 5.0, total)  # a leading indicator, mean 20, sd 10
    y = np.empty(total)
    y[:4] = 60.0 + rng.normal(0, 2, 4)
    y[4:] = 3.0 * x[:-4] + rng.normal(0, 2, total - 4)
    ds = pd.date_range(START, periods=total, freq="W-MON")
    frame = pd.DataFrame({"unique_id": "a", "ds": ds[:n], "y": y[:n], "x": x[:n]})
    # the truth the forecast should track: 3 * x four weeks earlier, known at the origin
    truth = pd.DataFrame({"ds": ds[n:], "mean": 3.0 * x[n - 4 : n]})
    return frame, truth


def test_lagged_regressor_tracks_the_known_indicator_and_horizon_is_capped():
    frame, truth = _lagged_frame()
    with_x = ProphetForecaster(regressors={"x": 4}, period_end=False, **FAST).fit(frame)
    without = ProphetForecaster(period_end=False, **FAST).fit(frame)
    fc_x = with_x.predict(4, n_draws=200).quantiles
    fc_0 = without.predict(4, n_draws=200).quantiles
    assert list(fc_x["ds"]) == list(truth["ds"])
    err_x = np.abs(fc_x["q0.5"].to_numpy() - truth["mean"].to_numpy()).mean()
    err_0 = np.abs(fc_0["q0.5"].to_numpy() - truth["mean"].to_numpy()).mean()
    # noise sd is 2 and x moves y by 30 (sd): with the regressor the error is noise-sized
    assert err_x < 3.0, err_x
    assert err_x < 0.25 * err_0, (err_x, err_0)
    with pytest.raises(
        ConfigError, match=r"regressor x enters at lag 4, so it is known only 4 periods ahead; use h <= 4"
    ):
        with_x.predict(5)


def test_smallest_lag_caps_the_horizon_and_lag_zero_is_rejected():
    frame, _ = _lagged_frame(n=40)
    frame = frame.assign(z=np.arange(len(frame)) % 5)
    model = ProphetForecaster(regressors={"x": 4, "z": 2}, period_end=False, **FAST).fit(frame)
    assert model.predict(2, n_draws=10).h == 2
    with pytest.raises(ConfigError, match="regressor z enters at lag 2"):
        model.predict(3)
    with pytest.raises(ConfigError, match="at least 1"):
        ProphetForecaster(regressors={"x": 0}).fit(frame)
    with pytest.raises(ConfigError, match="not a usable column"):
        ProphetForecaster(regressors={"y": 2}).fit(frame)


def test_regressor_column_problems_are_data_errors():
    frame, _ = _lagged_frame(n=30)
    with pytest.raises(DataError, match="regressor column is missing"):
        ProphetForecaster(regressors={"pipeline": 4}).fit(frame)
    holes = frame.copy()
    holes.loc[[3, 7], "x"] = np.nan
    with pytest.raises(DataError, match="2 regressor values are empty"):
        ProphetForecaster(regressors={"x": 4}).fit(holes)


def test_constant_regressor_is_dropped_for_that_series_and_recorded():
    frame, _ = _lagged_frame(n=40)
    other = frame.assign(unique_id="b", x=7.0)  # same sales, constant indicator
    model = ProphetForecaster(regressors={"x": 4}, period_end=False, **FAST).fit(pd.concat([frame, other]))
    dropped = model.dropped_regressors_
    assert dropped[["unique_id", "regressor"]].values.tolist() == [["b", "x"]]
    assert "constant" in dropped["reason"].iloc[0]
    fc = model.predict(4, n_draws=20)
    assert not fc.fallback["fallback"].any()


def test_first_lag_periods_are_left_out_so_short_series_fall_back():
    frame, _ = _lagged_frame(n=11)  # 11 - 4 lag rows = 7 usable < min_history 8
    fc = ProphetForecaster(regressors={"x": 4}, **FAST).fit(frame).predict(2, n_draws=10)
    reason = fc.fallback["reason"].iloc[0]
    assert fc.fallback["fallback"].iloc[0]
    assert "only 11 observations; with regressors lagged up to 4 periods Prophet needs at least 12" in reason


def test_period_end_indicators_by_hand():
    weeks = pd.to_datetime(["2025-03-17", "2025-03-24", "2025-03-31", "2025-04-07", "2025-06-23"])
    ind = period_end_indicators(weeks.to_numpy(), "W-MON", n_last=2)
    # 31 Mar: 1 day to 1 Apr -> last week; 24 Mar: 8 days -> second-last; 17 Mar: 15 days -> neither;
    # 7 Apr: start of Q2; 23 Jun: 8 days to 1 Jul -> second-last
    np.testing.assert_array_equal(ind, [[0, 0], [0, 1], [1, 0], [0, 0], [0, 1]])
    months = pd.date_range("2025-01-01", periods=6, freq="MS").to_numpy()
    np.testing.assert_array_equal(period_end_indicators(months, "MS", n_last=1)[:, 0], [0, 0, 1, 0, 0, 1])
    # fiscal quarters Feb-Apr, May-Jul: the last months are April and July
    fiscal = period_end_indicators(
        pd.date_range("2025-02-01", periods=6, freq="MS").to_numpy(), "MS", n_last=2, fiscal_year_start=2
    )
    np.testing.assert_array_equal(fiscal, [[0, 0], [0, 1], [1, 0], [0, 0], [0, 1], [1, 0]])


def test_quarter_end_spike_is_recovered():
    rng = np.random.default_rng(3)
    ds = pd.date_range(START, periods=100, freq="W-MON")
    last_week = period_end_indicators(ds.to_numpy(), "W-MON", n_last=1)[:, 0]
    y = 100.0 + 80.0 * last_week + rng.normal(0, 5, len(ds))
    frame = pd.DataFrame({"unique_id": "a", "ds": ds, "y": y})
    fc = ProphetForecaster(**FAST).fit(frame).predict(13, n_draws=200).quantiles
    plain = ProphetForecaster(period_end=False, **FAST).fit(frame).predict(13, n_draws=200).quantiles
    # the 13 weeks after 2024-11-25 run to 2025-02-17; the week of 2024-12-30 holds 31 December
    spike = fc["ds"] == pd.Timestamp("2024-12-30")
    assert spike.sum() == 1
    lift = fc.loc[spike, "mean"].iloc[0] - fc.loc[~spike, "mean"].mean()
    assert 60.0 < lift < 100.0, lift
    assert abs(fc.loc[~spike, "mean"].mean() - 100.0) < 10.0
    plain_lift = plain.loc[spike, "mean"].iloc[0] - plain.loc[~spike, "mean"].mean()
    assert plain_lift < 30.0, plain_lift


def test_all_zero_series_falls_back_and_says_why():
    frame, _ = _lagged_frame(n=40)
    zero = frame.assign(unique_id="z", y=0.0)
    fc = ProphetForecaster(**FAST).fit(pd.concat([frame, zero])).predict(3, n_draws=50)
    fb = fc.fallback.set_index("unique_id")
    assert not fb.loc["a", "fallback"]
    assert fb.loc["z", "fallback"]
    assert fb.loc["z", "reason"].startswith("Prophet: all values are zero")
    assert fb.loc["z", "model"] != "Prophet"
    np.testing.assert_array_equal(fc.select(["z"]).draws, 0.0)


def test_draws_are_floored_at_zero_on_sparse_sales():
    rng = np.random.default_rng(5)
    ds = pd.date_range(START, periods=60, freq="W-MON")
    y = rng.gamma(1.0, 400.0, 60) * (rng.random(60) < 0.3)
    frame = pd.DataFrame({"unique_id": "s", "ds": ds, "y": y})
    floored = ProphetForecaster(**FAST).fit(frame).predict(4, n_draws=300)
    raw = ProphetForecaster(floor_at_zero=False, **FAST).fit(frame).predict(4, n_draws=300)
    assert floored.draws.min() >= 0.0
    assert raw.draws.min() < 0.0  # Prophet's Gaussian noise goes below zero on sparse sales
    np.testing.assert_array_equal(floored.draws, np.maximum(raw.draws, 0.0))
    assert (floored.quantiles["mean"] > raw.quantiles["mean"]).all()


def test_draws_are_resampled_prophet_paths():
    frame, _ = _lagged_frame(n=40)
    fc = ProphetForecaster(uncertainty_samples=10, period_end=False).fit(frame).predict(3, n_draws=25)
    paths = np.unique(fc.draws[0].T, axis=0)
    assert len(paths) == 10  # 25 draws built from exactly the 10 sample paths Prophet drew
    _, counts = np.unique(fc.draws[0].T, axis=0, return_counts=True)
    assert set(counts) <= {2, 3}


def test_seed_fixes_refits_and_leaves_global_random_state_alone():
    frame, _ = _lagged_frame(n=40)
    # the legacy global generator is the subject of this test
    np.random.seed(123)  # noqa: NPY002
    expected = np.random.random(3)  # noqa: NPY002
    np.random.seed(123)  # noqa: NPY002
    a = ProphetForecaster(regressors={"x": 4}, **FAST).fit(frame).predict(4, n_draws=50)
    assert np.array_equal(np.random.random(3), expected), "predict must restore numpy's global random state"  # noqa: NPY002
    b = ProphetForecaster(regressors={"x": 4}, **FAST).fit(frame).predict(4, n_draws=50)
    np.testing.assert_array_equal(a.draws, b.draws)


def test_stan_logging_is_silenced_during_fit_and_restored(caplog):
    frame, _ = _lagged_frame(n=20)
    names = ("prophet", "prophet.models", "cmdstanpy")
    before = {n: logging.getLogger(n).disabled for n in names}
    with caplog.at_level(logging.DEBUG):
        ProphetForecaster(**FAST).fit(frame).predict(2, n_draws=10)
    noisy = [r.getMessage() for r in caplog.records if r.name.split(".")[0] in ("prophet", "cmdstanpy")]
    assert noisy == []
    assert {n: logging.getLogger(n).disabled for n in names} == before


def test_save_load_round_trip_with_regressors(tmp_path):
    frame, _ = _lagged_frame(n=40)
    model = ProphetForecaster(regressors={"x": 4}, **FAST).fit(frame)
    before = model.predict(4, n_draws=50)
    loaded = ProphetForecaster.load(model.save(tmp_path / "prophet.pkl"))
    after = loaded.predict(4, n_draws=50)
    np.testing.assert_array_equal(before.draws, after.draws)
    pd.testing.assert_frame_equal(before.quantiles, after.quantiles)
    pd.testing.assert_frame_equal(model.dropped_regressors_, loaded.dropped_regressors_)
    with pytest.raises(ConfigError, match="lag 4"):
        loaded.predict(5)
