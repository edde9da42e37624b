"""What the reports read of the incentive plans: a person's statement, the plans' cost.

:func:`agent_statement` holds only one person's statement lines, totals and contest standings
(never another person's, like :class:`~spm_models.review.views.AgentView`);
:func:`plan_review` holds the company's: the cost of the plan in force for the quarter ahead,
the cost of each quarter, the tier counts and the contest standings. Both read the run's
artifacts through :func:`~spm_models.review.views.load_run` (cached per process).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from spm_models.review.views import load_run

__all__ = ["AgentStatement", "PlanReview", "agent_statement", "plan_review"]


@dataclass(frozen=True)
class AgentStatement:
    """One person's statements of a run.

    ``ahead``: the lines of the forecast quarter (``quarter``); ``closed``: at a quarter end, the
    final lines of the quarter that closed (``review_quarter``), else empty. ``totals_*`` one row
    each (:func:`~spm_models.insights.incentives.statement_totals`); ``history`` the person's
    total of every quarter of the plan book; ``standings`` their own contest rows. ``currency`` is
    the bookings label (measures), ``money`` the currency payouts are in.
    """

    shown: bool
    quarter: str
    review_quarter: str
    quarter_closed: bool
    currency: str
    money: str
    ahead: pd.DataFrame = field(repr=False)
    closed: pd.DataFrame = field(repr=False)
    totals_ahead: pd.DataFrame = field(repr=False)
    totals_closed: pd.DataFrame = field(repr=False)
    history: pd.DataFrame = field(repr=False)
    standings: pd.DataFrame = field(repr=False)


def _mine(frame: pd.DataFrame, aid: str) -> pd.DataFrame:
    return frame[frame["agent_id"].astype("str") == aid].reset_index(drop=True)


def _period(frame: pd.DataFrame, label: str) -> pd.DataFrame:
    return frame[frame["period"].astype("str") == label].reset_index(drop=True)


def agent_statement(run_dir: str | Path, agent_id: str) -> AgentStatement:
    """The statement section of ``agent_id``'s report (module docstring)."""
    run = load_run(run_dir)
    aid = str(agent_id)
    info = run.info
    quarter, review_q = info["quarter_label"], info.get("review_quarter_label", info["quarter_label"])
    closed = bool(info.get("quarter_closed", False))
    lines = _mine(run["statements"], aid)
    totals = _mine(run["statement_totals"], aid)
    standings = _mine(run["contest_standings"], aid)
    return AgentStatement(
        shown=run.plan_book is not None,
        quarter=quarter,
        review_quarter=review_q,
        quarter_closed=closed,
        currency=run.currency,
        money=str(info["settings"]["currency"]),
        ahead=_period(lines, quarter),
        closed=_period(lines, review_q) if closed else lines.iloc[0:0],
        totals_ahead=_period(totals, quarter),
        totals_closed=_period(totals, review_q) if closed else totals.iloc[0:0],
        history=totals,
        standings=standings,
    )


@dataclass(frozen=True)
class PlanReview:
    """The company's view of the plans in force (module docstring)."""

    shown: bool
    plan_name: str
    quarter: str
    review_quarter: str
    quarter_closed: bool
    currency: str
    money: str
    outlook: pd.DataFrame = field(repr=False)
    cost: pd.DataFrame = field(repr=False)
    tiers: pd.DataFrame = field(repr=False)
    standings: pd.DataFrame = field(repr=False)
    plans: pd.DataFrame = field(repr=False)


def plan_review(run_dir: str | Path) -> PlanReview:
    """The monthly review's section on the plans in force."""
    run = load_run(run_dir)
    info = run.info
    book = run.plan_book
    lines = run["statements"]
    quarter = info["quarter_label"]
    ahead = lines[lines["period"].astype("str") == quarter]
    names = {p.id: p.label for p in book.plans} if book is not None else {}
    plans = (
        ahead.groupby("plan_id", as_index=False)
        .agg(people=("agent_id", "nunique"))
        .assign(plan=lambda f: f["plan_id"].map(names))
        .dropna(subset=["plan"])
    )
    tiers = run["plan_tiers"].assign(plan=lambda f: f["plan_id"].map(names).fillna(f["plan_id"]))
    return PlanReview(
        shown=book is not None,
        plan_name=book.name if book is not None else "",
        quarter=quarter,
        review_quarter=info.get("review_quarter_label", quarter),
        quarter_closed=bool(info.get("quarter_closed", False)),
        currency=run.currency,
        money=str(info["settings"]["currency"]),
        outlook=run["plan_outlook"],
        cost=run["plan_cost"],
        tiers=tiers,
        standings=run["contest_standings"].merge(run["agents"][["agent_id", "agent_name"]], on="agent_id", how="left"),
        plans=plans.reset_index(drop=True),
    )
