"""Tests of spm_models.evaluation.quota.calibration: the two-stage calibration of P(quota)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spm_models.evaluation.quota.calibration import (
    QuotaCalibration,
    Recalibration,
    calibration_window_start,
    chance_with_factor,
    factor_forecast,
    fit_recalibration,
    learn_calibration_before,
    learn_quota_calibration,
    rolling_calibration,
)
from spm_models.evaluation.quota.probability import calibration_summary, reliability_table
from spm_models.exceptions import ConfigError, DataError
from spm_models.models.forecast import Forecast


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


N_POINTS_TEST = 100


def _quarterly_backtest(rng: np.random.Generator, *, n_quarters=8, n=300, model_sd=0.3, true_sd=0.6, shocks=None):
    """Backtest rows of an over-confident model of what is still to book, with a shock all agents share.

    The model's draws of the remaining bookings are lognormal around each agent's expectation
    with spread ``model_sd``; what happens is the expectation times the quarter's common shock
    times the agent's own noise (``true_sd``), so the model is both too sure and blind to the
    shared error.
    """
    shocks = rng.normal(0.0, 0.25, n_quarters).cumsum() * 0.5 if shocks is None else np.asarray(shocks)
    z = (np.arange(N_POINTS_TEST) + 0.5) / N_POINTS_TEST
    from scipy import stats

    rows = []
    for k, start in enumerate(pd.date_range("2022-01-01", periods=n_quarters, freq="QS")):
        mu = rng.lognormal(10.0, 0.5, n)
        quota = mu * rng.uniform(0.5, 1.6, n)
        closed = np.where(rng.uniform(size=n) < 0.1, quota * 1.1, 0.0)  # a few already past quota
        points = mu[:, None] * np.exp(model_sd * stats.norm.ppf(z)[None, :] - model_sd**2 / 2)
        real = mu * np.exp(shocks[k] + rng.normal(0.0, true_sd, n) - true_sd**2 / 2)
        p = np.where(quota - closed <= 0, 1.0, (points >= (quota - closed)[:, None]).mean(axis=1))
        rows.append(
            pd.DataFrame(
                {
                    "level": "agent",
                    "entity_id": [f"A{i}" for i in range(n)],
                    "period_start": start,
                    "period_end": start + pd.offsets.QuarterEnd(0),
                    "origin": start - pd.Timedelta(days=1),
                    "offset_weeks": 0,
                    "quota": quota,
                    "closed_to_date": closed,
                    "p_quota": p,
                    "hit": closed + real >= quota,
                    "expected_remaining": mu,
                    "realised_remaining": real,
                    "remaining_points": list(points),
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def test_chance_with_factor_without_a_factor_is_the_share_of_points():
    pts = np.array([np.linspace(0, 99, 100), np.linspace(0, 99, 100)])
    p = chance_with_factor(pts, closed=[0.0, 50.0], quota=[50.0, 40.0], drift=0.0, spread=0.0)
    assert p[0] == pytest.approx(0.5) and p[1] == 1.0  # the second is past quota already
    up = chance_with_factor(pts, closed=[0.0, 0.0], quota=[50.0, 50.0], drift=0.3, spread=0.0)
    down = chance_with_factor(pts, closed=[0.0, 0.0], quota=[50.0, 50.0], drift=-0.3, spread=0.0)
    assert down[0] < 0.5 < up[0]
    # a spread pulls a sure chance away from 0 and 1
    sure = chance_with_factor(pts, closed=[0.0, 0.0], quota=[1.0, 150.0], drift=0.0, spread=0.5)
    assert 0.5 < sure[0] < 1.0 and 0.0 < sure[1] < 0.5


def test_rolling_calibration_is_out_of_sample_and_better_than_raw():
    bt = _quarterly_backtest(np.random.default_rng(2))
    out = rolling_calibration(bt)
    starts = sorted(out["period_start"].unique())
    early = out["period_start"] == starts[0]  # nothing had ended before the first quarter
    assert out.loc[early, "p_calibrated"].isna().all()
    assert out.loc[~early, "p_calibrated"].notna().all()
    # the common factor needs 3 ended quarters; stage 2 needs 200 past agent-quarters (one quarter here)
    no_factor = out["period_start"].isin(starts[:3])
    assert out.loc[no_factor, "drift"].isna().all() and out.loc[~no_factor, "drift"].notna().all()
    assert out.loc[~early, "slope"].notna().all()
    # what happens in the last quarter cannot change any earlier quarter's calibrated chance
    last = bt["period_start"] == starts[-1]
    flipped = bt.assign(
        hit=np.where(last, ~bt["hit"], bt["hit"]), realised_remaining=bt["realised_remaining"] * np.where(last, 3, 1)
    )
    again = rolling_calibration(flipped)
    pd.testing.assert_series_equal(out.loc[~last, "p_calibrated"], again.loc[~last, "p_calibrated"])
    # past quota stays exactly 1
    past = out["closed_to_date"] >= out["quota"]
    assert past.any() and (out.loc[past & ~early, "p_calibrated"] == 1.0).all()
    scored = out[~early]
    hit = scored["hit"].to_numpy(float)
    raw = calibration_summary(scored["p_quota"], hit)["brier"]
    cal = calibration_summary(scored["p_calibrated"], hit)["brier"]
    assert cal < raw
    table = reliability_table(scored["p_calibrated"], scored["hit"], bins=10, min_count=30)
    assert table.loc[table["enough"], "abs_gap"].max() < 0.1, table


def test_the_common_factor_follows_the_last_quarter():
    shocks = [0.0, 0.0, 0.0, -0.6, -0.6]
    bt = _quarterly_backtest(np.random.default_rng(5), n_quarters=5, shocks=shocks)
    cal = learn_quota_calibration(bt[bt["period_start"] < bt["period_start"].max()])
    assert cal.drift == pytest.approx(-0.6, abs=0.1)
    assert cal.spread > 0.2  # the jump from 0 to -0.6 is in the spread
    draws = cal.factors(20_000, seed=1)
    assert np.median(draws) == pytest.approx(np.exp(cal.drift - cal.spread**2 / 2), rel=0.05)


def test_a_degenerate_calibration_falls_back_and_says_why():
    rng = np.random.default_rng(3)
    few = _quarterly_backtest(rng, n_quarters=2)
    cal = learn_quota_calibration(few)
    assert not cal.factor_applied and "2 past quarters" in cal.notes[0]
    # chances that do not separate hits from misses: slope near zero, stage 2 left out
    bt = _quarterly_backtest(rng, n_quarters=6)
    bt["hit"] = rng.uniform(size=len(bt)) < 0.3
    bt["closed_to_date"] = 0.0
    cal = learn_quota_calibration(bt)
    assert cal.recalibration is None
    assert any("barely told hits from misses" in n for n in cal.notes), cal.notes
    p = np.array([0.0, 0.2, 0.9, 1.0])
    np.testing.assert_array_equal(cal.adjust(p), p)  # the model's own values


def _territory_backtest(rng: np.random.Generator, *, n_quarters=10, n=60, model_sd=0.15, territory_sd=0.4):
    """Territory rows of a model that knows each territory's expectation but not its own shock
    (``territory_sd``) nor the quarter's shock all territories share."""
    from scipy import stats

    z = stats.norm.ppf((np.arange(N_POINTS_TEST) + 0.5) / N_POINTS_TEST)
    shocks = rng.normal(0.0, 0.15, n_quarters)
    rows = []
    for k, start in enumerate(pd.date_range("2022-01-01", periods=n_quarters, freq="QS")):
        mu = rng.lognormal(12.0, 0.3, n)
        quota = mu * rng.uniform(0.6, 1.5, n)
        points = mu[:, None] * np.exp(model_sd * z[None, :] - model_sd**2 / 2)
        real = mu * np.exp(shocks[k] + rng.normal(0.0, territory_sd, n) - territory_sd**2 / 2)
        base = dict(period_start=start, period_end=start + pd.offsets.QuarterEnd(0), origin=start, offset_weeks=0)
        for level, scale in (("agent", 0.1), ("territory", 1.0)):  # agents carry the company ratio
            rows.append(
                pd.DataFrame(
                    {
                        "level": level,
                        "entity_id": [f"{level[0]}{i}" for i in range(n)],
                        **base,
                        "quota": quota * scale,
                        "closed_to_date": 0.0,
                        "p_quota": (points >= quota[:, None]).mean(axis=1),
                        "hit": real >= quota,
                        "expected_remaining": mu * scale,
                        "realised_remaining": real * scale,
                        "remaining_points": list(points * scale),
                    }
                )
            )
    return pd.concat(rows, ignore_index=True)


def test_a_territory_shock_the_model_misses_is_learned_as_the_territory_spread():
    bt = _territory_backtest(np.random.default_rng(6))
    cal = learn_quota_calibration(bt)
    assert cal.group_spread == pytest.approx(0.4, abs=0.1) and cal.n_group_rows == 600
    # the total spread of one series' factor adds the company's and the territory's in quadrature
    assert cal.total_spread == pytest.approx(np.hypot(cal.spread, cal.group_spread))
    # factors: series of one territory share G, territories differ, the company factor is common
    f = cal.factors(4000, seed=2, groups=["T1", "T1", "T2"])
    np.testing.assert_array_equal(f[0], f[1])
    assert np.corrcoef(np.log(f[0]), np.log(f[2]))[0, 1] == pytest.approx(cal.spread**2 / cal.total_spread**2, abs=0.05)
    out = rolling_calibration(bt)
    terr = out[(out["level"] == "territory") & out["group_spread"].notna()]
    hit = terr["hit"].to_numpy(float)
    assert calibration_summary(terr["p_calibrated"], hit)["brier"] < calibration_summary(terr["p_quota"], hit)["brier"]
    table = reliability_table(terr["p_calibrated"], terr["hit"], bins=5, min_count=30)
    assert table.loc[table["enough"], "abs_gap"].max() < 0.12, table  # quarters share shocks: bins are noisy
    raw = reliability_table(terr["p_quota"], terr["hit"], bins=5, min_count=30)
    assert raw.loc[raw["enough"], "abs_gap"].max() > 0.15  # the model alone is far too sure
    few = learn_quota_calibration(bt[bt["period_start"] == bt["period_start"].min()].head(60))
    assert few.group_spread is None and any("no territory spread: 0 past territory-quarters" in n for n in few.notes)


def test_territory_rows_get_the_factor_only():
    bt = _quarterly_backtest(np.random.default_rng(4), n_quarters=6)
    terr = bt.groupby(["period_start", "period_end", "origin", "offset_weeks"], as_index=False).agg(
        quota=("quota", "sum"),
        closed_to_date=("closed_to_date", "sum"),
        hit=("hit", "mean"),
        expected_remaining=("expected_remaining", "sum"),
        realised_remaining=("realised_remaining", "sum"),
    )
    terr["hit"] = terr["hit"] > 0.5
    terr["level"], terr["entity_id"], terr["p_quota"] = "territory", "T", 0.5
    terr["remaining_points"] = [np.full(N_POINTS_TEST, q) for q in terr["quota"]]
    out = rolling_calibration(pd.concat([bt, terr], ignore_index=True))
    t = out[(out["level"] == "territory") & out["p_calibrated"].notna()]
    assert len(t) and t["p_calibrated"].between(0, 1).all()
    # before the factor is learned a territory keeps its own chance (no stage 2 for territories)
    assert (t.loc[t["drift"].isna(), "p_calibrated"] == 0.5).all()
    t = t[t["drift"].notna()]
    assert len(t) >= 3
    # the territory's chance is the factor's chance of lifting its points to its quota
    for _, row in t.iterrows():
        expect = chance_with_factor(
            row["remaining_points"][None, :], [row["closed_to_date"]], [row["quota"]], row["drift"], row["spread"]
        )[0]
        assert row["p_calibrated"] == pytest.approx(expect)


def test_rolling_calibration_names_missing_columns():
    with pytest.raises(ConfigError, match="remaining_points"):
        rolling_calibration(pd.DataFrame({"origin": [], "period_end": [], "p_quota": [], "hit": []}))


def _ratio_rows(ratios: list[float]) -> pd.DataFrame:
    """One agent row per quarter from 2023-Q1, realised remaining ``100 exp(r)`` against 100 expected."""
    starts = pd.date_range("2023-01-01", periods=len(ratios), freq="QS")
    return pd.DataFrame(
        {
            "level": "agent",
            "period_start": starts,
            "period_end": starts + pd.offsets.QuarterEnd(0),
            "quota": 100.0,
            "closed_to_date": 0.0,
            "p_quota": 0.5,
            "hit": [bool(i % 2) for i in range(len(ratios))],
            "expected_remaining": 100.0,
            "realised_remaining": 100.0 * np.exp(ratios),
            "remaining_points": [np.linspace(50, 150, 100)] * len(ratios),
        }
    )


def test_a_calibration_before_a_quarter_learns_only_from_the_last_quarters_that_had_ended():
    """Ratios r = 0.9, 0.1, -0.2, 0.3, 5.0 in 2023-Q1..2024-Q1. Before 2024-Q1 with 3 quarters:
    2023-Q2..Q4 only (2023-Q1 is outside the window, 2024-Q1 has not ended), so the drift is the
    last, 0.3, and the spread the root mean square of the changes -0.3 and 0.5: sqrt(0.17)."""
    rows = _ratio_rows([0.9, 0.1, -0.2, 0.3, 5.0])
    assert calibration_window_start("2024-01-01", 3) == pd.Timestamp("2023-03-25")
    cal = learn_calibration_before(rows, "2024-01-01", quarters=3)
    assert cal.n_quarters == 3
    assert cal.drift == pytest.approx(0.3) and cal.spread == pytest.approx(np.sqrt(0.17))
    assert learn_calibration_before(rows, "2023-07-01").drift is None  # two quarters ended: too few
    # a row without a chance is left out: with 4 quarters, 2023-Q1..Q3 give -0.2 and sqrt((0.8^2 + 0.3^2) / 2)
    without = learn_calibration_before(rows.assign(p_quota=[0.5, 0.5, 0.5, np.nan, 0.5]), "2024-01-01", quarters=4)
    assert without.drift == pytest.approx(-0.2) and without.spread == pytest.approx(np.sqrt(0.365))


def test_factor_forecast_multiplies_each_draw_by_the_common_and_territory_factor():
    draws = np.random.default_rng(0).gamma(2.0, 50.0, size=(3, 4, 200))
    ds = np.tile(pd.date_range("2025-01-06", periods=4, freq="W-MON").to_numpy(), (3, 1))
    fc = Forecast.from_draws(draws, unique_ids=["a", "b", "c"], ds=ds, model="m", freq="W-MON")
    cal = QuotaCalibration(-0.1, 0.2, None, 10, 4, group_spread=0.3)
    out = factor_forecast(fc, cal, seed=5, groups={"a": "T1", "b": "T1", "c": "T2"})
    ratio = out.draws / draws
    np.testing.assert_allclose(ratio, ratio[:, :1, :].repeat(4, axis=1))  # one factor per draw, every week
    np.testing.assert_allclose(ratio[0, 0], ratio[1, 0])  # one territory: one factor
    np.testing.assert_allclose(ratio[:, 0], cal.factors(200, seed=5, groups=["T1", "T1", "T2"]))
    assert not np.allclose(ratio[0, 0], ratio[2, 0])
    assert factor_forecast(fc, None, seed=5) is fc
    assert factor_forecast(fc, QuotaCalibration(None, None, None, 0, 0), seed=5) is fc
