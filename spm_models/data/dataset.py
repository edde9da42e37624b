"""A batch of canonical tables on its way into the warehouse, with where each row came from."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from spm_models.calendar import DEFAULT_CALENDAR, Calendar
from spm_models.config import DEFAULT_MEASURE
from spm_models.data.schemas import TABLES
from spm_models.exceptions import Problem

__all__ = ["SourceRef", "Dataset", "empty_table", "significant_columns"]


@dataclass
class SourceRef:
    """Where the rows of one canonical table came from, for error messages.

    Attributes
    ----------
    file : str
        File name shown to the user (or ``"<synthetic>"``).
    rows : numpy.ndarray or None
        Spreadsheet row number of each frame row, aligned by position (header is row 1).
    columns : dict
        Canonical column name -> column name in the file, where they differ.
    date_format : str or None
        ``strptime`` format of the date columns when they arrive as text; ``None`` means ISO
        ``YYYY-MM-DD``.
    date_formats : dict
        Canonical column -> its own format where it differs from ``date_format`` (``None``:
        ISO).
    """

    file: str
    rows: np.ndarray | None = None
    columns: dict[str, str] = field(default_factory=dict)
    date_format: str | None = None
    date_formats: dict[str, str | None] = field(default_factory=dict)

    def row_of(self, position: int) -> int | None:
        if self.rows is None:
            return position + 2
        return int(self.rows[position])

    def column_of(self, canonical: str) -> str:
        return self.columns.get(canonical, canonical)

    def date_format_of(self, canonical: str) -> str | None:
        """The format the text of date column ``canonical`` is written in (``None``: ISO)."""
        return self.date_formats.get(canonical, self.date_format)


@dataclass
class Dataset:
    """Canonical tables from one source, before or after validation.

    Attributes
    ----------
    tables : dict of str to DataFrame
        Canonical table name -> frame with the canonical columns.
    refs : dict of str to SourceRef
        Provenance per table, for row-level error messages.
    source : str
        Human label of the source (``"synthetic seed=7 agents=50"``, a folder, a mapping file).
    warnings : list of Problem
        Things worth telling the user that do not stop the ingest.
    calendar : Calendar or None
        The organisation's fiscal calendar when the source says (a mapping file's
        ``fiscal_year_start``, or the warehouse, which stores the one of its ingest);
        ``None`` when the source does not say, and consumers use the calendar year.
    measure : {"money", "deals"} or None
        How bookings are measured (:data:`spm_models.config.BOOKINGS_MEASURES`) when the source
        says (a mapping file's ``bookings_measure``, or the warehouse); ``None``: not said,
        which is money.
    """

    tables: dict[str, pd.DataFrame]
    refs: dict[str, SourceRef] = field(default_factory=dict)
    source: str = ""
    warnings: list[Problem] = field(default_factory=list)
    calendar: Calendar | None = None
    measure: str | None = None

    @property
    def fiscal_calendar(self) -> Calendar:
        """:attr:`calendar`, or the calendar year when the source did not say."""
        return self.calendar if self.calendar is not None else DEFAULT_CALENDAR

    @property
    def bookings_measure(self) -> str:
        """:attr:`measure`, or money when the source did not say."""
        return self.measure if self.measure is not None else DEFAULT_MEASURE

    def __getitem__(self, name: str) -> pd.DataFrame:
        return self.tables[name]

    def __contains__(self, name: str) -> bool:
        return name in self.tables

    def get(self, name: str) -> pd.DataFrame:
        """The table, or an empty frame with its canonical columns when absent."""
        if name in self.tables:
            return self.tables[name]
        return empty_table(name)

    def ref(self, name: str) -> SourceRef:
        return self.refs.get(name, SourceRef(file=f"{name} (in memory)"))


def empty_table(name: str) -> pd.DataFrame:
    """An empty frame with the columns of canonical table ``name``."""
    return pd.DataFrame({c: pd.Series(dtype=object) for c in TABLES[name].column_names})


def significant_columns(name: str, frame: pd.DataFrame) -> list[str]:
    """The canonical columns of table ``name`` that carry information in ``frame``.

    Every column of the first contract version, and each later column (:attr:`Column.since
    <spm_models.data.schemas.Column>` > 1) that ``frame`` has and that holds a value other than
    empty or its default. A dataset that does not use what later versions added is thereby
    stored, written and fingerprinted exactly as before they existed.
    """
    out = []
    for col in TABLES[name].columns:
        if col.since == 1:
            out.append(col.name)
        elif col.name in frame.columns:
            s = frame[col.name]
            used = s.notna() if col.default is None else s.notna() & (s != col.default)
            if bool(used.any()):
                out.append(col.name)
    return out
