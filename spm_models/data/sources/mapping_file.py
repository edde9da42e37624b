"""Reading a mapping file: TOML checked into a :class:`~spm_models.data.sources.mapping_spec.Mapping`.

Checking needs no export: every key, canonical table, column, stage, outcome, date format and
rule is checked here, and all problems are reported at once, each naming its key. What can
only be checked against the export's files (a column that is not in its file, a SQL
expression that fails) is reported by :func:`spm_models.data.sources.mapping.read_mapped_export`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from spm_models.calendar import Calendar, check_date_format
from spm_models.config import check_bookings_measure, read_toml
from spm_models.data.files import check_encoding
from spm_models.data.schemas import OUTCOMES, PIPELINE_STAGES, TABLE_ORDER, TABLES
from spm_models.data.sources.mapping_spec import (
    COUNT_COLUMNS,
    COUNT_PERIODS,
    NOT_WITH_SQL,
    OPEN_AMOUNT_RULES,
    SETTINGS,
    TABLE_KEYS,
    Fix,
    Lookup,
    Mapping,
    StageRule,
    TableMapping,
)
from spm_models.exceptions import ConfigError

__all__ = ["load_mapping"]

_ALIAS = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# --------------------------------------------------------------------------- the checker


class _Checker:
    """Collects every problem of one mapping file, so they are reported together."""

    def __init__(self, path: Path):
        self.path = path
        self.errors: list[str] = []

    def error(self, key: str, message: str) -> None:
        self.errors.append(f"key '{key}': {message}")

    def raise_if_any(self) -> None:
        if self.errors:
            n = len(self.errors)
            head = f"mapping file {self.path} has {n} problem{'s' if n != 1 else ''}:"
            raise ConfigError(head + "\n  " + "\n  ".join(self.errors))

    def text(self, key: str, value: Any, *, allow_number: bool = False) -> str | None:
        if isinstance(value, str):
            return value
        if allow_number and isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        self.error(key, f"expected text in quotes, found {value!r}")
        return None

    def table_of(self, key: str, value: Any) -> dict[str, Any]:
        if isinstance(value, dict):
            return value
        self.error(key, f'expected a table ({{ name = "value", ... }}), found {value!r}')
        return {}

    def texts(self, key: str, value: Any, *, allow_number: bool = False) -> dict[str, str]:
        """A table of texts (``{ a = "x", b = "y" }``), the bad entries reported and left out."""
        out = {}
        for k, v in self.table_of(key, value).items():
            t = self.text(f"{key}.{k}", v, allow_number=allow_number)
            if t is not None:
                out[k] = t
        return out

    def names(self, key: str, value: Any, example: str) -> list[str]:
        """A list of texts (``["a", "b"]``)."""
        if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
            self.error(key, f"expected a list of names such as [{example}], found {value!r}")
            return []
        return list(value)

    def flag(self, key: str, value: Any) -> bool:
        if isinstance(value, bool):
            return value
        self.error(key, f"expected true or false, found {value!r}")
        return False

    def known(self, key: str, value: str, allowed: tuple[str, ...] | list[str], what: str) -> bool:
        if value in allowed:
            return True
        self.error(key, f"{value!r} is not a {what}; use one of {', '.join(allowed)}")
        return False

    def encoding(self, key: str, value: Any) -> str:
        text = self.text(key, value)
        if text is None:
            return "utf-8"
        try:
            check_encoding(text, where="encoding")
        except ConfigError as exc:
            self.error(key, str(exc).removeprefix("encoding: "))
            return "utf-8"
        return text

    def delimiter(self, key: str, value: Any) -> str:
        text = self.text(key, value)
        if text is None or len(text) != 1 or text in '"\r\n':
            if text is not None:
                self.error(key, f'the delimiter must be one character such as ",", ";" or "\\t", found {text!r}')
            return ","
        return text

    def date_format(self, key: str, value: Any) -> str | None:
        if value is None:
            return None
        text = self.text(key, value)
        if text is None or text.strip().lower() == "iso":
            return None
        try:
            check_date_format(text)
        except ConfigError as exc:
            self.error(key, str(exc))
            return None
        return text


# --------------------------------------------------------------------------- the file


def load_mapping(path: str | Path) -> Mapping:
    """Read and check a mapping file.

    Parameters
    ----------
    path : path-like
        The ``.toml`` mapping file.

    Returns
    -------
    Mapping

    Raises
    ------
    ConfigError
        The file is missing or not TOML, or has unknown keys, misses required keys, names an
        unknown canonical table or column, a stage or outcome that does not exist, a date
        format that cannot read dates, a rule in the wrong section, or leaves a required
        canonical column unmapped. Every problem is listed, each with its key.
    """
    path = Path(path)
    doc = read_toml(path, what="mapping file")
    chk = _Checker(path)
    for key in doc:
        if key not in SETTINGS + TABLE_ORDER:
            chk.error(
                key,
                f"unknown key; allowed are the settings {', '.join(SETTINGS)} "
                f"and one section per table: {', '.join(TABLE_ORDER)}",
            )
    shared = {
        "encoding": chk.encoding("encoding", doc.get("encoding", "utf-8")),
        "delimiter": chk.delimiter("delimiter", doc.get("delimiter", ",")),
        "date_format": chk.date_format("date_format", doc.get("date_format")),
    }
    tables: dict[str, TableMapping] = {}
    for name in TABLE_ORDER:
        if name in doc:
            tables[name] = _table(chk, name, chk.table_of(name, doc[name]), shared)
        elif not TABLES[name].optional:
            chk.error(name, f"missing section [{name}]: the workbench needs the {name} table")
    _cross_checks(chk, tables)
    calendar = _calendar(chk, doc)
    measure = None
    if "bookings_measure" in doc:
        try:
            measure = check_bookings_measure(doc["bookings_measure"])
        except ConfigError as exc:
            chk.error("bookings_measure", str(exc))
    chk.raise_if_any()
    return Mapping(
        path=path,
        tables=tables,
        name=chk.text("name", doc.get("name", "")) or "",
        description=chk.text("description", doc.get("description", "")) or "",
        calendar=calendar,
        measure=measure,
    )


def _calendar(chk: _Checker, doc: dict[str, Any]) -> Calendar | None:
    """The export's fiscal year (``fiscal_year_start``, ``fiscal_year_label``), or None when not set."""
    if "fiscal_year_start" not in doc and "fiscal_year_label" not in doc:
        return None
    try:
        return Calendar(doc.get("fiscal_year_start", 1), doc.get("fiscal_year_label", "end"))
    except ConfigError as exc:
        chk.error("fiscal_year_start" if "fiscal_year_start" in str(exc) else "fiscal_year_label", str(exc))
        return None


# --------------------------------------------------------------------------- one section


def _table(chk: _Checker, name: str, sec: dict[str, Any], shared: dict[str, Any]) -> TableMapping:
    """One table section, checked (its problems are added to ``chk``)."""
    _section_keys(chk, name, sec)
    canon = TABLES[name].column_names
    encoding = chk.encoding(f"{name}.encoding", sec.get("encoding", shared["encoding"]))
    delimiter = chk.delimiter(f"{name}.delimiter", sec.get("delimiter", shared["delimiter"]))
    sql, files = _sql(chk, name, sec)
    file = ""
    if sql is None and "file" in sec:
        file = chk.text(f"{name}.file", sec["file"]) or ""
        if not file.strip():
            chk.error(f"{name}.file", "empty: give the file name, relative to the mapping file's folder")
    columns = _canonical(chk, name, "columns", sec, canon)
    lookups = _lookups(chk, name, sec.get("lookup", []), encoding, delimiter)
    source_columns = set(columns.values()) | {c for lk in lookups for c in lk.take}
    tm = TableMapping(
        table=name,
        file=file,
        columns=columns,
        encoding=encoding,
        delimiter=delimiter,
        date_format=chk.date_format(f"{name}.date_format", sec.get("date_format", shared["date_format"])),
        date_formats=_date_formats(chk, name, sec.get("date_formats", {})),
        fixes=_fixes(chk, name, sec.get("fix", [])),
        lookups=lookups,
        replace=_replace(chk, name, sec.get("replace", {}), source_columns),
        where=chk.text(f"{name}.where", sec["where"]) if "where" in sec else None,
        derive=_canonical(chk, name, "derive", sec, canon),
        defaults=_canonical(chk, name, "defaults", sec, canon, allow_number=True),
        drop_if_empty=tuple(
            c
            for c in chk.names(f"{name}.drop_if_empty", sec.get("drop_if_empty", []), '"created_date"')
            if chk.known(f"{name}.drop_if_empty", c, canon, f"column of the {name} table")
        ),
        count_rows=chk.flag(f"{name}.count_rows", sec["count_rows"]) if "count_rows" in sec else False,
        count_period=_count_period(chk, name, sec),
        distinct=chk.flag(f"{name}.distinct", sec["distinct"]) if "distinct" in sec else False,
        stages=_stages(chk, f"{name}.stages", sec["stages"]) if "stages" in sec and name == "opportunities" else {},
        open_amount=_open_amount(chk, name, sec),
        not_people=tuple(chk.names(f"{name}.not_people", sec.get("not_people", []), '"unassigned"')),
        sql=sql,
        files=files,
    )
    _coverage(chk, tm)
    return tm


def _section_keys(chk: _Checker, name: str, sec: dict[str, Any]) -> None:
    """Unknown keys, keys of another table's section, keys that do not go with ``sql``."""
    for key in sec:
        if key not in TABLE_KEYS:
            chk.error(f"{name}.{key}", f"unknown key; allowed in a table section: {', '.join(TABLE_KEYS)}")
    only = {"stages": "opportunities", "open_amount": "opportunities", "not_people": "agents"}
    for key, table in only.items():
        if key in sec and name != table:
            chk.error(f"{name}.{key}", f"only the [{table}] section can have this key")
    for key in ("count_rows", "count_period"):
        if key in sec and name not in COUNT_COLUMNS:
            chk.error(f"{name}.{key}", f"only rows of {' and '.join(COUNT_COLUMNS)} can be counted")
    if "sql" in sec:
        for key in NOT_WITH_SQL:
            if key in sec:
                chk.error(f"{name}.{key}", "a section with sql gets every column from its query; remove this key")
    elif "file" not in sec:
        chk.error(f"{name}.file", "missing required key (or give the table as a query: sql and files)")
    elif "columns" not in sec and "derive" not in sec and "defaults" not in sec:
        chk.error(f"{name}.columns", "missing required key")


def _sql(chk: _Checker, name: str, sec: dict[str, Any]) -> tuple[str | None, dict[str, str]]:
    """``sql`` and its ``files`` (name in the query -> file)."""
    if "sql" not in sec:
        if "files" in sec:
            chk.error(f"{name}.files", "files name the files a sql query reads; add sql or remove files")
        return None, {}
    sql = chk.text(f"{name}.sql", sec["sql"])
    files = chk.texts(f"{name}.files", sec.get("files", {}))
    if "files" not in sec or not files:
        chk.error(f"{name}.files", 'name the files the query reads, e.g. files = { leads = "leads.csv" }')
    for alias in files:
        if not _ALIAS.match(alias):
            chk.error(f"{name}.files.{alias}", "a name used in sql: letters, digits and _, not starting with a digit")
    return sql, files


def _canonical(
    chk: _Checker, name: str, key: str, sec: dict[str, Any], canon: list[str], *, allow_number: bool = False
) -> dict[str, str]:
    """A table keyed by canonical columns of ``name`` (columns, derive, defaults)."""
    out = {}
    for col, value in chk.texts(f"{name}.{key}", sec.get(key, {}), allow_number=allow_number).items():
        if chk.known(f"{name}.{key}.{col}", col, canon, f"column of the {name} table") and (value or key == "defaults"):
            out[col] = value
    return out


def _date_formats(chk: _Checker, name: str, value: Any) -> dict[str, str | None]:
    dates = [c.name for c in TABLES[name].columns if c.kind == "date"]
    out = {}
    for col, fmt in chk.table_of(f"{name}.date_formats", value).items():
        key = f"{name}.date_formats.{col}"
        if chk.known(key, col, dates, f"date column of the {name} table"):
            out[col] = chk.date_format(key, fmt)
    return out


def _replace(chk: _Checker, name: str, value: Any, source_columns: set[str]) -> dict[str, dict[str, str]]:
    """``replace`` cleans the file's own values, so it is keyed by the file's column names."""
    out: dict[str, dict[str, str]] = {}
    for col, table in chk.table_of(f"{name}.replace", value).items():
        if col not in source_columns:
            chk.error(
                f"{name}.replace.{col}",
                "not a column this section maps; replace is keyed by the file's "
                f"column names: {', '.join(sorted(source_columns)) or '(none mapped)'}",
            )
            continue
        out[col] = chk.texts(f"{name}.replace.{col}", table, allow_number=True)
    return out


def _entries(chk: _Checker, key: str, value: Any) -> list[tuple[str, dict[str, Any]]]:
    """An array of tables (``[[leads.fix]]``), or one table, with the key of each entry."""
    items = [value] if isinstance(value, dict) else value
    if not isinstance(items, list):
        chk.error(key, f"expected a list of tables ([[{key}]] entries), found {value!r}")
        return []
    return [(f"{key}[{i}]", chk.table_of(f"{key}[{i}]", item)) for i, item in enumerate(items, start=1)]


def _lookups(chk: _Checker, name: str, value: Any, encoding: str, delimiter: str) -> tuple[Lookup, ...]:
    out = []
    for key, entry in _entries(chk, f"{name}.lookup", value):
        for extra in set(entry) - {"file", "on", "take", "encoding", "delimiter"}:
            chk.error(f"{key}.{extra}", "unknown key; a lookup has file, on, take, encoding and delimiter")
        for need in ("file", "on", "take"):
            if need not in entry:
                chk.error(f"{key}.{need}", "missing required key")
        take = entry.get("take", {})
        take = {c: c for c in chk.names(f"{key}.take", take, '"rep id"')} if isinstance(take, list) else take
        out.append(
            Lookup(
                key=key,
                file=chk.text(f"{key}.file", entry.get("file", "")) or "",
                on=chk.texts(f"{key}.on", entry.get("on", {})),
                take=chk.texts(f"{key}.take", take),
                encoding=chk.encoding(f"{key}.encoding", entry.get("encoding", encoding)),
                delimiter=chk.delimiter(f"{key}.delimiter", entry.get("delimiter", delimiter)),
            )
        )
        if "on" in entry and not out[-1].on:
            chk.error(f"{key}.on", 'name at least one key column: { "this file\'s column" = "the other file\'s" }')
    return tuple(out)


def _fixes(chk: _Checker, name: str, value: Any) -> tuple[Fix, ...]:
    out = []
    for key, entry in _entries(chk, f"{name}.fix", value):
        for extra in set(entry) - {"row", "match", "set", "drop"}:
            chk.error(f"{key}.{extra}", "unknown key; a fix has row or match, then set or drop")
        row = entry.get("row")
        if ("row" in entry) == ("match" in entry):
            chk.error(key, "give exactly one of row (a row number) or match (the values of the row)")
        elif row is not None and (isinstance(row, bool) or not isinstance(row, int) or row < 2):
            chk.error(f"{key}.row", f"a spreadsheet row number, 2 or more (the header is row 1), found {row!r}")
            row = None
        drop = chk.flag(f"{key}.drop", entry["drop"]) if "drop" in entry else False
        if ("set" in entry) == drop:
            chk.error(key, "give exactly one of set (the cells to change) or drop = true")
        match = chk.texts(f"{key}.match", entry.get("match", {}), allow_number=True)
        out.append(Fix(key, row, match, chk.texts(f"{key}.set", entry.get("set", {}), allow_number=True), drop))
    return tuple(out)


def _count_period(chk: _Checker, name: str, sec: dict[str, Any]) -> str | None:
    if "count_period" not in sec:
        return None
    value = chk.text(f"{name}.count_period", sec["count_period"])
    if value is None or not chk.known(f"{name}.count_period", value, COUNT_PERIODS, "counting period"):
        return None
    if sec.get("count_rows") is not True:
        chk.error(f"{name}.count_period", "goes with count_rows = true")
    return value


def _open_amount(chk: _Checker, name: str, sec: dict[str, Any]) -> str | None:
    if "open_amount" not in sec or name != "opportunities":
        return None
    value = chk.text(f"{name}.open_amount", sec["open_amount"])
    if value is not None and chk.known(f"{name}.open_amount", value, OPEN_AMOUNT_RULES, "rule for open-deal amounts"):
        return value
    return None


def _stages(chk: _Checker, key: str, value: Any) -> dict[str, StageRule]:
    out: dict[str, StageRule] = {}
    entries = chk.table_of(key, value)
    if not entries and isinstance(value, dict):
        chk.error(key, "list at least one stage name of the export")
    for source_name, rule in entries.items():
        k = f"{key}.{source_name}"
        rule = chk.table_of(k, rule)
        for extra in set(rule) - {"stage", "outcome"}:
            chk.error(f"{k}.{extra}", "unknown key; a stage entry has stage and outcome")
        if "outcome" not in rule:
            chk.error(f"{k}.outcome", f"missing: is {source_name!r} an open, won or lost deal?")
            continue
        outcome = chk.text(f"{k}.outcome", rule["outcome"])
        stage = chk.text(f"{k}.stage", rule["stage"]) if "stage" in rule else None
        ok = outcome is not None and chk.known(f"{k}.outcome", outcome, OUTCOMES, "deal outcome")
        if stage is not None:
            ok = chk.known(f"{k}.stage", stage, PIPELINE_STAGES, "pipeline stage") and ok
        if ok:
            out[source_name] = StageRule(stage=stage, outcome=outcome)
    return out


def _coverage(chk: _Checker, tm: TableMapping) -> None:
    """Every required canonical column gets values, and from one rule only."""
    name = tm.table
    for col in set(tm.columns) & set(tm.derive):
        chk.error(f"{name}.derive.{col}", "this column is also in columns; give it one source")
    if tm.stages:
        for key in ("columns", "derive"):
            if "outcome" in getattr(tm, key):
                chk.error(f"{name}.{key}.outcome", "the outcome comes from [opportunities.stages]; remove this key")
        if "stage" not in tm.columns and "stage" not in tm.derive and tm.sql is None:
            chk.error(
                f"{name}.columns.stage",
                "missing: name the column that holds the stage names listed in [opportunities.stages]",
            )
    count_col = COUNT_COLUMNS.get(name) if tm.count_rows else None
    if count_col and (count_col in tm.columns or count_col in tm.derive):
        chk.error(f"{name}.columns.{count_col}", "count_rows puts the number of rows here; do not map it")
    if tm.sql is not None:
        return  # the query's columns are known when it runs
    covered = set(tm.columns) | set(tm.derive) | set(tm.defaults) | ({"stage", "outcome"} if tm.stages else set())
    covered |= {count_col} if count_col else set()
    for col in TABLES[name].columns:
        if col.required and col.name not in covered:
            chk.error(
                f"{name}.columns.{col.name}",
                f"missing: the {name} table needs {col.name}; map it to a column of {tm.file or 'the file'}"
                + (" or list the export's stage names in [opportunities.stages]" if col.name == "outcome" else "")
                + f" (or derive it, or set defaults.{col.name})",
            )


def _cross_checks(chk: _Checker, tables: dict[str, TableMapping]) -> None:
    opp = tables.get("opportunities")
    if opp is None or opp.open_amount != "list_price":
        return
    products = tables.get("products")
    if products is None or not ({"list_price"} & (set(products.columns) | set(products.defaults))):
        chk.error("opportunities.open_amount", '"list_price" needs a [products] section that maps list_price')
    if "product_id" not in opp.columns:
        chk.error("opportunities.open_amount", '"list_price" needs opportunities.columns.product_id')
