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
==========================  ======================================================

Text is stripped of surrounding white space; an empty cell is missing. ``activity_type``
is lower-cased. Dates are parsed with :attr:`SourceRef.date_format`; ``None`` means ISO
``YYYY-MM-DD``, where an ISO date-time (``2024-01-31T10:00:00Z``) is also accepted and its
date part, as written, is kept.

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
from spm_models.config import ProjectSettings
from spm_models.data.dataset import Dataset, SourceRef
from spm_models.data.formulas import is_formula
from spm_models.data.plausibility import cross_table_rules, table_rules
from spm_models.data.schemas import OUTCOMES, PIPELINE_STAGES, TABLE_ORDER, TABLES, Table
from spm_models.exceptions import DataValidationError, Problem

__all__ = [
    "validate",
    "DATE_DTYPE",
    "TEXT_DTYPE",
    "canonical_dtypes",
    "as_canonical_types",
    "column_schema",
    "is_formula",
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
}
_TEXT_KINDS = {"id", "text", "stage", "outcome"}
#: Problems of one kind reported per column before the rest are summarised in one line.
MAX_PER_RULE = 1000
_MAX_FORMULA_WARNINGS = 20

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


# --------------------------------------------------------------------------- problem collector


class _Collector:
    """Problems and warnings gathered across tables, with a cap per (table, column, rule)."""

    def __init__(self) -> None:
        self.problems: list[tuple[int, int, Problem]] = []
        self.warnings: list[Problem] = []

    def add(
        self,
        order: int,
        file: str,
        rows,
        column,
        values,
        rule,
        *,
        cap: int = MAX_PER_RULE,
        summary: str | None = None,
        warn: bool = False,
    ) -> None:
        """Record one problem per row. ``rule`` is one string or one string per row."""
        rows = list(rows)
        n = len(rows)
        if n == 0:
            return
        values = list(values) if values is not None else [None] * n
        rules = [rule] * n if isinstance(rule, str) else list(rule)
        items = [
            Problem(file, int(r) if r is not None else None, column, _show(v), ru)
            for r, v, ru in zip(rows[:cap], values[:cap], rules[:cap])
        ]
        keys = [p.row or 0 for p in items]
        if n > cap:
            what = summary or (rule if isinstance(rule, str) else rules[0])
            items.append(Problem(file, None, column, None, f"... and {n - cap:,} more rows like the above: {what}"))
            keys.append(np.iinfo(np.int64).max)  # after the rows it summarises
        if warn:
            self.warnings.extend(items)
        else:
            self.problems.extend(zip([order] * len(items), keys, items))

    def sorted(self) -> list[Problem]:
        return [p for _, _, p in sorted(self.problems, key=lambda t: (t[0], t[1]))]


def _show(value) -> str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d")
    return str(value)


def _rows(ref: SourceRef, n_rows: int, positions: np.ndarray) -> np.ndarray:
    positions = np.asarray(positions, dtype=np.int64)
    if ref.rows is None or len(ref.rows) != n_rows:
        return positions + 2
    return np.asarray(ref.rows, dtype=np.int64)[positions]


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


def _coerce(spec: Table, raw: pd.DataFrame, ref: SourceRef, order: int, out: _Collector):
    """Typed frame plus, per column, the mask of cells that could not be converted."""
    typed: dict[str, pd.Series] = {}
    bad: dict[str, pd.Series] = {}
    rows_n = len(raw)
    for col in spec.columns:
        s = raw[col.name]
        if col.kind == "date":
            t, b = parse_dates(s, fmt=ref.date_format)
            rule = date_rule(ref.date_format)
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
            out.add(order, ref.file, _rows(ref, rows_n, pos), ref.column_of(col.name), s.iloc[pos], rule)
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
        cols[c.name] = pa.Column(nullable=not c.required, checks=checks)
    return pa.DataFrameSchema(cols, strict=False)


def _column_checks(spec, typed, raw, bad, ref, order, allow_formula_text, out: _Collector) -> None:
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
            rule = _RULES[check].format(col=fcol) if check in _RULES else str(check)
            out.add(order, ref.file, _rows(ref, len(typed), pos), fcol, raw[column].iloc[pos], rule)
    if allow_formula_text:
        for c in spec.columns:
            if c.kind in {"id", "text"}:
                mask = is_formula(typed[c.name]).to_numpy()
                pos = np.flatnonzero(mask)
                out.add(
                    order,
                    ref.file,
                    _rows(ref, len(typed), pos),
                    ref.column_of(c.name),
                    typed[c.name].iloc[pos],
                    "spreadsheet formula stored as plain text (it is never evaluated)",
                    cap=_MAX_FORMULA_WARNINGS,
                    warn=True,
                )


# --------------------------------------------------------------------------- table and business rules


def _unique_keys(spec, typed, bad, ref, order, out: _Collector) -> None:
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
        also = _rows(ref, len(frame), first[pos])
        fcols = [ref.column_of(c) for c in cols]
        if len(cols) == 1:
            vals = frame[cols[0]].iloc[pos]
            rules = [f"{fcols[0]} '{_show(v)}' appears more than once (also row {r})" for v, r in zip(vals, also)]
            values = vals
        else:
            shown = [frame[c].iloc[pos].map(_show).tolist() for c in cols]
            combos = [
                ", ".join(f"{fc}={v!r}" if v is not None else f"{fc}=(empty)" for fc, v in zip(fcols, vs))
                for vs in zip(*shown)
            ]
            rules = [f"the combination {cb} appears more than once (also row {r})" for cb, r in zip(combos, also)]
            values = None
        out.add(
            order,
            ref.file,
            _rows(ref, len(frame), pos),
            ", ".join(fcols),
            values,
            rules,
            summary="the key appears more than once",
        )


def _references(name, spec, typed_tables, bad_tables, dataset, order, out: _Collector) -> None:
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
            _rows(ref, len(typed), pos),
            ref.column_of(col.name),
            vals,
            [f"{noun} '{v}' is not in {pfile}" for v in vals],
            summary=f"{noun} is not in {pfile}",
        )


def _flag(out, order, ref, typed, bad, mask, column, rule) -> None:
    mask = np.asarray(mask, dtype=bool)
    if column in bad:  # the conversion problem already covers this cell
        mask = mask & ~bad[column].to_numpy()
    pos = np.flatnonzero(mask)
    out.add(order, ref.file, _rows(ref, len(typed), pos), ref.column_of(column), typed[column].iloc[pos], rule)


def _business_rules(name, typed, bad, ref, order, out: _Collector) -> None:
    t = typed
    if name == "opportunities":
        closed = t["outcome"].isin(["won", "lost"]).to_numpy()
        no_close = t["close_date"].isna().to_numpy()
        _flag(out, order, ref, t, bad, closed & no_close, "close_date", "a won or lost deal needs a close date")
        _flag(
            out,
            order,
            ref,
            t,
            bad,
            (t["outcome"] == "open").to_numpy() & ~no_close,
            "close_date",
            "an open opportunity must not have a close date (set outcome to won or lost, or clear the date)",
        )
        _flag(
            out,
            order,
            ref,
            t,
            bad,
            (t["close_date"] < t["created_date"]).to_numpy(),
            "close_date",
            "close date is before the created date",
        )
        _flag(
            out,
            order,
            ref,
            t,
            bad,
            (t["outcome"] == "won").to_numpy() & t["amount"].isna().to_numpy(),
            "amount",
            "a won deal needs an amount",
        )
    elif name == "agents":
        _flag(
            out,
            order,
            ref,
            t,
            bad,
            (t["leave_date"] < t["hire_date"]).to_numpy(),
            "leave_date",
            "leave date is before the hire date",
        )
    elif name == "targets":
        has_agent = t["agent_id"].notna().to_numpy()
        has_terr = t["territory_id"].notna().to_numpy()
        _flag(
            out,
            order,
            ref,
            t,
            bad,
            has_agent & has_terr,
            "territory_id",
            "a target is for one agent or one territory: fill agent_id or territory_id, not both",
        )
        _flag(
            out, order, ref, t, bad, ~has_agent & ~has_terr, "agent_id", "a target needs an agent_id or a territory_id"
        )
        _flag(
            out,
            order,
            ref,
            t,
            bad,
            (t["period_end"] < t["period_start"]).to_numpy(),
            "period_end",
            "period end is before the period start",
        )


# --------------------------------------------------------------------------- entry point


def _reporter(dataset: Dataset, raw_tables: dict, typed_tables: dict, out: _Collector):
    """The ``report`` callback of :mod:`spm_models.data.plausibility`: positions -> problems or warnings."""

    def report(table, positions, column, rule, *, warn: bool = False, summary: bool = False) -> None:
        ref = dataset.ref(table)
        frame = typed_tables[table]
        positions = np.asarray(positions, dtype=np.int64)
        rows = _rows(ref, len(frame), positions)
        fcol = ref.column_of(column)
        if summary:  # one line for all of them (a warning about many rows)
            shown = ", ".join(str(r) for r in rows[:_MAX_FORMULA_WARNINGS])
            more = " ..." if len(rows) > _MAX_FORMULA_WARNINGS else ""
            n = len(rows)
            where = f"row {shown}" if n == 1 else f"{n:,} rows: {shown}{more}"
            problem = Problem(ref.file, None, fcol, None, f"{rule} ({where})")
            if warn:
                out.warnings.append(problem)
            else:
                out.problems.append((TABLE_ORDER.index(table), int(rows[0]), problem))
            return
        source = raw_tables[table][column] if column in raw_tables[table] else frame[column]
        out.add(TABLE_ORDER.index(table), ref.file, rows, fcol, source.iloc[positions], rule, warn=warn)

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
    formulas in text, and the business rules (closed deals have a close date on or after the
    created date, won deals an amount, amounts and counts zero or more, stages and outcomes
    from the canonical lists, targets for exactly one of agent or territory, periods and
    employment dates in order), and the plausibility rules of
    :mod:`spm_models.data.plausibility` (dates in a window, numbers that fit their types,
    no control characters, no overlapping targets; warnings for what is odd but possible).

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
        With one :class:`~spm_models.exceptions.Problem` per problem found.
    """
    out = _Collector()
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
        raw = dataset.tables[name].reset_index(drop=True)
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
        table_rules(name, spec, typed, bad, report, window=window, rows=_rows(ref, len(typed), np.arange(len(typed))))
        _unique_keys(spec, typed, bad, ref, order, out)
        _business_rules(name, typed, bad, ref, order, out)
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
    return replace(dataset, tables=tables, refs=dict(dataset.refs), warnings=list(dataset.warnings) + out.warnings)
