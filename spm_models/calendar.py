"""Reporting periods: weeks (starting Monday), calendar months and calendar quarters.

A period is named by the date it starts (midnight, no time zone). Every function here is
vectorized over numpy datetime arithmetic, so flooring millions of dates takes milliseconds,
and missing dates (``NaT``) stay missing.

>>> import pandas as pd
>>> period_start(pd.Timestamp("2017-06-04"), "week")   # a Sunday
Timestamp('2017-05-29 00:00:00')
>>> period_start(pd.Timestamp("2017-06-04"), "quarter")
Timestamp('2017-04-01 00:00:00')
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from spm_models.exceptions import ConfigError

__all__ = [
    "GRAINS",
    "PERIOD_UNIT",
    "check_grain",
    "period_start",
    "shift_periods",
    "next_period_start",
    "period_range",
    "period_days",
    "period_label",
]

#: Supported reporting grains, finest first.
GRAINS: tuple[str, ...] = ("week", "month", "quarter")
#: Resolution of the period timestamps returned here (pandas 3's default resolution).
PERIOD_UNIT = "us"

_DT = f"datetime64[{PERIOD_UNIT}]"
_NAT_INT = np.iinfo(np.int64).min


def check_grain(grain: str) -> str:
    """Return ``grain`` if it is one of :data:`GRAINS`, else raise :class:`ConfigError`."""
    if grain not in GRAINS:
        raise ConfigError(f"unknown reporting grain {grain!r}: choose one of {', '.join(GRAINS)}")
    return grain


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


def _floor_days(days: np.ndarray, grain: str) -> np.ndarray:
    """Floor ``datetime64[D]`` values to period starts (NaT stays NaT)."""
    nat = np.isnat(days)
    if grain == "week":
        d = days.astype(np.int64)
        # Day 0 (1970-01-01) was a Thursday; (d + 3) % 7 is the number of days since Monday.
        out = (d - (d + 3) % 7).astype("datetime64[D]")
    elif grain == "month":
        out = days.astype("datetime64[M]").astype("datetime64[D]")
    else:
        m = days.astype("datetime64[M]").astype(np.int64)
        out = (m - m % 3).astype("datetime64[M]").astype("datetime64[D]")
    if nat.any():
        out[nat] = np.datetime64("NaT")
    return out


def _shift_days(starts: np.ndarray, n: int, grain: str) -> np.ndarray:
    """Move period starts (``datetime64[D]``) by ``n`` periods."""
    nat = np.isnat(starts)
    if grain == "week":
        out = starts + np.timedelta64(7 * n, "D")
    else:
        months = n * (3 if grain == "quarter" else 1)
        out = (starts.astype("datetime64[M]") + np.timedelta64(months, "M")).astype("datetime64[D]")
    if nat.any():
        out[nat] = np.datetime64("NaT")
    return out


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


def period_start(dates: Any, grain: str) -> Any:
    """Start of the period containing each date.

    Weeks start on Monday; months on the 1st; quarters on 1 January, 1 April, 1 July and
    1 October.

    Parameters
    ----------
    dates : Timestamp, Series, DatetimeIndex or array-like of datetime64
        Dates (any resolution; the time of day is ignored). ``NaT`` stays ``NaT``.
    grain : {"week", "month", "quarter"}
        Reporting grain.

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
    return _wrap(_floor_days(days, grain), dates, scalar)


def shift_periods(starts: Any, n: int, grain: str) -> Any:
    """Period starts moved by ``n`` periods (negative ``n`` moves back).

    ``starts`` must already be period starts (see :func:`period_start`); the result has
    the same container type, at ``datetime64[us]`` resolution.
    """
    check_grain(grain)
    days, scalar = _as_days(starts)
    return _wrap(_shift_days(days, int(n), grain), starts, scalar)


def next_period_start(starts: Any, grain: str) -> Any:
    """Start of the following period: the exclusive end of each period in ``starts``."""
    return shift_periods(starts, 1, grain)


def period_range(start: Any, end: Any, grain: str, *, name: str = "period") -> pd.DatetimeIndex:
    """Starts of every period that overlaps the calendar span ``[start, end]``.

    Parameters
    ----------
    start, end : date-like
        First and last day to cover (inclusive). ``start`` may fall mid-period: the whole
        period containing it is included, likewise for ``end``.
    grain : {"week", "month", "quarter"}
        Reporting grain.
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
    first = _floor_days(_to_days([pd.Timestamp(start)]), grain)[0]
    last = _floor_days(_to_days([pd.Timestamp(end)]), grain)[0]
    if last < first:
        return pd.DatetimeIndex(np.array([], dtype=_DT), name=name)
    if grain == "week":
        n = int((last - first).astype(np.int64) // 7) + 1
    else:
        months = int(last.astype("datetime64[M]").astype(np.int64) - first.astype("datetime64[M]").astype(np.int64))
        n = months // (3 if grain == "quarter" else 1) + 1
    k = np.arange(n)
    if grain == "week":
        days = first + k * np.timedelta64(7, "D")
    else:
        step = 3 if grain == "quarter" else 1
        days = (first.astype("datetime64[M]") + k * step).astype("datetime64[D]")
    return pd.DatetimeIndex(days.astype(_DT), name=name)


def period_days(starts: Any, grain: str) -> np.ndarray:
    """Number of calendar days in each period (7 for weeks; 28-31 for months; 90-92 for quarters)."""
    check_grain(grain)
    days, _ = _as_days(starts)
    return (_shift_days(days, 1, grain) - days).astype(np.int64)


def period_label(starts: Any, grain: str) -> np.ndarray:
    """Human labels for period starts: ``2017-W22`` (ISO week), ``2017-06``, ``2017-Q2``.

    Returns an object array of str (``None`` for NaT).
    """
    check_grain(grain)
    days, _ = _as_days(starts)
    idx = pd.DatetimeIndex(days.astype(_DT))
    ok = ~np.asarray(idx.isna())
    labels = np.full(len(idx), None, dtype=object)
    good = idx[ok]
    if grain == "week":
        iso = good.isocalendar()
        text = [f"{y}-W{w:02d}" for y, w in zip(iso["year"], iso["week"])]
    elif grain == "month":
        text = list(good.strftime("%Y-%m"))
    else:
        text = [f"{y}-Q{q}" for y, q in zip(good.year, good.quarter)]
    labels[ok] = np.array(text, dtype=object) if text else labels[ok]
    return labels
