"""spm_models.indicators.summary: the review's leading-indicator table, its numbers checked against the series."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spm_models.indicators.series import build_series
from spm_models.indicators.summary import SUMMARY_COLUMNS, leading_indicator_summary, review_leading_indicators


@pytest.fixture(scope="module")
def org():
    from spm_models.synthetic.generator import generate_organisation

    return generate_organisation(30, years=2, seed=4)


def _table(z: float = 5.0) -> pd.DataFrame:
    """A discovery table (as discover_leading_indicators returns) with one leading indicator."""
    return pd.DataFrame(
        {
            "candidate": ["activity:call", "activity:demo", "indicator:market_index"],
            "best_lag": pd.array([pd.NA, 3, 8], dtype="Int64"),
            "p_adjusted": [0.8, 0.001, 0.002],
            "z": [1.0, z, 4.0],
            "verdict": ["not significant after correcting", "leading indicator", "leading indicator"],
        }
    )


def test_movement_and_implication_follow_from_the_series(org):
    out = leading_indicator_summary(org.dataset, table=_table())
    assert list(out.columns) == list(SUMMARY_COLUMNS)
    assert out["leading"].tolist() == [True, True, False]  # leading indicators first
    demo = out.set_index("candidate").loc["activity:demo"]
    target, cands = build_series(org.dataset, level="agent")
    # independent check: company demos per week, last 3 weeks of the bookings window vs the 52 before
    demos = cands[cands["candidate"] == "activity:demo"].groupby("period")["value"].sum()
    weeks = pd.Index(sorted(target["period"].unique()))
    demos = demos.reindex(weeks)
    assert demo["recent"] == pytest.approx(demos.iloc[-3:].mean())
    assert demo["usual"] == pytest.approx(demos.iloc[-55:-3].mean())
    assert demo["change"] == pytest.approx(demo["recent"] / demo["usual"] - 1)
    weekly = target.groupby("period")["value"].sum().reindex(weeks).fillna(0.0)
    assert demo["weekly_bookings"] == pytest.approx(weekly.iloc[-13:].mean())
    # the implication is the effect times the recent standardised movement, in share and in money
    assert demo["implied"] == pytest.approx(demo["effect"] * demo["recent_z"])
    assert demo["implied_amount"] == pytest.approx(demo["implied"] * demo["weekly_bookings"] * 3)
    assert demo["implied_low"] <= demo["implied"] <= demo["implied_high"]
    # the range comes from the test statistic: half-width 1.2816 |effect| / z
    assert demo["effect_high"] - demo["effect"] == pytest.approx(1.2816 * abs(demo["effect"]) / 5.0, rel=1e-3)
    assert pd.Timestamp(demo["last_week"]) == weeks[-1]
    # a company-wide index: its recent level is its own, not a sum over agents
    market = out.set_index("candidate").loc["indicator:market_index"]
    index = cands[cands["candidate"] == "indicator:market_index"].groupby("period")["value"].first().reindex(weeks)
    assert market["recent"] == pytest.approx(index.iloc[-8:].mean())
    # not leading: the verdict only
    call = out.set_index("candidate").loc["activity:call"]
    assert not call["leading"] and np.isnan(call["implied"]) and call["verdict"].startswith("not significant")


def test_a_weaker_test_gives_a_wider_range(org):
    strong = leading_indicator_summary(org.dataset, table=_table(z=8.0)).set_index("candidate").loc["activity:demo"]
    weak = leading_indicator_summary(org.dataset, table=_table(z=2.0)).set_index("candidate").loc["activity:demo"]
    assert strong["effect"] == pytest.approx(weak["effect"])
    width = {name: row["effect_high"] - row["effect_low"] for name, row in (("strong", strong), ("weak", weak))}
    assert width["weak"] == pytest.approx(4 * width["strong"])


def test_the_review_table_says_why_when_discovery_cannot_run(tiny_dataset):
    out = review_leading_indicators(tiny_dataset())  # six weeks of bookings
    assert len(out) == 1 and out["candidate"].iloc[0] == "" and not out["leading"].iloc[0]
    assert "too few" in out["verdict"].iloc[0] and list(out.columns) == list(SUMMARY_COLUMNS)
