"""spm_models.insights.scorecard: hand-computed scorecards, peers, funnel, indicators, standings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spm_models import kpi
from spm_models.insights import scorecard as sc

M = pd.Timestamp("2024-05-01")
Q = pd.Timestamp("2024-04-01")


def _k(rows):
    """Long KPI frame from (level, entity, grain, period, kpi, segment, value) tuples."""
    return pd.DataFrame(rows, columns=["level", "entity_id", "grain", "period", "kpi", "segment", "value"])


def _agents(n=6, terr=None):
    terr = ["T1"] * n if terr is None else list(terr)
    return pd.DataFrame(
        {
            "agent_id": [f"A{i}" for i in range(1, n + 1)],
            "agent_name": [f"Name {i}" for i in range(1, n + 1)],
            "territory_id": terr,
        }
    )


def test_entity_metrics_picks_month_and_quarter_values():
    km = _k(
        [
            ("agent", "A1", "month", M, "bookings", "", 100.0),
            ("agent", "A1", "month", M, "activity_volume", "call", 7.0),
            ("agent", "A1", "month", M, "activity_volume", "demo", 3.0),
            ("agent", "A1", "month", M - pd.DateOffset(months=1), "bookings", "", 999.0),
        ]
    )
    kq = _k(
        [
            ("agent", "A1", "quarter", Q, "bookings", "", 300.0),
            ("agent", "A1", "quarter", Q, "quota", "", 0.0),
            ("agent", "A1", "quarter", Q, "deals_won", "", 2.0),
            ("agent", "A1", "quarter", Q, "deals_lost", "", 3.0),
        ]
    )
    m = sc.entity_metrics(
        km,
        kq,
        level="agent",
        month=M,
        quarter=Q,
        open_pipeline=pd.Series({"A1": 500.0}),
        remaining_quota=pd.Series({"A1": 200.0}),
    )
    r = m.loc["A1"]
    assert r["bookings_month"] == 100 and r["activities_month"] == 10 and r["bookings_qtd"] == 300
    assert np.isnan(r["quota_qtd"])  # a quota of 0 means none
    assert r["deals_closed_qtd"] == 5
    assert r["pipeline_coverage"] == pytest.approx(2.5)


def test_percentiles_and_peer_statistics_by_hand():
    agents = _agents()
    groups = sc.peer_groups(agents, min_peers=5)
    assert set(groups["peer_group"]) == {"T1"}
    values = [10.0, 20.0, 20.0, 30.0, 40.0, np.nan]
    metrics = pd.DataFrame(
        {"bookings_month": values, "cycle_days_qtd": [50.0, 40.0, 30.0, 20.0, 10.0, 60.0]},
        index=pd.Index(agents["agent_id"], name="entity_id"),
    )
    card = sc.agent_scorecard(metrics, groups, min_peers=5)
    b = card[card["metric"] == "bookings_month"].set_index("agent_id")
    # 5 agents with a value: ranks 1, 2.5, 2.5, 4, 5 -> (rank - 1) / 4
    np.testing.assert_allclose(b.loc[["A1", "A2", "A3", "A4", "A5"], "percentile"], [0.0, 37.5, 37.5, 75.0, 100.0])
    assert np.isnan(b.loc["A6", "percentile"]) and b.loc["A1", "n_peers"] == 5
    assert b.loc["A1", "peer_median"] == 20.0 and b.loc["A1", "peer_p25"] == 20.0 and b.loc["A1", "peer_p75"] == 30.0
    c = card[card["metric"] == "cycle_days_qtd"].set_index("agent_id")
    # lower is better: the shortest cycle (A5, 10 days) is the 100th percentile of 6
    assert c.loc["A5", "percentile"] == 100.0 and c.loc["A6", "percentile"] == 0.0
    q = card[card["metric"] == "quota_qtd"]
    assert q["percentile"].isna().all()  # context line


def test_small_groups_fall_back_to_the_company_and_tiny_companies_hide_peers():
    agents = _agents(6, ("T1", "T1", "T1", "T2", "T2", "T2"))
    g = sc.peer_groups(agents, min_peers=5)
    assert set(g["peer_group"]) == {sc.COMPANY_GROUP} and (g["n_in_group"] == 6).all()
    metrics = pd.DataFrame(
        {"bookings_month": [1.0, 2.0, 3.0, np.nan, np.nan, np.nan]},
        index=pd.Index(agents["agent_id"], name="entity_id"),
    )
    card = sc.agent_scorecard(metrics, g, min_peers=5)
    b = card[card["metric"] == "bookings_month"]
    assert b["peer_median"].isna().all() and b["percentile"].isna().all()  # 3 values < 5: nothing shown


def test_indicator_history_z_scores():
    rows = [
        ("agent", "A1", "month", M - pd.DateOffset(months=k), "activity_volume", "call", v)
        for k, v in ((1, 10.0), (2, 20.0), (3, 30.0))
    ]
    rows += [
        ("agent", "A1", "month", M, "activity_volume", "call", 0.0),
        ("agent", "A1", "month", M, "opportunities_created", "", 4.0),
    ]
    out = sc.indicator_history(_k(rows), month=M).set_index("indicator")
    call = out.loc["activity:call"]
    assert call["history_mean"] == 20.0 and call["history_sd"] == 10.0 and call["z"] == pytest.approx(-2.0)
    assert call["direction"] == "down" and call["ratio_to_mean"] == 0.0
    assert out.loc["opportunities_created", "direction"] == "new"


def test_trend_change_compares_the_last_window_with_the_one_before():
    rows = [
        ("agent", "A1", "month", M - pd.DateOffset(months=k), "bookings", "", v)
        for k, v in enumerate([30.0, 30.0, 30.0, 10.0, 10.0, 10.0])
    ]
    rows += [("agent", "A2", "month", M, "bookings", "", 5.0)]
    out = sc.trend_change(_k(rows), month=M).set_index("entity_id")
    assert out.loc["A1", "change"] == pytest.approx(2.0) and out.loc["A1", "trend"] == "rising"
    assert out.loc["A2", "trend"] == "new"


def _funnel_opps():
    # agent A: deals reaching stages 0..4 then won; B: two lost at proposal, one still open
    return pd.DataFrame(
        {
            "opportunity_id": ["o1", "o2", "o3", "o4", "o5", "o6"],
            "agent_id": ["A", "A", "A", "B", "B", "B"],
            "created_date": pd.to_datetime(["2024-01-05"] * 6),
            "stage": ["negotiation", "qualification", "prospecting", "proposal", "proposal", "proposal"],
            "outcome": ["won", "lost", "lost", "lost", "lost", "open"],
            "close_date": pd.to_datetime(["2024-02-01", "2024-02-01", "2024-02-01", "2024-02-01", "2024-02-01", None]),
            "amount": [1.0] * 6,
        }
    )


def test_funnel_counts_by_hand_and_agree_with_the_kpi():
    opps = _funnel_opps()
    c = sc.funnel_counts(opps, None, created_from="2024-01-01", created_to="2024-03-31").set_index(["agent_id", "step"])
    # A: f = [5, 1 lost, 0 lost]; step 0: reached 2 (f>=1), decided 3; step 1: reached 1, decided 2
    assert (c.loc[("A", 0), "reached_next"], c.loc[("A", 0), "decided"]) == (2, 3)
    assert (c.loc[("A", 1), "reached_next"], c.loc[("A", 1), "decided"]) == (1, 2)
    # B: f = [3 lost, 3 lost, 3 open]; step 3 (proposal->negotiation): reached 0, decided 2
    assert (c.loc[("B", 3), "reached_next"], c.loc[("B", 3), "decided"]) == (0, 2)
    agents = pd.DataFrame({"agent_id": ["A", "B"], "territory_id": ["T", "T"]})
    ref = kpi.stage_conversion(opps, agents, grain="quarter", levels=["agent"], start="2024-01-01", end="2024-03-31")
    ref = ref[ref["period"] == pd.Timestamp("2024-01-01")].set_index(["entity_id", "segment"])["value"]
    mine = (c["reached_next"] / c["decided"]).rename(index=dict(enumerate(kpi.TRANSITIONS)), level="step")
    for (agent, seg), v in ref.items():
        if np.isfinite(v):
            assert mine.loc[(agent, seg)] == pytest.approx(v)


def test_funnel_comparison_names_the_weakest_stage():
    counts = pd.DataFrame(
        {
            "agent_id": ["A"] * 5 + ["B"] * 5,
            "transition": list(kpi.TRANSITIONS) * 2,
            "step": list(range(5)) * 2,
            "reached_next": [9, 8, 2, 5, 5, 9, 8, 8, 5, 5],
            "decided": [10, 10, 10, 10, 10, 10, 10, 10, 10, 10],
            "lost_known": [5] * 10,
        }
    )
    groups = pd.DataFrame({"agent_id": ["A", "B"], "territory_id": ["T", "T"], "peer_group": ["T", "T"]})
    f = sc.funnel_comparison(counts, groups, min_peers=2).set_index(["agent_id", "step"])
    assert f.loc[("A", 2), "agent_rate"] == 0.2 and f.loc[("A", 2), "peer_rate"] == pytest.approx(0.5)
    assert f.loc[("A", 2), "weakest"] and f.loc["A", "weakest"].sum() == 1
    pooled = sc.pooled_funnel(f.reset_index(), pd.Series({"A": "T", "B": "T"}))
    assert pooled.set_index("step").loc[2, "rate"] == pytest.approx(0.5)


def test_funnel_coverage_detects_sources_without_lost_stages():
    opps = _funnel_opps().assign(stage=lambda o: o["stage"].where(o["outcome"] != "lost"))
    c = sc.funnel_counts(opps, None, created_from="2024-01-01", created_to="2024-03-31")
    assert sc.funnel_coverage(c, opps, created_from="2024-01-01", created_to="2024-03-31") == 0.0


def test_leaderboard_ranks_quota_holders_first():
    agents = _agents(3)
    m = pd.DataFrame(
        {
            "bookings_qtd": [50.0, 500.0, 80.0],
            "quota_qtd": [100.0, np.nan, 100.0],
            "attainment_qtd": [0.5, np.nan, 0.8],
            "win_rate_qtd": [0.1, 0.2, 0.3],
        },
        index=pd.Index(agents["agent_id"], name="entity_id"),
    )
    lb = sc.leaderboard(m, agents)
    assert list(lb["agent_id"]) == ["A3", "A1", "A2"] and list(lb["rank"]) == [1, 2, 3]


def test_plan_comparison_year_to_date():
    rows = []
    for i, (b, q) in enumerate([(10.0, 20.0), (30.0, 20.0), (5.0, 0.0)]):
        p = pd.Timestamp("2024-01-01") + pd.DateOffset(months=i)
        rows += [
            ("company", "company", "month", p, "bookings", "", b),
            ("company", "company", "month", p, "quota", "", q),
        ]
    out = sc.plan_comparison(_k(rows), level="company", month="2024-03-01")
    np.testing.assert_allclose(out["ytd_bookings"], [10, 40, 45])
    np.testing.assert_allclose(out["ytd_attainment"], [0.5, 1.0, 45 / 40])
    assert np.isnan(out["attainment"].iloc[2])


def test_key_accounts_shares():
    opps = pd.DataFrame(
        {
            "opportunity_id": ["1", "2", "3", "4"],
            "agent_id": ["A", "A", "B", "B"],
            "account_id": ["x", "x", "y", None],
            "outcome": ["won", "won", "won", "won"],
            "close_date": pd.to_datetime(["2024-01-10"] * 4),
            "amount": [10.0, 30.0, 40.0, 20.0],
        }
    )
    acc = sc.key_accounts(
        opps,
        pd.DataFrame({"account_id": ["x", "y"], "account_name": ["X Ltd", "Y plc"]}),
        pd.Series({"A": "T", "B": "T"}),
        start="2024-01-01",
        end="2024-01-31",
    )
    assert list(acc["account_name"]) == ["X Ltd", "Y plc"]
    np.testing.assert_allclose(acc["share"], [0.4, 0.4])  # of 100, the account-less deal counted in the total


def test_territory_agent_table_joins_everything():
    agents = _agents(2)
    m = pd.DataFrame(
        {
            "bookings_qtd": [1.0, 2.0],
            "quota_qtd": [10.0, 10.0],
            "attainment_qtd": [0.1, 0.2],
            "open_pipeline": [5.0, 6.0],
            "pipeline_coverage": [0.5, 0.75],
        },
        index=pd.Index(agents["agent_id"], name="entity_id"),
    )
    out = pd.DataFrame({"unique_id": ["A1", "A2"], "p_quota": [0.3, 0.4], "expected_attainment": [0.5, 0.6]})
    tr = pd.DataFrame({"entity_id": ["A1"], "change": [0.2], "trend": ["rising"]})
    t = sc.territory_agent_table(m, out, tr, agents)
    assert list(t["agent_id"]) == ["A2", "A1"] and list(t["trend"]) == ["new", "rising"]
