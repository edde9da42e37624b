"""spm_models.indicators.series: bookings and candidate series from the canonical tables, by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spm_models.data.dataset import Dataset
from spm_models.exceptions import ConfigError, DataError
from spm_models.indicators.series import bookings_series, candidate_series, panels, unusable_candidates


def _value(frame: pd.DataFrame, entity: str, period: str, candidate: str | None = None) -> float:
    sel = (frame["entity_id"] == entity) & (frame["period"] == pd.Timestamp(period))
    if candidate is not None:
        sel &= frame["candidate"] == candidate
    rows = frame.loc[sel, "value"]
    assert len(rows) == 1, (entity, period, candidate)
    return float(rows.iloc[0])


def test_bookings_window_drops_an_edge_week_the_closes_barely_touch(tiny_dataset):
    ds = tiny_dataset()
    company = bookings_series(ds, level="company")
    # first week (Mon 01-01) covered Wed-Sun: kept; last week (Mon 02-12) only Mon-Tue: dropped
    assert company["period"].min() == pd.Timestamp("2024-01-01")
    assert company["period"].max() == pd.Timestamp("2024-02-05")
    assert _value(company, "company", "2024-01-01") == 1000.0
    assert _value(company, "company", "2024-01-22") == 2000.0
    assert company["value"].sum() == 3000.0  # the 500 won on 02-13 is outside the window
    # a first close on Saturday covers 2 of the week's 7 days: that week is dropped too
    late = bookings_series(tiny_dataset(first_close="2024-01-06"), level="company")
    assert late["period"].min() == pd.Timestamp("2024-01-08")


def test_candidate_series_maps_every_source_onto_the_entities(tiny_dataset):
    ds = tiny_dataset()
    agent = candidate_series(ds, level="agent")
    assert _value(agent, "a1", "2024-01-01", "activity:call") == 5.0  # 3 + 2 in one week
    assert _value(agent, "a3", "2024-01-08", "activity:demo") == 4.0
    # territory leads apply to the territory's agents, company-wide indicators to every agent
    assert _value(agent, "a2", "2024-01-01", "indicator:leads_web") == 10.0
    assert _value(agent, "a3", "2024-01-01", "indicator:leads_web") == 4.0
    assert _value(agent, "a3", "2024-01-01", "indicator:market_index") == 101.0  # mean of 100, 102
    assert _value(agent, "a1", "2024-01-08", "indicator:market_index") == 98.0
    assert _value(agent, "a1", "2024-01-08", "opportunities_created") == 1.0
    assert _value(agent, "a1", "2024-01-08", "pipeline_added") == 500.0

    terr = candidate_series(ds, level="territory")
    assert _value(terr, "T1", "2024-01-01", "pipeline_added") == 3000.0
    assert _value(terr, "T2", "2024-01-01", "indicator:leads_web") == 4.0

    company = candidate_series(ds, level="company")
    assert _value(company, "company", "2024-01-01", "indicator:leads_web") == 14.0  # summed over territories
    assert _value(company, "company", "2024-01-01", "pipeline_added") == 3900.0
    assert _value(company, "company", "2024-01-08", "pipeline_added") == 800.0
    # activities stop with the activity table (week of 01-08), not zero-filled after it
    calls = company[company["candidate"] == "activity:call"]
    assert calls["period"].max() == pd.Timestamp("2024-01-08")


def test_pipeline_added_is_not_tested_when_amounts_are_close_values(tiny_dataset):
    leaky = tiny_dataset(lost_amount=0.0)
    reason = unusable_candidates(leaky)
    assert list(reason) == ["pipeline_added"]
    assert "100% of lost deals" in reason["pipeline_added"]
    assert "pipeline_added" not in set(candidate_series(leaky, level="company")["candidate"])
    assert unusable_candidates(tiny_dataset()) == {}


def test_panels_spread_the_long_frames_onto_entities_and_every_period(frames, weeks):
    target, cands = frames(np.array([1.0, 2.0, 3.0]), {"b": np.array([4.0, 5.0, 6.0]), "a": np.zeros(3)})
    target = target.drop(index=1)  # a gap in bookings: the period stays, NaN
    entities, periods, y, xs = panels(target, cands, grain="week")
    assert list(entities) == ["company"] and len(periods) == 3
    np.testing.assert_array_equal(y, [[1.0, np.nan, 3.0]])
    assert list(xs) == ["a", "b"]  # name order
    np.testing.assert_array_equal(xs["b"], [[4.0, 5.0, 6.0]])


def test_plain_errors_for_bad_series(tiny_dataset, frames):
    ds = tiny_dataset()
    with pytest.raises(ConfigError, match="unknown level"):
        candidate_series(ds, level="region")
    with pytest.raises(ConfigError, match="grain"):
        bookings_series(ds, level="agent", grain="day")
    no_deals = Dataset(tables={k: v for k, v in ds.tables.items() if k != "opportunities"})
    with pytest.raises(DataError, match="no opportunities"):
        bookings_series(no_deals, level="company")
    target, cands = frames(np.arange(6.0), {"x": np.arange(6.0)})
    with pytest.raises(ConfigError, match="lacks column"):
        panels(target.drop(columns="value"), cands, grain="week")
    with pytest.raises(DataError, match="two rows"):
        panels(pd.concat([target, target.iloc[:1]]), cands, grain="week")
    with pytest.raises(DataError, match="empty"):
        panels(target.iloc[:0], cands, grain="week")
