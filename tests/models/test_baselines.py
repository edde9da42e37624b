"""Baselines: hand-computed forecasts, honest intervals, calendar factors and fallbacks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spm_models.calendar import Calendar
from spm_models.exceptions import ConfigError
from spm_models.models import CalendarBaseline, Mean, Naive, SeasonalNaive


def _one(y, *, start="2024-01-01", freq="W-MON", uid="s") -> pd.DataFrame:
    return pd.DataFrame(
        {"unique_id": uid, "ds": pd.date_range(start, periods=len(y), freq=freq), "y": np.asarray(y, float)}
    )


# ------------------------------------------------------------------ SeasonalNaive / Naive


def test_seasonal_naive_repeats_the_last_season_exactly_when_history_repeats():
    f = _one([1, 2, 3, 4] * 6)
    fc = SeasonalNaive(season_length=4).fit(f).predict(6, n_draws=50)
    # no in-sample error, so every draw is the point forecast
    np.testing.assert_array_equal(fc.draws[0], np.array([1, 2, 3, 4, 1, 2], float)[:, None] * np.ones(50))
    np.testing.assert_array_equal(fc.quantiles["q0.025"], [1, 2, 3, 4, 1, 2])
    np.testing.assert_array_equal(fc.quantiles["q0.975"], [1, 2, 3, 4, 1, 2])


def test_seasonal_naive_draws_come_from_its_own_seasonal_errors():
    # m = 2; errors y_t - y_{t-2}: 1-0, 3-0, 0-1, 2-3 = {1, 3, -1, -1}
    f = _one([0, 0, 1, 3, 0, 2])
    fc = SeasonalNaive(season_length=2).fit(f).predict(3, n_draws=400)
    d = fc.draws[0]
    assert set(np.unique(d[0])) <= {1.0, 3.0, -1.0}  # point y_{T-1} = 0, plus one error
    assert set(np.unique(d[1])) <= {3.0, 5.0, 1.0}  # point y_T = 2, plus one error
    # step 3 is two seasons out: point 0 plus the sum of two errors
    two = {a + b for a in (1, 3, -1) for b in (1, 3, -1)}
    assert set(np.unique(d[2])) <= two
    assert len(np.unique(d[2])) > 3  # really a sum, not a rescaled single error
    # the three distinct errors all show up, with the empirical frequencies (-1 twice as often)
    share = np.mean(d[0] == -1.0)
    assert 0.4 < share < 0.6


def test_naive_is_last_value_plus_a_random_walk_of_differences():
    f = _one([5, 6, 5, 6, 5])  # differences +1, -1, +1, -1
    fc = Naive().fit(f).predict(2, n_draws=500)
    assert set(np.unique(fc.draws[0, 0])) == {4.0, 6.0}
    assert set(np.unique(fc.draws[0, 1])) == {3.0, 5.0, 7.0}
    assert "season_length" not in Naive().get_params()


def test_seasonal_naive_intervals_are_calibrated_on_noisy_seasonal_series():
    rng = np.random.default_rng(3)
    n, T, m, h = 300, 60, 13, 13
    season = 100 + 20 * np.sin(2 * np.pi * np.arange(T) / m)
    y = season[None, :] + rng.normal(0, 10, (n, T))
    f = pd.DataFrame(
        {
            "unique_id": np.repeat([f"s{i:03d}" for i in range(n)], T),
            "ds": np.tile(pd.date_range("2022-01-03", periods=T, freq="W-MON"), n),
            "y": y.ravel(),
        }
    )
    train = f.groupby("unique_id").head(T - h)
    test = f.groupby("unique_id").tail(h)
    fc = SeasonalNaive().fit(train).predict(h, n_draws=500)
    q = fc.quantiles.merge(test, on=["unique_id", "ds"])
    c80 = ((q["y"] >= q["q0.1"]) & (q["y"] <= q["q0.9"])).mean()
    c95 = ((q["y"] >= q["q0.025"]) & (q["y"] <= q["q0.975"])).mean()
    assert 0.75 < c80 < 0.85
    assert 0.92 < c95 < 0.98


def test_seasonal_naive_defaults_to_one_quarter():
    assert SeasonalNaive().fit(_one(np.arange(30.0))).season_length_ == 13
    assert SeasonalNaive().fit(_one(np.arange(9.0), start="2024-01-01", freq="MS")).season_length_ == 3


# ------------------------------------------------------------------ Mean


def test_mean_bootstraps_the_recent_window():
    f = _one([100, 100, 1, 2, 3])
    fc = Mean(window=3).fit(f).predict(2, n_draws=300)
    assert set(np.unique(fc.draws)) == {1.0, 2.0, 3.0}
    assert abs(fc.quantiles["mean"].mean() - 2.0) < 0.15


# ------------------------------------------------------------------ CalendarBaseline


def test_calendar_baseline_on_a_constant_series_forecasts_the_constant():
    fc = CalendarBaseline().fit(_one([10.0] * 30)).predict(5, n_draws=100)
    np.testing.assert_allclose(fc.draws, 10.0)


def test_calendar_baseline_without_shrinkage_uses_the_series_own_month_factors():
    # months 1..3 of each quarter sell 1, 2, 3: mean 2, factors 0.5, 1, 1.5
    f = _one([1, 2, 3] * 4, start="2023-01-01", freq="MS")
    model = CalendarBaseline(shrinkage=0, level_uncertainty=False).fit(f)
    np.testing.assert_allclose(model.factors_[0], [0.5, 1.0, 1.5])
    np.testing.assert_allclose(model.level_, [2.0])
    fc = model.predict(4, n_draws=50)
    # residual ratios are all 1, so every draw is level x factor
    np.testing.assert_allclose(fc.draws[0], np.array([1.0, 2.0, 3.0, 1.0])[:, None] * np.ones(50))


def test_calendar_baseline_level_uses_the_recent_window_deseasonalised():
    # quarter pattern 1:2:3, but the last two quarters run at double level
    f = _one([1, 2, 3, 1, 2, 3, 2, 4, 6, 2, 4, 6], start="2023-01-01", freq="MS")
    model = CalendarBaseline(shrinkage=0, window=6, level_uncertainty=False).fit(f)
    np.testing.assert_allclose(model.factors_[0], [0.5, 1.0, 1.5])
    np.testing.assert_allclose(model.level_, [4.0])  # deseasonalised values of the last 6 months are all 4


def test_calendar_baseline_short_series_borrow_pooled_factors():
    rng = np.random.default_rng(0)
    T = 104
    ds = pd.date_range("2022-01-03", periods=T, freq="W-MON")
    push = np.where(Calendar().position_in_quarter(ds.to_numpy(), "week") == 12, 4.0, 1.0)
    long = [pd.DataFrame({"unique_id": f"long{i}", "ds": ds, "y": push * rng.gamma(4, 25, T)}) for i in range(10)]
    short = pd.DataFrame({"unique_id": "new_hire", "ds": ds[-10:], "y": 100.0})  # too short to see a quarter end
    model = CalendarBaseline().fit(pd.concat([*long, short], ignore_index=True))
    pooled = model.pooled_factors_
    # true factors: 4 in the last week, 1 elsewhere, scaled to average 1: 4/(16/13) and 1/(16/13)
    assert pooled[12] == pytest.approx(4 * 13 / 16, rel=0.15)
    assert np.all(np.abs(pooled[:12] - 13 / 16) < 0.15)
    new_hire = model.factors_[list(model.unique_ids_).index("new_hire")]
    assert new_hire[12] > 2.0  # inherits the quarter-end push it has never seen


def test_calendar_baseline_factors_stay_near_one_without_a_calendar_effect():
    rng = np.random.default_rng(5)
    T = 78
    ds = pd.date_range("2022-01-03", periods=T, freq="W-MON")
    f = pd.concat(
        [
            pd.DataFrame({"unique_id": f"s{i}", "ds": ds, "y": rng.gamma(1, 100, T) * (rng.random(T) < 0.5)})
            for i in range(20)
        ],
        ignore_index=True,
    )
    model = CalendarBaseline().fit(f)
    assert np.all(np.abs(model.pooled_factors_ - 1) < 0.2)
    assert np.median(np.abs(model.factors_ - 1)) < 0.15


def _compound(seed: int, n: int = 200, T: int = 91):
    """Weekly bookings: Poisson deal counts (twice as many in the last 2 weeks of a quarter),
    lognormal deal sizes -- sparse, zero-heavy and skewed like agent revenue."""
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2022-01-03", periods=T, freq="W-MON")
    eff = np.where(Calendar().position_in_quarter(ds.to_numpy(), "week") >= 11, 2.0, 0.85)
    k = rng.poisson(rng.gamma(2, 0.6, n)[:, None] * eff[None, :])
    size = rng.lognormal(np.log(rng.uniform(500, 5000, n))[:, None, None], 1.0, (n, T, k.max()))
    y = (size * (np.arange(k.max()) < k[..., None])).sum(-1)
    return pd.DataFrame(
        {"unique_id": np.repeat([f"a{i:03d}" for i in range(n)], T), "ds": np.tile(ds, n), "y": y.ravel()}
    ), ds


def test_calendar_baseline_is_roughly_calibrated_on_zero_heavy_skewed_revenue():
    f, ds = _compound(11)
    assert 0.3 < (f["y"] == 0).mean() < 0.5
    train, test = f[f["ds"] <= ds[77]], f[f["ds"] > ds[77]]
    fc = CalendarBaseline().fit(train).predict(13, n_draws=1000)
    assert (fc.draws >= 0).all()
    q = fc.quantiles.merge(test, on=["unique_id", "ds"])
    # with ~40% zero weeks the lower 10% quantile is 0, which then covers every zero week, so
    # the central 80% interval covers about 90%; the upper quantiles are the real test
    below90 = (q["y"] <= q["q0.9"]).mean()
    below975 = (q["y"] <= q["q0.975"]).mean()
    c80 = ((q["y"] >= q["q0.1"]) & (q["y"] <= q["q0.9"])).mean()
    assert 0.85 < below90 < 0.94
    assert 0.95 < below975 < 0.995
    assert 0.8 <= c80 < 0.94
    # quarter totals from summed weekly draws: the shared level draw keeps them honest too
    totals = fc.draws.sum(axis=1)
    lo, hi = np.quantile(totals, [0.1, 0.9], axis=1)
    actual = test.groupby("unique_id")["y"].sum().reindex(fc.unique_ids).to_numpy()
    assert 0.7 < np.mean((actual >= lo) & (actual <= hi)) < 0.9


def test_calendar_baseline_falls_back_on_zero_negative_and_dead_series():
    base = _one(np.r_[np.arange(1.0, 21.0)], uid="ok")
    zero = _one(np.zeros(20), uid="zero")
    neg = _one(np.r_[-5.0, np.ones(19)], uid="negative")
    dead = _one(np.r_[np.ones(10), np.zeros(10)], uid="dead")
    fc = CalendarBaseline(window=8).fit(pd.concat([base, zero, neg, dead])).predict(3, n_draws=20)
    fb = fc.fallback.set_index("unique_id")
    assert not fb.loc["ok", "fallback"]
    assert fb.loc["zero", "model"] == "Mean" and "all values are zero" in fb.loc["zero", "reason"]
    assert "negative" in fb.loc["negative", "reason"]
    assert "no sales in the last 8 periods" in fb.loc["dead", "reason"]


@pytest.mark.parametrize(
    "params, message",
    [
        ({"shrinkage": -1}, "shrinkage"),
        ({"shrinkage": "lots"}, "shrinkage"),
        ({"min_history": 1}, "min_history"),
        ({"fiscal_year_start": 13}, "fiscal_year_start"),
        ({"window": 0}, "window"),
    ],
)
def test_calendar_baseline_rejects_bad_parameters(params, message):
    with pytest.raises(ConfigError, match=message):
        CalendarBaseline(**params).fit(_one(np.ones(20)))


def test_seasonal_naive_rejects_a_bad_season_length():
    with pytest.raises(ConfigError, match="season_length"):
        SeasonalNaive(season_length=0).fit(_one(np.ones(20)))


# ------------------------------------------------------------------ joint (cross-sectional) bootstrap


def _panel(series: dict[str, np.ndarray], *, start="2024-01-01", ends=None) -> pd.DataFrame:
    """Weekly series; ``ends[uid]`` = weeks by which a series ends before the others (default 0)."""
    ends = ends or {}
    longest = max(len(v) + ends.get(k, 0) for k, v in series.items())
    grid = pd.date_range(start, periods=longest, freq="W-MON")
    rows = []
    for uid, y in series.items():
        stop = longest - ends.get(uid, 0)
        rows.append(pd.DataFrame({"unique_id": uid, "ds": grid[stop - len(y) : stop], "y": np.asarray(y, float)}))
    return pd.concat(rows, ignore_index=True)


def _noisy(seed: int, T: int = 52) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.gamma(2.0, 50.0, T) * (rng.random(T) < 0.7)


JOINT_MODELS = [
    (Mean, {}),
    (Naive, {}),
    (SeasonalNaive, {}),
    (CalendarBaseline, {"level_uncertainty": False}),
]


@pytest.mark.parametrize("cls, params", JOINT_MODELS, ids=lambda v: getattr(v, "__name__", ""))
def test_joint_draws_of_co_moving_series_move_together_and_their_sum_is_as_wide(cls, params):
    # b is 3 x a week by week: every residual of b is a fixed multiple of a's at the same week
    a = _noisy(1)
    f = _panel({"a": a, "b": 3.0 * a})
    joint = cls(**params).fit(f).predict(8, n_draws=2000).draws
    np.testing.assert_allclose(joint[1], 3.0 * joint[0])
    # so the spread of the sum is the sum of the spreads (perfect dependence)
    sd = joint.std(axis=2)
    np.testing.assert_allclose(joint.sum(axis=0).std(axis=1), sd.sum(axis=0))
    # the independent bootstrap loses that dependence: its sum is clearly narrower
    indep = cls(**params, joint_bootstrap=False).fit(f).predict(8, n_draws=2000).draws
    assert np.all(indep.sum(axis=0).std(axis=1) < 0.85 * indep.std(axis=2).sum(axis=0))


@pytest.mark.parametrize("cls, params", JOINT_MODELS, ids=lambda v: getattr(v, "__name__", ""))
def test_joint_draws_keep_each_series_marginal_distribution(cls, params):
    f = _panel({"a": _noisy(2), "b": _noisy(3), "c": _noisy(4)[-30:]})  # c is a later hire
    joint = cls(**params).fit(f).predict(4, n_draws=20000).draws
    indep = cls(**params, joint_bootstrap=False).fit(f).predict(4, n_draws=20000).draws
    for i in range(3):
        for k in range(4):
            # two-sample Kolmogorov-Smirnov distance of the draws (5% critical value ~0.014)
            x, y = np.sort(joint[i, k]), np.sort(indep[i, k])
            at = np.union1d(x, y)
            ks = np.max(np.abs(np.searchsorted(x, at, "right") - np.searchsorted(y, at, "right"))) / x.size
            assert ks < 0.02
        assert abs(joint[i].mean() - indep[i].mean()) < 0.02 * indep[i].std()


def test_joint_draws_of_independent_series_stay_independent():
    # independent histories: the draws' cross-series correlation is the (near-zero) historical one
    f = _panel({"a": _noisy(5, 200), "b": _noisy(6, 200)})
    d = Mean().fit(f).predict(1, n_draws=50000).draws[:, 0, :]
    hist = np.corrcoef(_noisy(5, 200), _noisy(6, 200))[0, 1]
    assert abs(np.corrcoef(d)[0, 1] - hist) < 0.03
    assert abs(hist) < 0.15


def test_joint_draws_share_the_calendar_week_and_fall_back_outside_a_series_history():
    # values encode the calendar week: a covers weeks 0..29, b (a later hire) weeks 20..29,
    # c weeks 5..24 (its history ends 5 weeks before the others)
    weeks = np.arange(30.0)
    f = _panel({"a": weeks, "b": 100 + weeks[20:], "c": 200 + weeks[5:25]}, ends={"c": 5})
    d = Mean().fit(f).predict(3, n_draws=20000).draws.reshape(3, -1)
    wa, wb, wc = d[0], d[1] - 100, d[2] - 200
    both_b = wa >= 20
    np.testing.assert_array_equal(wb[both_b], wa[both_b])  # same week where b has one
    both_c = (wa >= 5) & (wa <= 24)
    np.testing.assert_array_equal(wc[both_c], wa[both_c])  # aligned on the calendar, not on the end
    # elsewhere b and c draw on their own, uniformly over their own weeks
    assert set(np.unique(wb[~both_b])) == set(range(20, 30))
    counts = np.bincount(wb.astype(int) - 20, minlength=10) / wb.size
    np.testing.assert_allclose(counts, 0.1, atol=0.01)
    counts = np.bincount(wc.astype(int) - 5, minlength=20) / wc.size
    np.testing.assert_allclose(counts, 0.05, atol=0.006)


def test_joint_bootstrap_is_the_default_and_the_fallback_inherits_it():
    for cls in (Mean, Naive, SeasonalNaive, CalendarBaseline):
        assert cls().get_params()["joint_bootstrap"] is True
    short = _panel({"a": _noisy(7, 12), "b": _noisy(8, 12)})  # too short for a quarterly season
    for joint in (True, False):
        model = SeasonalNaive(joint_bootstrap=joint).fit(short)
        assert model.fallback_model_.get_params()["joint_bootstrap"] is joint
    a = _noisy(9, 12)
    d = SeasonalNaive().fit(_panel({"a": a, "b": 2 * a})).predict(3, n_draws=500).draws
    np.testing.assert_allclose(d[1], 2 * d[0])  # the Mean fallback draws jointly too


def test_series_that_fall_back_do_not_dilute_the_joint_draws_of_the_others():
    # a long all-zero series falls back to Mean; the shared weeks are still drawn from the
    # fitted series' history only, so a and b = 2a stay perfectly joint
    a = _noisy(10, 20)
    f = _panel({"a": a, "b": 2 * a, "zero": np.zeros(60)})
    model = CalendarBaseline(level_uncertainty=False).fit(f)
    assert list(model.fallback_reason_ != "") == [False, False, True]
    d = model.predict(4, n_draws=1000).draws
    np.testing.assert_allclose(d[1], 2 * d[0])


@pytest.mark.parametrize("cls", [Mean, Naive, SeasonalNaive, CalendarBaseline])
def test_joint_bootstrap_must_be_a_boolean(cls):
    with pytest.raises(ConfigError, match="joint_bootstrap"):
        cls(joint_bootstrap="yes").fit(_one(np.ones(30)))


# ------------------------------------------------------------------ standardised residuals


def test_standardized_ratios_are_the_modified_residuals_of_the_hand_computed_leverage():
    # one monthly series, no shrinkage: four quarters, so each month-of-quarter factor rests on
    # n_ip = 4 months and the level on n = 12; a month's leverage on its own fit is
    # h = 1/4 + 1/12 = 1/3, and its ratio r becomes 1 + (r - 1) / sqrt(1 - 1/3)
    y = [8, 11, 14, 12, 9, 15, 10, 13, 17, 11, 10, 13]
    f = _one(y, start="2023-01-01", freq="MS")
    raw = CalendarBaseline(shrinkage=0, standardize_residuals=False).fit(f).ratios_[0]
    std = CalendarBaseline(shrinkage=0).fit(f).ratios_[0]
    assert np.ptp(raw) > 0.3  # the residuals are not trivially all 1
    np.testing.assert_allclose(std - 1.0, (raw - 1.0) / np.sqrt(2.0 / 3.0))


def test_standardizing_rescales_the_shared_part_of_a_week_and_keeps_each_series_deviation():
    f = _panel({"a": _noisy(11, 30), "b": _noisy(12, 30), "c": _noisy(13, 30)})
    raw = CalendarBaseline(standardize_residuals=False).fit(f).ratios_
    std = CalendarBaseline().fit(f).ratios_
    both = (raw > 0) & (std > 0)
    multiplier = np.where(both, std / np.where(raw > 0, raw, 1.0), np.nan)
    spread = np.nanmax(multiplier, axis=0) - np.nanmin(multiplier, axis=0)
    assert np.nanmax(spread) < 1e-12  # one multiplier per week, shared by every series
    assert np.nanmax(np.abs(multiplier - 1.0)) > 0.05  # and it does change something
    np.testing.assert_array_equal(raw == 0, std == 0)  # a week without a sale stays without one


def test_long_histories_leave_the_ratios_almost_unchanged():
    # three years: every position has been seen 12 times, so the leverage is small
    f = _panel({f"s{i}": _noisy(20 + i, 156) for i in range(8)})
    raw = CalendarBaseline(standardize_residuals=False).fit(f).ratios_
    std = CalendarBaseline().fit(f).ratios_
    assert np.nanmax(np.abs(std - raw)) < 0.02 * np.nanmax(raw)
    assert np.nanmean(np.abs(std - raw)) < 0.01 * np.nanmean(raw)
    assert not np.allclose(std, raw, equal_nan=True)  # small, but applied


def _shared_shock_company(seed: int, *, n: int = 20, weeks: int = 20, h: int = 4) -> tuple[pd.DataFrame, np.ndarray]:
    """Agents whose weeks share a log-normal shock and a quarter-end push; the company's next ``h`` weeks."""
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2024-01-01", periods=weeks + h, freq="W-MON")
    pos = Calendar().position_in_quarter(ds.to_numpy(), "week")
    push = np.where(pos == 12, 1.8, np.where(pos == 11, 1.3, 1.0))
    shock = rng.lognormal(-0.5 * 0.35**2, 0.35, weeks + h)
    scale = rng.gamma(4.0, 250.0, n)
    y = scale[:, None] * push * shock * rng.gamma(2.0, 0.5, (n, weeks + h)) * (rng.random((n, weeks + h)) < 0.6)
    frame = pd.DataFrame(
        {
            "unique_id": np.repeat([f"a{i:02d}" for i in range(n)], weeks),
            "ds": np.tile(ds[:weeks], n),
            "y": y[:, :weeks].ravel(),
        }
    )
    return frame, y[:, weeks:].sum(axis=0)


def _company_sum_coverage(seeds) -> dict[bool, float]:
    """80% interval coverage of the company sum's next 4 weeks over the simulated companies,
    without and with standardized residuals."""
    coverage = {}
    for standardize in (False, True):
        inside = []
        for seed in seeds:
            frame, actual = _shared_shock_company(seed)
            model = CalendarBaseline(standardize_residuals=standardize, random_state=seed)
            total = model.fit(frame).predict(4, n_draws=1000).draws.sum(axis=0)
            lo, hi = np.quantile(total, [0.1, 0.9], axis=1)
            inside.extend((actual >= lo) & (actual <= hi))
        coverage[standardize] = np.mean(inside)
    return coverage


# 20 weeks of history: each week-of-quarter factor rests on one or two weeks and absorbs much
# of their shared shock, so raw in-sample ratios make the company sum far too narrow. The
# default suite checks 50 companies (coverage 0.59 raw, 0.73 standardized); make test-slow
# checks 100 (0.60, 0.73) against the same bounds.
@pytest.mark.parametrize("n_companies", [50, pytest.param(100, marks=pytest.mark.slow)], ids=lambda n: f"{n}_companies")
def test_standardized_residuals_widen_short_history_company_sums_towards_nominal_coverage(n_companies):
    coverage = _company_sum_coverage(range(n_companies))
    assert coverage[False] < 0.66
    assert coverage[True] > coverage[False] + 0.07
    assert coverage[True] < 0.86


def test_standardize_residuals_must_be_a_boolean():
    with pytest.raises(ConfigError, match="standardize_residuals"):
        CalendarBaseline(standardize_residuals="yes").fit(_one(np.ones(30)))


def test_draws_are_balanced_so_the_point_forecast_has_no_monte_carlo_noise():
    """Every past period is used as often as the draws allow, per step: the mean of 500 draws is
    the mean of the residuals however heavy their tail, and each draw is still uniform."""
    from spm_models.models.bootstrap import balanced_indices, bootstrap, joint_bootstrap

    rng = np.random.default_rng(0)
    idx = balanced_indices(np.array([[[7]], [[40]]]), (2, 3, 500), rng)
    for row, k in ((0, 7), (1, 40)):
        counts = np.stack([np.bincount(idx[row, step], minlength=k) for step in range(3)])
        assert counts.max() - counts.min() <= 1 and counts.sum(axis=1).tolist() == [500] * 3
    assert not (idx[0, 0] == idx[0, 1]).all()  # steps are shuffled separately
    pool = np.vstack([rng.pareto(1.5, 40), rng.pareto(1.5, 40)])  # heavy tails: iid means would wander
    for draws in (
        bootstrap(pool, np.array([40, 40]), (4, 400), rng),
        joint_bootstrap(pool, np.array([40, 40]), np.array([0, 0]), (4, 400), rng),
    ):
        np.testing.assert_allclose(draws.mean(axis=2), np.repeat(pool.mean(axis=1)[:, None], 4, axis=1), rtol=1e-12)
