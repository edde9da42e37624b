"""Statements of a three-person organisation computed by hand (handmade.py): tier boundaries,
partial periods, a mid-year plan change, a mid-quarter assignment, monthly lines, a contest,
and a draw advanced in one quarter and recovered from the next one's earnings."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from handmade import BOOK, handmade_book, handmade_dataset  # noqa: E402

from spm_models.exceptions import ConfigError  # noqa: E402
from spm_models.insights.incentives import (  # noqa: E402
    PlanContext,
    plan_segments,
    statement_lines,
    statement_totals,
)


@pytest.fixture(scope="module")
def data():
    return handmade_dataset()


@pytest.fixture(scope="module")
def settled(data):
    ctx = PlanContext(data, calendar=data.fiscal_calendar, as_of="2025-09-30")
    run = ctx.evaluate(handmade_book(), scenarios=False)
    return statement_lines(run), statement_totals(run)


def _line(lines, period, agent, component, plan=None, month=None):
    f = lines[(lines["period"] == period) & (lines["agent_id"] == agent) & (lines["component_id"] == component)]
    if plan is not None:
        f = f[f["plan_id"] == plan]
    if month is not None:
        f = f[f["line"].str.contains(month)]
    assert len(f) == 1, f
    return f.iloc[0]


def _paid(totals, period, agent):
    return float(totals.loc[(totals["period"] == period) & (totals["agent_id"] == agent), "earned_to_date"].iloc[0])


def test_who_is_on_which_plan_when(data):
    seg = plan_segments(handmade_book(), data["agents"], start="2025-01-01", end="2025-09-30")
    got = [(a, p, f"{s:%m-%d}", f"{e:%m-%d}") for a, p, s, e in seg[["agent_id", "plan_id", "start", "end"]].values]
    assert got == [
        ("A1", "h1", "01-01", "06-30"),
        ("A1", "h2", "07-01", "09-30"),  # the mid-year change
        ("A2", "ramp", "02-15", "08-14"),  # six months from the hire date
        ("A2", "h2", "08-15", "09-30"),
        ("A3", "h1", "01-01", "06-30"),
        ("A3", "h2", "07-01", "08-14"),
        ("A3", "senior", "08-15", "09-30"),  # the assignment
    ]


def test_tiers_bonuses_and_monthly_lines_of_a_full_quarter(settled):
    lines, totals = settled
    # A1 2025-Q1: 120,000 against 100,000: 5% of 100,000 + 8% of 20,000
    c = _line(lines, "2025-Q1", "A1", "commission")
    assert c["amount_to_date"] == pytest.approx(0.05 * 100_000 + 0.08 * 20_000)
    assert c["attainment_to_date"] == pytest.approx(1.2) and c["rate"] == 0.08 and c["status"] == "final"
    assert _line(lines, "2025-Q1", "A1", "club")["amount_to_date"] == 1000.0
    assert _line(lines, "2025-Q1", "A1", "logos")["value_to_date"] == 2.0  # X1 and X2 were first won by A1
    assert _line(lines, "2025-Q1", "A1", "logos")["amount_to_date"] == 200.0
    assert _line(lines, "2025-Q1", "A3", "logos")["value_to_date"] == 0.0  # X1 was A1's first
    # demos: 6 + 5 in January reach 10; 4 in February do not
    assert _line(lines, "2025-Q1", "A1", "demos", month="Jan 2025")["amount_to_date"] == 100.0
    assert _line(lines, "2025-Q1", "A1", "demos", month="Feb 2025")["amount_to_date"] == 0.0
    # A1 2025-Q2: exactly 100% of quota: 5% of 100,000, and the bonus step at 100% is reached
    assert _line(lines, "2025-Q2", "A1", "commission")["amount_to_date"] == pytest.approx(5_000.0)
    assert _line(lines, "2025-Q2", "A1", "club")["amount_to_date"] == 1000.0


def test_a_contest_pays_its_top_two(settled):
    lines, _ = settled
    # 2025-Q1 bookings: A1 120,000, A3 25,000, A2 10,000; the pool of 1,000 is split 60/40
    assert _line(lines, "2025-Q1", "A1", "q1")["amount_to_date"] == pytest.approx(600.0)
    assert _line(lines, "2025-Q1", "A3", "q1")["amount_to_date"] == pytest.approx(400.0)
    assert _line(lines, "2025-Q1", "A2", "q1")["amount_to_date"] == 0.0


def test_a_new_hire_is_prorated_and_the_draw_is_recovered_the_next_quarter(settled):
    lines, totals = settled
    # hired 15 Feb: 45 of Q1's 90 days, so half the 3,000 guarantee; the quota covers their days
    c = _line(lines, "2025-Q1", "A2", "commission")
    assert c["fraction"] == pytest.approx(45 / 90) and c["quota"] == pytest.approx(20_000.0)
    assert c["amount_to_date"] == pytest.approx(0.05 * 10_000)
    assert _line(lines, "2025-Q1", "A2", "draw_top_up")["amount_to_date"] == pytest.approx(1500 - 500)
    assert _paid(totals, "2025-Q1", "A2") == pytest.approx(1500.0)
    b = totals.loc[(totals["period"] == "2025-Q1") & (totals["agent_id"] == "A2"), "balance_to_date"]
    assert float(b.iloc[0]) == pytest.approx(1000.0)
    # Q2: 80,000 against 40,000 earns 5,200, above the 3,000 guarantee by 2,200: the 1,000 comes back
    assert _line(lines, "2025-Q2", "A2", "commission")["amount_to_date"] == pytest.approx(0.05 * 40_000 + 0.08 * 40_000)
    assert _line(lines, "2025-Q2", "A2", "draw_top_up")["amount_to_date"] == 0.0
    assert _line(lines, "2025-Q2", "A2", "draw_recovery")["amount_to_date"] == pytest.approx(-1000.0)
    assert _paid(totals, "2025-Q2", "A2") == pytest.approx(5_200.0 - 1_000.0)
    # Q3 is the third quarter on the ramp plan: no guarantee any more
    assert not ((lines["period"] == "2025-Q3") & (lines["component_type"] == "draw")).any()


def test_a_plan_change_inside_a_quarter_splits_credits_quota_and_fixed_amounts(settled):
    lines, totals = settled
    # A2 in Q3 (92 days): ramp 1 Jul - 14 Aug (45 days), h2 15 Aug - 30 Sep (47 days); quota 40,000 split by days
    ramp = _line(lines, "2025-Q3", "A2", "commission", plan="ramp")
    h2 = _line(lines, "2025-Q3", "A2", "commission", plan="h2")
    assert ramp["quota"] == pytest.approx(40_000 * 45 / 92) and h2["quota"] == pytest.approx(40_000 * 47 / 92)
    assert ramp["value_to_date"] == 10_000 and h2["value_to_date"] == 30_000  # deals of 10 July and 10 September
    assert ramp["amount_to_date"] == pytest.approx(0.05 * 10_000)
    q = 40_000 * 47 / 92
    assert h2["amount_to_date"] == pytest.approx(0.04 * q + 0.10 * (30_000 - q))
    assert _line(lines, "2025-Q3", "A2", "club", plan="h2")["amount_to_date"] == pytest.approx(2000 * 47 / 92)
    # A3: h2 until the assignment, then the senior plan
    q3 = 46_000 * 45 / 92
    assert _line(lines, "2025-Q3", "A3", "commission", plan="h2")["amount_to_date"] == pytest.approx(
        0.04 * q3 + 0.10 * (23_000 - q3)
    )
    assert _line(lines, "2025-Q3", "A3", "club", plan="h2")["amount_to_date"] == pytest.approx(2000 * 45 / 92)
    assert _line(lines, "2025-Q3", "A3", "commission", plan="senior")["amount_to_date"] == pytest.approx(2_000.0)
    # A1 moved to the h2 rates on 1 July: 4% of 100,000 + 10% of 50,000, and the new 2,000 bonus
    assert _paid(totals, "2025-Q3", "A1") == pytest.approx(4_000 + 5_000 + 2_000)


def test_every_person_quarter_adds_up_to_the_hand_totals(settled):
    _, totals = settled
    hand = {
        ("2025-Q1", "A1"): 6_600 + 1_000 + 200 + 100 + 600,
        ("2025-Q1", "A3"): 1_250 + 100 + 400,
        ("2025-Q2", "A1"): 6_000,
        ("2025-Q2", "A3"): 0,
    }
    for (period, agent), amount in hand.items():
        assert _paid(totals, period, agent) == pytest.approx(amount), (period, agent)


def test_a_non_recoverable_draw_is_never_taken_back(data):
    plans = [dict(p) for p in BOOK["plans"]]
    ramp = next(p for p in plans if p["id"] == "ramp")
    ramp["components"] = [ramp["components"][0], {**ramp["components"][1], "recoverable": False}]
    ctx = PlanContext(data, calendar=data.fiscal_calendar, as_of="2025-06-30")
    totals = statement_totals(ctx.evaluate(handmade_book(plans=plans), scenarios=False))
    assert _paid(totals, "2025-Q1", "A2") == pytest.approx(1_500.0)
    assert _paid(totals, "2025-Q2", "A2") == pytest.approx(5_200.0)  # no recovery


def test_no_proration_pays_full_amounts_for_a_partial_period(data):
    plans = [dict(p) for p in BOOK["plans"]]
    next(p for p in plans if p["id"] == "ramp")["proration"] = "none"
    ctx = PlanContext(data, calendar=data.fiscal_calendar, as_of="2025-03-31")
    lines = statement_lines(ctx.evaluate(handmade_book(plans=plans), scenarios=False))
    assert _line(lines, "2025-Q1", "A2", "draw_top_up")["amount_to_date"] == pytest.approx(3000 - 500)


def test_a_quarter_in_progress_pays_what_the_results_so_far_earn(data):
    ctx = PlanContext(data, calendar=data.fiscal_calendar, as_of="2025-08-20")
    lines = statement_lines(ctx.evaluate(handmade_book(), scenarios=False))
    q3 = lines[lines["period"] == "2025-Q3"]
    assert set(q3["status"]) == {"in progress"} and q3["amount_expected"].isna().all()
    assert _line(lines, "2025-Q3", "A2", "commission", plan="h2")["value_to_date"] == 0.0  # 10 September is ahead
    assert _line(lines, "2025-Q3", "A1", "commission")["amount_to_date"] == pytest.approx(9_000.0)


def test_people_eligible_for_two_plans_at_once_are_all_listed(data):
    plans = [dict(p) for p in BOOK["plans"]]
    next(p for p in plans if p["id"] == "h2")["min_tenure_months"] = 0  # now overlaps the ramp plan for A2
    next(p for p in plans if p["id"] == "senior")["roles"] = ["AE"]  # and everyone with h1/h2
    with pytest.raises(ConfigError) as info:
        plan_segments(handmade_book(plans=plans), data["agents"])
    text = str(info.value)
    assert "agent A2 (AE, territory T1) is eligible for both 'ramp' and 'h2' from 2025-07-01 to 2025-08-14" in text
    assert "agent A1 (AE, territory T1) is eligible for both 'h1' and 'senior'" in text
    assert text.count("is eligible for both") >= 5


def test_settled_amounts_have_no_range(settled):
    lines, _ = settled
    final = lines[lines["status"] == "final"]
    np.testing.assert_allclose(final["amount_expected"], final["amount_to_date"])
    np.testing.assert_allclose(final["amount_q10"], final["amount_q90"])
    assert pd.api.types.is_string_dtype(final["agent_id"])
