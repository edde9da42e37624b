"""Rolling-origin backtest and coherent aggregation of draws."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spm_models.evaluation.backtest import backtest
from spm_models.evaluation.metrics import SCORE_COLUMNS, score
from spm_models.exceptions import DataError
from spm_models.models import Forecast, ForecastModel, Mean, SeasonalNaive, concat_forecasts
from spm_models.models.aggregate import aggregate_draws

START = pd.Timestamp("2024-01-01")  # Monday


def _frame(T: int = 40) -> pd.DataFrame:
    """Two weekly series; y encodes the week number so leakage is visible: a = t, b = 100 + 2t."""
    ds = pd.date_range(START, periods=T, freq="W-MON")
    t = np.arange(T, dtype=float)
    return pd.concat(
        [
            pd.DataFrame({"unique_id": "a", "ds": ds, "y": t}),
            pd.DataFrame({"unique_id": "b", "ds": ds, "y": 100 + 2 * t}),
        ],
        ignore_index=True,
    )


class _Last(ForecastModel):
    """Deterministic test model: every draw is the last training value."""

    def _fit_panel(self, panel):
        self.last_ = panel.y[:, -1].copy()
        return np.full(panel.n_series, "", dtype=object)

    def _predict_panel(self, h, *, ds, n_draws, rng):
        return np.broadcast_to(self.last_[:, None, None], (len(self.last_), h, n_draws)).copy()


def test_origins_are_counted_back_from_the_end():
    res = backtest(_Last(), _frame(40), h=4, n_origins=3, n_draws=5)
    # 40 weeks (index 0..39): last origin 39 - 4 = 35, then 31, 27
    expected = [START + pd.Timedelta(weeks=w) for w in (27, 31, 35)]
    assert list(res.origins) == expected
    assert sorted(res.forecasts["origin"].unique()) == expected
    assert res.model == "_Last" and res.h == 4 and res.freq == "W-MON"
    assert len(res.folds) == 3


def test_each_origin_is_fitted_only_on_data_up_to_the_origin_and_scored_on_what_follows():
    res = backtest(_Last(), _frame(40), h=4, n_origins=3, step=2, n_draws=5)
    f = res.forecasts
    assert list(f.columns[:5]) == ["origin", "unique_id", "ds", "step", "y"]
    for origin in res.origins:
        w = (origin - START).days // 7
        rows = f[(f["origin"] == origin) & (f["unique_id"] == "a")]
        # the forecast is the value at the origin: nothing after the origin was seen
        assert (rows["mean"] == w).all()
        assert rows["step"].tolist() == [1, 2, 3, 4]
        assert rows["ds"].tolist() == [origin + pd.Timedelta(weeks=k) for k in (1, 2, 3, 4)]
        assert rows["y"].tolist() == [w + 1.0, w + 2.0, w + 3.0, w + 4.0]
    # origins two weeks apart: 35, 33, 31
    assert [(o - START).days // 7 for o in res.origins] == [31, 33, 35]


def test_scores_per_origin_match_metrics_score():
    frame = _frame(40)
    res = backtest(_Last(), frame, h=4, n_origins=2, n_draws=5)
    assert list(res.scores.columns) == ["origin", *SCORE_COLUMNS]
    assert len(res.scores) == 2 * 2
    origin = res.origins[0]
    train = frame[frame["ds"] <= origin]
    actual = frame[(frame["ds"] > origin) & (frame["ds"] <= origin + pd.Timedelta(weeks=4))]
    expected = score(res.folds[0], actual, train=train)
    got = res.scores[res.scores["origin"] == origin].drop(columns="origin").reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected)
    # series a rises by 1 a week: errors 1, 2, 3, 4 -> MAE 2.5; naive scale 1 -> MASE 2.5
    a = got.set_index("unique_id").loc["a"]
    assert a["mae"] == pytest.approx(2.5) and a["mase"] == pytest.approx(2.5)
    assert a["mean_error"] == pytest.approx(-2.5)
    summary = res.summary()
    assert summary["n"].iloc[0] == 2 * 2 * 4


def test_backtest_refits_a_clone_and_leaves_the_model_untouched():
    model = Mean(window=4)
    res = backtest(model, _frame(40), h=4, n_origins=2, n_draws=20)
    assert not hasattr(model, "seed_")
    assert res.forecasts["model"].eq("Mean").all()


def test_too_little_history_is_a_data_error_that_says_what_is_needed():
    with pytest.raises(DataError, match=r"cover 20 periods.*need 28"):
        backtest(_Last(), _frame(20), h=4, n_origins=3, min_train=16)
    with pytest.raises(DataError, match="h must be"):
        backtest(_Last(), _frame(20), h=0, n_origins=1)


# ------------------------------------------------------------------ aggregate_draws


def _children(seed: int = 0) -> Forecast:
    rng = np.random.default_rng(seed)
    ds = np.array([pd.date_range("2024-04-01", periods=3, freq="W-MON").to_numpy()] * 4)
    draws = rng.gamma(0.7, 50.0, size=(4, 3, 2000))
    return Forecast.from_draws(draws, unique_ids=["ag1", "ag2", "ag3", "ag4"], ds=ds, model="M", freq="W-MON")


def test_parent_mean_is_the_sum_of_child_means_and_quantiles_come_from_summed_draws():
    fc = _children()
    mapping = {"ag1": "north", "ag2": "north", "ag3": "south", "ag4": "south"}
    parent = aggregate_draws(fc, mapping)
    assert list(parent.unique_ids) == ["north", "south"]
    np.testing.assert_array_equal(parent.draws[0], fc.draws[0] + fc.draws[1])
    q = parent.quantiles.set_index(["unique_id", "ds"])
    child = fc.quantiles.assign(parent=fc.quantiles["unique_id"].map(mapping))
    np.testing.assert_allclose(
        q["mean"].to_numpy(), child.groupby(["parent", "ds"])["mean"].sum().to_numpy(), rtol=1e-12
    )
    summed = fc.draws[2] + fc.draws[3]
    np.testing.assert_allclose(q.loc["south", "q0.9"].to_numpy(), np.quantile(summed, 0.9, axis=-1))
    # independent children: the sum of upper quantiles overstates the parent's upper quantile
    sum_of_q = child.groupby(["parent", "ds"])["q0.975"].sum().to_numpy()
    assert np.all(q["q0.975"].to_numpy() < sum_of_q)


def test_aggregation_up_two_levels_is_coherent():
    fc = _children()
    territory = aggregate_draws(fc, {"ag1": "north", "ag2": "north", "ag3": "south", "ag4": "south"})
    company = aggregate_draws(territory, {"north": "acme", "south": "acme"})
    direct = aggregate_draws(fc, dict.fromkeys(["ag1", "ag2", "ag3", "ag4"], "acme"))
    np.testing.assert_allclose(company.draws, direct.draws)
    everything = concat_forecasts([fc, territory, company])
    assert list(everything.unique_ids) == ["ag1", "ag2", "ag3", "ag4", "north", "south", "acme"]
    assert len(everything.quantiles) == 7 * 3


def test_aggregation_flags_parents_with_fallen_back_children():
    fc = _children()
    fc = Forecast.from_draws(
        fc.draws,
        unique_ids=fc.unique_ids,
        ds=fc.ds,
        model="M",
        freq="W-MON",
        series_model=["M", "Mean", "M", "M"],
        reason=["", "too short", "", ""],
    )
    parent = aggregate_draws(fc, {"ag1": "north", "ag2": "north", "ag3": "south", "ag4": "south"})
    fb = parent.fallback.set_index("unique_id")
    assert fb.loc["north", "fallback"] and "1 of 2 child series fell back: ag2" in fb.loc["north", "reason"]
    assert not fb.loc["south", "fallback"]


def test_aggregation_rejects_orphans_and_misaligned_children():
    fc = _children()
    with pytest.raises(DataError, match="no parent"):
        aggregate_draws(fc, {"ag1": "north"})
    ds = fc.ds.copy()
    ds[1] = ds[1] + np.timedelta64(7, "D")
    shifted = Forecast.from_draws(fc.draws, unique_ids=fc.unique_ids, ds=ds, model="M", freq="W-MON")
    with pytest.raises(DataError, match="north.*different periods"):
        aggregate_draws(shifted, {"ag1": "north", "ag2": "north", "ag3": "south", "ag4": "south"})


@settings(max_examples=30, deadline=None)
@given(parents=st.lists(st.sampled_from(["p1", "p2", "p3"]), min_size=1, max_size=8), seed=st.integers(0, 2**16))
def test_parent_draws_always_sum_their_children(parents, seed):
    rng = np.random.default_rng(seed)
    n = len(parents)
    uids = [f"c{i}" for i in range(n)]
    ds = np.array([pd.date_range("2024-04-01", periods=2, freq="W-MON").to_numpy()] * n)
    fc = Forecast.from_draws(rng.gamma(0.5, 10.0, (n, 2, 30)), unique_ids=uids, ds=ds, model="M", freq="W-MON")
    agg = aggregate_draws(fc, dict(zip(uids, parents)))
    assert list(agg.unique_ids) == sorted(set(parents))
    for p, d in zip(agg.unique_ids, agg.draws):
        kids = [i for i, q in enumerate(parents) if q == p]
        np.testing.assert_allclose(d, fc.draws[kids].sum(axis=0))
    np.testing.assert_allclose(agg.draws.sum(axis=0), fc.draws.sum(axis=0))


def test_bottom_up_of_jointly_bootstrapped_seasonal_naive_is_the_direct_forecast_of_the_total():
    # seasonal-naive errors are linear: the total's error in week t is the sum of its children's.
    # With one shared week per draw the summed child draws are draws of the total's own model;
    # drawn independently, the sums take values the total never had.
    rng = np.random.default_rng(4)
    T, m = 40, 4
    ds = pd.date_range(START, periods=T, freq="W-MON")
    y = rng.integers(0, 50, size=(3, T)).astype(float)
    kids = pd.concat([pd.DataFrame({"unique_id": f"ag{i}", "ds": ds, "y": y[i]}) for i in range(3)], ignore_index=True)
    total = pd.DataFrame({"unique_id": "acme", "ds": ds, "y": y.sum(axis=0)})
    direct = SeasonalNaive(season_length=m).fit(total)
    possible = direct.last_season_[0, :, None] + direct.errors_[0][None, :]  # (step k, week t)
    mapping = {f"ag{i}": "acme" for i in range(3)}
    for joint in (True, False):
        fc = SeasonalNaive(season_length=m, joint_bootstrap=joint).fit(kids).predict(m, n_draws=4000)
        up = aggregate_draws(fc, mapping).draws[0]
        inside = all(np.isin(up[k], possible[k]).all() for k in range(m))
        assert inside is joint
        if joint:
            # each of the T - m weeks of the total's errors is drawn equally often
            values, counts = np.unique(up[0], return_counts=True)
            expected = np.array([np.mean(possible[0] == v) for v in values])
            np.testing.assert_allclose(counts / up.shape[1], expected, atol=0.012)


def test_backtest_passes_extra_columns_to_the_model_at_every_origin():
    """Regressor and group columns must reach ``fit`` (they used to be dropped)."""
    from spm_models.models.baselines import Mean

    seen = []

    class Recorder(Mean):
        def fit(self, frame):
            seen.append(sorted(frame.columns))
            assert frame["x"].notna().all()
            return super().fit(frame)

    ds = pd.date_range("2024-01-01", periods=30, freq="W-MON")
    frame = pd.DataFrame({"unique_id": "a", "ds": ds, "y": np.arange(30.0), "x": np.arange(30.0) * 2, "group": "T1"})
    backtest(Recorder(), frame, h=4, n_origins=2)
    assert len(seen) == 2
    assert all(cols == ["ds", "group", "unique_id", "x", "y"] for cols in seen)
