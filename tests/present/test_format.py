"""Numbers and names as people read them (spm_models.present.format)."""

from __future__ import annotations

import numpy as np
import pytest

from spm_models.present.format import format_value, indicator_label


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
