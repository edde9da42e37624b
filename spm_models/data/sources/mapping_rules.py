"""Applying one mapping section to one file of an export: from the file's rows to a canonical frame.

Steps, in order (each documented in ``docs/your-own-data.md``): ``fix`` (per-row fixes),
``lookup`` (columns from other files), ``replace``, ``where`` (row filter), the canonical
columns from ``columns`` and ``derive``, ``defaults`` and ``not_people``, ``drop_if_empty``,
``count_rows`` and ``distinct``. Every value stays text; parsing is the validation layer's
job. A rule that matched nothing is reported as a warning, so a typo in a mapping never goes
unnoticed; rows left out are counted exactly, with the first ones listed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from spm_models.calendar import DEFAULT_CALENDAR, parse_dates
from spm_models.data.problems import row_list, rule_rows
from spm_models.data.schemas import TABLES
from spm_models.data.sources.mapping_spec import COUNT_COLUMNS, TableMapping
from spm_models.data.sources.sandbox import SqlError, SqlSandbox
from spm_models.exceptions import Problem

__all__ = ["Section", "Shaped", "shape_section", "text_column", "warn"]

#: A file reader: (file, encoding, delimiter, key naming it) -> (text frame, row numbers) or None.
Reader = Callable[[str, str, str, str], "tuple[pd.DataFrame, np.ndarray] | None"]


@dataclass
class Section:
    """One section at work: its mapping, where its messages go, the file reader and SQL sandbox."""

    tm: TableMapping
    problems: list[Problem]
    warnings: list[Problem]
    read: Reader
    sandbox: SqlSandbox
    mapping_name: str = "mapping.toml"
    stage_names: set[str] = field(default_factory=set)  # the file's stage names, before rows were left out

    @property
    def key(self) -> str:
        return self.tm.table

    @property
    def file(self) -> str:
        return self.tm.file


@dataclass
class Shaped:
    """A canonical text frame, each row's spreadsheet row, and what to call its columns."""

    frame: pd.DataFrame
    rows: np.ndarray
    columns: dict[str, str] = field(default_factory=dict)  # canonical -> label in messages
    date_formats: dict[str, str | None] = field(default_factory=dict)


def warn(sec: Section, column: str | None, text: str) -> None:
    sec.warnings.append(Problem(sec.file, None, column, None, text))


def text_column(s: pd.Series) -> pd.Series:
    """Object column of str with empty cells as ``None`` (what the validation layer reads)."""
    s = s.astype(object)
    return s.where(s.notna() & (s != ""), None)


def _rows_text(n: int) -> str:
    return f"{n:,} row{'s' if n != 1 else ''}"


def _has_columns(sec: Section, frame: pd.DataFrame, columns, key: str, file: str) -> bool:
    missing = [c for c in dict.fromkeys(columns) if c not in frame.columns]
    for col in missing:
        sec.problems.append(
            Problem(
                file,
                1,
                col,
                None,
                f"column not found in the header, but {key} names it; the file has: "
                + ", ".join(map(str, frame.columns)),
            )
        )
    return not missing


def _mapped_columns_present(sec: Section, frame: pd.DataFrame) -> bool:
    tm = sec.tm
    missing = [c for c in dict.fromkeys(tm.columns.values()) if c not in frame.columns]
    for col in missing:
        mapped = ", ".join(f"{tm.table}.{k}" for k, v in tm.columns.items() if v == col)
        sec.problems.append(
            Problem(
                sec.file,
                1,
                col,
                None,
                f"column not found in the header, but mapping file {sec.mapping_name} maps {mapped} to it; "
                f"the file has: {', '.join(map(str, frame.columns))}",
            )
        )
    return not missing


# --------------------------------------------------------------------------- the file's rows


def _apply_fixes(sec: Section, frame: pd.DataFrame, rows: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """``fix``: set cells of, or leave out, rows found by number or by their values."""
    if not sec.tm.fixes:
        return frame, rows
    frame = frame.copy()
    keep = np.ones(len(frame), dtype=bool)
    for fix in sec.tm.fixes:
        if not _has_columns(sec, frame, list(fix.match) + list(fix.set), f"{fix.key} in the mapping file", sec.file):
            continue
        hit = np.ones(len(frame), dtype=bool) if fix.row is None else rows == fix.row
        for col, value in fix.match.items():
            hit &= (frame[col].astype(object) == value).to_numpy()
        if not hit.any():
            what = f"row {fix.row} is not a data row of the file" if fix.row is not None else "no row has these values"
            warn(sec, None, f"{fix.key} matched nothing ({what}); the fix was not applied")
            continue
        if fix.drop:
            keep &= ~hit
        for col, value in fix.set.items():
            frame.loc[hit, col] = value if value != "" else None
    return frame[keep].reset_index(drop=True), rows[keep]


def _apply_lookups(sec: Section, frame: pd.DataFrame) -> pd.DataFrame:
    """``lookup``: columns of other files of the export, joined on key columns (at most one match)."""
    for lk in sec.tm.lookups:
        other = sec.read(lk.file, lk.encoding, lk.delimiter, f"{lk.key}.file")
        if other is None:
            continue
        oframe, orows = other
        ok = _has_columns(sec, frame, lk.on, f"{lk.key}.on", sec.file)
        ok = _has_columns(sec, oframe, list(lk.on.values()) + list(lk.take.values()), lk.key, lk.file) and ok
        clash = [c for c in lk.take if c in frame.columns]
        for c in clash:
            sec.problems.append(
                Problem(sec.file, 1, c, None, f"{lk.key}.take: the file already has this column; give it a new name")
            )
        if not ok or clash:
            continue
        theirs = list(lk.on.values())
        dup = oframe.duplicated(theirs, keep="first").to_numpy() & oframe[theirs].notna().all(axis=1).to_numpy()
        if dup.any():
            sec.problems.extend(
                rule_rows(
                    lk.file,
                    orows[dup],
                    ", ".join(theirs),
                    None,
                    f"the key appears more than once, so {lk.key} cannot tell which row to take",
                )
            )
            continue
        right = oframe[theirs + list(lk.take.values())].copy()
        right.columns = [f"\x00k{i}" for i in range(len(theirs))] + list(lk.take)
        left_keys = {c: f"\x00k{i}" for i, c in enumerate(lk.on)}
        joined = frame.merge(right, how="left", left_on=list(left_keys), right_on=list(left_keys.values()), sort=False)
        matched = joined[list(lk.take)].notna().any(axis=1) if lk.take else pd.Series(False, index=joined.index)
        if not matched.any():
            warn(sec, None, f"{lk.key} matched no row of {lk.file}")
        frame = joined.drop(columns=list(left_keys.values())).reset_index(drop=True)
    return frame


def _apply_replace(sec: Section, frame: pd.DataFrame) -> pd.DataFrame:
    """``replace``: exact whole-cell values of a column, changed; a value never seen is a warning."""
    if not sec.tm.replace:
        return frame
    frame = frame.copy()
    for col, table in sec.tm.replace.items():
        if col not in frame.columns:
            continue  # reported with the columns
        s = frame[col]
        for old in table:
            if not (s == old).any():
                warn(sec, col, f"replace: no cell is {old!r}, so replace.{col}.{old!r} changed nothing")
        frame[col] = s.where(~s.isin(list(table)), s.map(table))
    return frame


def _apply_where(sec: Section, frame: pd.DataFrame, rows: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """``where``: keep the rows for which the SQL condition is true."""
    if sec.tm.where is None:
        return frame, rows
    sec.sandbox.add("this", frame, rows, file=sec.file)
    keep = sec.sandbox.filter("this", sec.tm.where, key=f"{sec.key}.where", file=sec.file)
    n_out = int((~keep).sum())
    if n_out:
        warn(
            sec,
            None,
            f"{_rows_text(n_out)} left out of {sec.key} by where = {sec.tm.where!r}; {row_list(rows[~keep])}",
        )
    else:
        warn(sec, None, f"where = {sec.tm.where!r} left out no row")
    return frame[keep].reset_index(drop=True), rows[keep]


# --------------------------------------------------------------------------- canonical columns


def _sql_text(s: pd.Series) -> tuple[pd.Series, bool]:
    """A derived column as text (dates as ISO days, flags as true/false); whether it held dates."""
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        return s.dt.strftime("%Y-%m-%d").astype(object).where(s.notna(), None), True
    if pd.api.types.is_bool_dtype(s.dtype):
        return s.map({True: "true", False: "false"}).astype(object), False
    if pd.api.types.is_integer_dtype(s.dtype):
        return s.astype("Int64").astype(str).astype(object).where(s.notna(), None), False
    if pd.api.types.is_float_dtype(s.dtype):
        return s.map(lambda v: None if pd.isna(v) else repr(float(v))).astype(object), False
    return s.astype(object).where(s.notna(), None).map(lambda v: v if v is None else str(v)), False


def _canonical(sec: Section, frame: pd.DataFrame, rows: np.ndarray) -> Shaped:
    """Mapped and derived columns -> the canonical frame; defaults; not_people."""
    tm = sec.tm
    spec = TABLES[tm.table]
    n = len(frame)
    labels = {}
    for col, src in tm.columns.items():
        taken = next((lk for lk in tm.lookups if src in lk.take), None)
        labels[col] = f"{src} (from {taken.file})" if taken else src
    formats = {}
    derived = pd.DataFrame(index=range(n))
    if tm.derive:
        sec.sandbox.add("this", frame, rows, file=sec.file)
        derived = sec.sandbox.evaluate("this", tm.derive, key=f"{tm.table}.derive", file=sec.file)
    data = {}
    for col in spec.column_names:
        if col in tm.columns:
            s = frame[tm.columns[col]].reset_index(drop=True)
        elif col in tm.derive:
            s, is_date = _sql_text(derived[col].reset_index(drop=True))
            labels[col] = f"{col} (derived)"
            if is_date:
                formats[col] = None  # written as ISO days
        else:
            s = pd.Series([None] * n, dtype=object)
        if col in tm.defaults:
            empty = s.isna() | (s == "")
            if col in tm.columns and not empty.any():
                warn(sec, labels[col], f"defaults.{col} was never used: no cell of this column is empty")
            s = s.where(~empty, tm.defaults[col])
        data[col] = text_column(s)
    out = pd.DataFrame(data, columns=spec.column_names)
    if tm.not_people:
        found = out["agent_id"].isin(list(tm.not_people))
        for who in sorted(set(tm.not_people) - set(out.loc[found, "agent_id"])):
            warn(sec, labels.get("agent_id"), f"not_people: no agent has the id {who!r}")
        out.loc[found.to_numpy(), "is_person"] = "false"
    used = set(tm.columns) | set(tm.derive) | set(tm.defaults) | ({"is_person"} if tm.not_people else set())
    used |= {"stage", "outcome"} if tm.stages else set()
    keep = [c.name for c in spec.columns if c.since == 1 or c.name in used or c.name == COUNT_COLUMNS.get(tm.table)]
    return Shaped(out[keep], rows, labels, formats)


# --------------------------------------------------------------------------- which rows


def _drop_if_empty(sec: Section, shaped: Shaped) -> Shaped:
    out, rows = shaped.frame, shaped.rows
    keep = np.ones(len(out), dtype=bool)
    for col in sec.tm.drop_if_empty:
        empty = out[col].isna().to_numpy()
        dropped = empty & keep
        label = shaped.columns.get(col, col)
        if dropped.any():
            warn(
                sec,
                label,
                f"{_rows_text(int(dropped.sum()))} left out of {sec.key} because this column is empty "
                f"(drop_if_empty in the mapping file); {row_list(rows[dropped])}",
            )
        else:
            warn(sec, label, "drop_if_empty: no row has this column empty, so none was left out for it")
        keep &= ~empty
    return Shaped(out[keep].reset_index(drop=True), rows[keep], shaped.columns, shaped.date_formats)


def _count_rows(sec: Section, shaped: Shaped) -> Shaped:
    """``count_rows``: one row per distinct combination of the other columns, with its number of rows."""
    tm = sec.tm
    target = COUNT_COLUMNS[tm.table]
    out, formats = shaped.frame.copy(), dict(shaped.date_formats)
    if tm.count_period is not None:
        for col in (c.name for c in TABLES[tm.table].columns if c.kind == "date"):
            fmt = formats.get(col, tm.date_format_of(col))
            days, bad = parse_dates(out[col], fmt=fmt)
            if bad.any():
                sec.problems.extend(
                    rule_rows(
                        sec.file,
                        shaped.rows[bad.to_numpy()],
                        shaped.columns.get(col, col),
                        out[col][bad],
                        f"expected a date in the format {fmt or 'YYYY-MM-DD'} (count_period)",
                    )
                )
                return shaped
            start = days if tm.count_period == "day" else DEFAULT_CALENDAR.period_start(days, tm.count_period)
            out[col] = text_column(
                pd.Series(pd.DatetimeIndex(start).strftime("%Y-%m-%d"), dtype=object).where(
                    days.notna().to_numpy(), None
                )
            )
            formats[col] = None
    keys = [c for c in out.columns if c != target]
    codes = out[keys].fillna("\x00").groupby(keys, sort=False).ngroup().to_numpy()
    first = ~pd.Series(codes).duplicated().to_numpy()
    counts = np.bincount(codes)
    grouped = out[first].reset_index(drop=True)
    grouped[target] = [str(int(c)) for c in counts[codes[first]]]
    columns = dict(shaped.columns) | {target: f"{target} (rows counted)"}
    return Shaped(grouped, shaped.rows[first], columns, formats)


def _distinct(sec: Section, shaped: Shaped) -> Shaped:
    """Keep one row per distinct combination; rows without a key describe no entity (skipped)."""
    out = shaped.frame
    keep = np.ones(len(out), dtype=bool)
    for col in TABLES[sec.key].key:
        keep &= out[col].notna().to_numpy()
    out, rows = out[keep].reset_index(drop=True), shaped.rows[keep]
    first = ~out.duplicated().to_numpy()
    return Shaped(out[first].reset_index(drop=True), rows[first], shaped.columns, shaped.date_formats)


def shape_section(sec: Section, frame: pd.DataFrame, rows: np.ndarray) -> Shaped | None:
    """Every step of one file-based section (module docstring); None when a problem stops it.

    Problems go to ``sec.problems`` (the caller raises them together), warnings to
    ``sec.warnings``.
    """
    tm = sec.tm
    before = len(sec.problems)
    try:
        frame, rows = _apply_fixes(sec, frame, rows)
        frame = _apply_lookups(sec, frame)
        if not _mapped_columns_present(sec, frame):
            return None
        frame = _apply_replace(sec, frame)
        if tm.stages and "stage" in tm.columns:
            sec.stage_names = set(frame[tm.columns["stage"]].dropna().astype(str).str.strip())
        frame, rows = _apply_where(sec, frame, rows)
        shaped = _canonical(sec, frame, rows)
    except SqlError as exc:
        sec.problems.append(exc.problem)
        return None
    if len(sec.problems) > before:
        return None
    shaped = _drop_if_empty(sec, shaped)
    if tm.count_rows:
        shaped = _count_rows(sec, shaped)
    if tm.distinct:
        shaped = _distinct(sec, shaped)
    return shaped
