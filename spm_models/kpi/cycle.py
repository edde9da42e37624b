"""Sales-cycle length of won deals: median and quartiles, in days."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from spm_models.calendar import Calendar
from spm_models.kpi.engine import OUTCOME_WON, KpiEngine, KpiValues, evaluate, fill_doc
from spm_models.kpi.grid import LEVELS

__all__ = ["sales_cycle_days", "CYCLE_KPIS", "grouped_quantiles"]

#: KPI name -> quantile reported by :func:`sales_cycle_days`.
CYCLE_KPIS: dict[str, float] = {"cycle_days_median": 0.5, "cycle_days_p25": 0.25, "cycle_days_p75": 0.75}


def grouped_quantiles(keys: np.ndarray, x: np.ndarray, qs: Iterable[float], size: int) -> np.ndarray:
    """Quantiles of ``x`` within each group, with linear interpolation (numpy's default).

    Parameters
    ----------
    keys : ndarray of int
        Group of each value, in ``[0, size)``.
    x : ndarray of float
        Values.
    qs : iterable of float
        Quantiles in ``[0, 1]``.
    size : int
        Number of groups.

    Returns
    -------
    ndarray, shape (len(qs), size)
        NaN for groups without values. For sorted values ``x_0 <= ... <= x_{n-1}`` of a
        group, quantile ``q`` is ``x_lo + (x_hi - x_lo) * (h - lo)`` with ``h = q (n - 1)``,
        ``lo = floor(h)``, ``hi = ceil(h)``.
    """
    qs = list(qs)
    out = np.full((len(qs), size), np.nan)
    if not len(keys):
        return out
    order = np.lexsort((x, keys))
    k, xs = keys[order], x[order]
    groups, first, count = np.unique(k, return_index=True, return_counts=True)
    for i, q in enumerate(qs):
        h = q * (count - 1)
        lo = np.floor(h).astype(np.int64)
        hi = np.ceil(h).astype(np.int64)
        a, b = xs[first + lo], xs[first + hi]
        out[i, groups] = a + (b - a) * (h - lo)
    return out


def _eval_cycle(engine: KpiEngine) -> list[KpiValues]:
    o, g = engine.opportunities, engine.grid
    won = np.flatnonzero((o.outcome == OUTCOME_WON) & (o.closed_p >= 0) & ~np.isnat(o.created))
    agent, period = o.agent[won], o.closed_p[won]
    days = (o.closed[won] - o.created[won]).astype(np.int64).astype(float)
    P = g.n_periods
    qs = list(CYCLE_KPIS.values())
    keys = {
        "agent": agent * P + period,
        "territory": g.agent_territory[agent] * P + period,
        "company": period,
    }
    per_level = {
        lv: grouped_quantiles(keys[lv], days, qs, g.size(lv) * P).reshape(len(qs), g.size(lv), P) for lv in LEVELS
    }
    active = g.accumulate(agent, period) > 0
    return [KpiValues(name, {lv: per_level[lv][i] for lv in LEVELS}, active) for i, name in enumerate(CYCLE_KPIS)]


@fill_doc
def sales_cycle_days(
    opportunities: pd.DataFrame,
    agents: pd.DataFrame,
    *,
    grain: str = "month",
    levels: Iterable[str] = LEVELS,
    start: Any = None,
    end: Any = None,
    calendar: Calendar | None = None,
) -> pd.DataFrame:
    """Sales-cycle length of the deals won in the period: median and quartiles, in days.

    For each won deal ``i`` with close date in period ``t``:
    ``cycle_i = close_date_i - created_date_i`` in days. Reported as three KPIs:

    - ``cycle_days_median``: median of ``cycle_i`` over ``W(e, t)``;
    - ``cycle_days_p25`` and ``cycle_days_p75``: 25th and 75th percentiles (their
      difference is the interquartile range).

    Percentiles use linear interpolation between order statistics (numpy's default): for
    sorted cycles ``c_0 <= ... <= c_{n-1}``, ``p_q = c_lo + (c_hi - c_lo)(h - lo)`` with
    ``h = q (n - 1)``. NaN when nothing was won. Territory and company values are computed
    from all their deals (not from agent medians).

    Parameters
    ----------
    opportunities, agents : DataFrame
        Canonical tables (``created_date``, ``close_date``, ``outcome``).
    %(common)s
    """
    return evaluate(
        [_eval_cycle],
        {"opportunities": opportunities, "agents": agents},
        grain=grain,
        levels=levels,
        start=start,
        end=end,
        calendar=calendar,
    )
