"""Model-ready frames of the workbench (spm_models.workbench.frames)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spm_models.data.warehouse import Warehouse
from spm_models.exceptions import ConfigError, DataError
from spm_models.workbench.frames import (
    WAREHOUSE_ENV,
    chosen_indicators,
    load_dataset,
    model_frame,
    usable_regressors,
    warehouse_path,
)


def test_every_agent_has_every_week_of_its_span_and_current_agents_reach_the_end(small_org):
    org = small_org
    frame = model_frame(org.dataset)
    gaps = frame.groupby("unique_id")["ds"].apply(lambda s: s.diff().dropna().dt.days.unique().tolist())
    assert all(g in ([7], []) for g in gaps)
    agents = org.dataset.tables["agents"]
    current = agents.loc[agents["leave_date"].isna(), "agent_id"]
    last = frame.groupby("unique_id")["ds"].max()
    assert (last.loc[list(current)] == frame["ds"].max()).all()


def test_bookings_total_equals_won_amounts_in_the_window(small_org):
    org = small_org
    frame = model_frame(org.dataset)
    opps = org.dataset.tables["opportunities"]
    won = opps[(opps["outcome"] == "won")]
    close = pd.to_datetime(won["close_date"])
    week = close - pd.to_timedelta(close.dt.day_of_week, unit="D")
    inside = (week >= frame["ds"].min()) & (week <= frame["ds"].max())
    assert frame["y"].sum() == pytest.approx(won.loc[inside, "amount"].sum())


def test_regressor_columns_and_unknown_regressor(small_org):
    org = small_org
    frame = model_frame(org.dataset, regressors=["activity:demo"])
    assert frame["activity:demo"].notna().all()
    acts = org.dataset.tables["activities"]
    assert frame["activity:demo"].sum() >= 0.99 * acts.loc[acts["activity_type"] == "demo", "count"].sum()
    with pytest.raises(ConfigError, match="unknown indicator"):
        model_frame(org.dataset, regressors=["activity:juggling"])
    assert usable_regressors(org.dataset, {"activity:demo": 3, "activity:juggling": 2}) == {"activity:demo": 3}


def test_warehouse_path_from_environment_and_missing_warehouse(tmp_path, monkeypatch, small_org):
    monkeypatch.setenv(WAREHOUSE_ENV, str(tmp_path / "w.duckdb"))
    assert warehouse_path() == tmp_path / "w.duckdb"
    with pytest.raises(DataError, match="make demo"):
        load_dataset(warehouse_path())
    Warehouse(tmp_path / "w.duckdb").ingest(small_org.dataset)
    assert len(load_dataset(warehouse_path()).tables["agents"]) == len(small_org.dataset["agents"])


def test_chosen_indicators_keeps_only_leading_ones():
    ranked = pd.DataFrame(
        {
            "candidate": ["a", "b"],
            "best_lag": [3, 1],
            "r": [0.4, 0.1],
            "p_adjusted": [0.01, 0.5],
            "oos_improvement": [0.1, np.nan],
            "verdict": ["leading indicator", "not significant"],
        }
    )
    assert chosen_indicators(ranked)["candidate"].tolist() == ["a"]
