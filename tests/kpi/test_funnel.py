"""Stage-to-stage conversion of monthly cohorts, worked out by hand.

Stages 0..5: prospecting, qualification, needs_assessment, proposal, negotiation, won.
f = furthest stage reached (won deals: 5). Agent a (territory N), cohort January 2017::

    opp  outcome  stage column   stage_history                               f
    q1   won      -              -                                           5
    q2   lost     proposal       -                                           3
    q3   open     qualification  -                                           1 (still in 1)
    q4   lost     prospecting    -                                           0
    q5   lost     -              -                                           unknown: left out
    q6   open     -              prospecting, qualification, needs_assessment 2 (still in 2)
    q7   lost     prospecting    prospecting .. proposal                     3
    q8   won      negotiation    -                                           5
    q9   lost     negotiation    (created in February)                       4

Agent b (territory S), January: r1 lost in negotiation (f = 4), r2 open in prospecting (f = 0).
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from spm_models import kpi
from spm_models.kpi import TRANSITIONS

JAN, FEB, MAR = pd.Timestamp("2017-01-01"), pd.Timestamp("2017-02-01"), pd.Timestamp("2017-03-01")
T0, T1, T2, T3, T4 = TRANSITIONS


def value(frame, level, entity, period, segment):
    rows = frame[
        (frame.kpi == "stage_conversion")
        & (frame.level == level)
        & (frame.entity_id == entity)
        & (frame.period == period)
        & (frame.segment == segment)
    ]
    assert len(rows) == 1, (level, entity, period, segment, len(rows))
    return float(rows.value.iloc[0])


def agents_frame():
    return pd.DataFrame({"agent_id": ["a", "b"], "territory_id": ["N", "S"]})


def opportunities_frame():
    rows = [
        ("q1", "a", "2017-01-02", "won", None),
        ("q2", "a", "2017-01-03", "lost", "proposal"),
        ("q3", "a", "2017-01-04", "open", "qualification"),
        ("q4", "a", "2017-01-05", "lost", "prospecting"),
        ("q5", "a", "2017-01-06", "lost", None),
        ("q6", "a", "2017-01-07", "open", None),
        ("q7", "a", "2017-01-08", "lost", "prospecting"),
        ("q8", "a", "2017-01-09", "won", "negotiation"),
        ("q9", "a", "2017-02-09", "lost", "negotiation"),
        ("r1", "b", "2017-01-10", "lost", "negotiation"),
        ("r2", "b", "2017-01-11", "open", "prospecting"),
        ("s1", "b", "2017-03-20", "open", "prospecting"),  # makes March part of the range
    ]
    closed = {"won": "2017-03-01", "lost": "2017-03-01", "open": None}
    return pd.DataFrame(
        {
            "opportunity_id": [r[0] for r in rows],
            "agent_id": [r[1] for r in rows],
            "created_date": pd.to_datetime([r[2] for r in rows]),
            "outcome": [r[3] for r in rows],
            "stage": [r[4] for r in rows],
            "close_date": pd.to_datetime([closed[r[3]] for r in rows]),
            "amount": 1.0,
        }
    )


def history_frame():
    rows = [
        ("q6", "prospecting"),
        ("q6", "qualification"),
        ("q6", "needs_assessment"),
        ("q7", "prospecting"),
        ("q7", "qualification"),
        ("q7", "needs_assessment"),
        ("q7", "proposal"),
        ("zz", "negotiation"),  # an unknown opportunity: ignored
    ]
    return pd.DataFrame(
        {
            "opportunity_id": [r[0] for r in rows],
            "stage": [r[1] for r in rows],
            "entered_date": pd.Timestamp("2017-01-15"),
        }
    )


@pytest.fixture(scope="module")
def with_history():
    # Cohorts are by created date; the default span would start at the first close (1 March).
    return kpi.stage_conversion(opportunities_frame(), agents_frame(), history_frame(), start="2017-01-01")


def test_transition_labels(with_history):
    labels = (
        "prospecting->qualification",
        "qualification->needs_assessment",
        "needs_assessment->proposal",
        "proposal->negotiation",
        "negotiation->won",
    )
    assert TRANSITIONS == labels
    assert set(with_history.segment) == set(labels)  # the segments the KPI rows carry


def test_agent_cohort_conversion(with_history):
    # Known f for a's January cohort: 5, 3, 1(open), 0, 2(open), 3, 5.
    # T0: f >= 1 -> q1 q2 q3 q6 q7 q8 = 6; decided adds q4 (lost at 0) -> 7.
    assert value(with_history, "agent", "a", JAN, T0) == pytest.approx(6 / 7)
    # T1: f >= 2 -> q1 q2 q6 q7 q8 = 5; q3 still sits in qualification -> 5/5.
    assert value(with_history, "agent", "a", JAN, T1) == pytest.approx(1.0)
    # T2: f >= 3 -> q1 q2 q7 q8 = 4; q6 still sits in needs_assessment -> 4/4.
    assert value(with_history, "agent", "a", JAN, T2) == pytest.approx(1.0)
    # T3: f >= 4 -> q1 q8 = 2; lost in proposal: q2 q7 -> 2/4.
    assert value(with_history, "agent", "a", JAN, T3) == pytest.approx(0.5)
    # T4: won q1 q8 = 2; none lost in negotiation -> 2/2.
    assert value(with_history, "agent", "a", JAN, T4) == pytest.approx(1.0)
    # February cohort: q9 lost in negotiation.
    assert value(with_history, "agent", "a", FEB, T4) == 0.0
    assert value(with_history, "agent", "a", FEB, T0) == 1.0


def test_open_opportunities_in_the_stage_are_not_counted(with_history):
    # b, January: r1 (lost at negotiation) counts in every transition; r2 sits in prospecting.
    assert value(with_history, "agent", "b", JAN, T0) == 1.0
    assert value(with_history, "agent", "b", JAN, T4) == 0.0
    # March cohort: s1 is still in prospecting -> nothing decided -> NaN.
    assert math.isnan(value(with_history, "agent", "b", MAR, T0))


def test_territory_and_company_sum_counts_before_dividing(with_history):
    assert value(with_history, "territory", "N", JAN, T3) == pytest.approx(0.5)
    # Company T0: (6 + 1) / (7 + 1); T3: (2 + 1) / (4 + 1); T4: (2 + 0) / (2 + 1).
    assert value(with_history, "company", "company", JAN, T0) == pytest.approx(7 / 8)
    assert value(with_history, "company", "company", JAN, T3) == pytest.approx(3 / 5)
    assert value(with_history, "company", "company", JAN, T4) == pytest.approx(2 / 3)


def test_without_stage_history_the_stage_column_is_used():
    out = kpi.stage_conversion(opportunities_frame(), agents_frame(), start="2017-01-01")
    # q6 has no stage and no history -> left out; q7 counts as lost in prospecting.
    # T0: f >= 1 -> q1 q2 q3 q8 = 4; lost at 0: q4 q7 -> 4/6.
    assert value(out, "agent", "a", JAN, T0) == pytest.approx(4 / 6)
    # T3: f >= 4 -> q1 q8 = 2; lost in proposal: q2 -> 2/3.
    assert value(out, "agent", "a", JAN, T3) == pytest.approx(2 / 3)
