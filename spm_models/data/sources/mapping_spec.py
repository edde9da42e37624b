"""What a mapping file says: its settings and sections as checked, immutable values.

:func:`spm_models.data.sources.mapping_file.load_mapping` reads a TOML mapping file into a
:class:`Mapping`; :mod:`spm_models.data.sources.mapping_rules` applies each
:class:`TableMapping` to its file. The format is documented in ``docs/your-own-data.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from spm_models.calendar import Calendar

__all__ = [
    "StageRule",
    "Lookup",
    "Fix",
    "TableMapping",
    "Mapping",
    "SETTINGS",
    "TABLE_KEYS",
    "COUNT_COLUMNS",
    "COUNT_PERIODS",
    "NOT_WITH_SQL",
    "OPEN_AMOUNT_RULES",
]

#: Settings allowed at the top of a mapping file (besides one section per canonical table).
SETTINGS = (
    "name",
    "description",
    "encoding",
    "delimiter",
    "date_format",
    "fiscal_year_start",
    "fiscal_year_label",
    "bookings_measure",
)
#: Keys allowed in a table section.
TABLE_KEYS = (
    "file",
    "columns",
    "encoding",
    "delimiter",
    "date_format",
    "date_formats",
    "fix",
    "lookup",
    "replace",
    "where",
    "derive",
    "defaults",
    "drop_if_empty",
    "count_rows",
    "count_period",
    "distinct",
    "stages",
    "open_amount",
    "not_people",
    "sql",
    "files",
)
#: Keys a section that is one SQL query (``sql``) cannot have: the query does their work.
NOT_WITH_SQL = ("file", "columns", "fix", "lookup", "replace", "where", "derive")
#: Rules for ``open_amount``: where an open deal's missing amount comes from.
OPEN_AMOUNT_RULES = ("list_price",)
#: Tables whose rows may be counted (``count_rows``) and the column that gets the count.
COUNT_COLUMNS = {"indicators": "value", "activities": "count"}
#: Periods dates are moved to the start of before rows are counted (``count_period``).
COUNT_PERIODS = ("day", "week", "month")


@dataclass(frozen=True)
class StageRule:
    """What one stage name of the export means: a canonical stage (or none) and an outcome."""

    stage: str | None
    outcome: str


@dataclass(frozen=True)
class Lookup:
    """Columns taken from another file of the export, joined on key columns (``lookup``).

    Attributes
    ----------
    key : str
        Where it is in the mapping file (``leads.lookup[1]``), for messages.
    file : str
        The other file, relative to the export folder.
    on : dict
        Column of this section's file -> column of the other file; rows match when all are equal.
    take : dict
        New column name (usable in ``columns``, ``derive`` and ``where``) -> column of the other file.
    encoding, delimiter : str
        How the other file is read.
    """

    key: str
    file: str
    on: dict[str, str]
    take: dict[str, str]
    encoding: str = "utf-8"
    delimiter: str = ","


@dataclass(frozen=True)
class Fix:
    """A fix of one row of the export (``fix``): found by its row number or by values, then
    some cells set, or the row left out.

    Attributes
    ----------
    key : str
        Where it is in the mapping file (``leads.fix[2]``), for messages.
    row : int or None
        Spreadsheet row number in the file (the header is row 1).
    match : dict
        Column -> value; every row with all of them is fixed.
    set : dict
        Column -> new value (``""`` empties the cell).
    drop : bool
        Leave the row out.
    """

    key: str
    row: int | None = None
    match: dict[str, str] = field(default_factory=dict)
    set: dict[str, str] = field(default_factory=dict)
    drop: bool = False


@dataclass(frozen=True)
class TableMapping:
    """How one canonical table is read from the export (one section of the mapping file).

    Attributes
    ----------
    table : str
        Canonical table name.
    file : str
        Source file, relative to the export folder (``""`` for a ``sql`` section).
    columns : dict
        Canonical column -> column name in the file (or a column taken by a lookup).
    encoding, delimiter : str
        How the file is read.
    date_format : str or None
        ``strptime`` format of its date columns; ``None`` is ISO ``YYYY-MM-DD``.
    date_formats : dict
        Canonical date column -> its own format (``None``: ISO), where it differs.
    fixes : tuple of Fix
        Per-row fixes, applied first.
    lookups : tuple of Lookup
        Joins to other files of the export.
    replace : dict
        Column name in the file -> {value in the file: value to use}; ``""`` empties the cell.
        Keyed by the file's column so one fix reaches every canonical column fed from it.
    where : str or None
        SQL condition on the file's columns; rows where it is not true are left out.
    derive : dict
        Canonical column -> SQL expression over the file's columns.
    defaults : dict
        Canonical column -> value used where the cell is empty (or for every row when the
        column is not mapped).
    drop_if_empty : tuple of str
        Canonical columns; rows with any of them empty are left out, with a warning.
    count_rows : bool
        One row per distinct combination of the other columns, holding the number of rows
        (``indicators.value``, ``activities.count``).
    count_period : str or None
        ``"week"`` or ``"month"``: dates move to their period's start before counting.
    distinct : bool
        Keep one row per distinct combination of values (tables derived from a column of
        another table's file); rows with an empty key are not entities and are skipped.
    stages : dict
        Stage name in the file -> :class:`StageRule` (``opportunities`` only).
    open_amount : str or None
        ``"list_price"``: an open deal with no amount gets its product's list price.
    not_people : tuple of str
        Agent ids that are not people (``agents`` only): their ``is_person`` is false.
    sql : str or None
        One SELECT over the export's files (``files``) giving the canonical columns.
    files : dict
        Name used in ``sql`` -> file of the export.
    """

    table: str
    file: str
    columns: dict[str, str]
    encoding: str = "utf-8"
    delimiter: str = ","
    date_format: str | None = None
    date_formats: dict[str, str | None] = field(default_factory=dict)
    fixes: tuple[Fix, ...] = ()
    lookups: tuple[Lookup, ...] = ()
    replace: dict[str, dict[str, str]] = field(default_factory=dict)
    where: str | None = None
    derive: dict[str, str] = field(default_factory=dict)
    defaults: dict[str, str] = field(default_factory=dict)
    drop_if_empty: tuple[str, ...] = ()
    count_rows: bool = False
    count_period: str | None = None
    distinct: bool = False
    stages: dict[str, StageRule] = field(default_factory=dict)
    open_amount: str | None = None
    not_people: tuple[str, ...] = ()
    sql: str | None = None
    files: dict[str, str] = field(default_factory=dict)

    def date_format_of(self, column: str) -> str | None:
        """The format of date column ``column`` as written in the export."""
        return self.date_formats.get(column, self.date_format)


@dataclass(frozen=True)
class Mapping:
    """A validated mapping file: which file and column feeds each canonical table and column."""

    path: Path
    tables: dict[str, TableMapping]
    name: str = ""
    description: str = ""
    calendar: Calendar | None = None
    measure: str | None = None

    @property
    def folder(self) -> Path:
        """Folder the mapping's file names are relative to, unless a reader is given another."""
        return self.path.parent
