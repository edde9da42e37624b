"""Rolling-origin backtests.

A backtest refits a fresh copy of a model (:func:`~spm_models.models.base.clone`) at each
origin on the data up to that origin, forecasts the next ``h`` periods and scores them
against what happened, so every model is judged on forecasts it could have made.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from spm_models.evaluation.metrics import SCORE_COLUMNS, score, summarize
from spm_models.exceptions import DataError
from spm_models.models.base import ForecastModel, clone, fit_tables_of
from spm_models.models.forecast import DEFAULT_QUANTILES, Forecast
from spm_models.models.panel import build_panel, check_frame

__all__ = ["BacktestResult", "backtest"]


@dataclass(frozen=True, eq=False)
class BacktestResult:
    """Forecasts and scores of one model at several forecast origins.

    Attributes
    ----------
    model : str
        Model name.
    h : int
        Horizon in periods.
    freq : str
        Pandas frequency of the data.
    origins : DatetimeIndex
        Forecast origins, oldest first. An origin is the last period of the training data;
        its forecast covers the ``h`` periods after it.
    forecasts : DataFrame
        One row per origin, series and forecast period: ``origin``, ``unique_id``, ``ds``,
        ``step`` (1..h), ``y`` (the actual, NaN where there is none), then the forecast's
        quantile frame columns (``model``, ``mean``, ``q0.025``, ...).
    scores : DataFrame
        ``origin`` plus :data:`spm_models.evaluation.metrics.SCORE_COLUMNS`, one row per origin and series.
    folds : tuple of Forecast
        The full forecast (with draws) at each origin, in the order of ``origins``.
    """

    model: str
    h: int
    freq: str
    origins: pd.DatetimeIndex
    forecasts: pd.DataFrame
    scores: pd.DataFrame
    folds: tuple[Forecast, ...]

    def summary(self, *, level: str | Mapping[str, str] | pd.Series | None = None) -> pd.DataFrame:
        """Scores pooled over origins and series, per level (see :func:`spm_models.evaluation.metrics.summarize`)."""
        return summarize(self.scores, level=level)


def backtest(
    model: ForecastModel,
    frame: pd.DataFrame,
    *,
    h: int,
    n_origins: int,
    step: int | None = None,
    min_train: int | None = None,
    quantiles: Iterable[float] = DEFAULT_QUANTILES,
    n_draws: int = 1000,
    season: int = 1,
    tables: Any = None,
) -> BacktestResult:
    """Rolling-origin evaluation of ``model`` on a long ``unique_id``/``ds``/``y`` frame.

    Origins are placed on the common calendar of ``frame``: the last origin is ``h``
    periods before the last date (so its whole horizon has actuals), and each earlier one
    ``step`` periods before the next. At each origin a clone of ``model`` is fitted on all
    rows with ``ds <= origin`` and scored with :func:`spm_models.evaluation.metrics.score` on the rows
    with ``origin < ds <= origin + h`` periods.

    Parameters
    ----------
    model : ForecastModel
        Unfitted or fitted; it is cloned, never changed.
    frame : DataFrame
        The full history.
    h : int
        Forecast horizon in periods.
    n_origins : int
        Number of origins.
    step : int, optional
        Periods between origins; ``h`` by default (windows that do not overlap).
    min_train : int, optional
        Periods of the calendar the first origin must have behind it (itself included);
        ``2 * h`` by default.
    quantiles, n_draws
        Passed to ``predict``.
    season : int
        Seasonal lag of the MASE scale.
    tables : Dataset or mapping of canonical tables, optional
        Where a model that reads tables at fit (the open deals of
        :class:`~spm_models.models.pipeline_aware.PipelineAware`) finds them
        (:func:`~spm_models.models.base.fit_tables_of`); such a model sees only what was
        known at each origin.

    Returns
    -------
    BacktestResult

    Raises
    ------
    DataError
        The frame breaks the data contract, or is too short for the requested origins.
    """
    for name, value in (("h", h), ("n_origins", n_origins), ("step", step), ("min_train", min_train)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1):
            raise DataError(f"{name} must be a positive whole number, got {value!r}")
    step = h if step is None else step
    min_train = 2 * h if min_train is None else min_train
    clean = check_frame(frame)
    extra = [c for c in frame.columns if c not in ("unique_id", "ds", "y")]
    if extra:
        # Regressor and group columns travel with their rows: models that use them (Prophet's
        # lagged indicators, the hierarchy's territories) must see them at every origin.
        keyed = frame[extra].assign(
            unique_id=frame["unique_id"].astype("str"),
            ds=pd.to_datetime(frame["ds"]).astype(clean["ds"].dtype),
        )
        clean = clean.merge(keyed, on=["unique_id", "ds"], how="left", validate="one_to_one")
    panel = build_panel(clean[["unique_id", "ds", "y"]], freq=model.freq)
    grid = panel.grid
    last = len(grid) - 1 - h
    idx = last - step * np.arange(n_origins)[::-1]
    if idx[0] < min_train - 1:
        need = min_train + step * (n_origins - 1) + h
        raise DataError(
            f"the data cover {len(grid)} periods ({grid[0].date()} to {grid[-1].date()}); "
            f"{n_origins} origins with h={h}, step={step} and min_train={min_train} need {need}. "
            "Use fewer origins, a smaller step or min_train, or more history."
        )
    origins = grid[idx]
    ds = clean["ds"].to_numpy()
    fold_frames, fold_scores, folds = [], [], []
    for origin, i in zip(origins, idx):
        end = grid[i + h]
        train = clean[ds <= origin.to_datetime64()]
        actual = clean[(ds > origin.to_datetime64()) & (ds <= end.to_datetime64())]
        fitted = clone(model).fit(train, **fit_tables_of(model, tables))
        fc = fitted.predict(h, quantiles=quantiles, n_draws=n_draws)
        q = fc.quantiles
        y = q[["unique_id", "ds"]].merge(actual, on=["unique_id", "ds"], how="left")["y"].to_numpy()
        fold_frames.append(
            pd.concat(
                [
                    pd.DataFrame(
                        {
                            "origin": np.repeat(origin.to_datetime64(), len(q)),
                            "unique_id": q["unique_id"],
                            "ds": q["ds"],
                            "step": np.tile(np.arange(1, h + 1), fc.n_series),
                            "y": y,
                        }
                    ),
                    q.drop(columns=["unique_id", "ds"]),
                ],
                axis=1,
            )
        )
        fold_scores.append(score(fc, actual, train=train, season=season).assign(origin=origin.to_datetime64()))
        folds.append(fc)
    scores = pd.concat(fold_scores, ignore_index=True)[["origin", *SCORE_COLUMNS]]
    return BacktestResult(
        model=model.model_name(),
        h=h,
        freq=panel.freq,
        origins=pd.DatetimeIndex(origins),
        forecasts=pd.concat(fold_frames, ignore_index=True),
        scores=scores,
        folds=tuple(folds),
    )
