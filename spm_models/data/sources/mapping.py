"""Importing a CRM export without code: a small TOML mapping file says where each canonical column is.

A mapping file has a few settings shared by all files (``encoding``, ``delimiter``,
``date_format``), then one section per canonical table (see :mod:`spm_models.data.schemas`) naming
its ``file`` and its ``columns`` (canonical column = column in the file), with optional
``replace`` (clean known dirt), ``defaults``, ``drop_if_empty``, ``distinct`` (a table derived
from the distinct values of another file's columns), and for opportunities ``[stages]`` (the
export's stage names -> canonical stage and outcome) and ``open_amount``. The format is
documented in ``docs/your-own-data.md``, with the bundled Maven mapping
(``spm_models/data/mappings/maven.toml``) as the worked example.

This module only reads and reshapes: every value stays text, and the frames go to
:func:`spm_models.data.validation.validate` with a :class:`~spm_models.data.dataset.SourceRef` per table,
so a bad value is reported with the user's own file, row and column name.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from spm_models.calendar import Calendar, check_date_format
from spm_models.config import read_toml
from spm_models.data.csvio import read_text_table
from spm_models.data.dataset import Dataset, SourceRef
from spm_models.data.files import check_encoding, confine
from spm_models.data.schemas import OUTCOMES, PIPELINE_STAGES, TABLE_ORDER, TABLES
from spm_models.exceptions import ConfigError, DataValidationError, Problem

__all__ = ["StageRule", "TableMapping", "Mapping", "load_mapping", "read_mapped_export"]

#: Settings allowed at the top of a mapping file (besides one section per canonical table).
SETTINGS = ("name", "description", "encoding", "delimiter", "date_format", "fiscal_year_start", "fiscal_year_label")
#: Keys allowed in a table section.
TABLE_KEYS = (
    "file",
    "columns",
    "encoding",
    "delimiter",
    "date_format",
    "replace",
    "defaults",
    "drop_if_empty",
    "distinct",
    "stages",
    "open_amount",
)
#: Rules for ``open_amount``: where an open deal's missing amount comes from.
OPEN_AMOUNT_RULES = ("list_price",)
_SHOWN_ROWS = 10


@dataclass(frozen=True)
class StageRule:
    """What one stage name of the export means: a canonical stage (or none) and an outcome."""

    stage: str | None
    outcome: str


@dataclass(frozen=True)
class TableMapping:
    """How one canonical table is read from one file of the export.

    Attributes
    ----------
    table : str
        Canonical table name.
    file : str
        Source file, relative to the export folder (as written in the mapping file).
    columns : dict
        Canonical column -> column name in the file.
    encoding, delimiter : str
        How the file is read.
    date_format : str or None
        ``strptime`` format of its date columns; ``None`` is ISO ``YYYY-MM-DD``.
    replace : dict
        Column name in the file -> {value in the file: value to use}; ``""`` empties the cell.
        Keyed by the file's column so one fix reaches every canonical column fed from it.
    defaults : dict
        Canonical column -> value used where the cell is empty (or for every row when the
        column is not mapped).
    drop_if_empty : tuple of str
        Canonical columns; rows with any of them empty are left out, with a warning.
    distinct : bool
        Keep one row per distinct combination of values (tables derived from a column of
        another table's file); rows with an empty key are not entities and are skipped.
    stages : dict
        Stage name in the file -> :class:`StageRule` (``opportunities`` only).
    open_amount : str or None
        ``"list_price"``: an open deal with no amount gets its product's list price.
    """

    table: str
    file: str
    columns: dict[str, str]
    encoding: str = "utf-8"
    delimiter: str = ","
    date_format: str | None = None
    replace: dict[str, dict[str, str]] = field(default_factory=dict)
    defaults: dict[str, str] = field(default_factory=dict)
    drop_if_empty: tuple[str, ...] = ()
    distinct: bool = False
    stages: dict[str, StageRule] = field(default_factory=dict)
    open_amount: str | None = None


@dataclass(frozen=True)
class Mapping:
    """A validated mapping file: which file and column feeds each canonical table and column."""

    path: Path
    tables: dict[str, TableMapping]
    name: str = ""
    description: str = ""
    calendar: Calendar | None = None

    @property
    def folder(self) -> Path:
        """Folder the mapping's file names are relative to, unless a reader is given another."""
        return self.path.parent


# --------------------------------------------------------------------------- loading the file


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

    def known(self, key: str, value: str, allowed: tuple[str, ...] | list[str], what: str) -> bool:
        if value in allowed:
            return True
        self.error(key, f"{value!r} is not a {what}; use one of {', '.join(allowed)}")
        return False


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
        unknown canonical table or column, a stage or outcome that does not exist, or leaves a
        required canonical column unmapped. Every problem is listed, each with its key.
    """
    path = Path(path)
    doc = read_toml(path, what="mapping file")
    chk = _Checker(path)
    allowed_top = SETTINGS + TABLE_ORDER
    for key in doc:
        if key not in allowed_top:
            chk.error(
                key,
                f"unknown key; allowed are the settings {', '.join(SETTINGS)} "
                f"and one section per table: {', '.join(TABLE_ORDER)}",
            )
    shared = {
        "encoding": _encoding(chk, "encoding", doc.get("encoding", "utf-8")),
        "delimiter": _delimiter(chk, "delimiter", doc.get("delimiter", ",")),
        "date_format": _date_format(chk, "date_format", doc.get("date_format")),
    }
    tables: dict[str, TableMapping] = {}
    for name in TABLE_ORDER:
        if name in doc:
            tm = _table(chk, name, chk.table_of(name, doc[name]), shared)
            if tm is not None:
                tables[name] = tm
        elif not TABLES[name].optional:
            chk.error(name, f"missing section [{name}]: the workbench needs the {name} table")
    _cross_checks(chk, tables)
    calendar = _calendar(chk, doc)
    chk.raise_if_any()
    return Mapping(
        path=path,
        tables=tables,
        name=chk.text("name", doc.get("name", "")) or "",
        description=chk.text("description", doc.get("description", "")) or "",
        calendar=calendar,
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


def _encoding(chk: _Checker, key: str, value: Any) -> str:
    text = chk.text(key, value)
    if text is None:
        return "utf-8"
    try:
        check_encoding(text, where="encoding")
    except ConfigError as exc:
        chk.error(key, str(exc).removeprefix("encoding: "))
        return "utf-8"
    return text


def _delimiter(chk: _Checker, key: str, value: Any) -> str:
    text = chk.text(key, value)
    if text is None or len(text) != 1 or text in '"\r\n':
        if text is not None:
            chk.error(key, f'the delimiter must be one character such as ",", ";" or "\\t", found {text!r}')
        return ","
    return text


def _date_format(chk: _Checker, key: str, value: Any) -> str | None:
    if value is None:
        return None
    text = chk.text(key, value)
    if text is None:
        return None
    try:
        check_date_format(text)
    except ConfigError as exc:
        chk.error(key, str(exc))
        return None
    return text


def _table(chk: _Checker, name: str, sec: dict[str, Any], shared: dict[str, Any]) -> TableMapping | None:
    spec = TABLES[name]
    canon = spec.column_names
    for key in sec:
        if key not in TABLE_KEYS:
            chk.error(f"{name}.{key}", f"unknown key; allowed in a table section: {', '.join(TABLE_KEYS)}")
    for key in ("stages", "open_amount"):
        if key in sec and name != "opportunities":
            chk.error(f"{name}.{key}", "only the [opportunities] section can have this key")
    for key in ("file", "columns"):
        if key not in sec:
            chk.error(f"{name}.{key}", "missing required key")
    file = chk.text(f"{name}.file", sec.get("file", "")) if "file" in sec else None
    if file is not None and not file.strip():
        chk.error(f"{name}.file", "empty: give the file name, relative to the mapping file's folder")

    def columns_of(key: str) -> dict[str, Any]:
        out = {}
        for col, value in chk.table_of(f"{name}.{key}", sec.get(key, {})).items():
            if chk.known(f"{name}.{key}.{col}", col, canon, f"column of the {name} table"):
                out[col] = value
        return out

    columns = {
        c: v for c, v in ((c, chk.text(f"{name}.columns.{c}", v)) for c, v in columns_of("columns").items()) if v
    }
    defaults = {
        c: v
        for c, v in (
            (c, chk.text(f"{name}.defaults.{c}", v, allow_number=True)) for c, v in columns_of("defaults").items()
        )
        if v is not None
    }
    # replace cleans the file's own values, so it is keyed by the file's column names.
    replace: dict[str, dict[str, str]] = {}
    for col, table in chk.table_of(f"{name}.replace", sec.get("replace", {})).items():
        if col not in columns.values():
            chk.error(
                f"{name}.replace.{col}",
                "not a column this section maps; replace is keyed by the file's "
                f"column names: {', '.join(dict.fromkeys(columns.values())) or '(none mapped)'}",
            )
            continue
        pairs = chk.table_of(f"{name}.replace.{col}", table)
        replace[col] = {
            old: new
            for old, new in ((o, chk.text(f"{name}.replace.{col}.{o}", n, allow_number=True)) for o, n in pairs.items())
            if new is not None
        }
    drop = sec.get("drop_if_empty", [])
    if not isinstance(drop, list) or not all(isinstance(c, str) for c in drop):
        chk.error(f"{name}.drop_if_empty", f'expected a list of column names such as ["created_date"], found {drop!r}')
        drop = []
    drop = [c for c in drop if chk.known(f"{name}.drop_if_empty", c, canon, f"column of the {name} table")]
    distinct = sec.get("distinct", False)
    if not isinstance(distinct, bool):
        chk.error(f"{name}.distinct", f"expected true or false, found {distinct!r}")
        distinct = False
    stages = _stages(chk, f"{name}.stages", sec["stages"]) if "stages" in sec and name == "opportunities" else {}
    open_amount = None
    if "open_amount" in sec and name == "opportunities":
        open_amount = chk.text(f"{name}.open_amount", sec["open_amount"])
        if open_amount is not None and not chk.known(
            f"{name}.open_amount", open_amount, OPEN_AMOUNT_RULES, "rule for open-deal amounts"
        ):
            open_amount = None

    # Which canonical columns get values: mapped ones, defaulted ones, and stage/outcome via [stages].
    if stages:
        if "outcome" in columns:
            chk.error(f"{name}.columns.outcome", "the outcome comes from [opportunities.stages]; remove this key")
        if "stage" not in columns:
            chk.error(
                f"{name}.columns.stage",
                "missing: name the column that holds the stage names listed in [opportunities.stages]",
            )
    covered = set(columns) | set(defaults) | ({"stage", "outcome"} if stages else set())
    for col in spec.columns:
        if col.required and col.name not in covered:
            chk.error(
                f"{name}.columns.{col.name}",
                f"missing: the {name} table needs {col.name}; map it to a column of {file or 'the file'}"
                + (" or list the export's stage names in [opportunities.stages]" if col.name == "outcome" else "")
                + f" (or set defaults.{col.name})",
            )
    return TableMapping(
        table=name,
        file=file or "",
        columns=columns,
        encoding=_encoding(chk, f"{name}.encoding", sec.get("encoding", shared["encoding"])),
        delimiter=_delimiter(chk, f"{name}.delimiter", sec.get("delimiter", shared["delimiter"])),
        date_format=_date_format(chk, f"{name}.date_format", sec.get("date_format", shared["date_format"])),
        replace=replace,
        defaults=defaults,
        drop_if_empty=tuple(drop),
        distinct=distinct,
        stages=stages,
        open_amount=open_amount,
    )


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


def _cross_checks(chk: _Checker, tables: dict[str, TableMapping]) -> None:
    opp = tables.get("opportunities")
    if opp is None or opp.open_amount != "list_price":
        return
    products = tables.get("products")
    if products is None or not ({"list_price"} & (set(products.columns) | set(products.defaults))):
        chk.error("opportunities.open_amount", '"list_price" needs a [products] section that maps list_price')
    if "product_id" not in opp.columns:
        chk.error("opportunities.open_amount", '"list_price" needs opportunities.columns.product_id')


# --------------------------------------------------------------------------- reading the export


def read_mapped_export(mapping: str | Path | Mapping, *, folder: str | Path | None = None) -> Dataset:
    """Read a CRM export into canonical text frames as its mapping file says.

    Steps per table: read the file (every cell as text), keep and rename the mapped columns,
    apply ``replace``, fill ``defaults``, leave out ``drop_if_empty`` rows (warning), keep
    ``distinct`` rows; then translate opportunity stage names through ``[opportunities.stages]``
    and fill open-deal amounts by ``open_amount``. Values are not parsed here; validate the
    result with :func:`spm_models.data.validation.validate`.

    Parameters
    ----------
    mapping : path-like or Mapping
        The mapping file (checked with :func:`load_mapping`) or an already loaded mapping.
    folder : path-like, optional
        Folder holding the export's files; defaults to the mapping file's folder.

    Returns
    -------
    Dataset
        One frame per mapped canonical table, with every canonical column (text, empty cells
        ``None``); ``refs`` name the user's file, rows and columns; ``warnings`` say which rows
        were left out and which amounts were filled in.

    Raises
    ------
    ConfigError
        The mapping file is wrong (see :func:`load_mapping`).
    DataValidationError
        A file is missing or unreadable, a mapped column is not in its file, or the export has a
        stage name the mapping does not list. Every problem of every file is reported at once.
    """
    m = mapping if isinstance(mapping, Mapping) else load_mapping(mapping)
    base = Path(folder) if folder is not None else m.folder
    problems: list[Problem] = []
    warnings: list[Problem] = []
    tables: dict[str, pd.DataFrame] = {}
    refs: dict[str, SourceRef] = {}
    cache: dict[tuple[Path, str, str], tuple[pd.DataFrame, np.ndarray] | None] = {}
    for name in TABLE_ORDER:
        tm = m.tables.get(name)
        if tm is None:
            continue
        source = _read_file(tm, base, m.path, cache, problems)
        if source is None:
            continue
        frame, rows = source
        missing = [c for c in dict.fromkeys(tm.columns.values()) if c not in frame.columns]
        for col in missing:
            mapped = ", ".join(f"{name}.{k}" for k, v in tm.columns.items() if v == col)
            problems.append(
                Problem(
                    tm.file,
                    1,
                    col,
                    None,
                    f"column not found in the header, but mapping file {m.path.name} maps {mapped} to it; "
                    f"the file has: {', '.join(frame.columns)}",
                )
            )
        if missing:
            continue
        out, rows = _shape(tm, frame, rows, warnings)
        tables[name] = out
        columns = dict(tm.columns)
        if tm.stages:
            columns["outcome"] = tm.columns["stage"]
        refs[name] = SourceRef(file=tm.file, rows=rows, columns=columns, date_format=tm.date_format)
    if problems:
        raise DataValidationError(problems)
    opp = m.tables["opportunities"]
    if opp.stages:
        tables["opportunities"] = _translate_stages(
            opp, tables["opportunities"], refs["opportunities"], m.path, problems
        )
    if problems:
        raise DataValidationError(problems)
    if opp.open_amount == "list_price":
        tables["opportunities"] = _fill_open_amount(tables["opportunities"], tables["products"], opp, warnings)
    label = m.name or m.path.name
    dataset = Dataset(tables=tables, refs=refs, source=f"{label} ({base})", warnings=warnings)
    return dataset if m.calendar is None else replace(dataset, calendar=m.calendar)


def _read_file(
    tm: TableMapping,
    base: Path,
    mapping_path: Path,
    cache: dict[tuple[Path, str, str], tuple[pd.DataFrame, np.ndarray] | None],
    problems: list[Problem],
) -> tuple[pd.DataFrame, np.ndarray] | None:
    path = base / tm.file
    key = (path, tm.encoding, tm.delimiter)
    if key in cache:
        return cache[key]
    result = None
    try:
        # The one place a mapped file is opened: it must be a file inside the export folder.
        real = confine(base, tm.file, named_by=f"named by {tm.table}.file in mapping file {mapping_path.name}")
        result = read_text_table(real, encoding=tm.encoding, delimiter=tm.delimiter, display_name=tm.file)
    except DataValidationError as exc:
        problems.extend(exc.problems)
    cache[key] = result
    return result


def _rows(n: int) -> str:
    return f"{n:,} row{'s' if n != 1 else ''}"


def _text(s: pd.Series) -> pd.Series:
    """Object column of str with empty cells as ``None`` (what the validation layer reads)."""
    s = s.astype(object)
    return s.where(s.notna() & (s != ""), None)


def _shape(
    tm: TableMapping, frame: pd.DataFrame, rows: np.ndarray, warnings: list[Problem]
) -> tuple[pd.DataFrame, np.ndarray]:
    """Mapped columns -> canonical frame; replace, defaults, drop_if_empty, distinct."""
    spec = TABLES[tm.table]
    n = len(frame)
    data: dict[str, pd.Series] = {}
    cleaned: dict[str, pd.Series] = {}
    for src in dict.fromkeys(tm.columns.values()):
        s = frame[src].reset_index(drop=True)
        if src in tm.replace:
            table = tm.replace[src]
            s = s.where(~s.isin(list(table)), s.map(table))
        cleaned[src] = s
    for col in spec.column_names:
        s = cleaned[tm.columns[col]] if col in tm.columns else pd.Series([None] * n, dtype=object)
        if col in tm.defaults:
            s = s.where(s.notna() & (s != ""), tm.defaults[col])
        data[col] = _text(s)
    out = pd.DataFrame(data, columns=spec.column_names)
    keep = np.ones(n, dtype=bool)
    for col in tm.drop_if_empty:
        empty = out[col].isna().to_numpy()
        dropped = empty & keep
        if dropped.any():
            shown = ", ".join(str(r) for r in rows[dropped][:_SHOWN_ROWS])
            more = " ..." if dropped.sum() > _SHOWN_ROWS else ""
            warnings.append(
                Problem(
                    tm.file,
                    None,
                    tm.columns.get(col, col),
                    None,
                    f"{_rows(int(dropped.sum()))} left out of {tm.table} because this column is empty "
                    f"(drop_if_empty in the mapping file); rows {shown}{more}",
                )
            )
        keep &= ~empty
    if tm.distinct:
        # Rows without a key describe no entity (e.g. deals with no account); skip them.
        for col in spec.key:
            keep &= out[col].notna().to_numpy()
    out = out[keep].reset_index(drop=True)
    rows = rows[keep]
    if tm.distinct:
        first = ~out.duplicated().to_numpy()
        out = out[first].reset_index(drop=True)
        rows = rows[first]
    return out, rows


def _translate_stages(
    tm: TableMapping, frame: pd.DataFrame, ref: SourceRef, mapping_path: Path, problems: list[Problem]
) -> pd.DataFrame:
    """The export's stage names -> canonical ``stage`` and ``outcome``; unknown names are problems."""
    src = frame["stage"].str.strip()  # "Won " in a hand-edited export is still "Won"
    known = src.isin(list(tm.stages)).to_numpy()
    if not known.all():
        bad = pd.DataFrame({"value": src[~known].fillna("").to_numpy(), "row": ref.rows[~known]})
        summary = bad.groupby("value", sort=True)["row"].agg(["first", "size"])
        listed = ", ".join(repr(k) for k in tm.stages)
        for value, (first, size) in summary.iterrows():
            what = "no stage name" if value == "" else "a stage name the mapping does not list"
            problems.append(
                Problem(
                    tm.file,
                    int(first),
                    tm.columns["stage"],
                    value or None,
                    f"{what} ({_rows(int(size))}, the first one here); add it to [opportunities.stages] in "
                    f"mapping file {mapping_path.name}, which lists {listed}",
                )
            )
        return frame
    out = frame.copy()
    out["stage"] = _text(src.map({k: r.stage for k, r in tm.stages.items()}))
    out["outcome"] = _text(src.map({k: r.outcome for k, r in tm.stages.items()}))
    return out


def _fill_open_amount(
    opps: pd.DataFrame, products: pd.DataFrame, tm: TableMapping, warnings: list[Problem]
) -> pd.DataFrame:
    """Open deals with no amount get their product's list price (``open_amount = "list_price"``)."""
    price = products.drop_duplicates("product_id").set_index("product_id")["list_price"]
    fill = (opps["outcome"] == "open") & opps["amount"].isna() & opps["product_id"].notna()
    filled = opps.loc[fill, "product_id"].map(price)
    got = filled.notna()
    if not got.any():
        return opps
    out = opps.copy()
    amount = out["amount"].copy()
    amount[filled.index[got]] = filled[got]
    out["amount"] = _text(amount)
    warnings.append(
        Problem(
            tm.file,
            None,
            tm.columns.get("amount", "amount"),
            None,
            f"{int(got.sum()):,} open deal{'s' if got.sum() != 1 else ''} with no amount valued at the list price of "
            f'the product (open_amount = "list_price" in the mapping file)',
        )
    )
    return out
