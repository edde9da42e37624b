"""Lead KPIs, by hand, and against plain pandas on a random funnel.

Leads::

    lead  channel  created     opportunity  opp created  outcome  close        disqualified
    l1    web      2024-01-03  o1           2024-01-03   won      2024-01-13
    l2    web      2024-01-20  -
    l3    event    2024-02-01  o3           2024-02-05   open     -
    l4    (empty)  2024-02-10  -                                               2024-02-12
    l5    event    2024-02-11  o5           2024-02-11   lost     -

Spend: web 100 in January, event 50 in February.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spm_models.kpi.leads import NO_CHANNEL, channel_summary, lead_kpis

JAN, FEB = pd.Timestamp("2024-01-01"), pd.Timestamp("2024-02-01")


def leads():
    return pd.DataFrame(
        {
            "lead_id": ["l1", "l2", "l3", "l4", "l5"],
            "created_date": pd.to_datetime(["2024-01-03", "2024-01-20", "2024-02-01", "2024-02-10", "2024-02-11"]),
            "channel": ["web", "web", "event", None, "event"],
            "opportunity_id": ["o1", None, "o3", None, "o5"],
            "disqualified_date": pd.to_datetime([None, None, None, "2024-02-12", None]),
        }
    )


def opps():
    return pd.DataFrame(
        {
            "opportunity_id": ["o1", "o3", "o5"],
            "created_date": pd.to_datetime(["2024-01-03", "2024-02-05", "2024-02-11"]),
            "close_date": pd.to_datetime(["2024-01-13", None, None]),
            "outcome": ["won", "open", "lost"],
        }
    )


def spend():
    return pd.DataFrame(
        {"channel": ["web", "event"], "date": pd.to_datetime(["2024-01-15", "2024-02-01"]), "spend": [100.0, 50.0]}
    )


def v(frame, name, period, segment):
    rows = frame[(frame.kpi == name) & (frame.period == period) & (frame.segment == segment)]
    assert len(rows) == 1, (name, period, segment)
    return float(rows.value.iloc[0])


def test_lead_kpis_per_channel_and_month():
    k = lead_kpis(leads(), opps(), spend=spend())
    assert set(k["level"]) == {"company"} and set(k["entity_id"]) == {"company"}
    assert v(k, "leads_created", JAN, "web") == 2 and v(k, "leads_created", FEB, "event") == 2
    assert v(k, "leads_created", FEB, NO_CHANNEL) == 1 and v(k, "leads_created", FEB, "") == 3
    assert v(k, "lead_to_opportunity", JAN, "web") == 0.5
    assert v(k, "lead_to_win", JAN, "web") == 0.5 and v(k, "lead_to_win", FEB, "event") == 0.0
    # undecided: l2 (nothing yet), l3 (open); l4 disqualified and l5 lost are decided
    assert v(k, "leads_undecided", JAN, "") == 1 and v(k, "leads_undecided", FEB, "") == 1
    assert v(k, "days_to_opportunity", FEB, "event") == 2.0  # l3: 4 days, l5: 0 days
    assert v(k, "days_to_win", JAN, "web") == 10.0
    assert v(k, "cost_per_lead", JAN, "web") == 50.0 and v(k, "cost_per_win", JAN, "web") == 100.0
    assert np.isnan(v(k, "cost_per_win", FEB, "event"))  # nothing won


def test_without_spend_there_are_no_cost_kpis():
    assert "cost_per_lead" not in set(lead_kpis(leads(), opps())["kpi"])


def test_channel_summary_over_a_window():
    s = channel_summary(leads(), opps(), spend=spend(), created_from="2024-02-01", created_to="2024-02-29")
    assert s["channel"].tolist() == ["event", NO_CHANNEL, ""]
    event = s.set_index("channel").loc["event"]
    assert (event["leads_created"], event["converted"], event["won"], event["leads_undecided"]) == (2, 2, 0, 1)
    assert event["channel_spend"] == 50.0 and event["cost_per_lead"] == 25.0
    total = s.set_index("channel").loc[""]
    assert total["leads_created"] == 3 and total["channel_spend"] == 50.0  # web's January spend is outside


def test_lead_kpis_agree_with_plain_pandas_on_a_random_funnel():
    rng = np.random.default_rng(3)
    n = 400
    created = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 180, n), unit="D")
    channel = rng.choice(["web", "event", "referral"], n)
    won = rng.random(n) < np.where(channel == "referral", 0.4, 0.08)
    lead = pd.DataFrame(
        {
            "lead_id": [f"l{i}" for i in range(n)],
            "created_date": created,
            "channel": channel,
            "opportunity_id": np.where(won, [f"o{i}" for i in range(n)], None),
        }
    )
    close = created[won] + pd.to_timedelta(rng.integers(1, 90, won.sum()), unit="D")
    opp = pd.DataFrame(
        {
            "opportunity_id": [f"o{i}" for i in np.flatnonzero(won)],
            "created_date": created[won],
            "close_date": close,
            "outcome": "won",
        }
    )
    k = lead_kpis(lead, opp)
    month = created.to_period("M").to_timestamp()
    frame = pd.DataFrame({"month": month, "channel": channel, "won": won})
    expected = frame.groupby(["month", "channel"])["won"].agg(["size", "mean"])
    for (m, ch), row in expected.iterrows():
        assert v(k, "leads_created", m, ch) == row["size"]
        assert v(k, "lead_to_win", m, ch) == pytest.approx(row["mean"])
    days = (close - created[won]).days
    med = pd.Series(days, index=month[won]).groupby(level=0).median()
    for m, d in med.items():
        assert v(k, "days_to_win", m, "") == d
