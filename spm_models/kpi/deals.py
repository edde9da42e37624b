"""Closed-deal KPIs: bookings, won and lost deals, win rate, deal size, growth, new business.

A deal counts in the period of its ``close_date`` (won or lost outcome). Notation below:
``W(e, t)`` is the set of won deals of entity ``e`` (an agent, every agent of a territory, or
every agent) with close date in period ``t``; ``L(e, t)`` the lost ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from spm_models.calendar import Calendar
from spm_models.kpi.engine import OUTCOME_LOST, OUTCOME_WON, KpiEngine, KpiValues, evaluate, fill_doc
from spm_models.kpi.grid import LEVELS, ratio

__all__ = [
    "bookings",
    "deals_won",
    "deals_lost",
    "win_rate",
    "average_deal_size",
    "bookings_growth",
    "new_vs_existing_bookings",
    "ACCOUNT_SEGMENTS",
    "account_segments",
]

#: Segments of :func:`new_vs_existing_bookings`.
ACCOUNT_SEGMENTS: tuple[str, ...] = ("new", "existing", "unknown")


def closed_deals(engine: KpiEngine) -> dict[str, dict[str, np.ndarray]]:
    """Won amount, won count and lost count per entity and period (shared, computed once)."""
    o, g = engine.opportunities, engine.grid
    won = o.outcome == OUTCOME_WON
    lost = o.outcome == OUTCOME_LOST
    return {
        "amount": g.rollup(g.accumulate(o.agent[won], o.closed_p[won], o.amount[won])),
        "won": g.rollup(g.accumulate(o.agent[won], o.closed_p[won])),
        "lost": g.rollup(g.accumulate(o.agent[lost], o.closed_p[lost])),
    }


def _eval_bookings(engine: KpiEngine) -> list[KpiValues]:
    c = engine.memo(closed_deals)
    return [KpiValues("bookings", c["amount"], c["won"]["agent"] > 0)]


def _eval_deals_won(engine: KpiEngine) -> list[KpiValues]:
    c = engine.memo(closed_deals)
    return [KpiValues("deals_won", c["won"], c["won"]["agent"] > 0)]


def _eval_deals_lost(engine: KpiEngine) -> list[KpiValues]:
    c = engine.memo(closed_deals)
    return [KpiValues("deals_lost", c["lost"], c["lost"]["agent"] > 0)]


def _eval_win_rate(engine: KpiEngine) -> list[KpiValues]:
    c = engine.memo(closed_deals)
    values = {lv: ratio(c["won"][lv], c["won"][lv] + c["lost"][lv]) for lv in LEVELS}
    return [KpiValues("win_rate", values, (c["won"]["agent"] + c["lost"]["agent"]) > 0)]


def _eval_average_deal_size(engine: KpiEngine) -> list[KpiValues]:
    c = engine.memo(closed_deals)
    values = {lv: ratio(c["amount"][lv], c["won"][lv]) for lv in LEVELS}
    return [KpiValues("average_deal_size", values, c["won"]["agent"] > 0)]


def _previous_bookings(engine: KpiEngine) -> dict[str, dict[str, np.ndarray]]:
    """Bookings of the period before each grid period (also before the first one)."""
    o, g = engine.opportunities, engine.grid
    won = (o.outcome == OUTCOME_WON) & ~np.isnat(o.closed)
    cal = g.calendar
    following = cal.next_period_start(cal.period_start(o.closed[won], g.grain), g.grain).astype("datetime64[D]")
    p = g.period_codes(following)
    return {
        "amount": g.rollup(g.accumulate(o.agent[won], p, o.amount[won])),
        "won": g.rollup(g.accumulate(o.agent[won], p)),
    }


def _eval_bookings_growth(engine: KpiEngine) -> list[KpiValues]:
    now = engine.memo(closed_deals)
    before = engine.memo(_previous_bookings)
    values = {lv: ratio(now["amount"][lv] - before["amount"][lv], before["amount"][lv]) for lv in LEVELS}
    return [KpiValues("bookings_growth", values, (now["won"]["agent"] + before["won"]["agent"]) > 0)]


def account_segments(account: pd.Series, closed: np.ndarray) -> np.ndarray:
    """Segment code of each won deal: 0 ``new``, 1 ``existing``, 2 ``unknown`` (no account).

    A won deal is new when no won deal of the same account closed on an earlier day (deals of
    a new account won on its first day are all new): the rule of :func:`new_vs_existing_bookings`,
    also used to count the new accounts an incentive plan pays for. ``account`` and ``closed``
    (close days) describe the won deals only, over all the data.
    """
    account = pd.Series(account).reset_index(drop=True)
    closed = pd.Series(np.asarray(closed))
    # dictionary-encoded accounts are grouped by their codes (-1, no account, is set aside below)
    key = account.cat.codes.to_numpy() if isinstance(account.dtype, pd.CategoricalDtype) else account.to_numpy()
    first = closed.groupby(key, dropna=True).transform("min")
    return np.where(account.isna().to_numpy(), 2, np.where(closed.to_numpy() == first.to_numpy(), 0, 1))


def _eval_new_vs_existing(engine: KpiEngine) -> list[KpiValues]:
    o, g = engine.opportunities, engine.grid
    won = np.flatnonzero((o.outcome == OUTCOME_WON) & ~np.isnat(o.closed))
    segment = account_segments(o.account.iloc[won], o.closed[won])
    amount = g.accumulate(o.agent[won], o.closed_p[won], o.amount[won], segment=segment, n_segments=3)
    count = g.accumulate(o.agent[won], o.closed_p[won])
    return [KpiValues("new_vs_existing_bookings", g.rollup(amount), count > 0, ACCOUNT_SEGMENTS)]


def _tables(opportunities: pd.DataFrame, agents: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return {"opportunities": opportunities, "agents": agents}


@fill_doc
def bookings(
    opportunities: pd.DataFrame,
    agents: pd.DataFrame,
    *,
    grain: str = "month",
    levels: Iterable[str] = LEVELS,
    start: Any = None,
    end: Any = None,
    calendar: Calendar | None = None,
) -> pd.DataFrame:
    """Bookings: the value of deals won, in the period of their close date.

    ``bookings(e, t) = sum of amount over W(e, t)``; 0 when nothing was won. A won deal
    without an amount counts as 0. Additive: territory and company bookings are the sums
    of their agents' bookings.

    Parameters
    ----------
    opportunities, agents : DataFrame
        Canonical tables (``outcome``, ``close_date``, ``amount``, ``agent_id``; agents'
        ``territory_id`` and employment dates).
    %(common)s
    """
    return evaluate(
        [_eval_bookings],
        _tables(opportunities, agents),
        grain=grain,
        levels=levels,
        start=start,
        end=end,
        calendar=calendar,
    )


@fill_doc
def deals_won(
    opportunities: pd.DataFrame,
    agents: pd.DataFrame,
    *,
    grain: str = "month",
    levels: Iterable[str] = LEVELS,
    start: Any = None,
    end: Any = None,
    calendar: Calendar | None = None,
) -> pd.DataFrame:
    """Number of deals won, in the period of their close date.

    ``deals_won(e, t) = |W(e, t)|``. Additive.

    Parameters
    ----------
    opportunities, agents : DataFrame
        Canonical tables.
    %(common)s
    """
    return evaluate(
        [_eval_deals_won],
        _tables(opportunities, agents),
        grain=grain,
        levels=levels,
        start=start,
        end=end,
        calendar=calendar,
    )


@fill_doc
def deals_lost(
    opportunities: pd.DataFrame,
    agents: pd.DataFrame,
    *,
    grain: str = "month",
    levels: Iterable[str] = LEVELS,
    start: Any = None,
    end: Any = None,
    calendar: Calendar | None = None,
) -> pd.DataFrame:
    """Number of deals lost, in the period of their close date.

    ``deals_lost(e, t) = |L(e, t)|``. Additive.

    Parameters
    ----------
    opportunities, agents : DataFrame
        Canonical tables.
    %(common)s
    """
    return evaluate(
        [_eval_deals_lost],
        _tables(opportunities, agents),
        grain=grain,
        levels=levels,
        start=start,
        end=end,
        calendar=calendar,
    )


@fill_doc
def win_rate(
    opportunities: pd.DataFrame,
    agents: pd.DataFrame,
    *,
    grain: str = "month",
    levels: Iterable[str] = LEVELS,
    start: Any = None,
    end: Any = None,
    calendar: Calendar | None = None,
) -> pd.DataFrame:
    """Win rate among deals closed in the period.

    ``win_rate(e, t) = |W(e, t)| / (|W(e, t)| + |L(e, t)|)``; NaN when no deal closed.
    Always in ``[0, 1]``. At territory and company level the won and closed counts are
    summed first, so a territory's win rate is a deal-weighted rate.

    Parameters
    ----------
    opportunities, agents : DataFrame
        Canonical tables.
    %(common)s
    """
    return evaluate(
        [_eval_win_rate],
        _tables(opportunities, agents),
        grain=grain,
        levels=levels,
        start=start,
        end=end,
        calendar=calendar,
    )


@fill_doc
def average_deal_size(
    opportunities: pd.DataFrame,
    agents: pd.DataFrame,
    *,
    grain: str = "month",
    levels: Iterable[str] = LEVELS,
    start: Any = None,
    end: Any = None,
    calendar: Calendar | None = None,
) -> pd.DataFrame:
    """Average value of the deals won in the period.

    ``average_deal_size(e, t) = bookings(e, t) / deals_won(e, t)``; NaN when nothing was
    won.

    Parameters
    ----------
    opportunities, agents : DataFrame
        Canonical tables.
    %(common)s
    """
    return evaluate(
        [_eval_average_deal_size],
        _tables(opportunities, agents),
        grain=grain,
        levels=levels,
        start=start,
        end=end,
        calendar=calendar,
    )


@fill_doc
def bookings_growth(
    opportunities: pd.DataFrame,
    agents: pd.DataFrame,
    *,
    grain: str = "month",
    levels: Iterable[str] = LEVELS,
    start: Any = None,
    end: Any = None,
    calendar: Calendar | None = None,
) -> pd.DataFrame:
    """Period-over-period growth of bookings.

    ``bookings_growth(e, t) = (bookings(e, t) - bookings(e, t-1)) / bookings(e, t-1)``;
    NaN when ``bookings(e, t-1) = 0``. ``t-1`` is the previous period of the same grain;
    for the first reported period it is taken from the data before ``start`` (NaN when
    there is none). 0.25 means bookings grew by 25 %.

    Parameters
    ----------
    opportunities, agents : DataFrame
        Canonical tables.
    %(common)s
    """
    return evaluate(
        [_eval_bookings_growth],
        _tables(opportunities, agents),
        grain=grain,
        levels=levels,
        start=start,
        end=end,
        calendar=calendar,
    )


@fill_doc
def new_vs_existing_bookings(
    opportunities: pd.DataFrame,
    agents: pd.DataFrame,
    *,
    grain: str = "month",
    levels: Iterable[str] = LEVELS,
    start: Any = None,
    end: Any = None,
    calendar: Calendar | None = None,
) -> pd.DataFrame:
    """Bookings split by whether the deal won a new account or grew an existing one.

    A won deal is ``new`` when no won deal of the same ``account_id`` closed on an earlier
    date (over all the data, also before ``start``); two deals won from a new account on
    the same first day are both ``new``. Otherwise it is ``existing``. Won deals without an
    ``account_id`` cannot be told apart and go to the ``unknown`` segment (rather than
    inflating new business). Per segment ``s``:

    ``new_vs_existing_bookings(e, t, s) = sum of amount over deals in W(e, t) of segment s``

    so the three segments add up to :func:`bookings`. Additive; ``segment`` is one of
    ``"new"``, ``"existing"``, ``"unknown"`` (every segment is reported, 0 when empty).

    Parameters
    ----------
    opportunities, agents : DataFrame
        Canonical tables (``account_id`` is used).
    %(common)s
    """
    return evaluate(
        [_eval_new_vs_existing],
        _tables(opportunities, agents),
        grain=grain,
        levels=levels,
        start=start,
        end=end,
        calendar=calendar,
    )
