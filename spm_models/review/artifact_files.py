"""What a review run's artifacts folder holds: its tables and ``run.json``.

The contract between :func:`~spm_models.review.artifacts.build_artifacts`, which writes the
folder, and :mod:`spm_models.review.views`, which report kernels read it through. It lives
apart from the builder so that a kernel server, which imports the views, does not import what
the builder needs (the warehouse, validation, the models, the indicators: about a quarter of a
CPU second per server, measured with ``python -X importtime``).
"""

from __future__ import annotations

import json
from pathlib import Path

from spm_models.review.incentives import PLAN_TABLES

__all__ = ["RUN_FILE", "TABLES", "read_run_info"]

RUN_FILE = "run.json"
#: Parquet tables of a run and what each holds (one row per ...).
TABLES: dict[str, str] = {
    "agents": "agent in the review: agent_id, agent_name, territory_id, territory_name, is_person",
    "territories": "territory: territory_id, territory_name, n_agents",
    "kpis_month": "level, entity and month: the long KPI frame (grain month)",
    "metrics": "level and entity: the scorecard numbers (scorecard.entity_metrics)",
    "scorecard": "agent and metric: value, anonymous peer quartiles and percentile",
    "benchmark": "agent, month and KPI: value and peer-group median",
    "indicators": "agent and leading indicator: this month against own history",
    "leading_indicators": (
        "candidate leading indicator of bookings (discovery once per run, agent level): its lag, how it moved, "
        "what that implies for the next weeks with an 80% range; the others with their verdict"
    ),
    "funnel": "agent and stage transition: agent, peer and company conversion, weakest",
    "outlook": (
        "level and entity: P(quota) (agents: adjusted; p_quota_raw: the model's) and attainment distribution "
        "of the forecast quarter"
    ),
    "quota_backtest": (
        "past agent-quarter: the model's P(quota) at the review's point in the quarter and whether quota was hit"
    ),
    "fan": "level, entity and week end: quantiles of cumulative quarter bookings",
    "actual_path": "level, entity and day: cumulative bookings of the quarter so far",
    "forecast_weekly": "level, entity and week: forecast quantiles",
    "fallbacks": "agent whose forecast fell back to a simpler model, and why",
    "commission": "agent: expected payout of the forecast quarter under the plans in force (every component) and its "
    "quantiles, what the next commission tier takes; at a quarter end also the final payout of the quarter that "
    "closed (closed_quarter_payout)",
    "accuracy": "level and entity: last month's forecast against what happened",
    "trend": "level and entity: bookings of the last 3 months against the 3 before",
    "territory_agents": "agent: the territory report's table",
    "key_accounts": "territory and account: bookings of the last 12 months",
    "risks": "territory and risk statement",
    "leaderboard": "rank: top agents of the company",
    "recognition": "award of the month, contest winners and leaders, bonus steps reached",
    "plan": "level, entity and month: bookings against plan, year to date",
    "coaching": "agent and point: coaching points in plain words",
    "channels": "lead channel (and all channels): leads of the last 12 months, their conversion and cost",
    "cohorts": "month of creation: opportunities (or leads) created, won by now, undecided, conversion",
    **PLAN_TABLES,
    "headline": "level and entity: the headline numbers and their change since last month (review.headline)",
    "deals_open": "open deal: stage, age, amount, chance of winning (pipeline model), expected close, rank",
    "deals_closed": "deal won or lost in the review month",
    "deals_risk": "open deal at risk (stuck or unlikely to be won), per territory, with the reason",
}


def read_run_info(artifacts_dir: str | Path) -> dict | None:
    """``run.json`` of an artifacts folder, or None when there is no complete one."""
    p = Path(artifacts_dir) / RUN_FILE
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
