"""Tests of spm_models.quota_backtest with a real model, and its recalibration (slow part)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spm_models.exceptions import ConfigError
from spm_models.models import CalendarBaseline
from spm_models.quota_backtest import agent_bookings_frame, backtest_quota_probabilities
from spm_models.quota_calibration import rolling_recalibration
from spm_models.quota_probability import calibration_summary, reliability_table
from spm_models.sources.synthetic import generate_organisation


@pytest.fixture(scope="module")
def small_org():
    return generate_organisation(40, years=2, seed=4)


def test_agent_frame_is_gap_free_and_stops_when_the_agent_leaves(small_org):
    frame = agent_bookings_frame(small_org)
    steps = frame.groupby("unique_id")["ds"].diff().dropna()
    assert (steps == pd.Timedelta(weeks=1)).all()
    agents = small_org.dataset.tables["agents"].set_index("agent_id")
    leavers = agents.index[agents["leave_date"].notna()].astype(str)
    assert len(leavers)
    last = frame.groupby("unique_id")["ds"].max()
    for a in leavers:
        assert last[a] <= agents.loc[a, "leave_date"]
    # every won amount of an agent's employed weeks is in the frame
    won = small_org.dataset.tables["opportunities"].query("outcome == 'won'")
    assert frame["y"].sum() <= won["amount"].sum() and frame["y"].sum() > 0.9 * won["amount"].sum()


def test_model_backtest_scores_agents_with_history_only(small_org):
    bt = backtest_quota_probabilities(small_org, model=CalendarBaseline(), n_draws=200, min_history_weeks=26,
                                      first_quarter="2023-07-01")
    assert {"p_quota", "hit", "pit", "offset_weeks", "closed_to_date"} <= set(bt.columns)
    assert bt["origin"].min() >= pd.Timestamp("2023-06-25")
    assert bt["p_quota"].between(0, 1).all() and bt["pit"].between(0, 1).all()
    # closed to date is 0 at the quarter's start and grows through it
    by_offset = bt.groupby("offset_weeks")["closed_to_date"].mean()
    assert by_offset[0] == 0 and by_offset[0] < by_offset[4] < by_offset[8]
    # nobody is scored before 26 weeks of history: the first origin has only long-serving agents
    frame = agent_bookings_frame(small_org)
    first_week = frame.groupby("unique_id")["ds"].min()
    o = bt["origin"].min()
    scored = bt.loc[bt["origin"] == o, "agent_id"]
    assert ((o - first_week[scored]).dt.days >= 26 * 7 - 7).all()


def test_model_must_be_a_forecast_model(small_org):
    with pytest.raises(ConfigError, match="ForecastModel"):
        backtest_quota_probabilities(small_org, model="calendar")


@pytest.mark.slow
def test_recalibrated_hierarchical_p_quota_is_calibrated():
    """200 agents, 10 quarters x 3 points in each (0, 4, 8 weeks in), HierarchicalBayes (ADVI)
    refitted at each of the 30 origins on bookings alone. Its raw probabilities are too sure
    (the quota is set from what the generator expects, which the model can only estimate);
    recalibrated on the quarters that had ended by each origin, every bin of at least 30
    agent-quarters is within 0.1 of the diagonal, and the Brier score beats both the raw
    probabilities and the constant base rate."""
    from spm_models.models import HierarchicalBayes

    org = generate_organisation(200, years=3, seed=3)
    groups = org.dataset.tables["agents"].set_index("agent_id")["territory_id"].astype(str).to_dict()
    bt = backtest_quota_probabilities(org, model=HierarchicalBayes(method="advi", groups=groups), n_draws=400,
                                      first_quarter="2023-07-01")
    out = rolling_recalibration(bt)
    scored = out[out["p_recalibrated"].notna()]
    assert len(scored) > 3000
    table = reliability_table(scored["p_recalibrated"], scored["hit"], bins=10, min_count=30)
    checked = table[table["enough"]]
    assert len(checked) >= 8
    assert (checked["abs_gap"] <= 0.1).all(), table
    hit = scored["hit"].to_numpy(float)
    brier_recal = calibration_summary(scored["p_recalibrated"], hit)["brier"]
    brier_raw = calibration_summary(scored["p_quota"], hit)["brier"]
    brier_base = float(np.mean((hit.mean() - hit) ** 2))
    assert brier_recal < brier_raw and brier_recal < brier_base
