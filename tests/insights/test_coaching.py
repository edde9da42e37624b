"""spm_models.insights.coaching: rules fire on hand-made numbers and quote them; 2-4 points per agent."""

from __future__ import annotations

import numpy as np
import pandas as pd

from spm_models.insights.coaching import coaching_points, recognition, territory_risks


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
    assert list(out["topic"]) == ["quota_outlook", "pipeline", "activity", "win_rate"]
    assert list(out["rank"]) == [1, 2, 3, 4]
    first = out["text"].iloc[0]
    assert "12% chance" in first and "USD 50.0k" in first and "USD 30.0k" in first and "5 weeks" in first
    assert "0.6x" in out["text"].iloc[1]
    assert "Demos logged: 2 this month" in out["text"].iloc[2] and "usual 9" in out["text"].iloc[2]


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
    assert "better than 90% of all agents of the company" in out.loc[out["topic"] == "strength", "text"].iloc[0]


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
