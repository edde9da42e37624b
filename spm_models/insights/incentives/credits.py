"""Credits: what each person did, dated, in the units plans pay on.

Plans pay on measures over windows of days that need not be whole KPI periods (a plan that
changes on 15 August splits the quarter), so the measures are kept as a *credit ledger*:
one dated event per deal or activity row, credited to the deal's owner, and a window's value
is the sum of its events. Each measure follows the KPI it is named after
(:mod:`spm_models.kpi`):

=========================  ===================================================================
``bookings``               amount of won deals, by close date (the ``bookings`` KPI)
``margin``                 margin of won deals (``margin``, else ``amount - cost``:
                           :func:`spm_models.kpi.engine.deal_margin`)
``deals_won``              won deals
``deals_decided``          won and lost deals with a close date (a win rate's denominator)
``new_accounts``           accounts whose first won deal closed in the window, counted once
                           for the agent who won it (the ``new`` rule of
                           :func:`spm_models.kpi.deals.account_segments`)
``product_bookings:X``     bookings of deals whose product's series (product line) or id is X
``activities[:type]``      activity counts (of one type, or all)
=========================  ===================================================================

A window's value is ``sum of values of the agent's events with start <= day <= end``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from spm_models.exceptions import ConfigError
from spm_models.kpi.deals import account_segments
from spm_models.kpi.engine import deal_margin

__all__ = ["CreditLedger", "credit_ledger", "measure_problems", "BASE_MEASURES"]

#: Ledger measures without a segment.
BASE_MEASURES: tuple[str, ...] = ("bookings", "margin", "deals_won", "deals_decided", "new_accounts", "activities")
_STRIDE = 1 << 22  # days since 1970 stay far below this: agent code * stride + day is one sortable key


def _days(values: Any) -> np.ndarray:
    return pd.to_datetime(pd.Series(values)).to_numpy().astype("datetime64[D]").astype(np.int64)


class CreditLedger:
    """Dated credits per measure (module docstring), built from the tables on first use of each
    measure; :meth:`window` sums them.

    Parameters
    ----------
    tables : mapping of str to DataFrame
        Typed canonical tables: ``agents``, ``opportunities``; ``products`` for product lines,
        ``activities`` for activities (a :class:`~spm_models.data.dataset.Dataset` works).
    """

    def __init__(self, tables: Mapping[str, pd.DataFrame]) -> None:
        self.tables = tables
        self.agents = pd.Index(tables["agents"]["agent_id"].astype("str").unique())
        self.events: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def _code(self, agent_ids: Sequence[str]) -> np.ndarray:
        return self.agents.get_indexer(pd.Index([str(a) for a in agent_ids]))

    def ensure(self, keys: Iterable[str]) -> CreditLedger:
        """Build the credits of ``keys`` not built yet; returns the ledger."""
        for key in dict.fromkeys(keys):
            if key not in self.events:
                _build(self, key)
        return self

    def window(self, key: str, agent_ids: Sequence[str], starts: Any, ends: Any) -> np.ndarray:
        """Each row's sum of ``key`` credits of ``agent_ids[i]`` dated ``starts[i]`` to ``ends[i]``
        (both included); 0 for an agent without credits, and for an empty window.

        Raises
        ------
        ConfigError
            ``key`` is no measure of :mod:`.credits`.
        """
        self.ensure([key])
        sorted_key, cum = self.events[key]
        code = self._code(agent_ids)
        s, e = _days(starts), _days(ends)
        base = np.where(code >= 0, code, 0).astype(np.int64) * _STRIDE
        lo = np.searchsorted(sorted_key, base + s, side="left")
        hi = np.searchsorted(sorted_key, base + e, side="right")
        out = cum[hi] - cum[lo]
        return np.where((code >= 0) & (e >= s), out, 0.0)


def _add(ledger: CreditLedger, key: str, agent: Any, day: np.ndarray, value: np.ndarray) -> None:
    code = ledger._code(np.asarray(agent, dtype=object))
    ok = (code >= 0) & ~np.isnan(value)
    k = code[ok].astype(np.int64) * _STRIDE + day[ok]
    order = np.argsort(k, kind="stable")
    ledger.events[key] = (k[order], np.concatenate([[0.0], np.cumsum(value[ok][order])]))


def _product_lines(tables: Mapping[str, pd.DataFrame], segment: str, product_id: pd.Series) -> np.ndarray:
    products = tables.get("products")
    series = pd.Series(dtype="str")
    if products is not None and len(products) and "series" in products:
        series = pd.Series(products["series"].astype("str").to_numpy(), index=products["product_id"].astype("str"))
    pid = product_id.astype("str")
    return ((pid == segment) | (pid.map(series) == segment)).to_numpy(dtype=bool)


def _build(ledger: CreditLedger, key: str) -> None:
    """The credits of one measure (module docstring)."""
    tables = ledger.tables
    o = tables["opportunities"]
    outcome = o["outcome"].astype("str").to_numpy()
    closed = o["close_date"].notna().to_numpy()
    won = (outcome == "won") & closed
    day = _days(o["close_date"])
    agent = o["agent_id"].astype("str").to_numpy()
    amount = np.nan_to_num(o["amount"].to_numpy(dtype=float)) if "amount" in o else np.zeros(len(o))
    measure, _, segment = key.partition(":")
    if measure == "bookings":
        _add(ledger, key, agent[won], day[won], amount[won])
    elif measure == "margin":
        _add(ledger, key, agent[won], day[won], deal_margin(o)[won])
    elif measure == "deals_won":
        _add(ledger, key, agent[won], day[won], np.ones(int(won.sum())))
    elif measure == "deals_decided":
        decided = ((outcome == "won") | (outcome == "lost")) & closed
        _add(ledger, key, agent[decided], day[decided], np.ones(int(decided.sum())))
    elif measure == "new_accounts":
        w = o[won]
        is_new = account_segments(w["account_id"], day[won]) == 0 if "account_id" in w else np.zeros(len(w), bool)
        first = pd.DataFrame({"agent": agent[won][is_new], "account": w["account_id"].astype("str").to_numpy()[is_new]})
        once = ~first.duplicated().to_numpy()  # two deals of one new account on its first day: one account
        _add(ledger, key, first["agent"].to_numpy()[once], day[won][is_new][once], np.ones(int(once.sum())))
    elif measure == "product_bookings" and segment:
        pid = o["product_id"] if "product_id" in o else pd.Series(pd.NA, index=o.index, dtype="str")
        line = won & _product_lines(tables, segment, pid)
        _add(ledger, key, agent[line], day[line], amount[line])
    elif measure == "activities":
        a = tables.get("activities")
        if a is None or not len(a):
            a = pd.DataFrame({"agent_id": [], "date": [], "activity_type": [], "count": []})
        rows = (a["activity_type"].astype("str") == segment).to_numpy() if segment else np.ones(len(a), bool)
        _add(
            ledger,
            key,
            a["agent_id"].astype("str").to_numpy()[rows],
            _days(a["date"])[rows],
            a["count"].to_numpy(dtype=float)[rows],
        )
    else:
        raise ConfigError(f"unknown credit measure {key!r}")


def credit_ledger(tables: Mapping[str, pd.DataFrame], keys: Iterable[str] = ()) -> CreditLedger:
    """A :class:`CreditLedger` of ``tables`` with ``keys`` built now (others on first use)."""
    return CreditLedger(tables).ensure(keys)


def measure_problems(tables: Mapping[str, pd.DataFrame], keys: Iterable[str]) -> list[str]:
    """What the data lack for ``keys``: margin, a product line, an activity type, lost deals."""
    out = []
    o = tables["opportunities"]
    for key in dict.fromkeys(keys):
        measure, _, segment = key.partition(":")
        if measure == "margin" and not np.isfinite(deal_margin(o)).any():
            out.append("a component pays on margin, but the deals hold no margin (opportunities.margin or cost)")
        elif measure == "deals_decided" and not (o["outcome"].astype("str") == "lost").any():
            out.append("a win rate is paid on, but the data hold no lost deals to divide by")
        elif measure == "product_bookings":
            p = tables.get("products")
            known = set()
            if p is not None and len(p):
                known = set(p["product_id"].astype("str")) | set(p.get("series", pd.Series(dtype="str")).astype("str"))
            if segment not in known:
                shown = ", ".join(sorted(known)[:12]) or "none"
                out.append(f"product line {segment!r} is neither a product series nor a product id (known: {shown})")
        elif measure == "activities" and segment:
            a = tables.get("activities")
            known = set(a["activity_type"].astype("str")) if a is not None and len(a) else set()
            if segment not in known:
                out.append(f"activity type {segment!r} is not in the activity log (known: {', '.join(sorted(known))})")
    return out
