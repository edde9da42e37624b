"""Tests of spm_models.models.pipeline_aware: open-pipeline draws plus a share of a model's draws."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spm_models.evaluation.quota.backtest import agent_bookings_frame
from spm_models.exceptions import ConfigError, DataError
from spm_models.models import CalendarBaseline, Mean, PipelineAware, new_deal_share
from spm_models.models.pipeline.forecast import fit_pipeline_model
from spm_models.synthetic.generator import generate_organisation


def _won(created, closed, amount):
    return pd.DataFrame(
        {
            "opportunity_id": [f"d{i}" for i in range(len(amount))],
            "agent_id": "A",
            "created_date": pd.to_datetime(created),
            "close_date": pd.to_datetime(closed),
            "outcome": "won",
            "amount": np.asarray(amount, dtype=float),
        }
    )


def test_new_deal_share_by_hand():
    # as_of Sunday 2024-03-31. Ages in weeks (close Monday - created Monday): 0, 1, 3; amounts 10, 30, 60.
    opps = _won(["2024-03-05", "2024-03-04", "2024-02-26"], ["2024-03-07", "2024-03-12", "2024-03-20"], [10, 30, 60])
    phi = new_deal_share(opps, as_of="2024-03-31", h=5)
    # k=1: age <= 0 -> 10/100; k=2: age <= 1 -> 40/100; k=3: same; k=4, 5: all
    np.testing.assert_allclose(phi, [0.1, 0.4, 0.4, 1.0, 1.0])
    # closes after as_of or before the lookback do not count
    late = pd.concat([opps, _won(["2024-04-01"], ["2024-04-02"], [1000])], ignore_index=True)
    np.testing.assert_allclose(new_deal_share(late, as_of="2024-03-31", h=5), phi)
    with pytest.raises(DataError, match="no deal was won"):
        new_deal_share(opps, as_of="2025-06-01", h=3, lookback_weeks=8)


def test_thinned_draws_keep_a_share_of_the_mean_and_of_the_variance():
    from spm_models.models.pipeline_aware import _thin

    rng = np.random.default_rng(0)
    y = np.where(rng.uniform(size=(1, 3, 100_000)) < 0.5, 0.0, rng.lognormal(8, 1, size=(1, 3, 100_000)))
    phi = np.array([0.1, 0.5, 1.0])
    n = _thin(y, phi, rng)
    assert (n >= 0).all() and (n[0, :, :][y[0] == 0] == 0).all()  # zeros stay zeros
    np.testing.assert_allclose(n.mean(axis=-1)[0] / y.mean(axis=-1)[0], phi, rtol=0.05)
    np.testing.assert_allclose(n.var(axis=-1)[0] / y.var(axis=-1)[0], phi, rtol=0.12)
    np.testing.assert_array_equal(n[0, 2], y[0, 2])  # phi = 1 leaves the draws alone


@pytest.fixture(scope="module")
def org():
    return generate_organisation(30, years=2, seed=6)


def _train(org, end="2024-06-30"):
    frame = agent_bookings_frame(org.dataset)
    frame = frame[frame["ds"] <= pd.Timestamp(end) - pd.Timedelta(days=6)]
    last = frame.groupby("unique_id")["ds"].transform("max")
    return frame[last == last.max()]


def test_draws_are_pipeline_plus_a_share_of_the_model(org):
    t = org.dataset.tables
    train = _train(org)
    model = PipelineAware(model=Mean()).fit(train, opportunities=t["opportunities"], stage_history=t["stage_history"])
    fc = model.predict(6, n_draws=4000)
    assert fc.model == "Pipeline+Mean" and model.as_of_ == pd.Timestamp("2024-06-30")
    base = Mean().fit(train).predict(6, n_draws=4000)
    phi = new_deal_share(t["opportunities"], as_of="2024-06-30", h=6)
    pipe = fit_pipeline_model(t["opportunities"], t["stage_history"], as_of="2024-06-30").expected(
        t["opportunities"][t["opportunities"]["agent_id"].isin(fc.unique_ids)], h=6, unique_ids=list(fc.unique_ids)
    )
    pipe_mean = pipe.pivot(index="agent_id", columns="ds", values="expected_bookings")
    pipe_mean = pipe_mean.reindex(index=fc.unique_ids).fillna(0.0).to_numpy()
    expected = pipe_mean + phi[None, :] * base.draws.mean(axis=2)
    got = fc.draws.mean(axis=2)
    assert np.allclose(got.sum(axis=0), expected.sum(axis=0), rtol=0.03)
    # the first week leans on open deals, later weeks on the model
    assert phi[0] < 0.3 and phi[-1] > phi[0]
    assert (fc.ds[:, 0] == np.datetime64("2024-07-01")).all()


def test_pipeline_makes_the_next_weeks_more_accurate(org):
    """Six origins four weeks apart: against what each agent booked in the next 4 weeks, the
    forecast that knows the open deals has a smaller absolute error than history alone."""
    t = org.dataset.tables
    frame = agent_bookings_frame(org.dataset)
    plain_err, aware_err = [], []
    for end in pd.date_range("2024-03-31", periods=6, freq="28D"):
        train = _train(org, end=end)
        nxt = frame[(frame["ds"] > end) & (frame["ds"] <= end + pd.Timedelta(weeks=4))]
        actual = nxt.pivot(index="unique_id", columns="ds", values="y")
        plain = CalendarBaseline().fit(train).predict(4, n_draws=300)
        aware = (
            PipelineAware(model=CalendarBaseline())
            .fit(train, opportunities=t["opportunities"], stage_history=t["stage_history"])
            .predict(4, n_draws=300)
        )
        y = actual.reindex(index=plain.unique_ids).fillna(0.0).to_numpy()
        plain_err.append(np.abs(plain.draws.mean(axis=2) - y).sum())
        aware_err.append(np.abs(aware.draws.mean(axis=2) - y).sum())
    plain_err, aware_err = np.array(plain_err), np.array(aware_err)
    assert (aware_err < plain_err).sum() >= 5
    assert aware_err.sum() < 0.9 * plain_err.sum()


def test_bad_settings_are_named(org):
    train = _train(org)
    opps = org.dataset.tables["opportunities"]
    with pytest.raises(ConfigError, match="model="):
        PipelineAware(model="Mean").fit(train, opportunities=opps)
    with pytest.raises(ConfigError, match="opportunities="):
        PipelineAware(model=Mean()).fit(train)
    with pytest.raises(ConfigError, match="takes no activities table"):
        PipelineAware(model=Mean()).fit(train, opportunities=opps, activities=org.dataset.tables["activities"])
    with pytest.raises(ConfigError, match="takes no opportunities table"):
        Mean().fit(train, opportunities=opps)
    monthly = (
        train.assign(ds=train["ds"].dt.to_period("M").dt.start_time)
        .groupby(["unique_id", "ds"], as_index=False)["y"]
        .sum()
    )
    with pytest.raises(ConfigError, match="weekly"):
        PipelineAware(model=Mean()).fit(monthly, opportunities=opps)


@pytest.mark.slow
def test_pipeline_aware_p_quota_is_sharper_and_calibrated():
    """200 agents, ten quarters x 0/4/8 weeks in: knowing the open deals makes P(quota) sharper
    (lower Brier score) than bookings history alone, and once recalibrated on the quarters that
    had ended by each origin every bin of at least 30 agent-quarters is within 0.1 of the diagonal."""
    from spm_models.evaluation.quota.backtest import backtest_quota_probabilities
    from spm_models.evaluation.quota.calibration import rolling_calibration
    from spm_models.evaluation.quota.probability import calibration_summary, reliability_table

    big = generate_organisation(200, years=3, seed=3)
    kw = dict(n_draws=400, first_quarter="2023-07-01")
    plain = rolling_calibration(backtest_quota_probabilities(big.dataset, model=CalendarBaseline(), **kw))
    aware = rolling_calibration(
        backtest_quota_probabilities(
            big.dataset,
            model=PipelineAware(model=CalendarBaseline()),
            **kw,
        )
    )
    scored = aware[aware["p_calibrated"].notna()]
    table = reliability_table(scored["p_calibrated"], scored["hit"], bins=10, min_count=30)
    assert table["enough"].sum() >= 8
    assert (table.loc[table["enough"], "abs_gap"] <= 0.1).all(), table
    brier = lambda f, col: calibration_summary(f[col], f["hit"].astype(float))["brier"]  # noqa: E731
    p_scored = plain[plain["p_calibrated"].notna()]
    assert brier(scored, "p_quota") < brier(p_scored, "p_quota") - 0.02
    assert brier(scored, "p_calibrated") < brier(p_scored, "p_calibrated") - 0.02
