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
``stage``    one of :data:`PIPELINE_STAGES`.
``outcome``  one of :data:`OUTCOMES`.
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
    "table",
]

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


@dataclass(frozen=True)
class Column:
    name: str
    kind: str
    required: bool = True  # False: the value may be empty
    unique: bool = False
    references: str | None = None  # "table.column" this value must exist in
    doc: str = ""


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    optional: bool = False  # may be absent from a source
    doc: str = ""

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
                C("close_date", "date", required=False, doc="required when won or lost"),
                C("amount", "money", required=False, doc="deal value; required when won"),
            ),
            key=("opportunity_id",),
            doc="Opportunities (deals): one row each, current state.",
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
            ),
            key=("agent_id", "territory_id", "period_start"),
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


def table(name: str) -> Table:
    """The :class:`Table` spec called ``name``."""
    return TABLES[name]
