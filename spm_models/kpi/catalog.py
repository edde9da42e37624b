"""The KPI catalog: every KPI the engine computes, with its kind, unit and meaning.

Reports use it to label axes and to know which KPIs may be summed (``additive``), which are
quotients of summed parts (``ratio``) and which are order statistics (``statistic``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from spm_models.kpi import activity, cohorts, cycle, deals, funnel, pipeline, quotas
from spm_models.kpi.engine import KpiEngine, KpiValues

__all__ = ["KpiSpec", "KPI_CATALOG", "KINDS", "UNITS"]

#: How a KPI behaves across levels and segments.
KINDS: tuple[str, ...] = ("additive", "ratio", "statistic")
#: Units of KPI values.
UNITS: tuple[str, ...] = ("currency", "count", "ratio", "days")


@dataclass(frozen=True)
class KpiSpec:
    """One KPI of the catalog.

    Attributes
    ----------
    name : str
        Value of the ``kpi`` column.
    function : callable
        Public function computing it from plain frames.
    kind : {"additive", "ratio", "statistic"}
        ``additive``: territory and company values are sums of agent values (sum over
        periods too, except the stock ``open_pipeline``). ``ratio``: a quotient of additive
        parts, recomputed at each level. ``statistic``: an order statistic of deals.
    unit : {"currency", "count", "ratio", "days"}
        Unit of ``value`` (``ratio`` values are fractions: 0.25 is 25 %).
    description : str
        One line for report tables and axis labels.
    tables : tuple of str
        Canonical tables it needs (besides ``agents``).
    segment : str or None
        What the ``segment`` column holds for this KPI; None when it is not split.
    holds : callable or None
        For a KPI of what only some data hold (margin): ``holds(tables)`` says whether these
        tables hold it; :func:`~spm_models.kpi.compute_kpis` computes it by default only then.
    """

    name: str
    function: Callable[..., pd.DataFrame]
    kind: str
    unit: str
    description: str
    tables: tuple[str, ...]
    segment: str | None = None
    holds: Callable[[dict[str, pd.DataFrame]], bool] | None = field(default=None, repr=False, compare=False)
    #: Internal: computes the KPI on a shared :class:`~spm_models.kpi.engine.KpiEngine`.
    evaluator: Callable[[KpiEngine], list[KpiValues]] | None = field(default=None, repr=False, compare=False)


_OPP = ("opportunities",)
_OPP_TGT = ("opportunities", "targets")


def _has_margin(tables: dict[str, pd.DataFrame]) -> bool:
    o = tables.get("opportunities")
    return o is not None and any(c in o and o[c].notna().any() for c in ("margin", "cost"))


def _has_margin_targets(tables: dict[str, pd.DataFrame]) -> bool:
    t = tables.get("targets")
    return t is not None and "metric" in t and bool((t["metric"] == "margin").any())


KPI_CATALOG: dict[str, KpiSpec] = {
    s.name: s
    for s in (
        KpiSpec(
            "bookings",
            deals.bookings,
            "additive",
            "currency",
            "Value of deals won, by close date",
            _OPP,
            evaluator=deals._eval_bookings,
        ),
        KpiSpec(
            "deals_won",
            deals.deals_won,
            "additive",
            "count",
            "Deals won, by close date",
            _OPP,
            evaluator=deals._eval_deals_won,
        ),
        KpiSpec(
            "deals_lost",
            deals.deals_lost,
            "additive",
            "count",
            "Deals lost, by close date",
            _OPP,
            evaluator=deals._eval_deals_lost,
        ),
        KpiSpec(
            "win_rate",
            deals.win_rate,
            "ratio",
            "ratio",
            "Won / (won + lost) among deals closed in the period",
            _OPP,
            evaluator=deals._eval_win_rate,
        ),
        KpiSpec(
            "average_deal_size",
            deals.average_deal_size,
            "ratio",
            "currency",
            "Bookings / deals won",
            _OPP,
            evaluator=deals._eval_average_deal_size,
        ),
        KpiSpec(
            "cycle_days_median",
            cycle.sales_cycle_days,
            "statistic",
            "days",
            "Median days from creation to close of deals won in the period",
            _OPP,
            evaluator=cycle._eval_cycle,
        ),
        KpiSpec(
            "cycle_days_p25",
            cycle.sales_cycle_days,
            "statistic",
            "days",
            "25th percentile of sales-cycle days of deals won",
            _OPP,
            evaluator=cycle._eval_cycle,
        ),
        KpiSpec(
            "cycle_days_p75",
            cycle.sales_cycle_days,
            "statistic",
            "days",
            "75th percentile of sales-cycle days of deals won",
            _OPP,
            evaluator=cycle._eval_cycle,
        ),
        KpiSpec(
            "bookings_growth",
            deals.bookings_growth,
            "ratio",
            "ratio",
            "Change of bookings over the previous period, as a fraction of it",
            _OPP,
            evaluator=deals._eval_bookings_growth,
        ),
        KpiSpec(
            "new_vs_existing_bookings",
            deals.new_vs_existing_bookings,
            "additive",
            "currency",
            "Bookings from new accounts, existing accounts, and deals without an account",
            _OPP,
            segment="account status: new, existing, unknown",
            evaluator=deals._eval_new_vs_existing,
        ),
        KpiSpec(
            "quota",
            quotas.quota,
            "additive",
            "currency",
            "Quota prorated to the period by overlapping days",
            ("targets",),
            evaluator=quotas._eval_quota,
        ),
        KpiSpec(
            "attainment",
            quotas.attainment,
            "ratio",
            "ratio",
            "Bookings / quota",
            _OPP_TGT,
            evaluator=quotas._eval_attainment,
        ),
        KpiSpec(
            "margin",
            quotas.margin_attainment,
            "additive",
            "currency",
            "Margin of deals won (amount - cost), by close date",
            _OPP,
            holds=_has_margin,
            evaluator=quotas._eval_margin,
        ),
        KpiSpec(
            "margin_quota",
            quotas.margin_quota,
            "additive",
            "currency",
            "Margin objective prorated to the period",
            ("targets",),
            holds=_has_margin_targets,
            evaluator=quotas._eval_margin_quota,
        ),
        KpiSpec(
            "margin_attainment",
            quotas.margin_attainment,
            "ratio",
            "ratio",
            "Margin / margin objective",
            _OPP_TGT,
            holds=_has_margin_targets,
            evaluator=quotas._eval_margin_attainment,
        ),
        KpiSpec(
            "opportunities_created",
            pipeline.opportunities_created,
            "additive",
            "count",
            "Opportunities created in the period",
            _OPP,
            evaluator=pipeline._eval_created,
        ),
        KpiSpec(
            "open_pipeline",
            pipeline.open_pipeline,
            "additive",
            "currency",
            "Value of opportunities open at the period start",
            _OPP,
            evaluator=pipeline._eval_open_pipeline,
        ),
        KpiSpec(
            "pipeline_coverage",
            pipeline.pipeline_coverage,
            "ratio",
            "ratio",
            "Open pipeline at the period start / quota of the period",
            _OPP_TGT,
            evaluator=pipeline._eval_coverage,
        ),
        KpiSpec(
            "cohort_conversion",
            cohorts.cohort_conversion,
            "ratio",
            "ratio",
            "Share of the opportunities created in the period that are won by now",
            _OPP,
            evaluator=cohorts._eval_cohort_conversion,
        ),
        KpiSpec(
            "cohort_undecided",
            cohorts.cohort_undecided,
            "additive",
            "count",
            "Opportunities created in the period that are still open",
            _OPP,
            evaluator=cohorts._eval_cohort_undecided,
        ),
        KpiSpec(
            "stage_conversion",
            funnel.stage_conversion,
            "ratio",
            "ratio",
            "Share of the period's new opportunities that moved on from a stage to the next",
            _OPP,
            segment="funnel transition, e.g. prospecting->qualification",
            evaluator=funnel._eval_stage_conversion,
        ),
        KpiSpec(
            "activity_volume",
            activity.activity_volume,
            "additive",
            "count",
            "Activities logged in the period",
            ("activities",),
            segment="activity type",
            evaluator=activity._eval_activity_volume,
        ),
    )
}
