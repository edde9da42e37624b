"""Chances of reaching quota corrected by how the review's model did in past quarters.

Once per run, after the model fit, :func:`learn_recalibration` backtests a clone of the fitted
model (same settings, ``recalibration_draws`` draws per agent) on the data as of the review
date over the last ``recalibration_quarters`` quarters that had ended by then, at the review's
own point in the quarter (:func:`~spm_models.evaluation.quota.backtest.quarter_offset_weeks`),
and learns the two-stage calibration of :mod:`spm_models.evaluation.quota.calibration` from it:

1. a **common factor** on what is still to book, drawn once per scenario for every agent
   (how far off the whole forecast was in the last quarters, and how much that moved), times a
   **territory factor** drawn per territory and scenario (how much more past territories
   varied than the model's sums said); they are applied to the agents' forecast draws
   (:func:`apply_common_factor`) before anything is summed, so the territory and company
   chances, the fan charts and the payout estimate all read the corrected scenarios, and what
   is already booked is never touched;
2. a **logistic adjustment** of the agents' chances (``logit p~ = a + b logit p``), applied to
   the agents' chances only (:func:`recalibrate_outlook`); an agent at or above quota keeps
   exactly 1 and is shown as "reached".

A stage without enough history, or a logistic fit whose slope is near zero (the past chances
did not tell hits from misses, and the fit would give every agent the same number), is left
out and the run says why (:attr:`QuotaRecalibration.notes`, :func:`quota_note`).
``p_quota_raw`` keeps the model's own figure.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from spm_models.calendar import Calendar
from spm_models.data.dataset import Dataset
from spm_models.evaluation.quota.backtest import calibration_rows, quarter_offset_weeks
from spm_models.evaluation.quota.calibration import (
    QuotaCalibration,
    calibration_window_start,
    factor_forecast,
    learn_calibration_before,
)
from spm_models.exceptions import ConfigError, SpmError
from spm_models.models.base import ForecastModel
from spm_models.models.forecast import Forecast
from spm_models.review.outlook import ReviewCalendar
from spm_models.review.settings import ReviewConfig

__all__ = [
    "QuotaRecalibration",
    "learn_recalibration",
    "apply_common_factor",
    "recalibrate_outlook",
    "quota_note",
    "BACKTEST_COLUMNS",
]

BACKTEST_COLUMNS = [
    "level",
    "entity_id",
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
    "expected_remaining",
    "realised_remaining",
]


@dataclass(frozen=True)
class QuotaRecalibration:
    """The calibration learned in one review run (module docstring).

    Attributes
    ----------
    calibration : QuotaCalibration
        The two stages (either may be missing, with its note).
    n_hits : int
        Past agent-quarters that reached quota.
    quarters : tuple of str
        Quarters learned from (``"2024-Q3"``), oldest first.
    offset_weeks : int
        Weeks into each past quarter at which it was backtested (the review's own point).
    n_draws : int
    seconds : float
        Wall time of the backtest and the fit.
    """

    calibration: QuotaCalibration
    n_hits: int
    quarters: tuple[str, ...]
    offset_weeks: int
    n_draws: int
    seconds: float

    @property
    def applied(self) -> bool:
        """Whether any stage changes the model's chances."""
        return self.calibration.factor_applied or self.calibration.recalibration is not None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able fields (written to ``run.json``)."""
        c = self.calibration
        return {
            "applied": self.applied,
            "factor_applied": c.factor_applied,
            "drift": c.drift,
            "spread": c.spread,
            "territory_spread": c.group_spread,
            "n_territory": c.n_group_rows,
            "logistic_applied": c.recalibration is not None,
            "intercept": None if c.recalibration is None else c.recalibration.intercept,
            "slope": None if c.recalibration is None else c.recalibration.slope,
            "notes": list(c.notes),
            "n": c.n_rows,
            "n_hits": self.n_hits,
            "quarters": list(self.quarters),
            "offset_weeks": self.offset_weeks,
            "n_draws": self.n_draws,
            "seconds": round(self.seconds, 3),
        }


def _record(
    cal: QuotaCalibration, rows: pd.DataFrame, offset: int, config: ReviewConfig, started: float, calendar: Calendar
) -> QuotaRecalibration:
    quarters = tuple(calendar.quarter_label(d) for d in sorted(pd.unique(rows["period_start"]))) if len(rows) else ()
    hits = int(rows["hit"].astype(bool).sum()) if len(rows) else 0
    return QuotaRecalibration(cal, hits, quarters, offset, config.recalibration_draws, time.perf_counter() - started)


def _nothing(note: str) -> QuotaCalibration:
    return QuotaCalibration(None, None, None, 0, 0, (note,))


def learn_recalibration(
    dataset: Dataset, model: ForecastModel, calendar: ReviewCalendar, config: ReviewConfig
) -> tuple[QuotaRecalibration, pd.DataFrame]:
    """Backtest the review's model on past quarters and learn the calibration of its chances.

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
        The calibration (or why there is none) and the backtest rows it was learned from
        (:data:`BACKTEST_COLUMNS`, one per agent-quarter; empty when there was no backtest).
        A model or data failure in the backtest is recorded as a note, never raised: the
        review goes on with the model's own chances.
    """
    started = time.perf_counter()
    offset = quarter_offset_weeks(calendar.as_of, calendar.forecast_quarter)
    empty = pd.DataFrame(columns=BACKTEST_COLUMNS)
    cal = calendar.calendar
    if not config.recalibrate:
        note = "it is switched off in the settings (recalibrate = false)"
        return _record(_nothing(note), empty, offset, config, started, cal), empty
    if not len(dataset.get("targets")):
        return _record(_nothing("the data have no quotas"), empty, offset, config, started, cal), empty
    try:
        rows = calibration_rows(
            dataset,
            model=model,
            offset_weeks=offset,
            first_quarter=calibration_window_start(calendar.forecast_quarter, config.recalibration_quarters),
            data_end=calendar.as_of,
            n_draws=config.recalibration_draws,
            seed=config.seed,
            calendar=cal,
        )
    except SpmError as exc:
        note = f"no past quarter could be checked ({exc})"
        return _record(_nothing(note), empty, offset, config, started, cal), empty
    learned = learn_calibration_before(
        rows, calendar.forecast_quarter, quarters=config.recalibration_quarters, min_rows=config.recalibration_min_rows
    )
    agents = rows[rows["level"] == "agent"]
    return _record(learned, agents, offset, config, started, cal), rows.drop(columns="remaining_points")


def apply_common_factor(
    forecast: Forecast, recalibration: QuotaRecalibration | None, *, seed: int, groups: Mapping[str, str] | None = None
) -> Forecast:
    """The forecast with draw ``j`` of series ``i`` multiplied by ``F_j G_g(i)j``: the common
    factor and the factor of the series' territory ``g(i)`` (``groups``: series -> territory;
    without it, or without a learned territory spread, ``G = 1``), by
    :func:`~spm_models.evaluation.quota.calibration.factor_forecast`.

    Without a learned factor the forecast is returned unchanged.
    """
    return factor_forecast(
        forecast, None if recalibration is None else recalibration.calibration, seed=seed, groups=groups
    )


def recalibrate_outlook(
    outlook: pd.DataFrame, raw: pd.DataFrame, recalibration: QuotaRecalibration | None = None
) -> pd.DataFrame:
    """The outlook with the model's own chance (``p_quota_raw``), the shown one and ``reached``.

    ``outlook`` is computed from the factored draws (stage 1), ``raw`` from the model's own;
    agents (``recalibration`` given) also get stage 2. ``reached`` is booked at or above quota,
    where the chance is exactly 1.
    """
    out = outlook.copy()
    p = out["p_quota"].to_numpy(dtype=float)
    if recalibration is not None:
        p = recalibration.calibration.adjust(p)
    out["p_quota"] = p
    out.insert(out.columns.get_loc("p_quota") + 1, "p_quota_raw", raw["p_quota"].to_numpy(dtype=float))
    reached = (out["quota"] > 0) & (out["closed_to_date"] >= out["quota"])
    out.insert(out.columns.get_loc("p_quota_raw") + 1, "reached", reached.to_numpy())
    return out


def quota_note(info: Mapping[str, Any] | None, *, level: str) -> str:
    """A plain-language note on what the report's chance of reaching quota is.

    Parameters
    ----------
    info : mapping or None
        ``run.json``'s ``quota_recalibration`` (:meth:`QuotaRecalibration.to_dict`); None
        (or a run without quotas) gives ``""``.
    level : {"agent", "territory", "company", "index"}
        The report: an agent's, a territory's, the company's monthly review or the index.
    """
    if level not in ("agent", "territory", "company", "index"):
        raise ConfigError(f"level must be agent, territory, company or index, got {level!r}")
    if not info:
        return ""
    quarters = info.get("quarters") or []
    span = f" ({quarters[0]} to {quarters[-1]})" if quarters else ""
    parts = []
    if info.get("drift") is not None:
        drift = float(info["drift"])
        way = "below" if drift > 0 else "above"  # drift = log(what happened / forecast)
        parts.append(
            f"every scenario of what is still to book is scaled by how far the forecasts of the last "
            f"quarters were off (most recently {abs(np.expm1(drift)):.0%} {way} what happened), with the "
            f"spread of that error, shared by all agents"
        )
    if info.get("territory_spread") is not None:
        parts.append(
            f"each territory's scenarios also vary as much as past territories did around the forecast "
            f"(learned from {int(info.get('n_territory') or 0)} past territory-quarters)"
        )
    if info.get("logistic_applied"):
        slope = float(info["slope"])
        how = "pulled towards the middle" if slope < 1 else "pushed away from the middle"
        parts.append(f"agents' chances are then {how}, as {int(info['n'])} past agent-quarters{span} showed")
    notes = "; ".join(info.get("notes") or [])
    if not parts:
        text = f"These chances are the model's own, not adjusted by past results: {notes}."
    else:
        text = "Chances of reaching quota are checked against past quarters: " + "; ".join(parts) + "."
        if notes:
            text += f" Not applied: {notes}."
    if level != "agent" and parts:
        text += " Territory and company chances come from the agents' scaled scenarios added up."
    return text + " Booked at or above quota shows as reached (100%)."
