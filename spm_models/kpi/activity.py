"""Activity volume: calls, emails, meetings, ... per period and activity type."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from spm_models.calendar import Calendar
from spm_models.kpi.engine import KpiEngine, KpiValues, days, evaluate, fill_doc
from spm_models.kpi.grid import LEVELS

__all__ = ["activity_volume"]


def _eval_activity_volume(engine: KpiEngine) -> list[KpiValues]:
    g = engine.grid
    a = engine.typed("activities")
    types = sorted(a["activity_type"].dropna().unique().tolist())
    if not types:
        return []
    agent = g.agent_codes(a["agent_id"], table="activities")
    period = g.period_codes(days(a, "date"))
    seg = pd.Categorical(a["activity_type"], categories=types).codes
    keep = (period >= 0) & (seg >= 0)
    # one cell index for both sums, built in place: millions of activity rows, few temporaries
    cell = agent[keep]
    del agent
    cell *= g.n_periods
    cell += period[keep]
    del period
    cell *= len(types)
    cell += seg[keep]
    del seg
    count = np.nan_to_num(a["count"].to_numpy(dtype=float), nan=0.0)[keep]
    shape = (g.n_agents, g.n_periods, len(types))
    volume = np.bincount(cell, weights=count, minlength=int(np.prod(shape))).astype(float).reshape(shape)
    del count
    active = np.bincount(cell, minlength=int(np.prod(shape))).reshape(shape).sum(axis=2) > 0
    return [KpiValues("activity_volume", g.rollup(volume), active, tuple(types))]


@fill_doc
def activity_volume(
    activities: pd.DataFrame,
    agents: pd.DataFrame,
    *,
    grain: str = "month",
    levels: Iterable[str] = LEVELS,
    start: Any = None,
    end: Any = None,
    calendar: Calendar | None = None,
) -> pd.DataFrame:
    """Number of activities of each type in the period.

    ``activity_volume(e, t, type) = sum of count over activity rows of e with date in t
    and activity_type = type``. ``segment`` holds the activity type; every type found in
    the table is reported for every row (0 when none), and the total is the sum over
    segments. Additive. Returns no rows when the table is empty.

    Parameters
    ----------
    activities, agents : DataFrame
        Canonical tables (``agent_id``, ``date``, ``activity_type``, ``count``).
    %(common)s
    """
    return evaluate(
        [_eval_activity_volume],
        {"activities": activities, "agents": agents},
        grain=grain,
        levels=levels,
        start=start,
        end=end,
        calendar=calendar,
    )
