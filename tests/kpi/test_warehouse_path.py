"""The KPIs of ``spm kpis``: only their columns read from the warehouse, ids dictionary-encoded.

``Warehouse.load(columns=kpi_columns(), dictionary=True)`` hands the engine categorical ids
that it matches on their codes (agents, territories, opportunities of the stage history,
accounts). Two checks on the shared small organisation (its hostile agent and territory names
included): the frame is exactly the one of the whole warehouse loaded as text, and the KPIs
that rest on those matches equal a plain pandas computation from the validated tables.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spm_models.data.schemas import PIPELINE_STAGES
from spm_models.data.warehouse import Warehouse
from spm_models.kpi import TRANSITIONS, compute_kpis, kpi_columns


@pytest.fixture(scope="module")
def pushed(small_warehouse) -> pd.DataFrame:
    return compute_kpis(Warehouse(small_warehouse).load(columns=kpi_columns(), dictionary=True), grain="week")


def _week(days: pd.Series) -> pd.Series:
    """Monday of the week of each date."""
    return (days - pd.to_timedelta(days.dt.day_of_week, unit="D")).astype("datetime64[us]")


def _kpi(frame: pd.DataFrame, name: str, level: str = "agent", segment: str = "") -> pd.Series:
    rows = frame[(frame["kpi"] == name) & (frame["level"] == level) & (frame["segment"] == segment)]
    return pd.Series(
        rows["value"].to_numpy(), index=pd.MultiIndex.from_arrays([rows["entity_id"].astype("str"), rows["period"]])
    )


def _same(got: pd.Series, expected: pd.Series, *, missing: float = 0.0) -> None:
    """Every expected cell is in ``got`` with its value; every other row of ``got`` is ``missing``."""
    assert len(expected) > 0
    assert expected.index.isin(got.index).all(), expected.index[~expected.index.isin(got.index)][:5]
    np.testing.assert_allclose(got.reindex(expected.index).to_numpy(), expected.to_numpy(), rtol=1e-12)
    rest = got[~got.index.isin(expected.index)].to_numpy()
    assert (np.isnan(rest) if np.isnan(missing) else rest == missing).all()


def test_the_frame_equals_the_one_of_the_whole_warehouse_as_text(small_warehouse, pushed):
    whole = Warehouse(small_warehouse).load()
    assert not any(isinstance(dt, pd.CategoricalDtype) for t in whole.tables.values() for dt in t.dtypes)
    pd.testing.assert_frame_equal(pushed, compute_kpis(whole, grain="week"), check_exact=True)


def test_bookings_and_territory_totals_equal_plain_pandas(small_dataset, pushed):
    o, agents = small_dataset["opportunities"], small_dataset["agents"]
    won = o[(o["outcome"] == "won") & o["close_date"].notna()]
    by_agent = won.groupby([won["agent_id"], _week(won["close_date"])])["amount"].sum()
    _same(_kpi(pushed, "bookings"), by_agent)
    territory = won["agent_id"].map(agents.set_index("agent_id")["territory_id"])
    by_territory = won.groupby([territory, _week(won["close_date"])])["amount"].sum()
    _same(_kpi(pushed, "bookings", "territory"), by_territory)


def test_activity_volume_equals_plain_pandas(small_dataset, pushed):
    a = small_dataset["activities"]
    types = sorted(a["activity_type"].unique())
    assert len(types) > 1
    for t in types:
        rows = a[a["activity_type"] == t]
        _same(
            _kpi(pushed, "activity_volume", segment=t),
            rows.groupby([rows["agent_id"], _week(rows["date"])])["count"].sum(),
        )


def test_new_and_existing_accounts_equal_plain_pandas(small_dataset, pushed):
    o = small_dataset["opportunities"]
    won = o[(o["outcome"] == "won") & o["close_date"].notna()].copy()
    first = won.groupby("account_id")["close_date"].transform("min")
    won["segment"] = np.where(
        won["account_id"].isna(), "unknown", np.where(won["close_date"] == first, "new", "existing")
    )
    assert {"new", "existing"} <= set(won["segment"])
    for seg in ("new", "existing"):
        rows = won[won["segment"] == seg]
        expected = rows.groupby([rows["agent_id"], _week(rows["close_date"])])["amount"].sum()
        _same(_kpi(pushed, "new_vs_existing_bookings", segment=seg), expected)


def test_stage_conversion_through_the_stage_history_equals_plain_pandas(small_dataset, pushed):
    o, h = small_dataset["opportunities"], small_dataset["stage_history"]
    rank = {s: i for i, s in enumerate(PIPELINE_STAGES)}
    furthest = pd.concat([o[["opportunity_id", "stage"]], h[["opportunity_id", "stage"]]]).dropna()
    furthest = furthest.assign(rank=furthest["stage"].map(rank)).groupby("opportunity_id")["rank"].max()
    f = o["opportunity_id"].map(furthest)
    f[o["outcome"] == "won"] = len(PIPELINE_STAGES)
    week = _week(o["created_date"])
    # cohorts of the reported weeks (the span starts at the first close or activity)
    deals = o.assign(f=f, week=week)[f.notna() & (week >= pushed["period"].min())]
    assert len(deals) > 0
    for k, transition in enumerate(TRANSITIONS):
        reached = deals["f"] > k
        decided = reached | ((deals["f"] == k) & (deals["outcome"] == "lost"))
        counts = (
            deals.assign(reached=reached, decided=decided).groupby(["agent_id", "week"])[["reached", "decided"]].sum()
        )
        counts = counts[counts["decided"] > 0]
        got = _kpi(pushed, "stage_conversion", segment=transition)
        _same(got.dropna(), counts["reached"] / counts["decided"], missing=np.nan)
