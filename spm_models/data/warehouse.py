"""The DuckDB warehouse: one validated snapshot of the canonical tables, written atomically.

:meth:`Warehouse.ingest` validates first and only then opens the database; the whole snapshot
(every canonical table, plus one ``ingest_log`` row) is written in one transaction, so a
failed ingest leaves the file exactly as it was. Re-ingesting the same data (same
:func:`fingerprint`) writes nothing. Reads use read-only connections and return frames typed
as :func:`spm_models.data.validation.validate` returns them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from spm_models.calendar import DEFAULT_CALENDAR, Calendar
from spm_models.config import DEFAULT_MEASURE, check_bookings_measure
from spm_models.data.dataset import Dataset, SourceRef, significant_columns
from spm_models.data.schemas import TABLE_ORDER, TABLES
from spm_models.data.validation import TEXT_DTYPE, as_canonical_types, canonical_dtypes, validate
from spm_models.exceptions import ConfigError, DataError, DiskFullError, Problem, is_disk_full

__all__ = ["Warehouse", "IngestResult", "fingerprint", "ddl"]

_SQL_TYPE = {
    "id": "VARCHAR",
    "text": "VARCHAR",
    "stage": "VARCHAR",
    "outcome": "VARCHAR",
    "date": "DATE",
    "money": "DOUBLE",
    "float": "DOUBLE",
    "count": "BIGINT",
    "flag": "BOOLEAN",
}
_LOG_DDL = """CREATE TABLE IF NOT EXISTS ingest_log (
    run_id VARCHAR PRIMARY KEY,
    ingested_at TIMESTAMP NOT NULL,  -- UTC
    source VARCHAR,
    fingerprint VARCHAR NOT NULL,
    row_counts VARCHAR NOT NULL,     -- JSON object: table -> rows
    n_warnings BIGINT NOT NULL
)"""
#: Settings stored with the snapshot (the organisation's fiscal calendar, the bookings measure).
_SETTINGS_DDL = "CREATE TABLE IF NOT EXISTS spm_settings (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)"


@dataclass
class IngestResult:
    """What one :meth:`Warehouse.ingest` did.

    Attributes
    ----------
    run_id : str
        Id of the ingest that holds the data now (the earlier one when nothing changed).
    fingerprint : str
        :func:`fingerprint` of the validated data.
    row_counts : dict of str to int
        Rows per canonical table (0 for a table the source did not have).
    changed : bool
        False when the data equal the last ingest's and nothing was written.
    warnings : list of Problem
        Things worth telling the user that did not stop the ingest.
    """

    run_id: str
    fingerprint: str
    row_counts: dict[str, int]
    changed: bool
    warnings: list[Problem] = field(default_factory=list)


def ddl(table: str) -> str:
    """``CREATE TABLE`` statement for canonical ``table`` (single-column keys as PRIMARY KEY)."""
    spec = TABLES[table]
    single_key = spec.key[0] if len(spec.key) == 1 else None
    cols = []
    for c in spec.columns:
        line = f'"{c.name}" {_SQL_TYPE[c.kind]}'
        if c.name == single_key:
            line += " PRIMARY KEY"
        elif c.required:
            line += " NOT NULL"
        cols.append(line)
    return f'CREATE TABLE "{table}" (\n    ' + ",\n    ".join(cols) + "\n)"


def fingerprint(dataset: Dataset) -> str:
    """SHA-256 of the canonical content of a validated dataset, independent of row order.

    Each table contributes its name, column names and the sorted 64-bit hashes of its rows
    (:func:`pandas.util.hash_pandas_object`, which uses a fixed key, so the value is the same
    in every run). A table the dataset does not have counts as empty, as it is stored. A
    fiscal calendar other than the calendar year is part of the content too (it changes
    every quarterly number), and so is a bookings measure other than money.

    What later versions of the contract added counts only when it is used
    (:func:`~spm_models.data.dataset.significant_columns`): a later table with no rows and a
    later column that is empty (or at its default) contribute nothing, so data that do not use
    them keep the fingerprint they had before those were added.

    Parameters
    ----------
    dataset : Dataset
        Typed frames, as :func:`spm_models.data.validation.validate` or :meth:`Warehouse.load`
        return them (text frames give a different fingerprint).

    Returns
    -------
    str
        64 hexadecimal characters.
    """
    h = hashlib.sha256()
    for name in TABLE_ORDER:
        frame = dataset.tables.get(name)
        empty = frame is None or len(frame) == 0
        if empty and TABLES[name].since > 1:
            continue
        cols = significant_columns(name, frame) if frame is not None else significant_columns(name, pd.DataFrame())
        h.update(f"\x00{name}\x00{','.join(cols)}\x00".encode())
        if empty:
            h.update(b"0")
            continue
        rows = pd.util.hash_pandas_object(frame.loc[:, cols], index=False).to_numpy(dtype=np.uint64)
        h.update(str(len(rows)).encode())
        h.update(np.sort(rows).tobytes())
    cal = dataset.fiscal_calendar
    if cal != DEFAULT_CALENDAR:
        h.update(json.dumps(cal.to_dict(), sort_keys=True).encode())
    if dataset.bookings_measure != DEFAULT_MEASURE:
        h.update(json.dumps({"bookings_measure": dataset.bookings_measure}).encode())
    return h.hexdigest()


def _write_table(con: duckdb.DuckDBPyConnection, name: str, frame: pd.DataFrame) -> None:
    """Replace the content of ``name`` with ``frame`` (inside the caller's transaction)."""
    cols = TABLES[name].column_names
    con.execute(f'DROP TABLE IF EXISTS "{name}"')
    con.execute(ddl(name))
    if len(frame) == 0:
        return
    view = f"_spm_src_{name}"
    con.register(view, frame.loc[:, cols])
    try:
        select = ", ".join(f'"{c}"' for c in cols)
        con.execute(f'INSERT INTO "{name}" ({select}) SELECT {select} FROM "{view}"')
    finally:
        con.unregister(view)


def _with_defaults(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """A table read from a warehouse written before later columns existed, with them added empty."""
    for col in TABLES[name].columns:
        if col.name not in frame.columns:
            fill = col.default if col.default is not None else None
            frame[col.name] = pd.Series([fill] * len(frame), dtype=object if fill is None else type(fill))
    return frame


_COLUMNS_SQL = "SELECT column_name FROM information_schema.columns WHERE table_name = ?"
_TEXT_KINDS = {"id", "text", "stage", "outcome"}


def _select(columns: Iterable[str]) -> str:
    return ", ".join(f'"{c}"' for c in columns) or "NULL AS _none"


def _wanted_columns(columns: Mapping[str, Iterable[str]] | None) -> dict[str, list[str]]:
    """Table -> columns to read, in canonical order; unknown names are a :class:`ConfigError`."""
    if columns is None:
        return {name: TABLES[name].column_names for name in TABLE_ORDER}
    problems = [f"unknown table {t!r}" for t in columns if t not in TABLES]
    out = {}
    for name in TABLE_ORDER:
        if name in columns:
            asked = set(columns[name])
            problems += [f"table {name} has no column {c!r}" for c in sorted(asked - set(TABLES[name].column_names))]
            out[name] = [c for c in TABLES[name].column_names if c in asked]
    if problems:
        raise ConfigError("cannot load from the warehouse: " + "; ".join(problems))
    return out


def _vocabularies(con, wanted: dict[str, list[str]], stored: dict[str, set[str]]) -> dict[str, tuple]:
    """Per text column name, its sorted distinct values over every table read (by DuckDB)."""
    kinds = {}
    for name, cols in wanted.items():
        for col in TABLES[name].columns:
            if col.name in cols and col.kind in _TEXT_KINDS and col.name in stored.get(name, ()):
                kinds.setdefault(col.name, []).append(name)
    out = {}
    for col, names in kinds.items():
        union = " UNION ".join(f'SELECT "{col}" AS v FROM "{t}"' for t in names)
        values = con.sql(f"SELECT DISTINCT v FROM ({union}) WHERE v IS NOT NULL ORDER BY v").to_arrow_table().column(0)
        values = values.combine_chunks()
        out[col] = (values, pd.CategoricalDtype(pd.Index(values.to_pandas(), dtype=TEXT_DTYPE)))
    return out


def _read_encoded(con, table: str, cols: list[str], vocab: dict[str, tuple]) -> pd.DataFrame:
    """``cols`` of ``table`` with its text columns as codes into ``vocab`` (through Arrow, no strings in pandas)."""
    kinds = {c.name: c.kind for c in TABLES[table].columns}
    # DATE becomes TIMESTAMP in the query: Arrow then hands pandas datetime64[us], not date objects
    select = ", ".join(f'CAST("{c}" AS TIMESTAMP) AS "{c}"' if kinds[c] == "date" else f'"{c}"' for c in cols)
    arrow = con.sql(f'SELECT {select or "NULL AS _none"} FROM "{table}"').to_arrow_table()
    n, frame = arrow.num_rows, {}
    for c in cols:
        column = arrow.column(c)
        if c in vocab:
            values, dtype = vocab[c]
            codes = pc.index_in(column, value_set=values).fill_null(-1).to_numpy().astype(np.int32, copy=False)
            frame[c] = pd.Categorical.from_codes(codes, dtype=dtype, validate=False)
        else:
            frame[c] = column.to_pandas()
        arrow = arrow.drop_columns([c])  # each column's Arrow buffers go as soon as it is in pandas
    return pd.DataFrame(frame, index=pd.RangeIndex(n))


class Warehouse:
    """The DuckDB file holding the current validated snapshot and the log of ingests.

    Parameters
    ----------
    path : path-like
        The database file; its folder is created on the first ingest.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"Warehouse({str(self.path)!r})"

    # ------------------------------------------------------------------ writing

    def ingest(
        self,
        dataset: Dataset,
        *,
        allow_formula_text: bool = False,
        calendar: Calendar | None = None,
        measure: str | None = None,
        date_window: tuple | None = None,
    ) -> IngestResult:
        """Validate ``dataset`` and make it the warehouse content, in one transaction.

        Parameters
        ----------
        dataset : Dataset
            Canonical tables (text or typed). Optional tables it lacks are stored empty.
        allow_formula_text : bool
            Passed to :func:`~spm_models.data.validation.validate`.
        calendar : Calendar, optional
            The organisation's fiscal calendar when the dataset does not carry one (the
            project setting); stored with the snapshot and returned by :meth:`load`.
        measure : {"money", "deals"}, optional
            How bookings are measured when the dataset does not say (the project setting);
            stored with the snapshot and returned by :meth:`load`.
        date_window : (earliest, latest), optional
            Plausible dates (the project setting); passed to
            :func:`~spm_models.data.validation.validate`.

        Returns
        -------
        IngestResult
            ``changed`` is False (and nothing is written) when the data equal the last ingest's.

        Raises
        ------
        DataValidationError
            Any problem in the data; the database file is not opened.
        DataError
            The database could not be written; it keeps its previous content.
        """
        if dataset.measure is None:
            dataset = replace(dataset, measure=check_bookings_measure(measure or DEFAULT_MEASURE))
        valid = validate(dataset, allow_formula_text=allow_formula_text, date_window=date_window)
        if valid.calendar is None:
            valid = replace(valid, calendar=calendar if calendar is not None else DEFAULT_CALENDAR)
        fp = fingerprint(valid)
        counts = {name: len(valid.tables[name]) if name in valid.tables else 0 for name in TABLE_ORDER}
        last = self.last_ingest() if self.path.exists() else None
        if last is not None and last["fingerprint"] == fp:
            return IngestResult(last["run_id"], fp, counts, changed=False, warnings=valid.warnings)

        now = datetime.now(UTC)
        run_id = f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"cannot create the folder of the warehouse {self.path}: {exc.strerror or exc} "
                "(is a part of the path a file, or the folder read-only?)"
            ) from None
        try:
            con = duckdb.connect(str(self.path))
        except duckdb.Error as exc:
            raise DataError(f"cannot open the warehouse {self.path} for writing: {exc}") from exc
        try:
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute(_LOG_DDL)
                con.execute(_SETTINGS_DDL)
                con.execute("DELETE FROM spm_settings")
                stored = {**valid.fiscal_calendar.to_dict(), "bookings_measure": valid.bookings_measure}
                for key, value in stored.items():
                    con.execute("INSERT INTO spm_settings VALUES (?, ?)", [key, json.dumps(value)])
                for name in TABLE_ORDER:
                    frame = valid.tables.get(name)
                    _write_table(con, name, frame if frame is not None else valid.get(name).iloc[0:0])
                con.execute(
                    "INSERT INTO ingest_log VALUES (?, ?, ?, ?, ?, ?)",
                    [run_id, now.replace(tzinfo=None), valid.source or "", fp, json.dumps(counts), len(valid.warnings)],
                )
                con.execute("COMMIT")
            except BaseException:
                # a failed COMMIT (a full disk) has already ended the transaction: keep its error
                with contextlib.suppress(duckdb.Error):
                    con.execute("ROLLBACK")
                raise
        except duckdb.Error as exc:
            if is_disk_full(exc):
                raise DiskFullError(
                    f"the disk holding the warehouse {self.path} is full; it keeps its previous content. "
                    "Free some space and ingest again"
                ) from exc
            raise DataError(f"writing the warehouse {self.path} failed; it keeps its previous content: {exc}") from exc
        finally:
            con.close()
        return IngestResult(run_id, fp, counts, changed=True, warnings=valid.warnings)

    # ------------------------------------------------------------------ reading

    def _connect(self) -> duckdb.DuckDBPyConnection:
        if not self.path.is_file():
            raise ConfigError(f"no warehouse at {self.path}; run `spm ingest` first")
        try:
            return duckdb.connect(str(self.path), read_only=True)
        except duckdb.Error as exc:
            raise ConfigError(f"cannot open the warehouse {self.path}: {exc}") from exc

    def _tables(self, con) -> set[str]:
        return {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}

    def read(self, table: str, *, columns: list[str] | None = None, where: str | None = None) -> pd.DataFrame:
        """One canonical table, typed as :func:`~spm_models.data.validation.validate` returns it.

        Parameters
        ----------
        table : str
            Canonical table name.
        columns : list of str, optional
            Subset of its columns (default: all, in canonical order).
        where : str, optional
            SQL condition on the table's columns, e.g. ``"outcome = 'won'"``.

        Raises
        ------
        ConfigError
            No warehouse file, an unknown table or column, or a ``where`` that does not run.
        """
        if table not in TABLES:
            raise ConfigError(f"unknown table {table!r}; the warehouse has " + ", ".join(TABLE_ORDER))
        cols = list(columns) if columns is not None else TABLES[table].column_names
        unknown = [c for c in cols if c not in canonical_dtypes(table)]
        if unknown:
            raise ConfigError(f"table {table} has no column {', '.join(map(repr, unknown))}")
        sql = f'SELECT {", ".join(f"{chr(34)}{c}{chr(34)}" for c in cols)} FROM "{table}"'
        if where:
            sql += f" WHERE {where}"
        con = self._connect()
        try:
            if table not in self._tables(con):
                frame = pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
            else:
                try:
                    frame = con.execute(sql).df()
                except duckdb.Error as exc:
                    raise ConfigError(f"cannot read {table} from {self.path}: {exc}") from exc
        finally:
            con.close()
        return as_canonical_types(table, frame)

    def load(self, columns: Mapping[str, Iterable[str]] | None = None, *, dictionary: bool = False) -> Dataset:
        """The canonical tables as one typed :class:`Dataset` (empty frames for empty tables).

        Parameters
        ----------
        columns : mapping of str to iterable of str, optional
            Only these tables, and of each only these columns (e.g.
            :func:`spm_models.kpi.kpi_columns`, what the KPIs read). Default: every canonical
            table and column. A later column the warehouse predates comes back empty.
        dictionary : bool, default False
            Text columns (ids, stages, outcomes) dictionary-encoded, as pandas categoricals: one
            sorted vocabulary per column name over the tables read, made by DuckDB, so an
            ``agent_id`` has the same code in every table and an id costs 1-4 bytes a row
            instead of a string. Dates and numbers are typed as without it.

        Raises
        ------
        ConfigError
            No warehouse file, or an unknown table or column.
        """
        wanted = _wanted_columns(columns)
        con = self._connect()
        try:
            present = self._tables(con)
            stored = {
                name: {r[0] for r in con.execute(_COLUMNS_SQL, [name]).fetchall()} for name in wanted if name in present
            }
            if dictionary:
                # one thread: each DuckDB thread keeps its own buffers, and this read is about memory
                con.execute("SET threads = 1")
            vocab = _vocabularies(con, wanted, stored) if dictionary else {}
            tables = {}
            for name, cols in wanted.items():
                if name not in present:
                    frame = pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
                elif dictionary:
                    frame = _read_encoded(con, name, [c for c in cols if c in stored[name]], vocab)
                else:
                    frame = con.execute(f'SELECT {_select(c for c in cols if c in stored[name])} FROM "{name}"').df()
                frame = _with_defaults(name, frame).loc[:, cols]
                encoded = [c for c in cols if isinstance(frame[c].dtype, pd.CategoricalDtype)]
                typed = as_canonical_types(name, frame.drop(columns=encoded))
                tables[name] = typed if not encoded else pd.concat([typed, frame[encoded]], axis=1).loc[:, cols]
            settings = self._settings(con, present)
        finally:
            con.close()
        if dictionary:
            pa.default_memory_pool().release_unused()  # Arrow's allocator keeps freed pages otherwise
        refs = {name: SourceRef(file=f"{name} (warehouse {self.path.name})") for name in tables}
        calendar = Calendar(**{k: v for k, v in settings.items() if k in ("fiscal_year_start", "fiscal_year_label")})
        measure = check_bookings_measure(settings.get("bookings_measure", DEFAULT_MEASURE))
        return Dataset(tables=tables, refs=refs, source=f"warehouse {self.path}", calendar=calendar, measure=measure)

    def _settings(self, con, present: set[str]) -> dict:
        """The settings stored with the snapshot (none for older warehouses: calendar year, money)."""
        if "spm_settings" not in present:
            return {}
        return {k: json.loads(v) for k, v in con.execute("SELECT key, value FROM spm_settings").fetchall()}

    def counts(self) -> dict[str, int]:
        """Rows per canonical table."""
        con = self._connect()
        try:
            present = self._tables(con)
            return {
                name: con.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] if name in present else 0
                for name in TABLE_ORDER
            }
        finally:
            con.close()

    def last_ingest(self) -> dict | None:
        """The latest ``ingest_log`` entry (``ingested_at`` as an aware UTC datetime), or None."""
        con = self._connect()
        try:
            if "ingest_log" not in self._tables(con):
                return None
            row = con.execute(
                "SELECT run_id, ingested_at, source, fingerprint, row_counts, n_warnings "
                "FROM ingest_log ORDER BY ingested_at DESC, run_id DESC LIMIT 1"
            ).fetchone()
        finally:
            con.close()
        if row is None:
            return None
        run_id, at, source, fp, counts, n_warnings = row
        return {
            "run_id": run_id,
            "ingested_at": at.replace(tzinfo=UTC),
            "source": source,
            "fingerprint": fp,
            "row_counts": json.loads(counts),
            "n_warnings": n_warnings,
        }
