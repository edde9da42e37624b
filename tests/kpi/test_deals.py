"""Closed-deal KPIs on a hand-built organisation, every expected number worked out by hand.

Organisation (territory N: a1, a2; territory S: b1), reporting months Jan-Mar 2017::

    agent  territory  hired       left
    a1     N          -           -
    a2     N          -           2017-02-15
    b1     S          2017-02-10  -

    opp  agent  account  created     outcome  closed      amount
    o1   a1     x        2017-01-03  won      2017-01-20  100
    o2   a1     x        2017-01-10  won      2017-02-05  200
    o3   a2     -        2017-01-15  lost     2017-02-10   50
    o4   b1     y        2017-02-11  open     -            70
    o5   a2     x        2017-02-01  won      2017-03-10   30   (closed after a2 left)
    o6   b1     y        2017-02-12  won      2017-02-28  400
    o7   b1     z        2017-02-13  lost     2017-03-01   80
    o8   a1     -        2017-01-05  won      2017-03-15   60
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from spm_models import kpi
from spm_models.exceptions import DataValidationError

JAN, FEB, MAR = pd.Timestamp("2017-01-01"), pd.Timestamp("2017-02-01"), pd.Timestamp("2017-03-01")


def agents_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "agent_id": ["a1", "a2", "b1"],
            "territory_id": ["N", "N", "S"],
            "hire_date": pd.to_datetime([None, None, "2017-02-10"]),
            "leave_date": pd.to_datetime([None, "2017-02-15", None]),
        }
    )


def opportunities_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "opportunity_id": ["o1", "o2", "o3", "o4", "o5", "o6", "o7", "o8"],
            "agent_id": ["a1", "a1", "a2", "b1", "a2", "b1", "b1", "a1"],
            "account_id": ["x", "x", None, "y", "x", "y", "z", None],
            "created_date": pd.to_datetime(
                [
                    "2017-01-03",
                    "2017-01-10",
                    "2017-01-15",
                    "2017-02-11",
                    "2017-02-01",
                    "2017-02-12",
                    "2017-02-13",
                    "2017-01-05",
                ]
            ),
            "stage": [
                "negotiation",
                "negotiation",
                "proposal",
                "qualification",
                "negotiation",
                "negotiation",
                "proposal",
                "negotiation",
            ],
            "outcome": ["won", "won", "lost", "open", "won", "won", "lost", "won"],
            "close_date": pd.to_datetime(
                ["2017-01-20", "2017-02-05", "2017-02-10", None, "2017-03-10", "2017-02-28", "2017-03-01", "2017-03-15"]
            ),
            "amount": [100.0, 200.0, 50.0, 70.0, 30.0, 400.0, 80.0, 60.0],
        }
    )


def value(
    frame: pd.DataFrame, kpi_name: str, level: str, entity: str, period: pd.Timestamp, segment: str = ""
) -> float:
    rows = frame[
        (frame.kpi == kpi_name)
        & (frame.level == level)
        & (frame.entity_id == entity)
        & (frame.period == period)
        & (frame.segment == segment)
    ]
    assert len(rows) == 1, (
        f"expected one row for {kpi_name}/{level}/{entity}/{period.date()}/{segment!r}, got {len(rows)}"
    )
    return float(rows.value.iloc[0])


def has_row(frame: pd.DataFrame, kpi_name: str, entity: str, period: pd.Timestamp) -> bool:
    return bool(((frame.kpi == kpi_name) & (frame.entity_id == entity) & (frame.period == period)).any())


@pytest.fixture(scope="module")
def frames():
    return opportunities_frame(), agents_frame()


def test_bookings_by_agent_territory_and_company(frames):
    out = kpi.bookings(*frames)
    assert list(out.columns) == ["level", "entity_id", "grain", "period", "kpi", "segment", "value"]
    assert sorted(out.period.unique()) == [JAN, FEB, MAR]
    expected = {
        ("agent", "a1"): [100, 200, 60],
        ("agent", "a2"): [0, 0, 30],
        ("territory", "N"): [100, 200, 60 + 30],
        ("territory", "S"): [0, 400, 0],
        ("company", "company"): [100, 200 + 400, 60 + 30],
    }
    for (level, entity), vals in expected.items():
        for period, v in zip([JAN, FEB, MAR], vals):
            assert value(out, "bookings", level, entity, period) == pytest.approx(v)
    assert value(out, "bookings", "agent", "b1", FEB) == 400
    assert value(out, "bookings", "agent", "b1", MAR) == 0


def test_rows_follow_employment_but_keep_late_closes(frames):
    out = kpi.bookings(*frames)
    assert not has_row(out, "bookings", "b1", JAN)  # hired on 10 February
    assert has_row(out, "bookings", "a2", MAR)  # left in February, but o5 closed in March
    lost = kpi.deals_lost(*frames)
    assert not has_row(lost, "deals_lost", "a2", MAR)  # nothing of a2 to count there
    assert value(lost, "deals_lost", "agent", "a2", FEB) == 1  # still employed on 1-15 Feb
    # Periods with part of the employment have a row, zero when nothing happened.
    assert value(lost, "deals_lost", "agent", "b1", FEB) == 0  # hired on 10 February
    won = kpi.deals_won(*frames)
    assert value(won, "deals_won", "agent", "a2", FEB) == 0  # left on 15 February
    assert not has_row(won, "deals_won", "b1", JAN)


def test_deals_won_and_lost(frames):
    won = kpi.deals_won(*frames)
    lost = kpi.deals_lost(*frames)
    assert [value(won, "deals_won", "company", "company", p) for p in (JAN, FEB, MAR)] == [1, 2, 2]
    assert [value(won, "deals_won", "territory", "N", p) for p in (JAN, FEB, MAR)] == [1, 1, 2]
    assert [value(lost, "deals_lost", "company", "company", p) for p in (JAN, FEB, MAR)] == [0, 1, 1]
    assert value(lost, "deals_lost", "territory", "S", MAR) == 1  # o7
    assert value(lost, "deals_lost", "agent", "a1", FEB) == 0


def test_win_rate_is_won_over_closed_and_nan_without_closes(frames):
    out = kpi.win_rate(*frames)
    assert value(out, "win_rate", "agent", "a2", FEB) == 0.0  # o3 lost
    assert value(out, "win_rate", "agent", "a2", MAR) == 1.0  # o5 won
    assert math.isnan(value(out, "win_rate", "agent", "a2", JAN))
    assert value(out, "win_rate", "agent", "b1", MAR) == 0.0  # o7 lost
    assert value(out, "win_rate", "territory", "N", FEB) == pytest.approx(1 / 2)  # o2 won, o3 lost
    assert math.isnan(value(out, "win_rate", "territory", "S", JAN))
    # company Feb: won o2, o6; lost o3 -> 2/3. Mar: won o5, o8; lost o7 -> 2/3.
    assert value(out, "win_rate", "company", "company", FEB) == pytest.approx(2 / 3)
    assert value(out, "win_rate", "company", "company", MAR) == pytest.approx(2 / 3)


def test_average_deal_size(frames):
    out = kpi.average_deal_size(*frames)
    assert value(out, "average_deal_size", "company", "company", FEB) == pytest.approx((200 + 400) / 2)
    assert value(out, "average_deal_size", "territory", "N", MAR) == pytest.approx((30 + 60) / 2)
    assert math.isnan(value(out, "average_deal_size", "agent", "a2", FEB))


def test_bookings_growth(frames):
    out = kpi.bookings_growth(*frames)
    assert math.isnan(value(out, "bookings_growth", "company", "company", JAN))  # nothing in Dec 2016
    assert value(out, "bookings_growth", "company", "company", FEB) == pytest.approx((600 - 100) / 100)
    assert value(out, "bookings_growth", "company", "company", MAR) == pytest.approx((90 - 600) / 600)
    assert value(out, "bookings_growth", "territory", "N", MAR) == pytest.approx((90 - 200) / 200)
    assert value(out, "bookings_growth", "agent", "a1", MAR) == pytest.approx((60 - 200) / 200)
    assert math.isnan(value(out, "bookings_growth", "territory", "S", FEB))  # S booked 0 in January
    assert value(out, "bookings_growth", "territory", "S", MAR) == pytest.approx(-1.0)


def test_bookings_growth_of_the_first_period_uses_the_data_before_start(frames):
    out = kpi.bookings_growth(*frames, start="2017-02-01")
    assert sorted(out.period.unique()) == [FEB, MAR]
    assert value(out, "bookings_growth", "company", "company", FEB) == pytest.approx((600 - 100) / 100)


def test_new_vs_existing_bookings(frames):
    out = kpi.new_vs_existing_bookings(*frames)
    k = "new_vs_existing_bookings"
    # x: o1 (Jan 20) is x's first win -> new; o2 and o5 existing. y: o6 new. o8 has no account.
    expected = {
        JAN: {"new": 100, "existing": 0, "unknown": 0},
        FEB: {"new": 400, "existing": 200, "unknown": 0},
        MAR: {"new": 0, "existing": 30, "unknown": 60},
    }
    for period, segs in expected.items():
        for seg, v in segs.items():
            assert value(out, k, "company", "company", period, seg) == pytest.approx(v)
    assert value(out, k, "agent", "a2", MAR, "existing") == 30
    assert value(out, k, "agent", "a1", MAR, "unknown") == 60
    assert set(out.segment.unique()) == {"new", "existing", "unknown"}


def test_new_account_ties_and_history_before_start():
    agents = pd.DataFrame({"agent_id": ["a"], "territory_id": ["T"]})
    opps = pd.DataFrame(
        {
            "opportunity_id": ["p1", "p2", "p3", "p4", "p5"],
            "agent_id": ["a"] * 5,
            "account_id": ["w", "w", "w", "v", "v"],
            "created_date": pd.to_datetime(["2017-01-01"] * 4 + ["2016-06-01"]),
            "outcome": ["won", "won", "won", "won", "won"],
            "close_date": pd.to_datetime(["2017-02-03", "2017-02-03", "2017-02-20", "2017-02-07", "2016-07-01"]),
            "amount": [10.0, 20.0, 40.0, 80.0, 5.0],
        }
    )
    out = kpi.new_vs_existing_bookings(opps, agents, start="2017-02-01", end="2017-02-28")
    # w: p1 and p2 both won on the first day -> new (10 + 20); p3 later -> existing (40).
    # v: p4 (80) is existing because p5 was won in 2016, before the reporting start.
    assert value(out, "new_vs_existing_bookings", "agent", "a", FEB, "new") == 30
    assert value(out, "new_vs_existing_bookings", "agent", "a", FEB, "existing") == 40 + 80


def test_unknown_agent_is_reported_with_its_id(frames):
    opps, agents = frames
    bad = opps.copy()
    bad.loc[0, "agent_id"] = "ghost"
    with pytest.raises(DataValidationError, match="ghost"):
        kpi.bookings(bad, agents)


def test_missing_column_is_reported(frames):
    opps, agents = frames
    with pytest.raises(DataValidationError, match="outcome"):
        kpi.bookings(opps.drop(columns="outcome"), agents)


def test_quarter_and_week_grain(frames):
    q = kpi.bookings(*frames, grain="quarter")
    assert value(q, "bookings", "company", "company", JAN) == 100 + 600 + 90
    assert set(q.grain.unique()) == {"quarter"}
    w = kpi.bookings(*frames, grain="week")
    # o2 closed Sunday 2017-02-05: week of Monday 2017-01-30. o6 on Tuesday 2017-02-28: week of 2017-02-27.
    assert value(w, "bookings", "company", "company", pd.Timestamp("2017-01-30")) == 200
    assert value(w, "bookings", "company", "company", pd.Timestamp("2017-02-27")) == 400
    assert (w.period.dt.day_of_week == 0).all()


def test_levels_can_be_chosen(frames):
    out = kpi.bookings(*frames, levels=["company"])
    assert set(out.level.unique()) == {"company"}
    assert np.allclose(out.sort_values("period").value.to_numpy(), [100, 600, 90])
