"""Last month's forecast against what happened: the forecast made a month ago and its check.

The forecast of the previous month is that month's run's snapshot, or, where no such run exists,
a refit of this run's models on the data as they stood then (:func:`previous_snapshot`);
:func:`last_month_accuracy` sets it against the bookings of the month. :func:`prefixed` stacks
the forecasts of every level under ``<level>:<id>`` for a snapshot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from spm_models.data.dataset import Dataset
from spm_models.evaluation.tracking import list_snapshots, load_snapshot, save_snapshot
from spm_models.exceptions import DataError
from spm_models.models.forecast import concat_forecasts
from spm_models.review import outlook as ol
from spm_models.review.forecasting import review_forecast
from spm_models.review.settings import ReviewConfig

__all__ = ["ACCURACY_COLUMNS", "last_month_accuracy", "prefixed", "previous_snapshot"]

#: Columns of the ``accuracy`` artifact.
ACCURACY_COLUMNS = [
    "unique_id",
    "level",
    "forecast_mean",
    "forecast_q0.1",
    "forecast_q0.5",
    "forecast_q0.9",
    "actual",
    "in_80",
    "error",
    "pct_error",
    "entity_id",
]


def prefixed(forecasts: dict[str, Any]):
    """One stacked forecast with ids ``<level>:<id>`` (ids may repeat across levels)."""
    parts, level_of = [], {}
    for lv, fc in forecasts.items():
        ids = np.array([f"{lv}:{u}" for u in fc.unique_ids.astype(str)], dtype=object)
        q = fc.quantiles.assign(unique_id=pd.array(np.repeat(ids, fc.h), dtype="str"))
        fb = fc.fallback.assign(unique_id=pd.array(ids, dtype="str"))
        parts.append(type(fc)(q, fc.draws, ids, fc.ds, fb, fc.model, fc.freq, fc.quantile_levels))
        level_of.update({i: lv for i in ids})
    return concat_forecasts(parts), level_of


def previous_snapshot(
    runs_root: Path | None,
    cal: ol.ReviewCalendar,
    dataset: Dataset,
    config: ReviewConfig,
    fp: str,
    work: Path,
    picks: dict[str, str],
    regressors: dict[str, int] | None = None,
    *,
    executor: Any = None,
):
    """The forecast made at the end of the previous month: its run's snapshot, or a refit with
    this run's models (no model choice or calibration: what they would have said then)."""
    prev_label = f"{cal.previous_month:%Y-%m}"
    if runs_root is not None:
        listing = list_snapshots(runs_root / prev_label / "artifacts" / "snapshot")
        if len(listing):
            return load_snapshot(listing["path"].iloc[-1]), "previous run"
    try:
        pcal = ol.review_calendar(prev_label, data_end=cal.as_of, calendar=cal.calendar)
        pasof = ol.as_of_dataset(dataset, pcal.as_of)
        pagents = ol.review_agents(pasof["agents"], pcal.as_of)
        prev = review_forecast(
            pasof,
            pagents,
            pcal,
            config,
            learn_calibration=False,
            picks=picks,
            regressors=regressors,
            executor=executor,
        )
    except DataError:
        return None, "no data before the previous month"
    stacked, level_of = prefixed(prev.forecasts)
    path = save_snapshot(
        stacked,
        folder=work / "previous_snapshot",
        model=prev.agent_model,
        config={"month": prev_label, "reconstructed": True},
        seed=config.seed,
        data_range=(prev.history["ds"].min(), pcal.train_end),
        data_fingerprint=fp,
        level_of=level_of,
    )
    return load_snapshot(path), "reconstructed from the data as of the previous month"


def last_month_accuracy(prev, kpis_month: pd.DataFrame, *, month: pd.Timestamp) -> pd.DataFrame:
    """Last month's forecast (``prev``, from :func:`previous_snapshot`) against the bookings of
    ``month`` at every level (:func:`spm_models.review.outlook.month_check`); the table's columns
    with no rows when there is no earlier forecast."""
    if prev is None:
        return pd.DataFrame(columns=ACCURACY_COLUMNS)
    act = kpis_month[
        (kpis_month["kpi"] == "bookings") & (kpis_month["period"] == month) & (kpis_month["segment"] == "")
    ]
    actual = pd.Series(
        act["value"].to_numpy(dtype=float),
        index=(act["level"].astype("str") + ":" + act["entity_id"].astype("str")).to_numpy(),
    )
    accuracy = ol.month_check(prev.forecast, actual, month=month, level_of=prev.level_of)
    accuracy["entity_id"] = accuracy["unique_id"].str.split(":", n=1).str[1].astype("str")
    return accuracy
