"""What was known at a date: opportunities and stage history rewound to ``as_of``.

Helpers of :mod:`spm_models.models.pipeline.forecast`. Time runs on a period grid -- weeks starting
Monday (``freq="W-MON"``) or calendar months (``"MS"``) -- numbered by integers
(:meth:`~spm_models.calendar.Calendar.period_number`). A deal is
*known* at ``as_of`` when it was created by then, and *closed* only when it was won or lost
by then; a deal that closed later is open at ``as_of`` and its outcome is never read. Stage
history entries dated after ``as_of`` are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from spm_models.calendar import DEFAULT_CALENDAR, date_rule, parse_dates
from spm_models.data.schemas import PIPELINE_STAGES
from spm_models.exceptions import ConfigError, DataValidationError, Problem

__all__ = [
    "FREQ_UNITS",
    "UNKNOWN_STAGE",
    "WON",
    "LOST",
    "Deals",
    "check_freq",
    "period_number",
    "read_deals",
    "read_history",
    "stage_at",
    "open_at",
]

#: Supported period grids: pandas frequency -> unit.
FREQ_UNITS = {"W-MON": "week", "MS": "month"}
#: Stage code of "stage not known" (after the codes of :data:`PIPELINE_STAGES`).
UNKNOWN_STAGE = len(PIPELINE_STAGES)
WON, LOST = 1, 2
_NEEDED = ("opportunity_id", "agent_id", "created_date", "outcome", "close_date", "amount")


# --------------------------------------------------------------------------- periods


def _days(values: Any, *, file: str, column: str, problems: list[Problem]) -> np.ndarray:
    """A date column as ``datetime64[D]`` (:func:`~spm_models.calendar.parse_dates`); bad values are problems."""
    parsed, bad = parse_dates(pd.Series(values))
    for v in pd.Series(values)[bad.to_numpy()].astype(str).unique()[:5]:
        problems.append(Problem(file, None, column, v, date_rule(None)))
    return parsed.to_numpy().astype("datetime64[D]")


def period_number(days: np.ndarray, unit: str) -> np.ndarray:
    """Week or month number of each day (:meth:`~spm_models.calendar.Calendar.period_number`)."""
    return DEFAULT_CALENDAR.period_number(days, unit)


def check_freq(freq: str) -> str:
    if freq not in FREQ_UNITS:
        raise ConfigError(f"freq={freq!r} is not supported by the pipeline model; use one of {', '.join(FREQ_UNITS)}")
    return FREQ_UNITS[freq]


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Deals:
    """Opportunity columns as arrays (only deals created by as_of)."""

    ids: np.ndarray
    agent: np.ndarray  # agent_id text
    created: np.ndarray  # period
    closed: np.ndarray  # bool: won or lost by as_of
    close: np.ndarray  # period of the close (meaningless where not closed)
    outcome: np.ndarray  # 0 open at as_of, 1 won, 2 lost
    amount: np.ndarray  # float, NaN where missing


def read_deals(opportunities: pd.DataFrame, *, as_of_day: np.datetime64, unit: str, table: str) -> Deals:
    """The deals known at ``as_of_day``, rewound: later closes are treated as still open.

    Deals lost without a close date are left out: the model learns when deals close.
    """
    missing = [c for c in _NEEDED if c not in opportunities.columns]
    if missing:
        raise DataValidationError(
            [Problem(table, None, c, None, "this column is required by the pipeline forecast") for c in missing]
        )
    problems: list[Problem] = []
    created = _days(opportunities["created_date"], file=table, column="created_date", problems=problems)
    close = _days(opportunities["close_date"], file=table, column="close_date", problems=problems)
    outcome = opportunities["outcome"].astype("str").str.strip().str.lower()
    code = outcome.map({"open": 0, "won": WON, "lost": LOST}).to_numpy(dtype=float, na_value=np.nan)
    for v in outcome[np.isnan(code)].unique()[:5]:
        problems.append(Problem(table, None, "outcome", str(v), "outcome must be one of open, won, lost"))
    ids = opportunities["opportunity_id"].astype("str")
    for v in ids[ids.duplicated()].unique()[:5]:
        problems.append(Problem(table, None, "opportunity_id", str(v), "opportunity_id appears more than once"))
    if np.isnat(created).any():
        problems.append(
            Problem(
                table, None, "created_date", None, f"{int(np.isnat(created).sum())} opportunities have no created_date"
            )
        )
    no_close = (code == WON) & np.isnat(close)
    for v in ids[no_close].unique()[:5]:
        problems.append(Problem(table, None, "close_date", str(v), "a won opportunity needs a close_date"))
    amount = pd.to_numeric(opportunities["amount"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    if (amount < 0).any():
        problems.append(Problem(table, None, "amount", None, "amount must be zero or more"))
    if problems:
        raise DataValidationError(problems)
    # a deal lost at an unknown time says nothing about when deals close: it is left out
    known = (created <= as_of_day) & ~((code == LOST) & np.isnat(close))
    code = code.astype(np.int64)
    closed = known & np.isin(code, (WON, LOST)) & (close <= as_of_day)
    k = np.flatnonzero(known)
    safe_close = np.where(np.isnat(close), as_of_day, close)
    return Deals(
        ids=ids.to_numpy(dtype=object)[k],
        agent=opportunities["agent_id"].astype("str").to_numpy(dtype=object)[k],
        created=period_number(created[k], unit),
        closed=closed[k],
        close=period_number(safe_close[k], unit),
        outcome=np.where(closed, code, 0)[k],
        amount=amount[k],
    )


def read_history(
    stage_history: pd.DataFrame, ids: np.ndarray, *, as_of_day: np.datetime64, unit: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stage entries dated by ``as_of_day`` of the given deals: (deal index, period, stage code), sorted."""
    missing = [c for c in ("opportunity_id", "stage", "entered_date") if c not in stage_history.columns]
    if missing:
        raise DataValidationError(
            [
                Problem("stage_history", None, c, None, "this column is required to use the stage history")
                for c in missing
            ]
        )
    problems: list[Problem] = []
    entered = _days(stage_history["entered_date"], file="stage_history", column="entered_date", problems=problems)
    stage = stage_history["stage"].astype("str").str.strip().str.lower()
    code = pd.Index(PIPELINE_STAGES).get_indexer(stage)
    for v in stage[code < 0].unique()[:5]:
        problems.append(
            Problem("stage_history", None, "stage", str(v), "stage must be one of " + ", ".join(PIPELINE_STAGES))
        )
    if problems:
        raise DataValidationError(problems)
    deal = pd.Index(ids).get_indexer(stage_history["opportunity_id"].astype("str"))
    keep = (deal >= 0) & ~np.isnat(entered) & (entered <= as_of_day)
    deal, period, code = deal[keep], period_number(entered[keep], unit), code[keep].astype(np.int64)
    order = np.lexsort((code, period, deal))
    return deal[order], period[order], code[order]


def stage_at(
    history: tuple[np.ndarray, np.ndarray, np.ndarray] | None, deal: np.ndarray, m: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Stage code and entry period of each ``deal`` at the end of period ``m`` (unknown: code 5, entry -1)."""
    stage = np.full(len(deal), UNKNOWN_STAGE, dtype=np.int64)
    entry = np.full(len(deal), -1, dtype=np.int64)
    if history is None or not len(history[0]) or not len(deal):
        return stage, entry
    h_deal, h_period, h_code = history
    lo = min(h_period.min(), m.min())
    span = max(h_period.max(), m.max()) - lo + 2
    keys = h_deal * span + (h_period - lo)
    pos = np.searchsorted(keys, deal * span + (m - lo), side="right") - 1
    ok = pos >= 0
    ok[ok] = h_deal[pos[ok]] == deal[ok]
    stage[ok] = h_code[pos[ok]]
    entry[ok] = h_period[pos[ok]]
    return stage, entry


def open_at(opportunities: pd.DataFrame, as_of: Any) -> pd.Series:
    """Boolean mask of the opportunities open at the end of day ``as_of``.

    Open means created on or before ``as_of`` and not won or lost by then:
    ``created_date <= as_of`` and not (``outcome`` in won/lost and ``close_date <= as_of``).
    An open deal with a planned close date in the past is still open; a deal lost at an
    unknown time (no close date) is never open.
    """
    day = np.datetime64(pd.Timestamp(as_of).date(), "D")
    created = pd.to_datetime(opportunities["created_date"]).to_numpy().astype("datetime64[D]")
    close = pd.to_datetime(opportunities["close_date"]).to_numpy().astype("datetime64[D]")
    if "outcome" in opportunities.columns:
        is_closed = opportunities["outcome"].astype("str").str.strip().str.lower().isin(["won", "lost"]).to_numpy()
    else:
        is_closed = ~np.isnat(close)
    closed_by = is_closed & (np.isnat(close) | (close <= day))
    return pd.Series(~np.isnat(created) & (created <= day) & ~closed_by, index=opportunities.index)
