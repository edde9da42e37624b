"""The data contract: canonical tables every source is mapped into.

One declarative spec (:data:`TABLES`) drives validation (pandera schemas built in
:mod:`spm_models.data.validation`), the DuckDB table definitions (:mod:`spm_models.data.warehouse`)
and the documentation of the canonical CSV layout (one ``<table>.csv`` per table).

Column kinds
------------
``id``       text key; not empty, no line breaks, no spreadsheet formula.
``text``     free text; no line breaks; a leading ``= + - @`` formula is flagged.
``date``     calendar date, ISO ``YYYY-MM-DD`` in canonical files.
``money``    non-negative amount in the organisation's currency.
``float``    any real number.
``count``    non-negative integer.
``flag``     yes or no (``true``/``false``, ``yes``/``no``, ``1``/``0``); an empty cell takes the
             column's ``default``.
``stage``    one of :data:`PIPELINE_STAGES`.
``outcome``  one of :data:`OUTCOMES`.

Contract versions
-----------------
Tables and columns added after the first version of the contract carry ``since`` (the
:data:`CONTRACT_VERSION` that added them). They are optional, and a dataset that leaves them
empty (or at their default) is the same data as before they existed: its
:func:`~spm_models.data.warehouse.fingerprint` does not change.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Column",
    "Table",
    "TABLES",
    "TABLE_ORDER",
    "PIPELINE_STAGES",
    "OUTCOMES",
    "FUNNEL_STAGES",
    "TARGET_METRICS",
    "CONTRACT_VERSION",
    "table",
]

#: The version of the contract; tables and columns added later say ``since``.
CONTRACT_VERSION = 2

#: Open pipeline stages in order. ``stage`` on an opportunity is the furthest of these it
#: reached (for a closed deal: the stage it closed from; null when the source does not say).
PIPELINE_STAGES: tuple[str, ...] = (
    "prospecting",
    "qualification",
    "needs_assessment",
    "proposal",
    "negotiation",
)
#: Where an opportunity stands: still open, or closed as won or lost.
OUTCOMES: tuple[str, ...] = ("open", "won", "lost")
#: The stages of the funnel for stage-to-stage conversion: the pipeline stages, then won.
FUNNEL_STAGES: tuple[str, ...] = PIPELINE_STAGES + ("won",)
#: What a target is set on: bookings (the default) or margin.
TARGET_METRICS: tuple[str, ...] = ("bookings", "margin")


@dataclass(frozen=True)
class Column:
    name: str
    kind: str
    required: bool = True  # False: the value may be empty
    unique: bool = False
    references: str | None = None  # "table.column" this value must exist in
    doc: str = ""
    since: int = 1  # contract version that added the column
    default: object = None  # typed value of an empty cell (flags)


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    optional: bool = False  # may be absent from a source
    doc: str = ""
    since: int = 1  # contract version that added the table

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


C = Column
TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table(
            "territories",
            (
                C("territory_id", "id", unique=True),
                C("territory_name", "text"),
            ),
            key=("territory_id",),
            doc="Sales territories (regions, offices).",
        ),
        Table(
            "agents",
            (
                C("agent_id", "id", unique=True),
                C("agent_name", "text"),
                C("territory_id", "id", references="territories.territory_id"),
                C("manager", "text", required=False),
                C("hire_date", "date", required=False, doc="empty: employed before the data starts"),
                C("leave_date", "date", required=False, doc="empty: still employed"),
                C(
                    "is_person",
                    "flag",
                    required=False,
                    since=2,
                    default=True,
                    doc="false for owners that are not people (unassigned, house accounts); empty: a person",
                ),
            ),
            key=("agent_id",),
            doc="Sales agents, their territory and manager, hire and leave dates.",
        ),
        Table(
            "accounts",
            (
                C("account_id", "id", unique=True),
                C("account_name", "text"),
                C("sector", "text", required=False),
            ),
            key=("account_id",),
            optional=True,
            doc="Customer accounts.",
        ),
        Table(
            "products",
            (
                C("product_id", "id", unique=True),
                C("product_name", "text"),
                C("series", "text", required=False),
                C("list_price", "money", required=False),
            ),
            key=("product_id",),
            optional=True,
            doc="Products sold.",
        ),
        Table(
            "opportunities",
            (
                C("opportunity_id", "id", unique=True),
                C("agent_id", "id", references="agents.agent_id"),
                C("account_id", "id", required=False, references="accounts.account_id"),
                C("product_id", "id", required=False, references="products.product_id"),
                C("created_date", "date", doc="created or first engaged"),
                C("stage", "stage", required=False, doc="furthest open stage reached"),
                C("outcome", "outcome"),
                C("close_date", "date", required=False, doc="required when won; a lost deal may lack it"),
                C("amount", "money", required=False, doc="deal value; required when won (bookings in money)"),
                C("cost", "money", required=False, since=2, doc="cost of the deal; margin = amount - cost"),
                C("margin", "float", required=False, since=2, doc="amount - cost, where the export states it"),
            ),
            key=("opportunity_id",),
            doc="Opportunities (deals): one row each, current state.",
        ),
        Table(
            "leads",
            (
                C("lead_id", "id", unique=True),
                C("created_date", "date", doc="created or first contact"),
                C("channel", "text", required=False, doc="channel or source the lead came from"),
                C("campaign", "text", required=False),
                C("agent_id", "id", required=False, references="agents.agent_id", doc="owner"),
                C(
                    "opportunity_id",
                    "id",
                    required=False,
                    references="opportunities.opportunity_id",
                    doc="the opportunity the lead converted to",
                ),
                C("disqualified_date", "date", required=False),
            ),
            key=("lead_id",),
            optional=True,
            since=2,
            doc="Leads (marketing-qualified or raw), their channel and the opportunity each became.",
        ),
        Table(
            "channel_spend",
            (
                C("channel", "id"),
                C("date", "date", doc="day (or period start) the spend is booked on"),
                C("spend", "money"),
            ),
            key=("channel", "date"),
            optional=True,
            since=2,
            doc="Marketing spend per lead channel, for cost per lead and per won deal.",
        ),
        Table(
            "stage_history",
            (
                C("opportunity_id", "id", references="opportunities.opportunity_id"),
                C("stage", "stage"),
                C("entered_date", "date"),
            ),
            key=("opportunity_id", "stage"),
            optional=True,
            doc="When each opportunity entered each stage, where the source records it.",
        ),
        Table(
            "activities",
            (
                C("agent_id", "id", references="agents.agent_id"),
                C("date", "date"),
                C("activity_type", "id", doc="call, email, meeting, demo, ... (lower case)"),
                C("count", "count"),
            ),
            key=("agent_id", "date", "activity_type"),
            optional=True,
            doc="Activity counts per agent, day (or week start) and type.",
        ),
        Table(
            "targets",
            (
                C("agent_id", "id", required=False, references="agents.agent_id"),
                C("territory_id", "id", required=False, references="territories.territory_id"),
                C("period_start", "date"),
                C("period_end", "date", doc="inclusive"),
                C("quota", "money"),
                C("metric", "id", required=False, since=2, doc="bookings (empty) or margin"),
            ),
            key=("agent_id", "territory_id", "period_start", "metric"),
            optional=True,
            doc="Quotas: exactly one of agent_id or territory_id per row.",
        ),
        Table(
            "indicators",
            (
                C("date", "date"),
                C("name", "id", doc="e.g. leads_web, marketing_spend, market_index"),
                C("value", "float"),
                C("territory_id", "id", required=False, references="territories.territory_id"),
            ),
            key=("name", "territory_id", "date"),
            optional=True,
            doc="Leading-indicator series: leads by channel, spend, market series.",
        ),
    )
}

#: Load order: a table only references tables before it.
TABLE_ORDER: tuple[str, ...] = tuple(TABLES)
#: Columns whose values come from a fixed list: column -> allowed values.
CHOICES: dict[tuple[str, str], tuple[str, ...]] = {("targets", "metric"): TARGET_METRICS}


def table(name: str) -> Table:
    """The :class:`Table` spec called ``name``."""
    return TABLES[name]
