"""Agents' P(quota) adjusted by how the model's P(quota) turned out in past quarters.

The review's raw ``p = P(closed + remaining >= quota)`` comes from the model's draws, and a
model that sees only bookings tends to be over-confident about quota (bench/README.md,
"P(quota) calibration"). Once per run, after the model fit, :func:`learn_recalibration`

1. backtests a clone of the fitted model (same settings, ``recalibration_draws`` draws per
   agent) on the data as of the review date
   (:func:`spm_models.evaluation.quota.backtest.backtest_quota_probabilities`) over the last
   ``recalibration_quarters`` quarters that had ended by then, at the review's own point in
   the quarter (:func:`~spm_models.evaluation.quota.backtest.quarter_offset_weeks`) and with the
   review's calendar day count, giving one ``(p, hit)`` per agent-quarter;
2. when there are at least ``recalibration_min_rows`` such agent-quarters with both hits and
   misses, fits ``logit p~ = a + b logit p``
   (:func:`spm_models.evaluation.quota.calibration.fit_recalibration`).

:func:`recalibrate_outlook` applies it to the agents' quarter outlook: ``p_quota`` becomes
the adjusted value (what the reports show and the coaching points quote) and ``p_quota_raw``
keeps the model's. Without enough history the adjusted value is the raw one and
:attr:`QuotaRecalibration.reason` says why. Territory and company P(quota) stay raw: each
territory-quarter is a single outcome, far too few to learn from. The attainment quantiles,
expected bookings and the fan charts are the model's own and are not adjusted.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from spm_models.calendar import DEFAULT_CALENDAR, Calendar
from spm_models.data.dataset import Dataset
from spm_models.evaluation.quota.backtest import backtest_quota_probabilities, quarter_offset_weeks
from spm_models.evaluation.quota.calibration import Recalibration, fit_recalibration
from spm_models.exceptions import ConfigError, SpmError
from spm_models.models.base import ForecastModel
from spm_models.review.outlook import ReviewCalendar
from spm_models.review.settings import ReviewConfig

__all__ = ["QuotaRecalibration", "learn_recalibration", "recalibrate_outlook", "quota_note", "BACKTEST_COLUMNS"]

BACKTEST_COLUMNS = [
    "agent_id",
    "period_start",
    "period_end",
    "origin",
    "offset_weeks",
    "quota",
    "closed_to_date",
    "p_quota",
    "expected_attainment",
    "attainment",
    "hit",
    "pit",
]


@dataclass(frozen=True)
class QuotaRecalibration:
    """The adjustment learned in one review run (module docstring).

    Attributes
    ----------
    applied : bool
        Whether agents' P(quota) is adjusted; False: the adjusted value is the raw one.
    reason : str
        Why it is not applied, in plain words ("" when applied).
    intercept, slope : float or None
        ``a`` and ``b`` of ``logit p~ = a + b logit p`` (None when not applied).
    n : int
        Past agent-quarters with a quota in the backtest.
    n_hits : int
        Of those, how many reached quota.
    quarters : tuple of str
        Quarters of the backtest rows (``"2024-Q3"``), oldest first.
    offset_weeks : int
        Weeks into each past quarter at which it was backtested (the review's own point).
    n_draws : int
    seconds : float
        Wall time of the backtest and the fit.
    """

    applied: bool
    reason: str
    intercept: float | None
    slope: float | None
    n: int
    n_hits: int
    quarters: tuple[str, ...]
    offset_weeks: int
    n_draws: int
    seconds: float

    def __call__(self, p: Iterable[float]) -> np.ndarray:
        """Adjusted probabilities ``1 / (1 + exp(-(a + b logit p)))``; the raw ones when not applied."""
        p = np.asarray(p, dtype=float)
        if not self.applied:
            return p.copy()
        return Recalibration(self.intercept, self.slope, self.n)(p)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able fields (written to ``run.json``)."""
        d = asdict(self)
        d["quarters"] = list(self.quarters)
        d["seconds"] = round(self.seconds, 3)
        return d


def _quarter_labels(rows: pd.DataFrame, calendar: Calendar) -> tuple[str, ...]:
    return tuple(calendar.quarter_label(d) for d in sorted(pd.unique(rows["period_start"])))


def _skipped(
    reason: str,
    offset: int,
    config: ReviewConfig,
    started: float,
    rows: pd.DataFrame | None = None,
    calendar: Calendar = DEFAULT_CALENDAR,
) -> QuotaRecalibration:
    rows = rows if rows is not None else pd.DataFrame(columns=BACKTEST_COLUMNS)
    quarters = _quarter_labels(rows, calendar)
    return QuotaRecalibration(
        False,
        reason,
        None,
        None,
        int(len(rows)),
        int(rows["hit"].astype(bool).sum()),
        quarters,
        offset,
        config.recalibration_draws,
        time.perf_counter() - started,
    )


def learn_recalibration(
    dataset: Dataset, model: ForecastModel, calendar: ReviewCalendar, config: ReviewConfig
) -> tuple[QuotaRecalibration, pd.DataFrame]:
    """Backtest the review's model on past quarters and learn the P(quota) adjustment.

    Parameters
    ----------
    dataset : Dataset
        The data as of the review date (:func:`spm_models.review.outlook.as_of_dataset`).
    model : ForecastModel
        The review's model (fitted or not: the backtest refits clones of it).
    calendar : ReviewCalendar
    config : ReviewConfig
        ``recalibrate``, ``recalibration_draws``, ``recalibration_min_rows``,
        ``recalibration_quarters`` and ``seed`` are used.

    Returns
    -------
    (QuotaRecalibration, DataFrame)
        The adjustment (or why there is none) and the backtest rows it was learned from
        (:data:`BACKTEST_COLUMNS`, one per agent-quarter; empty when there was no backtest).
        A model or data failure in the backtest is recorded as the reason, never raised:
        the review goes on with raw probabilities.
    """
    started = time.perf_counter()
    offset = quarter_offset_weeks(calendar.as_of, calendar.forecast_quarter)
    if not config.recalibrate:
        return _skipped(
            "it is switched off in the settings (recalibrate = false)", offset, config, started
        ), pd.DataFrame(columns=BACKTEST_COLUMNS)
    if not len(dataset.get("targets")):
        return _skipped("the data have no quotas", offset, config, started), pd.DataFrame(columns=BACKTEST_COLUMNS)
    # a week early, so that the first quarter keeps an origin just before it starts (offset 0)
    first = calendar.forecast_quarter - pd.DateOffset(months=3 * config.recalibration_quarters) - pd.Timedelta(weeks=1)
    try:
        rows = backtest_quota_probabilities(
            dataset,
            model=model,
            offsets_weeks=[offset],
            n_draws=config.recalibration_draws,
            seed=config.seed,
            first_quarter=first,
            data_end=calendar.as_of,
            day_count="calendar",
            calendar=calendar.calendar,
        )
    except SpmError as exc:
        reason = f"no past quarter could be checked ({exc})"
        return _skipped(reason, offset, config, started), pd.DataFrame(columns=BACKTEST_COLUMNS)
    rows = rows[rows["p_quota"].notna()].reset_index(drop=True)
    n, hits = len(rows), int(rows["hit"].sum())
    if n < config.recalibration_min_rows:
        return _skipped(
            f"only {n} past agent-quarters (at least {config.recalibration_min_rows} are needed)",
            offset,
            config,
            started,
            rows,
            calendar.calendar,
        ), rows
    if hits in (0, n):
        verdict = "missed" if hits == 0 else "reached"
        return _skipped(
            f"in all {n} past agent-quarters the agents {verdict} quota, so there is nothing to learn from",
            offset,
            config,
            started,
            rows,
            calendar.calendar,
        ), rows
    cal = fit_recalibration(rows["p_quota"], rows["hit"].astype(float), min_rows=config.recalibration_min_rows)
    quarters = _quarter_labels(rows, calendar.calendar)
    recal = QuotaRecalibration(
        True,
        "",
        cal.intercept,
        cal.slope,
        cal.n,
        hits,
        quarters,
        offset,
        config.recalibration_draws,
        time.perf_counter() - started,
    )
    return recal, rows


def recalibrate_outlook(outlook: pd.DataFrame, recalibration: QuotaRecalibration | None = None) -> pd.DataFrame:
    """The outlook with ``p_quota_raw`` (the model's) and ``p_quota`` adjusted.

    ``p_quota = recalibration(p_quota_raw)``; without a recalibration (territory and company
    levels) ``p_quota`` stays raw. The column order is kept, ``p_quota_raw`` after ``p_quota``.
    """
    out = outlook.copy()
    raw = out["p_quota"].to_numpy(dtype=float)
    out.insert(out.columns.get_loc("p_quota") + 1, "p_quota_raw", raw)
    if recalibration is not None:
        out["p_quota"] = recalibration(raw)
    return out


_RAW_LEVELS = "there are too few past territory-quarters to learn an adjustment from"


def quota_note(info: Mapping[str, Any] | None, *, level: str) -> str:
    """A plain-language note on what the report's chance of reaching quota is.

    Parameters
    ----------
    info : mapping or None
        ``run.json``'s ``quota_recalibration`` (:meth:`QuotaRecalibration.to_dict`); None
        (or a run without quotas) gives ``""``.
    level : {"agent", "territory", "company", "index"}
        The report: an agent's, a territory's (its agents adjusted, itself raw), the
        company's monthly review (territories and company raw) or the index of all reports.
    """
    if level not in ("agent", "territory", "company", "index"):
        raise ConfigError(f"level must be agent, territory, company or index, got {level!r}")
    if not info:
        return ""
    if info.get("applied"):
        slope = float(info["slope"])
        how = (
            "past forecasts were too sure, so chances are pulled towards the middle"
            if slope < 1
            else "past forecasts were too cautious, so chances are pushed away from the middle"
        )
        quarters = info.get("quarters") or []
        span = f" ({quarters[0]} to {quarters[-1]})" if quarters else ""
        agents = (
            f"adjusted by how past forecasts of this kind turned out: learned from {int(info['n'])} "
            f"agent-quarters{span}; {how}."
        )
    else:
        reason = info.get("reason") or "no past quarters to learn from"
        agents = f"the model's own figure, not adjusted by past results: {reason}."
    if level == "agent":
        return f"Chance of reaching quota is {agents}"
    if level == "territory":
        return (
            f"The agents' chance of reaching quota is {agents} The territory's own chance is the model's figure, "
            f"not adjusted: {_RAW_LEVELS}."
        )
    raw = f"the model's own figure, not adjusted: {_RAW_LEVELS}."
    if level == "index":
        return f"Agents' chance of reaching quota is {agents} The territories' and the company's is {raw}"
    return f"The territories' and the company's chance of reaching quota is {raw}"
