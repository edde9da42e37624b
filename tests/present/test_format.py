"""Numbers and names as people read them (spm_models.present.format)."""

from __future__ import annotations

import numpy as np
import pytest

from spm_models.present.format import DEALS, bookings_label, format_value, indicator_label


@pytest.mark.parametrize(
    "value, unit, text",
    [
        (12_345.0, "currency", "EUR 12.3k"),
        (2_500_000.0, "currency", "EUR 2.5m"),
        (950.0, "currency", "EUR 950"),
        (0.853, "ratio", "85%"),
        (2.44, "multiple", "2.4x"),
        (41.2, "days", "41 days"),
        (1234.0, "count", "1,234"),
        (np.nan, "ratio", "n/a"),
        (None, "count", "n/a"),
    ],
)
def test_format_value(value, unit, text):
    assert format_value(value, unit, currency="EUR") == text


@pytest.mark.parametrize(
    "indicator, label",
    [
        ("activity:call", "calls logged"),
        ("activity:demo", "demos logged"),
        ("activity:sales_meetings", "sales meetings logged"),
        ("opportunities_created", "new opportunities"),
        ("open_pipeline", "open pipeline at the month start"),
        ("market_index", "market index"),
        ("indicator:market_index", "market index"),
        ("pipeline_added", "pipeline added (value of new opportunities)"),
    ],
)
def test_indicator_labels(indicator, label):
    assert indicator_label(indicator) == label


@pytest.mark.parametrize(
    "value, text",
    [
        (21.0, "21 deals"),
        (1.0, "1 deal"),
        (0.0, "0 deals"),
        (3.6, "4 deals"),
        (12_345.0, "12.3k deals"),
        (np.nan, "n/a"),
    ],
)
def test_bookings_counted_in_deals_say_deals_never_a_currency(value, text):
    label = bookings_label("USD", "deals")
    assert label == DEALS and bookings_label("USD", "money") == "USD"
    assert format_value(value, "currency", currency=label) == text


def test_deal_axes_have_whole_number_ticks_and_money_axes_keep_theirs():
    """A bookings axis of a few deals once read "0, 0, 1, 2, 2, 2, 3" (fractional ticks rounded)."""
    import pandas as pd

    from spm_models.present import plots

    trend = pd.DataFrame(
        {
            "period": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01"]),
            "kpi": "bookings",
            "value": [0.0, 2.0, 3.0],
            "peer_median": [1.0, 1.0, 2.0],
        }
    )
    fig = plots.bookings_trend(trend, currency=DEALS)
    fig.canvas.draw()
    ax = fig.axes[0]
    ticks = [t for t in ax.get_yticks() if ax.get_ylim()[0] <= t <= ax.get_ylim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks)
    labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert len(labels) == len(set(labels)) and ax.get_ylabel() == "Bookings (deals)"
    money = plots.bookings_trend(trend.assign(value=[0.0, 2500.0, 3500.0]), currency="EUR")
    money.canvas.draw()
    assert "k" in "".join(t.get_text() for t in money.axes[0].get_yticklabels())
    assert money.axes[0].get_ylabel() == "Bookings (EUR)"
