"""Margin of won deals and margin objectives, by hand.

Opportunities of agent a (territory N)::

    opp  outcome  close        amount  cost  margin
    m1   won      2024-01-15   100     60    -       margin 40 (amount - cost)
    m2   won      2024-01-20   200     -     50      margin 50 (stated)
    m3   won      2024-02-10    80     -     -       margin unknown: not counted
    m4   lost     2024-02-12    90     10    -       lost: no margin booked

Targets of a: bookings 300 for January; margin 60 for January (metric = margin).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spm_models import kpi
from spm_models.data.dataset import Dataset
from spm_models.data.validation import validate
from spm_models.exceptions import DataValidationError

JAN, FEB = pd.Timestamp("2024-01-01"), pd.Timestamp("2024-02-01")


def agents():
    return pd.DataFrame({"agent_id": ["a"], "territory_id": ["N"]})


def opps():
    return pd.DataFrame(
        {
            "opportunity_id": ["m1", "m2", "m3", "m4"],
            "agent_id": ["a"] * 4,
            "created_date": pd.to_datetime(["2024-01-01"] * 4),
            "outcome": ["won", "won", "won", "lost"],
            "close_date": pd.to_datetime(["2024-01-15", "2024-01-20", "2024-02-10", "2024-02-12"]),
            "amount": [100.0, 200.0, 80.0, 90.0],
            "cost": [60.0, np.nan, np.nan, 10.0],
            "margin": [np.nan, 50.0, np.nan, np.nan],
        }
    )


def targets():
    return pd.DataFrame(
        {
            "agent_id": ["a", "a"],
            "territory_id": [None, None],
            "period_start": pd.to_datetime(["2024-01-01", "2024-01-01"]),
            "period_end": pd.to_datetime(["2024-01-31", "2024-01-31"]),
            "quota": [300.0, 60.0],
            "metric": [None, "margin"],
        }
    )


def v(frame, name, period, level="agent", entity="a"):
    rows = frame[(frame.kpi == name) & (frame.period == period) & (frame.level == level) & (frame.entity_id == entity)]
    assert len(rows) == 1
    return float(rows.value.iloc[0])


def test_margin_and_margin_attainment():
    tables = {"opportunities": opps(), "targets": targets(), "agents": agents()}
    k = kpi.compute_kpis(tables, start="2024-01-01", end="2024-02-29")
    assert v(k, "margin", JAN) == 90.0 and v(k, "margin", FEB) == 0.0
    assert v(k, "margin_quota", JAN) == 60.0
    assert v(k, "margin_attainment", JAN) == pytest.approx(1.5)
    # the margin objective is not a bookings quota
    assert v(k, "quota", JAN) == 300.0 and v(k, "attainment", JAN) == pytest.approx(1.0)
    assert v(k, "margin", JAN, "company", "company") == 90.0


def test_margin_kpis_only_for_data_that_hold_margin():
    plain = opps().drop(columns=["cost", "margin"])
    names = set(kpi.compute_kpis({"opportunities": plain, "targets": targets().iloc[:1], "agents": agents()})["kpi"])
    assert not names & {"margin", "margin_quota", "margin_attainment"}


def test_validation_checks_margin_against_amount_and_cost_and_the_target_metric():
    frame = opps().assign(margin=[41.0, 50.0, np.nan, np.nan])  # m1: 100 - 60 is 40, not 41
    tables = {
        "territories": pd.DataFrame({"territory_id": ["N"], "territory_name": ["N"]}),
        "agents": agents().assign(agent_name="A", manager=None, hire_date=None, leave_date=None),
        "opportunities": frame.assign(account_id=None, product_id=None, stage=None),
        "targets": targets().assign(metric=[None, "profit"]),
    }
    with pytest.raises(DataValidationError) as err:
        validate(Dataset(tables=tables))
    rules = {(p.column, p.rule) for p in err.value.problems}
    assert ("margin", "margin must equal amount - cost") in rules
    assert ("metric", "metric must be one of bookings, margin (or empty)") in rules
