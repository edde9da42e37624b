"""Cohort conversion: of the opportunities created in a period, how many are won by now.

The close-period :func:`~spm_models.kpi.deals.win_rate` counts a deal in the period it closed;
it needs the close date of lost deals. Many exports record only wins: a lost deal without a
close date counts here (its cohort is its created period) and never in close-period rates.
Notation: ``C(e, t)`` is the set of opportunities of entity ``e`` created in period ``t``;
``won``, ``lost`` and ``open`` are their outcomes in the data passed ("by now": as of the
last day of the data, e.g. the review's as-of date).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from spm_models.calendar import Calendar
from spm_models.kpi.engine import OUTCOME_OPEN, OUTCOME_WON, KpiEngine, KpiValues, evaluate, fill_doc
from spm_models.kpi.grid import LEVELS, ratio

__all__ = ["cohort_conversion", "cohort_undecided"]


def cohort_counts(engine: KpiEngine) -> dict[str, dict[str, np.ndarray]]:
    """Created, won-by-now and still-open counts per entity and created period (computed once)."""
    o, g = engine.opportunities, engine.grid
    won = o.outcome == OUTCOME_WON
    still_open = o.outcome == OUTCOME_OPEN
    return {
        "created": g.rollup(g.accumulate(o.agent, o.created_p)),
        "won": g.rollup(g.accumulate(o.agent[won], o.created_p[won])),
        "open": g.rollup(g.accumulate(o.agent[still_open], o.created_p[still_open])),
    }


def _eval_cohort_conversion(engine: KpiEngine) -> list[KpiValues]:
    c = engine.memo(cohort_counts)
    values = {lv: ratio(c["won"][lv], c["created"][lv]) for lv in LEVELS}
    return [KpiValues("cohort_conversion", values, c["created"]["agent"] > 0)]


def _eval_cohort_undecided(engine: KpiEngine) -> list[KpiValues]:
    c = engine.memo(cohort_counts)
    return [KpiValues("cohort_undecided", c["open"], c["created"]["agent"] > 0)]


@fill_doc
def cohort_conversion(
    opportunities: pd.DataFrame,
    agents: pd.DataFrame,
    *,
    grain: str = "month",
    levels: Iterable[str] = LEVELS,
    start: Any = None,
    end: Any = None,
    calendar: Calendar | None = None,
) -> pd.DataFrame:
    """Share of the opportunities created in the period that are won by now.

    ``cohort_conversion(e, t) = |{i in C(e, t) : outcome_i = won}| / |C(e, t)|``; NaN when
    nothing was created. Lost deals count whether or not they have a close date; open deals
    count in the denominator (they are undecided: see :func:`cohort_undecided`), so a young
    cohort's rate still rises as its deals close. Ratio of summed counts at every level.

    Parameters
    ----------
    opportunities, agents : DataFrame
        Canonical tables.
    %(common)s
    """
    return evaluate(
        [_eval_cohort_conversion],
        {"opportunities": opportunities, "agents": agents},
        grain=grain,
        levels=levels,
        start=start,
        end=end,
        calendar=calendar,
    )


@fill_doc
def cohort_undecided(
    opportunities: pd.DataFrame,
    agents: pd.DataFrame,
    *,
    grain: str = "month",
    levels: Iterable[str] = LEVELS,
    start: Any = None,
    end: Any = None,
    calendar: Calendar | None = None,
) -> pd.DataFrame:
    """Opportunities created in the period that are still open (neither won nor lost) by now.

    ``cohort_undecided(e, t) = |{i in C(e, t) : outcome_i = open}|``. Additive.

    Parameters
    ----------
    opportunities, agents : DataFrame
        Canonical tables.
    %(common)s
    """
    return evaluate(
        [_eval_cohort_undecided],
        {"opportunities": opportunities, "agents": agents},
        grain=grain,
        levels=levels,
        start=start,
        end=end,
        calendar=calendar,
    )
