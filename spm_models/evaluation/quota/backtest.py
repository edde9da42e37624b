"""P(quota) over past quarters: is it calibrated?

The data are any set of canonical tables (a :class:`~spm_models.data.dataset.Dataset` or a
mapping, e.g. the user's own history as of a review date). For every calendar quarter with
quotas wholly inside the data and every offset ``o`` (weeks into the quarter), the forecast
origin is the last Sunday on or before ``period_start - 1 day + 7 o``.
What each agent won from ``period_start`` to the origin is closed to date; a forecast of the
weeks after the origin gives the rest, and
:func:`~spm_models.evaluation.quota.probability.attainment_distribution` turns both into
``p_quota = P(closed + remaining >= quota)`` with the quota from the targets table.
``hit`` records whether the agent's bookings over the whole quarter reached the quota, so
``reliability_table(p_quota, hit)`` checks the probabilities against what happened.

The forecast is either

* a **forecaster** callable ``(origin, n_weeks, n_draws, seed) -> Forecast``, such as the
  oracle of a synthetic organisation (:mod:`spm_models.synthetic.oracle`), drawn from the
  generator's ground truth: the best forecast there is, whose probabilities must come out
  calibrated if the machinery is right; or
* a **real model** (any :class:`~spm_models.models.base.ForecastModel`), fitted afresh at
  every origin on the agents' weekly bookings up to the origin
  (:func:`~spm_models.indicators.series.bookings_series`) and knowing nothing else, as it
  would in production.

The data span: ``data_start`` to ``data_end`` when given; otherwise from the first week of the
bookings window (:mod:`spm_models.indicators.series`) to ``data_end`` (by default the last
created or close date of an opportunity). A monthly review backtests at one offset, its own
point in the quarter (:func:`quarter_offset_weeks`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from spm_models.calendar import DEFAULT_CALENDAR, Calendar, to_day
from spm_models.data.dataset import Dataset
from spm_models.evaluation.metrics import randomized_pit
from spm_models.evaluation.quota.calibration import N_POINTS
from spm_models.evaluation.quota.probability import bookings_draws, chance_of_reaching, quota_for_period
from spm_models.exceptions import ConfigError, DataError
from spm_models.indicators.series import bookings_series
from spm_models.models.base import ForecastModel, clone, fit_tables_of
from spm_models.models.forecast import Forecast

__all__ = [
    "Forecaster",
    "agent_bookings_frame",
    "quarter_offset_weeks",
    "backtest_quota_probabilities",
    "model_forecast_at",
    "calibration_rows",
]

Data = Dataset | Mapping[str, pd.DataFrame]
#: ``(origin, n_weeks, n_draws, seed) -> Forecast``: weekly draws of every agent for the
#: ``n_weeks`` weeks starting the Monday after ``origin`` (a Sunday).
Forecaster = Callable[[pd.Timestamp, int, int, int], Forecast]

WEEK = pd.Timedelta(weeks=1)


def _tables(data: Data) -> Mapping[str, pd.DataFrame]:
    """The canonical tables of a Dataset or a mapping."""
    if isinstance(data, Dataset):
        return data.tables
    if isinstance(data, Mapping):
        return data
    raise ConfigError(f"the data must be a Dataset or a mapping of canonical tables, got {type(data).__name__}")


def agent_bookings_frame(data: Data) -> pd.DataFrame:
    """Weekly bookings of every agent as a model frame ``unique_id, ds, y``.

    ``y`` is the ``bookings`` KPI by close week (Monday,
    :func:`~spm_models.indicators.series.bookings_series`), every week from the agent's first
    row to the last week the agent is employed (weeks without a row are 0), so a leaver's
    late closes do not make the agent look active.

    Parameters
    ----------
    data : Dataset or mapping of str to DataFrame
        Typed canonical tables (``opportunities`` and ``agents``; an agent without a
        ``leave_date`` column or value is still employed).
    """
    tables = _tables(data)
    s = bookings_series(tables, level="agent", grain="week")
    s = s.assign(entity_id=s["entity_id"].astype("str"))
    agents = tables["agents"].assign(agent_id=lambda a: a["agent_id"].astype("str")).set_index("agent_id")
    leave = (
        pd.to_datetime(agents["leave_date"])
        if "leave_date" in agents
        else pd.Series(pd.NaT, index=agents.index, dtype="datetime64[us]")
    )
    span = s.groupby("entity_id")["period"].agg(["min", "max"])
    leave_week = DEFAULT_CALENDAR.period_start(leave, "week").reindex(span.index)
    last = span["max"].where(leave_week.isna(), np.minimum(span["max"], leave_week))
    grid = pd.DataFrame(
        {"unique_id": np.repeat(span.index.to_numpy(), ((last - span["min"]).dt.days // 7 + 1).to_numpy())}
    )
    grid["ds"] = (
        grid.groupby("unique_id").cumcount().to_numpy() * WEEK + span["min"].reindex(grid["unique_id"]).to_numpy()
    )
    y = s.set_index(["entity_id", "period"])["value"].astype(float)
    grid["y"] = y.reindex(pd.MultiIndex.from_frame(grid[["unique_id", "ds"]])).fillna(0.0).to_numpy()
    grid["unique_id"] = grid["unique_id"].astype("str")
    return grid


def quarter_offset_weeks(as_of: Any, quarter_start: Any) -> int:
    """Whole weeks of a quarter gone by the end of day ``as_of``: the review's backtest offset.

    ``o = max(0, floor((as_of - quarter_start + 1 day) / 7 days))``, the largest offset whose
    anchor ``quarter_start - 1 day + 7 o`` is on or before ``as_of`` (0 when ``as_of`` is before
    the quarter, as at a quarter end, whose review forecasts the next quarter from its start).
    A review at the end of the first, second and third month of a quarter gets 4, 8 and 0.
    """
    days = (to_day(as_of, "as_of") - to_day(quarter_start, "quarter_start")).days + 1
    return max(0, days // 7)


def _data_span(
    data: Data, frame: pd.DataFrame | None, data_start: Any, data_end: Any
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last day the backtest may use (module docstring)."""
    if data_start is not None:
        first = to_day(data_start, "data_start")
    elif frame is not None:
        first = pd.Timestamp(frame["ds"].min())
    else:
        raise ConfigError("a backtest with a forecaster needs data_start (the first day of its data)")
    opps = _tables(data)["opportunities"]
    last = max(pd.to_datetime(opps[c]).max() for c in ("created_date", "close_date"))
    if data_end is not None:
        last = to_day(data_end, "data_end")
    return first, pd.Timestamp(last).normalize()


def _quarters(
    targets: pd.DataFrame, first_day: pd.Timestamp, last_day: pd.Timestamp, calendar: Calendar
) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """(Fiscal) quarters touched by the targets and wholly inside ``[first_day, last_day]``."""
    if not len(targets):
        return []
    lo, hi = pd.to_datetime(targets["period_start"]).min(), pd.to_datetime(targets["period_end"]).max()
    return [(s, e) for s, e in calendar.quarters(lo, hi) if s >= first_day and e <= last_day]


def _origins(period_start: pd.Timestamp, period_end: pd.Timestamp, offsets: Sequence[int], first_day: pd.Timestamp):
    for off in offsets:
        anchor = period_start - pd.Timedelta(days=1) + pd.Timedelta(weeks=int(off))
        origin = anchor - pd.Timedelta(days=(anchor.weekday() + 1) % 7)
        if origin < first_day - pd.Timedelta(days=1) or origin >= period_end:
            continue
        yield int(off), origin


def model_forecast_at(
    model: ForecastModel,
    frame: pd.DataFrame,
    origin: pd.Timestamp,
    h: int,
    n_draws: int,
    min_weeks: int,
    tables: Mapping[str, pd.DataFrame],
) -> Forecast | None:
    """Fit a clone of ``model`` on the agents active in the week before the origin (at least
    ``min_weeks`` weeks of history, and the tables it reads at fit) and forecast ``h`` weeks
    from the Monday after it (``origin`` a Sunday; ``frame`` from :func:`agent_bookings_frame`).

    Returns
    -------
    Forecast or None
        ``n_draws`` weekly draws per agent; None when no agent has the history."""
    last_week = origin - pd.Timedelta(days=6)
    train = frame[frame["ds"] <= last_week]
    span = train.groupby("unique_id")["ds"].agg(["max", "size"])
    keep = span.index[(span["max"] == last_week) & (span["size"] >= min_weeks)]
    if not len(keep):
        return None
    fitted = clone(model).fit(train[train["unique_id"].isin(keep)], **fit_tables_of(model, tables))
    return fitted.predict(h, n_draws=n_draws)


def backtest_quota_probabilities(
    data: Data,
    *,
    model: ForecastModel | None = None,
    forecaster: Forecaster | None = None,
    offsets_weeks: Sequence[int] = (0, 4, 8),
    n_draws: int = 500,
    seed: int = 0,
    min_history_weeks: int = 13,
    first_quarter: Any = None,
    data_start: Any = None,
    data_end: Any = None,
    day_count: str = "business",
    calendar: Calendar | None = None,
    levels: Sequence[str] = ("agent",),
) -> pd.DataFrame:
    """P(quota) per agent-quarter (and territory-quarter) at several points of each past quarter.

    Parameters
    ----------
    data : Dataset or mapping of str to DataFrame
        Typed canonical tables (``opportunities``, ``agents``, ``targets``), e.g. a
        warehouse's data as of a review date.
    model : ForecastModel, optional
        Unfitted model, cloned and fitted at every origin on weekly bookings up to it (for
        agents active at the origin with at least ``min_history_weeks`` weeks of history;
        the others are left out).
    forecaster : callable, optional
        Instead of a model, a :data:`Forecaster` called at every origin with
        ``(origin, n_weeks, n_draws, seed)`` (the synthetic organisation's oracle,
        :func:`spm_models.synthetic.oracle.oracle_quota_backtest`). Give exactly one of
        ``model`` and ``forecaster``.
    offsets_weeks : sequence of int
        Weeks into the quarter of each origin (0: just before the quarter starts). A review
        passes its own point in the quarter, ``[quarter_offset_weeks(as_of, quarter_start)]``.
    n_draws : int
    seed : int
        Seed of the forecaster's draws and of the PIT's tie-breaking (a model uses its own
        ``random_state``).
    min_history_weeks : int
        History a model needs before an agent is scored.
    first_quarter : date-like, optional
        Skip quarters starting before it (a model needs history before the first origin).
    data_start : date-like, optional
        First day the data cover (default: the first week of the bookings window; required
        with a ``forecaster``).
    data_end : date-like, optional
        Last day the data cover: only quarters ending on or before it are scored (a review
        passes its as-of date). Default: the last created or close date of an opportunity.
    day_count : {"business", "calendar"}
        How a partial forecast week is shared with the quarter
        (:func:`~spm_models.evaluation.quota.probability.period_shares`); use the day count of the
        probabilities the backtest stands for.
    calendar : Calendar, optional
        The (fiscal) quarters scored; default the dataset's, else the calendar year.
    levels : sequence of {"agent", "territory"}
        Levels scored. A territory's row sums its forecast agents: their draws (draw by draw,
        keeping their co-movement), what they booked, their quotas and what they realised.

    Returns
    -------
    DataFrame
        ``level, entity_id, period_start, period_end, origin, offset_weeks, quota,
        closed_to_date, p_quota, expected_attainment, attainment, hit, pit,
        expected_remaining, realised_remaining, remaining_points``, one row per entity with a
        quota, quarter and origin. ``pit`` is the randomised probability integral transform of
        the realised quarter total under the forecast (uniform on [0, 1] for a calibrated
        forecast); ``remaining_points`` keeps :data:`~spm_models.evaluation.quota.calibration.N_POINTS`
        order statistics of the draws of what was still to book, so the calibration
        (:mod:`spm_models.evaluation.quota.calibration`) can recompute the chance under a
        common factor without the draws.

    Raises
    ------
    ConfigError
        ``model`` is not a ForecastModel, or not exactly one of ``model`` and ``forecaster``
        is given.
    DataError
        No complete quarter with quotas (and history, for a model).
    """
    if model is not None and not isinstance(model, ForecastModel):
        raise ConfigError(f"model must be a ForecastModel, got {type(model).__name__}")
    if (model is None) == (forecaster is None):
        raise ConfigError(
            "give exactly one of model=... (a ForecastModel, refitted at every origin) and forecaster=..."
        )
    bad = sorted(set(levels) - {"agent", "territory"})
    if bad or not levels:
        raise ConfigError(f"levels must be agent and/or territory, got {list(levels)!r}")
    t = _tables(data)
    opps, targets = t["opportunities"], t["targets"]
    territory = t["agents"].assign(agent_id=t["agents"]["agent_id"].astype("str")).set_index("agent_id")["territory_id"]
    won = opps[opps["outcome"] == "won"]
    frame = agent_bookings_frame(data) if model is not None else None
    first_day, last_day = _data_span(data, frame, data_start, data_end)
    if first_quarter is not None:
        first_day = max(first_day, to_day(first_quarter, "first_quarter"))
    rows = []
    if calendar is None:
        calendar = data.fiscal_calendar if isinstance(data, Dataset) else DEFAULT_CALENDAR
    # a loop over quarters and origins, not agents
    for i, (p_start, p_end) in enumerate(_quarters(targets, first_day, last_day, calendar)):
        in_q = won[(won["close_date"] >= p_start) & (won["close_date"] <= p_end)]
        final = in_q.groupby("agent_id")["amount"].sum()
        for j, (off, origin) in enumerate(_origins(p_start, p_end, offsets_weeks, first_day)):
            n_weeks = int(np.ceil(((p_end - origin).days) / 7))
            if model is None:
                fc = forecaster(origin, n_weeks, n_draws, seed + 1000 * i + j)
            else:
                fc = model_forecast_at(model, frame, origin, n_weeks, n_draws, min_history_weeks, t)
            if fc is None:
                continue
            closed = in_q[in_q["close_date"] <= origin].groupby("agent_id")["amount"].sum()
            pit_seed = int(np.random.SeedSequence([seed, i, j]).generate_state(1)[0])
            for level in levels:
                rows.append(
                    _origin_rows(
                        fc,
                        closed,
                        final,
                        targets,
                        (p_start, p_end),
                        origin,
                        off,
                        day_count,
                        pit_seed,
                        parent=territory.astype("str") if level == "territory" else None,
                    )
                )
    rows = [r for r in rows if len(r)]
    if not rows:
        raise DataError(
            "the data have no complete quarter with quotas (and, for a model, enough history before it); "
            "a backtest needs at least one past quarter with agent quotas"
        )
    out = pd.concat(rows, ignore_index=True)
    out["entity_id"] = out["entity_id"].astype("str")
    return out


def calibration_rows(
    data: Data,
    *,
    model: ForecastModel,
    offset_weeks: int,
    first_quarter: Any,
    data_end: Any,
    n_draws: int = 300,
    seed: int = 0,
    calendar: Calendar | None = None,
) -> pd.DataFrame:
    """The quota backtest a calibration of the chances learns from, as the review runs it: agents
    and territories at one offset, partial weeks shared by calendar days, rows with a chance only
    (:func:`~spm_models.evaluation.quota.calibration.learn_calibration_before` picks the quarters).

    Parameters are those of :func:`backtest_quota_probabilities`; ``n_draws`` is the review's
    ``recalibration_draws``.
    """
    rows = backtest_quota_probabilities(
        data,
        model=model,
        offsets_weeks=[int(offset_weeks)],
        n_draws=n_draws,
        seed=seed,
        first_quarter=first_quarter,
        data_end=data_end,
        day_count="calendar",
        calendar=calendar,
        levels=("agent", "territory"),
    )
    return rows[rows["p_quota"].notna()].reset_index(drop=True)


def _origin_rows(
    fc: Forecast,
    closed: pd.Series,
    final: pd.Series,
    targets: pd.DataFrame,
    period: tuple[pd.Timestamp, pd.Timestamp],
    origin: pd.Timestamp,
    off: int,
    day_count: str,
    pit_seed: int,
    *,
    parent: pd.Series | None = None,
) -> pd.DataFrame:
    """The backtest rows of one quarter and origin: agents (or, with ``parent``, the territories
    of the forecast agents) with a quota only."""
    p_start, p_end = period
    uids = pd.Index(fc.unique_ids.astype(str), dtype="str")
    rest = bookings_draws(fc, None, period_start=p_start, period_end=p_end, day_count=day_count)
    quota = quota_for_period(targets, period_start=p_start, period_end=p_end).reindex(uids).to_numpy(dtype=float)
    done = closed.reindex(uids).fillna(0.0).to_numpy(dtype=float)
    real = final.reindex(uids).fillna(0.0).to_numpy(dtype=float)
    level, ids = "agent", uids.to_numpy()
    if parent is not None:
        codes, names = pd.factorize(parent.reindex(uids).fillna("unassigned").astype("str"), sort=True)
        rest = np.stack([rest[codes == k].sum(axis=0) for k in range(len(names))]) if len(names) else rest[:0]
        quota, done, real = (
            np.bincount(codes, weights=np.nan_to_num(v), minlength=len(names)) for v in (quota, done, real)
        )
        level, ids = "territory", np.asarray(names, dtype=object)
    total = done[:, None] + rest
    ok = np.isfinite(quota) & (quota > 0)
    quota, done, real, rest, total, ids = quota[ok], done[ok], real[ok], rest[ok], total[ok], ids[ok]
    points = np.quantile(rest, (np.arange(N_POINTS) + 0.5) / N_POINTS, axis=1).T if len(rest) else rest[:, :N_POINTS]
    return pd.DataFrame(
        {
            "level": level,
            "entity_id": pd.array(ids.astype(str), dtype="str"),
            "period_start": p_start,
            "period_end": p_end,
            "origin": origin,
            "offset_weeks": off,
            "quota": quota,
            "closed_to_date": done,
            "p_quota": chance_of_reaching(total, quota),
            "expected_attainment": total.mean(axis=1) / quota,
            "attainment": real / quota,
            "hit": real >= quota,
            "pit": randomized_pit(total, real, seed=pit_seed),
            "expected_remaining": rest.mean(axis=1),
            "realised_remaining": real - done,
            "remaining_points": list(points),
        }
    )
