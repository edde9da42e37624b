"""Quota proration, the territory-target rule, and attainment, checked by hand.

Targets (inclusive periods)::

    a1 (N)  2017-01-01..2017-03-31  900   -> 900 / 90 days = 10 a day
    a2 (N)  2017-02-01..2017-02-28  560   -> 560 / 28 days = 20 a day
    N       2017-01-01..2017-03-31  5000  territory target; N always has agent targets -> unused
    S       2017-01-01..2017-03-31  1800  -> 20 a day; used while no S agent has a target
    b1 (S)  2017-03-01..2017-03-31  93    -> 3 a day; replaces S's own target in March
    X       2017-02-15..2017-03-14  280   -> 10 a day; a territory without agents
    c1 (W)  no target
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from spm_models import kpi
from spm_models.exceptions import DataValidationError

JAN, FEB, MAR = pd.Timestamp("2017-01-01"), pd.Timestamp("2017-02-01"), pd.Timestamp("2017-03-01")


def value(frame, kpi_name, level, entity, period):
    rows = frame[
        (frame.kpi == kpi_name) & (frame.level == level) & (frame.entity_id == entity) & (frame.period == period)
    ]
    assert len(rows) == 1, (kpi_name, level, entity, period, len(rows))
    return float(rows.value.iloc[0])


def agents_frame():
    return pd.DataFrame({"agent_id": ["a1", "a2", "b1", "c1"], "territory_id": ["N", "N", "S", "W"]})


def targets_frame():
    return pd.DataFrame(
        {
            "agent_id": ["a1", "a2", None, None, "b1", None],
            "territory_id": [None, None, "N", "S", None, "X"],
            "period_start": pd.to_datetime(
                ["2017-01-01", "2017-02-01", "2017-01-01", "2017-01-01", "2017-03-01", "2017-02-15"]
            ),
            "period_end": pd.to_datetime(
                ["2017-03-31", "2017-02-28", "2017-03-31", "2017-03-31", "2017-03-31", "2017-03-14"]
            ),
            "quota": [900.0, 560.0, 5000.0, 1800.0, 93.0, 280.0],
        }
    )


@pytest.fixture(scope="module")
def monthly():
    return kpi.quota(targets_frame(), agents_frame())


def test_agent_quota_is_prorated_by_days(monthly):
    assert [value(monthly, "quota", "agent", "a1", p) for p in (JAN, FEB, MAR)] == pytest.approx([310, 280, 310])
    assert [value(monthly, "quota", "agent", "a2", p) for p in (JAN, FEB, MAR)] == pytest.approx([0, 560, 0])
    assert value(monthly, "quota", "agent", "c1", FEB) == 0


def test_territory_uses_agent_targets_where_it_has_any(monthly):
    # N: agent targets every month (5000 territory target unused).
    assert [value(monthly, "quota", "territory", "N", p) for p in (JAN, FEB, MAR)] == pytest.approx(
        [310, 280 + 560, 310]
    )
    # S: its own target in Jan (31 x 20) and Feb (28 x 20); b1's target in March.
    assert [value(monthly, "quota", "territory", "S", p) for p in (JAN, FEB, MAR)] == pytest.approx([620, 560, 93])
    # X has no agents: its target, 14 days in Feb (15th-28th) and 14 in Mar (1st-14th).
    assert [value(monthly, "quota", "territory", "X", p) for p in (JAN, FEB, MAR)] == pytest.approx([0, 140, 140])
    assert value(monthly, "quota", "territory", "W", FEB) == 0


def test_company_quota_is_the_sum_of_territories(monthly):
    assert value(monthly, "quota", "company", "company", JAN) == pytest.approx(310 + 620)
    assert value(monthly, "quota", "company", "company", FEB) == pytest.approx(840 + 560 + 140)
    assert value(monthly, "quota", "company", "company", MAR) == pytest.approx(310 + 93 + 140)


def test_weekly_and_quarterly_proration():
    weekly = kpi.quota(targets_frame(), agents_frame(), grain="week", start="2017-01-30", end="2017-03-05")
    # Week Mon 30 Jan - Sun 5 Feb: a1 7 days x 10; a2 1-5 Feb = 5 days x 20.
    assert value(weekly, "quota", "agent", "a1", pd.Timestamp("2017-01-30")) == pytest.approx(70)
    assert value(weekly, "quota", "agent", "a2", pd.Timestamp("2017-01-30")) == pytest.approx(100)
    # Week Mon 27 Feb - Sun 5 Mar: a2 27-28 Feb = 2 days x 20.
    assert value(weekly, "quota", "agent", "a2", pd.Timestamp("2017-02-27")) == pytest.approx(40)
    # Over weeks covering the whole target, the shares add back to the target: 900 for a1.
    all_weeks = kpi.quota(targets_frame(), agents_frame(), grain="week")
    a1 = all_weeks[(all_weeks.level == "agent") & (all_weeks.entity_id == "a1")]
    assert a1.value.sum() == pytest.approx(900)
    assert a1.period.min() == pd.Timestamp("2016-12-26")  # the week holding 1 January 2017
    quarterly = kpi.quota(targets_frame(), agents_frame(), grain="quarter")
    assert value(quarterly, "quota", "agent", "a1", JAN) == pytest.approx(900)
    # S in Q1: b1 has a target overlapping the quarter, so the quarter uses agent targets only.
    assert value(quarterly, "quota", "territory", "S", JAN) == pytest.approx(93)


def test_default_range_of_quota_alone_is_the_target_span(monthly):
    assert sorted(monthly.period.unique()) == [JAN, FEB, MAR]


def test_attainment_is_bookings_over_quota():
    opps = pd.DataFrame(
        {
            "opportunity_id": ["w1", "w2", "w3"],
            "agent_id": ["a1", "a2", "b1"],
            "created_date": pd.to_datetime(["2016-12-01"] * 3),
            "outcome": ["won"] * 3,
            "close_date": pd.to_datetime(["2017-01-10", "2017-02-10", "2017-01-20"]),
            "amount": [155.0, 280.0, 310.0],
        }
    )
    out = kpi.attainment(opps, targets_frame(), agents_frame(), start="2017-01-01", end="2017-03-31")
    assert value(out, "attainment", "agent", "a1", JAN) == pytest.approx(155 / 310)
    assert value(out, "attainment", "agent", "a2", FEB) == pytest.approx(280 / 560)
    assert value(out, "attainment", "territory", "N", FEB) == pytest.approx(280 / 840)
    assert math.isnan(value(out, "attainment", "agent", "b1", JAN))  # b1 has no quota in January
    assert value(out, "attainment", "territory", "S", JAN) == pytest.approx(310 / 620)
    assert value(out, "attainment", "company", "company", JAN) == pytest.approx((155 + 310) / (310 + 620))
    assert value(out, "attainment", "agent", "a1", MAR) == 0.0
    assert math.isnan(value(out, "attainment", "territory", "W", JAN))


def test_target_without_agent_or_territory_is_rejected():
    t = targets_frame()
    t.loc[0, "agent_id"] = None
    with pytest.raises(DataValidationError, match="neither an agent_id nor a territory_id"):
        kpi.quota(t, agents_frame())


def test_target_for_unknown_agent_is_rejected():
    t = targets_frame()
    t.loc[1, "agent_id"] = "zz"
    with pytest.raises(DataValidationError, match="zz"):
        kpi.quota(t, agents_frame())
