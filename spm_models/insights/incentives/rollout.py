"""Plan books on one dataset's forecast of the quarter ahead: the analyst's view before roll-out.

:func:`plan_runs` fits a forecasting model on the agents' weekly bookings up to the last Sunday
on or before ``as_of`` (:func:`~spm_models.evaluation.quota.backtest.model_forecast_at`),
builds one :class:`~.context.PlanContext` as of ``as_of`` with that forecast, and evaluates
every plan book on it, so the books see the same scenarios and their difference is paired
(:func:`~.modelling.compare_plans`). The forecast quarter is the (fiscal) quarter holding the
day after ``as_of``: at a quarter's end it is the next quarter, from its first day.

The scenarios are the review's (:mod:`.scenarios`): the model's draws multiplied by the common
and territory factors of the quota calibration learned, as the monthly review learns it, from
the quarters that had ended by ``as_of`` at ``as_of``'s point in the quarter. The review does the
same once per run with its own forecast (:mod:`spm_models.review.incentives`); this is for a
draft that is not in force yet. ``calibrate=False`` gives the model's own draws.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from spm_models.calendar import to_day
from spm_models.data.dataset import Dataset
from spm_models.evaluation.quota.backtest import (
    agent_bookings_frame,
    calibration_rows,
    model_forecast_at,
    quarter_offset_weeks,
)
from spm_models.evaluation.quota.calibration import calibration_window_start
from spm_models.exceptions import ConfigError, DataError, SpmError
from spm_models.insights.incentives.context import BookRun, PlanContext
from spm_models.insights.incentives.modelling import compare_plans
from spm_models.insights.incentives.plan import PlanBook
from spm_models.insights.incentives.planfile import load_checked_plan_book
from spm_models.insights.incentives.scenarios import (
    CALIBRATION_DRAWS,
    CALIBRATION_MIN_ROWS,
    CALIBRATION_QUARTERS,
    calibrated_scenarios,
    no_calibration,
)
from spm_models.insights.incentives.statements import statement_lines
from spm_models.models.base import ForecastModel
from spm_models.models.registry import make_model

__all__ = ["plan_runs", "last_sunday", "default_as_of", "settled_statements", "compare_plan_files"]


def last_sunday(day: Any) -> pd.Timestamp:
    """The last Sunday on or before ``day`` (a weekly model's forecast origin)."""
    d = to_day(day, "day")
    return d - pd.Timedelta(days=(d.weekday() + 1) % 7)


def default_as_of(data: Dataset) -> pd.Timestamp:
    """The last day of the last whole month of the data (the last created or close date of an
    opportunity), the day the monthly review would look from."""
    opps = data.tables["opportunities"]
    last = max(pd.to_datetime(opps["created_date"]).max(), pd.to_datetime(opps["close_date"]).max())
    month_end = last + pd.offsets.MonthEnd(0)
    return month_end if last == month_end else last.replace(day=1) - pd.Timedelta(days=1)


def plan_runs(
    data: Dataset,
    books: Mapping[str, PlanBook],
    *,
    model: ForecastModel,
    as_of: Any = None,
    n_draws: int = 500,
    seed: int = 0,
    min_history_weeks: int = 13,
    calibrate: bool = True,
    calibration_quarters: int = CALIBRATION_QUARTERS,
    calibration_draws: int = CALIBRATION_DRAWS,
) -> dict[str, BookRun]:
    """Every book of ``books`` settled up to ``as_of`` and evaluated on one forecast of the
    quarter ahead (module docstring).

    Parameters
    ----------
    data : Dataset
    books : mapping of str to PlanBook
        The plans compared, by label (the first is the reference of
        :func:`~.modelling.compare_plans`).
    model : ForecastModel
        Unfitted forecasting model.
    as_of : date-like, optional
        Last day of actual results (default :func:`default_as_of`).
    n_draws, seed : int
        Scenarios; seed of the calibration's factors and of the projections of measures other
        than bookings (the review's ``seed``).
    min_history_weeks : int
        Weekly history an agent needs to be forecast (the others book nothing in the scenarios).
    calibrate : bool
        Scenarios recalibrated as the review's (module docstring); False: the model's own draws.
    calibration_quarters, calibration_draws : int
        The review's ``recalibration_quarters`` and ``recalibration_draws``.

    Returns
    -------
    dict of str to BookRun
        The runs share one context, whose ``calibration`` says what the draws were multiplied
        by (None with ``calibrate=False``).

    Raises
    ------
    ConfigError
        No book, or ``model`` is not a ForecastModel.
    DataError
        No agent has the history to be forecast.
    """
    if not books:
        raise ConfigError("give at least one plan book to model")
    if not isinstance(model, ForecastModel):
        raise ConfigError(f"model must be a ForecastModel, got {type(model).__name__}")
    day = default_as_of(data) if as_of is None else to_day(as_of, "as_of")
    cal = data.fiscal_calendar
    origin = last_sunday(day)
    q_end = cal.quarter_end(day + pd.Timedelta(days=1))
    weeks = int(np.ceil((q_end - origin).days / 7))
    fc = model_forecast_at(model, agent_bookings_frame(data), origin, weeks, n_draws, min_history_weeks, data.tables)
    if fc is None:
        raise DataError(
            f"no agent has {min_history_weeks} weeks of bookings history up to {origin.date()}, so there is no "
            "forecast to model the plans on"
        )
    qc = None
    if calibrate:
        q_start = cal.quarter_start(day + pd.Timedelta(days=1))
        try:
            rows = calibration_rows(
                data,
                model=model,
                offset_weeks=quarter_offset_weeks(day, q_start),
                first_quarter=calibration_window_start(q_start, calibration_quarters),
                data_end=day,
                n_draws=calibration_draws,
                seed=seed,
                calendar=cal,
            )
        except SpmError as exc:  # as the review: the model's own draws, and why
            qc = no_calibration(f"no past quarter could be checked ({exc})")
        else:
            fc, qc = calibrated_scenarios(
                fc,
                rows,
                q_start,
                tables=data.tables,
                seed=seed,
                quarters=calibration_quarters,
                min_rows=CALIBRATION_MIN_ROWS,
            )
    ctx = PlanContext(data.tables, calendar=cal, as_of=day, forecast=fc, seed=seed, calibration=qc)
    ctx.prepare(books.values())
    return {name: ctx.evaluate(book) for name, book in books.items()}


def settled_statements(data: Dataset, book: PlanBook, *, as_of: Any = None) -> pd.DataFrame:
    """The statement lines of ``book`` on actual results up to ``as_of`` (default: the last day of
    the data): every quarter settled by then ``final``, the quarter holding the next day ``in
    progress`` with what the results so far earn (no forecast, so no expected amounts).

    Returns
    -------
    DataFrame
        :data:`~spm_models.insights.incentives.statements.STATEMENT_COLUMNS`.
    """
    opps = data.tables["opportunities"]
    last = max(pd.to_datetime(opps["created_date"]).max(), pd.to_datetime(opps["close_date"]).max())
    day = last if as_of is None else to_day(as_of, "as_of")
    ctx = PlanContext(data.tables, calendar=data.fiscal_calendar, as_of=day)
    return statement_lines(ctx.evaluate(book, scenarios=False))


def compare_plan_files(
    data: Dataset,
    current: str | Path,
    draft: str | Path,
    *,
    model: str = "CalendarBaseline",
    as_of: Any = None,
    n_draws: int = 500,
) -> pd.DataFrame:
    """Two plan files, each checked against ``data``, compared on one forecast of the quarter
    ahead (:func:`plan_runs` with the registered ``model``, then
    :func:`~.modelling.compare_plans`); ``attrs["quarter"]`` names the quarter.

    Raises
    ------
    ConfigError
        A problem of either file, or an unknown model.
    """
    books = {
        "current": load_checked_plan_book(current, data.tables),
        "draft": load_checked_plan_book(draft, data.tables),
    }
    runs = plan_runs(data, books, model=make_model(model), as_of=as_of, n_draws=n_draws)
    table = compare_plans(runs)
    table.attrs["quarter"] = runs["current"].context.quarter_label
    return table
