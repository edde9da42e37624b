"""Numbers and names as people read them: one formatter per unit, one label per indicator.

Every table cell, card, axis and sentence of the reports and the workbench formats its numbers
here, so a ratio reads ``85%`` and money ``USD 12.3k`` everywhere.

Bookings have one label per dataset, the *bookings label*: a currency code when bookings are
money, or :data:`DEALS` when they are counted in won deals (the dataset's bookings measure,
:data:`spm_models.config.BOOKINGS_MEASURES`). :func:`bookings_label` gives it, and every
amount of unit ``"currency"`` is formatted with it, so with deals every table, card, axis and
sentence says ``21 deals`` and never a currency.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from spm_models.config import check_bookings_measure

__all__ = [
    "DEALS",
    "format_value",
    "format_change",
    "indicator_label",
    "bookings_label",
    "tick_label",
    "is_deals",
    "axis_formatter",
]

_SCALE = ((1e9, "bn"), (1e6, "m"), (1e3, "k"))
#: The bookings label when bookings are counted in won deals.
DEALS = "deals"


def bookings_label(currency: str, measure: str = "money") -> str:
    """The label of bookings: ``currency`` when they are money, :data:`DEALS` when counted in deals.

    >>> bookings_label("EUR", "deals")
    'deals'
    """
    return DEALS if check_bookings_measure(measure) == "deals" else currency


def is_deals(currency: str) -> bool:
    """Whether a bookings label means bookings counted in deals."""
    return str(currency).strip().lower() == DEALS


def _scaled(v: float) -> str:
    a = abs(v)
    for size, suffix in _SCALE:
        if a >= size:
            return f"{v / size:,.1f}{suffix}"
    return f"{v:,.0f}"


def format_value(value: Any, unit: str, *, currency: str = "USD", digits: int = 0) -> str:
    """A number for a sentence or a table cell, in its unit.

    ``currency``: ``"USD 12.3k"``, or with the bookings label :data:`DEALS` a count of deals,
    ``"21 deals"`` (``"1 deal"``; ``"12.3k deals"``); ``ratio``: ``"85%"``; ``multiple``:
    ``"2.4x"``; ``days``: ``"41 days"``; ``count``: ``"1,234"``; missing values: ``"n/a"``.

    >>> format_value(12345.0, "currency", currency="EUR")
    'EUR 12.3k'
    >>> format_value(21.0, "currency", currency=DEALS)
    '21 deals'
    >>> format_value(0.853, "ratio")
    '85%'
    """
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "n/a"
    if not np.isfinite(v):
        return "n/a"
    if unit == "currency":
        if is_deals(currency):
            text = _scaled(v) if abs(v) >= 1e4 else f"{v:,.{digits}f}"
            return f"{text} deal" if text == "1" else f"{text} deals"
        return f"{currency} {_scaled(v)}"
    if unit == "ratio":
        return f"{v:.{digits}%}"
    if unit == "multiple":
        return f"{v:.1f}x"
    if unit == "days":
        return f"{v:,.0f} days"
    return f"{v:,.{digits}f}"


def format_change(delta: Any, unit: str, *, currency: str = "USD") -> str:
    """A change since an earlier figure: ``"up 8 pts"``, ``"down USD 1.2k"``, ``"no change"``.

    Ratios change in percentage points (``0.08`` -> ``"up 8 pts"``); money and counts in their
    unit (:func:`format_value`); missing: ``""`` (nothing to say).

    >>> format_change(0.081, "ratio")
    'up 8 pts'
    >>> format_change(-1234.0, "currency", currency="EUR")
    'down EUR 1.2k'
    """
    try:
        v = float(delta)
    except (TypeError, ValueError):
        return ""
    if not np.isfinite(v):
        return ""
    size = abs(v) * 100 if unit == "ratio" else abs(v)
    if round(size) == 0 and (unit == "ratio" or size < 0.5):
        return "no change"
    word = "up" if v > 0 else "down"
    if unit == "ratio":
        return f"{word} {size:.0f} pt{'s' if round(size) != 1 else ''}"
    return f"{word} {format_value(abs(v), unit, currency=currency)}"


def axis_formatter(unit: str, *, currency: str = "USD"):
    """A matplotlib tick formatter for a KPI's unit: ratios as ``85%``, money as ``12k``, days as
    ``41``, multiples as ``2.4x``, counts as whole numbers (``1,234``) or, below 10, one decimal.

    One formatter per unit, so a win rate of 0.31 never reads ``0`` (the unit goes in the axis
    label).
    """
    from matplotlib.ticker import FuncFormatter

    def fmt(v: float, _pos=None) -> str:
        if unit == "ratio":
            return f"{v:.0%}" if abs(v) >= 0.1 or v == 0 else f"{v:.1%}"
        if unit == "currency":
            return tick_label(v)
        if unit == "multiple":
            return f"{v:.1f}x"
        if unit == "days":
            return f"{v:,.0f}"
        return f"{v:,.0f}" if abs(v) >= 10 or float(v).is_integer() else f"{v:,.1f}"

    return FuncFormatter(fmt)


def tick_label(value: float) -> str:
    """An axis tick of bookings: ``12k``, ``1.5m``, ``400`` (the unit is in the axis label)."""
    a = abs(value)
    for size, s in _SCALE:
        if a >= size:
            return f"{value / size:,.0f}{s}" if a >= 10 * size else f"{value / size:,.1f}{s}"
    return f"{value:,.0f}"


def indicator_label(indicator: str) -> str:
    """Readable name of an indicator of :func:`~spm_models.insights.scorecard.indicator_history` or a
    candidate of :func:`~spm_models.indicators.series.candidate_series` (``indicator:leads_web`` ->
    ``leads web``)."""
    if indicator.startswith("activity:"):
        kind = indicator.split(":", 1)[1].replace("_", " ")
        return f"{kind}s logged" if not kind.endswith("s") else f"{kind} logged"
    if indicator.startswith("indicator:"):
        return indicator.split(":", 1)[1].replace("_", " ")
    return {
        "opportunities_created": "new opportunities",
        "open_pipeline": "open pipeline at the month start",
        "pipeline_added": "pipeline added (value of new opportunities)",
    }.get(indicator, indicator.replace("_", " "))
