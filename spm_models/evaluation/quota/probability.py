"""Probability of making quota, and checking such probabilities against what happened.

Attainment distribution
-----------------------
For an entity (agent, territory, company) partway through a quota period
``[period_start, period_end]``, bookings at the end of the period are what already closed
in the period plus what the rest of the period brings. With forecast draws ``y_{k,j}``
(period ``k``, draw ``j``) of the remaining periods,

.. math::

    B_j = C + \\sum_k w_k\\, y_{k,j}, \\qquad A_j = B_j / Q,

where ``C`` is the closed-to-date bookings, ``Q`` the quota, and ``w_k`` the share of the
calendar days of forecast period ``k`` inside the quota period (1 for a period wholly inside,
e.g. 3/7 for a week of which three days fall in the quarter, or 3/5 counting working
days only; 0 outside). The draws of
``A`` give ``P(A >= 1)``, quantiles of ``A``, ``E[A]`` and the expected shortfall
``E[max(Q - B, 0)]`` (how much short of quota the entity is expected to end, in money;
0 when it is sure to make it).

Calibration
-----------
:func:`reliability_table` bins predicted probabilities and compares each bin's mean
prediction with the observed rate (a reliability diagram as a table);
:func:`calibration_summary` reduces it to a few numbers.
:mod:`spm_models.evaluation.quota.backtest` runs the whole machinery over past quarters of a synthetic
organisation, with the oracle built from its ground truth or with a real model.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

from spm_models import kpi
from spm_models.calendar import DEFAULT_CALENDAR, Calendar, to_day
from spm_models.exceptions import ConfigError, DataError
from spm_models.models.forecast import Forecast

__all__ = [
    "ATTAINMENT_QUANTILES",
    "attainment_distribution",
    "quota_for_period",
    "period_shares",
    "period_totals",
    "bookings_draws",
    "chance_of_reaching",
    "reliability_table",
    "calibration_summary",
]

#: Attainment quantile levels reported by :func:`attainment_distribution`.
ATTAINMENT_QUANTILES: tuple[float, ...] = (0.05, 0.25, 0.5, 0.75, 0.95)


def quota_for_period(
    targets: pd.DataFrame,
    *,
    period_start: Any,
    period_end: Any,
    agents: pd.DataFrame | None = None,
    level: str = "agent",
    calendar: Calendar = DEFAULT_CALENDAR,
) -> pd.Series:
    """Quota of each entity over ``[period_start, period_end]`` from the canonical targets.

    Uses :func:`spm_models.kpi.quota` (targets prorated by overlapping days, agent targets
    summed to territories) at the coarsest grain (quarter, month, week; quarters of
    ``calendar``) whose periods tile the requested span exactly, and adds up its periods.

    Parameters
    ----------
    targets : DataFrame
        Canonical targets table.
    period_start, period_end : date-like
        The quota period, both days included.
    agents : DataFrame, optional
        Canonical agents table; needed for territory and company levels. For the agent
        level it may be omitted.
    level : {"agent", "territory", "company"}

    Returns
    -------
    Series
        Quota by entity id (entities without a target in the span are absent).

    Raises
    ------
    ConfigError
        The span does not start and end on week, month or quarter boundaries, or a
        territory or company quota is asked for without the agents table.
    """
    start, end = to_day(period_start, "period_start"), to_day(period_end, "period_end")
    if end < start:
        raise ConfigError(f"period_end {end.date()} is before period_start {start.date()}")
    after = end + pd.Timedelta(days=1)
    grain = next(
        (
            g
            for g in ("quarter", "month", "week")
            if calendar.period_start(start, g) == start and calendar.period_start(after, g) == after
        ),
        None,
    )
    if grain is None:
        raise ConfigError(
            f"the quota period {start.date()} to {end.date()} does not start and end on week (Monday to "
            "Sunday), month or quarter boundaries; pass the quota per entity instead of the targets table"
        )
    if agents is None:
        if level != "agent":
            raise ConfigError(f"a {level} quota needs the agents table (to know each agent's territory)")
        ids = targets["agent_id"].dropna().astype("str").unique()
        agents = pd.DataFrame(
            {"agent_id": pd.array(ids, dtype="str"), "territory_id": pd.array(["all"] * len(ids), dtype="str")}
        )
    q = kpi.quota(targets, agents, grain=grain, levels=[level], start=start, end=end, calendar=calendar)
    q = q[(q["period"] >= start) & (q["period"] <= end)]
    return q.groupby("entity_id", sort=True)["value"].sum().rename("quota")


def _by_entity(values: Any, name: str, column: str) -> pd.Series:
    """A number per entity from a Series, mapping or frame with ``unique_id`` and ``column``."""
    if isinstance(values, pd.DataFrame):
        missing = [c for c in ("unique_id", column) if c not in values.columns]
        if missing:
            raise DataError(f"{name} needs columns unique_id and {column} (missing {', '.join(missing)})")
        ids = values["unique_id"].astype("str")
        if ids.duplicated().any():
            raise DataError(f"{name} repeats unique_id {ids[ids.duplicated()].iloc[0]!r}; give one row per entity")
        s = pd.Series(
            pd.to_numeric(values[column], errors="coerce").to_numpy(dtype=float), index=pd.Index(ids, dtype="str")
        )
    else:
        s = pd.Series(values, dtype=float) if isinstance(values, Mapping) else pd.Series(values).astype(float)
        s.index = pd.Index(s.index.astype(str), dtype="str")
    return s


def _period_shares(forecast: Forecast, start: pd.Timestamp | None, end: pd.Timestamp, day_count: str) -> np.ndarray:
    """``w_k`` per series and period: share of each forecast period's days inside the quota period."""
    ds = forecast.ds.astype("datetime64[D]")
    nxt = (
        (pd.DatetimeIndex(forecast.ds.reshape(-1)) + to_offset(forecast.freq))
        .to_numpy()
        .astype("datetime64[D]")
        .reshape(ds.shape)
    )
    lo = ds if start is None else np.maximum(ds, np.datetime64(start.date(), "D"))
    hi = np.maximum(np.minimum(nxt, np.datetime64(end.date(), "D") + 1), lo)
    if day_count == "business":
        inside, whole = np.busday_count(lo, hi), np.busday_count(ds, nxt)
    else:
        inside, whole = (hi - lo).astype(np.int64), (nxt - ds).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(whole > 0, inside / np.where(whole > 0, whole, 1), 0.0)


def period_shares(
    forecast: Forecast, *, period_end: Any, period_start: Any = None, day_count: str = "calendar"
) -> np.ndarray:
    """``w_k`` of the module docstring: the share of each forecast period's days inside a span.

    Parameters
    ----------
    forecast : Forecast
    period_end : date-like
        Last day of the span (included).
    period_start : date-like, optional
        First day of the span; forecast days before it count 0.
    day_count : {"calendar", "business"}

    Returns
    -------
    ndarray, shape (n_series, h)
        Weights in [0, 1], so ``closed + (w * draws).sum(axis=1)`` are draws of the span's total.
    """
    if day_count not in ("calendar", "business"):
        raise ConfigError(f"day_count must be 'calendar' or 'business', got {day_count!r}")
    start = None if period_start is None else to_day(period_start, "period_start")
    return _period_shares(forecast, start, to_day(period_end, "period_end"), day_count)


def period_totals(
    forecast: Forecast, *, period_end: Any, period_start: Any = None, day_count: str = "calendar"
) -> np.ndarray:
    """Draws of each series' bookings over a span: ``sum_k w_k y_{k,j}``, shape ``(n_series, n_draws)``.

    ``w_k`` from :func:`period_shares` (same parameters); add what already closed in the span
    to get draws of its total.
    """
    w = period_shares(forecast, period_end=period_end, period_start=period_start, day_count=day_count)
    return np.einsum("nh,nhd->nd", w, forecast.draws)


def bookings_draws(
    forecast: Forecast,
    closed: np.ndarray | None,
    *,
    period_end: Any,
    period_start: Any = None,
    day_count: str = "calendar",
) -> np.ndarray:
    """Draws of each series' bookings over a quota period: ``B_j = closed + sum_k w_k y_{k,j}``.

    Parameters
    ----------
    forecast : Forecast
    closed : array of float, optional
        What each series already booked in the period (aligned with ``forecast.unique_ids``);
        0 when ``None``.
    period_end, period_start, day_count
        As in :func:`period_totals`.

    Returns
    -------
    ndarray, shape (n_series, n_draws)
    """
    rest = period_totals(forecast, period_end=period_end, period_start=period_start, day_count=day_count)
    if closed is None:
        return rest
    return np.asarray(closed, dtype=float)[:, None] + rest


def chance_of_reaching(totals: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``P(B >= target)`` per row: the share of draws at or above the target; NaN without a target.

    The one place a chance of hitting quota is computed from draws. What is already booked is
    part of every draw, so a row whose bookings already reach the target gets exactly 1.
    """
    t = np.asarray(target, dtype=float)
    ok = np.isfinite(t) & (t > 0)
    with np.errstate(invalid="ignore"):
        return np.where(ok, (totals >= np.where(ok, t, np.inf)[:, None]).mean(axis=1), np.nan)


def attainment_distribution(
    closed_to_date: pd.DataFrame | pd.Series | Mapping[str, float] | None,
    forecast: Forecast,
    quota: pd.DataFrame | pd.Series | Mapping[str, float] | float,
    *,
    period_end: Any,
    period_start: Any = None,
    agents: pd.DataFrame | None = None,
    level: str = "agent",
    quantiles: Sequence[float] = ATTAINMENT_QUANTILES,
    day_count: str = "calendar",
) -> pd.DataFrame:
    """Distribution of quota attainment at the end of a quota period, per entity.

    ``B_j = closed_to_date + sum_k w_k y_{k,j}`` and ``A_j = B_j / quota`` over the forecast
    draws ``j`` (see the module docstring).

    Parameters
    ----------
    closed_to_date : DataFrame, Series, mapping or None
        Bookings already closed in the quota period, per entity (frame: ``unique_id,
        bookings``); entities not listed (or ``None``) have 0.
    forecast : Forecast
        Draws of the periods after the closed-to-date cut-off, one series per entity. It
        must reach ``period_end``.
    quota : DataFrame, Series, mapping or float
        The canonical targets table (prorated to the quota period by
        :func:`quota_for_period`; needs ``period_start``), a frame ``unique_id, quota``, a
        Series or mapping by entity, or one number for every entity.
    period_end : date-like
        Last day of the quota period.
    period_start : date-like, optional
        First day of the quota period; forecast days before it are not counted. Required
        with a targets table.
    agents : DataFrame, optional
        Agents table for territory and company quotas from targets.
    level : {"agent", "territory", "company"}
        Level of the entities, for quotas from targets.
    quantiles : sequence of float
        Attainment quantile levels.
    day_count : {"calendar", "business"}
        How ``w_k`` counts days: all calendar days, or Monday to Friday only (for data
        whose deals close on working days).

    Returns
    -------
    DataFrame
        One row per forecast series: ``unique_id, quota, closed_to_date,
        expected_remaining, expected_bookings`` (mean of ``B``), ``median_bookings``,
        ``expected_attainment, p_quota`` (``P(A >= 1)``),
        ``attainment_q0.05 ...`` and ``expected_shortfall`` (``E[max(quota - B, 0)]``).
        Attainment columns are NaN where the quota is missing or 0.

    Raises
    ------
    DataError
        The forecast stops before ``period_end``, or an input frame is malformed.
    ConfigError
        Dates or quantiles are invalid.
    """
    end = to_day(period_end, "period_end")
    start = None if period_start is None else to_day(period_start, "period_start")
    levels = tuple(float(q) for q in quantiles)
    if any(not 0 < q < 1 for q in levels):
        raise ConfigError(f"quantiles must be between 0 and 1, got {quantiles!r}")
    uids = pd.Index(forecast.unique_ids.astype(str), dtype="str")
    last_end = (pd.Timestamp(forecast.ds.max()) + to_offset(forecast.freq)) - pd.Timedelta(days=1)
    if last_end < end:
        raise DataError(
            f"the forecast covers up to {last_end.date()} but the quota period ends {end.date()}; "
            "forecast more periods ahead"
        )
    if isinstance(quota, pd.DataFrame) and "quota" in quota.columns and "period_start" in quota.columns:
        if start is None:
            raise ConfigError("prorating quotas from the targets table needs period_start")
        q = quota_for_period(quota, period_start=start, period_end=end, agents=agents, level=level)
    elif np.isscalar(quota):
        q = pd.Series(float(quota), index=uids)
    else:
        q = _by_entity(quota, "quota", "quota")
    q = q.reindex(uids).to_numpy(dtype=float)
    closed = (
        np.zeros(len(uids))
        if closed_to_date is None
        else _by_entity(closed_to_date, "closed_to_date", "bookings").reindex(uids).fillna(0.0).to_numpy(dtype=float)
    )
    total = bookings_draws(forecast, closed, period_end=end, period_start=start, day_count=day_count)
    rest = total - closed[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        ok = np.isfinite(q) & (q > 0)
        att = np.where(ok[:, None], total / np.where(ok, q, 1.0)[:, None], np.nan)
    p_quota = chance_of_reaching(total, q)
    out = pd.DataFrame(
        {
            "unique_id": pd.array(uids, dtype="str"),
            "quota": q,
            "closed_to_date": closed,
            "expected_remaining": rest.mean(axis=1),
            "expected_bookings": total.mean(axis=1),
            "median_bookings": np.median(total, axis=1) if total.shape[1] else np.full(len(uids), np.nan),
            "expected_attainment": att.mean(axis=1),
            "p_quota": p_quota,
        }
    )
    qs = np.quantile(att, levels, axis=1) if att.shape[1] else np.full((len(levels), len(uids)), np.nan)
    for lev, values in zip(levels, qs):
        out[f"attainment_q{lev:g}"] = values
    out["expected_shortfall"] = np.where(ok, np.maximum(q[:, None] - total, 0.0).mean(axis=1), np.nan)
    return out


def _bin_edges(bins: int | Sequence[float]) -> np.ndarray:
    if isinstance(bins, (int, np.integer)) and not isinstance(bins, bool):
        if bins < 1:
            raise ConfigError(f"bins must be at least 1, got {bins}")
        return np.linspace(0.0, 1.0, int(bins) + 1)
    edges = np.asarray(list(bins), dtype=float)
    if edges.size < 2 or np.any(np.diff(edges) <= 0) or edges[0] > 0 or edges[-1] < 1:
        raise ConfigError("bin edges must increase and cover 0 to 1")
    return edges


def _probs_and_outcomes(predicted_probs: Iterable[float], outcomes: Iterable[Any]) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(
        list(predicted_probs) if not isinstance(predicted_probs, (np.ndarray, pd.Series)) else predicted_probs,
        dtype=float,
    )
    y = np.asarray(list(outcomes) if not isinstance(outcomes, (np.ndarray, pd.Series)) else outcomes, dtype=float)
    if p.shape != y.shape or p.ndim != 1:
        raise DataError(f"{p.size} predicted probabilities for {y.size} outcomes; give one outcome per prediction")
    keep = ~(np.isnan(p) | np.isnan(y))
    p, y = p[keep], y[keep]
    if ((p < 0) | (p > 1)).any():
        raise DataError("predicted probabilities must be between 0 and 1")
    if not np.isin(y, (0.0, 1.0)).all():
        raise DataError("outcomes must be 0/1 or True/False")
    return p, y


def reliability_table(
    predicted_probs: Iterable[float],
    outcomes: Iterable[Any],
    *,
    bins: int | Sequence[float] = 10,
    min_count: int = 30,
) -> pd.DataFrame:
    """Reliability diagram as a table: predicted probability against observed frequency.

    Predictions are grouped into bins of equal width on [0, 1] (the last bin includes 1).
    For bin ``b`` with ``n_b`` predictions: ``mean_predicted = mean(p)``,
    ``observed_rate = mean(y)`` and ``abs_gap = |observed_rate - mean_predicted|``. A
    calibrated forecaster has small gaps; a gap is only meaningful when ``n_b`` is large
    (its sampling standard error is about ``sqrt(p (1 - p) / n_b)``). Pairs where either
    value is missing are dropped.

    Parameters
    ----------
    predicted_probs : iterable of float
        Predicted probabilities in [0, 1].
    outcomes : iterable of bool or 0/1
        What happened.
    bins : int or sequence of float
        Number of equal-width bins, or bin edges from 0 to 1.
    min_count : int
        Bins with fewer predictions are flagged ``enough = False``.

    Returns
    -------
    DataFrame
        One row per bin: ``bin`` (0-based), ``lower``, ``upper``, ``n``,
        ``mean_predicted``, ``observed_rate``, ``abs_gap`` (NaN for empty bins), ``enough``.
    """
    p, y = _probs_and_outcomes(predicted_probs, outcomes)
    edges = _bin_edges(bins)
    k = len(edges) - 1
    b = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, k - 1)
    n = np.bincount(b, minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(b, weights=p, minlength=k) / n
        rate = np.bincount(b, weights=y, minlength=k) / n
    return pd.DataFrame(
        {
            "bin": np.arange(k),
            "lower": edges[:-1],
            "upper": edges[1:],
            "n": n.astype(np.int64),
            "mean_predicted": mean_p,
            "observed_rate": rate,
            "abs_gap": np.abs(rate - mean_p),
            "enough": n >= min_count,
        }
    )


def calibration_summary(
    predicted_probs: Iterable[float],
    outcomes: Iterable[Any],
    *,
    bins: int | Sequence[float] = 10,
    min_count: int = 30,
) -> dict[str, float]:
    """A few numbers that summarise calibration and sharpness.

    Returns
    -------
    dict
        ``n``; ``brier`` = mean of ``(p - y)^2``; ``ece`` (expected calibration error) =
        ``sum_b n_b |gap_b| / n`` over all bins; ``max_gap`` = the largest ``|gap_b|`` among
        bins with at least ``min_count`` predictions (NaN if none); ``bins_checked`` = the
        number of such bins; ``mean_predicted`` and ``observed_rate`` overall.
    """
    p, y = _probs_and_outcomes(predicted_probs, outcomes)
    table = reliability_table(p, y, bins=bins, min_count=min_count)
    filled = table[table["n"] > 0]
    checked = table[table["enough"]]
    n = len(p)
    return {
        "n": float(n),
        "brier": float(np.mean((p - y) ** 2)) if n else float("nan"),
        "ece": float((filled["n"] * filled["abs_gap"]).sum() / n) if n else float("nan"),
        "max_gap": float(checked["abs_gap"].max()) if len(checked) else float("nan"),
        "bins_checked": float(len(checked)),
        "mean_predicted": float(p.mean()) if n else float("nan"),
        "observed_rate": float(y.mean()) if n else float("nan"),
    }
