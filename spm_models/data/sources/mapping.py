"""Importing a CRM export without code: a small TOML mapping file says where each canonical column is.

A mapping file has a few settings shared by all files (``encoding``, ``delimiter``,
``date_format``, ``bookings_measure``, the fiscal year), then one section per canonical table
(see :mod:`spm_models.data.schemas`) naming its ``file`` and its ``columns`` (canonical column =
column in the file), with rules for what real exports need: per-row ``fix``, ``lookup`` of
columns in other files, ``replace``, a ``where`` filter, ``derive`` (SQL expressions), ``defaults``,
``drop_if_empty``, ``count_rows``, ``distinct``, per-column ``date_formats``, a whole table as a
``sql`` query, and for opportunities ``[stages]`` and ``open_amount``. The format is checked by
:mod:`~spm_models.data.sources.mapping_file`, a section is applied to its file by
:mod:`~spm_models.data.sources.mapping_rules`, and SQL runs in the
:mod:`~spm_models.data.sources.sandbox`. It is documented in ``docs/your-own-data.md``, with the
bundled Maven mapping (``spm_models/data/mappings/maven.toml``) and the funnel export of the
synthetic organisation as worked examples.

This module reads the export's files (:func:`_read_file` is the one place they are opened,
through :func:`spm_models.data.files.confine`: only regular files inside the export folder,
``..``, absolute paths and symlinks leaving it refused) and puts the tables together. Every
value stays text, and the frames go to :func:`spm_models.data.validation.validate` with a
:class:`~spm_models.data.dataset.SourceRef` per table, so a bad value is reported with the
user's own file, row and column name.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from spm_models.data.csvio import read_text_table
from spm_models.data.dataset import Dataset, SourceRef
from spm_models.data.files import confine
from spm_models.data.schemas import TABLE_ORDER, TABLES
from spm_models.data.sources.mapping_file import load_mapping
from spm_models.data.sources.mapping_rules import Section, Shaped, shape_section, text_column
from spm_models.data.sources.mapping_spec import Fix, Lookup, Mapping, StageRule, TableMapping
from spm_models.data.sources.sandbox import ROW_COLUMN, SqlError, SqlSandbox
from spm_models.exceptions import DataValidationError, Problem

__all__ = ["StageRule", "Lookup", "Fix", "TableMapping", "Mapping", "load_mapping", "read_mapped_export"]

_Cache = dict[tuple[Path, str, str], "tuple[pd.DataFrame, np.ndarray] | None"]


def read_mapped_export(mapping: str | Path | Mapping, *, folder: str | Path | None = None) -> Dataset:
    """Read a CRM export into canonical text frames as its mapping file says.

    Each section is applied to its file (:func:`~spm_models.data.sources.mapping_rules.shape_section`)
    or runs its ``sql``; then opportunity stage names are translated through
    ``[opportunities.stages]`` and open-deal amounts filled by ``open_amount``. Values are not
    parsed here; validate the result with :func:`spm_models.data.validation.validate`.

    Parameters
    ----------
    mapping : path-like or Mapping
        The mapping file (checked with :func:`load_mapping`) or an already loaded mapping.
    folder : path-like, optional
        Folder holding the export's files; defaults to the mapping file's folder. No file
        outside it is read.

    Returns
    -------
    Dataset
        One frame per mapped canonical table (text, empty cells ``None``); ``refs`` name the
        user's file, rows and columns; ``warnings`` say which rows were left out, which amounts
        were filled in, and which rules of the mapping matched nothing.

    Raises
    ------
    ConfigError
        The mapping file is wrong (see :func:`load_mapping`).
    DataValidationError
        A file is missing, unreadable or outside the export folder, a mapped column is not in
        its file, a lookup key repeats, a SQL expression or query fails, or the export has a
        stage name the mapping does not list. Every problem of every file is reported at once.
    """
    m = mapping if isinstance(mapping, Mapping) else load_mapping(mapping)
    base = Path(folder) if folder is not None else m.folder
    problems: list[Problem] = []
    warnings: list[Problem] = []
    tables: dict[str, pd.DataFrame] = {}
    refs: dict[str, SourceRef] = {}
    cache: _Cache = {}
    seen: dict[str, set[str]] = {}

    def read(file: str, encoding: str, delimiter: str, key: str):
        return _read_file(base, file, encoding, delimiter, key, m.path, cache, problems)

    with SqlSandbox() as sandbox:
        for name in TABLE_ORDER:
            tm = m.tables.get(name)
            if tm is None:
                continue
            sec = Section(tm, problems, warnings, read, sandbox, m.path.name)
            shaped = _from_sql(sec) if tm.sql is not None else _from_file(sec)
            seen[name] = sec.stage_names
            if shaped is None:
                continue
            tables[name] = shaped.frame
            refs[name] = _ref(tm, shaped)
    if problems:
        raise DataValidationError(problems)
    opp = m.tables.get("opportunities")
    if opp is not None and opp.stages:
        tables["opportunities"], problems = _translate_stages(
            opp, tables["opportunities"], refs["opportunities"], m, seen.get("opportunities", set()), warnings
        )
        if problems:
            raise DataValidationError(problems)
    if opp is not None and opp.open_amount == "list_price":
        tables["opportunities"] = _fill_open_amount(tables["opportunities"], tables["products"], opp, warnings)
    label = m.name or m.path.name
    dataset = Dataset(tables=tables, refs=refs, source=f"{label} ({base})", warnings=warnings, measure=m.measure)
    return dataset if m.calendar is None else replace(dataset, calendar=m.calendar)


def _read_file(
    base: Path,
    file: str,
    encoding: str,
    delimiter: str,
    key: str,
    mapping_path: Path,
    cache: _Cache,
    problems: list[Problem],
) -> tuple[pd.DataFrame, np.ndarray] | None:
    """The one place an export file is opened, through :func:`~spm_models.data.files.confine`:
    only regular files inside ``base`` (no absolute path, no ``..`` or symlink leading out of
    the folder, no folder, pipe or broken link), refused before anything is read."""
    path = base / file
    try:
        ident = path.resolve()
    except (OSError, RuntimeError):  # a link loop: confine names it
        ident = path
    key_ = (ident, encoding, delimiter)
    if key_ in cache:
        return cache[key_]
    result = None
    try:
        real = confine(base, file, named_by=f"named by {key} in mapping file {mapping_path.name}")
        result = read_text_table(real, encoding=encoding, delimiter=delimiter, display_name=file)
    except DataValidationError as exc:
        problems.extend(exc.problems)
    cache[key_] = result
    return result


def _from_file(sec: Section) -> Shaped | None:
    tm = sec.tm
    source = sec.read(tm.file, tm.encoding, tm.delimiter, f"{tm.table}.file")
    if source is None:
        return None
    frame, rows = source
    return shape_section(sec, frame, rows)


def _from_sql(sec: Section) -> Shaped | None:
    """A section given as one SELECT over the export's files (``sql`` and ``files``)."""
    tm = sec.tm
    first = next(iter(tm.files.values()))
    loaded = True
    for alias, file in tm.files.items():
        source = sec.read(file, tm.encoding, tm.delimiter, f"{tm.table}.files.{alias}")
        if source is None:
            loaded = False
        else:
            sec.sandbox.add(alias, source[0], source[1], file=file)
    if not loaded:
        return None
    try:
        result = sec.sandbox.query(tm.sql, key=f"{tm.table}.sql", file=first)
    except SqlError as exc:
        sec.problems.append(exc.problem)
        return None
    spec = TABLES[tm.table]
    extra = [c for c in result.columns if c not in spec.column_names and c != ROW_COLUMN]
    covered = set(result.columns) | set(tm.defaults) | ({"stage", "outcome"} if tm.stages else set())
    missing = [c.name for c in spec.columns if c.required and c.name not in covered]
    for c in extra:
        sec.problems.append(Problem(first, None, c, None, f"{tm.table}.sql gives a column that is not in the table"))
    for c in missing:
        sec.problems.append(Problem(first, None, c, None, f"{tm.table}.sql gives no {c}, which the table needs"))
    if extra or missing:
        return None
    rows = result[ROW_COLUMN].to_numpy(dtype=np.int64) if ROW_COLUMN in result else np.arange(len(result)) + 2
    cols = [c for c in spec.column_names if c in result.columns]
    frame = pd.DataFrame({c: result[c].map(_cell).astype(object) for c in cols}, columns=cols)
    # the rest of the section (defaults, not_people, drop_if_empty, count_rows, distinct) as for a file
    plain = replace(tm, file=first, columns={c: c for c in cols}, sql=None, files={})
    inner = Section(plain, sec.problems, sec.warnings, sec.read, sec.sandbox, sec.mapping_name)
    shaped = shape_section(inner, frame, rows)
    sec.stage_names = inner.stage_names
    if shaped is not None:
        dated = {c: None for c in cols if pd.api.types.is_datetime64_any_dtype(result[c].dtype)}
        shaped.date_formats = dated | shaped.date_formats
        shaped.columns = {c: f"{c} (from {tm.table}.sql)" for c in shaped.frame.columns}
    return shaped


def _cell(v) -> str | None:
    """A value of a query result as the text a file would hold (dates as ISO days)."""
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return None
    if hasattr(v, "strftime"):
        return v.strftime("%Y-%m-%d")
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    return str(v)


def _ref(tm: TableMapping, shaped: Shaped) -> SourceRef:
    columns = dict(shaped.columns)
    if tm.stages:
        columns["outcome"] = columns.get("stage", "stage")
    file = tm.file or next(iter(tm.files.values()), tm.table)
    formats = {c: tm.date_format_of(c) for c in tm.date_formats} | shaped.date_formats
    return SourceRef(file=file, rows=shaped.rows, columns=columns, date_format=tm.date_format, date_formats=formats)


# --------------------------------------------------------------------------- stages and amounts


def _translate_stages(
    tm: TableMapping, frame: pd.DataFrame, ref: SourceRef, m: Mapping, seen: set[str], warnings: list[Problem]
) -> tuple[pd.DataFrame, list[Problem]]:
    """The export's stage names -> canonical ``stage`` and ``outcome``.

    Returns the translated frame and one problem per stage name the mapping does not list
    (its exact number of rows, the first row named). A listed name that the file never holds
    (``seen``: its stage names before any row was left out) is a warning.
    """
    for name in tm.stages:
        if name not in seen:
            warnings.append(
                Problem(
                    ref.file,
                    None,
                    ref.column_of("stage"),
                    None,
                    f"[opportunities.stages] lists {name!r}, which the file never has",
                )
            )
    src = frame["stage"].str.strip()  # "Won " in a hand-edited export is still "Won"
    known = src.isin(list(tm.stages)).to_numpy()
    if not known.all():
        bad = pd.DataFrame({"value": src[~known].fillna("").to_numpy(), "row": ref.rows[~known]})
        summary = bad.groupby("value", sort=True)["row"].agg(["first", "size"])
        listed = ", ".join(repr(k) for k in tm.stages)
        problems = []
        for value, (first, size) in summary.iterrows():
            what = "no stage name" if value == "" else "a stage name the mapping does not list"
            n = int(size)
            problems.append(
                Problem(
                    ref.file,
                    int(first),
                    ref.column_of("stage"),
                    value or None,
                    f"{what} ({n:,} row{'s' if n != 1 else ''}, the first one here); add it to "
                    f"[opportunities.stages] in mapping file {m.path.name}, which lists {listed}",
                    count=n,
                )
            )
        return frame, problems
    out = frame.copy()
    out["stage"] = text_column(src.map({k: r.stage for k, r in tm.stages.items()}))
    out["outcome"] = text_column(src.map({k: r.outcome for k, r in tm.stages.items()}))
    return out, []


def _fill_open_amount(
    opps: pd.DataFrame, products: pd.DataFrame, tm: TableMapping, warnings: list[Problem]
) -> pd.DataFrame:
    """Open deals with no amount get their product's list price (``open_amount = "list_price"``)."""
    price = products.drop_duplicates("product_id").set_index("product_id")["list_price"]
    fill = (opps["outcome"] == "open") & opps["amount"].isna() & opps["product_id"].notna()
    filled = opps.loc[fill, "product_id"].map(price)
    got = filled.notna()
    if not got.any():
        warnings.append(Problem(tm.file, None, tm.columns.get("amount", "amount"), None, "open_amount filled nothing"))
        return opps
    out = opps.copy()
    amount = out["amount"].copy()
    amount[filled.index[got]] = filled[got]
    out["amount"] = text_column(amount)
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
