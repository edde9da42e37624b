"""Who is on which plan, day by day: eligibility, effective dates, explicit assignments.

For each person the days on plan ``p`` are the intersection of

- employment: ``hire_date`` (empty: before the data) to the day before ``leave_date``;
- the plan's effective dates ``effective_from .. effective_to``;
- its eligibility: the person's role (:meth:`PlanBook.role_of`) in ``roles``, territory in
  ``territories`` (empty lists: anyone), hired on or after ``hired_on_or_after`` and before
  ``hired_before`` (an unknown hire date counts as hired before the data: it passes
  ``hired_before`` and fails ``hired_on_or_after``), and tenure between ``min_tenure_months``
  and ``max_tenure_months`` (``hire + min`` to the day before ``hire + max``; an unknown hire
  date has every tenure above the maximum of a ramp plan).

An ``[[assignments]]`` entry puts one person on one plan from ``from`` to ``to`` (inside the
plan's effective dates and the employment), whatever the rules say; on those days the rules
give nothing else. A person the rules put on two plans on the same day is an error (listed
with every other), because payroll cannot guess which applies. Roles do not change over time:
a change of role is an assignment.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from spm_models.exceptions import ConfigError
from spm_models.insights.incentives.plan import Plan, PlanBook

__all__ = ["plan_segments", "book_data_problems", "SEGMENT_COLUMNS"]

SEGMENT_COLUMNS = ["agent_id", "plan_id", "start", "end", "source"]
_NEVER, _ALWAYS = -(10**7), 10**7


def _day(value: Any, default: int) -> int:
    if value is None or pd.isna(value):
        return default
    return int(np.datetime64(pd.Timestamp(value).date(), "D").astype(np.int64))


def _months_after(hire: Any, months: int) -> int:
    return _day(pd.Timestamp(hire) + pd.DateOffset(months=months), _ALWAYS)


def _rule_interval(plan: Plan, role: str, territory: str, hire: Any, employed: tuple[int, int]) -> tuple[int, int]:
    """Days (first, last) the rules put one person on ``plan``; empty when first > last."""
    if plan.roles and role not in plan.roles:
        return (1, 0)
    if plan.territories and territory not in plan.territories:
        return (1, 0)
    known = hire is not None and not pd.isna(hire)
    if plan.hired_on_or_after is not None and (not known or hire < plan.hired_on_or_after):
        return (1, 0)
    if plan.hired_before is not None and known and hire >= plan.hired_before:
        return (1, 0)
    lo = max(employed[0], _day(plan.effective_from, _NEVER))
    hi = min(employed[1], _day(plan.effective_to, _ALWAYS))
    if plan.min_tenure_months and known:
        lo = max(lo, _months_after(hire, plan.min_tenure_months))
    if plan.max_tenure_months is not None:
        hi = min(hi, _months_after(hire, plan.max_tenure_months) - 1 if known else _NEVER)
    return (lo, hi)


def _minus(interval: tuple[int, int], cuts: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """``interval`` without the days of ``cuts``."""
    parts = [interval]
    for c0, c1 in cuts:
        nxt = []
        for a, b in parts:
            if c1 < a or c0 > b:
                nxt.append((a, b))
                continue
            if a < c0:
                nxt.append((a, c0 - 1))
            if c1 < b:
                nxt.append((c1 + 1, b))
        parts = nxt
    return [p for p in parts if p[0] <= p[1]]


def _text(day: int) -> str:
    return str(np.datetime64(day, "D"))


def plan_segments(book: PlanBook, agents: pd.DataFrame, *, start: Any = None, end: Any = None) -> pd.DataFrame:
    """Every stretch of days each person is on a plan (module docstring).

    Parameters
    ----------
    book : PlanBook
    agents : DataFrame
        Canonical agents (``agent_id``, ``territory_id``, ``hire_date``, ``leave_date``; rows
        with ``is_person`` false are left out: owners that are not people are paid nothing).
    start, end : date-like, optional
        Days considered (default: all).

    Returns
    -------
    DataFrame
        ``agent_id, plan_id, start, end, source`` (``"rules"`` or ``"assignment"``), ``end``
        inclusive, sorted by agent and start.

    Raises
    ------
    ConfigError
        People the rules put on two plans on the same day, or two assignments that overlap
        (every case listed).
    """
    people = agents
    if "is_person" in agents:
        people = agents[agents["is_person"].fillna(True).astype(bool).to_numpy()]
    lo_all, hi_all = _day(start, _NEVER), _day(end, _ALWAYS)
    ids = people["agent_id"].astype("str").to_numpy()
    roles = book.role_of(ids)
    terr = people["territory_id"].astype("str").to_numpy()
    hires = pd.to_datetime(people["hire_date"]) if "hire_date" in people else pd.Series(pd.NaT, index=people.index)
    leaves = pd.to_datetime(people["leave_date"]) if "leave_date" in people else pd.Series(pd.NaT, index=people.index)
    by_agent: dict[str, list] = {}
    for a in book.assignments:
        by_agent.setdefault(a.agent_id, []).append(a)
    rows, problems = [], []
    for aid, role, t, hire, leave in zip(ids, roles, terr, hires.to_numpy(), leaves.to_numpy()):
        hire = pd.Timestamp(hire) if not pd.isna(hire) else None
        employed = (max(_day(hire, _NEVER), lo_all), min(_day(leave, _ALWAYS + 1) - 1, hi_all))
        fixed = []
        for a in by_agent.get(aid, []):
            plan = book.plan(a.plan_id)
            lo = max(employed[0], _day(a.start, _NEVER), _day(plan.effective_from, _NEVER))
            hi = min(employed[1], _day(a.end, _ALWAYS), _day(plan.effective_to, _ALWAYS))
            if lo <= hi:
                fixed.append((lo, hi, plan.id))
        fixed.sort()
        for (_, a1, p), (b0, b1, q) in zip(fixed, fixed[1:]):
            if b0 <= a1:
                problems.append(
                    f"agent {aid}: assignments to {p!r} and {q!r} overlap from {_text(b0)} to {_text(min(a1, b1))}"
                )
        rules = []
        for plan in book.plans:
            iv = _rule_interval(plan, role, t, hire, employed)
            rules += [(lo, hi, plan.id) for lo, hi in _minus(iv, [(f0, f1) for f0, f1, _ in fixed])]
        rules.sort()
        for i, (a0, a1, p) in enumerate(rules):
            for b0, b1, q in rules[i + 1 :]:
                if b0 <= a1 and p != q:
                    problems.append(
                        f"agent {aid} ({role or 'no role'}, territory {t}) is eligible for both {p!r} and {q!r} from "
                        f"{_text(max(a0, b0))} to {_text(min(a1, b1))}: narrow the plans' eligibility or effective "
                        "dates, or add an [[assignments]] entry"
                    )
        rows += [(aid, p, lo, hi, "rules") for lo, hi, p in rules]
        rows += [(aid, p, lo, hi, "assignment") for lo, hi, p in fixed]
    if problems:
        raise ConfigError(
            f"{len(problems)} problem{'s' if len(problems) != 1 else ''} assigning the plans of {book.source}:\n  "
            + "\n  ".join(problems)
        )
    out = pd.DataFrame(rows, columns=SEGMENT_COLUMNS)
    for c in ("start", "end"):
        out[c] = out[c].to_numpy(dtype=np.int64).astype("datetime64[D]").astype("datetime64[us]")
    out["agent_id"] = out["agent_id"].astype("str")
    out["plan_id"] = out["plan_id"].astype("str")
    return out.sort_values(["agent_id", "start"], kind="stable").reset_index(drop=True)


def book_data_problems(book: PlanBook, agents: pd.DataFrame, territories: Sequence[str] | None = None) -> list[str]:
    """What a plan book says about people and places the data do not know: agent ids in
    ``[roles]`` and ``[[assignments]]``, territories named by plans and contests."""
    known = set(agents["agent_id"].astype("str"))
    out = []
    for role, ids in book.roles.items():
        missing = [a for a in ids if a not in known]
        if missing:
            out.append(f"[roles]: {role!r} lists agent ids the data do not hold: {', '.join(missing)}")
    for i, a in enumerate(book.assignments, 1):
        if a.agent_id not in known:
            out.append(f"assignments #{i}: agent {a.agent_id!r} is not in the data")
    places = set(territories) if territories is not None else set(agents["territory_id"].astype("str"))
    for kind, items in (("plans", book.plans), ("contests", book.contests)):
        for i, p in enumerate(items, 1):
            missing = [t for t in p.territories if t not in places]
            if missing:
                out.append(f"{kind} #{i} (id {p.id!r}): territories not in the data: {', '.join(missing)}")
    roles = set(book.roles) | ({book.default_role} if book.default_role else set())
    for kind, items in (("plans", book.plans), ("contests", book.contests)):
        for i, p in enumerate(items, 1):
            missing = [r for r in p.roles if r not in roles]
            if missing:
                out.append(
                    f"{kind} #{i} (id {p.id!r}): roles nobody holds: {', '.join(missing)} "
                    f"(roles: {', '.join(sorted(roles)) or 'none; set default_role or [roles]'})"
                )
    return out
