"""The payout engine: every line of every person's statement for one fiscal quarter, per scenario.

One quarter ``[q0, q1]`` is evaluated at once for everyone. For each stretch of days a person
is on a plan (:func:`~spm_models.insights.incentives.assign.plan_segments`) and each component,
the *window* is the stretch inside the component's period (the quarter, or each month of it);

- ``f = days(window) / days(period)`` with ``proration = "days"`` (1 with ``"none"``) scales the
  fixed amounts, caps and count thresholds of :mod:`.plan`;
- the quota of a window is the period's quota (:func:`spm_models.kpi.quota`, targets prorated by
  day) times the share of the person's employed days of the period that fall in the window, so
  a mid-period plan change splits both the credits and the quota, and a new hire keeps the
  quota the targets give them;
- the measure is the sum of the person's credits dated in the window (:mod:`.credits`), or,
  for the days after ``as_of``, the projection's draws (:mod:`.projection`).

Then per person, the draw: with ``E`` the quarter's commissions and bonuses, ``D`` the sum of
``f * amount`` over the stretches on a plan with a draw (within its first ``quarters``), and
``b`` the recoverable balance carried in::

    top-up   = max(D - E, 0)                  paid on top of E
    recovery = min(b, max(E - D, 0))          taken back from earnings above the guarantee
    b'       = b - recovery + top-up * D_rec / D

(``D_rec`` the recoverable part of ``D``). Contests ending in the quarter are paid to their
participants (people employed on the last day of the window with an eligible role and
territory): ``top_n`` ranks by the measure over the window, a tie group sharing the shares of
the places it holds, nobody placing with nothing (a value of 0); ``above`` splits the pool
equally among everyone at or above the bar. Contest prizes are outside the draw's ``E``.

Every array has one column per scenario (one column for actual results).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from spm_models.calendar import Calendar
from spm_models.insights.incentives.credits import CreditLedger
from spm_models.insights.incentives.plan import (
    AttainmentBonus,
    Commission,
    Contest,
    Draw,
    KpiBonus,
    PlanBook,
    measure_key,
)
from spm_models.kpi import margin_quota, quota

__all__ = ["Quotas", "Actuals", "WithProjection", "QuarterResult", "evaluate_quarter", "LINE_COLUMNS"]

#: Columns of :attr:`QuarterResult.lines` (one row per statement line).
LINE_COLUMNS = [
    "agent_id",
    "plan_id",
    "plan_name",
    "component_id",
    "component_type",
    "line",
    "window_start",
    "window_end",
    "measure",
    "quota",
    "fraction",
    "rule",
]


def _d(values: Any) -> np.ndarray:
    """Dates as int days since 1970."""
    return pd.to_datetime(pd.Series(values)).to_numpy().astype("datetime64[D]").astype(np.int64)


def _ts(days: np.ndarray) -> np.ndarray:
    return np.asarray(days, dtype=np.int64).astype("datetime64[D]").astype("datetime64[us]")


class Quotas:
    """Quota per agent, period (quarter or month of ``calendar``) and metric, from the targets
    (:func:`spm_models.kpi.quota`, :func:`spm_models.kpi.margin_quota`); NaN without one."""

    def __init__(self, targets: pd.DataFrame | None, agents: pd.DataFrame, calendar: Calendar) -> None:
        self.targets, self.agents, self.calendar = targets, agents, calendar
        self._cache: dict[tuple[str, str, int], pd.Series] = {}

    def get(self, agent_ids: Sequence[str], period_start: Any, grain: str, metric: str) -> np.ndarray:
        start = pd.Timestamp(period_start)
        key = (grain, metric, int(_d([start])[0]))
        if key not in self._cache:
            if self.targets is None or not len(self.targets):
                s = pd.Series(dtype=float)
            else:
                fn = quota if metric == "bookings" else margin_quota
                end = self.calendar.period_end(start, grain)
                k = fn(
                    self.targets,
                    self.agents,
                    grain=grain,
                    levels=["agent"],
                    start=start,
                    end=end,
                    calendar=self.calendar,
                )
                k = k[k["period"] == start]
                s = pd.Series(k["value"].to_numpy(dtype=float), index=k["entity_id"].astype("str").to_numpy())
            self._cache[key] = s.where(s > 0)
        return self._cache[key].reindex(pd.Index([str(a) for a in agent_ids])).to_numpy(dtype=float)


class MeasureSource(Protocol):
    n_draws: int

    def values(self, key: str, agent_ids: Sequence[str], starts: Any, ends: Any) -> np.ndarray: ...


@dataclass
class Actuals:
    """Measures from the credits alone (one scenario); ``until`` ignores credits after that day
    ("if the period ended today")."""

    ledger: CreditLedger
    until: Any = None
    n_draws: int = 1

    def values(self, key: str, agent_ids: Sequence[str], starts: Any, ends: Any) -> np.ndarray:
        e = _d(ends)
        if self.until is not None:
            e = np.minimum(e, _d([self.until])[0])
        return self.ledger.window(key, agent_ids, _ts(_d(starts)), _ts(e))[:, None]


@dataclass
class WithProjection:
    """Credits up to the projection's ``as_of`` plus its draws after it."""

    ledger: CreditLedger
    projection: Any  # spm_models.insights.incentives.projection.Projection

    @property
    def n_draws(self) -> int:
        return self.projection.n_draws

    def prepare(self, days: Sequence[Any]) -> None:
        self.projection.prepare(days)

    def values(self, key: str, agent_ids: Sequence[str], starts: Any, ends: Any) -> np.ndarray:
        asof = self.projection.as_of
        done = self.ledger.window(key, agent_ids, _ts(_d(starts)), _ts(np.minimum(_d(ends), asof)))
        return done[:, None] + self.projection.values(key, agent_ids, starts, ends)


@dataclass
class QuarterResult:
    """Every statement line of one quarter, per scenario (module docstring).

    Attributes
    ----------
    quarter_start, quarter_end : Timestamp
    lines : DataFrame
        :data:`LINE_COLUMNS`, one row per line.
    amounts, values : ndarray, shape (n_lines, d)
        What each line pays, and its measure (a win rate for a win-rate line; the guarantee
        for a draw line; NaN for a contest line of someone not taking part).
    tiers : ndarray of int, shape (n_lines, d)
        Commission lines: the band reached (:meth:`Commission.tier_reached`); -2 elsewhere.
    people : Index
        Everyone with a line.
    balance_in, balance_out : ndarray, shape (n_people, d)
        Recoverable draw balance before and after the quarter.
    """

    quarter_start: pd.Timestamp
    quarter_end: pd.Timestamp
    lines: pd.DataFrame
    amounts: np.ndarray
    values: np.ndarray
    tiers: np.ndarray
    people: pd.Index
    balance_in: np.ndarray
    balance_out: np.ndarray
    extras: dict = field(default_factory=dict)

    @property
    def n_draws(self) -> int:
        return int(self.amounts.shape[1]) if self.amounts.ndim == 2 else 1

    def paid(self) -> np.ndarray:
        """What each person is paid in the quarter, ``(n_people, d)``."""
        codes = self.people.get_indexer(self.lines["agent_id"].astype("str"))
        out = np.zeros((len(self.people), self.amounts.shape[1]))
        np.add.at(out, codes, self.amounts)
        return out

    def total(self) -> np.ndarray:
        """The company's cost of the quarter per scenario, ``(d,)``."""
        return self.amounts.sum(axis=0)


def _employed(agents: pd.DataFrame) -> pd.DataFrame:
    a = agents.assign(agent_id=agents["agent_id"].astype("str")).drop_duplicates("agent_id").set_index("agent_id")
    hire = pd.to_datetime(a["hire_date"]) if "hire_date" in a else pd.Series(pd.NaT, index=a.index)
    leave = pd.to_datetime(a["leave_date"]) if "leave_date" in a else pd.Series(pd.NaT, index=a.index)
    lo = np.where(hire.isna(), -(10**7), _d(hire.fillna(pd.Timestamp("1970-01-01"))))
    hi = np.where(leave.isna(), 10**7, _d(leave.fillna(pd.Timestamp("1970-01-01"))) - 1)
    return pd.DataFrame({"first": lo, "last": hi, "territory_id": a["territory_id"].astype("str")}, index=a.index)


def _overlap(a0, a1, b0, b1) -> np.ndarray:
    return np.maximum(np.minimum(a1, b1) - np.maximum(a0, b0) + 1, 0)


def _skeleton(book: PlanBook, segments: pd.DataFrame, q0: int, q1: int, calendar: Calendar):
    """One row per (stretch on a plan, component other than the draw, window)."""
    seg = segments[(_d(segments["start"]) <= q1) & (_d(segments["end"]) >= q0)]
    s0 = np.maximum(_d(seg["start"]), q0)
    s1 = np.minimum(_d(seg["end"]), q1)
    months = calendar.period_range(_ts([q0])[0], _ts([q1])[0], "month")
    m0 = _d(months)
    m1 = _d(calendar.period_end(months, "month"))
    rows = []
    for aid, pid, a, b in zip(seg["agent_id"].astype("str"), seg["plan_id"].astype("str"), s0, s1):
        plan = book.plan(pid)
        for comp in plan.components:
            if isinstance(comp, Draw):
                continue
            periods = [(q0, q1, "")] if comp.period == "quarter" else [(x, y, "m") for x, y in zip(m0, m1)]
            for p0, p1, kind in periods:
                w0, w1 = max(a, p0), min(b, p1)
                if w0 > w1:
                    continue
                label = comp.label
                if kind:
                    label += f" ({pd.Timestamp(_ts([p0])[0]):%b %Y})"
                rows.append((aid, pid, plan.label, comp, plan.proration, w0, w1, p0, p1, label))
    return rows


def _component_lines(rows, measures: MeasureSource, quotas: Quotas, emp: pd.DataFrame):
    """Amounts, values, tiers and the line table of the component rows, grouped by component."""
    d = measures.n_draws
    n = len(rows)
    amounts, values = np.zeros((n, d)), np.full((n, d), np.nan)
    tiers = np.full((n, d), -2, dtype=np.int16)
    qarr, frac = np.full(n, np.nan), np.ones(n)
    keys = np.empty(n, dtype=object)
    groups: dict[int, list[int]] = {}
    for i, r in enumerate(rows):
        groups.setdefault(id(r[3]), []).append(i)
    for idx in groups.values():
        idx = np.array(idx)
        comp = rows[idx[0]][3]
        aid = [rows[i][0] for i in idx]
        w0 = np.array([rows[i][5] for i in idx])
        w1 = np.array([rows[i][6] for i in idx])
        p0 = np.array([rows[i][7] for i in idx])
        p1 = np.array([rows[i][8] for i in idx])
        by_days = np.array([rows[i][4] == "days" for i in idx])
        f = np.where(by_days, (w1 - w0 + 1) / (p1 - p0 + 1), 1.0)
        frac[idx] = f
        e = emp.reindex(pd.Index(aid))
        if isinstance(comp, (Commission, AttainmentBonus)):
            grain = comp.period
            q = np.full(len(idx), np.nan)
            for p in np.unique(p0):  # one lookup per period (the quarter, or each month)
                at = p0 == p
                q[at] = quotas.get([aid[i] for i in np.flatnonzero(at)], _ts([p])[0], grain, comp.measure)
            emp_window = _overlap(w0, w1, e["first"].to_numpy(), e["last"].to_numpy())
            emp_period = _overlap(p0, p1, e["first"].to_numpy(), e["last"].to_numpy())
            q = q * np.where(emp_period > 0, emp_window / np.maximum(emp_period, 1), 0.0)
            qarr[idx] = q
            v = measures.values(comp.measure, aid, _ts(w0), _ts(w1))
            values[idx] = v
            amounts[idx] = comp.payout(v, q[:, None], f[:, None])
            keys[idx] = comp.measure
            if isinstance(comp, Commission):
                tiers[idx] = comp.tier_reached(v, q[:, None])
        elif isinstance(comp, KpiBonus):
            if comp.kpi == "win_rate":
                won = measures.values("deals_won", aid, _ts(w0), _ts(w1))
                dec = measures.values("deals_decided", aid, _ts(w0), _ts(w1))
                with np.errstate(invalid="ignore", divide="ignore"):
                    v = np.where(dec > 0, won / np.where(dec > 0, dec, 1.0), np.nan)
                amounts[idx] = comp.payout(v, f[:, None], decided=dec)
            else:
                v = measures.values(measure_key(comp.kpi, comp.segment), aid, _ts(w0), _ts(w1))
                amounts[idx] = comp.payout(v, f[:, None])
            values[idx] = v
            keys[idx] = measure_key(comp.kpi, comp.segment)
    table = pd.DataFrame(
        {
            "agent_id": [r[0] for r in rows],
            "plan_id": [r[1] for r in rows],
            "plan_name": [r[2] for r in rows],
            "component_id": [r[3].id for r in rows],
            "component_type": [r[3].type for r in rows],
            "line": [r[9] for r in rows],
            "window_start": _ts(np.array([r[5] for r in rows], dtype=np.int64)),
            "window_end": _ts(np.array([r[6] for r in rows], dtype=np.int64)),
            "measure": keys,
            "quota": qarr,
            "fraction": frac,
            "rule": [r[3].rule() for r in rows],
        },
        columns=LINE_COLUMNS,
    )
    return table, amounts, values, tiers


def _draw_guarantee(book: PlanBook, segments: pd.DataFrame, q0: int, q1: int, calendar: Calendar, people: pd.Index):
    """Per person: the guarantee ``D`` of the quarter, its recoverable part and the rules."""
    g, rec = np.zeros(len(people)), np.zeros(len(people))
    rules: dict[str, tuple[str, str, str]] = {}
    first_day = segments.groupby(["agent_id", "plan_id"])["start"].min()
    seg = segments[(_d(segments["start"]) <= q1) & (_d(segments["end"]) >= q0)]
    q_start = _ts([q0])[0]
    for aid, pid, a, b in zip(seg["agent_id"].astype("str"), seg["plan_id"], _d(seg["start"]), _d(seg["end"])):
        plan = book.plan(pid)
        draw = next((c for c in plan.components if isinstance(c, Draw)), None)
        if draw is None:
            continue
        if draw.quarters is not None:
            first_q = calendar.quarter_start(first_day[(aid, pid)])
            n = int(calendar.period_number(pd.DatetimeIndex([q_start]), "quarter")[0]) - int(
                calendar.period_number(pd.DatetimeIndex([first_q]), "quarter")[0]
            )
            if n >= draw.quarters:
                continue
        w = min(b, q1) - max(a, q0) + 1
        f = w / (q1 - q0 + 1) if plan.proration == "days" else 1.0
        i = people.get_loc(aid)
        g[i] += draw.amount * f
        rec[i] += draw.amount * f if draw.recoverable else 0.0
        rules[aid] = (pid, plan.label, draw.rule())
    return g, rec, rules


def _contest_prizes(contest: Contest, v: np.ndarray, dec: np.ndarray | None) -> np.ndarray:
    """Prizes ``(n, d)`` of the participants with values ``v`` (module docstring)."""
    if dec is not None:  # win rate: taking part needs min_deals decided
        v = np.where(dec >= contest.min_deals, v, np.nan)
    if contest.above is not None:
        ok = np.nan_to_num(v, nan=-np.inf) >= contest.above - 1e-9
        n_ok = ok.sum(axis=0)
        return np.where(ok, contest.pool / np.maximum(n_ok, 1), 0.0)
    scored = np.where(np.nan_to_num(v, nan=0.0) > 0, np.nan_to_num(v), -np.inf)
    lo = rankdata(-scored, method="min", axis=0)
    hi = rankdata(-scored, method="max", axis=0)
    shares = np.concatenate([[0.0], np.cumsum(contest.shares)])
    shares = np.concatenate([shares, np.full(max(v.shape[0] + 1 - len(shares), 0), shares[-1])])
    prize = (shares[hi.astype(int)] - shares[lo.astype(int) - 1]) / (hi - lo + 1) * contest.pool
    return np.where(np.isfinite(scored), prize, 0.0)


def _contests(book, q0, q1, measures, emp: pd.DataFrame, roles: pd.Series):
    """Contest lines ending in the quarter: (table, amounts, values)."""
    tables, amounts, values = [], [], []
    for c in book.contests:
        c0, c1 = int(_d([c.start])[0]), int(_d([c.end])[0])
        if not (q0 <= c1 <= q1):
            continue
        ok = (emp["first"] <= c1) & (emp["last"] >= c1)
        if c.roles:
            ok &= roles.reindex(emp.index).isin(c.roles)
        if c.territories:
            ok &= emp["territory_id"].isin(c.territories)
        ids = list(emp.index[ok.to_numpy()])
        if not ids:
            continue
        s, e = _ts(np.full(len(ids), c0)), _ts(np.full(len(ids), c1))
        dec = None
        if c.kpi == "win_rate":
            won = measures.values("deals_won", ids, s, e)
            dec = measures.values("deals_decided", ids, s, e)
            with np.errstate(invalid="ignore", divide="ignore"):
                v = np.where(dec > 0, won / np.where(dec > 0, dec, 1.0), np.nan)
        else:
            v = measures.values(measure_key(c.kpi, c.segment), ids, s, e)
        amounts.append(_contest_prizes(c, v, dec))
        values.append(v)
        tables.append(
            pd.DataFrame(
                {
                    "agent_id": ids,
                    "plan_id": "",
                    "plan_name": "",
                    "component_id": c.id,
                    "component_type": "contest",
                    "line": c.label,
                    "window_start": s,
                    "window_end": e,
                    "measure": c.measures[0] if c.kpi != "win_rate" else "win_rate",
                    "quota": np.nan,
                    "fraction": 1.0,
                    "rule": c.rule(),
                }
            )
        )
    return tables, amounts, values


def evaluate_quarter(
    book: PlanBook,
    segments: pd.DataFrame,
    quarter_start: Any,
    *,
    agents: pd.DataFrame,
    quotas: Quotas,
    measures: MeasureSource,
    calendar: Calendar,
    balance: pd.Series | np.ndarray | None = None,
) -> QuarterResult:
    """Every line of the quarter starting ``quarter_start`` (module docstring).

    Parameters
    ----------
    book : PlanBook
    segments : DataFrame
        :func:`~spm_models.insights.incentives.assign.plan_segments` over at least the quarter
        (and, for a draw limited to its first quarters, since each person's first day on it).
    agents : DataFrame
        Canonical agents (employment, territory).
    quotas : Quotas
    measures : MeasureSource
        :class:`Actuals` or :class:`WithProjection`.
    calendar : Calendar
    balance : Series, optional
        Recoverable draw balance by agent id carried in (0 for anyone missing), or an array
        ``(n_people, d)`` aligned with the result's people.
    """
    q0 = int(_d([calendar.quarter_start(quarter_start)])[0])
    q1 = int(_d([calendar.quarter_end(quarter_start)])[0])
    emp = _employed(agents)
    roles = pd.Series(book.role_of(list(emp.index)), index=emp.index)
    rows = _skeleton(book, segments, q0, q1, calendar)
    if hasattr(measures, "prepare"):
        days = [r[5] for r in rows] + [r[6] + 1 for r in rows]
        days += [x for c in book.contests for x in (int(_d([c.start])[0]), int(_d([c.end])[0]) + 1)]
        measures.prepare(list(_ts(np.array(days, dtype=np.int64))))
    table, amounts, values, tiers = _component_lines(rows, measures, quotas, emp)
    c_tables, c_amounts, c_values = _contests(book, q0, q1, measures, emp, roles)
    d = measures.n_draws
    seg_q = segments[(_d(segments["start"]) <= q1) & (_d(segments["end"]) >= q0)]
    ids = list(table["agent_id"]) + list(seg_q["agent_id"].astype("str")) + [a for t in c_tables for a in t["agent_id"]]
    if isinstance(balance, pd.Series):
        ids += list(balance.index[balance.to_numpy() > 0].astype(str))
    people = pd.Index(sorted(set(ids)), dtype="str")
    earned = np.zeros((len(people), d))
    np.add.at(earned, people.get_indexer(table["agent_id"]), amounts)
    if isinstance(balance, pd.Series):
        b_in = np.repeat(balance.reindex(people).fillna(0.0).to_numpy(dtype=float)[:, None], d, axis=1)
    elif balance is None:
        b_in = np.zeros((len(people), d))
    else:
        b_in = np.broadcast_to(np.asarray(balance, dtype=float), (len(people), d)).copy()
    g, rec, rules = _draw_guarantee(book, segments, q0, q1, calendar, people)
    top = np.maximum(g[:, None] - earned, 0.0)
    recovery = np.minimum(b_in, np.maximum(earned - g[:, None], 0.0))
    share = np.where(g > 0, rec / np.where(g > 0, g, 1.0), 0.0)
    b_out = b_in - recovery + top * share[:, None]
    d_rows, d_amounts, d_values = [], [], []
    for i, aid in enumerate(people):
        pid, pname, rule = rules.get(aid, ("", "", "recoverable advances of earlier quarters"))
        base = {"agent_id": aid, "plan_id": pid, "plan_name": pname, "component_type": "draw", "rule": rule}
        base |= {"window_start": _ts([q0])[0], "window_end": _ts([q1])[0], "quota": np.nan, "fraction": 1.0}
        if g[i] > 0:
            d_rows.append({**base, "component_id": "draw_top_up", "line": "Draw: top-up to the guarantee"})
            d_rows[-1]["measure"] = "guarantee"
            d_amounts.append(top[i])
            d_values.append(np.full(d, g[i]))
        if (b_in[i] > 0).any():
            d_rows.append({**base, "component_id": "draw_recovery", "line": "Draw: recovery of earlier advances"})
            d_rows[-1]["measure"] = "balance"
            d_amounts.append(-recovery[i])
            d_values.append(b_in[i])
    parts = [table] + c_tables + ([pd.DataFrame(d_rows, columns=LINE_COLUMNS)] if d_rows else [])
    lines = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(len(p) for p in parts) else table
    all_amounts = np.concatenate([amounts, *c_amounts, *(np.array(d_amounts).reshape(-1, d),)], axis=0)
    all_values = np.concatenate([values, *c_values, *(np.array(d_values).reshape(-1, d),)], axis=0)
    all_tiers = np.concatenate([tiers, np.full((len(all_amounts) - len(tiers), d), -2, dtype=np.int16)], axis=0)
    lines = lines[LINE_COLUMNS].assign(agent_id=lines["agent_id"].astype("str"), plan_id=lines["plan_id"].astype("str"))
    return QuarterResult(
        quarter_start=_ts([q0])[0],
        quarter_end=_ts([q1])[0],
        lines=lines.reset_index(drop=True),
        amounts=all_amounts,
        values=all_values,
        tiers=all_tiers,
        people=people,
        balance_in=b_in,
        balance_out=b_out,
    )
