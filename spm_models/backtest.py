"""Rolling-origin backtests, and coherent hierarchy forecasts from summed draws.

A backtest refits a fresh copy of a model (:func:`~spm_models.models.base.clone`) at each
origin on the data up to that origin, forecasts the next ``h`` periods and scores them
against what happened, so every model is judged on forecasts it could have made.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from .exceptions import DataError
from .metrics import SCORE_COLUMNS, score, summarize
from .models.base import ForecastModel, clone
from .models.forecast import DEFAULT_QUANTILES, Forecast
from .models.panel import build_panel, check_frame

__all__ = ["BacktestResult", "backtest", "aggregate_draws"]


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
        ``origin`` plus :data:`spm_models.metrics.SCORE_COLUMNS`, one row per origin and series.
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
        """Scores pooled over origins and series, per level (see :func:`spm_models.metrics.summarize`)."""
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
) -> BacktestResult:
    """Rolling-origin evaluation of ``model`` on a long ``unique_id``/``ds``/``y`` frame.

    Origins are placed on the common calendar of ``frame``: the last origin is ``h``
    periods before the last date (so its whole horizon has actuals), and each earlier one
    ``step`` periods before the next. At each origin a clone of ``model`` is fitted on all
    rows with ``ds <= origin`` and scored with :func:`spm_models.metrics.score` on the rows
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
        fc = clone(model).fit(train).predict(h, quantiles=quantiles, n_draws=n_draws)
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


def aggregate_draws(
    forecast: Forecast,
    mapping: Mapping[str, str] | pd.Series,
    *,
    quantiles: Iterable[float] | None = None,
) -> Forecast:
    """Forecast of parent series as the sum of their children's draws.

    Draw ``j`` of a parent is the sum of draw ``j`` of its children, so the parent's
    mean is the sum of the children's means and its quantiles are quantiles of the summed
    draws (not sums of quantiles), which keeps a hierarchy coherent: agent -> territory ->
    company by calling this once per level. The sum inherits the dependence between
    children that the model put into its draws: the baselines resample the same past week
    for every series (``joint_bootstrap``), so sums keep the co-movement left in their
    residuals; with ``joint_bootstrap=False`` (or any model that draws series independently)
    parent intervals are too narrow when children move together.

    Parameters
    ----------
    forecast : Forecast
        Child forecast (e.g. agents).
    mapping : mapping or Series
        ``child unique_id -> parent unique_id``. Entries for children not in ``forecast``
        are ignored.
    quantiles : iterable of float, optional
        Levels of the parent quantiles; those of ``forecast`` by default.

    Returns
    -------
    Forecast
        One series per parent, sorted by id; a parent is flagged ``fallback`` when any of its
        children fell back.

    Raises
    ------
    DataError
        A child has no parent, or the children of a parent forecast different periods
        (their histories end on different dates).
    """
    mp = mapping if isinstance(mapping, pd.Series) else pd.Series(dict(mapping), dtype=object)
    uids = pd.Index(forecast.unique_ids, dtype="str")
    parents = pd.Series(mp.to_numpy(), index=pd.Index(mp.index.astype(str), dtype="str")).reindex(uids)
    if parents.isna().any():
        orphans = uids[parents.isna().to_numpy()]
        raise DataError(f"{len(orphans)} series have no parent in the mapping: {', '.join(orphans[:5])}")
    codes, names = pd.factorize(parents.astype("str"), sort=True)
    order = np.argsort(codes, kind="stable")
    counts = np.bincount(codes, minlength=len(names))
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    ds_sorted = forecast.ds[order]
    first = np.repeat(ds_sorted[starts], counts, axis=0)
    misaligned = (ds_sorted != first).any(axis=1)
    if misaligned.any():
        bad = pd.unique(np.asarray(names)[codes[order][misaligned]])
        raise DataError(
            f"children of {', '.join(map(str, bad[:5]))} forecast different periods (their histories end on "
            "different dates); forecast them from a common last date before summing"
        )
    draws = np.add.reduceat(forecast.draws[order], starts, axis=0)
    fb = forecast.fallback["fallback"].to_numpy()[order]
    n_fb = np.add.reduceat(fb.astype(np.int64), starts)
    child_ids = forecast.unique_ids[order]
    reason = np.array(
        [
            f"{k} of {m} child series fell back: {', '.join(map(str, child_ids[s:s + m][fb[s:s + m]][:5]))}" if k else ""
            for k, m, s in zip(n_fb, counts, starts)
        ],
        dtype=object,
    )
    return Forecast.from_draws(
        draws,
        unique_ids=np.asarray(names, dtype=object),
        ds=ds_sorted[starts],
        model=forecast.model,
        freq=forecast.freq,
        quantiles=forecast.quantile_levels if quantiles is None else quantiles,
        reason=reason,
    )
