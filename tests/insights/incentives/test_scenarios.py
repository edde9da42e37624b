"""The forecast quarter over scenarios: statements expected by the quarter end, the draw over
scenarios, the projection of measures other than bookings, the cost distribution and two plans
compared on the same scenarios; all against hand computation with a two-scenario forecast."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from handmade import BOOK, handmade_book, handmade_dataset  # noqa: E402

from spm_models.data.dataset import Dataset  # noqa: E402
from spm_models.exceptions import DataError  # noqa: E402
from spm_models.insights.incentives import (  # noqa: E402
    PlanContext,
    company_totals,
    compare_plans,
    person_payouts,
    plan_cost,
    reconcile,
    statement_lines,
    statement_totals,
    tier_counts,
)
from spm_models.insights.incentives.projection import Projection  # noqa: E402
from spm_models.models.forecast import Forecast  # noqa: E402

AS_OF = "2025-04-30"
WEEKS = pd.date_range("2025-04-28", periods=10, freq="W-MON")  # the week holding 1 May, then nine more


def _forecast(values: dict[str, list[float]], n_draws: int = 2) -> Forecast:
    """Weekly draws: zero everywhere except the week of 19 May, whose draws are ``values``."""
    ids = ["A1", "A2", "A3"]
    draws = np.zeros((3, len(WEEKS), n_draws))
    for i, a in enumerate(ids):
        if a in values:
            draws[i, 3, :] = values[a]  # WEEKS[3] is Monday 19 May
    ds = np.tile(WEEKS.to_numpy(), (3, 1))
    return Forecast.from_draws(draws, unique_ids=ids, ds=ds, model="hand", freq="W-MON")


@pytest.fixture(scope="module")
def data():
    return handmade_dataset()


@pytest.fixture(scope="module")
def context(data):
    return PlanContext(data, calendar=data.fiscal_calendar, as_of=AS_OF, forecast=_forecast({"A2": [0.0, 80_000.0]}))


@pytest.fixture(scope="module")
def run(context):
    return context.evaluate(handmade_book())


def _line(lines, agent, component):
    f = lines[(lines["period"] == "2025-Q2") & (lines["agent_id"] == agent) & (lines["component_id"] == component)]
    assert len(f) == 1
    return f.iloc[0]


def test_expected_by_the_quarter_end_and_so_far(run):
    lines = statement_lines(run)
    assert set(lines.loc[lines["period"] == "2025-Q2", "status"]) == {"in progress"}
    c = _line(lines, "A2", "commission")
    # scenario 1: nothing more booked; scenario 2: 80,000 against 40,000 earns 5% of 40k + 8% of 40k
    assert c["amount_to_date"] == 0.0
    assert c["amount_expected"] == pytest.approx((0 + 5_200) / 2)
    assert c["amount_q10"] == pytest.approx(0.1 * 5_200) and c["amount_q90"] == pytest.approx(0.9 * 5_200)
    assert c["value_expected"] == pytest.approx(40_000.0)
    # the draw: so far, the whole 3,000 guarantee is a top-up; by the quarter end it is 3,000 or 0,
    # and in scenario 2 the 1,000 advanced in Q1 is recovered from the 2,200 above the guarantee
    top, rec = _line(lines, "A2", "draw_top_up"), _line(lines, "A2", "draw_recovery")
    assert top["amount_to_date"] == 3_000.0 and top["amount_expected"] == pytest.approx(1_500.0)
    assert rec["amount_to_date"] == 0.0 and rec["amount_expected"] == pytest.approx(-500.0)
    totals = statement_totals(run)
    me = totals[(totals["period"] == "2025-Q2") & (totals["agent_id"] == "A2")].iloc[0]
    # paid 3,000 or 5,200 - 1,000; the range comes from the total's own scenarios
    assert me["expected"] == pytest.approx(3_600.0)
    assert me["q10"] == pytest.approx(3_000 + 0.1 * 1_200) and me["q90"] == pytest.approx(3_000 + 0.9 * 1_200)
    assert me["balance_to_date"] == pytest.approx(1_000 + 3_000)  # if the quarter ended today
    assert me["balance_expected"] == pytest.approx((4_000 + 0) / 2)


def test_lines_people_and_company_reconcile(run):
    lines, totals, company = statement_lines(run), statement_totals(run), company_totals(run)
    check = reconcile(lines, totals, company)
    assert check["ok"].all(), check
    q2 = company[company["period"] == "2025-Q2"].iloc[0]
    assert q2["expected"] == pytest.approx(lines.loc[lines["period"] == "2025-Q2", "amount_expected"].sum())
    # a dropped line is caught
    broken = reconcile(lines.iloc[1:], totals, company)
    assert not broken["ok"].all()


def test_plan_cost_tiers_and_payouts(run):
    cost = plan_cost(run).iloc[0]
    # A1 and A3 book nothing more in Q2 in either scenario; A2 is paid 3,000 or 4,200; A1's and
    # A3's to-date lines pay nothing (A1's 5 May deal is after as_of), except the monthly demos: none
    assert cost["expected_cost"] == pytest.approx(3_600.0)
    assert cost["expected_bookings"] == pytest.approx(40_000.0)
    assert cost["cost_share_of_bookings"] == pytest.approx(3_600 / 40_000)
    assert cost["commission"] == pytest.approx(2_600.0) and cost["draw"] == pytest.approx(1_000.0)
    tiers = tier_counts(run)
    ramp = tiers[tiers["plan_id"] == "ramp"].set_index("tier")["expected_people"]
    assert ramp.to_dict() == {0: 0.5, 1: 0.5}  # A2 ends Q2 at 0% or 200% of the 40,000 quota
    pay = person_payouts(run).set_index("agent_id")
    assert pay.loc["A2", "expected"] == pytest.approx(3_600.0) and pay.loc["A2", "p_any"] == 1.0
    assert pay.loc["A1", "expected"] == 0.0


def test_two_plans_on_the_same_scenarios_differ_by_their_rules_only(context, run):
    plans = [dict(p) for p in BOOK["plans"]]
    ramp = next(p for p in plans if p["id"] == "ramp")
    ramp["components"] = [{"type": "commission", "id": "commission", "tiers": [[0.0, 0.10]]}, ramp["components"][1]]
    draft = context.evaluate(handmade_book(plans=plans, name="Draft"))
    table = compare_plans({"Current": run, "Draft": draft})
    # the draft pays A2 10% in Q1 too: 1,000 earned, a 500 top-up carried; in Q2 0 or 8,000 earned,
    # so paid 3,000 or 8,000 - 500; the current plan pays 3,000 or 4,200
    assert table.loc["expected cost", "Draft"] == pytest.approx((3_000 + 7_500) / 2)
    assert table.loc["cost minus Current, mean", "Draft"] == pytest.approx((0 + 3_300) / 2)
    assert table.loc["cost minus Current, 90th percentile", "Draft"] == pytest.approx(0.9 * 3_300)
    assert table.loc["cost minus Current, mean", "Current"] == 0.0
    other = PlanContext(
        context.tables, calendar=context.calendar, as_of=AS_OF, forecast=_forecast({"A2": [0.0, 80_000.0]})
    )
    with pytest.raises(DataError, match="one PlanContext"):
        compare_plans({"Current": run, "Other": other.evaluate(handmade_book())})


def test_the_projection_of_other_measures(data):
    t = {k: v.copy() for k, v in data.tables.items()}
    o = t["opportunities"]
    o["cost"] = np.where(o["agent_id"] == "A1", 0.4, 0.5) * o["amount"]
    ds = Dataset(tables=t, source="with cost")
    from spm_models.insights.incentives.credits import CreditLedger

    fc = _forecast({"A1": [10_000.0] * 4000, "A3": [0.0] * 4000}, n_draws=4000)
    p = Projection(fc, CreditLedger(ds), ds["agents"], as_of=AS_OF, horizon_end="2025-06-30", seed=3)
    p.prepare([pd.Timestamp("2025-05-01")])
    window = (["A1", "A3", "A2"], ["2025-05-01"] * 3, ["2025-06-30"] * 3)
    book = p.values("bookings", *window)
    margin = p.values("margin", *window)
    np.testing.assert_allclose(book[0], 10_000.0)
    np.testing.assert_allclose(margin[0], 0.6 * 10_000.0)  # A1's margin ratio over the history
    np.testing.assert_allclose(book[2], 0.0)  # no forecast series
    np.testing.assert_allclose(p.values("product_bookings:Core", *window)[0], 10_000.0)  # every deal is Core
    # new accounts: A1 won 2 in the 182 days before as_of; rate ~ Gamma(2.5, 182 days); 61 days ahead
    new = p.values("new_accounts", *window)[0]
    assert new.mean() == pytest.approx(2.5 / 182 * 61, rel=0.08)
    won, decided = p.values("deals_won", *window), p.values("deals_decided", *window)
    assert (won <= decided).all() and decided[0].mean() > 0
    # one consistent set of scenarios: May plus June is the two months together
    p.prepare([pd.Timestamp("2025-06-01")])
    may = p.values("new_accounts", ["A1"], ["2025-05-01"], ["2025-05-31"])
    june = p.values("new_accounts", ["A1"], ["2025-06-01"], ["2025-06-30"])
    both = p.values("new_accounts", ["A1"], ["2025-05-01"], ["2025-06-30"])
    np.testing.assert_allclose(may + june, both)
