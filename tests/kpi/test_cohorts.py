"""Cohort conversion and deals lost at an unknown time, by hand.

Opportunities (agents a in N, b in S)::

    opp  agent  created     outcome  close        note
    c1   a      2024-01-05  won      2024-02-10
    c2   a      2024-01-20  lost     -            lost, date unknown
    c3   a      2024-01-25  open     -
    c4   b      2024-01-08  lost     2024-01-30
    c5   b      2024-02-02  won      2024-02-20
    c6   b      2024-02-14  lost     -            lost, date unknown

January cohort: a created 3 (1 won, 1 undecided), b created 1 (0 won); February: b created 2
(1 won). Close-period win rate of February: c1 and c5 won, nothing lost *dated* in
February, so 100% (the two undated losses never count there); the cohort rates say 1/4 and 1/2.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spm_models import kpi
from spm_models.data.dataset import Dataset
from spm_models.data.validation import validate
from spm_models.models.pipeline.history import open_at

JAN, FEB, MAR = (pd.Timestamp(f"2024-{m:02d}-01") for m in (1, 2, 3))
SPAN = {"start": "2024-01-01", "end": "2024-03-31"}


def value(frame, name, level, entity, period):
    rows = frame[(frame.kpi == name) & (frame.level == level) & (frame.entity_id == entity) & (frame.period == period)]
    assert len(rows) == 1, (name, level, entity, period, len(rows))
    return float(rows.value.iloc[0])


def agents():
    return pd.DataFrame({"agent_id": ["a", "b"], "territory_id": ["N", "S"]})


def opportunities():
    return pd.DataFrame(
        {
            "opportunity_id": ["c1", "c2", "c3", "c4", "c5", "c6"],
            "agent_id": ["a", "a", "a", "b", "b", "b"],
            "created_date": pd.to_datetime(
                ["2024-01-05", "2024-01-20", "2024-01-25", "2024-01-08", "2024-02-02", "2024-02-14"]
            ),
            "outcome": ["won", "lost", "open", "lost", "won", "lost"],
            "close_date": pd.to_datetime(["2024-02-10", None, None, "2024-01-30", "2024-02-20", None]),
            "amount": [100.0, 50.0, 70.0, 40.0, 30.0, 20.0],
        }
    )


def test_cohort_conversion_counts_undated_losses_and_open_deals():
    out = kpi.cohort_conversion(opportunities(), agents(), **SPAN)
    assert value(out, "cohort_conversion", "agent", "a", JAN) == pytest.approx(1 / 3)
    assert value(out, "cohort_conversion", "agent", "b", JAN) == 0.0
    assert value(out, "cohort_conversion", "agent", "b", FEB) == pytest.approx(1 / 2)
    assert value(out, "cohort_conversion", "company", "company", JAN) == pytest.approx(1 / 4)
    assert np.isnan(value(out, "cohort_conversion", "company", "company", MAR))  # nothing created


def test_cohort_undecided_is_the_open_deals_of_the_cohort():
    out = kpi.cohort_undecided(opportunities(), agents(), **SPAN)
    assert value(out, "cohort_undecided", "agent", "a", JAN) == 1.0
    assert value(out, "cohort_undecided", "territory", "S", JAN) == 0.0
    assert value(out, "cohort_undecided", "company", "company", FEB) == 0.0


def test_undated_losses_never_count_by_close_period():
    out = kpi.compute_kpis(
        {"opportunities": opportunities(), "agents": agents()}, kpis=["win_rate", "deals_lost"], **SPAN
    )
    assert value(out, "win_rate", "company", "company", FEB) == 1.0  # c1, c5 won; no dated loss
    assert value(out, "deals_lost", "company", "company", JAN) == 1.0  # c4 only
    assert value(out, "deals_lost", "company", "company", FEB) == 0.0


def test_undated_losses_are_never_in_the_open_pipeline():
    out = kpi.open_pipeline(opportunities(), agents(), **SPAN)
    # a: at 1 Feb c1 (100) and c3 (70) are open; c2 is lost at an unknown time; at 1 Mar only c3
    assert value(out, "open_pipeline", "agent", "a", FEB) == 170.0
    assert value(out, "open_pipeline", "agent", "a", MAR) == 70.0
    # b: at 1 Mar nothing (c5 won in Feb, c6 lost undated)
    assert value(out, "open_pipeline", "agent", "b", MAR) == 0.0
    assert open_at(opportunities(), "2024-03-01").tolist() == [False, False, True, False, False, False]


def test_validation_allows_a_lost_deal_without_a_date_but_not_a_won_one():
    tables = {
        "territories": pd.DataFrame({"territory_id": ["N", "S"], "territory_name": ["N", "S"]}),
        "agents": agents().assign(agent_name=["A", "B"], manager=None, hire_date=None, leave_date=None),
        "opportunities": opportunities().assign(account_id=None, product_id=None, stage=None),
    }
    typed = validate(Dataset(tables=tables))
    assert typed["opportunities"]["close_date"].isna().sum() == 3
    tables["opportunities"] = tables["opportunities"].assign(outcome=["won", "won", "open", "lost", "won", "lost"])
    from spm_models.exceptions import DataValidationError

    with pytest.raises(DataValidationError, match="a won deal needs a close date"):
        validate(Dataset(tables=tables))
