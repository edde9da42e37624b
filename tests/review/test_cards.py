"""Cards below the headline do not repeat it (spm_models.review.render, after_headline)."""

from __future__ import annotations

import re

import pandas as pd

from spm_models.review import render

OUTLOOK = pd.DataFrame(
    [{"quota": 100.0, "closed_to_date": 40.0, "median_bookings": 90.0, "p_quota": 0.4, "reached": False}]
)
COMMISSION = pd.DataFrame(
    [{"expected_payout": 9.0, "payout_q0.1": 5.0, "payout_q0.9": 12.0, "earned_to_date": 4.0, "payout_at_quota": 10.0}]
)
CLOSED = pd.DataFrame([{"bookings": 120.0, "quota": 100.0, "attainment": 1.2, "payout": 11.0}])


def _labels(html: str) -> list[str]:
    return re.findall(r'class="spm-card-label">([^<]*)<', html)


def test_outlook_after_the_headline_drops_the_chance_it_showed():
    full = _labels(render.outlook_cards(OUTLOOK, currency="USD", quarter="2024-Q4"))
    after = _labels(render.outlook_cards(OUTLOOK, currency="USD", quarter="2024-Q4", after_headline=True))
    assert "Chance of reaching the 2024-Q4 quota" in full
    assert after == [x for x in full if not x.startswith("Chance")]
    # without a quota the headline showed the median total: nothing is left to repeat it with
    no_quota = OUTLOOK.assign(quota=float("nan"))
    assert render.outlook_cards(no_quota, currency="USD", quarter="2024-Q4", after_headline=True) == ""
    assert _labels(render.outlook_cards(no_quota, currency="USD", quarter="2024-Q4")) == [
        "Booked in 2024-Q4 so far",
        "Expected 2024-Q4 total (median)",
    ]


def test_commission_and_closed_quarter_after_the_headline():
    comm = _labels(render.commission_cards(COMMISSION, currency="USD", quarter="2024-Q4", after_headline=True))
    assert comm == [
        "80% range 2024-Q4",
        "Earned on 2024-Q4 bookings so far",
        "Payout at exactly 100% of the 2024-Q4 quota",
    ]
    assert "Expected payout 2024-Q4 (mean)" in _labels(
        render.commission_cards(COMMISSION, currency="USD", quarter="2024-Q4")
    )
    closed = _labels(render.closed_quarter_cards(CLOSED, currency="USD", quarter="2024-Q3", after_headline=True))
    assert closed == ["Booked in 2024-Q3 (final)", "Quota 2024-Q3", "Payout 2024-Q3 (final)"]
    assert "Attainment 2024-Q3 (final)" in _labels(
        render.closed_quarter_cards(CLOSED, currency="USD", quarter="2024-Q3")
    )
