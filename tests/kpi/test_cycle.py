"""Sales-cycle length: median and quartiles of (close - created) days of won deals."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spm_models import kpi
from spm_models.kpi.cycle import grouped_quantiles

JUN, JUL = pd.Timestamp("2017-06-01"), pd.Timestamp("2017-07-01")


def value(frame, kpi_name, level, entity, period):
    rows = frame[
        (frame.kpi == kpi_name) & (frame.level == level) & (frame.entity_id == entity) & (frame.period == period)
    ]
    assert len(rows) == 1
    return float(rows.value.iloc[0])


@pytest.fixture(scope="module")
def cycle_frame():
    agents = pd.DataFrame({"agent_id": ["a", "b", "c"], "territory_id": ["N", "N", "S"]})
    close = pd.Timestamp("2017-06-20")
    day = pd.Timedelta(days=1)
    rows = [
        # agent, cycle days, outcome, close date
        ("a", 10, "won", close),
        ("a", 40, "won", close),
        ("a", 20, "won", close),
        ("b", 7, "won", close),
        ("a", 100, "lost", close),  # lost deals do not count
        ("c", 3, "won", pd.Timestamp("2017-07-05")),
    ]
    opps = pd.DataFrame(
        {
            "opportunity_id": [f"o{i}" for i in range(len(rows))],
            "agent_id": [r[0] for r in rows],
            "created_date": [r[3] - r[1] * day for r in rows],
            "outcome": [r[2] for r in rows],
            "close_date": [r[3] for r in rows],
            "amount": 1.0,
        }
    )
    return kpi.sales_cycle_days(opps, agents, start="2017-06-01", end="2017-07-31")


def test_agent_median_and_quartiles(cycle_frame):
    # a in June: cycles 10, 20, 40. Median 20; p25 at position 0.25*2 = 0.5 -> 10 + 0.5*(20-10) = 15;
    # p75 at position 1.5 -> 20 + 0.5*(40-20) = 30.
    assert value(cycle_frame, "cycle_days_median", "agent", "a", JUN) == 20
    assert value(cycle_frame, "cycle_days_p25", "agent", "a", JUN) == 15
    assert value(cycle_frame, "cycle_days_p75", "agent", "a", JUN) == 30


def test_territory_pools_the_deals_instead_of_averaging_medians(cycle_frame):
    # N in June: 7, 10, 20, 40 (n = 4). Median at 1.5 -> 10 + 0.5*10 = 15 (the mean of the agent
    # medians 20 and 7 would be 13.5); p25 at 0.75 -> 7 + 0.75*3 = 9.25; p75 at 2.25 -> 20 + 0.25*20 = 25.
    assert value(cycle_frame, "cycle_days_median", "territory", "N", JUN) == 15
    assert value(cycle_frame, "cycle_days_p25", "territory", "N", JUN) == 9.25
    assert value(cycle_frame, "cycle_days_p75", "territory", "N", JUN) == 25
    assert value(cycle_frame, "cycle_days_median", "company", "company", JUN) == 15
    assert value(cycle_frame, "cycle_days_median", "company", "company", JUL) == 3


def test_no_won_deal_gives_nan(cycle_frame):
    assert math.isnan(value(cycle_frame, "cycle_days_median", "agent", "c", JUN))
    assert math.isnan(value(cycle_frame, "cycle_days_p75", "territory", "S", JUN))
    assert math.isnan(value(cycle_frame, "cycle_days_median", "agent", "a", JUL))


@settings(max_examples=60, deadline=None)
@given(
    groups=st.lists(st.lists(st.integers(0, 400), min_size=1, max_size=12), min_size=1, max_size=6),
    q=st.sampled_from([0.25, 0.5, 0.75, 0.1]),
)
def test_grouped_quantiles_match_numpy_percentile(groups, q):
    keys = np.concatenate([np.full(len(g), i) for i, g in enumerate(groups)])
    x = np.concatenate([np.asarray(g, dtype=float) for g in groups])
    perm = np.random.default_rng(0).permutation(len(x))
    out = grouped_quantiles(keys[perm], x[perm], [q], len(groups) + 1)
    for i, g in enumerate(groups):
        assert out[0, i] == pytest.approx(np.percentile(g, 100 * q))
    assert math.isnan(out[0, len(groups)])  # a group without values
