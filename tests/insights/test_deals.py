"""spm_models.insights.deals on hand-made deals, the next commission tier, and the pipeline model's deal timing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spm_models.insights.commission import DEFAULT_PLAN, next_tier
from spm_models.insights.deals import closed_deals, deals_at_risk, open_deals, usual_days_in_stage
from spm_models.insights.settings import CoachingSettings
from spm_models.models.pipeline.forecast import fit_pipeline_model

AS_OF = pd.Timestamp("2024-06-30")
TERR = pd.Series({"A1": "T1", "A2": "T1"})


def _opps():
    return pd.DataFrame(
        {
            "opportunity_id": ["O1", "O2", "O3", "O4", "O5", "O6"],
            "agent_id": ["A1", "A1", "A2", "A1", "A2", "A1"],
            "account_id": ["C1", "C2", "C1", None, "C2", "C1"],
            "created_date": pd.to_datetime(
                ["2024-01-01", "2024-05-01", "2024-06-20", "2024-02-01", "2024-03-01", "2024-07-05"]
            ),
            "outcome": ["open", "open", "open", "won", "lost", "open"],
            "close_date": pd.to_datetime([None, None, None, "2024-06-10", "2024-06-15", None]),
            "amount": [50_000.0, 8_000.0, 3_000.0, 12_000.0, 20_000.0, 1_000.0],
        }
    )


def _history():
    rows = [
        ("O1", "prospecting", "2024-01-01"),
        ("O1", "proposal", "2024-03-01"),  # in proposal for 121 days at AS_OF
        ("O2", "prospecting", "2024-05-01"),
        ("O2", "proposal", "2024-06-20"),  # 10 days
        ("O3", "prospecting", "2024-06-20"),
        ("O4", "prospecting", "2024-02-01"),
        ("O4", "proposal", "2024-05-01"),  # 40 days in proposal, then won on 06-10
        ("O5", "prospecting", "2024-03-01"),
        ("O5", "proposal", "2024-06-05"),  # 10 days in proposal, then lost 06-15
    ]
    return pd.DataFrame(rows, columns=["opportunity_id", "stage", "entered_date"]).assign(
        entered_date=lambda f: pd.to_datetime(f["entered_date"])
    )


def test_usual_days_is_the_median_of_finished_stays():
    usual = usual_days_in_stage(_history(), _opps(), as_of=AS_OF)
    # proposal stays that ended: O4 (40 days), O5 (10 days); prospecting: O1 60, O2 50, O4 90, O5 96
    assert usual["proposal"] == 25.0 and usual["prospecting"] == 75.0


def test_open_deals_are_the_open_ones_ranked_by_expected_value():
    timing = pd.DataFrame(
        {
            "opportunity_id": ["O1", "O2", "O3"],
            "p_win": [0.1, 0.8, 0.5],
            "p_win_by": [0.05, 0.6, 0.2],
            "expected_close": pd.to_datetime(["2024-09-02", "2024-07-08", "2024-08-05"]),
        }
    )
    deals = open_deals(
        _opps(), as_of=AS_OF, territory_of=TERR, timing=timing, stage_history=_history(), settings=CoachingSettings()
    ).set_index("opportunity_id")
    assert sorted(deals.index) == ["O1", "O2", "O3"]  # O6 is created after as_of; O4, O5 closed
    assert deals.at["O2", "expected_value"] == pytest.approx(6_400.0)
    assert deals.at["O2", "rank_agent"] == 1 and deals.at["O1", "rank_agent"] == 2 and deals.at["O3", "rank_agent"] == 1
    assert list(deals.sort_values("rank_territory").index) == ["O2", "O1", "O3"]
    assert deals.at["O1", "stage"] == "proposal" and deals.at["O1", "days_in_stage"] == 121
    assert deals.at["O1", "usual_days_in_stage"] == 25.0
    assert deals.at["O1", "stuck"] and not deals.at["O2", "stuck"]  # 121 > 2 x 25; 10 is not
    assert deals.at["O1", "age_days"] == (AS_OF - pd.Timestamp("2024-01-01")).days


def test_a_stuck_deal_needs_the_minimum_days_too():
    deals = open_deals(
        _opps(),
        as_of=AS_OF,
        territory_of=TERR,
        stage_history=_history(),
        settings=CoachingSettings(stuck_factor=1.0, stuck_min_days=200),
    )
    assert not deals["stuck"].any() and deals["p_win"].isna().all()


def test_closed_deals_of_the_month_and_where_they_were_lost():
    f = closed_deals(_opps(), start="2024-06-01", end=AS_OF, territory_of=TERR, stage_history=_history())
    assert list(f["opportunity_id"]) == ["O4", "O5"]
    lost = f.set_index("opportunity_id").loc["O5"]
    assert lost["outcome"] == "lost" and lost["last_stage"] == "proposal" and lost["amount"] == 20_000.0


def test_deals_at_risk_are_large_and_stuck_or_late_and_unlikely():
    deals = pd.DataFrame(
        {
            "opportunity_id": ["a", "b", "c", "d", "e"],
            "territory_id": "T1",
            "stage": ["proposal", "negotiation", "prospecting", "proposal", "proposal"],
            "amount": [20.0, 25.0, 30.0, 1.0, 2.0],  # median 20
            "p_win": [0.5, 0.1, 0.05, 0.01, 0.5],
            "stuck": [True, False, False, True, False],
            "days_in_stage": [40, 3, 3, 50, 1],
            "usual_days_in_stage": [10.0, 10.0, 10.0, 10.0, 10.0],
        }
    )
    risk = deals_at_risk(deals, settings=CoachingSettings(risk_p_win=0.2))
    # c is early (low chances are normal there), d is small
    assert list(risk["opportunity_id"]) == ["b", "a"]
    assert risk["risk"].tolist() == ["10% chance of winning", "40 days in its stage (usually 10)"]


def test_next_tier():
    nt = next_tier([50.0, 120.0, 190.0, 10.0], [100.0, 100.0, 100.0, np.nan], DEFAULT_PLAN)
    assert nt["next_attainment"].tolist()[:2] == [1.0, 1.5] and np.isnan(nt["next_attainment"].iloc[2])
    assert nt["to_next"].tolist()[:2] == [50.0, 30.0]
    assert nt["rate_now"].tolist() == [0.05, 0.08, 0.10, 0.05] and nt["rate_next"].tolist()[:2] == [0.08, 0.10]
    assert nt.iloc[3].isna()[["next_attainment", "to_next"]].all()


def test_deal_timing_is_the_median_win_period_and_sums_to_p_win_within_h():
    rng = np.random.default_rng(0)
    n = 400
    created = pd.Timestamp("2023-01-02") + pd.to_timedelta(rng.integers(0, 500, n), unit="D")
    cycle = pd.to_timedelta(rng.integers(7, 90, n), unit="D")
    won = rng.random(n) < 0.4
    opps = pd.DataFrame(
        {
            "opportunity_id": [f"O{i}" for i in range(n)],
            "agent_id": "A1",
            "created_date": created,
            "outcome": np.where(won, "won", "lost"),
            "close_date": created + cycle,
            "amount": 100.0,
        }
    )
    as_of = pd.Timestamp("2024-03-31")
    opps.loc[opps["close_date"] > as_of, "outcome"] = "open"
    m = fit_pipeline_model(opps, as_of=as_of, per_agent=False, calendar=False)
    t = m.deal_timing(opps, h=26, until=pd.Timestamp("2024-04-30"))
    p = m.deal_probabilities(opps, h=26)
    assert np.allclose(t["p_win_within_h"], p["p_win_within_h"])
    assert (t["p_win_by"] <= t["p_win_within_h"] + 1e-12).all() and (t["p_win_by"] > 0).all()
    assert (t["expected_close"] > m.as_of).all() and (t["expected_close"] <= m.as_of + pd.Timedelta(weeks=26)).all()
