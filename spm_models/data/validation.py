"""Checking a :class:`~spm_models.data.dataset.Dataset` against the data contract, all at once.

:func:`validate` turns text frames (from CSV: every cell ``str`` or ``None``) or already-typed
frames (the synthetic generator) into typed canonical frames, or raises one
:class:`~spm_models.exceptions.DataValidationError` listing every problem with file, spreadsheet
row, the file's column name, the value and the rule broken.

Typed output
------------
==========================  ======================================================
kind                        dtype
==========================  ======================================================
``id``, ``text``            pandas ``str`` (missing values are NaN, the ``str`` NA)
``stage``, ``outcome``      pandas ``str``, normalised to the canonical lower-case names
``date``                    ``datetime64[us]`` (:data:`DATE_DTYPE`), midnight
``money``, ``float``        ``float64``
``count``                   ``int64``
``flag``                    ``bool`` (an empty cell takes the column's default)
==========================  ======================================================

Text is stripped of surrounding white space; an empty cell is missing. ``activity_type``
is lower-cased. Dates are parsed with :meth:`SourceRef.date_format_of` (one format per file,
or per column); ``None`` means ISO ``YYYY-MM-DD``, where an ISO date-time
(``2024-01-31T10:00:00Z``) is also accepted and its date part, as written, is kept.

Bookings measure
----------------
With bookings measured in deals (:attr:`Dataset.measure <spm_models.data.dataset.Dataset.measure>`
``"deals"``), every opportunity's ``amount`` is 1: a won deal books one deal, an open deal is
one deal of pipeline. Amounts in the export are then ignored (a warning says how many).

Spreadsheet formulas
--------------------
A text or id cell that a spreadsheet would evaluate (the rule of
:mod:`spm_models.data.formulas`: ``=...``, or ``+``, ``-``, ``@`` before anything but a plain
number) is an error by default; with ``allow_formula_text=True`` it is stored as plain text
(never evaluated) and listed in :attr:`Dataset.warnings`. Number columns are never checked.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from spm_models.calendar import date_rule, parse_dates
from spm_models.config import ProjectSettings, check_bookings_measure
from spm_models.data.dataset import Dataset, SourceRef
from spm_models.data.formulas import is_formula
from spm_models.data.plausibility import cross_table_rules, table_rules
from spm_models.data.problems import MAX_PER_RULE, ProblemCollector, sheet_rows, show_value
from spm_models.data.rules import business_rules
from spm_models.data.schemas import CHOICES, OUTCOMES, PIPELINE_STAGES, TABLE_ORDER, TABLES, Table
from spm_models.exceptions import DataValidationError, Problem

__all__ = [
    "validate",
    "DATE_DTYPE",
    "TEXT_DTYPE",
    "canonical_dtypes",
    "as_canonical_types",
    "column_schema",
    "is_formula",
    "MAX_PER_RULE",
]

#: The one resolution used for every canonical date column.
DATE_DTYPE = "datetime64[us]"
#: The pandas dtype of every text column (NaN marks a missing value).
TEXT_DTYPE = "str"
_KIND_DTYPE = {
    "id": TEXT_DTYPE,
    "text": TEXT_DTYPE,
    "stage": TEXT_DTYPE,
    "outcome": TEXT_DTYPE,
    "date": DATE_DTYPE,
    "money": "float64",
    "float": "float64",
    "count": "int64",
    "flag": "bool",
}
_TEXT_KINDS = {"id", "text", "stage", "outcome"}
_MAX_FORMULA_WARNINGS = 20
#: Text of a flag cell (lower case) -> its value.
FLAG_WORDS = {"true": True, "yes": True, "y": True, "t": True, "1": True, "false": False, "no": False, "n": False}
FLAG_WORDS |= {"f": False, "0": False}

_RULES = {
    "not_nullable": "a value is required here (the cell is empty)",
    "no_line_break": "line break inside the field; remove it in the source system",
    "no_formula": (
        "looks like a spreadsheet formula; formulas are not accepted as data (fix the cell, or "
        "ingest with --allow-formula-text to store it as plain text)"
    ),
    "nonnegative": "{col} must be zero or more",
    "whole": "{col} must be a whole number",
    "stage": "stage must be one of " + ", ".join(PIPELINE_STAGES) + " (or empty)",
    "outcome": "outcome must be one of " + ", ".join(OUTCOMES),
}


# --------------------------------------------------------------------------- public helpers


def canonical_dtypes(table: str) -> dict[str, str]:
    """Column -> pandas dtype of the typed canonical frame for ``table`` (see module doc)."""
    return {c.name: _KIND_DTYPE[c.kind] for c in TABLES[table].columns}


def as_canonical_types(table: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Cast an already-valid frame (e.g. read back from the warehouse) to the canonical dtypes.

    Parameters
    ----------
    table : str
        Canonical table name.
    frame : DataFrame
        Holds some or all canonical columns of ``table``, already valid.

    Returns
    -------
    DataFrame
        Same columns and order, with the dtypes :func:`validate` returns.
    """
    dtypes = canonical_dtypes(table)
    out = {}
    for col in frame.columns:
        s = frame[col]
        dtype = dtypes.get(col)
        if dtype == TEXT_DTYPE:
            out[col] = s.astype(TEXT_DTYPE)
        elif dtype == DATE_DTYPE:
            out[col] = pd.to_datetime(s).astype(DATE_DTYPE)
        elif dtype is not None:
            out[col] = s.astype(dtype)
        else:
            out[col] = s
    return pd.DataFrame(out, columns=list(frame.columns), index=frame.index)


# --------------------------------------------------------------------------- conversion


def _via_uniques(s: pd.Series, fn) -> pd.Series:
    """Apply the vectorised ``fn`` to the distinct values only (ids and dates repeat a lot)."""
    codes, uniques = pd.factorize(s)
    parsed = fn(pd.Series(uniques, dtype=s.dtype))
    out = parsed.to_numpy()[np.where(codes < 0, 0, codes)] if len(parsed) else np.full(len(s), np.nan)
    result = pd.Series(out, index=s.index)
    return result.where(codes >= 0)


def _isin(values: pd.Series, allowed: pd.Series) -> np.ndarray:
    """``values.isin(allowed)`` as a boolean array, hashing each distinct value once.

    pandas 3's arrow-backed ``str.isin`` converts element by element; factorising both sides
    together keeps a 4-million-row reference check to a fraction of a second.
    """
    codes, _ = pd.factorize(pd.concat([values, allowed.dropna()], ignore_index=True))
    n = len(values)
    known = np.zeros(codes.max() + 2 if len(codes) else 1, dtype=bool)
    known[codes[n:]] = True
    return known[codes[:n]] & (codes[:n] >= 0)


def _to_text(s: pd.Series) -> pd.Series:
    out = s.astype(TEXT_DTYPE).str.strip()
    return out.mask(out == "")


def _to_number(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        typed = s.astype("float64")
        return typed, pd.Series(np.isinf(typed.to_numpy()), index=s.index)
    text = _to_text(s)
    typed = _via_uniques(text, lambda u: pd.to_numeric(u, errors="coerce").astype("float64")).astype("float64")
    finite = np.isfinite(typed.to_numpy())
    return typed.where(finite), pd.Series(text.notna().to_numpy() & ~finite, index=s.index)


def _to_flag(s: pd.Series, default) -> tuple[pd.Series, pd.Series]:
    if pd.api.types.is_bool_dtype(s.dtype):
        return s.astype(bool), pd.Series(False, index=s.index)
    text = _to_text(s).str.lower()
    value = text.map(FLAG_WORDS)
    bad = text.notna() & value.isna()
    filled = value.where(value.notna(), default if default is not None else False)
    return filled.astype(bool), bad


def _coerce(spec: Table, raw: pd.DataFrame, ref: SourceRef, order: int, out: ProblemCollector):
    """Typed frame plus, per column, the mask of cells that could not be converted."""
    typed: dict[str, pd.Series] = {}
    bad: dict[str, pd.Series] = {}
    rows_n = len(raw)
    for col in spec.columns:
        s = raw[col.name]
        if col.kind == "date":
            fmt = ref.date_format_of(col.name)
            t, b = parse_dates(s, fmt=fmt)
            rule = date_rule(fmt)
        elif col.kind == "flag":
            t, b = _to_flag(s, col.default)
            rule = "expected yes or no (true/false, yes/no, 1/0), or an empty cell"
        elif col.kind in {"money", "float", "count"}:
            t, b = _to_number(s)
            rule = (
                "expected a whole number like 12"
                if col.kind == "count"
                else (
                    "expected a number like 1234.50 (digits and a decimal point only: "
                    "no currency symbol or thousands separator)"
                )
            )
        else:
            t = _to_text(s)
            if col.kind == "stage":
                t = _via_uniques(t, lambda u: u.str.lower().str.replace(r"[\s\-]+", "_", regex=True)).astype(TEXT_DTYPE)
            elif col.kind == "outcome" or col.name == "activity_type":
                t = t.str.lower()
            b = None
            rule = ""
        typed[col.name] = t
        if b is not None and b.any():
            bad[col.name] = b
            pos = np.flatnonzero(b.to_numpy())
            out.add(order, ref.file, sheet_rows(ref, rows_n, pos), ref.column_of(col.name), s.iloc[pos], rule)
    return pd.DataFrame(typed), bad


# --------------------------------------------------------------------------- pandera column checks


def _no_line_break(s: pd.Series) -> pd.Series:
    return ~(s.str.contains("\n", regex=False) | s.str.contains("\r", regex=False))


def _no_formula(s: pd.Series) -> pd.Series:
    return ~is_formula(s)


def _whole(s: pd.Series) -> pd.Series:
    return s == np.floor(s)


def column_schema(spec: Table, columns, *, allow_formula_text: bool = False) -> pa.DataFrameSchema:
    """The pandera schema of the column-level rules of ``spec`` (for typed frames).

    The ``error`` of every check is a key of the plain-words rule it stands for.
    """
    cols = {}
    for c in spec.columns:
        if c.name not in columns:
            continue
        checks = []
        if c.kind in {"id", "text"}:
            checks.append(pa.Check(_no_line_break, error="no_line_break"))
            if not allow_formula_text:
                checks.append(pa.Check(_no_formula, error="no_formula"))
        elif c.kind in {"money", "count"}:
            checks.append(pa.Check.ge(0, error="nonnegative"))
            if c.kind == "count":
                checks.append(pa.Check(_whole, error="whole"))
        elif c.kind == "stage":
            checks.append(pa.Check.isin(PIPELINE_STAGES, error="stage"))
        elif c.kind == "outcome":
            checks.append(pa.Check.isin(OUTCOMES, error="outcome"))
        if (spec.name, c.name) in CHOICES:
            checks.append(pa.Check.isin(CHOICES[spec.name, c.name], error=f"choice:{c.name}"))
        cols[c.name] = pa.Column(nullable=not c.required, checks=checks)
    return pa.DataFrameSchema(cols, strict=False)


def _column_checks(spec, typed, raw, bad, ref, order, allow_formula_text, out: ProblemCollector) -> None:
    schema = column_schema(spec, typed.columns, allow_formula_text=allow_formula_text)
    try:
        schema.validate(typed, lazy=True)
    except SchemaErrors as exc:
        fc = exc.failure_cases
        whole = fc[fc["index"].isna()]  # not expected (no dtype or presence checks), never dropped
        for rec in whole.itertuples():
            out.add(order, ref.file, [None], ref.column_of(str(rec.column)), [rec.failure_case], str(rec.check))
        fc = fc[fc["index"].notna()]
        for (column, check), grp in fc.groupby(["column", "check"], sort=False):
            pos = grp["index"].astype("int64").to_numpy()
            if column in bad:  # conversion already said what is wrong with these cells
                pos = pos[~bad[column].to_numpy()[pos]]
            pos = np.sort(pos)
            fcol = ref.column_of(column)
            rule = _RULES[check].format(col=fcol) if check in _RULES else _choice_rule(spec, str(check))
            out.add(order, ref.file, sheet_rows(ref, len(typed), pos), fcol, raw[column].iloc[pos], rule)
    if allow_formula_text:
        for c in spec.columns:
            if c.kind in {"id", "text"}:
                mask = is_formula(typed[c.name]).to_numpy()
                pos = np.flatnonzero(mask)
                out.add(
                    order,
                    ref.file,
                    sheet_rows(ref, len(typed), pos),
                    ref.column_of(c.name),
                    typed[c.name].iloc[pos],
                    "spreadsheet formula stored as plain text (it is never evaluated)",
                    cap=_MAX_FORMULA_WARNINGS,
                    warn=True,
                )


def _choice_rule(spec: Table, check: str) -> str:
    if check.startswith("choice:"):
        col = check.split(":", 1)[1]
        return f"{col} must be one of " + ", ".join(CHOICES[spec.name, col]) + " (or empty)"
    return check


# --------------------------------------------------------------------------- table and business rules


def _unique_keys(spec, typed, bad, ref, order, out: ProblemCollector) -> None:
    keys = [(c.name,) for c in spec.columns if c.unique]
    if tuple(spec.key) not in keys:
        keys.append(tuple(spec.key))
    for key in keys:
        cols = list(key)
        frame = typed[cols]
        usable = np.ones(len(frame), dtype=bool)
        for c in cols:
            if spec.column(c).required:
                usable &= frame[c].notna().to_numpy()
            if c in bad:
                usable &= ~bad[c].to_numpy()
        dup = frame.duplicated(keep="first").to_numpy() & usable
        if not dup.any():
            continue
        gid = frame.groupby(cols, sort=False, dropna=False).ngroup().to_numpy()
        first = pd.Series(np.arange(len(frame))).groupby(gid).transform("min").to_numpy()
        pos = np.flatnonzero(dup)
        also = sheet_rows(ref, len(frame), first[pos])
        fcols = [ref.column_of(c) for c in cols]
        if len(cols) == 1:
            vals = frame[cols[0]].iloc[pos]
            rules = [f"{fcols[0]} '{show_value(v)}' appears more than once (also row {r})" for v, r in zip(vals, also)]
            values = vals
        else:
            shown = [frame[c].iloc[pos].map(show_value).tolist() for c in cols]
            combos = [
                ", ".join(f"{fc}={v!r}" if v is not None else f"{fc}=(empty)" for fc, v in zip(fcols, vs))
                for vs in zip(*shown)
            ]
            rules = [f"the combination {cb} appears more than once (also row {r})" for cb, r in zip(combos, also)]
            values = None
        out.add(
            order,
            ref.file,
            sheet_rows(ref, len(frame), pos),
            ", ".join(fcols),
            values,
            rules,
            summary="the key appears more than once",
        )


def _references(name, spec, typed_tables, bad_tables, dataset, order, out: ProblemCollector) -> None:
    typed = typed_tables[name]
    ref = dataset.ref(name)
    for col in spec.columns:
        if not col.references:
            continue
        parent, parent_col = col.references.split(".")
        if parent not in typed_tables:  # absent optional table, or one that could not be checked
            continue
        if len(typed_tables[parent]) == 0 and not TABLES[parent].optional:
            continue  # already reported as empty; every row would fail
        values = typed[col.name]
        check = values.notna().to_numpy()
        if col.name in bad_tables[name]:
            check &= ~bad_tables[name][col.name].to_numpy()
        missing = check & ~_isin(values, typed_tables[parent][parent_col])
        pos = np.flatnonzero(missing)
        if len(pos) == 0:
            continue
        noun = col.name.removesuffix("_id")
        pfile = dataset.ref(parent).file
        vals = values.iloc[pos]
        out.add(
            order,
            ref.file,
            sheet_rows(ref, len(typed), pos),
            ref.column_of(col.name),
            vals,
            [f"{noun} '{v}' is not in {pfile}" for v in vals],
            summary=f"{noun} is not in {pfile}",
        )


# --------------------------------------------------------------------------- entry point


def _reporter(dataset: Dataset, raw_tables: dict, typed_tables: dict, out: ProblemCollector):
    """The ``report`` callback of :mod:`spm_models.data.plausibility`: positions -> problems or warnings."""

    def report(table, positions, column, rule, *, warn: bool = False, summary: bool = False) -> None:
        ref = dataset.ref(table)
        frame = typed_tables[table]
        positions = np.asarray(positions, dtype=np.int64)
        rows = sheet_rows(ref, len(frame), positions)
        fcol = ref.column_of(column)
        order = TABLE_ORDER.index(table)
        if summary:  # one line for all of them (a warning about many rows)
            shown = ", ".join(str(r) for r in rows[:_MAX_FORMULA_WARNINGS])
            more = " ..." if len(rows) > _MAX_FORMULA_WARNINGS else ""
            n = len(rows)
            where = f"row {shown}" if n == 1 else f"{n:,} rows: {shown}{more}"
            out.add(order, ref.file, [None], fcol, None, f"{rule} ({where})", warn=warn)
            return
        source = raw_tables[table][column] if column in raw_tables[table] else frame[column]
        out.add(order, ref.file, rows, fcol, source.iloc[positions], rule, warn=warn)

    return report


def validate(
    dataset: Dataset,
    *,
    allow_formula_text: bool = False,
    date_window: tuple | None = None,
    today: pd.Timestamp | None = None,
) -> Dataset:
    """Check ``dataset`` against the data contract and return it with typed canonical frames.

    Every rule is checked on every table before anything is raised, so one error lists all
    problems: required tables present and not empty, every canonical column present, values
    that parse as their kind, required values present, unique keys, references between tables
    (skipped for an optional table the dataset does not have), no line breaks or spreadsheet
    formulas in text, the business rules of :mod:`spm_models.data.rules` (won deals have
    a close date on or after the created date and, for bookings in money, an amount; amounts
    and counts zero or more, stages and outcomes from the canonical lists, targets for exactly
    one of agent or territory, periods and employment dates in order), and the plausibility
    rules of :mod:`spm_models.data.plausibility` (dates in a window, numbers that fit their
    types, no control characters, no overlapping targets; warnings for what is odd but
    possible). A rule broken by many rows lists the first ones and counts the rest exactly
    (:mod:`spm_models.data.problems`).

    Columns added to the contract after its first version (:attr:`Column.since
    <spm_models.data.schemas.Column>`) may be absent from the input; they are then empty.

    Parameters
    ----------
    dataset : Dataset
        Text frames (every cell ``str`` or ``None``) or typed frames, canonical column names.
    allow_formula_text : bool
        Store spreadsheet-formula cells as plain text (listed in the warnings) instead of
        rejecting them. They are never evaluated either way.
    date_window : (earliest, latest), optional
        Plausible dates (default: the project defaults,
        :attr:`spm_models.config.ProjectSettings.date_window`); see
        :mod:`spm_models.data.plausibility` for this and the other plausibility rules.
    today : Timestamp, optional
        The day after which an event date is a warning (default: today).

    Returns
    -------
    Dataset
        Same tables, refs and source, frames typed as in the module doc (RangeIndex, canonical
        column order, extra columns dropped), warnings extended.

    Raises
    ------
    DataValidationError
        With the problems found; its ``total`` is their exact number.
    """
    measure = check_bookings_measure(dataset.bookings_measure)
    out = ProblemCollector()
    typed_tables: dict[str, pd.DataFrame] = {}
    bad_tables: dict[str, dict[str, pd.Series]] = {}
    raw_tables: dict[str, pd.DataFrame] = {}
    report = _reporter(dataset, raw_tables, typed_tables, out)
    window = date_window or ProjectSettings().date_window
    for name in dataset.tables:
        if name not in TABLES:
            out.warnings.append(
                Problem(dataset.ref(name).file, None, None, None, f"'{name}' is not a canonical table; ignored")
            )
    for order, name in enumerate(TABLE_ORDER):
        spec = TABLES[name]
        ref = dataset.ref(name)
        if name not in dataset.tables:
            if not spec.optional:
                out.add(
                    order,
                    ref.file,
                    [None],
                    None,
                    None,
                    f"the {name} table is required but missing (expected {name}.csv with columns "
                    + ", ".join(spec.column_names)
                    + ")",
                )
            continue
        raw = _with_later_columns(spec, dataset.tables[name].reset_index(drop=True))
        missing = [c for c in spec.column_names if c not in raw.columns]
        for c in missing:
            out.add(order, ref.file, [None], ref.column_of(c), None, f"required column '{ref.column_of(c)}' is missing")
        extra = [c for c in raw.columns if c not in spec.column_names]
        for c in extra:
            out.warnings.append(
                Problem(ref.file, None, str(c), None, f"column is not part of the {name} table; ignored")
            )
        if missing:
            continue
        if len(raw) == 0 and not spec.optional:
            out.add(order, ref.file, [None], None, None, f"no data rows: the {name} table needs at least one row")
        typed, bad = _coerce(spec, raw, ref, order, out)
        raw_tables[name], typed_tables[name], bad_tables[name] = raw, typed, bad
        _column_checks(spec, typed, raw, bad, ref, order, allow_formula_text, out)
        table_rules(
            name, spec, typed, bad, report, window=window, rows=sheet_rows(ref, len(typed), np.arange(len(typed)))
        )
        _unique_keys(spec, typed, bad, ref, order, out)
        business_rules(name, typed, bad, ref, order, out, measure=measure)
    for order, name in enumerate(TABLE_ORDER):
        if name in typed_tables:
            _references(name, TABLES[name], typed_tables, bad_tables, dataset, order, out)
    cross_table_rules(typed_tables, bad_tables, report, today=today if today is not None else pd.Timestamp.today())
    problems = out.sorted()
    if problems:
        raise DataValidationError(problems)
    tables = {}
    for name, frame in typed_tables.items():
        for col in TABLES[name].columns:
            if col.kind == "count":
                frame[col.name] = frame[col.name].astype("int64" if col.required else "Int64")
        tables[name] = frame
    if measure == "deals" and "opportunities" in tables:
        tables["opportunities"] = _one_deal_each(tables["opportunities"], dataset.ref("opportunities"), out)
    return replace(dataset, tables=tables, refs=dict(dataset.refs), warnings=list(dataset.warnings) + out.warnings)


def _with_later_columns(spec: Table, raw: pd.DataFrame) -> pd.DataFrame:
    """``raw`` with every column added after the first contract version that it lacks, empty."""
    later = [c.name for c in spec.columns if c.since > 1 and c.name not in raw.columns]
    if not later:
        return raw
    return raw.assign(**{c: pd.Series([None] * len(raw), dtype=object, index=raw.index) for c in later})


def _one_deal_each(opps: pd.DataFrame, ref: SourceRef, out: ProblemCollector) -> pd.DataFrame:
    """Bookings counted in deals: every opportunity's amount is 1 (amounts in the data are ignored)."""
    given = opps["amount"].notna() & (opps["amount"] != 1.0)
    if given.any():
        out.warnings.append(
            Problem(
                ref.file,
                None,
                ref.column_of("amount"),
                None,
                f"{int(given.sum()):,} amounts ignored: bookings are counted in deals "
                '(bookings_measure = "deals"), so every opportunity counts as one deal',
            )
        )
    return opps.assign(amount=1.0)
