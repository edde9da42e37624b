"""P(quota) over past quarters of a synthetic organisation: is it calibrated?

For every calendar quarter wholly inside the data and every offset ``o`` (weeks into the
quarter), the forecast origin is the last Sunday on or before ``period_start - 1 day + 7 o``.
What each agent won from ``period_start`` to the origin is closed to date; a forecast of the
weeks after the origin gives the rest, and
:func:`~spm_models.quota_probability.attainment_distribution` turns both into
``p_quota = P(closed + remaining >= quota)`` with the quota from the targets table.
``hit`` records whether the agent's bookings over the whole quarter reached the quota, so
``reliability_table(p_quota, hit)`` checks the probabilities against what happened.

The forecast is either

* the **oracle** (:func:`oracle_forecast`), drawn from the generator's ground truth: the
  best forecast there is, whose probabilities must come out calibrated if the machinery is
  right; or
* a **real model** (any :class:`~spm_models.models.base.ForecastModel`), fitted afresh at
  every origin on the agents' weekly bookings up to the origin
  (:func:`~spm_models.indicator_series.bookings_series`) and knowing nothing else, as it
  would in production.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from .exceptions import ConfigError, DataError
from .indicator_series import bookings_series
from .models.base import ForecastModel, clone
from .models.forecast import Forecast
from .quota_probability import _day, attainment_distribution, period_shares
from .sources.synthetic import SyntheticOrg

__all__ = ["oracle_forecast", "agent_bookings_frame", "backtest_quota_probabilities"]

WEEK = pd.Timedelta(weeks=1)


def oracle_forecast(org: SyntheticOrg, *, start: Any, h: int, n_draws: int = 500, seed: int = 0) -> Forecast:
    """Weekly bookings draws of every agent straight from the synthetic ground truth.

    Won deals of agent ``i`` closing in week ``w`` are ``Poisson(expected_wins_iw)``
    (exact, see :mod:`spm_models.sources.synthetic`), each of size
    ``lognormal(size_mu_i, size_sigma_i)``; the draw is the sum of the sizes.

    Parameters
    ----------
    org : SyntheticOrg
    start : date-like
        Monday of the first forecast week (must be a week of the data).
    h : int
        Number of weeks (the forecast stops at the last week of the data).
    n_draws : int
    seed : int

    Returns
    -------
    Forecast
        Model ``"Oracle"``, one series per agent.
    """
    aw = org.truth.agent_weeks
    agents = org.truth.agents.set_index("agent_id")
    weeks = np.sort(aw["week_start"].unique())
    first = np.searchsorted(weeks, np.datetime64(_day(start, "start")))
    if first >= len(weeks) or weeks[first] != np.datetime64(_day(start, "start")):
        raise DataError(f"{start} is not the Monday of a week of the synthetic data")
    sel = weeks[first:first + int(h)]
    sub = aw[aw["week_start"].isin(sel)]
    ids = np.asarray(sorted(sub["agent_id"].unique()), dtype=object)
    mean = sub.pivot(index="agent_id", columns="week_start", values="expected_wins").reindex(index=ids, columns=sel).to_numpy()
    rng = np.random.default_rng(seed)
    counts = rng.poisson(mean[:, :, None], size=mean.shape + (n_draws,))
    cell = np.repeat(np.arange(counts.size), counts.ravel())
    agent = cell // (len(sel) * n_draws)
    mu = agents.loc[ids, "size_mu"].to_numpy(dtype=float)[agent]
    sigma = agents.loc[ids, "size_sigma"].to_numpy(dtype=float)[agent]
    sizes = np.exp(mu + sigma * rng.standard_normal(len(cell)))
    draws = np.bincount(cell, weights=sizes, minlength=counts.size).reshape(counts.shape)
    return Forecast.from_draws(draws, unique_ids=ids, ds=np.tile(sel, (len(ids), 1)), model="Oracle", freq="W-MON")


def agent_bookings_frame(org: SyntheticOrg) -> pd.DataFrame:
    """Weekly bookings of every agent as a model frame ``unique_id, ds, y``.

    ``y`` is the ``bookings`` KPI by close week (Monday,
    :func:`~spm_models.indicator_series.bookings_series`), every week from the agent's first
    row to the last week the agent is employed (weeks without a row are 0), so a leaver's
    late closes do not make the agent look active.
    """
    s = bookings_series(org.dataset.tables, level="agent", grain="week")
    s = s.assign(entity_id=s["entity_id"].astype("str"))
    agents = org.dataset.tables["agents"].assign(agent_id=lambda a: a["agent_id"].astype("str")).set_index("agent_id")
    leave = pd.to_datetime(agents["leave_date"])
    leave_week = (leave - pd.to_timedelta(leave.dt.day_of_week, unit="D")).dt.normalize()
    span = s.groupby("entity_id")["period"].agg(["min", "max"])
    last = span["max"].where(leave_week.reindex(span.index).isna(), np.minimum(span["max"], leave_week.reindex(span.index)))
    grid = pd.DataFrame({"unique_id": np.repeat(span.index.to_numpy(), ((last - span["min"]).dt.days // 7 + 1).to_numpy())})
    grid["ds"] = grid.groupby("unique_id").cumcount().to_numpy() * WEEK + span["min"].reindex(grid["unique_id"]).to_numpy()
    y = s.set_index(["entity_id", "period"])["value"].astype(float)
    grid["y"] = y.reindex(pd.MultiIndex.from_frame(grid[["unique_id", "ds"]])).fillna(0.0).to_numpy()
    grid["unique_id"] = grid["unique_id"].astype("str")
    return grid


def _origins(period_start: pd.Timestamp, period_end: pd.Timestamp, offsets: Sequence[int], first_day: pd.Timestamp):
    for off in offsets:
        anchor = period_start - pd.Timedelta(days=1) + pd.Timedelta(weeks=int(off))
        origin = anchor - pd.Timedelta(days=(anchor.weekday() + 1) % 7)
        if origin < first_day - pd.Timedelta(days=1) or origin >= period_end:
            continue
        yield int(off), origin


def _model_forecast(model: ForecastModel, frame: pd.DataFrame, origin: pd.Timestamp, h: int, n_draws: int,
                    min_weeks: int) -> Forecast | None:
    """Fit a clone of ``model`` on the agents active in the week before the origin (at least
    ``min_weeks`` weeks of history) and forecast ``h`` weeks from the Monday after it."""
    last_week = origin - pd.Timedelta(days=6)
    train = frame[frame["ds"] <= last_week]
    span = train.groupby("unique_id")["ds"].agg(["max", "size"])
    keep = span.index[(span["max"] == last_week) & (span["size"] >= min_weeks)]
    if not len(keep):
        return None
    return clone(model).fit(train[train["unique_id"].isin(keep)]).predict(h, n_draws=n_draws)


def _total_pit(fc: Forecast, closed: np.ndarray, realised: np.ndarray, start: pd.Timestamp, end: pd.Timestamp,
               rng: np.random.Generator) -> np.ndarray:
    """Randomised PIT of each realised period total under the forecast's draws of it:
    ``F(x-) + U (F(x) - F(x-))`` with ``F`` the empirical CDF of ``closed + sum_k w_k y_k``."""
    w = period_shares(fc, period_start=start, period_end=end, day_count="business")
    total = closed[:, None] + np.einsum("nh,nhd->nd", w, fc.draws)
    below = (total < realised[:, None]).mean(axis=1)
    at = (total == realised[:, None]).mean(axis=1)
    return below + rng.random(len(realised)) * at


def backtest_quota_probabilities(
    org: SyntheticOrg,
    *,
    model: ForecastModel | None = None,
    offsets_weeks: Sequence[int] = (0, 4, 8),
    n_draws: int = 500,
    seed: int = 0,
    min_history_weeks: int = 13,
    first_quarter: Any = None,
) -> pd.DataFrame:
    """P(quota) per agent-quarter at several points of each past quarter (module docstring).

    Parameters
    ----------
    org : SyntheticOrg
    model : ForecastModel, optional
        Unfitted model, cloned and fitted at every origin on weekly bookings up to it (for
        agents active at the origin with at least ``min_history_weeks`` weeks of history;
        the others are left out). ``None``: the oracle, every agent with a quota.
    offsets_weeks : sequence of int
        Weeks into the quarter of each origin (0: just before the quarter starts).
    n_draws : int
    seed : int
        Seed of the oracle's draws (a model uses its own ``random_state``).
    min_history_weeks : int
        History a model needs before an agent is scored.
    first_quarter : date-like, optional
        Skip quarters starting before it (a model needs history before the first origin).

    Returns
    -------
    DataFrame
        ``agent_id, period_start, period_end, origin, offset_weeks, quota, closed_to_date,
        p_quota, expected_attainment, attainment, hit, pit``, one row per agent with a quota,
        quarter and origin. ``pit`` is the randomised probability integral transform of the
        realised quarter total under the forecast (uniform on [0, 1] for a calibrated
        forecast; :func:`spm_models.quota_calibration.recalibrate` learns from it).

    Raises
    ------
    DataError
        No complete quarter with quotas (and history, for a model).
    """
    if model is not None and not isinstance(model, ForecastModel):
        raise ConfigError(f"model must be a ForecastModel (or None for the oracle), got {type(model).__name__}")
    t = org.dataset.tables
    opps, targets = t["opportunities"], t["targets"]
    won = opps[opps["outcome"] == "won"]
    weeks = np.sort(org.truth.agent_weeks["week_start"].unique())
    first_day, last_day = pd.Timestamp(weeks[0]), pd.Timestamp(weeks[-1]) + pd.Timedelta(days=6)
    if first_quarter is not None:
        first_day = max(first_day, _day(first_quarter, "first_quarter"))
    quarters = targets[["period_start", "period_end"]].drop_duplicates().sort_values("period_start")
    quarters = quarters[(quarters["period_start"] >= first_day) & (quarters["period_end"] <= last_day)]
    frame = agent_bookings_frame(org) if model is not None else None
    rows = []
    for i, (p_start, p_end) in enumerate(quarters.itertuples(index=False)):  # a loop over quarters and origins, not agents
        in_q = won[(won["close_date"] >= p_start) & (won["close_date"] <= p_end)]
        final = in_q.groupby("agent_id")["amount"].sum()
        for j, (off, origin) in enumerate(_origins(p_start, p_end, offsets_weeks, first_day)):
            n_weeks = int(np.ceil(((p_end - origin).days) / 7))
            if model is None:
                fc = oracle_forecast(org, start=origin + pd.Timedelta(days=1), h=n_weeks, n_draws=n_draws, seed=seed + 1000 * i + j)
            else:
                fc = _model_forecast(model, frame, origin, n_weeks, n_draws, min_history_weeks)
                if fc is None:
                    continue
            closed = in_q[in_q["close_date"] <= origin].groupby("agent_id")["amount"].sum()
            dist = attainment_distribution(closed, fc, targets, period_start=p_start, period_end=p_end, day_count="business")
            realised = final.reindex(pd.Index(dist["unique_id"], dtype="str")).fillna(0.0).to_numpy()
            pit = _total_pit(fc, dist["closed_to_date"].to_numpy(), realised, p_start, p_end,
                             np.random.default_rng([seed, i, j]))
            ok = (dist["quota"].notna() & (dist["quota"] > 0)).to_numpy()
            dist, realised, pit = dist[ok], realised[ok], pit[ok]
            rows.append(
                pd.DataFrame(
                    {
                        "agent_id": dist["unique_id"].to_numpy(),
                        "period_start": p_start,
                        "period_end": p_end,
                        "origin": origin,
                        "offset_weeks": off,
                        "quota": dist["quota"].to_numpy(),
                        "closed_to_date": dist["closed_to_date"].to_numpy(),
                        "p_quota": dist["p_quota"].to_numpy(),
                        "expected_attainment": dist["expected_attainment"].to_numpy(),
                        "attainment": realised / dist["quota"].to_numpy(),
                        "hit": realised >= dist["quota"].to_numpy(),
                        "pit": pit,
                    }
                )
            )
    if not rows:
        raise DataError("the synthetic organisation has no complete quarter with quotas (and, for a model, "
                        "enough history before it); generate at least a year")
    out = pd.concat(rows, ignore_index=True)
    out["agent_id"] = out["agent_id"].astype("str")
    return out
