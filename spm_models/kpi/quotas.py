"""Quota (targets prorated to reporting periods) and attainment.

A target row covers ``[period_start, period_end]`` (both inclusive, ``D`` days) with amount
``quota``. Its share in a reporting period ``t`` is proportional to the calendar days they
have in common::

    quota_share(row, t) = quota * overlap_days(row, t) / D

so a monthly target splits across the weeks of the month by day, and the monthly targets of
a quarter add up to its quarterly quota.

Levels
------
agent      sum of the shares of the agent's own targets (``agent_id`` set).
territory  sum of its agents' quotas, if any agent of the territory (per the agents table)
           has an agent-level target overlapping the period; otherwise the shares of the
           territory-level targets (``agent_id`` empty, ``territory_id`` set). Agent-level
           targets win because they are the finer plan; adding both would count the same
           plan twice.
company    sum of the territory quotas.

So agent quotas add up to territory and company quotas exactly, except in territory-periods
planned only at territory level, where the territory's own target is used.

Targets on margin
-----------------
A target row whose ``metric`` is ``margin`` is a margin objective: it counts for
:func:`margin_quota` and :func:`margin_attainment` (margin over margin quota), never for the
bookings quota. An empty ``metric`` means bookings.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from spm_models.calendar import Calendar
from spm_models.exceptions import DataValidationError, Problem
from spm_models.kpi.deals import closed_deals
from spm_models.kpi.engine import OUTCOME_WON, KpiEngine, KpiValues, days, evaluate, fill_doc
from spm_models.kpi.grid import LEVELS, ratio

__all__ = ["quota", "attainment", "prorated_quota", "margin_quota", "margin_attainment", "won_margin"]


def _explode(grid, first_day: np.ndarray, last_day: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, period, overlap days) for every pair of a target row and a period it overlaps."""
    n_p = grid.n_periods
    if not n_p or not len(first_day):
        empty = np.array([], dtype=np.int64)
        return empty, empty, empty
    b = grid.bounds
    lo = np.maximum(np.searchsorted(b, first_day, side="right") - 1, 0)
    hi = np.minimum(np.searchsorted(b, last_day, side="right") - 1, n_p - 1)
    inside = (first_day < b[-1]) & (last_day >= b[0])
    count = np.where(inside, hi - lo + 1, 0)
    row = np.repeat(np.arange(len(first_day)), count)
    offset = np.arange(len(row)) - np.repeat(np.cumsum(count) - count, count)
    period = lo[row] + offset
    start = np.maximum(first_day[row], b[period])
    stop = np.minimum(last_day[row] + np.timedelta64(1, "D"), b[period + 1])
    overlap = (stop - start).astype(np.int64)
    return row, period, overlap


def prorated_quota(engine: KpiEngine) -> dict[str, Any]:
    """Bookings quota per level and the agent-periods holding a target (shared, computed once)."""
    return _prorated(engine, "bookings")


def prorated_margin_quota(engine: KpiEngine) -> dict[str, Any]:
    """Margin quota per level and the agent-periods holding a margin target (shared, computed once)."""
    return _prorated(engine, "margin")


def _prorated(engine: KpiEngine, metric: str) -> dict[str, Any]:
    g = engine.grid
    t = engine.typed("targets")
    if "metric" in t:  # an empty metric is bookings
        on = (t["metric"] == metric) | (t["metric"].isna() & (metric == "bookings"))
    else:
        on = pd.Series(metric == "bookings", index=t.index)
    t = t[on.to_numpy()].reset_index(drop=True)
    first, last = days(t, "period_start"), days(t, "period_end")
    agent_col = t["agent_id"] if "agent_id" in t else pd.Series(np.full(len(t), np.nan), dtype="str")
    terr_col = t["territory_id"] if "territory_id" in t else pd.Series(np.full(len(t), np.nan), dtype="str")
    is_agent = agent_col.notna().to_numpy()
    is_terr = ~is_agent & terr_col.notna().to_numpy()
    problems = []
    for i in np.flatnonzero(~is_agent & ~is_terr)[:50]:
        rule = f"the target starting {first[i]} names neither an agent_id nor a territory_id"
        problems.append(Problem("targets", None, "agent_id", None, rule))
    for i in np.flatnonzero(last < first)[:50]:
        rule = f"period_end is before period_start {first[i]}"
        problems.append(Problem("targets", None, "period_end", str(last[i]), rule))
    if problems:
        raise DataValidationError(problems)
    length = (last - first).astype(np.int64) + 1
    amount = np.nan_to_num(t["quota"].to_numpy(dtype=float), nan=0.0)
    share_per_day = amount / length

    rows_a = np.flatnonzero(is_agent)
    agent_codes = g.agent_codes(agent_col.iloc[rows_a], table="targets")
    r, p, overlap = _explode(g, first[rows_a], last[rows_a])
    agent_quota = g.accumulate(agent_codes[r], p, share_per_day[rows_a][r] * overlap)
    has_target = g.accumulate(agent_codes[r], p, (overlap > 0).astype(float)) > 0

    rows_t = np.flatnonzero(is_terr)
    terr_codes = pd.Index(g.territory_ids).get_indexer(terr_col.iloc[rows_t])
    r, p, overlap = _explode(g, first[rows_t], last[rows_t])
    terr_own = np.zeros((g.n_territories, g.n_periods))
    if len(r):
        flat = terr_codes[r] * g.n_periods + p
        weights = share_per_day[rows_t][r] * overlap
        terr_own = np.bincount(flat, weights=weights, minlength=terr_own.size).reshape(terr_own.shape)

    from_agents = g.to_territories(agent_quota)
    planned_by_agent = g.to_territories(has_target.astype(float)) > 0
    terr_quota = np.where(planned_by_agent, from_agents, terr_own)
    return {
        "quota": {"agent": agent_quota, "territory": terr_quota, "company": terr_quota.sum(axis=0, keepdims=True)},
        "active": has_target,
    }


def _eval_quota(engine: KpiEngine) -> list[KpiValues]:
    q = engine.memo(prorated_quota)
    return [KpiValues("quota", q["quota"], q["active"])]


def _eval_attainment(engine: KpiEngine) -> list[KpiValues]:
    q = engine.memo(prorated_quota)
    c = engine.memo(closed_deals)
    values = {lv: ratio(c["amount"][lv], q["quota"][lv]) for lv in LEVELS}
    return [KpiValues("attainment", values, q["active"] | (c["won"]["agent"] > 0))]


def won_margin(engine: KpiEngine) -> dict[str, Any]:
    """Margin of the deals won per entity and close period, and where it is known (computed once)."""
    o, g = engine.opportunities, engine.grid
    won = (o.outcome == OUTCOME_WON) & ~np.isnan(o.margin)
    values = g.accumulate(o.agent[won], o.closed_p[won], o.margin[won])
    return {"margin": g.rollup(values), "known": g.accumulate(o.agent[won], o.closed_p[won]) > 0}


def _eval_margin(engine: KpiEngine) -> list[KpiValues]:
    m = engine.memo(won_margin)
    return [KpiValues("margin", m["margin"], m["known"])]


def _eval_margin_quota(engine: KpiEngine) -> list[KpiValues]:
    q = engine.memo(prorated_margin_quota)
    return [KpiValues("margin_quota", q["quota"], q["active"])]


def _eval_margin_attainment(engine: KpiEngine) -> list[KpiValues]:
    q = engine.memo(prorated_margin_quota)
    m = engine.memo(won_margin)
    values = {lv: ratio(m["margin"][lv], q["quota"][lv]) for lv in LEVELS}
    return [KpiValues("margin_attainment", values, q["active"] | m["known"])]


@fill_doc
def quota(
    targets: pd.DataFrame,
    agents: pd.DataFrame,
    *,
    grain: str = "month",
    levels: Iterable[str] = LEVELS,
    start: Any = None,
    end: Any = None,
    calendar: Calendar | None = None,
) -> pd.DataFrame:
    """Quota of each period, prorated from the targets by overlapping days.

    ``quota(a, t) = sum over the agent's target rows r of quota_r * overlap_days(r, t) / D_r``
    where ``D_r = period_end_r - period_start_r + 1``. Territory level: the sum of its
    agents' quotas where any of them has a target overlapping ``t``, else the prorated
    territory-level targets; company: the sum of territories (see :mod:`spm_models.kpi.quotas`).
    0 where there is no target.

    Parameters
    ----------
    targets, agents : DataFrame
        Canonical tables. A target row names an agent (``agent_id``) or a territory
        (``territory_id`` with ``agent_id`` empty).
    %(common)s
    """
    return evaluate(
        [_eval_quota],
        {"targets": targets, "agents": agents},
        grain=grain,
        levels=levels,
        start=start,
        end=end,
        calendar=calendar,
    )


@fill_doc
def attainment(
    opportunities: pd.DataFrame,
    targets: pd.DataFrame,
    agents: pd.DataFrame,
    *,
    grain: str = "month",
    levels: Iterable[str] = LEVELS,
    start: Any = None,
    end: Any = None,
    calendar: Calendar | None = None,
) -> pd.DataFrame:
    """Quota attainment: bookings over quota.

    ``attainment(e, t) = bookings(e, t) / quota(e, t)``; NaN when the quota is 0. 1.0 means
    the quota was met exactly. Each level divides its own bookings by its own quota.

    Parameters
    ----------
    opportunities, targets, agents : DataFrame
        Canonical tables.
    %(common)s
    """
    return evaluate(
        [_eval_attainment],
        {"opportunities": opportunities, "targets": targets, "agents": agents},
        grain=grain,
        levels=levels,
        start=start,
        end=end,
        calendar=calendar,
    )


@fill_doc
def margin_quota(
    targets: pd.DataFrame,
    agents: pd.DataFrame,
    *,
    grain: str = "month",
    levels: Iterable[str] = LEVELS,
    start: Any = None,
    end: Any = None,
    calendar: Calendar | None = None,
) -> pd.DataFrame:
    """Margin objective of each period: the targets whose ``metric`` is ``margin``, prorated as
    :func:`quota` prorates bookings targets.

    ``margin_quota(a, t) = sum over the agent's margin target rows r of quota_r *
    overlap_days(r, t) / D_r``; territories and the company as for :func:`quota`. 0 where there
    is no margin target.

    Parameters
    ----------
    targets, agents : DataFrame
        Canonical tables.
    %(common)s
    """
    return evaluate(
        [_eval_margin_quota],
        {"targets": targets, "agents": agents},
        grain=grain,
        levels=levels,
        start=start,
        end=end,
        calendar=calendar,
    )


@fill_doc
def margin_attainment(
    opportunities: pd.DataFrame,
    targets: pd.DataFrame,
    agents: pd.DataFrame,
    *,
    grain: str = "month",
    levels: Iterable[str] = LEVELS,
    start: Any = None,
    end: Any = None,
    calendar: Calendar | None = None,
) -> pd.DataFrame:
    """Margin attainment: margin of the deals won over the margin objective.

    ``margin(e, t) = sum over W(e, t) of margin_i``, where a deal's margin is its ``margin``,
    else ``amount - cost`` (deals with neither count 0); ``margin_attainment(e, t) =
    margin(e, t) / margin_quota(e, t)``, NaN when the objective is 0.

    Parameters
    ----------
    opportunities, targets, agents : DataFrame
        Canonical tables (``margin`` or ``cost`` on opportunities, ``metric`` on targets).
    %(common)s
    """
    return evaluate(
        [_eval_margin_attainment],
        {"opportunities": opportunities, "targets": targets, "agents": agents},
        grain=grain,
        levels=levels,
        start=start,
        end=end,
        calendar=calendar,
    )
