"""Model-ready frames for the workbench: bookings per agent and period with territory and indicators."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from spm_models.calendar import Calendar
from spm_models.data.dataset import Dataset
from spm_models.data.warehouse import Warehouse
from spm_models.exceptions import DataError
from spm_models.indicators.regressors import LEADING, add_regressor_columns
from spm_models.indicators.series import bookings_series, candidate_series

__all__ = [
    "readable_kpis",
    "WAREHOUSE_ENV",
    "warehouse_path",
    "load_dataset",
    "model_frame",
    "workbench_fast",
    "usable_regressors",
    "load_maven_dataset",
    "chosen_indicators",
]

#: Environment variable that points the notebooks at a warehouse (tests use a small one).
WAREHOUSE_ENV = "SPM_WAREHOUSE"


def warehouse_path(default: str | os.PathLike | None = None) -> Path:
    """The warehouse the notebooks read: ``$SPM_WAREHOUSE``, else ``default``, else the project's.

    Raises
    ------
    ConfigError
        No environment variable, no default and no project warehouse.
    """
    value = os.environ.get(WAREHOUSE_ENV) or default
    if value:
        return Path(value)
    from spm_models.config import ProjectPaths

    return ProjectPaths.from_root().warehouse


def load_dataset(path: str | os.PathLike) -> Dataset:
    """Every canonical table of the warehouse at ``path``.

    Raises
    ------
    DataError
        The file does not exist (run ``make demo`` or ``spm ingest`` first).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no warehouse at {path}; run `make demo` (example data) or `spm ingest` (your data) first")
    return Warehouse(path).load()


def _complete(frame: pd.DataFrame, grain: str, current: set[str], calendar: Calendar) -> pd.DataFrame:
    """Give every agent a row for each period between its first and last (``y = 0`` where absent);
    agents in ``current`` (still employed) run to the last period of the data."""
    grid = calendar.period_range(frame["ds"].min(), frame["ds"].max(), grain)
    pos = grid.get_indexer(frame["ds"])
    span = (
        pd.DataFrame({"unique_id": frame["unique_id"], "pos": pos})
        .groupby("unique_id", sort=True)["pos"]
        .agg(["min", "max"])
    )
    span.loc[span.index.isin(list(current)), "max"] = len(grid) - 1
    lengths = (span["max"] - span["min"] + 1).to_numpy()
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    idx = np.arange(lengths.sum()) - starts + np.repeat(span["min"].to_numpy(), lengths)
    full = pd.DataFrame(
        {
            "unique_id": pd.array(np.repeat(span.index.to_numpy(), lengths), dtype="str"),
            "ds": grid[idx].astype(frame["ds"].dtype),
        }
    )
    out = full.merge(frame, on=["unique_id", "ds"], how="left")
    out["y"] = out["y"].fillna(0.0)
    return out


def model_frame(dataset: Dataset, *, grain: str = "week", regressors: Iterable[str] = ()) -> pd.DataFrame:
    """Agent bookings as a forecasting frame, with territory and candidate-indicator columns.

    ``y`` is the ``bookings`` series of :func:`spm_models.indicators.series.bookings_series`
    (agent level); each name in ``regressors`` is a candidate of
    :func:`~spm_models.indicators.series.candidate_series` (e.g. ``activity:demo``), carried
    forward then back within an agent where it is not observed and 0 where never observed
    (:func:`~spm_models.indicators.regressors.add_regressor_columns`).

    Agents still employed at the end of the data have a row (``y = 0`` when they sold
    nothing) for every period from their first to the last of the data; agents who left end
    with their last bookings.

    Returns
    -------
    DataFrame
        ``unique_id, ds, y, group`` (the agent's territory) and one column per regressor.

    Raises
    ------
    ConfigError
        A regressor is not a candidate in these data.
    """
    target = bookings_series(dataset, level="agent", grain=grain)
    agents_table = dataset.tables["agents"]
    end = target["period"].max()
    leave = pd.to_datetime(agents_table["leave_date"])
    current = set(agents_table.loc[leave.isna() | (leave >= end), "agent_id"].astype("str"))
    long = target.rename(columns={"entity_id": "unique_id", "period": "ds", "value": "y"})
    frame = _complete(long, grain, current, dataset.fiscal_calendar)
    agents = agents_table.set_index("agent_id")["territory_id"].astype("str")
    frame["group"] = frame["unique_id"].map(agents).fillna("unassigned").astype("str")
    frame = add_regressor_columns(frame, dataset, regressors, grain=grain)
    return frame.sort_values(["unique_id", "ds"], ignore_index=True)


def workbench_fast() -> bool:
    """True when ``$SPM_WORKBENCH_FAST`` is ``1``: notebooks use short fits (tests set it)."""
    return os.environ.get("SPM_WORKBENCH_FAST", "") == "1"


def usable_regressors(dataset: Dataset, wanted: dict[str, int], *, grain: str = "week") -> dict[str, int]:
    """The entries of ``wanted`` (indicator -> lag) that are candidates in these data (Maven has none)."""
    if not wanted:
        return {}
    try:
        names = set(candidate_series(dataset, level="company", grain=grain)["candidate"].unique())
    except DataError:
        return {}
    return {k: int(v) for k, v in wanted.items() if k in names}


def load_maven_dataset(folder: str | os.PathLike | None = None) -> Dataset:
    """The shipped Maven CRM example, validated (``data/examples/maven_crm`` by default)."""
    from spm_models.data.sources.maven import load_maven
    from spm_models.data.validation import validate

    return validate(load_maven(folder))


def chosen_indicators(ranked: pd.DataFrame) -> pd.DataFrame:
    """Rows of a :func:`~spm_models.indicators.discovery.discover_leading_indicators` table that passed
    every check, with the lag to use and why (``candidate, best_lag, r, p_adjusted,
    oos_improvement, verdict``); empty when none did."""
    cols = ["candidate", "best_lag", "r", "p_adjusted", "oos_improvement", "verdict"]
    return ranked.loc[ranked["verdict"] == LEADING, cols].reset_index(drop=True)


def readable_kpis(view: pd.DataFrame, *, currency: str = "USD") -> pd.DataFrame:
    """A wide KPI view (:func:`spm_models.kpi.views.latest_period_view`) as text people read: each
    value in its KPI's unit (:data:`spm_models.kpi.catalog.KPI_CATALOG`, ``"win_rate[x]"`` by its
    base name) by :func:`spm_models.present.format.format_value`: ``USD 5.2k``, ``31%``, ``5,193``,
    ``41 days``, and ``n/a`` for a value the period does not have (never ``NaN``)."""
    from spm_models.kpi.catalog import KPI_CATALOG
    from spm_models.present.format import format_value

    out = pd.DataFrame(index=view.index)
    for col in view.columns:
        spec = KPI_CATALOG.get(str(col).split("[", 1)[0])
        unit = spec.unit if spec is not None else "count"
        digits = 0 if unit != "count" else (0 if view[col].dropna().mod(1).eq(0).all() else 1)
        out[col] = [format_value(v, unit, currency=currency, digits=digits) for v in view[col]]
    return out
