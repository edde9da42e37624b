"""The review's incentive plans: statements, the plan in force's cost, contests and awards.

Once per run (:func:`plan_tables`, called by :mod:`~spm_models.review.artifacts`), the plan book
of the settings (:attr:`ReviewConfig.plan_book`) is evaluated on the data as of the review date
with the review's own forecast of the quarter ahead (the agents' calibrated draws, the same
scenarios as the chance of quota and the fan charts): every past quarter of the book settled,
the forecast quarter so far and over the scenarios (:mod:`spm_models.insights.incentives`). The
tables it returns are written as artifacts (:data:`PLAN_TABLES`) and the statements are also
exported for payroll review (:func:`write_statement_exports`). Without a plan every table is
empty and the reports say why they show no payout.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from spm_models.data.dataset import Dataset
from spm_models.data.exports import write_table
from spm_models.insights.incentives import (
    OUTLOOK_COLUMNS,
    STANDINGS_COLUMNS,
    STATEMENT_COLUMNS,
    BookRun,
    PlanBook,
    PlanContext,
    company_totals,
    contest_standings,
    incentive_awards,
    payout_outlook,
    payout_spread,
    person_payouts,
    plan_cost,
    statement_lines,
    statement_totals,
    tier_counts,
)
from spm_models.insights.incentives.modelling import COST_COLUMNS
from spm_models.insights.incentives.plan import AttainmentBonus, Commission, Plan
from spm_models.insights.incentives.planfile import check_plan_book
from spm_models.insights.incentives.statements import COMPANY_COLUMNS, TOTALS_COLUMNS
from spm_models.models.forecast import Forecast
from spm_models.review.outlook import ReviewCalendar
from spm_models.review.settings import ReviewConfig

__all__ = [
    "PLAN_TABLES",
    "EXPORT_FILES",
    "plan_tables",
    "evaluate_plans",
    "plan_outlook_row",
    "write_statement_exports",
    "plan_rules",
    "plan_payout_curve",
    "check_plans",
]

#: Artifact tables of the incentive plans and what each holds (one row per ...).
PLAN_TABLES: dict[str, str] = {
    "statements": "person, quarter and statement line (every quarter of the plan book up to the forecast quarter): "
    "inputs, rule, rate, amount so far, expected by the quarter end with its 80% range",
    "statement_totals": "person and quarter: paid so far, expected with its 80% range, draw balance",
    "plan_cost": "quarter: the company's cost of the plans, so far and (forecast quarter) expected with its range",
    "plan_outlook": "one row: the forecast quarter's cost as a distribution, its share of bookings, by component "
    "type, and the spread of payouts across people",
    "plan_tiers": "plan, commission or bonus, and band: how many people are expected to land in it, 80% range",
    "contest_standings": "contest and participant: value, rank and prize so far, expected prize, chance of a prize",
}
#: Files of the payroll export, written to ``<run>/exports/``.
EXPORT_FILES = ("statements.csv", "statements.parquet", "statement_totals.csv", "plan_cost.csv")
_SPREAD = ["person_p10", "person_median", "person_p90", "top_tenth_share"]


_TEXT = {
    "period", "status", "agent_id", "agent_name", "territory_id", "plan_id", "plan_name", "component_id",
    "component_type", "line", "rule", "measure", "plan", "label", "contest_id", "contest", "unique_id",
}  # fmt: skip


_DATES = {"period_start", "period_end", "window_start", "window_end"}


def _frame(cols) -> pd.DataFrame:
    kind = {c: "str" if c in _TEXT else "datetime64[us]" if c in _DATES else float for c in cols}
    return pd.DataFrame({c: pd.Series(dtype=k) for c, k in kind.items()})


def _empty() -> dict[str, pd.DataFrame]:
    """Every plan table with its columns and no rows (no plan configured)."""
    return {
        "statements": _frame(STATEMENT_COLUMNS),
        "statement_totals": _frame(TOTALS_COLUMNS),
        "plan_cost": _frame(COMPANY_COLUMNS),
        "plan_outlook": _frame(COST_COLUMNS + _SPREAD),
        "plan_tiers": _frame(["plan_id", "component_id", "tier", "label", "expected_people", "q10", "q90"]),
        "contest_standings": _frame(STANDINGS_COLUMNS),
    }


def check_plans(config: ReviewConfig, dataset: Dataset) -> None:
    """The settings' plan book checked against the data before any work
    (:func:`~spm_models.insights.incentives.planfile.check_plan_book`); nothing without a plan.

    Raises
    ------
    PlanFileError
        Every problem of the book against the data (exit code 2).
    """
    book = config.plan_book
    if book is not None:
        check_plan_book(book, dataset.tables)


def evaluate_plans(
    asof: Dataset, cal: ReviewCalendar, forecast: Forecast | None, book: PlanBook, *, seed: int = 0
) -> BookRun:
    """``book`` settled up to the review date and evaluated on the forecast quarter (module docstring)."""
    ctx = PlanContext(asof.tables, calendar=cal.calendar, as_of=cal.as_of, forecast=forecast, seed=seed)
    return ctx.evaluate(book, scenarios=forecast is not None)


def plan_tables(
    asof: Dataset,
    cal: ReviewCalendar,
    forecast: Forecast | None,
    config: ReviewConfig,
    people: pd.DataFrame,
    *,
    currency: str = "USD",
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame, pd.DataFrame]:
    """The plan artifacts of one review (:data:`PLAN_TABLES`), the ``commission`` table (each
    person's payout outlook, :func:`~spm_models.insights.incentives.payout_outlook`, with
    ``closed_quarter_payout`` at a quarter end) and the award rows for the recognition section.

    Owners that are not people are on no plan (:func:`~spm_models.insights.incentives.plan_segments`).
    """
    book = config.plan_book
    awards = pd.DataFrame(columns=["award", "agent_id", "agent_name", "territory_id", "text"])
    if book is None:
        return _empty(), _empty_commission(), awards
    run = evaluate_plans(asof, cal, forecast, book, seed=config.seed)
    ids = set(people["agent_id"].astype("str"))
    lines = statement_lines(run)
    totals = statement_totals(run)
    standings = contest_standings(run)
    cost = plan_outlook_row(run) if run.expected is not None else _empty()["plan_outlook"]
    tables = {
        "statements": lines,
        "statement_totals": totals,
        "plan_cost": company_totals(run),
        "plan_outlook": cost,
        "plan_tiers": tier_counts(run) if run.expected is not None else _empty()["plan_tiers"],
        "contest_standings": standings,
    }
    comm = payout_outlook(run) if run.expected is not None else _empty_commission()
    comm = comm[comm["unique_id"].isin(ids)].reset_index(drop=True)
    closed = np.nan
    if cal.quarter_closed and run.last_settled is not None:
        closed = pd.Series(run.last_settled.paid()[:, 0], index=run.last_settled.people)
        closed = closed.reindex(comm["unique_id"]).fillna(0.0).to_numpy()
    comm["closed_quarter_payout"] = closed
    awards = incentive_awards(run, standings, asof["agents"], month_end=cal.month_end, currency=currency)
    awards = awards[awards["agent_id"].isin(ids)].reset_index(drop=True)
    return tables, comm, awards


def plan_outlook_row(run: BookRun, *, label: str | None = None) -> pd.DataFrame:
    """:func:`~spm_models.insights.incentives.plan_cost` of the forecast quarter with the payout
    spread across people (:func:`~spm_models.insights.incentives.payout_spread`) beside it."""
    cost = plan_cost(run, label=label)
    for k, v in payout_spread(person_payouts(run)).items():
        cost[k] = v
    return cost


def _empty_commission() -> pd.DataFrame:
    return _frame(OUTLOOK_COLUMNS + ["closed_quarter_payout"])


def write_statement_exports(artifacts_dir: str | Path, out_dir: str | Path) -> list[Path]:
    """The payroll export of a run: its statements (CSV and Parquet), per-person totals and the
    company cost per quarter (CSV), from its artifacts (nothing when no plan is configured).

    Returns
    -------
    list of Path
        The files written.
    """
    art, out = Path(artifacts_dir), Path(out_dir)
    lines = pd.read_parquet(art / "statements.parquet")
    if not len(lines):
        return []
    return [
        write_table(lines, out / "statements.csv"),
        write_table(lines, out / "statements.parquet"),
        write_table(pd.read_parquet(art / "statement_totals.parquet"), out / "statement_totals.csv"),
        write_table(pd.read_parquet(art / "plan_cost.parquet"), out / "plan_cost.csv"),
    ]


def plan_rules(plan: Plan) -> tuple[str, ...]:
    """One plain line per component of ``plan``: its label and rule (the agent report's list)."""
    return tuple(f"{c.label}: {c.rule()}" for c in plan.components)


def plan_payout_curve(plan: Plan, quota: float, *, max_attainment: float = 2.5, points: int = 101) -> pd.DataFrame:
    """What ``plan``'s bookings-driven components (quarterly commission on bookings and bookings
    attainment bonuses) pay over a whole quarter as a function of attainment, for one quota.

    Returns
    -------
    DataFrame
        ``attainment, bookings, payout``.
    """
    a = np.linspace(0.0, max_attainment, points)
    b = a * quota
    pay = np.zeros(points)
    for c in plan.components:
        if isinstance(c, (Commission, AttainmentBonus)) and c.measure == "bookings" and c.period == "quarter":
            pay = pay + c.payout(b, np.full(points, quota))
    return pd.DataFrame({"attainment": a, "bookings": b, "payout": pay})
