"""Sales KPIs per agent, territory and company, as one long ("tidy") frame.

Pure functions over typed canonical tables (:mod:`spm_models.data.schemas`): nothing here reads
files, the warehouse or the network. :func:`compute_kpis` computes the whole
:data:`KPI_CATALOG` at once; each KPI also has its own function taking the plain frames it
needs, e.g. ``bookings(opportunities, agents, grain="quarter")``.

Output frame
------------
One row per level, entity, period, KPI and segment:

=============  ==========================================================================
column         meaning
=============  ==========================================================================
``level``      ``"agent"``, ``"territory"`` or ``"company"``
``entity_id``  agent_id, territory_id, or ``"company"``
``grain``      ``"week"``, ``"month"`` or ``"quarter"``
``period``     period start, ``datetime64[us]``; weeks start on Monday
``kpi``        KPI name, a key of :data:`KPI_CATALOG`
``segment``    the split of a segmented KPI (activity type, funnel transition such as
               ``"proposal->negotiation"``, or ``"new"``/``"existing"``/``"unknown"``
               account); ``""`` (never missing) for KPIs that are not split
``value``      float64; NaN where a ratio or statistic is undefined (nothing to divide by)
=============  ==========================================================================

Text columns are categorical (dictionary-encoded: integer codes into a sorted vocabulary of
``str``), so a 5,000-agent weekly frame of 18 million rows spends one or two bytes a row on
each instead of a string; they compare, filter, group and sort like ``str`` columns
(``frame["kpi"] == "bookings"``), and ``.astype("str")`` gives plain text back. Rows come
ordered by KPI (catalog order, or the order asked for), then level, entity, period and segment.

Which rows exist
----------------
- Periods: every period overlapping the reporting span: ``start``/``end``, by default from
  the first close (won or lost) or activity to the last date in the data. Additive KPIs
  are 0 where nothing happened, never missing.
- Agents: every period overlapping the agent's employment (``hire_date`` to ``leave_date``,
  an empty date meaning before the data / still employed), plus any other period in which
  the agent has something to count for that KPI (a deal closed after the leave date, a
  quota, open pipeline), so that no activity is dropped.
- Territories and the company: every period. A territory is any ``territory_id`` of the
  agents table or of a territory-level target. An agent's territory is the one in the
  agents table (current assignment; history is not tracked).

Additive KPIs at territory and company level equal the sum of their agents' rows (quota:
see :mod:`spm_models.kpi.quotas` for territory-level targets); ratios are recomputed at each
level from the summed numerator and denominator, never averaged; order statistics (sales
cycle) are computed from the deals of the entity.
"""

from spm_models.kpi.activity import activity_volume
from spm_models.kpi.catalog import KINDS, KPI_CATALOG, UNITS, KpiSpec
from spm_models.kpi.cohorts import cohort_conversion, cohort_undecided
from spm_models.kpi.compute import compute_kpis, kpi_columns
from spm_models.kpi.cycle import CYCLE_KPIS, sales_cycle_days
from spm_models.kpi.deals import (
    ACCOUNT_SEGMENTS,
    average_deal_size,
    bookings,
    bookings_growth,
    deals_lost,
    deals_won,
    new_vs_existing_bookings,
    win_rate,
)
from spm_models.kpi.engine import OUTPUT_COLUMNS
from spm_models.kpi.funnel import TRANSITIONS, stage_conversion
from spm_models.kpi.grid import COMPANY, LEVELS
from spm_models.kpi.pipeline import open_pipeline, opportunities_created, pipeline_coverage
from spm_models.kpi.quotas import attainment, margin_attainment, margin_quota, quota

__all__ = [
    "compute_kpis",
    "kpi_columns",
    "KPI_CATALOG",
    "KpiSpec",
    "KINDS",
    "UNITS",
    "LEVELS",
    "COMPANY",
    "OUTPUT_COLUMNS",
    "ACCOUNT_SEGMENTS",
    "TRANSITIONS",
    "CYCLE_KPIS",
    "bookings",
    "deals_won",
    "deals_lost",
    "win_rate",
    "average_deal_size",
    "bookings_growth",
    "new_vs_existing_bookings",
    "sales_cycle_days",
    "quota",
    "attainment",
    "opportunities_created",
    "open_pipeline",
    "pipeline_coverage",
    "stage_conversion",
    "activity_volume",
    "cohort_conversion",
    "cohort_undecided",
    "margin_quota",
    "margin_attainment",
]
