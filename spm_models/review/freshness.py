"""Which month a scheduled review should cover, and whether the data have reached it.

``spm review`` without ``--month`` (the cron line) reviews the last complete month of the data.
When the export stopped arriving, that is an older month than the one that has just ended, and
the run would quietly review it again. :func:`choose_month` compares the two: the *expected*
month is the last calendar month that has ended by today; data that end before it give a
warning (or, with ``require_fresh``, an error), and data dated after today never make the
review pick a month that has not ended.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from spm_models.calendar import DEFAULT_CALENDAR, parse_month
from spm_models.data.dataset import Dataset
from spm_models.exceptions import ConfigError, DataError
from spm_models.review.outlook import data_last_day, default_month

__all__ = ["StaleDataError", "expected_month", "choose_month", "check_month_has_data"]


class StaleDataError(DataError):
    """The data end before the month a scheduled review expects (``--require-fresh``)."""


def expected_month(today: Any) -> str:
    """The last calendar month that has ended by ``today`` (``YYYY-MM``)."""
    day = pd.Timestamp(today).normalize()
    start = DEFAULT_CALENDAR.period_start(day, "month")
    return f"{DEFAULT_CALENDAR.shift_periods(start, -1, 'month'):%Y-%m}"


def choose_month(dataset: Dataset, *, today: Any = None, require_fresh: bool = False) -> tuple[str, list[str]]:
    """The month to review when none is given, and warnings about the data's freshness.

    Parameters
    ----------
    dataset : Dataset
        The typed tables to review.
    today : date-like, optional
        Default: today.
    require_fresh : bool
        Refuse (instead of warning) when the data end before the expected month.

    Returns
    -------
    (month, warnings) : (str, list of str)
        The last complete month of the data, but never after the expected month.

    Raises
    ------
    StaleDataError
        ``require_fresh`` and the data end before the expected month ends.
    """
    day = pd.Timestamp(today if today is not None else pd.Timestamp.today()).normalize()
    expected = expected_month(day)
    month = default_month(dataset)
    last = data_last_day(dataset)
    warnings = []
    if parse_month(month) < parse_month(expected):
        message = (
            f"the data end on {last:%Y-%m-%d}: their last complete month is {month}, but {expected} has ended "
            f"(today is {day:%Y-%m-%d}). The export may have stopped arriving; ingest a newer one"
        )
        if require_fresh:
            raise StaleDataError(message + " (--require-fresh: nothing was reviewed)")
        warnings.append(message + f"; reviewing {month}")
    elif parse_month(month) > parse_month(expected):
        warnings.append(
            f"the data reach {last:%Y-%m-%d}, after today ({day:%Y-%m-%d}); reviewing {expected}, the last month "
            "that has ended (give --month to choose another)"
        )
        month = expected
    return month, warnings


def check_month_has_data(dataset: Dataset, month: str) -> None:
    """ConfigError when ``month`` ends before the data's first deal or activity."""
    days = []
    o = dataset.get("opportunities")
    if len(o):
        days.append(pd.to_datetime(o["created_date"]).min())
    act = dataset.get("activities")
    if len(act):
        days.append(pd.to_datetime(act["date"]).min())
    days = [d for d in days if pd.notna(d)]
    start = parse_month(month)
    if days and DEFAULT_CALENDAR.period_end(start, "month") < min(days):
        first = min(days)
        raise ConfigError(
            f"the data start on {first:%Y-%m-%d}, after the month {month} ends; choose {first:%Y-%m} or later"
        )
