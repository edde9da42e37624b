"""What a plan will cost next quarter, as a distribution, and a draft plan beside the current one.

All numbers come from the forecast quarter's scenarios ``j = 1..d`` of a :class:`.context.BookRun`
(one context for every plan compared, so the scenarios are paired):

- the company's cost ``C_j = sum_i P_ij`` (``P_ij`` what person ``i`` is paid): its mean, 10th,
  50th and 90th percentiles, and split by component type;
- its share of bookings (margin): ``E[C] / E[B]`` with ``B_j`` the quarter's bookings of the
  people on a plan, and the 10th and 90th percentiles of ``C_j / B_j``;
- each person's payout: mean, 10th and 90th percentiles of ``P_ij``;
- the spread of payouts across people: the 10th, 50th and 90th percentiles of the people's
  expected payouts, and the share of the cost expected to go to the top tenth of earners;
- the tier counts: for each commission, ``N_kj`` the number of people whose attainment ends in
  band ``k`` in scenario ``j``: its mean and 80% range (and the same for the steps of each
  attainment bonus);
- for two plans, the paired difference ``C^draft_j - C^current_j``: its mean and 80% range.

Commercial plan calculators give one number per plan at one assumed attainment; these give the
range a budget has to hold.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from spm_models.exceptions import DataError
from spm_models.insights.incentives.context import BookRun
from spm_models.insights.incentives.plan import AttainmentBonus, Commission

__all__ = [
    "plan_cost",
    "person_payouts",
    "payout_spread",
    "tier_counts",
    "compare_plans",
    "cost_scenarios",
    "COST_COLUMNS",
]

COST_COLUMNS = [
    "plan",
    "period",
    "n_people",
    "expected_cost",
    "cost_q10",
    "cost_q50",
    "cost_q90",
    "expected_bookings",
    "cost_share_of_bookings",
    "share_q10",
    "share_q90",
    "expected_margin",
    "cost_share_of_margin",
    "commission",
    "attainment_bonus",
    "kpi_bonus",
    "contest",
    "draw",
]


def _scenarios(run: BookRun):
    if run.expected is None:
        raise DataError("this plan run has no forecast scenarios; evaluate it with scenarios=True")
    return run.expected


def plan_cost(run: BookRun, *, label: str | None = None, margin: bool | None = None) -> pd.DataFrame:
    """One row: the cost of ``run``'s forecast quarter (module docstring; :data:`COST_COLUMNS`).

    ``margin``: also the share of margin (default: when the data hold margin on won deals).
    """
    r = _scenarios(run)
    ctx = run.context
    total = r.total() if r.amounts.size else np.zeros(r.n_draws)
    people = list(r.people)
    b = ctx.bookings(people).sum(axis=0) if people else np.zeros(r.n_draws)
    if margin is None:
        from spm_models.kpi.engine import deal_margin

        margin = bool(np.isfinite(deal_margin(ctx.tables["opportunities"])).any())
    m = ctx.bookings(people, measure="margin").sum(axis=0) if margin and people else None
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(b > 0, total / np.where(b > 0, b, 1.0), np.nan)
    by_type = r.lines.groupby("component_type").indices
    row = {
        "plan": label or run.book.name,
        "period": ctx.quarter_label,
        "n_people": len(people),
        "expected_cost": float(total.mean()),
        "cost_q10": float(np.quantile(total, 0.1)),
        "cost_q50": float(np.quantile(total, 0.5)),
        "cost_q90": float(np.quantile(total, 0.9)),
        "expected_bookings": float(b.mean()),
        "cost_share_of_bookings": float(total.mean() / b.mean()) if b.mean() > 0 else np.nan,
        "share_q10": float(np.nanquantile(share, 0.1)) if np.isfinite(share).any() else np.nan,
        "share_q90": float(np.nanquantile(share, 0.9)) if np.isfinite(share).any() else np.nan,
        "expected_margin": float(m.mean()) if m is not None else np.nan,
        "cost_share_of_margin": float(total.mean() / m.mean()) if m is not None and m.mean() > 0 else np.nan,
    }
    for t in ("commission", "attainment_bonus", "kpi_bonus", "contest", "draw"):
        idx = by_type.get(t)
        row[t] = float(r.amounts[idx].sum(axis=0).mean()) if idx is not None else 0.0
    return pd.DataFrame([row], columns=COST_COLUMNS)


def person_payouts(run: BookRun) -> pd.DataFrame:
    """Each person's payout of the forecast quarter: ``agent_id, earned_to_date, expected, q10,
    q90, p_any`` (the chance of being paid anything)."""
    r = _scenarios(run)
    paid = r.paid()
    now = run.to_date.paid()[:, 0] if run.to_date is not None and len(run.to_date.people) else np.zeros(len(r.people))
    q = np.quantile(paid, [0.1, 0.9], axis=1) if paid.size else np.zeros((2, 0))
    return pd.DataFrame(
        {
            "agent_id": pd.array(r.people.astype(str), dtype="str"),
            "earned_to_date": now,
            "expected": paid.mean(axis=1) if paid.size else np.zeros(0),
            "q10": q[0],
            "q90": q[1],
            "p_any": (paid > 0).mean(axis=1) if paid.size else np.zeros(0),
        }
    )


def payout_spread(payouts: pd.DataFrame) -> dict[str, float]:
    """How unequal the expected payouts are across people (module docstring)."""
    e = np.sort(payouts["expected"].to_numpy(dtype=float))
    if not len(e):
        return {"person_p10": np.nan, "person_median": np.nan, "person_p90": np.nan, "top_tenth_share": np.nan}
    top = max(1, int(np.ceil(0.1 * len(e))))
    return {
        "person_p10": float(np.quantile(e, 0.1)),
        "person_median": float(np.median(e)),
        "person_p90": float(np.quantile(e, 0.9)),
        "top_tenth_share": float(e[-top:].sum() / e.sum()) if e.sum() > 0 else np.nan,
    }


def tier_counts(run: BookRun) -> pd.DataFrame:
    """How many people land in each commission band and reach each attainment-bonus step.

    Returns
    -------
    DataFrame
        ``plan_id, component_id, tier, label, expected_people, q10, q90`` (over scenarios;
        people without a quota are counted in no band).
    """
    r = _scenarios(run)
    rows = []
    for plan in run.book.plans:
        for comp in plan.components:
            idx = np.flatnonzero(
                (r.lines["plan_id"] == plan.id).to_numpy() & (r.lines["component_id"] == comp.id).to_numpy()
            )
            if not len(idx):  # not in force this quarter
                continue
            if isinstance(comp, Commission):
                labels = comp.tier_labels()
                t = r.tiers[idx]
                for k, label in enumerate(labels):
                    n = (t == k).sum(axis=0)
                    rows.append((plan.id, comp.id, k, label, n.mean(), *np.quantile(n, [0.1, 0.9])))
            elif isinstance(comp, AttainmentBonus):
                q = r.lines["quota"].to_numpy()[idx][:, None]
                with np.errstate(invalid="ignore", divide="ignore"):
                    att = np.where(q > 0, r.values[idx] / np.where(q > 0, q, 1.0), np.nan)
                for k, s in enumerate(comp.steps):
                    n = (np.nan_to_num(att) >= s.at - 1e-9).sum(axis=0)
                    rows.append((plan.id, comp.id, k, f"reach {s.at:.0%}", n.mean(), *np.quantile(n, [0.1, 0.9])))
    cols = ["plan_id", "component_id", "tier", "label", "expected_people", "q10", "q90"]
    out = pd.DataFrame(rows, columns=cols)
    for c in ("plan_id", "component_id", "label"):
        out[c] = out[c].astype("str")
    return out


def compare_plans(runs: Mapping[str, BookRun]) -> pd.DataFrame:
    """The plans side by side (one column each): expected cost and its 80% range, cost as a share
    of bookings, the payout spread across people, and, against the first plan, the paired
    difference of cost with its 80% range.

    Raises
    ------
    DataError
        Runs on different contexts (their scenarios would not be paired).
    """
    names = list(runs)
    if len({id(r.context) for r in runs.values()}) > 1:
        raise DataError("compare plans evaluated on one PlanContext, so that they see the same scenarios")
    base = _scenarios(runs[names[0]]).total()
    table = {}
    for name, run in runs.items():
        cost = plan_cost(run, label=name).iloc[0]
        spread = payout_spread(person_payouts(run))
        diff = _scenarios(run).total() - base
        table[name] = {
            "expected cost": cost["expected_cost"],
            "cost, 10th percentile": cost["cost_q10"],
            "cost, 90th percentile": cost["cost_q90"],
            "expected bookings": cost["expected_bookings"],
            "cost as share of expected bookings": cost["cost_share_of_bookings"],
            "cost as share of margin": cost["cost_share_of_margin"],
            "people paid": cost["n_people"],
            "payout per person, 10th percentile": spread["person_p10"],
            "payout per person, median": spread["person_median"],
            "payout per person, 90th percentile": spread["person_p90"],
            "share of cost to the top tenth": spread["top_tenth_share"],
            f"cost minus {names[0]}, mean": float(diff.mean()),
            f"cost minus {names[0]}, 10th percentile": float(np.quantile(diff, 0.1)),
            f"cost minus {names[0]}, 90th percentile": float(np.quantile(diff, 0.9)),
        }
    out = pd.DataFrame(table)
    out.index.name = "measure"
    return out


def cost_scenarios(runs: Mapping[str, BookRun]) -> pd.DataFrame:
    """The company's cost ``C_j`` of every scenario of each run, long: ``plan, scenario, cost``
    (what a histogram of the cost distribution draws)."""
    frames = []
    for name, run in runs.items():
        total = _scenarios(run).total()
        frames.append(pd.DataFrame({"plan": name, "scenario": np.arange(len(total)), "cost": total}))
    return pd.concat(frames, ignore_index=True)
