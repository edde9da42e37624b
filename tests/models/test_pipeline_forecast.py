"""Tests of spm_models.models.pipeline.forecast: hand-computed life tables, no leakage, accuracy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spm_models.evaluation.quota.probability import reliability_table
from spm_models.exceptions import ConfigError, DataError, DataValidationError
from spm_models.models.pipeline.forecast import fit_pipeline_model, open_at
from spm_models.synthetic.generator import SyntheticParams, generate_organisation

# Weeks start on Monday; 2024-01-01 is a Monday, so week k starts 2024-01-01 + 7k and
# as_of 2024-02-04 (a Sunday) closes week 4.
AS_OF = "2024-02-04"


def _tiny() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "opportunity_id": ["d1", "d2", "d3", "d4", "d5", "d6"],
            "agent_id": ["A", "A", "A", "A", "B", "B"],
            "created_date": pd.to_datetime(
                ["2024-01-01", "2024-01-01", "2024-01-08", "2024-01-15", "2024-02-01", "2024-02-06"]
            ),
            "outcome": ["won", "lost", "won", "open", "open", "open"],
            "close_date": pd.to_datetime(["2024-01-17", "2024-01-10", "2024-01-24", None, None, None]),
            "amount": [10.0, 20.0, 30.0, np.nan, 1000.0, 500.0],
        }
    )


POOLED = dict(age_edges=[0], stage_age_edges=[0], prior_strength=0.0, per_agent=False, calendar=False)


def test_hand_computed_life_table():
    # Landmark records (deal, landmark week m, what happened j weeks later):
    #   d1 (created w0, won w2): m=0 won at j=2; m=1 won at j=1
    #   d2 (created w0, lost w1): m=0 lost at j=1
    #   d3 (created w1, won w3): m=1 won at j=2; m=2 won at j=1
    #   d4 (created w2, open):   m=2 censored after 2; m=3 censored after 1
    # j=1: 7 at risk, 2 won, 1 lost -> h_win = 2/7, h_loss = 1/7, S_1 = 4/7
    # j=2: 3 at risk (d1 m0, d3 m1, d4 m2), 2 won -> P(won in week 2) = 4/7 * 2/3 = 8/21
    # j>=3: nobody at risk -> hazard 0, S stays 4/21; the tail wins at 2/3 (2 of 3 closed deals)
    m = fit_pipeline_model(_tiny(), as_of=AS_OF, **POOLED)
    assert m.n_records == 7
    assert m.as_of == pd.Timestamp(AS_OF)
    exp = m.expected(_tiny(), h=3)
    # d4 has no amount: agent A won only 2 deals (< 5), so the pooled mean won amount (10+30)/2 = 20
    # d6 was created after as_of and is ignored
    a = exp[exp["agent_id"] == "A"]["expected_bookings"].to_numpy()
    b = exp[exp["agent_id"] == "B"]["expected_bookings"].to_numpy()
    np.testing.assert_allclose(a, [20 * 2 / 7, 20 * 8 / 21, 0.0])
    np.testing.assert_allclose(b, [1000 * 2 / 7, 1000 * 8 / 21, 0.0])
    assert list(exp["ds"].unique()) == list(pd.to_datetime(["2024-02-05", "2024-02-12", "2024-02-19"]))
    deals = m.deal_probabilities(_tiny(), h=3).set_index("opportunity_id")
    assert list(deals.index) == ["d4", "d5"]
    np.testing.assert_allclose(deals["p_win"], 2 / 7 + 8 / 21 + 4 / 21 * 2 / 3)
    np.testing.assert_allclose(deals["p_close_within_h"], 1 - 4 / 21)
    assert deals.loc["d4", "amount_imputed"] and deals.loc["d4", "amount"] == 20.0
    assert list(deals["age_periods"]) == [2, 0]


def test_as_of_moves_back_to_the_last_complete_week():
    # Wednesday 2024-02-07: week 5 is incomplete, so the model stands at Sunday 2024-02-04
    m = fit_pipeline_model(_tiny(), as_of="2024-02-07", **POOLED)
    assert m.as_of == pd.Timestamp(AS_OF)
    assert m.future_ds(2)[0] == np.datetime64("2024-02-05")
    assert m.n_records == 7


def test_stage_at_as_of_comes_from_history_known_then():
    opps = _tiny()
    hist = pd.DataFrame(
        {
            "opportunity_id": ["d4", "d4", "d4", "d5", "d1"],
            "stage": ["prospecting", "qualification", "proposal", "prospecting", "prospecting"],
            # d4's proposal entry is after as_of: at as_of it is in qualification since week 3
            "entered_date": pd.to_datetime(["2024-01-15", "2024-01-24", "2024-02-20", "2024-02-01", "2024-01-01"]),
        }
    )
    m = fit_pipeline_model(opps, hist, as_of=AS_OF, **POOLED)
    deals = m.deal_probabilities(opps, h=2).set_index("opportunity_id")
    assert deals.loc["d4", "stage"] == "qualification"
    assert deals.loc["d4", "periods_in_stage"] == 4 - 3
    assert deals.loc["d5", "stage"] == "prospecting"
    # without history the stage is unknown
    deals = fit_pipeline_model(opps, as_of=AS_OF, **POOLED).deal_probabilities(opps, h=2)
    assert deals["stage"].isna().all() and (deals["periods_in_stage"] == -1).all()


def test_open_at():
    mask = open_at(_tiny(), AS_OF)
    assert mask.tolist() == [False, False, False, True, True, False]
    assert open_at(_tiny(), "2024-01-15").tolist() == [True, False, True, True, False, False]


def test_bad_inputs_are_reported():
    with pytest.raises(DataValidationError, match="amount"):
        fit_pipeline_model(_tiny().drop(columns="amount"), as_of=AS_OF)
    with pytest.raises(DataError, match="no opportunity was won or lost"):
        fit_pipeline_model(_tiny(), as_of="2024-01-07")
    with pytest.raises(ConfigError, match="freq"):
        fit_pipeline_model(_tiny(), as_of=AS_OF, freq="D")
    bad = _tiny()
    bad.loc[0, "outcome"] = "maybe"
    bad.loc[2, "close_date"] = pd.NaT
    with pytest.raises(DataValidationError) as err:
        fit_pipeline_model(bad, as_of=AS_OF)
    assert len(err.value.problems) == 2


def test_draws_sum_deals_and_match_the_expectation():
    m = fit_pipeline_model(_tiny(), as_of=AS_OF, **POOLED)
    fc = m.draws(_tiny(), h=3, n_draws=20_000, seed=3, unique_ids=["B", "A", "C"])
    assert list(fc.unique_ids) == ["B", "A", "C"] and fc.draws.shape == (3, 3, 20_000)
    # a deal books its whole amount or nothing, at most once over the horizon
    assert set(np.unique(fc.draws[0])) <= {0.0, 1000.0}
    assert (fc.draws[0].sum(axis=0) <= 1000.0).all()
    assert (fc.draws[2] == 0).all()
    se = 1000 * np.sqrt(2 / 7 * 5 / 7 / 20_000)
    assert abs(fc.draws[0, 0].mean() - 1000 * 2 / 7) < 4 * se
    again = m.draws(_tiny(), h=3, n_draws=20_000, seed=3, unique_ids=["B", "A", "C"])
    np.testing.assert_array_equal(fc.draws, again.draws)
    with pytest.raises(DataError, match="not among the requested series"):
        m.draws(_tiny(), h=3, n_draws=10, unique_ids=["B"])


def test_monthly_grid():
    m = fit_pipeline_model(_tiny(), as_of="2024-02-10", freq="MS", **POOLED)
    # 2024-02 is incomplete: the model stands at 2024-01-31 and forecasts from February
    assert m.as_of == pd.Timestamp("2024-01-31")
    assert m.future_ds(2).tolist() == list(pd.to_datetime(["2024-02-01", "2024-03-01"]).to_numpy())


# --------------------------------------------------------------------------- synthetic organisation


def test_no_leakage_of_what_happened_after_as_of(small_org):
    t = small_org.dataset.tables
    opps, hist = t["opportunities"].copy(), t["stage_history"].copy()
    as_of = pd.Timestamp("2023-12-31")
    base = fit_pipeline_model(opps, hist, as_of=as_of)
    # rewrite the future: flip outcomes and move the closes of deals closing after as_of,
    # add stage entries after as_of, and add deals created after as_of
    later = opps["close_date"] > as_of
    changed = opps.copy()
    changed.loc[later & (opps["outcome"] == "won"), "outcome"] = "lost"
    changed.loc[later & (opps["outcome"] == "lost"), "outcome"] = "won"
    changed.loc[later, "close_date"] = changed.loc[later, "close_date"] + pd.Timedelta(days=21)
    new = opps.head(50).assign(
        opportunity_id=[f"N{i}" for i in range(50)],
        created_date=as_of + pd.Timedelta(days=3),
        outcome="won",
        close_date=as_of + pd.Timedelta(days=10),
    )
    changed = pd.concat([changed, new], ignore_index=True)
    extra = hist[hist["entered_date"] > as_of].assign(entered_date=as_of + pd.Timedelta(days=1))
    changed_hist = pd.concat(
        [hist[hist["entered_date"] <= as_of], extra.drop_duplicates(["opportunity_id", "stage"])], ignore_index=True
    )
    assert (changed["outcome"] != opps.reindex(changed.index)["outcome"]).sum() > 100
    leak = fit_pipeline_model(changed, changed_hist, as_of=as_of)
    np.testing.assert_array_equal(base.cif_win, leak.cif_win)
    np.testing.assert_array_equal(base.cif_loss, leak.cif_loss)
    pd.testing.assert_series_equal(base.agent_ratio, leak.agent_ratio)
    pd.testing.assert_frame_equal(base.expected(opps, h=13), leak.expected(changed, h=13))


@pytest.fixture(scope="module")
def stationary():
    """400 agents, 3 years, with the market effect on win rates switched off.

    The pipeline model learns from the past; with the default planted market effect the
    win rate drifts with a market index (a weekly AR(1) with 20-week memory), which no
    model of the pipeline alone can foresee. Here win rates vary by agent, stage,
    activity and the quarter-end push, but not with the market, so the estimator itself
    is checked: it must be unbiased within sampling error.
    """
    org = generate_organisation(400, years=3, seed=0, params=SyntheticParams(beta_market=0.0))
    t = org.dataset.tables
    out = []
    for as_of in pd.to_datetime(["2024-03-31", "2024-06-30", "2024-09-29", "2024-12-29"]):
        model = fit_pipeline_model(t["opportunities"], t["stage_history"], as_of=as_of)
        open_opps = t["opportunities"][open_at(t["opportunities"], as_of)]
        out.append((as_of, model, open_opps))
    return out


@pytest.mark.parametrize("h", [4, 13])
def test_expected_bookings_match_what_the_open_deals_booked(stationary, h):
    pred_total = act_total = var_total = 0.0
    for as_of, model, open_opps in stationary:
        deals = model.deal_probabilities(open_opps, h=h)
        end = as_of + pd.Timedelta(weeks=h)
        booked = open_opps["amount"].where((open_opps["outcome"] == "won") & (open_opps["close_date"] <= end), 0.0)
        pred, act = deals["expected_bookings_within_h"].sum(), booked.sum()
        p = deals["p_win_within_h"].to_numpy()
        # sampling sd of the realised total if the model is right: deals win independently
        sd = float(np.sqrt((deals["amount"].to_numpy() ** 2 * p * (1 - p)).sum()))
        assert abs(pred - act) < 3 * sd, (as_of, h, pred, act, sd)
        pred_total, act_total, var_total = pred_total + pred, act_total + act, var_total + sd**2
        # the per-agent frame adds up to the per-deal numbers
        assert model.expected(open_opps, h=h)["expected_bookings"].sum() == pytest.approx(pred)
    # pooled over the four dates: within 3 sampling sd (about 2.5% here) and within 5%
    assert abs(pred_total - act_total) < 3 * np.sqrt(var_total)
    assert abs(pred_total / act_total - 1) < 0.05


def test_win_probability_is_calibrated_by_stage(stationary):
    frames = []
    for _, model, open_opps in stationary:
        deals = model.deal_probabilities(open_opps, h=13)
        frames.append(deals.assign(won=(open_opps["outcome"] == "won").to_numpy()))
    deals = pd.concat(frames).drop_duplicates("opportunity_id")  # one prediction per deal
    by_stage = deals.groupby("stage").agg(n=("won", "size"), p=("p_win", "mean"), rate=("won", "mean"))
    assert len(by_stage) == 5 and (by_stage["n"] > 500).all()
    se = np.sqrt(by_stage["p"] * (1 - by_stage["p"]) / by_stage["n"])
    assert ((by_stage["rate"] - by_stage["p"]).abs() < 3 * se + 0.01).all(), by_stage
    # the stage carries the signal: later stages win more often
    assert by_stage.loc["prospecting", "p"] < by_stage.loc["qualification", "p"] < by_stage.loc["negotiation", "p"]
    table = reliability_table(deals["p_win"], deals["won"], bins=10, min_count=100)
    assert (table.loc[table["enough"], "abs_gap"] < 0.05).all(), table
