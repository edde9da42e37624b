"""Contest standings and awards, and a person's payout outlook, on the handmade organisation.

2025-Q1 bookings: A1 120,000 (60,000 on 20 January, 60,000 on 10 March), A3 25,000, A2 10,000;
the Q1 contest splits 1,000 as 600 / 400 between the top two. A1's quota is 100,000 and the h1
plan's quota club pays 1,000 at 100%. The outlook uses the two-scenario forecast of
test_scenarios (A2 books 0 or 80,000 more in Q2).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from handmade import handmade_book, handmade_dataset  # noqa: E402
from test_scenarios import AS_OF, _forecast  # noqa: E402

from spm_models.exceptions import DataError  # noqa: E402
from spm_models.insights.incentives import (  # noqa: E402
    PlanContext,
    contest_standings,
    incentive_awards,
    payout_outlook,
)


@pytest.fixture(scope="module")
def data():
    return handmade_dataset()


def _run(data, as_of, forecast=None):
    ctx = PlanContext(data, calendar=data.fiscal_calendar, as_of=as_of, forecast=forecast)
    return ctx.evaluate(handmade_book(), scenarios=forecast is not None)


def test_a_finished_contest_ranks_everyone_and_its_winners_are_awarded(data):
    run = _run(data, "2025-03-31")
    s = contest_standings(run)
    q1 = s[s["contest_id"] == "q1"].set_index("agent_id")
    assert set(q1["status"]) == {"final"} and set(q1["period"]) == {"2025-Q1"}
    assert q1["rank_to_date"].to_dict() == {"A1": 1, "A3": 2, "A2": 3}
    assert q1["value_to_date"].to_dict() == {"A1": 120_000.0, "A3": 25_000.0, "A2": 10_000.0}
    assert q1["prize_to_date"].to_dict() == pytest.approx({"A1": 600.0, "A3": 400.0, "A2": 0.0})
    assert q1["p_prize"].to_dict() == {"A1": 1.0, "A3": 1.0, "A2": 0.0}
    awards = incentive_awards(run, s, data["agents"], month_end=pd.Timestamp("2025-03-31"))
    won = awards[awards["award"].str.startswith("Contest winner")].set_index("agent_id")
    assert sorted(won.index) == ["A1", "A3"] and won.loc["A1", "agent_name"] == "Ann"
    assert "place 1" in won.loc["A1", "text"] and "600" in won.loc["A1", "text"]
    # a month later the contest is old news
    later = incentive_awards(run, s, data["agents"], month_end=pd.Timestamp("2025-04-30"))
    assert not later["award"].str.startswith("Contest winner").any()


def test_the_leader_of_a_contest_in_progress_and_a_top_bonus_step(data):
    feb = _run(data, "2025-02-28")
    s = contest_standings(feb)
    assert set(s["status"]) == {"in progress"}
    awards = incentive_awards(feb, s, data["agents"], month_end=pd.Timestamp("2025-02-28"))
    lead = awards[awards["award"].str.startswith("Leads")]
    assert lead["agent_id"].tolist() == ["A1"] and lead["text"].iloc[0] == "USD 60.0k: so far, to 2025-03-31"
    assert not awards["award"].str.contains("top step").any()  # 60% of quota so far
    # by 15 March A1 has 120,000 against 100,000: the quota club's only step is reached
    mar = _run(data, "2025-03-15")
    awards = incentive_awards(mar, contest_standings(mar), data["agents"], month_end=pd.Timestamp("2025-03-15"))
    top = awards[awards["award"].str.contains("top step reached")]
    assert top["agent_id"].tolist() == ["A1"] and top["text"].iloc[0] == "120% of quota"


def test_the_payout_outlook_of_a_quarter_in_progress(data):
    run = _run(data, AS_OF, _forecast({"A2": [0.0, 80_000.0]}))
    out = payout_outlook(run).set_index("unique_id")
    a2 = out.loc["A2"]
    # paid 3,000 (the draw) or 5,200 - 1,000 recovered; so far the whole 3,000 guarantee
    assert a2["expected_payout"] == pytest.approx(3_600.0) and a2["earned_to_date"] == pytest.approx(3_000.0)
    assert a2["payout_q0.1"] == pytest.approx(3_000 + 0.1 * 1_200) and a2["plan_id"] == "ramp"
    # the ramp commission at exactly 40,000: 5% of 40,000; at the expected 40,000 the same
    assert a2["quota"] == 40_000.0 and a2["payout_at_quota"] == pytest.approx(2_000.0)
    assert a2["payout_of_expected_bookings"] == pytest.approx(2_000.0)
    # nothing booked so far: 40,000 to the 8% tier that starts at 100%
    assert a2["next_tier_attainment"] == 1.0 and a2["bookings_to_next_tier"] == pytest.approx(40_000.0)
    assert a2["next_tier_rate"] == 0.08
    # A1 on h1: the quota club adds 1,000 at quota to 5% of 100,000
    assert out.loc["A1", "payout_at_quota"] == pytest.approx(5_000.0 + 1_000.0)
    assert np.isfinite(out["expected_payout"]).all()


def test_an_outlook_needs_scenarios(data):
    with pytest.raises(DataError, match="scenarios"):
        payout_outlook(_run(data, AS_OF))
