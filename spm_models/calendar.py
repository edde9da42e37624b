"""Every date rule of the workbench: weeks, months, fiscal quarters and years, labels, parsing.

A :class:`Calendar` knows the month in which the organisation's fiscal year starts
(``fiscal_year_start``, 1 = January, a project setting: :mod:`spm_models.config`). Weeks start
on Monday and months are calendar months whatever the fiscal year; quarters are the four
three-month blocks of the fiscal year and years are fiscal years. A period is named by the
date it starts (midnight, no time zone). Every method is vectorised over numpy datetime
arithmetic, so flooring millions of dates takes milliseconds, and missing dates (``NaT``) stay
missing.

Fiscal years are labelled by the calendar year in which they end (``fiscal_year_label="end"``,
the common convention: a year from February 2025 to January 2026 is FY2026) or in which they
start (``"start"``). A calendar year (start in January) keeps plain labels: ``2025-Q3``,
``2025``; any other start gives ``FY2026-Q1``, ``FY2026``.

>>> import pandas as pd
>>> Calendar().period_start(pd.Timestamp("2017-06-04"), "week")  # a Sunday
Timestamp('2017-05-29 00:00:00')
>>> fy = Calendar(fiscal_year_start=2)
>>> fy.period_start(pd.Timestamp("2025-06-04"), "quarter"), fy.quarter_label(pd.Timestamp("2025-06-04"))
(Timestamp('2025-05-01 00:00:00'), 'FY2026-Q2')

The module also holds the one date parser (:func:`parse_dates`) every reader uses, and the
helpers that turn one date-like value or a ``YYYY-MM`` month into a timestamp.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from spm_models.exceptions import ConfigError

__all__ = [
    "GRAINS",
    "PERIOD_UNIT",
    "MONTH_NAMES",
    "Calendar",
    "DEFAULT_CALENDAR",
    "check_grain",
    "fiscal_year_start_month",
    "parse_dates",
    "check_date_format",
    "date_rule",
    "to_day",
    "parse_month",
]

#: Supported reporting grains, finest first.
GRAINS: tuple[str, ...] = ("week", "month", "quarter", "year")
#: Resolution of the period timestamps returned here (pandas 3's default resolution).
PERIOD_UNIT = "us"
#: English month names, January first (for settings such as ``fiscal_year_start = "April"``).
MONTH_NAMES: tuple[str, ...] = (
    "january", "february", "march", "april", "may", "june",
    "july", "august", "september", "october", "november", "december",
)  # fmt: skip

_DT = f"datetime64[{PERIOD_UNIT}]"
_MONTHS_IN = {"quarter": 3, "year": 12}


def check_grain(grain: str, grains: tuple[str, ...] = GRAINS) -> str:
    """Return ``grain`` if it is one of ``grains``, else raise :class:`ConfigError`."""
    if grain not in grains:
        raise ConfigError(f"unknown reporting grain {grain!r}: choose one of {', '.join(grains)}")
    return grain


def fiscal_year_start_month(value: Any, *, where: str = "fiscal_year_start") -> int:
    """A fiscal-year start given as a month number (1-12) or an English month name, as 1-12.

    Raises
    ------
    ConfigError
        Anything else, naming ``where`` (the setting it came from).
    """
    if isinstance(value, str) and value.strip().lower()[:3] in {m[:3] for m in MONTH_NAMES}:
        return [m[:3] for m in MONTH_NAMES].index(value.strip().lower()[:3]) + 1
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and 1 <= int(value) <= 12:
        return int(value)
    raise ConfigError(
        f"{where} must be the month the fiscal year starts in: a number from 1 (January) to 12 or a month name "
        f"such as 'April', got {value!r}"
    )


# --------------------------------------------------------------------------- array helpers


def _to_days(values: Any) -> np.ndarray:
    """Dates as a numpy ``datetime64[D]`` array (NaT kept)."""
    if isinstance(values, (pd.Series, pd.Index)):
        if not isinstance(values.dtype, np.dtype) or values.dtype.kind != "M":
            values = pd.to_datetime(values)
        arr = values.to_numpy()
    else:
        arr = np.asarray(values)
        if arr.dtype.kind != "M":
            arr = pd.to_datetime(arr).to_numpy()
    return arr.astype("datetime64[D]")


def _as_days(values: Any) -> tuple[np.ndarray, bool]:
    """``(datetime64[D] array, was_scalar)`` for any date-like input."""
    if np.ndim(values) == 0 and not isinstance(values, (pd.Series, pd.Index, np.ndarray)):
        return _to_days([values]), True
    return _to_days(values), False


def _wrap(days: np.ndarray, like: Any, scalar: bool):
    """Return ``days`` in the container type of ``like`` at :data:`PERIOD_UNIT` resolution."""
    out = days.astype(_DT)
    if scalar:
        return pd.NaT if np.isnat(out[0]) else pd.Timestamp(out[0])
    if isinstance(like, pd.Series):
        return pd.Series(out, index=like.index, name=like.name)
    if isinstance(like, pd.Index):
        return pd.DatetimeIndex(out, name=like.name)
    return out


def _months(days: np.ndarray) -> np.ndarray:
    """Months since January 1970 of ``datetime64[D]`` values (NaT read as 0; mask it yourself)."""
    return np.where(np.isnat(days), np.datetime64("1970-01-01", "D"), days).astype("datetime64[M]").astype(np.int64)


def _month_days(months: np.ndarray) -> np.ndarray:
    return np.asarray(months, dtype=np.int64).astype("datetime64[M]").astype("datetime64[D]")


def _keep_nat(out: np.ndarray, days: np.ndarray) -> np.ndarray:
    nat = np.isnat(days)
    if nat.any():
        out = out.copy()
        out[nat] = np.datetime64("NaT")
    return out


@dataclass(frozen=True)
class Calendar:
    """Weeks, months, fiscal quarters and fiscal years of one organisation.

    Parameters
    ----------
    fiscal_year_start : int
        Month (1-12) in which the fiscal year starts; 1 is the calendar year. Quarters start
        every three months from it.
    fiscal_year_label : {"end", "start"}
        Name a fiscal year by the calendar year in which it ends (FY2026 runs from February
        2025 to January 2026 when it starts in February) or starts.

    Raises
    ------
    ConfigError
        A start month outside 1-12 or an unknown label convention.
    """

    fiscal_year_start: int = 1
    fiscal_year_label: str = "end"

    def __post_init__(self) -> None:
        object.__setattr__(self, "fiscal_year_start", fiscal_year_start_month(self.fiscal_year_start))
        if self.fiscal_year_label not in ("end", "start"):
            raise ConfigError(f"fiscal_year_label must be 'end' or 'start', got {self.fiscal_year_label!r}")

    # ------------------------------------------------------------------ basics

    @property
    def is_calendar_year(self) -> bool:
        """True when the fiscal year is the calendar year (quarters Jan/Apr/Jul/Oct, plain labels)."""
        return self.fiscal_year_start == 1

    @property
    def _offset(self) -> int:
        return self.fiscal_year_start - 1

    def to_dict(self) -> dict[str, Any]:
        """Plain settings (for provenance and the warehouse)."""
        return {"fiscal_year_start": self.fiscal_year_start, "fiscal_year_label": self.fiscal_year_label}

    def describe(self) -> str:
        """``"calendar year"`` or ``"fiscal year starting in April (named by its end year)"``."""
        if self.is_calendar_year:
            return "calendar year"
        return (
            f"fiscal year starting in {MONTH_NAMES[self._offset].capitalize()} "
            f"(named by the year it {'ends' if self.fiscal_year_label == 'end' else 'starts'} in)"
        )

    # ------------------------------------------------------------------ flooring and shifting

    def _floor(self, days: np.ndarray, grain: str) -> np.ndarray:
        if grain == "week":
            d = days.astype(np.int64)
            # Day 0 (1970-01-01) was a Thursday; (d + 3) % 7 is the number of days since Monday.
            out = (d - (d + 3) % 7).astype("datetime64[D]")
        elif grain == "month":
            out = _month_days(_months(days))
        else:
            m = _months(days)
            out = _month_days(m - (m - self._offset) % _MONTHS_IN[grain])
        return _keep_nat(out, days)

    def _shift(self, starts: np.ndarray, n: int, grain: str) -> np.ndarray:
        if grain == "week":
            out = starts + np.timedelta64(7 * n, "D")
        else:
            months = n * _MONTHS_IN.get(grain, 1)
            out = _month_days(_months(starts) + months)
        return _keep_nat(out, starts)

    def period_start(self, dates: Any, grain: str) -> Any:
        """Start of the period containing each date.

        Weeks start on Monday; months on the 1st; quarters and years on the 1st of the month
        the fiscal year (and every third month after it) starts in.

        Parameters
        ----------
        dates : Timestamp, Series, DatetimeIndex or array-like of datetime64
            Dates (any resolution; the time of day is ignored). ``NaT`` stays ``NaT``.
        grain : {"week", "month", "quarter", "year"}

        Returns
        -------
        Same container as ``dates`` (Timestamp, Series, DatetimeIndex or ndarray) of
        ``datetime64[us]`` period starts.

        Raises
        ------
        ConfigError
            ``grain`` is not one of :data:`GRAINS`.
        """
        check_grain(grain)
        days, scalar = _as_days(dates)
        return _wrap(self._floor(days, grain), dates, scalar)

    def shift_periods(self, starts: Any, n: int, grain: str) -> Any:
        """Period starts moved by ``n`` periods (negative ``n`` moves back).

        ``starts`` must already be period starts (see :meth:`period_start`); the result has
        the same container type, at ``datetime64[us]`` resolution.
        """
        check_grain(grain)
        days, scalar = _as_days(starts)
        return _wrap(self._shift(days, int(n), grain), starts, scalar)

    def next_period_start(self, starts: Any, grain: str) -> Any:
        """Start of the following period: the exclusive end of each period in ``starts``."""
        return self.shift_periods(starts, 1, grain)

    def period_end(self, dates: Any, grain: str) -> Any:
        """Last day (inclusive) of the period containing each date."""
        check_grain(grain)
        days, scalar = _as_days(dates)
        end = self._shift(self._floor(days, grain), 1, grain) - np.timedelta64(1, "D")
        return _wrap(_keep_nat(end, days), dates, scalar)

    def period_range(self, start: Any, end: Any, grain: str, *, name: str = "period") -> pd.DatetimeIndex:
        """Starts of every period that overlaps the calendar span ``[start, end]``.

        Parameters
        ----------
        start, end : date-like
            First and last day to cover (inclusive). ``start`` may fall mid-period: the whole
            period containing it is included, likewise for ``end``.
        grain : {"week", "month", "quarter", "year"}
        name : str
            Name of the returned index.

        Returns
        -------
        DatetimeIndex
            Consecutive period starts, ``datetime64[us]``; empty when ``end < start``.

        Raises
        ------
        ConfigError
            Unknown grain, or a missing start or end.
        """
        check_grain(grain)
        if start is None or end is None or pd.isna(start) or pd.isna(end):
            raise ConfigError("a reporting range needs both a start and an end date")
        first = self.period_number(_to_days([pd.Timestamp(start)]), grain)[0]
        last = self.period_number(_to_days([pd.Timestamp(end)]), grain)[0]
        if last < first:
            return pd.DatetimeIndex(np.array([], dtype=_DT), name=name)
        days = self.period_of_number(np.arange(first, last + 1), grain)
        return pd.DatetimeIndex(days.astype(_DT), name=name)

    def period_days(self, starts: Any, grain: str) -> np.ndarray:
        """Number of calendar days in each period (7 for weeks; 28-31 for months; 89-92 for quarters)."""
        check_grain(grain)
        days, _ = _as_days(starts)
        return (self._shift(days, 1, grain) - days).astype(np.int64)

    # ------------------------------------------------------------------ periods as integers

    def period_number(self, dates: Any, grain: str) -> np.ndarray:
        """Consecutive integer of the period holding each date (an index for array arithmetic).

        Weeks: ``(d + 3) // 7`` with ``d`` days since 1970-01-01 (a Thursday), so week 0 starts
        on Monday 1969-12-29; months: months since January 1970; quarters and years: fiscal
        quarters and years since the one holding January 1970. NaT is not allowed.
        """
        check_grain(grain)
        days, _ = _as_days(dates)
        if np.isnat(days).any():
            raise ConfigError("period numbers need dates; found a missing date")
        if grain == "week":
            return (days.astype(np.int64) + 3) // 7
        m = _months(days)
        if grain == "month":
            return m
        return (m - self._offset) // _MONTHS_IN[grain]

    def period_of_number(self, numbers: Any, grain: str) -> np.ndarray:
        """Start (``datetime64[D]``) of each period number of :meth:`period_number`."""
        check_grain(grain)
        n = np.asarray(numbers, dtype=np.int64)
        if grain == "week":
            return (7 * n - 3).astype("datetime64[D]")
        if grain == "month":
            return _month_days(n)
        return _month_days(n * _MONTHS_IN[grain] + self._offset)

    # ------------------------------------------------------------------ fiscal years and labels

    def fiscal_year(self, dates: Any) -> np.ndarray:
        """The (label) year of the fiscal year holding each date; -1 for NaT."""
        days, _ = _as_days(dates)
        m = _months(days)
        start_year = 1970 + (m - (m - self._offset) % 12) // 12
        fy = start_year + (1 if (self._offset and self.fiscal_year_label == "end") else 0)
        return np.where(np.isnat(days), -1, fy).astype(np.int64)

    def quarter_of_year(self, dates: Any) -> np.ndarray:
        """Fiscal quarter (1-4) holding each date; -1 for NaT."""
        days, _ = _as_days(dates)
        q = ((_months(days) - self._offset) % 12) // 3 + 1
        return np.where(np.isnat(days), -1, q).astype(np.int64)

    def period_label(self, starts: Any, grain: str) -> np.ndarray:
        """Human labels: ``2017-W22`` (ISO week), ``2017-06``, ``2017-Q2`` / ``FY2018-Q1``, ``2017`` / ``FY2018``.

        Returns an object array of str (``None`` for NaT).
        """
        check_grain(grain)
        days, _ = _as_days(starts)
        ok = ~np.isnat(days)
        labels = np.full(len(days), None, dtype=object)
        good = days[ok]
        if not len(good):
            return labels
        if grain == "week":
            iso = pd.DatetimeIndex(good.astype(_DT)).isocalendar()
            text = [f"{y}-W{w:02d}" for y, w in zip(iso["year"], iso["week"])]
        elif grain == "month":
            text = list(pd.DatetimeIndex(good.astype(_DT)).strftime("%Y-%m"))
        else:
            prefix = "" if self.is_calendar_year else "FY"
            years = self.fiscal_year(good)
            if grain == "year":
                text = [f"{prefix}{y}" for y in years]
            else:
                text = [f"{prefix}{y}-Q{q}" for y, q in zip(years, self.quarter_of_year(good))]
        labels[ok] = np.array(text, dtype=object)
        return labels

    def quarter_label(self, day: Any) -> str:
        """Label of the (fiscal) quarter holding one date: ``2025-Q3`` or ``FY2026-Q2``."""
        return str(self.period_label([to_day(day, "day")], "quarter")[0])

    def quarter_start(self, day: Any) -> pd.Timestamp:
        """First day of the (fiscal) quarter holding one date."""
        return self.period_start(to_day(day, "day"), "quarter")

    def quarter_end(self, day: Any) -> pd.Timestamp:
        """Last day of the (fiscal) quarter holding one date."""
        return self.period_end(to_day(day, "day"), "quarter")

    def quarters(self, start: Any, end: Any) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
        """``(first day, last day)`` of every quarter overlapping ``[start, end]``."""
        starts = self.period_range(start, end, "quarter")
        ends = self.next_period_start(starts, "quarter") - pd.Timedelta(days=1)
        return list(zip(starts, ends))

    # ------------------------------------------------------------------ position in the quarter

    def position_in_quarter(self, dates: Any, grain: str) -> np.ndarray:
        """Position of each date within its quarter, counted from 0 (period-end effects).

        Weeks: ``floor((date - first day of its quarter) / 7 days)``, capped at 12, so a
        quarter has weeks 0..12 and a 14th partial week counts as the 13th. Months: the month
        within the quarter, 0..2. Quarters: always 0. ``NaT`` gives -1.
        """
        check_grain(grain, ("week", "month", "quarter"))
        days, _ = _as_days(dates)
        nat = np.isnat(days)
        if grain == "quarter":
            pos = np.zeros(days.shape, dtype=np.int64)
        elif grain == "month":
            pos = (_months(days) - self._offset) % 3
        else:
            filled = np.where(nat, np.datetime64("1970-01-01", "D"), days)
            pos = np.minimum((filled - self._floor(filled, "quarter")).astype(np.int64) // 7, 12)
        return np.where(nat, -1, pos).astype(np.int64)

    def periods_left_in_quarter(self, dates: Any, grain: str) -> np.ndarray:
        """Whole periods left in the quarter after each period's start: 0 for its last period.

        Weeks: ``(last day of the quarter of the Monday - Monday) // 7``, at most 13 (0 or 1
        for the last two weeks). Months: ``2 - month within the quarter``.
        """
        check_grain(grain, ("week", "month"))
        days, _ = _as_days(dates)
        if np.isnat(days).any():
            raise ConfigError("periods left in the quarter need dates; found a missing date")
        if grain == "month":
            return 2 - (_months(days) - self._offset) % 3
        monday = self._floor(days, "week")
        q_end = self._shift(self._floor(monday, "quarter"), 1, "quarter") - np.timedelta64(1, "D")
        return np.minimum((q_end - monday).astype(np.int64) // 7, 13)


#: The calendar year (January start): for week and month grains every calendar agrees.
DEFAULT_CALENDAR = Calendar()


# --------------------------------------------------------------------------- parsing


def date_rule(fmt: str | None) -> str:
    """The plain-words rule of a date column read with ``fmt`` (``None``: ISO)."""
    if fmt is None:
        return "expected a date like 2024-01-31"
    try:
        example = date(2024, 1, 31).strftime(fmt)
    except ValueError:
        example = fmt
    return f"expected a date in the format {fmt} (like {example})"


def _parse_text(text: pd.Series, fmt: str | None) -> pd.Series:
    if fmt is not None:
        return pd.to_datetime(text, format=fmt, errors="coerce").dt.normalize().astype(_DT)
    parts = text.str.extract(r"^(\d{4}-\d{1,2}-\d{1,2})(?:[T ](.+))?$")
    day = pd.to_datetime(parts[0], format="%Y-%m-%d", errors="coerce").astype(_DT)
    has_time = parts[1].notna()
    if has_time.any():
        full = pd.to_datetime(text.where(has_time), format="ISO8601", errors="coerce", utc=True)
        day = day.mask(has_time & full.isna())
    return day


def parse_dates(values: Any, *, fmt: str | None = None) -> tuple[pd.Series, pd.Series]:
    """The one date parser: text (or dates) to ``datetime64[us]`` days, with what failed.

    Text is stripped; an empty cell is missing. With ``fmt`` (a ``strptime`` format such as
    ``%d-%m-%Y`` or ``%d-%m-%Y %H:%M``) every value must match it; without, a value must be
    an ISO date ``YYYY-MM-DD``, or an ISO date-time (``2024-01-31T10:00:00Z``) whose date part,
    as written, is kept. Values that are already dates keep their day (the time and any time
    zone are dropped). Each distinct text is parsed once, so millions of repeated dates are
    cheap.

    Parameters
    ----------
    values : Series or array-like
        Text (``str`` or ``None``) or datetimes.
    fmt : str, optional
        ``strptime`` format of the text.

    Returns
    -------
    (dates, bad) : (Series of datetime64[us], Series of bool)
        ``bad`` marks values that were given but are not a date in the expected form.

    Raises
    ------
    ConfigError
        ``fmt`` is not a usable date format.
    """
    s = values if isinstance(values, pd.Series) else pd.Series(values)
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        if getattr(s.dt, "tz", None) is not None:
            s = s.dt.tz_localize(None)
        return s.dt.normalize().astype(_DT), pd.Series(False, index=s.index)
    if fmt is not None:
        check_date_format(fmt)
    text = s.astype("str").str.strip()
    text = text.mask(s.isna() | (text == ""))
    codes, uniques = pd.factorize(text)
    parsed = _parse_text(pd.Series(uniques, dtype="str"), fmt).to_numpy()
    out = parsed[np.where(codes < 0, 0, codes)] if len(parsed) else np.full(len(text), np.datetime64("NaT"), _DT)
    out = pd.Series(out, index=s.index).where(codes >= 0).astype(_DT)
    return out, text.notna() & out.isna()


def check_date_format(fmt: str) -> None:
    """A ``strptime`` format that formats and parses a date back, or ConfigError."""
    problem = None
    try:
        sample = date(2024, 1, 31).strftime(fmt)
        if pd.isna(pd.to_datetime(sample, format=fmt, errors="coerce")):
            problem = "it cannot read back the dates it writes"
    except (ValueError, TypeError) as exc:
        problem = str(exc)
    if problem or "%" not in fmt:
        raise ConfigError(
            f"date format {fmt!r} is not a usable strptime format ({problem or 'it has no % directive'}); "
            "use codes such as %Y (year), %m (month), %d (day), %H:%M (time), e.g. '%d-%m-%Y'"
        )


def to_day(value: Any, name: str) -> pd.Timestamp:
    """One date-like value as a midnight timestamp, or ConfigError naming ``name``."""
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        ts = pd.NaT
    if pd.isna(ts):
        raise ConfigError(f"{name} must be a date, got {value!r}")
    if ts.tzinfo is not None:
        ts = ts.tz_localize(None)
    return ts.normalize()


def parse_month(month: Any) -> pd.Timestamp:
    """First day of a ``YYYY-MM`` month; ConfigError otherwise."""
    text = str(month).strip()
    try:
        if len(text) != 7 or text[4] != "-" or not (text[:4] + text[5:]).isdigit():
            raise ValueError
        ts = pd.Timestamp(text + "-01")
    except (ValueError, TypeError):
        raise ConfigError(f"month must look like 2025-06 (year-month), got {month!r}") from None
    return ts
