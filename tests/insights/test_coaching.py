"""spm_models.insights.coaching: rules fire on hand-made numbers and quote them; 2-4 points per agent."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spm_models.insights.coaching import coaching_points, recognition, territory_risks
from spm_models.insights.settings import CoachingSettings


def _card(agent, **metrics):
    rows = []
    for name, (value, pct, median) in metrics.items():
        rows.append(
            {
                "agent_id": agent,
                "metric": name,
                "label": name.replace("_", " ").capitalize(),
                "unit": "ratio" if "rate" in name else "currency",
                "value": value,
                "peer_group": "company",
                "peer_label": "all agents of the company",
                "n_peers": 6,
                "peer_p25": np.nan,
                "peer_median": median,
                "peer_p75": np.nan,
                "percentile": pct,
            }
        )
    return pd.DataFrame(rows)


def _outlook(agent, quota, closed, expected, p, shortfall):
    return pd.DataFrame(
        {
            "unique_id": [agent],
            "quota": [quota],
            "closed_to_date": [closed],
            "expected_bookings": [expected],
            "p_quota": [p],
            "expected_shortfall": [shortfall],
        }
    )


NO_IND = pd.DataFrame(columns=["entity_id", "indicator", "value", "history_mean", "z", "direction"])


def test_a_struggling_agent_gets_the_severe_points_first():
    card = _card(
        "A1", bookings_month=(1_000.0, 10.0, 5_000.0), pipeline_coverage=(0.6, 20.0, 2.0), win_rate_qtd=(0.1, 10.0, 0.3)
    )
    ind = pd.DataFrame(
        {
            "entity_id": ["A1"],
            "indicator": ["activity:demo"],
            "value": [2.0],
            "history_mean": [9.0],
            "z": [-2.0],
            "direction": ["down"],
        }
    )
    out = coaching_points(
        card, None, ind, _outlook("A1", 50_000.0, 10_000.0, 30_000.0, 0.12, 20_000.0), currency="USD", weeks_left=5
    )
    # worth (bookings at stake / quota): shortfall 20k/50k = 0.4; pipeline (3 - 0.6) x 40k x 10% / 50k = 0.19;
    # win rate (30% - 10%) x open pipeline 24k / 50k = 0.096; the demo dip 0.02 x 2 = 0.04
    assert list(out["topic"]) == ["quota_outlook", "pipeline", "win_rate", "activity"]
    assert list(out["rank"]) == [1, 2, 3, 4]
    assert out["severity"].to_numpy() == pytest.approx([0.4, 0.192, 0.096, 0.04])
    first = out["text"].iloc[0]
    assert "12% chance" in first and "USD 50.0k" in first and "USD 30.0k" in first and "5 weeks" in first
    assert "USD 40.0k is still to book" in first
    assert "0.6x" in out["text"].iloc[1] and "USD 96.0k of new opportunities" in out["text"].iloc[1]
    assert "Demos logged: 2 this month" in out["text"].iloc[3] and "usual 9" in out["text"].iloc[3]


def test_an_agent_on_track_still_gets_two_points():
    card = _card("A2", bookings_month=(9_000.0, 90.0, 5_000.0), pipeline_coverage=(4.0, 60.0, 2.0))
    out = coaching_points(card, None, NO_IND, _outlook("A2", 20_000.0, 18_000.0, 26_000.0, 0.92, 100.0))
    assert 2 <= len(out) <= 4
    assert (
        out["topic"].iloc[0] == "quota_outlook"
        and "on track" in out["text"].iloc[0]
        and "92% chance" in out["text"].iloc[0]
    )
    assert "strength" in set(out["topic"])
    # a percentile compares the agent with the others: the text says so and counts them
    assert "better than 90% of the 5 other agents of the company" in out.loc[out["topic"] == "strength", "text"].iloc[0]


def test_weakest_funnel_stage_is_named_with_both_rates():
    card = _card("A3", bookings_month=(1.0, 50.0, 1.0))
    funnel = pd.DataFrame(
        {
            "agent_id": ["A3"],
            "transition": ["proposal->negotiation"],
            "agent_rate": [0.35],
            "peer_rate": [0.52],
            "gap": [-0.17],
            "weakest": [True],
        }
    )
    out = coaching_points(card, funnel, NO_IND, _outlook("A3", np.nan, 0.0, 0.0, np.nan, np.nan))
    text = out.loc[out["topic"] == "funnel", "text"].iloc[0]
    assert "proposal to negotiation" in text and "35%" in text and "52%" in text
    assert "quota_outlook" not in set(out["topic"])  # no quota: no outlook point


def _deals(agent, rows):
    """Open deals as :func:`spm_models.insights.deals.open_deals` gives them: (name, stage, amount, p_win,
    p_win_quarter, days in stage, usual days, stuck)."""
    f = pd.DataFrame(
        rows,
        columns=[
            "account_name",
            "stage",
            "amount",
            "p_win",
            "p_win_quarter",
            "days_in_stage",
            "usual_days_in_stage",
            "stuck",
        ],
    )
    f["agent_id"] = agent
    f["opportunity_id"] = [f"O{i}" for i in range(len(f))]
    f["rank_agent"] = (-(f["amount"] * f["p_win"])).rank(method="first").astype(int)
    return f


def test_an_agent_far_above_quota_is_not_coached_on_an_activity_dip_first():
    """268% of quota with calls at 77 against a usual 103: the first point is next quarter, never the calls."""
    card = _card("A9", bookings_month=(30_000.0, 95.0, 9_000.0), attainment_qtd=(2.68, 100.0, 0.9))
    ind = pd.DataFrame(
        {
            "entity_id": ["A9"],
            "indicator": ["activity:call"],
            "value": [77.0],
            "history_mean": [103.0],
            "z": [-3.5],
            "direction": ["down"],
        }
    )
    outlook = _outlook("A9", 20_000.0, 53_600.0, 60_000.0, 1.0, 0.0).assign(reached=True)
    deals = _deals("A9", [("Apex Inc", "proposal", 12_000.0, 0.5, 0.3, 10, 14, False)])
    out = coaching_points(card, None, ind, outlook, deals=deals, quarter="2024-Q4")
    assert out["topic"].iloc[0] == "next_quarter" and "activity" in set(out["topic"])
    assert out.loc[out["topic"] == "activity", "rank"].iloc[0] > 1
    first = out["text"].iloc[0]
    assert "268%" in first and "2024-Q4" in first and "Apex Inc (USD 12.0k, proposal)" in first
    # the same agent below the threshold would hear about quota first, still not about calls
    lower = coaching_points(card, None, ind, outlook, deals=deals, settings=CoachingSettings(far_above_quota=3.0))
    assert lower["topic"].iloc[0] != "activity"


def test_points_name_the_deals_behind_them():
    card = _card("A1", bookings_month=(1_000.0, 10.0, 5_000.0))
    deals = _deals(
        "A1",
        [
            ("Apex Inc", "negotiation", 10_000.0, 0.6, 0.5, 5, 10, False),
            ("Vertex SA", "proposal", 30_000.0, 0.3, 0.0, 60, 12, True),
            ("Union Corp", "prospecting", 5_000.0, 0.1, 0.02, 3, 20, False),
        ],
    )
    out = coaching_points(
        card, None, NO_IND, _outlook("A1", 50_000.0, 10_000.0, 30_000.0, 0.2, 20_000.0), deals=deals
    ).set_index("topic")
    quota = out.at["quota_outlook", "text"]
    assert "Apex Inc (USD 10.0k, 50% chance by the quarter end)" in quota and "Vertex SA" not in quota
    stuck = out.at["stuck", "text"]
    assert (
        "1 open deal has sat in its stage" in stuck
        and "Vertex SA (USD 30.0k, proposal for 60 days, usually 12)" in stuck
    )
    assert out.at["stuck", "severity"] == pytest.approx(30_000 * 0.3 / 50_000)


def test_territory_risks():
    table = pd.DataFrame(
        {
            "territory_id": ["T", "T"],
            "agent_name": ["Ana", "Bo"],
            "p_quota": [0.1, 0.9],
            "pipeline_coverage": [0.5, 3.0],
            "trend": ["falling", "flat"],
            "change": [-0.4, 0.0],
        }
    )
    terr = pd.DataFrame({"unique_id": ["T"], "quota": [100_000.0], "p_quota": [0.2], "expected_shortfall": [30_000.0]})
    acc = pd.DataFrame({"territory_id": ["T"], "account_name": ["Big Co"], "share": [0.55]})
    r = territory_risks(table, terr, acc)
    assert list(r["severity"]) == [3.0, 2.0, 2.0, 1.0, 1.0]
    assert "20% chance" in r["risk"].iloc[0] and "USD 30.0k" in r["risk"].iloc[0]
    assert r["risk"].str.contains("Ana: 10% chance").any() and r["risk"].str.contains("Big Co brought 55%").any()
    assert not r["risk"].str.contains("Bo").any()


def test_recognition_awards():
    agents = pd.DataFrame({"agent_id": ["A", "B"], "agent_name": ["Ana", "Bo"], "territory_id": ["T", "T"]})
    m = pd.DataFrame(
        {
            "attainment_qtd": [0.9, 1.1],
            "bookings_month": [500.0, 100.0],
            "win_rate_qtd": [0.8, 0.5],
            "deals_closed_qtd": [3.0, 10.0],
        },
        index=["A", "B"],
    )
    tr = pd.DataFrame({"entity_id": ["A", "B"], "change": [0.5, -0.1]})
    r = recognition(m, agents, tr).set_index("award")
    assert r.loc["Highest attainment this quarter", "agent_name"] == "Bo"
    assert r.loc["Most bookings this month", "agent_name"] == "Ana"
    assert r.loc["Best win rate this quarter", "agent_name"] == "Bo"  # Ana closed too few deals
    assert r.loc["Strongest momentum", "text"] == "bookings of the last 3 months up 50% on the 3 before"
