"""The forecast side of a review: the calendar, the data as of the review date, one model fit,
coherent sums up the hierarchy, and what the draws say about the quarter.

Calendar
--------
A review of month ``M`` looks at the data *as of* the last day of ``M`` (or the last day
with data, if earlier): deals closed later are open at that date, later rows are ignored
(:func:`as_of_dataset`), so reviewing a past month gives the numbers one had then. Quarters
are those of the organisation's fiscal year (:class:`~spm_models.calendar.Calendar`). The
scorecard quarter is the quarter holding ``M``; the *forecast quarter* is the quarter holding
the day after ``as_of`` (the same one, except when ``M`` ends a quarter: then it is the next
quarter, which the forecast covers from its first day).

The model is fitted once per run on weekly agent bookings up to the last complete week
(Monday to Sunday) on or before ``as_of`` and forecasts the weeks to the end of the forecast
quarter. Territory and company forecasts are sums of agent draws
(:func:`spm_models.models.aggregate.aggregate_draws`), so they are coherent with their agents.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from spm_models.calendar import DEFAULT_CALENDAR, Calendar, parse_month
from spm_models.data.dataset import Dataset
from spm_models.evaluation.quota.probability import (
    attainment_distribution,
    bookings_draws,
    period_shares,
    period_totals,
)
from spm_models.exceptions import ConfigError, DataError
from spm_models.kpi import compute_kpis
from spm_models.models.forecast import Forecast

__all__ = [
    "ReviewCalendar",
    "parse_month",
    "data_last_day",
    "default_month",
    "review_calendar",
    "as_of_dataset",
    "review_agents",
    "weekly_history",
    "quarter_outlook",
    "final_bookings_draws",
    "cumulative_fan",
    "actual_cumulative",
    "month_check",
    "accuracy_summary",
]

FAN_QUANTILES: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)


@dataclass(frozen=True)
class ReviewCalendar:
    """Dates of one review (see the module docstring)."""

    month: pd.Timestamp
    month_end: pd.Timestamp
    as_of: pd.Timestamp
    quarter: pd.Timestamp
    forecast_quarter: pd.Timestamp
    forecast_quarter_end: pd.Timestamp
    train_end: pd.Timestamp
    h: int
    previous_month: pd.Timestamp
    calendar: Calendar = DEFAULT_CALENDAR

    @property
    def label(self) -> str:
        return f"{self.month:%Y-%m}"

    @property
    def quarter_label(self) -> str:
        """Label of the forecast quarter (``2025-Q3``, ``FY2026-Q2``)."""
        return self.calendar.quarter_label(self.forecast_quarter)

    @property
    def review_quarter_label(self) -> str:
        """Label of the quarter holding the reviewed month."""
        return self.calendar.quarter_label(self.quarter)

    @property
    def quarter_closed(self) -> bool:
        """Whether the review month ends its quarter: the review then settles that quarter and
        forecasts the next one, and never shows the two in one row."""
        return bool(self.forecast_quarter != self.quarter)

    @property
    def weeks_left(self) -> float:
        return (self.forecast_quarter_end - self.as_of).days / 7.0

    def to_dict(self) -> dict[str, Any]:
        out = {k: (str(v.date()) if isinstance(v, pd.Timestamp) else v) for k, v in self.__dict__.items()}
        out["calendar"] = self.calendar.to_dict()
        return out


def data_last_day(dataset: Dataset) -> pd.Timestamp:
    """Last date in the data: created or close date of a deal, or an activity date."""
    days = []
    o = dataset.get("opportunities")
    for c in ("created_date", "close_date"):
        if c in o and len(o):
            days.append(pd.to_datetime(o[c]).max())
    act = dataset.get("activities")
    if len(act):
        days.append(pd.to_datetime(act["date"]).max())
    days = [d for d in days if pd.notna(d)]
    if not days:
        raise DataError("the warehouse has no dated opportunities or activities to review")
    return max(days).normalize()


def default_month(dataset: Dataset) -> str:
    """The last complete month of the data (the month of the last date if none is complete)."""
    last = data_last_day(dataset)
    cal = DEFAULT_CALENDAR
    m = cal.period_start(last, "month")
    if last != cal.period_end(last, "month"):
        m = cal.shift_periods(m, -1, "month")
    return f"{m:%Y-%m}"


def review_calendar(month: Any, *, data_end: Any, calendar: Calendar = DEFAULT_CALENDAR) -> ReviewCalendar:
    """The dates of the review of ``month`` (``YYYY-MM``) for data ending ``data_end``.

    Quarters are ``calendar``'s (fiscal) quarters.

    Raises
    ------
    ConfigError
        The month starts after the data end.
    """
    m = parse_month(month)
    end_data = pd.Timestamp(data_end).normalize()
    if m > end_data:
        raise ConfigError(
            f"the data end on {end_data.date()}, before the month {m:%Y-%m} starts; choose {end_data:%Y-%m} or earlier"
        )
    month_end = calendar.period_end(m, "month")
    as_of = min(month_end, end_data)
    quarter = calendar.quarter_start(m)
    next_day = as_of + pd.Timedelta(days=1)
    fq_start, fq_end = calendar.quarter_start(next_day), calendar.quarter_end(next_day)
    train_end = as_of - pd.Timedelta(days=(as_of.day_of_week + 1) % 7)  # the Sunday on or before
    first_week = train_end + pd.Timedelta(days=1)
    h = int(np.ceil(((fq_end - first_week).days + 1) / 7))
    previous = calendar.shift_periods(m, -1, "month")
    return ReviewCalendar(m, month_end, as_of, quarter, fq_start, fq_end, train_end, h, previous, calendar)


def as_of_dataset(dataset: Dataset, as_of: Any) -> Dataset:
    """The data as they stood at the end of day ``as_of``.

    Opportunities created later are dropped; those won or lost later are open (no close
    date; a won deal's amount is kept as its pipeline value). Stage history, activities and
    indicators after ``as_of`` are dropped. Accounts, products, agents and targets (the
    plan) are kept as they are.
    """
    day = pd.Timestamp(as_of).normalize()
    t = dict(dataset.tables)
    o = t.get("opportunities")
    if o is not None and len(o):
        o = o[pd.to_datetime(o["created_date"]) <= day].copy()
        later = pd.to_datetime(o["close_date"]) > day
        o.loc[later, "outcome"] = "open"
        o.loc[later, "close_date"] = pd.NaT
        t["opportunities"] = o.reset_index(drop=True)
        h = t.get("stage_history")
        if h is not None and len(h):
            h = h[h["opportunity_id"].isin(o["opportunity_id"]) & (pd.to_datetime(h["entered_date"]) <= day)]
            t["stage_history"] = h.reset_index(drop=True)
            if later.any():  # the stage reached by as_of, from the history where it says
                from spm_models.data.schemas import PIPELINE_STAGES

                code = {s: i for i, s in enumerate(PIPELINE_STAGES)}
                best = h.assign(c=h["stage"].map(code)).sort_values("c").groupby("opportunity_id")["stage"].last()
                ids = o.loc[later, "opportunity_id"]
                o.loc[later, "stage"] = best.reindex(ids.to_numpy()).to_numpy()
                t["opportunities"] = o.reset_index(drop=True)
    for name, col in (("activities", "date"), ("indicators", "date")):
        f = t.get(name)
        if f is not None and len(f):
            t[name] = f[pd.to_datetime(f[col]) <= day].reset_index(drop=True)
    return Dataset(
        tables=t,
        refs=dataset.refs,
        source=f"{dataset.source} as of {day.date()}",
        warnings=list(dataset.warnings),
        calendar=dataset.calendar,
    )


def review_agents(agents: pd.DataFrame, as_of: Any) -> pd.DataFrame:
    """Agents employed at the end of ``as_of`` (hired by then, not yet left)."""
    day = pd.Timestamp(as_of).normalize()
    hire = pd.to_datetime(agents["hire_date"]) if "hire_date" in agents else pd.Series(pd.NaT, index=agents.index)
    leave = pd.to_datetime(agents["leave_date"]) if "leave_date" in agents else pd.Series(pd.NaT, index=agents.index)
    keep = (hire.isna() | (hire <= day)) & (leave.isna() | (leave > day))
    return agents[keep.to_numpy()].reset_index(drop=True)


def weekly_history(dataset: Dataset, agent_ids: Any, *, end: Any) -> pd.DataFrame:
    """Weekly bookings per agent up to the week ending ``end`` (a Sunday), gaps filled with 0.

    Each agent's series runs from its first week in the KPI grid (employment or first
    close) to the week ending ``end``, so every series ends on the same week, as coherent
    sums need.

    Returns
    -------
    DataFrame
        ``unique_id, ds, y``.
    """
    ids = pd.Index([str(a) for a in agent_ids], dtype="str")
    k = compute_kpis(dataset, grain="week", levels=("agent",), kpis=["bookings"], end=end)
    k = k[k["entity_id"].isin(ids)]
    if k.empty:
        raise DataError("no agent has any weekly bookings history before the review date")
    last = pd.Timestamp(end) - pd.Timedelta(days=6)
    k = k[k["period"] <= last]
    first = k.groupby("entity_id")["period"].min().reindex(ids).fillna(last)
    weeks = pd.date_range(first.min(), last, freq="W-MON")
    grid = pd.DataFrame({"unique_id": np.repeat(ids.to_numpy(), len(weeks)), "ds": np.tile(weeks.to_numpy(), len(ids))})
    grid = grid[grid["ds"].to_numpy() >= first.reindex(grid["unique_id"]).to_numpy()]
    y = k.rename(columns={"entity_id": "unique_id", "period": "ds", "value": "y"})[["unique_id", "ds", "y"]]
    out = grid.merge(y, on=["unique_id", "ds"], how="left").fillna({"y": 0.0})
    out["unique_id"] = out["unique_id"].astype("str")
    return out.reset_index(drop=True)


def final_bookings_draws(forecast: Forecast, closed: pd.Series, calendar: ReviewCalendar) -> np.ndarray:
    """Draws of the forecast quarter's bookings: ``closed + sum_k w_k y_k`` (shape ``(n, draws)``).

    ``closed`` (by unique id; missing = 0) is what the quarter booked up to ``as_of``; only
    forecast days after ``as_of`` count (:func:`~spm_models.evaluation.quota.probability.bookings_draws`),
    as in :func:`quarter_outlook`, so the payout and the chance of quota read the same draws.
    """
    c = closed.reindex(pd.Index(forecast.unique_ids.astype(str))).fillna(0.0).to_numpy(dtype=float)
    return bookings_draws(
        forecast, c, period_start=calendar.as_of + pd.Timedelta(days=1), period_end=calendar.forecast_quarter_end
    )


def quarter_outlook(forecast: Forecast, closed: pd.Series, quota: pd.Series, calendar: ReviewCalendar) -> pd.DataFrame:
    """:func:`~spm_models.evaluation.quota.probability.attainment_distribution` of the forecast quarter.

    Only forecast days after ``as_of`` count (``period_start = as_of + 1``); ``closed`` is
    the bookings of the forecast quarter up to ``as_of``.
    """
    q = quota.reindex(pd.Index(forecast.unique_ids.astype(str)))
    c = closed.reindex(pd.Index(forecast.unique_ids.astype(str))).fillna(0.0)
    return attainment_distribution(
        c.rename("bookings"),
        forecast,
        q.astype(float),
        period_end=calendar.forecast_quarter_end,
        period_start=calendar.as_of + pd.Timedelta(days=1),
    )


def cumulative_fan(
    forecast: Forecast, closed: pd.Series, calendar: ReviewCalendar, *, quantiles=FAN_QUANTILES
) -> pd.DataFrame:
    """Quantiles of cumulative bookings of the forecast quarter at the end of each forecast week.

    ``C_k = closed + sum_{i <= k} w_i y_i`` over the draws, with ``w_i`` the share of week
    ``i`` after ``as_of`` and inside the quarter; ``date`` is the week's last day (or the
    quarter end).

    Returns
    -------
    DataFrame
        ``unique_id, date, mean, q0.05, ..., q0.95``.
    """
    start = calendar.as_of + pd.Timedelta(days=1)
    w = period_shares(forecast, period_start=start, period_end=calendar.forecast_quarter_end)
    c = closed.reindex(pd.Index(forecast.unique_ids.astype(str))).fillna(0.0).to_numpy(dtype=float)
    cum = c[:, None, None] + np.cumsum(w[:, :, None] * forecast.draws, axis=1)
    keep = w[0] > 0
    cum = cum[:, keep, :]
    ends = np.minimum(
        forecast.ds[0][keep].astype("datetime64[D]") + 6, np.datetime64(calendar.forecast_quarter_end.date(), "D")
    )
    n, k = cum.shape[:2]
    out = pd.DataFrame(
        {
            "unique_id": pd.array(np.repeat(forecast.unique_ids.astype(str), k), dtype="str"),
            "date": np.tile(ends.astype("datetime64[us]"), n),
            "mean": cum.mean(axis=2).reshape(-1),
        }
    )
    qs = np.quantile(cum, list(quantiles), axis=2)
    for lev, v in zip(quantiles, qs):
        out[f"q{lev:g}"] = v.reshape(-1)
    return out


def actual_cumulative(opportunities: pd.DataFrame, entity_of_agent: pd.Series, *, start: Any, end: Any) -> pd.DataFrame:
    """Cumulative bookings of each entity by close day over ``[start, end]``.

    Returns ``unique_id, date, cumulative``: a row at ``start - 1`` day (0), at every day
    with a won deal, and at ``end``, for every entity of ``entity_of_agent`` (agent -> entity).
    """
    lo, hi = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    o = opportunities[(opportunities["outcome"].astype("str") == "won")]
    close = pd.to_datetime(o["close_date"])
    o = o[(close >= lo) & (close <= hi)]
    ent = entity_of_agent.astype("str")
    ent.index = ent.index.astype("str")
    daily = pd.DataFrame(
        {
            "unique_id": ent.reindex(o["agent_id"].astype("str").to_numpy()).to_numpy(),
            "date": pd.to_datetime(o["close_date"]).to_numpy(),
            "v": o["amount"].fillna(0.0).to_numpy(dtype=float),
        }
    ).dropna(subset=["unique_id"])
    ids = pd.unique(ent.to_numpy())
    edges = pd.DataFrame(
        {"unique_id": np.repeat(ids, 2), "date": np.tile([lo - pd.Timedelta(days=1), hi], len(ids)), "v": 0.0}
    )
    f = (
        pd.concat([daily, edges], ignore_index=True)
        .groupby(["unique_id", "date"], as_index=False)["v"]
        .sum()
        .sort_values(["unique_id", "date"])
    )
    f["cumulative"] = f.groupby("unique_id")["v"].cumsum()
    f["unique_id"] = f["unique_id"].astype("str")
    return f.drop(columns="v").reset_index(drop=True)


def month_check(
    forecast: Forecast, actual: pd.Series, *, month: Any, level_of: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """How a forecast made before ``month`` compares with that month's actual bookings.

    The forecast of the month is ``sum_k w_k y_k`` over its weeks (``w_k`` = share of week
    ``k`` inside the month); ``in_80`` is whether the actual lies in its central 80 %
    interval; ``error = actual - mean`` and ``pct_error = error / mean``.

    Returns
    -------
    DataFrame
        ``unique_id, level, forecast_mean, forecast_q0.1, forecast_q0.5, forecast_q0.9,
        actual, in_80, error, pct_error``.
    """
    m = parse_month(month) if isinstance(month, str) else pd.Timestamp(month)
    end = DEFAULT_CALENDAR.period_end(m, "month")
    tot = period_totals(forecast, period_start=m, period_end=end)
    uids = pd.Index(forecast.unique_ids.astype(str), dtype="str")
    q = np.quantile(tot, [0.1, 0.5, 0.9], axis=1)
    act = actual.reindex(uids).to_numpy(dtype=float)
    mean = tot.mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = np.where(mean > 0, (act - mean) / mean, np.nan)
    return pd.DataFrame(
        {
            "unique_id": uids,
            "level": pd.array([(level_of or {}).get(u, "") for u in uids], dtype="str"),
            "forecast_mean": mean,
            "forecast_q0.1": q[0],
            "forecast_q0.5": q[1],
            "forecast_q0.9": q[2],
            "actual": act,
            "in_80": np.where(np.isnan(act), np.nan, (act >= q[0]) & (act <= q[2])),
            "error": act - mean,
            "pct_error": pct,
        }
    )


def accuracy_summary(accuracy: pd.DataFrame) -> pd.DataFrame:
    """Last month's forecast accuracy per level, from :func:`month_check` rows.

    ``share_in_80`` is the share of entities whose actual fell inside the central 80 %
    interval (about 0.8 when the intervals are honest); ``median_abs_pct_error`` the median
    of ``|actual - mean| / mean``; ``forecast_total`` and ``actual_total`` add up the level.

    Returns
    -------
    DataFrame
        ``level, n, share_in_80, median_abs_pct_error, forecast_total, actual_total``, levels
        in the order agent, territory, company.
    """
    a = accuracy[accuracy["actual"].notna()]
    g = a.groupby("level")
    out = pd.DataFrame(
        {
            "n": g.size(),
            "share_in_80": g["in_80"].mean(),
            "median_abs_pct_error": g["pct_error"].apply(lambda s: s.abs().median()),
            "forecast_total": g["forecast_mean"].sum(),
            "actual_total": g["actual"].sum(),
        }
    )
    order = [lv for lv in ("agent", "territory", "company") if lv in out.index]
    out = out.reindex(order)
    out.index.name = "level"
    return out.reset_index()
