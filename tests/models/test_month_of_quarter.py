"""MonthOfQuarterMean: each series' mean times a pooled month-of-quarter factor."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spm_models.exceptions import ConfigError
from spm_models.models import MODELS, MonthOfQuarterMean
from spm_models.models.month_of_quarter import month_positions


def _frame(weeks: int = 156, lift=(1.0, 1.0, 2.0), levels=(100.0, 10.0, 40.0), seed: int = 0) -> pd.DataFrame:
    """Weekly series whose third month of each calendar quarter books ``lift`` times the first,
    with a weekly shock every series shares and noise of their own."""
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2023-01-02", periods=weeks, freq="W-MON")
    pos = month_positions(ds.to_numpy(), "W-MON", 1)
    common = rng.gamma(30.0, 1 / 30.0, weeks)
    rows = []
    for i, level in enumerate(levels):
        y = level * np.asarray(lift)[pos] * common * rng.gamma(60.0, 1 / 60.0, weeks)
        rows.append(pd.DataFrame({"unique_id": f"s{i}", "ds": ds, "y": y}))
    return pd.concat(rows, ignore_index=True)


def test_it_is_registered_and_in_the_contract_suite():
    assert MonthOfQuarterMean in MODELS


def test_weeks_belong_to_the_month_of_their_thursday_and_fiscal_quarters_move_them():
    # Monday 2024-03-25 has its Thursday on 28 March (3rd month of Q1); Monday 2024-04-01 starts Q2
    ds = pd.to_datetime(["2024-03-25", "2024-04-01", "2024-02-26", "2024-01-22", "2024-01-29"]).to_numpy()
    assert month_positions(ds, "W-MON", 1).tolist() == [2, 0, 1, 0, 1]  # 29 Jan's Thursday is 1 Feb
    # a fiscal year from February: Feb-Apr is a quarter (March its 2nd month, April its 3rd), January
    # the 3rd month of Nov-Jan
    assert month_positions(ds, "W-MON", 2).tolist() == [1, 2, 0, 2, 0]
    with pytest.raises(ConfigError, match="weekly or monthly"):
        month_positions(ds, "D", 1)


def test_recovers_the_pooled_factors_and_each_series_level():
    frame = _frame()
    m = MonthOfQuarterMean(random_state=0).fit(frame)
    f = m.factors_
    # f_m = mean of the pooled total over weeks in month m / mean over all weeks
    total = frame.groupby("ds")["y"].sum()
    pos_t = month_positions(total.index.to_numpy(), "W-MON", 1)
    np.testing.assert_allclose(f, [total[pos_t == k].mean() / total.mean() for k in range(3)], rtol=1e-12)
    assert f[2] / f[0] == pytest.approx(2.0, rel=0.15) and f[1] / f[0] == pytest.approx(1.0, rel=0.15)
    # the factors are pooled: one set for every series, so each mean forecast is level x factor
    fc = m.predict(13, n_draws=4000)
    ds = fc.ds[0]
    pos = month_positions(ds, "W-MON", 1)
    mean = fc.draws.mean(axis=2)
    for i in range(3):
        expected = m.level_[i] * f[pos]
        np.testing.assert_allclose(mean[i], expected, rtol=0.06)
    ratio = mean[:, pos == 2].mean(axis=1) / mean[:, pos == 0].mean(axis=1)
    np.testing.assert_allclose(ratio, f[2] / f[0], rtol=0.05)


def test_a_window_limits_the_level_to_recent_history():
    frame = _frame(levels=(100.0,))
    frame.loc[frame["ds"] >= frame["ds"].max() - pd.Timedelta(weeks=25), "y"] *= 3.0  # a step up in the last 26 weeks
    full = MonthOfQuarterMean().fit(frame).level_[0]
    recent = MonthOfQuarterMean(window=26).fit(frame).level_[0]
    assert recent > 2.0 * full / 1.5 and recent > full


def test_draws_are_joint_across_series():
    m = MonthOfQuarterMean(random_state=1).fit(_frame())
    d = m.predict(4, n_draws=2000).draws
    # one resampled past week for every series: their draws move together
    assert np.corrcoef(d[0, 0], d[1, 0])[0, 1] > 0.5
    solo = MonthOfQuarterMean(random_state=1, joint_bootstrap=False).fit(_frame()).predict(4, n_draws=2000).draws
    assert abs(np.corrcoef(solo[0, 0], solo[1, 0])[0, 1]) < 0.1


def test_bad_parameters_are_refused():
    with pytest.raises(ConfigError, match="window"):
        MonthOfQuarterMean(window=0).fit(_frame())
    with pytest.raises(ConfigError, match="joint_bootstrap"):
        MonthOfQuarterMean(joint_bootstrap="yes").fit(_frame())


def test_the_shared_part_of_each_week_is_widened_for_its_leverage():
    """A new week's shared error is larger than an in-sample one (the level and the factors were
    fitted on those weeks): the pooled ratio is widened by sqrt((1 + h) / (1 - h)), each
    series' own part is not, and the means stay."""
    frame = _frame(weeks=30)
    m = MonthOfQuarterMean().fit(frame)
    wide = frame.assign(r=m.ratios_[:, -30:].reshape(-1))
    fitted = m.level_[:, None] * m.factors_[month_positions(frame["ds"].unique(), "W-MON", 1)][None, :]
    raw = frame["y"].to_numpy().reshape(3, 30) / fitted
    c_raw = (raw * fitted).sum(axis=0) / fitted.sum(axis=0)
    c_wide = (wide["r"].to_numpy().reshape(3, 30) * fitted).sum(axis=0) / fitted.sum(axis=0)
    n_m = np.bincount(month_positions(frame["ds"].unique(), "W-MON", 1), minlength=3)
    h = 1 / 30 + 1 / n_m[month_positions(frame["ds"].unique(), "W-MON", 1)]
    np.testing.assert_allclose(c_wide - c_raw.mean(), (c_raw - c_raw.mean()) * np.sqrt((1 + h) / (1 - h)), atol=1e-9)
    # each series' own part (its ratio over the week's shared one) is unchanged
    np.testing.assert_allclose(wide["r"].to_numpy().reshape(3, 30) / c_wide, raw / c_raw, rtol=1e-9)
    assert c_wide.mean() == pytest.approx(c_raw.mean(), rel=1e-12)
