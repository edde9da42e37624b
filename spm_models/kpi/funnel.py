"""Stage-to-stage conversion of each period's cohort of new opportunities.

Stages are :data:`~spm_models.data.schemas.FUNNEL_STAGES` (the pipeline stages, then ``won``),
numbered ``0 .. 5``. The *furthest stage reached* ``f_i`` of opportunity ``i`` is:

- ``5`` (won) when its outcome is won: a won deal has passed every stage;
- otherwise the furthest stage among its ``stage_history`` rows and its ``stage`` column
  (they normally agree; ``stage_history`` also covers sources whose ``stage`` is empty);
- unknown when neither says anything: such opportunities are left out of the funnel.

For the transition ``k -> k+1`` and the cohort ``C(e, t)`` of opportunities of ``e`` created
in period ``t``::

    reached_next(k) = |{i in C : f_i >= k+1}|
    decided(k)      = |{i in C : f_i >= k+1, or f_i = k and i was lost}|
    stage_conversion(e, t, "k->k+1") = reached_next(k) / decided(k)

``decided(k)`` counts the opportunities that reached stage ``k`` and no longer sit in it;
opportunities still open in stage ``k`` are not counted either way, so a young cohort is not
penalised for deals that are simply not done yet. NaN when ``decided(k) = 0``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from spm_models.calendar import Calendar
from spm_models.data.schemas import FUNNEL_STAGES, PIPELINE_STAGES
from spm_models.kpi.engine import OUTCOME_LOST, OUTCOME_WON, KpiEngine, KpiValues, evaluate, fill_doc, positions
from spm_models.kpi.grid import LEVELS, ratio

__all__ = ["stage_conversion", "TRANSITIONS", "furthest_stage"]

#: Segment labels of :func:`stage_conversion`, one per transition ``k -> k+1``.
TRANSITIONS: tuple[str, ...] = tuple(f"{a}->{b}" for a, b in zip(FUNNEL_STAGES[:-1], FUNNEL_STAGES[1:]))
_WON = len(FUNNEL_STAGES) - 1


def furthest_stage(engine: KpiEngine) -> np.ndarray:
    """Index into FUNNEL_STAGES of the furthest stage each opportunity reached (-1 unknown)."""
    o = engine.opportunities
    f = o.stage.astype(np.int64)
    if engine.has("stage_history"):
        h = engine.typed("stage_history")
        opp = positions(o.ids, h["opportunity_id"])
        code = pd.Categorical(h["stage"], categories=list(PIPELINE_STAGES)).codes  # int8: millions of rows
        ok = (opp >= 0) & (code >= 0)
        np.maximum.at(f, opp[ok], code[ok])
    f[o.outcome == OUTCOME_WON] = _WON
    return f


def _conversion_counts(engine: KpiEngine) -> dict[str, Any]:
    o, g = engine.opportunities, engine.grid
    f = engine.memo(furthest_stage)
    cohort = np.flatnonzero((f >= 0) & (o.created_p >= 0))
    f_c, lost = f[cohort], o.outcome[cohort] == OUTCOME_LOST
    agent, period = o.agent[cohort], o.created_p[cohort]
    n_t = len(TRANSITIONS)
    shape = (g.n_agents, g.n_periods, n_t)
    num, den = np.zeros(shape), np.zeros(shape)
    # one transition at a time: a (deals x transitions) mask of a million-deal cohort is 5x its size
    for k in range(n_t):
        reached_next = f_c > k
        decided = reached_next | ((f_c == k) & lost)
        num[:, :, k] = g.accumulate(agent[reached_next], period[reached_next])
        den[:, :, k] = g.accumulate(agent[decided], period[decided])
    return {"num": g.rollup(num), "den": g.rollup(den), "active": den.sum(axis=2) > 0}


def _eval_stage_conversion(engine: KpiEngine) -> list[KpiValues]:
    c = _conversion_counts(engine)  # one KPI uses them: not kept in the engine's memo
    values = {lv: ratio(c["num"][lv], c["den"][lv]) for lv in LEVELS}
    return [KpiValues("stage_conversion", values, c["active"], TRANSITIONS)]


@fill_doc
def stage_conversion(
    opportunities: pd.DataFrame,
    agents: pd.DataFrame,
    stage_history: pd.DataFrame | None = None,
    *,
    grain: str = "month",
    levels: Iterable[str] = LEVELS,
    start: Any = None,
    end: Any = None,
    calendar: Calendar | None = None,
) -> pd.DataFrame:
    """Stage-to-stage conversion of the opportunities created in the period (cohort view).

    For each transition ``k -> k+1`` of FUNNEL_STAGES (``segment`` is
    ``"prospecting->qualification"``, ..., ``"negotiation->won"``):

    ``stage_conversion(e, t, k) = reached_next(k) / decided(k)`` where, among the
    opportunities of ``e`` created in ``t`` with a known furthest stage ``f_i``,
    ``reached_next(k) = |{f_i >= k+1}|`` and ``decided(k) = |{f_i >= k+1}| + |{f_i = k and
    lost}|`` (those still open in stage ``k`` are left out); NaN when ``decided(k) = 0``.
    ``f_i`` is 5 (won) for won deals, else the furthest stage in ``stage_history`` and the
    ``stage`` column; opportunities with neither are excluded. See
    :mod:`spm_models.kpi.funnel`.

    Parameters
    ----------
    opportunities, agents : DataFrame
        Canonical tables.
    stage_history : DataFrame, optional
        Canonical stage history (``opportunity_id``, ``stage``); rows of unknown
        opportunities are ignored.
    %(common)s
    """
    tables = {"opportunities": opportunities, "agents": agents}
    if stage_history is not None:
        tables["stage_history"] = stage_history
    return evaluate(
        [_eval_stage_conversion], tables, grain=grain, levels=levels, start=start, end=end, calendar=calendar
    )
