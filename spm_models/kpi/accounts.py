"""Customers over time: active, new, retained and lost accounts, retention, and returning bookings.

A *customer* is an account with a won deal. For period ``t`` of the grain and a look-back of
``w`` periods (by default one year: 52 weeks, 12 months, 4 quarters or 1 year), let ``A(t)`` be
the accounts with a won deal closed in the ``w`` periods ending with ``t`` (the *active*
customers), and ``f(a)`` the close date of account ``a``'s first won deal (over all the data):

==========================  ====================================================================
``customers_active``        ``|A(t)|``
``customers_new``           accounts whose first won deal closed in ``t``: ``f(a) in t``
``customers_retained``      ``|A(t) & A(t-1)|``: active now and in the window ending a period ago
``customers_lost``          ``|A(t-1) - A(t)|``: active a period ago, not any more
``customer_retention``      ``customers_retained / |A(t-1)|`` (NaN when ``A(t-1)`` is empty)
``returning_bookings``      bookings closed in ``t`` from accounts that won a deal on an earlier day
==========================  ====================================================================

``returning_bookings`` is the ``existing`` segment of
:func:`~spm_models.kpi.new_vs_existing_bookings` at company level, so both agree. Won deals
without an account are not customers. The frame is company-level (``level`` ``company``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from spm_models.calendar import DEFAULT_CALENDAR, Calendar, check_grain, to_day
from spm_models.kpi.engine import OUTPUT_COLUMNS
from spm_models.kpi.grid import COMPANY

__all__ = ["CUSTOMER_KPIS", "customer_kpis", "ONE_YEAR"]

#: KPI name -> (unit, description), in report order.
CUSTOMER_KPIS: dict[str, tuple[str, str]] = {
    "customers_active": ("count", "Accounts with a won deal in the look-back window"),
    "customers_new": ("count", "Accounts whose first won deal closed in the period"),
    "customers_retained": ("count", "Active now and in the window ending a period earlier"),
    "customers_lost": ("count", "Active in the window ending a period earlier, not now"),
    "customer_retention": ("ratio", "Retained / active a period earlier"),
    "returning_bookings": ("currency", "Bookings from accounts that had bought before"),
}
#: Look-back window of one year, in periods of each grain.
ONE_YEAR = {"week": 52, "month": 12, "quarter": 4, "year": 1}


def customer_kpis(
    opportunities: pd.DataFrame,
    *,
    grain: str = "month",
    window: int | None = None,
    start: Any = None,
    end: Any = None,
    calendar: Calendar | None = None,
) -> pd.DataFrame:
    """Customers over time (module docstring) as a long KPI frame.

    Parameters
    ----------
    opportunities : DataFrame
        Canonical opportunities (typed): ``account_id``, ``outcome``, ``close_date``, ``amount``.
    grain : {"week", "month", "quarter", "year"}
    window : int, optional
        Look-back in periods (default :data:`ONE_YEAR` of the grain).
    start, end : date-like, optional
        Reporting span (whole periods); default the first to the last won deal's close date.
    calendar : Calendar, optional
        Fiscal quarters and years (the calendar year by default).

    Returns
    -------
    DataFrame
        ``level, entity_id, grain, period, kpi, segment, value``; level ``company``, segment ``""``.
    """
    grain = check_grain(grain)
    cal = calendar if calendar is not None else DEFAULT_CALENDAR
    w = int(window) if window is not None else ONE_YEAR[grain]
    won = opportunities[(opportunities["outcome"].astype("str") == "won") & opportunities["close_date"].notna()]
    close = pd.to_datetime(won["close_date"])
    if start is None and end is None and not len(won):
        return pd.DataFrame({c: pd.Series(dtype="str") for c in OUTPUT_COLUMNS})
    first = to_day(start, "start") if start is not None else close.min()
    last = to_day(end, "end") if end is not None else close.max()
    periods = cal.period_range(first, last, grain)
    starts = periods.to_numpy().astype("datetime64[D]")
    # number every period from the first won deal on, so windows reaching before the span count
    origin = cal.period_start(pd.Timestamp(min(close.min(), first)) if len(won) else first, grain)
    n_all = len(cal.period_range(origin, last, grain))
    p = (cal.period_number(close, grain) - cal.period_number(pd.DatetimeIndex([origin]), grain)[0]).astype(np.int64)
    offset = n_all - len(periods)
    has_acc = won["account_id"].notna().to_numpy() & (p < n_all)  # deals after the span are not counted
    account = won["account_id"].astype("str")
    amount = won["amount"].fillna(0.0).to_numpy(dtype=float)
    first_p = pd.Series(p[has_acc]).groupby(account[has_acc].to_numpy()).transform("min").to_numpy()
    codes, _ = pd.factorize(account[has_acc])
    bought = np.zeros((codes.max() + 1 if len(codes) else 0, n_all), dtype=bool)
    bought[codes, p[has_acc]] = True
    cum = np.concatenate([np.zeros((len(bought), 1), dtype=np.int64), np.cumsum(bought, axis=1)], axis=1)
    idx = np.arange(n_all)
    active = (cum[:, idx + 1] - cum[:, np.maximum(idx + 1 - w, 0)]) > 0
    before = np.concatenate([np.zeros((len(bought), 1), dtype=bool), active[:, :-1]], axis=1)
    retained = (active & before).sum(axis=0)
    n_before = before.sum(axis=0)
    # returning: the account had a won deal on an earlier day (as new_vs_existing_bookings counts it)
    day = close.to_numpy().astype("datetime64[D]")[has_acc]
    first_day = pd.Series(day).groupby(account[has_acc].to_numpy()).transform("min").to_numpy()
    again = day > first_day
    returning = np.bincount(p[has_acc][again], weights=amount[has_acc][again], minlength=n_all)
    values = {
        "customers_active": active.sum(axis=0),
        "customers_new": np.bincount(first_p[~pd.Series(codes).duplicated().to_numpy()], minlength=n_all)[:n_all],
        "customers_retained": retained,
        "customers_lost": (before & ~active).sum(axis=0),
        "customer_retention": np.where(n_before > 0, retained / np.maximum(n_before, 1), np.nan),
        "returning_bookings": returning[:n_all],
    }
    n_p = len(starts)
    rows = {k: np.asarray(v, dtype=float)[offset:] for k, v in values.items()}
    kpi = np.repeat(list(rows), n_p)
    return pd.DataFrame(
        {
            "level": pd.array(["company"] * len(kpi), dtype="str"),
            "entity_id": pd.array([COMPANY] * len(kpi), dtype="str"),
            "grain": pd.array([grain] * len(kpi), dtype="str"),
            "period": np.tile(starts.astype("datetime64[us]"), len(rows)),
            "kpi": pd.array(kpi, dtype="str"),
            "segment": pd.array([""] * len(kpi), dtype="str"),
            "value": np.concatenate(list(rows.values())),
        }
    )
