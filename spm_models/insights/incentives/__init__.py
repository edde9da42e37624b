"""Incentive plans tied to KPIs: the plan book, the payout engine, statements and plan modelling.

=================  ==========================================================================
``plan``           the plan model: commission, attainment and KPI bonuses, draws, contests,
                   plans with eligibility and effective dates, assignments, the plan book
``planfile``       the TOML plan file, validated with every problem listed at once
``assign``         who is on which plan, day by day
``credits``        dated credits per measure (bookings, margin, new accounts, win rate, ...)
``projection``     draws of every measure over the rest of the quarter
``engine``         every statement line of one quarter, per scenario
``context``        one organisation at one date: settle past quarters, forecast the next
``statements``     statement lines, per-person and company totals, reconciliation
``modelling``      cost as a distribution, tier counts, plans side by side
``recognition``    contest standings and bonus results for the leaderboard and awards
``outlook``        a person's expected payout and what the next commission tier takes
``scenarios``      the review's recalibrated bookings draws a plan's cost is modelled on
``rollout``        plan books on one dataset's forecast of the quarter ahead (a draft's cost)
``backtest``       a plan's forecast cost of past quarters against what it cost
=================  ==========================================================================

The old single-commission plan (:mod:`spm_models.insights.commission`) is a
:class:`~spm_models.insights.incentives.plan.Commission` component of this model.
"""

from spm_models.insights.incentives.assign import book_data_problems, plan_segments
from spm_models.insights.incentives.backtest import COST_BACKTEST_COLUMNS, backtest_plan_cost, cost_coverage
from spm_models.insights.incentives.context import BookRun, PlanContext
from spm_models.insights.incentives.credits import CreditLedger, credit_ledger, measure_problems
from spm_models.insights.incentives.engine import QuarterResult, evaluate_quarter
from spm_models.insights.incentives.modelling import (
    compare_plans,
    cost_scenarios,
    payout_spread,
    person_payouts,
    plan_cost,
    tier_counts,
)
from spm_models.insights.incentives.outlook import OUTLOOK_COLUMNS, payout_outlook
from spm_models.insights.incentives.plan import (
    Assignment,
    AttainmentBonus,
    Commission,
    Contest,
    Draw,
    KpiBonus,
    Plan,
    PlanBook,
    Step,
    Tier,
)
from spm_models.insights.incentives.planfile import (
    PlanFileError,
    load_plan_book,
    plan_book_from_mapping,
    plan_book_to_mapping,
)
from spm_models.insights.incentives.recognition import STANDINGS_COLUMNS, contest_standings, incentive_awards
from spm_models.insights.incentives.rollout import compare_plan_files, default_as_of, plan_runs, settled_statements
from spm_models.insights.incentives.statements import (
    STATEMENT_COLUMNS,
    company_totals,
    reconcile,
    statement_lines,
    statement_totals,
)

__all__ = [
    "Tier",
    "Step",
    "Commission",
    "AttainmentBonus",
    "KpiBonus",
    "Draw",
    "Contest",
    "Plan",
    "Assignment",
    "PlanBook",
    "PlanFileError",
    "load_plan_book",
    "plan_book_from_mapping",
    "plan_book_to_mapping",
    "plan_segments",
    "book_data_problems",
    "CreditLedger",
    "credit_ledger",
    "measure_problems",
    "QuarterResult",
    "evaluate_quarter",
    "PlanContext",
    "BookRun",
    "STATEMENT_COLUMNS",
    "statement_lines",
    "statement_totals",
    "company_totals",
    "reconcile",
    "plan_cost",
    "person_payouts",
    "payout_spread",
    "tier_counts",
    "compare_plans",
    "cost_scenarios",
    "OUTLOOK_COLUMNS",
    "payout_outlook",
    "STANDINGS_COLUMNS",
    "contest_standings",
    "incentive_awards",
    "plan_runs",
    "default_as_of",
    "settled_statements",
    "compare_plan_files",
    "backtest_plan_cost",
    "cost_coverage",
    "COST_BACKTEST_COLUMNS",
]
