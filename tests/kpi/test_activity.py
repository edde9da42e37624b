"""Activity volume by type, checked by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from spm_models import kpi

JAN, FEB = pd.Timestamp("2017-01-01"), pd.Timestamp("2017-02-01")


def value(frame, level, entity, period, segment):
    rows = frame[
        (frame.kpi == "activity_volume")
        & (frame.level == level)
        & (frame.entity_id == entity)
        & (frame.period == period)
        & (frame.segment == segment)
    ]
    assert len(rows) == 1, (level, entity, period, segment, len(rows))
    return float(rows.value.iloc[0])


def agents_frame():
    return pd.DataFrame({"agent_id": ["a", "b", "c"], "territory_id": ["N", "N", "S"]})


def activities_frame():
    return pd.DataFrame(
        {
            "agent_id": ["a", "a", "a", "b", "c", "c"],
            "date": pd.to_datetime(
                ["2017-01-02", "2017-01-31", "2017-01-15", "2017-02-01", "2017-02-20", "2017-02-21"]
            ),
            "activity_type": ["call", "call", "email", "call", "demo", "demo"],
            "count": [5, 2, 10, 3, 1, 2],
        }
    )


def test_monthly_volume_by_type():
    out = kpi.activity_volume(activities_frame(), agents_frame())
    assert set(out.segment.unique()) == {"call", "demo", "email"}
    assert value(out, "agent", "a", JAN, "call") == 5 + 2
    assert value(out, "agent", "a", JAN, "email") == 10
    assert value(out, "agent", "a", JAN, "demo") == 0
    assert value(out, "agent", "b", FEB, "call") == 3
    assert value(out, "territory", "N", JAN, "call") == 7
    assert value(out, "territory", "S", FEB, "demo") == 1 + 2
    assert value(out, "company", "company", FEB, "call") == 3
    assert value(out, "company", "company", FEB, "email") == 0
    company = out[(out.level == "company") & (out.period == JAN)]
    assert company.value.sum() == 5 + 2 + 10  # the total is the sum over types


def test_weekly_volume():
    out = kpi.activity_volume(activities_frame(), agents_frame(), grain="week")
    # Week of Monday 30 January: a's call on the 31st and b's on 1 February.
    assert value(out, "territory", "N", pd.Timestamp("2017-01-30"), "call") == 2 + 3


def test_empty_activity_table_gives_no_rows():
    empty = activities_frame().iloc[:0]
    out = kpi.activity_volume(empty, agents_frame(), start="2017-01-01", end="2017-01-31")
    assert len(out) == 0
    assert list(out.columns) == ["level", "entity_id", "grain", "period", "kpi", "segment", "value"]


def test_counts_are_summed_not_rows_counted():
    acts = activities_frame()
    acts["count"] = acts["count"] * 10
    out = kpi.activity_volume(acts, agents_frame())
    assert value(out, "agent", "a", JAN, "call") == pytest.approx(70)
