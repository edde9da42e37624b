"""Pipeline KPIs: opportunities created, open pipeline at the period start, and its coverage.

An opportunity is *open at a date* ``d`` when ``created_date < d`` and it was not closed
before ``d``: its outcome is ``open``, or its ``close_date >= d``. (A close date on an open
opportunity is an expected date, not a close, and is ignored.) A deal lost at an unknown time
(no close date) is never counted open: when it left the pipeline is not known, and counting it
open for ever would grow the pipeline with every dead deal.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from spm_models.calendar import Calendar
from spm_models.kpi.engine import OUTCOME_LOST, KpiEngine, KpiValues, evaluate, fill_doc
from spm_models.kpi.grid import LEVELS, ratio
from spm_models.kpi.quotas import prorated_quota

__all__ = ["opportunities_created", "open_pipeline", "pipeline_coverage"]


def open_at_period_start(engine: KpiEngine) -> dict[str, Any]:
    """Amount and number of opportunities open at each period start (shared, computed once).

    Each opportunity is open at the starts of periods ``[first start after created,
    first start after closed)``; adding its amount at the first index and subtracting it
    at the last, then taking a running sum over periods, gives the stock in one pass.
    """
    o, g = engine.opportunities, engine.grid
    n_p = g.n_periods
    valid = ~np.isnat(o.created) & ~((o.outcome == OUTCOME_LOST) & np.isnat(o.closed))
    first = g.first_start_after(o.created[valid])
    closed = o.closed[valid]
    stop = np.where(np.isnat(closed), n_p, g.first_start_after(closed))
    agent = o.agent[valid]
    keep = first < stop
    agent, first, stop, amount = agent[keep], first[keep], stop[keep], o.amount[valid][keep]
    width = n_p + 1
    size = g.n_agents * width

    def stock(weights: np.ndarray) -> np.ndarray:
        diff = np.bincount(agent * width + first, weights=weights, minlength=size)
        diff -= np.bincount(agent * width + stop, weights=weights, minlength=size)
        return np.cumsum(diff.reshape(g.n_agents, width), axis=1)[:, :n_p]

    count = np.rint(stock(np.ones(len(agent))))
    value = np.where(count > 0, stock(amount), 0.0)  # no rounding residue where nothing is open
    return {"amount": g.rollup(value), "count": g.rollup(count)}


def _eval_open_pipeline(engine: KpiEngine) -> list[KpiValues]:
    s = engine.memo(open_at_period_start)
    return [KpiValues("open_pipeline", s["amount"], s["count"]["agent"] > 0)]


def _eval_coverage(engine: KpiEngine) -> list[KpiValues]:
    s = engine.memo(open_at_period_start)
    q = engine.memo(prorated_quota)
    values = {lv: ratio(s["amount"][lv], q["quota"][lv]) for lv in LEVELS}
    return [KpiValues("pipeline_coverage", values, (s["count"]["agent"] > 0) | q["active"])]


def _eval_created(engine: KpiEngine) -> list[KpiValues]:
    o, g = engine.opportunities, engine.grid
    created = g.accumulate(o.agent, o.created_p)
    return [KpiValues("opportunities_created", g.rollup(created), created > 0)]


@fill_doc
def opportunities_created(
    opportunities: pd.DataFrame,
    agents: pd.DataFrame,
    *,
    grain: str = "month",
    levels: Iterable[str] = LEVELS,
    start: Any = None,
    end: Any = None,
    calendar: Calendar | None = None,
) -> pd.DataFrame:
    """Number of opportunities created in the period.

    ``opportunities_created(e, t) = |{i of e : created_date_i in t}|`` whatever their
    outcome. Additive.

    Parameters
    ----------
    opportunities, agents : DataFrame
        Canonical tables.
    %(common)s
    """
    return evaluate(
        [_eval_created],
        {"opportunities": opportunities, "agents": agents},
        grain=grain,
        levels=levels,
        start=start,
        end=end,
        calendar=calendar,
    )


@fill_doc
def open_pipeline(
    opportunities: pd.DataFrame,
    agents: pd.DataFrame,
    *,
    grain: str = "month",
    levels: Iterable[str] = LEVELS,
    start: Any = None,
    end: Any = None,
    calendar: Calendar | None = None,
) -> pd.DataFrame:
    """Value of the pipeline open at the start of the period.

    ``open_pipeline(e, t) = sum of amount_i over opportunities i of e with
    created_date_i < start(t) and (outcome_i = open or close_date_i >= start(t))``.
    Opportunities without an amount count 0. A stock measured at the first day of each
    period; it includes deals created before ``start``. Additive.

    Parameters
    ----------
    opportunities, agents : DataFrame
        Canonical tables.
    %(common)s
    """
    return evaluate(
        [_eval_open_pipeline],
        {"opportunities": opportunities, "agents": agents},
        grain=grain,
        levels=levels,
        start=start,
        end=end,
        calendar=calendar,
    )


@fill_doc
def pipeline_coverage(
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
    """Pipeline coverage: open pipeline at the period start over the period's quota.

    ``pipeline_coverage(e, t) = open_pipeline(e, t) / quota(e, t)``; NaN when the quota is
    0. At the period start nothing of the period has been booked yet, so the remaining
    quota is the whole quota of the period. 3.0 means three times the quota is in the
    pipeline.

    Parameters
    ----------
    opportunities, targets, agents : DataFrame
        Canonical tables.
    %(common)s
    """
    return evaluate(
        [_eval_coverage],
        {"opportunities": opportunities, "targets": targets, "agents": agents},
        grain=grain,
        levels=levels,
        start=start,
        end=end,
        calendar=calendar,
    )
