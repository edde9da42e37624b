"""Would the plan's expected cost have held? A backtest over past quarters.

For every past (fiscal) quarter ``q`` with quotas, wholly inside the data and with enough
history before it, the forecast origin is the last Sunday before ``q`` starts. A model fitted on
the agents' weekly bookings up to the origin
(:func:`~spm_models.evaluation.quota.backtest.model_forecast_at`) forecasts the weeks to the
quarter's end; each plan book is evaluated on one :class:`~.context.PlanContext` as of the day
before ``q`` (so every book sees the same scenarios) and gives the cost distribution
``C_j = sum_i P_ij`` (:func:`~.modelling.plan_cost`). The realised cost is the same book settled on
what happened (:func:`~.statements.company_totals` of a context as of the data's end, status
``final``). The 80% range *held* when ``cost_q10 <= realised <= cost_q90``; the coverage is the
share of quarters where it held, ``p = k / n``, with its binomial standard error
``sqrt(p (1 - p) / n)`` and a Wilson 90% interval
``(p + z^2/2n +- z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)``, ``z = 1.645``, because a handful of
quarters says little (pool the quarters of several organisations for more).

The scenarios are the review's (:mod:`.scenarios`): the model's draws for ``q`` are multiplied
by the common and territory factors of the quota calibration learned, as a review on the day
before ``q`` would learn it, from the quarters that had ended by then (one quota backtest at
offset 0 over every quarter, :func:`~spm_models.evaluation.quota.backtest.calibration_rows`,
each quarter's calibration from the rows before it). The first quarters, with fewer than three
ended before them, keep the model's own draws; ``drift``, ``spread`` and ``territory_spread``
say what each quarter's range was built with (NaN: not applied). ``calibrate=False`` gives the
model's own draws throughout, for comparison.

Only bookings come from the model; the other measures (new accounts, activities, win rate) are
the run-rate projections of :mod:`.projection`, measured on the history before ``q``. The days
between the origin and ``q``'s start (at most six) are read as actuals of the quarter before,
which only moves a draw balance carried into ``q``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from spm_models.calendar import Calendar, to_day
from spm_models.data.dataset import Dataset
from spm_models.evaluation.quota.backtest import agent_bookings_frame, calibration_rows, model_forecast_at
from spm_models.evaluation.quota.calibration import calibration_window_start
from spm_models.exceptions import ConfigError, DataError, SpmError
from spm_models.insights.incentives.context import PlanContext
from spm_models.insights.incentives.modelling import plan_cost
from spm_models.insights.incentives.plan import PlanBook
from spm_models.insights.incentives.rollout import last_sunday
from spm_models.insights.incentives.scenarios import (
    CALIBRATION_DRAWS,
    CALIBRATION_MIN_ROWS,
    CALIBRATION_QUARTERS,
    calibrated_scenarios,
)
from spm_models.insights.incentives.statements import company_totals
from spm_models.models.base import ForecastModel

__all__ = ["COST_BACKTEST_COLUMNS", "backtest_plan_cost", "cost_coverage"]

#: Columns of :func:`backtest_plan_cost`.
COST_BACKTEST_COLUMNS = [
    "plan",
    "period",
    "period_start",
    "origin",
    "expected_cost",
    "cost_q10",
    "cost_q90",
    "realised_cost",
    "held",
    "drift",
    "spread",
    "territory_spread",
]
_Z90 = 1.6448536269514722


def backtest_plan_cost(
    data: Dataset,
    books: Mapping[str, PlanBook],
    *,
    model: ForecastModel,
    n_draws: int = 500,
    seed: int = 0,
    min_history_weeks: int = 13,
    first_quarter: Any = None,
    data_end: Any = None,
    calendar: Calendar | None = None,
    calibrate: bool = True,
    calibration_quarters: int = CALIBRATION_QUARTERS,
    calibration_draws: int = CALIBRATION_DRAWS,
) -> pd.DataFrame:
    """Each plan's forecast cost of every past quarter against what it cost (module docstring).

    Parameters
    ----------
    data : Dataset
        Typed canonical tables with quotas (``targets``).
    books : mapping of str to PlanBook
        The plans compared, by label.
    model : ForecastModel
        Unfitted model, refitted at every origin.
    n_draws, seed : int
        Scenarios per quarter; seed of the calibration's factors (the review's ``seed``) and,
        plus the quarter's index, of the projections of measures other than bookings.
    min_history_weeks : int
        Weekly history an agent needs before the origin to be forecast (the others book nothing
        in the scenarios); the first quarter scored starts at least this long after the data.
    first_quarter : date-like, optional
        Skip quarters starting before it. Quarters starting before every book's first effective
        day are always skipped.
    data_end : date-like, optional
        Last day of the data (default: the last created or close date of an opportunity); only
        quarters ending by then are scored.
    calendar : Calendar, optional
        Default: the dataset's fiscal calendar.
    calibrate : bool
        Scenarios recalibrated as the review's (module docstring); False: the model's own draws.
    calibration_quarters, calibration_draws : int
        The review's ``recalibration_quarters`` and ``recalibration_draws``.

    Returns
    -------
    DataFrame
        :data:`COST_BACKTEST_COLUMNS`, one row per plan and quarter.

    Raises
    ------
    ConfigError
        No plan, or ``model`` is not a ForecastModel.
    DataError
        No past quarter with quotas and enough history.
    """
    if not books:
        raise ConfigError("give at least one plan book to backtest")
    if not isinstance(model, ForecastModel):
        raise ConfigError(f"model must be a ForecastModel, got {type(model).__name__}")
    cal = calendar or data.fiscal_calendar
    tables = data.tables
    opps, targets = tables["opportunities"], tables["targets"]
    last = (
        to_day(data_end, "data_end")
        if data_end is not None
        else max(pd.to_datetime(opps["created_date"]).max(), pd.to_datetime(opps["close_date"]).max())
    )
    frame = agent_bookings_frame(data)
    first = frame["ds"].min() + pd.Timedelta(weeks=min_history_weeks)
    # only quarters every book was in force for from their start: a comparison on equal terms
    first = max([first] + [pd.Timestamp(b.start) for b in books.values()])
    if first_quarter is not None:
        first = max(first, to_day(first_quarter, "first_quarter"))
    quarters = [
        (s, e) for s, e in cal.quarters(pd.to_datetime(targets["period_start"]).min(), last) if s >= first and e <= last
    ]
    settled = PlanContext(tables, calendar=cal, as_of=last)
    realised = {
        name: company_totals(settled.evaluate(book, scenarios=False)).set_index("period_start")
        for name, book in books.items()
    }
    past = None
    if calibrate and quarters:
        try:  # every quarter's chances at its start (offset 0), once; each quarter learns from those before it
            past = calibration_rows(
                data,
                model=model,
                offset_weeks=0,
                first_quarter=calibration_window_start(quarters[0][0], calibration_quarters),
                data_end=last,
                n_draws=calibration_draws,
                seed=seed,
                calendar=cal,
            )
        except SpmError:  # no past quarter to learn from: the model's own draws, as in the review
            past = None
    rows = []
    for i, (q0, q1) in enumerate(quarters):
        origin = last_sunday(q0 - pd.Timedelta(days=1))
        fc = model_forecast_at(
            model, frame, origin, int(np.ceil((q1 - origin).days / 7)), n_draws, min_history_weeks, tables
        )
        if fc is None:
            continue
        qc = None
        if past is not None:
            fc, qc = calibrated_scenarios(
                fc, past, q0, tables=tables, seed=seed, quarters=calibration_quarters, min_rows=CALIBRATION_MIN_ROWS
            )
        ctx = PlanContext(tables, calendar=cal, as_of=q0 - pd.Timedelta(days=1), forecast=fc, seed=seed + i)
        ctx.prepare(books.values())
        for name, book in books.items():
            cost = plan_cost(ctx.evaluate(book), label=name, margin=False).iloc[0]
            done = realised[name]
            actual = float(done.loc[q0, "earned_to_date"]) if q0 in done.index else 0.0
            rows.append(
                {
                    "plan": name,
                    "period": cal.quarter_label(q0),
                    "period_start": q0,
                    "origin": origin,
                    "expected_cost": float(cost["expected_cost"]),
                    "cost_q10": float(cost["cost_q10"]),
                    "cost_q90": float(cost["cost_q90"]),
                    "realised_cost": actual,
                    "held": bool(cost["cost_q10"] <= actual <= cost["cost_q90"]),
                    "drift": np.nan if qc is None or qc.drift is None else qc.drift,
                    "spread": np.nan if qc is None or qc.spread is None else qc.spread,
                    "territory_spread": np.nan if qc is None or qc.group_spread is None else qc.group_spread,
                }
            )
    if not rows:
        raise DataError(
            "the data have no past quarter with quotas and enough history before it to backtest a plan's cost"
        )
    return pd.DataFrame(rows, columns=COST_BACKTEST_COLUMNS)


def cost_coverage(backtest: pd.DataFrame) -> pd.DataFrame:
    """Per plan: quarters scored ``n``, quarters held ``k``, the coverage ``k / n`` of the 80%
    range with its binomial standard error and Wilson 90% interval (module docstring), and how
    often the realised cost fell below the 10th or above the 90th percentile. Rows of several
    organisations with the same plan labels are pooled.

    Returns
    -------
    DataFrame
        ``plan, quarters, held, coverage, coverage_se, coverage_low, coverage_high, below, above``.
    """
    rows = []
    for plan, g in backtest.groupby("plan", sort=False):
        n, k = len(g), int(g["held"].sum())
        p, z = k / n, _Z90
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        rows.append(
            {
                "plan": plan,
                "quarters": n,
                "held": k,
                "coverage": p,
                "coverage_se": float(np.sqrt(p * (1 - p) / n)),
                "coverage_low": max(0.0, centre - half),
                "coverage_high": min(1.0, centre + half),
                "below": int((g["realised_cost"] < g["cost_q10"]).sum()),
                "above": int((g["realised_cost"] > g["cost_q90"]).sum()),
            }
        )
    return pd.DataFrame(rows)
