"""SQL over an export's files, and nothing else: the DuckDB sandbox of mapping files.

A mapping may compute columns (``derive``), filter rows (``where``) or build a whole table
(``sql``) with DuckDB SQL. The SQL never opens a file: the mapping reader reads the export's
files itself (only files inside the export folder, see
:func:`spm_models.data.sources.mapping.read_mapped_export`) and hands them to DuckDB as
in-memory tables. Before any SQL of the mapping runs, the connection's external access is
switched off and its configuration locked, so ``read_csv('/etc/passwd')``, ``COPY ... TO``,
``ATTACH``, ``INSTALL`` or a query of the host's Python variables fail with a permission
error instead of reading or writing anything, and SQL cannot switch access back on. A query
must be exactly one ``SELECT``.

Every table handed over has a column ``_row``: the spreadsheet row number of each record in
its file, so results can say where a value came from. When a query fails on a value, the
error names the file, row and column holding that value where one does.
"""

from __future__ import annotations

import re

import duckdb
import numpy as np
import pandas as pd

from spm_models.exceptions import Problem

__all__ = ["SqlSandbox", "SqlError", "ROW_COLUMN"]

#: Column holding each record's spreadsheet row number in every table of the sandbox.
ROW_COLUMN = "_row"
_CONVERT = re.compile(r"Could not convert string '((?:[^']|'')*)'")
_NOT_FOUND = re.compile(r'Referenced column "([^"]+)" not found')


class SqlError(Exception):
    """A mapping's SQL failed; ``problem`` says where (file, row, column when known) and why."""

    def __init__(self, problem: Problem):
        super().__init__(str(problem))
        self.problem = problem


class SqlSandbox:
    """An in-memory DuckDB connection that can read only the tables handed to it.

    Use as a context manager; :meth:`add` hands over a text frame of one file of the export.
    """

    def __init__(self) -> None:
        self._con = duckdb.connect(":memory:")
        self._con.execute("SET enable_external_access = false")
        self._con.execute("SET lock_configuration = true")
        self._files: dict[str, tuple[str, pd.DataFrame]] = {}

    def __enter__(self) -> SqlSandbox:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._con.close()

    def add(self, name: str, frame: pd.DataFrame, rows: np.ndarray, *, file: str) -> None:
        """Make ``frame`` (text cells, records of ``file``) queryable as table ``name``."""
        table = frame.reset_index(drop=True).assign(**{ROW_COLUMN: np.asarray(rows, dtype=np.int64)})
        if name in self._files:
            self._con.unregister(name)
        self._con.register(name, table)
        self._files[name] = (file, table)

    def query(self, sql: str, *, key: str, file: str) -> pd.DataFrame:
        """The result of one SELECT statement.

        Parameters
        ----------
        sql : str
            The query.
        key : str
            Its key in the mapping file, for messages.
        file : str
            File named in a problem that cannot be placed in a particular file.

        Raises
        ------
        SqlError
            More than one statement, not a SELECT, or the query failed.
        """
        self._one_select(sql, key=key, file=file, what="give exactly one SELECT query")
        try:
            return self._con.execute(sql).df()
        except duckdb.Error as exc:
            raise SqlError(self._locate(exc, key=key, file=file)) from None

    def _one_select(self, sql: str, *, key: str, file: str, what: str) -> None:
        """SqlError unless ``sql`` is exactly one SELECT statement (``what`` says what to give)."""
        try:
            statements = self._con.extract_statements(sql)
        except duckdb.Error as exc:
            raise SqlError(Problem(file, None, None, None, f"{key}: not valid SQL: {_first_line(exc)}")) from None
        if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
            raise SqlError(Problem(file, None, None, None, f"{key}: {what}"))

    def evaluate(self, table: str, expressions: dict[str, str], *, key: str, file: str) -> pd.DataFrame:
        """``expressions`` (name -> SQL expression over ``table``'s columns) for every row, in order."""
        if not expressions:
            return pd.DataFrame(index=range(len(self._files[table][1])))
        cols = [f"({expr}) AS {_quote(name)}" for name, expr in expressions.items()]
        sql = f"SELECT {', '.join(cols)} FROM {_quote(table)} ORDER BY {ROW_COLUMN}"
        return self._run_each(sql, table, expressions, key=key, file=file)

    def filter(self, table: str, condition: str, *, key: str, file: str) -> np.ndarray:
        """Whether ``condition`` is true for each row of ``table`` (NULL counts as not true)."""
        sql = f"SELECT coalesce(({condition}), false) AS keep FROM {_quote(table)} ORDER BY {ROW_COLUMN}"
        out = self._run_each(sql, table, {"where": condition}, key=key, file=file)
        return out["keep"].to_numpy(dtype=bool)

    def _run_each(self, sql: str, table: str, expressions: dict[str, str], *, key: str, file: str) -> pd.DataFrame:
        # an expression is spliced into a query: it must not close it and start another
        self._one_select(sql, key=key, file=file, what="give one SQL expression, not statements")
        try:
            return self._con.execute(sql).df()
        except duckdb.Error:
            pass
        # find the expression that fails, so the message names it
        for name, expr in expressions.items():
            try:
                self._con.execute(f"SELECT ({expr}) FROM {_quote(table)}").fetchall()
            except duckdb.Error as exc:
                raise SqlError(self._locate(exc, key=key if name == "where" else f"{key}.{name}", file=file)) from None
        raise SqlError(Problem(file, None, None, None, f"{key}: the expressions failed together"))

    def _locate(self, exc: duckdb.Error, *, key: str, file: str) -> Problem:
        """A failed query as a problem: the file, row and column of the value it failed on."""
        message = _first_line(exc)
        m = _CONVERT.search(message)
        if m:
            value = m.group(1).replace("''", "'")
            for fname, frame in self._files.values():
                for col in frame.columns:
                    if col == ROW_COLUMN:
                        continue
                    hit = np.flatnonzero(frame[col].astype(object).to_numpy() == value)
                    if len(hit):
                        row = int(frame[ROW_COLUMN].iloc[hit[0]])
                        return Problem(fname, row, str(col), value, f"{key} failed on this value: {message}")
        m = _NOT_FOUND.search(message)
        if m:
            known = [c for _, f in self._files.values() for c in f.columns if c != ROW_COLUMN]
            return Problem(
                file,
                1,
                m.group(1),
                None,
                f"{key}: no such column; the columns are {', '.join(dict.fromkeys(map(str, known)))} "
                '(names with spaces go in double quotes: "won date")',
            )
        return Problem(file, None, None, None, f"{key} failed: {message}")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
