"""spm_models.review.recalibration: agents' P(quota) adjusted by the review's own past quarters."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from spm_models.data.dataset import Dataset
from spm_models.data.validation import validate
from spm_models.evaluation.quota.backtest import quarter_offset_weeks
from spm_models.evaluation.quota.calibration import QuotaCalibration, Recalibration
from spm_models.exceptions import ConfigError, ModelError
from spm_models.models import CalendarBaseline
from spm_models.review import monthly, views
from spm_models.review import outlook as ol
from spm_models.review import recalibration as rc
from spm_models.review.artifacts import build_artifacts
from spm_models.review.settings import ReviewConfig
from spm_models.synthetic.generator import generate_organisation

MONTH = "2024-11"


@pytest.fixture(scope="module")
def data():
    # Not the shared small organisation: 12 agents have enough past agent-quarters for a
    # recalibration at a low threshold (30); its 6 agents have 29. The case of too little
    # history needs its own settings (two past quarters), so it is not the shared review run.
    return validate(generate_organisation(12, years=2, seed=2).dataset)


def _build(root, ds, config):
    folder = root / MONTH / "artifacts"
    info = build_artifacts(ds, month=MONTH, out_dir=folder, config=config)
    return folder, info, pd.read_parquet(folder / "outlook.parquet")


@pytest.fixture(scope="module")
def enough(tmp_path_factory, data):
    """Enough history for both stages: a low threshold so a 12-agent organisation's past quarters suffice."""
    return _build(
        tmp_path_factory.mktemp("enough"), data, ReviewConfig(model="CalendarBaseline", recalibration_min_rows=30)
    )


@pytest.fixture(scope="module")
def too_little(tmp_path_factory, data):
    """Two past quarters (too few for the common factor) and the default 200 agent-quarters for stage 2."""
    return _build(
        tmp_path_factory.mktemp("little"), data, ReviewConfig(model="CalendarBaseline", recalibration_quarters=2)
    )


def test_enough_history_adjusts_every_level_and_keeps_the_raw_value(enough, data):
    folder, info, out = enough
    r = info["quota_recalibration"]
    assert r["applied"] and r["factor_applied"] and r["logistic_applied"]
    # two territories: too few territory-quarters for their own spread, and the run says so
    assert r["territory_spread"] is None and r["notes"] == [
        f"no territory spread: {r['n_territory']} past territory-quarters with both outcomes, at least 30 are needed"
    ]
    assert r["n"] >= 30 and 0 < r["n_hits"] < r["n"] and r["spread"] > 0
    cal = ol.review_calendar(MONTH, data_end=ol.data_last_day(data))
    assert r["offset_weeks"] == quarter_offset_weeks(cal.as_of, cal.forecast_quarter) == 8
    # the quarters it learned from had all ended by the review date, and are the backtest's
    every = pd.read_parquet(folder / "quota_backtest.parquet")
    assert set(every["level"]) == {"agent", "territory"}
    rows, terr = every[every["level"] == "agent"], every[every["level"] == "territory"]
    assert len(rows) == r["n"] and int(rows["hit"].sum()) == r["n_hits"] and set(every["offset_weeks"]) == {8}
    assert len(terr) == 2 * rows["period_start"].nunique() and r["n_territory"] <= len(terr)
    assert rows["period_end"].max() <= cal.as_of
    assert r["quarters"] == [f"{d.year}-Q{d.quarter}" for d in sorted(rows["period_start"].unique())]
    # the common factor is the log-ratio of the last quarter's realised to expected remaining bookings
    last = rows[rows["period_start"] == rows["period_start"].max()]
    assert r["drift"] == pytest.approx(np.log(last["realised_remaining"].sum() / last["expected_remaining"].sum()))
    # every level moves (the factor scales the scenarios before they are summed) ...
    for level in ("agent", "territory", "company"):
        sub = out[(out["level"] == level) & ~out["reached"]]
        assert (sub["p_quota"] - sub["p_quota_raw"]).abs().max() > 0.01, level
    # ... and an agent already at or above quota keeps exactly 1, shown as reached
    agents = out[out["level"] == "agent"]
    past = agents["closed_to_date"] >= agents["quota"]
    assert past.any() and (agents.loc[past, "p_quota"] == 1.0).all() and agents.loc[past, "reached"].all()
    assert not agents.loc[~past, "reached"].any()


def test_enough_history_notes_and_what_the_reports_show(enough):
    folder, info, out = enough
    r = info["quota_recalibration"]
    agents = out[out["level"] == "agent"].set_index("unique_id")
    me = agents.index[agents["quota"].notna() & ~agents["reached"]][0]
    v = views.agent_view(folder, me)
    assert "checked against past quarters" in v.quota_note
    assert f"as {r['n']} past agent-quarters ({r['quarters'][0]} to {r['quarters'][-1]}) showed" in v.quota_note
    assert "reached (100%)" in v.quota_note
    assert v.outlook["p_quota"].iloc[0] == agents.loc[me, "p_quota"]
    t = views.territory_view(folder, "T01")
    assert "Territory and company chances come from the agents' scaled scenarios" in t.quota_note
    table = t.agents.set_index("agent_id")["p_quota"]  # the territory's agent table shows the adjusted value
    np.testing.assert_allclose(table, agents.loc[table.index, "p_quota"])
    assert "checked against past quarters" in monthly.monthly_view(folder).quota_note


def test_too_little_history_keeps_raw_and_says_why(too_little):
    folder, info, out = too_little
    r = info["quota_recalibration"]
    assert not r["applied"] and r["drift"] is None and r["slope"] is None
    assert r["notes"][0] == "no common correction: 2 past quarters, at least 3 are needed"
    assert r["notes"][1].startswith("no territory spread")
    assert r["notes"][2].startswith(f"not adjusted by past hits and misses: {r['n']} past agent-quarters")
    np.testing.assert_array_equal(out["p_quota"], out["p_quota_raw"])
    stored = json.loads((folder / "run.json").read_text())
    assert stored["quota_recalibration"] == r
    me = out.loc[(out["level"] == "agent") & out["quota"].notna(), "unique_id"].iloc[0]
    note = views.agent_view(folder, me).quota_note
    assert note.startswith("These chances are the model's own, not adjusted by past results: no common correction")


def test_switched_off_and_no_quotas(tmp_path, data):
    config = ReviewConfig(model="CalendarBaseline", recalibrate=False)
    _, info, _ = _build(tmp_path / "off", data, config)
    assert not info["quota_recalibration"]["applied"] and "switched off" in info["quota_recalibration"]["notes"][0]
    tables = {k: v for k, v in data.tables.items() if k != "targets"}
    folder, info, out = _build(tmp_path / "none", Dataset(tables=tables, source="no quotas"), config)
    assert info["quota_recalibration"] is None and out["p_quota"].isna().all()
    assert views.agent_view(folder, out.loc[out["level"] == "agent", "unique_id"].iloc[0]).quota_note == ""


def _fake_rows(hits, p=None, quarters=1):
    """Backtest rows of ``quarters`` past quarters with the given outcomes; the forecast was right on average."""
    n = len(hits)
    p = np.linspace(0.05, 0.95, n) if p is None else np.asarray(p, dtype=float)
    starts = pd.date_range("2023-01-01", periods=quarters, freq="QS")
    start = np.repeat(starts, int(np.ceil(n / quarters)))[:n]
    return pd.DataFrame(
        {
            "level": "agent",
            "entity_id": [str(i) for i in range(n)],
            "period_start": start,
            "period_end": start + pd.offsets.QuarterEnd(0),
            "origin": start - pd.Timedelta(days=1),
            "offset_weeks": 0,
            "quota": 100.0,
            "closed_to_date": 0.0,
            "p_quota": p,
            "expected_attainment": p,
            "attainment": np.where(hits, 1.2, 0.5),
            "hit": np.asarray(hits, dtype=bool),
            "pit": 0.5,
            "expected_remaining": 100.0,
            "realised_remaining": 100.0,
            "remaining_points": [np.linspace(100 * (1 - q), 100 * (2 - q), 100) for q in p],
        }
    )


def test_one_outcome_class_or_a_failing_model_is_recorded_not_raised(monkeypatch, data):
    cal = ol.review_calendar(MONTH, data_end="2024-12-29")
    config = ReviewConfig(model="CalendarBaseline", recalibration_min_rows=10)
    monkeypatch.setattr(rc, "calibration_rows", lambda *a, **k: _fake_rows([False] * 40))
    r, rows = rc.learn_recalibration(data, CalendarBaseline(), cal, config)
    assert not r.applied and len(rows) == 40
    assert any(
        "40 past agent-quarters with 0 hits; at least 10 with both outcomes are needed" in n
        for n in r.calibration.notes
    )

    def boom(*a, **k):
        raise ModelError("the model could not be fitted")

    monkeypatch.setattr(rc, "calibration_rows", boom)
    r, rows = rc.learn_recalibration(data, CalendarBaseline(), cal, config)
    assert not r.applied and "the model could not be fitted" in r.calibration.notes[0] and rows.empty


def test_a_degenerate_fit_falls_back_to_the_models_own_chances_with_its_note(monkeypatch, tmp_path, data):
    """A quarter-end review whose past chances did not separate hits from misses (slope near zero)
    would give every agent the same number; instead each keeps the model's own, and every report says why."""
    rng = np.random.default_rng(0)
    hits = rng.uniform(size=400) < 0.35
    rows = _fake_rows(hits, p=rng.uniform(0.02, 0.98, size=400), quarters=2)  # chances unrelated to outcomes
    monkeypatch.setattr(rc, "calibration_rows", lambda *a, **k: rows)
    folder = tmp_path / "2024-09" / "artifacts"
    info = build_artifacts(data, month="2024-09", out_dir=folder, config=ReviewConfig(model="CalendarBaseline"))
    assert info["calendar"]["forecast_quarter"] == "2024-10-01"  # a quarter end: the next quarter's chances
    r = info["quota_recalibration"]
    assert not r["applied"] and r["slope"] is None
    assert any("barely told hits from misses" in n and "about the same chance" in n for n in r["notes"])
    out = pd.read_parquet(folder / "outlook.parquet")
    np.testing.assert_array_equal(out["p_quota"], out["p_quota_raw"])
    agents = out[(out["level"] == "agent") & out["quota"].notna()]
    assert agents["p_quota"].nunique() > 3  # not one number for everybody
    note = views.agent_view(folder, agents["unique_id"].iloc[0]).quota_note
    assert "model's own" in note and "barely told hits from misses" in note


def test_recalibrate_outlook_by_hand():
    """``logit p~ = 0 + 0.5 logit p``: 0.9 -> 1 / (1 + 9 ** -0.5) = 0.75, 0.1 -> 0.25, 0.5 -> 0.5;
    0 and 1 (booked at or above quota) stay."""
    out = pd.DataFrame(
        {
            "unique_id": list("abcdef"),
            "p_quota": [0.1, 0.5, 0.9, np.nan, 1.0, 0.0],
            "quota": 1.0,
            "closed_to_date": [0, 0, 0, 0, 1.5, 0],
        }
    )
    raw = out.assign(p_quota=[0.2, 0.4, 0.8, np.nan, 1.0, 0.0])
    stage2 = QuotaCalibration(None, None, Recalibration(0.0, 0.5, 100), 100, 4)
    r = rc.QuotaRecalibration(stage2, 40, ("2024-Q1",), 4, 300, 0.0)
    got = rc.recalibrate_outlook(out, raw, r)
    assert list(got.columns) == ["unique_id", "p_quota", "p_quota_raw", "reached", "quota", "closed_to_date"]
    np.testing.assert_allclose(got["p_quota"], [0.25, 0.5, 0.75, np.nan, 1.0, 0.0])
    np.testing.assert_array_equal(got["p_quota_raw"], raw["p_quota"])
    assert got["reached"].tolist() == [False, False, False, False, True, False]
    plain = rc.recalibrate_outlook(out, out)
    np.testing.assert_array_equal(plain["p_quota"], plain["p_quota_raw"])
    assert "pulled towards the middle" in rc.quota_note(r.to_dict(), level="agent")
    assert "pushed away from the middle" in rc.quota_note({**r.to_dict(), "slope": 1.4}, level="index")
    assert rc.quota_note(None, level="territory") == ""
    with pytest.raises(ConfigError, match="level must be"):
        rc.quota_note(r.to_dict(), level="office")


def test_the_common_factor_scales_every_series_by_the_same_draw():
    fc = (
        CalendarBaseline(random_state=0)
        .fit(
            pd.DataFrame(
                {
                    "unique_id": np.repeat(["a", "b"], 30),
                    "ds": np.tile(pd.date_range("2024-01-01", periods=30, freq="W-MON"), 2),
                    "y": np.random.default_rng(0).gamma(2.0, 50.0, 60),
                }
            )
        )
        .predict(5, n_draws=400)
    )
    r = rc.QuotaRecalibration(QuotaCalibration(-0.2, 0.3, None, 100, 4), 40, ("2024-Q1",), 0, 300, 0.0)
    adjusted = rc.apply_common_factor(fc, r, seed=1)
    ratio = adjusted.draws / fc.draws
    f = ratio[0, 0]
    np.testing.assert_allclose(ratio, np.broadcast_to(f, ratio.shape), rtol=1e-12)
    np.testing.assert_allclose(f, r.calibration.factors(400, seed=1))
    assert rc.apply_common_factor(fc, None, seed=1) is fc


@pytest.mark.parametrize("bad", [{"recalibrate": "yes"}, {"recalibration_min_rows": 0}, {"recalibration_draws": 2.5}])
def test_recalibration_settings_are_checked(bad):
    with pytest.raises(ConfigError, match="invalid review settings"):
        ReviewConfig(**bad)


def test_only_the_last_quarters_that_had_ended_are_used(data):
    """A quarter-end review (offset 0) capped at 3 quarters learns from exactly the 3 before it,
    the oldest included although it starts on a Sunday (1 October 2023)."""
    cal = ol.review_calendar("2024-06", data_end=ol.data_last_day(data))
    asof = ol.as_of_dataset(data, cal.as_of)
    config = ReviewConfig(model="CalendarBaseline", recalibration_quarters=3, recalibration_min_rows=10)
    r, rows = rc.learn_recalibration(asof, CalendarBaseline(), cal, config)
    assert r.offset_weeks == 0 and r.quarters == ("2023-Q4", "2024-Q1", "2024-Q2")
    assert rows["period_end"].max() == pd.Timestamp("2024-06-30") == cal.as_of


def test_auto_with_too_little_history_to_compare_uses_the_simplest_candidate_and_says_so(monkeypatch, data):
    from spm_models.exceptions import DataError
    from spm_models.review import forecasting

    def too_short(*a, **k):
        raise DataError("the history (15 weeks) is too short to compare models 13 weeks ahead")

    monkeypatch.setattr(forecasting, "choose_models", too_short)
    cal = ol.review_calendar(MONTH, data_end=ol.data_last_day(data))
    asof = ol.as_of_dataset(data, cal.as_of)
    agents = ol.review_agents(asof["agents"], cal.as_of)
    rf = forecasting.review_forecast(asof, agents, cal, ReviewConfig(recalibrate=False))
    first = ReviewConfig().auto_candidates[0]
    assert rf.picks == dict.fromkeys(("agent", "territory", "company"), first)
    assert rf.choice.reasons["agent"].startswith(f"{first}, the simplest candidate: the history (15 weeks)")
    assert rf.forecasts["company"].draws.shape[0] == 1


def test_leading_indicators_are_offered_to_the_models_that_take_regressors(data):
    """A found indicator that leads by at least the horizon makes a "+indicators" variant of each
    candidate taking regressors; the backtest compares it like any other, and the pick is fitted
    with its columns. One leading by less than the horizon is not offered (its values are unknown)."""
    from spm_models.review import forecasting

    cal = ol.review_calendar(MONTH, data_end=ol.data_last_day(data))
    asof = ol.as_of_dataset(data, cal.as_of)
    agents = ol.review_agents(asof["agents"], cal.as_of)
    config = ReviewConfig(recalibrate=False, auto_candidates=("MonthOfQuarterMean", "HierarchicalBayes"))
    lag = cal.h + 3
    rf = forecasting.review_forecast(asof, agents, cal, config, regressors={"indicator:market_index": lag})
    compared = set(rf.choice.scores["candidate"])
    assert compared == {"MonthOfQuarterMean", "HierarchicalBayes", "HierarchicalBayes+indicators"}
    assert "indicator:market_index" in rf.history.columns
    for name, model in rf.models.items():
        wants = name.endswith(forecasting.WITH_INDICATORS)
        assert (model.get_params().get("regressors") == {"indicator:market_index": lag}) == wants
    short = forecasting.review_forecast(asof, agents, cal, config, regressors={"indicator:market_index": cal.h - 1})
    assert "HierarchicalBayes+indicators" not in set(short.choice.scores["candidate"])
    assert "indicator:market_index" not in short.history.columns


def test_the_hierarchical_model_is_refitted_on_past_quarters_with_the_agents_who_left(data):
    """Past quarters hold agents who have left since; the past-quarter refits pool them in their
    territories too (the model once lacked them in its groups, and every refit failed, so the
    chances went uncalibrated with a note)."""
    from spm_models.review import forecasting

    cal = ol.review_calendar(MONTH, data_end=ol.data_last_day(data))
    asof = ol.as_of_dataset(data, cal.as_of)
    agents = ol.review_agents(asof["agents"], cal.as_of)
    assert set(asof["agents"]["agent_id"].astype(str)) - set(agents["agent_id"].astype(str))  # someone left
    config = ReviewConfig(
        model="HierarchicalBayes",
        model_params={"method": "advi", "advi_iterations": 300},
        recalibration_quarters=2,
    )
    recal = forecasting.review_forecast(asof, agents, cal, config).recalibration
    assert recal is not None and len(recal.quarters) == 2
    assert not [n for n in recal.to_dict()["notes"] if "no territory in groups" in n]
