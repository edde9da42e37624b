"""Numbers and names as people read them: one formatter per unit, one label per indicator.

Every table cell, card, axis and sentence of the reports and the workbench formats its numbers
here, so a ratio reads ``85%`` and money ``USD 12.3k`` everywhere.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["format_value", "indicator_label"]

_SCALE = ((1e9, "bn"), (1e6, "m"), (1e3, "k"))


def format_value(value: Any, unit: str, *, currency: str = "USD", digits: int = 0) -> str:
    """A number for a sentence or a table cell, in its unit.

    ``currency``: ``"USD 12.3k"``; ``ratio``: ``"85%"``; ``multiple``: ``"2.4x"``;
    ``days``: ``"41 days"``; ``count``: ``"1,234"``; missing values: ``"n/a"``.

    >>> format_value(12345.0, "currency", currency="EUR")
    'EUR 12.3k'
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
        a = abs(v)
        for size, suffix in _SCALE:
            if a >= size:
                return f"{currency} {v / size:,.1f}{suffix}"
        return f"{currency} {v:,.0f}"
    if unit == "ratio":
        return f"{v:.{digits}%}"
    if unit == "multiple":
        return f"{v:.1f}x"
    if unit == "days":
        return f"{v:,.0f} days"
    return f"{v:,.{digits}f}"


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
