"""Opportunities created, open pipeline at the period start, and coverage, by hand.

Opportunities (agent a in N, b in S)::

    opp  agent  created     outcome  close       amount
    p1   a      2017-01-10  won      2017-03-05  100
    p2   a      2017-01-31  lost     2017-02-01   50   closes on a period start: still open then
    p3   a      2017-02-01  open     -            70   created on a period start: not yet open then
    p4   b      2016-11-15  open     2017-01-15   40   open; its close date is only an expectation
    p5   b      2017-01-05  open     -           (no amount)
    p6   a      2017-03-31  won      2017-03-31 1000   never open at a period start
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from spm_models import kpi

JAN, FEB, MAR, APR = (pd.Timestamp(f"2017-{m:02d}-01") for m in (1, 2, 3, 4))
SPAN = {"start": "2017-01-01", "end": "2017-04-30"}


def value(frame, kpi_name, level, entity, period):
    rows = frame[
        (frame.kpi == kpi_name) & (frame.level == level) & (frame.entity_id == entity) & (frame.period == period)
    ]
    assert len(rows) == 1, (kpi_name, level, entity, period, len(rows))
    return float(rows.value.iloc[0])


def agents_frame():
    return pd.DataFrame({"agent_id": ["a", "b"], "territory_id": ["N", "S"]})


def opportunities_frame():
    return pd.DataFrame(
        {
            "opportunity_id": ["p1", "p2", "p3", "p4", "p5", "p6"],
            "agent_id": ["a", "a", "a", "b", "b", "a"],
            "created_date": pd.to_datetime(
                ["2017-01-10", "2017-01-31", "2017-02-01", "2016-11-15", "2017-01-05", "2017-03-31"]
            ),
            "outcome": ["won", "lost", "open", "open", "open", "won"],
            "close_date": pd.to_datetime(["2017-03-05", "2017-02-01", None, "2017-01-15", None, "2017-03-31"]),
            "amount": [100.0, 50.0, 70.0, 40.0, np.nan, 1000.0],
        }
    )


def test_open_pipeline_at_each_period_start():
    out = kpi.open_pipeline(opportunities_frame(), agents_frame(), **SPAN)
    assert [value(out, "open_pipeline", "agent", "a", p) for p in (JAN, FEB, MAR, APR)] == pytest.approx(
        [0, 100 + 50, 100 + 70, 70]
    )
    assert [value(out, "open_pipeline", "agent", "b", p) for p in (JAN, FEB, MAR, APR)] == pytest.approx(
        [40, 40, 40, 40]
    )
    assert [value(out, "open_pipeline", "company", "company", p) for p in (JAN, FEB, MAR, APR)] == pytest.approx(
        [40, 190, 210, 110]
    )
    assert value(out, "open_pipeline", "territory", "N", MAR) == pytest.approx(170)


def test_open_pipeline_weekly():
    out = kpi.open_pipeline(opportunities_frame(), agents_frame(), grain="week", start="2017-01-30", end="2017-02-12")
    # Monday 30 Jan: p1 (created 10 Jan) is open; p2 was created on the 31st, after that Monday.
    assert value(out, "open_pipeline", "agent", "a", pd.Timestamp("2017-01-30")) == pytest.approx(100)
    # Monday 6 Feb: p1 and p3; p2 closed on 1 Feb.
    assert value(out, "open_pipeline", "agent", "a", pd.Timestamp("2017-02-06")) == pytest.approx(170)


def test_opportunities_created():
    out = kpi.opportunities_created(opportunities_frame(), agents_frame(), **SPAN)
    assert [value(out, "opportunities_created", "agent", "a", p) for p in (JAN, FEB, MAR, APR)] == [2, 1, 1, 0]
    assert [value(out, "opportunities_created", "agent", "b", p) for p in (JAN, FEB, MAR, APR)] == [1, 0, 0, 0]
    assert value(out, "opportunities_created", "company", "company", JAN) == 3


def test_pipeline_coverage_is_open_pipeline_over_quota():
    targets = pd.DataFrame(
        {
            "agent_id": ["a", None],
            "territory_id": [None, "S"],
            "period_start": pd.to_datetime(["2017-02-01", "2017-01-01"]),
            "period_end": pd.to_datetime(["2017-02-28", "2017-04-30"]),
            "quota": [100.0, 1200.0],  # S: 1200 over 120 days = 10 a day
        }
    )
    out = kpi.pipeline_coverage(opportunities_frame(), targets, agents_frame(), **SPAN)
    assert value(out, "pipeline_coverage", "agent", "a", FEB) == pytest.approx(150 / 100)
    assert math.isnan(value(out, "pipeline_coverage", "agent", "a", MAR))  # no quota in March
    assert value(out, "pipeline_coverage", "territory", "S", FEB) == pytest.approx(40 / 280)
    assert value(out, "pipeline_coverage", "territory", "S", APR) == pytest.approx(40 / 300)
    assert value(out, "pipeline_coverage", "company", "company", FEB) == pytest.approx(190 / (100 + 280))
    assert value(out, "pipeline_coverage", "company", "company", JAN) == pytest.approx(40 / 310)
