"""spm_models.review.recalibration: agents' P(quota) adjusted by the review's own past quarters."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from spm_models.data.dataset import Dataset
from spm_models.data.validation import validate
from spm_models.evaluation.quota.backtest import quarter_offset_weeks
from spm_models.evaluation.quota.calibration import Recalibration
from spm_models.exceptions import ConfigError, ModelError
from spm_models.models import CalendarBaseline
from spm_models.review import outlook as ol
from spm_models.review import recalibration as rc
from spm_models.review import views
from spm_models.review.artifacts import build_artifacts
from spm_models.review.settings import ReviewConfig
from spm_models.synthetic.generator import generate_organisation

MONTH = "2024-11"


@pytest.fixture(scope="module")
def data():
    # Not the shared small organisation: 12 agents have enough past agent-quarters for a
    # recalibration at a low threshold (30); its 6 agents have 29. (The shared review run,
    # with the default threshold of 200, is the case of too little history.)
    return validate(generate_organisation(12, years=2, seed=2).dataset)


def _build(root, ds, config):
    folder = root / MONTH / "artifacts"
    info = build_artifacts(ds, month=MONTH, out_dir=folder, config=config)
    return folder, info, pd.read_parquet(folder / "outlook.parquet")


@pytest.fixture(scope="module")
def enough(tmp_path_factory, data):
    """Enough history: a low threshold so a 12-agent organisation's past quarters suffice."""
    return _build(tmp_path_factory.mktemp("enough"), data, ReviewConfig(recalibration_min_rows=30))


@pytest.fixture(scope="module")
def too_little(review_run):
    """The shared review run: default settings, whose threshold (200 agent-quarters) is far
    above what its 6 agents had."""
    folder = review_run.artifacts
    info = json.loads((folder / "run.json").read_text())
    return folder, info, pd.read_parquet(folder / "outlook.parquet")


def test_enough_history_adjusts_agents_and_keeps_the_raw_value(enough, data):
    folder, info, out = enough
    r = info["quota_recalibration"]
    assert r["applied"] and r["reason"] == "" and r["n"] >= 30 and 0 < r["n_hits"] < r["n"]
    assert r["slope"] != pytest.approx(1.0, abs=0.05)
    cal = ol.review_calendar(MONTH, data_end=ol.data_last_day(data))
    assert r["offset_weeks"] == quarter_offset_weeks(cal.as_of, cal.forecast_quarter) == 8
    # the quarters it learned from had all ended by the review date, and are the backtest's
    rows = pd.read_parquet(folder / "quota_backtest.parquet")
    assert len(rows) == r["n"] and int(rows["hit"].sum()) == r["n_hits"] and set(rows["offset_weeks"]) == {8}
    assert rows["period_end"].max() <= cal.as_of
    assert r["quarters"] == [f"{d.year}-Q{d.quarter}" for d in sorted(rows["period_start"].unique())]
    agents = out[out["level"] == "agent"]
    expected = Recalibration(r["intercept"], r["slope"], r["n"])(agents["p_quota_raw"])
    np.testing.assert_allclose(agents["p_quota"], expected, rtol=1e-12)
    assert (agents["p_quota"] - agents["p_quota_raw"]).abs().max() > 0.01
    others = out[out["level"] != "agent"]
    np.testing.assert_array_equal(others["p_quota"], others["p_quota_raw"])  # territory and company stay raw


def test_enough_history_notes_and_what_the_reports_show(enough):
    folder, info, out = enough
    r = info["quota_recalibration"]
    agents = out[out["level"] == "agent"].set_index("unique_id")
    me = agents.index[agents["quota"].notna()][0]
    v = views.agent_view(folder, me)
    assert f"learned from {r['n']} agent-quarters ({r['quarters'][0]} to {r['quarters'][-1]})" in v.quota_note
    assert v.outlook["p_quota"].iloc[0] == agents.loc[me, "p_quota"]
    t = views.territory_view(folder, "T01")
    assert (
        "The agents' chance of reaching quota is adjusted" in t.quota_note
        and "territory's own chance is the model's figure" in t.quota_note
    )
    table = t.agents.set_index("agent_id")["p_quota"]  # the territory's agent table shows the adjusted value
    np.testing.assert_allclose(table, agents.loc[table.index, "p_quota"])
    assert "not adjusted" in views.monthly_view(folder).quota_note


def test_too_little_history_keeps_raw_and_says_why(too_little, review_run):
    folder, info, out = too_little
    r = info["quota_recalibration"]
    assert not r["applied"] and r["intercept"] is None and r["slope"] is None
    assert r["reason"] == f"only {r['n']} past agent-quarters (at least 200 are needed)"
    np.testing.assert_array_equal(out["p_quota"], out["p_quota_raw"])
    assert review_run.manifest["quota_recalibration"] == r  # what the index reads is what run.json says
    me = out.loc[(out["level"] == "agent") & out["quota"].notna(), "unique_id"].iloc[0]
    assert f"not adjusted by past results: only {r['n']} past agent-quarters" in views.agent_view(folder, me).quota_note


def test_switched_off_and_no_quotas(tmp_path, data):
    _, info, _ = _build(tmp_path / "off", data, ReviewConfig(recalibrate=False))
    assert not info["quota_recalibration"]["applied"] and "switched off" in info["quota_recalibration"]["reason"]
    tables = {k: v for k, v in data.tables.items() if k != "targets"}
    folder, info, out = _build(tmp_path / "none", Dataset(tables=tables, source="no quotas"), ReviewConfig())
    assert info["quota_recalibration"] is None and out["p_quota"].isna().all()
    assert views.agent_view(folder, out.loc[out["level"] == "agent", "unique_id"].iloc[0]).quota_note == ""


def _fake_rows(hits):
    return pd.DataFrame(
        {
            "agent_id": [str(i) for i in range(len(hits))],
            "period_start": pd.Timestamp("2024-04-01"),
            "period_end": pd.Timestamp("2024-06-30"),
            "p_quota": np.linspace(0.05, 0.95, len(hits)),
            "hit": hits,
        }
    )


def test_one_outcome_class_or_a_failing_model_is_recorded_not_raised(monkeypatch, data):
    cal = ol.review_calendar(MONTH, data_end="2024-12-29")
    config = ReviewConfig(recalibration_min_rows=10)
    monkeypatch.setattr(rc, "backtest_quota_probabilities", lambda *a, **k: _fake_rows([False] * 40))
    r, rows = rc.learn_recalibration(data, CalendarBaseline(), cal, config)
    assert (
        not r.applied
        and len(rows) == 40
        and r.reason.startswith("in all 40 past agent-quarters the agents missed quota")
    )

    def boom(*a, **k):
        raise ModelError("the model could not be fitted")

    monkeypatch.setattr(rc, "backtest_quota_probabilities", boom)
    r, rows = rc.learn_recalibration(data, CalendarBaseline(), cal, config)
    assert not r.applied and "the model could not be fitted" in r.reason and rows.empty


def test_recalibrate_outlook_by_hand():
    """``logit p~ = 0 + 0.5 logit p``: 0.9 -> 1 / (1 + 9 ** -0.5) = 0.75, 0.1 -> 0.25, 0.5 -> 0.5."""
    out = pd.DataFrame({"unique_id": list("abcd"), "p_quota": [0.1, 0.5, 0.9, np.nan], "quota": 1.0})
    r = rc.QuotaRecalibration(True, "", 0.0, 0.5, 100, 40, ("2024-Q1",), 4, 300, 0.0)
    got = rc.recalibrate_outlook(out, r)
    assert list(got.columns) == ["unique_id", "p_quota", "p_quota_raw", "quota"]
    np.testing.assert_allclose(got["p_quota"], [0.25, 0.5, 0.75, np.nan])
    np.testing.assert_array_equal(got["p_quota_raw"], out["p_quota"])
    raw = rc.recalibrate_outlook(out)
    np.testing.assert_array_equal(raw["p_quota"], raw["p_quota_raw"])
    assert "pulled towards the middle" in rc.quota_note(r.to_dict(), level="agent")
    assert "too cautious" in rc.quota_note({**r.to_dict(), "slope": 1.4}, level="index")
    assert rc.quota_note(None, level="territory") == ""
    with pytest.raises(ConfigError, match="level must be"):
        rc.quota_note(r.to_dict(), level="office")


@pytest.mark.parametrize("bad", [{"recalibrate": "yes"}, {"recalibration_min_rows": 0}, {"recalibration_draws": 2.5}])
def test_recalibration_settings_are_checked(bad):
    with pytest.raises(ConfigError, match="invalid review settings"):
        ReviewConfig(**bad)


def test_only_the_last_quarters_that_had_ended_are_used(data):
    """A quarter-end review (offset 0) capped at 3 quarters learns from exactly the 3 before it,
    the oldest included although it starts on a Sunday (1 October 2023)."""
    cal = ol.review_calendar("2024-06", data_end=ol.data_last_day(data))
    asof = ol.as_of_dataset(data, cal.as_of)
    config = ReviewConfig(recalibration_quarters=3, recalibration_min_rows=10)
    r, rows = rc.learn_recalibration(asof, CalendarBaseline(), cal, config)
    assert r.offset_weeks == 0 and r.quarters == ("2023-Q4", "2024-Q1", "2024-Q2")
    assert rows["period_end"].max() == pd.Timestamp("2024-06-30") == cal.as_of
