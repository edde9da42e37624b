"""A person's payout outlook for the quarter ahead: expected pay, its range, what the next tier takes.

:func:`payout_outlook` is the stable interface reports use for a person's headline payout
numbers. Per person, over the forecast quarter's scenarios of a :class:`.context.BookRun`:

- ``expected_payout`` and ``payout_q0.1`` / ``q0.5`` / ``q0.9``: everything the person is paid
  (every component, contest and draw adjustment), ``P_ij`` of :mod:`.modelling`;
- ``earned_to_date``: the same if the quarter ended with the results so far;
- the *main commission*: the quarterly commission on bookings of the plan the person is on at
  the quarter's last day (their latest stretch in it); for it ``quota`` (of that stretch),
  ``payout_at_quota`` (that commission and the plan's bookings attainment bonuses at exactly
  100 %, scaled by the stretch's share of the quarter), ``payout_of_expected_bookings`` (the
  same at the expected bookings, for contrast with the expected payout), and
  ``next_tier_attainment``, ``bookings_to_next_tier`` (``a_next Q - B_so_far``) and
  ``next_tier_rate`` (:meth:`~.plan.Commission.next_tier`; NaN past the last tier or the cap).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from spm_models.exceptions import DataError
from spm_models.insights.incentives.context import BookRun
from spm_models.insights.incentives.plan import AttainmentBonus, Commission

__all__ = ["payout_outlook", "OUTLOOK_COLUMNS"]

OUTLOOK_COLUMNS = [
    "unique_id",
    "plan_id",
    "plan_name",
    "quota",
    "expected_payout",
    "payout_q0.1",
    "payout_q0.5",
    "payout_q0.9",
    "payout_at_quota",
    "earned_to_date",
    "payout_of_expected_bookings",
    "next_tier_attainment",
    "bookings_to_next_tier",
    "next_tier_rate",
]


def _main_lines(lines: pd.DataFrame, book) -> pd.DataFrame:
    """Per person, the latest quarterly commission-on-bookings line (module docstring)."""
    keep = []
    for i, (t, pid, cid) in enumerate(zip(lines["component_type"], lines["plan_id"], lines["component_id"])):
        if t != "commission":
            continue
        comp = next(c for c in book.plan(pid).components if c.id == cid)
        if comp.measure == "bookings" and comp.period == "quarter":
            keep.append(i)
    main = lines.iloc[keep].assign(row=keep)
    return main.sort_values(["agent_id", "window_end"]).drop_duplicates("agent_id", keep="last").set_index("agent_id")


def payout_outlook(run: BookRun) -> pd.DataFrame:
    """Each person's payout outlook of the forecast quarter (module docstring; :data:`OUTLOOK_COLUMNS`).

    Raises
    ------
    DataError
        ``run`` has no scenarios.
    """
    if run.expected is None or run.to_date is None:
        raise DataError("a payout outlook needs the forecast quarter's scenarios (evaluate with scenarios=True)")
    r, now = run.expected, run.to_date
    paid = r.paid()
    people = r.people.astype(str)
    qs = np.quantile(paid, [0.1, 0.5, 0.9], axis=1) if paid.size else np.zeros((3, 0))
    out = pd.DataFrame(
        {
            "unique_id": pd.array(people, dtype="str"),
            "expected_payout": paid.mean(axis=1) if paid.size else np.zeros(0),
            "payout_q0.1": qs[0],
            "payout_q0.5": qs[1],
            "payout_q0.9": qs[2],
            "earned_to_date": now.paid()[:, 0] if len(now.people) else np.zeros(0),
        }
    )
    main = _main_lines(r.lines, run.book).reindex(pd.Index(people))
    n = len(people)
    cols = {c: np.full(n, np.nan) for c in OUTLOOK_COLUMNS[8:] if c != "earned_to_date"}
    cols["quota"] = main["quota"].to_numpy(dtype=float)
    for j, aid in enumerate(people):
        m = main.loc[aid]
        if pd.isna(m["plan_id"]):
            continue
        plan = run.book.plan(m["plan_id"])
        comp = next(c for c in plan.components if c.id == m["component_id"])
        q, f, row = float(m["quota"]), float(m["fraction"]), int(m["row"])
        so_far = float(now.values[row, 0])
        bonuses = [c for c in plan.components if isinstance(c, AttainmentBonus) and c.measure == "bookings"]

        def pay(b, comp=comp, q=q, f=f, bonuses=bonuses):
            return float(comp.payout(b, q, f)) + sum(float(c.payout(b, q, f)) for c in bonuses)

        if np.isfinite(q) and q > 0:
            cols["payout_at_quota"][j] = pay(q)
        cols["payout_of_expected_bookings"][j] = pay(float(r.values[row].mean()))
        at, need, rate = comp.next_tier(so_far, q) if isinstance(comp, Commission) else (np.nan,) * 3
        cols["next_tier_attainment"][j], cols["bookings_to_next_tier"][j], cols["next_tier_rate"][j] = at, need, rate
    out["plan_id"] = pd.array(main["plan_id"].fillna("").astype(str).to_numpy(), dtype="str")
    out["plan_name"] = pd.array(main["plan_name"].fillna("").astype(str).to_numpy(), dtype="str")
    for c, v in cols.items():
        out[c] = v
    return out[OUTLOOK_COLUMNS]
