"""Chances of reaching quota that past quarters would have confirmed: a two-stage calibration.

A model of bookings alone is over-confident about quota attainment, and its errors are shared:
in a quarter when the market turns, every agent books less than forecast at once. Backtesting
the model on past quarters at the review's point in the quarter
(:func:`~spm_models.evaluation.quota.backtest.backtest_quota_probabilities`) gives, for each
past agent-quarter, the forecast of the bookings still to come ``R``, what was then booked and
the quota. :func:`learn_quota_calibration` learns two corrections from them, applied in turn:

1. **A common factor on what is still to book.** For each past quarter ``k``, the company's
   ratio ``r_k = log(sum realised remaining / sum expected remaining)`` over its agents says
   how far the whole forecast was off. The next quarter's factor is drawn as
   ``F = exp(c + s Z - s^2 / 2)`` with ``Z`` standard normal, **one draw of Z shared by every
   agent** in a scenario, ``c = r`` of the most recent ended quarter (errors persist from one
   quarter to the next) and ``s`` the root mean square of the quarter-to-quarter changes of
   ``r``. Every agent's remaining bookings are multiplied by ``F``, so territory and company
   sums move together, and what is already booked is never touched: an agent at or above
   quota keeps a chance of exactly 1.
   The model's territory sums are over-confident too (a territory shares more than its
   agents' own errors: a regional market, a manager, a big account), so each territory also
   gets a factor ``G = exp(g Z_t - g^2 / 2)`` of its own, ``Z_t`` drawn per territory and
   scenario. ``g`` is the spread that best predicted past territories' hits and misses (log
   loss over a grid, each past territory-quarter with its own quarter's company error ``r_k``
   taken as known, so ``g`` measures only what the territory adds). An agent's remaining
   bookings are multiplied by ``F G``; for a single series that is one log-normal factor with
   spread ``sqrt(s^2 + g^2)``.
2. **Logistic recalibration** (Platt scaling) of the agents' chances after stage 1:
   ``logit p~ = a + b logit p``, fitted on the past agent-quarters, each adjusted with the
   factor that was known before it. It keeps the ranking of agents and never moves a chance
   of exactly 0 or 1 (booked at or above quota: 1). When too few past outcomes exist, or the
   slope is near zero (the past chances did not separate hits from misses, and the fit would
   give everyone the same number), stage 2 is not applied and the calibration says why.

Each stage is learned per position in the quarter: the review backtests at its own offset.
Which past quarters a calibration made before quarter ``q`` may learn from is one rule,
:func:`learn_calibration_before` (those that ended before ``q``, at most ``quarters`` of them),
and :func:`factor_forecast` applies stage 1 to a forecast's draws; the review and the plan-cost
backtest (:mod:`spm_models.insights.incentives.backtest`) both use the two.
:func:`rolling_calibration` applies the same two functions quarter by quarter with only what had
ended before each quarter, so a reliability table of its output is an honest check
(``make bench-quota``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import special
from scipy.optimize import minimize

from spm_models.exceptions import ConfigError, DataError
from spm_models.models.forecast import Forecast

__all__ = [
    "Recalibration",
    "fit_recalibration",
    "QuotaCalibration",
    "learn_quota_calibration",
    "chance_with_factor",
    "rolling_calibration",
    "calibration_window_start",
    "learn_calibration_before",
    "factor_forecast",
    "N_POINTS",
]

EPS = 0.005  # probabilities are clipped to [EPS, 1 - EPS] before the logit


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, EPS, 1.0 - EPS)
    return np.log(p / (1.0 - p))


@dataclass(frozen=True)
class Recalibration:
    """Fitted logistic recalibration ``logit p~ = intercept + slope * logit p`` (module docstring).

    Attributes
    ----------
    intercept, slope : float
    n : int
        Number of ``(p, hit)`` pairs it was fitted on.
    """

    intercept: float
    slope: float
    n: int

    def __call__(self, p: Iterable[float]) -> np.ndarray:
        """Recalibrated probabilities; NaN stays NaN."""
        p = np.asarray(p, dtype=float)
        z = self.intercept + self.slope * _logit(np.nan_to_num(p, nan=0.5))
        return np.where(np.isnan(p), np.nan, 1.0 / (1.0 + np.exp(-z)))


def fit_recalibration(
    predicted_probs: Iterable[float], outcomes: Iterable[float], *, min_rows: int = 50
) -> Recalibration:
    """Fit :class:`Recalibration` by maximum likelihood on pairs ``(p, hit)``.

    Parameters
    ----------
    predicted_probs : iterable of float
        The model's probabilities in [0, 1]; NaN pairs are dropped.
    outcomes : iterable of bool or 0/1
    min_rows : int
        Fewer usable pairs than this, or outcomes that are all 0 or all 1, raise.

    Raises
    ------
    DataError
        Too few pairs, a single outcome class, or values out of range.
    """
    p = np.asarray(predicted_probs, dtype=float)
    y = np.asarray(outcomes, dtype=float)
    if p.shape != y.shape:
        raise DataError(f"{p.size} probabilities for {y.size} outcomes; give one outcome per probability")
    keep = ~(np.isnan(p) | np.isnan(y))
    p, y = p[keep], y[keep]
    if ((p < 0) | (p > 1)).any() or not np.isin(y, (0.0, 1.0)).all():
        raise DataError("probabilities must be in [0, 1] and outcomes 0/1")
    if len(p) < min_rows or y.min() == y.max():
        raise DataError(
            f"recalibration needs at least {min_rows} past outcomes with both hits and misses; got {len(p)}"
        )
    x = _logit(p)

    def nll(ab: np.ndarray) -> float:
        z = ab[0] + ab[1] * x
        return float(np.sum(np.logaddexp(0.0, z) - y * z))

    def grad(ab: np.ndarray) -> np.ndarray:
        r = 1.0 / (1.0 + np.exp(-(ab[0] + ab[1] * x))) - y
        return np.array([r.sum(), (r * x).sum()])

    res = minimize(nll, np.array([0.0, 1.0]), jac=grad, method="BFGS")
    return Recalibration(float(res.x[0]), float(res.x[1]), int(len(p)))


#: Order statistics of the remaining-bookings draws a backtest row keeps (``remaining_points``).
N_POINTS = 100


@dataclass(frozen=True)
class QuotaCalibration:
    """The two-stage calibration learned from past quarters (module docstring).

    Attributes
    ----------
    drift, spread : float or None
        ``c`` and ``s`` of the common factor; None when stage 1 is not applied.
    recalibration : Recalibration or None
        Stage 2; None when not applied.
    n_rows, n_quarters : int
        Past agent-quarters and quarters learned from.
    notes : tuple of str
        Why a stage is not applied, in plain words (empty when both are).
    """

    drift: float | None
    spread: float | None
    recalibration: Recalibration | None
    n_rows: int
    n_quarters: int
    notes: tuple[str, ...] = ()
    group_spread: float | None = None
    n_group_rows: int = 0

    @property
    def factor_applied(self) -> bool:
        """Whether stage 1 changes anything: a common factor or a territory spread."""
        return self.drift is not None or self.group_spread is not None

    @property
    def total_spread(self) -> float:
        """``sqrt(s^2 + g^2)``: the spread of one series' factor ``F G`` (missing parts count 0)."""
        return float(np.hypot(self.spread or 0.0, self.group_spread or 0.0))

    def factors(self, n_draws: int, *, seed: int = 0, groups: Any = None) -> np.ndarray:
        """``F_j G_gj`` for ``n_draws`` scenarios (all ones without stage 1).

        Without ``groups`` the company factor ``F_j`` alone, shape ``(n_draws,)``, shared by
        every series. With ``groups`` (the territory of each series, any labels) also each
        territory's own ``G_gj``: shape ``(n_series, n_draws)``, equal for series of one territory.
        """
        rng = np.random.default_rng(seed)
        z = rng.standard_normal(n_draws)
        c, s = self.drift or 0.0, self.spread or 0.0
        f = np.exp(c + s * z - 0.5 * s**2)
        if groups is None:
            return f
        codes, names = pd.factorize(pd.Series(np.asarray(groups, dtype=object)).fillna(""), sort=True)
        g = self.group_spread or 0.0
        zg = rng.standard_normal((len(names), n_draws))
        return f[None, :] * np.exp(g * zg - 0.5 * g**2)[codes]

    def adjust(self, p: Iterable[float]) -> np.ndarray:
        """Stage 2 on chances computed from factored draws; 0 and 1 stay (booked at or above quota: 1)."""
        p = np.asarray(p, dtype=float)
        if self.recalibration is None:
            return p.copy()
        return np.where((p <= 0) | (p >= 1), p, self.recalibration(p))


def _quarter_ratios(rows: pd.DataFrame) -> pd.Series:
    """``r_k`` per past quarter (by ``period_start``): log of realised over expected remaining, summed."""
    g = rows.groupby("period_start").agg(real=("realised_remaining", "sum"), exp=("expected_remaining", "sum"))
    g = g[(g["real"] > 0) & (g["exp"] > 0)]
    return np.log(g["real"] / g["exp"]).sort_index()


def _factor_from(ratios: pd.Series, *, min_quarters: int) -> tuple[float, float] | None:
    """``(c, s)`` from the ratios of quarters ended so far, or None with fewer than ``min_quarters``."""
    r = ratios.to_numpy(dtype=float)
    if len(r) < max(min_quarters, 2):
        return None
    return float(r[-1]), float(np.sqrt(np.mean(np.diff(r) ** 2)))


def chance_with_factor(points: np.ndarray, closed: Any, quota: Any, drift: float, spread: float) -> np.ndarray:
    """``P(closed + F R >= quota)`` per row from stored order statistics of ``R`` (``points``).

    With ``F = exp(drift + spread Z - spread^2/2)`` and ``R`` uniform over the row's points
    ``r_k``, the integral over ``Z`` is exact:
    ``mean_k Phi((log(r_k / need) + drift - spread^2/2) / spread)`` with ``need = quota - closed``
    (``spread = 0``: the share of ``r_k e^drift >= need``). Rows at or above quota get 1.
    """
    pts = np.asarray(points, dtype=float)
    need = (np.asarray(quota, dtype=float) - np.asarray(closed, dtype=float))[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.log(pts) - np.log(np.where(need > 0, need, 1.0)) + drift - 0.5 * spread**2
    if spread > 0:
        p = special.ndtr(x / spread).mean(axis=1)
    else:
        p = (x >= 0).mean(axis=1)
    return np.where(need[:, 0] <= 0, 1.0, p)


def _adjusted_history(rows: pd.DataFrame, *, min_quarters: int, group_spread: float | None) -> pd.Series:
    """Each past row's chance after stage 1 with the factor known before its quarter and the
    territory spread (raw where neither is known)."""
    ratios = _quarter_ratios(rows)
    out = pd.Series(rows["p_quota"].to_numpy(dtype=float), index=rows.index)
    g = group_spread or 0.0
    for start, sub in rows.groupby("period_start", sort=True):  # a loop over quarters
        cf = _factor_from(ratios[ratios.index < start], min_quarters=min_quarters)
        if cf is None and group_spread is None:
            continue
        c, s = cf if cf is not None else (0.0, 0.0)
        pts = np.stack(sub["remaining_points"].to_numpy())
        out[sub.index] = chance_with_factor(pts, sub["closed_to_date"], sub["quota"], c, float(np.hypot(s, g)))
    return out


#: Territory spreads :func:`learn_quota_calibration` tries.
GROUP_SPREADS = np.round(np.arange(0.0, 1.2001, 0.05), 2)


def _group_spread(groups: pd.DataFrame, ratios: pd.Series, *, min_rows: int) -> tuple[float | None, int]:
    """The territory spread ``g`` of least log loss over past territory-quarters (module docstring),
    each with its own quarter's company error as the drift; None with fewer than ``min_rows``."""
    t = groups[groups["period_start"].isin(ratios.index) & (groups["closed_to_date"] < groups["quota"])]
    if len(t) < min_rows or t["hit"].nunique() < 2:
        return None, int(len(t))
    pts = np.stack(t["remaining_points"].to_numpy())
    y = t["hit"].to_numpy(dtype=float)
    closed, quota = t["closed_to_date"].to_numpy(dtype=float), t["quota"].to_numpy(dtype=float)
    drift = t["period_start"].map(ratios).to_numpy(dtype=float)
    losses = []
    for g in GROUP_SPREADS:
        p = np.empty(len(t))
        for d in np.unique(drift):  # rows of one quarter share the drift
            m = drift == d
            p[m] = chance_with_factor(pts[m], closed[m], quota[m], float(d), float(g))
        p = np.clip(p, EPS, 1.0 - EPS)
        losses.append(-np.mean(y * np.log(p) + (1.0 - y) * np.log(1.0 - p)))
    return float(GROUP_SPREADS[int(np.argmin(losses))]), int(len(t))


def learn_quota_calibration(
    rows: pd.DataFrame,
    *,
    min_quarters: int = 3,
    min_rows: int = 200,
    min_slope: float = 0.2,
    min_group_rows: int = 30,
) -> QuotaCalibration:
    """Learn the two stages from past quarters at one point in the quarter (module docstring).

    Parameters
    ----------
    rows : DataFrame
        Rows of a quota backtest for quarters that had ended (``period_start, quota,
        closed_to_date, p_quota, hit, expected_remaining, realised_remaining,
        remaining_points``), all at the same offset: agent rows, and territory rows when a
        ``level`` column says so (without it every row is an agent's).
    min_quarters : int
        Fewest past quarters for the common factor.
    min_rows : int
        Fewest past agent-quarters (with both hits and misses) for stage 2.
    min_slope : float
        Smallest stage-2 slope kept; below it the past chances barely separated hits from
        misses and stage 2 is left out.
    min_group_rows : int
        Fewest past territory-quarters (not yet at quota, with both hits and misses) for the
        territory spread.

    Returns
    -------
    QuotaCalibration
    """
    notes = []
    level = rows["level"] if "level" in rows else pd.Series("agent", index=rows.index)
    groups, rows = rows[level == "territory"], rows[level == "agent"]
    ratios = _quarter_ratios(rows)
    cf = _factor_from(ratios, min_quarters=min_quarters)
    if cf is None:
        notes.append(f"no common correction: {len(ratios)} past quarters, at least {max(min_quarters, 2)} are needed")
    g, n_groups = _group_spread(groups, ratios, min_rows=min_group_rows)
    if g is None:
        notes.append(
            f"no territory spread: {n_groups} past territory-quarters with both outcomes, "
            f"at least {min_group_rows} are needed"
        )
    recal = None
    adjusted = (
        _adjusted_history(rows, min_quarters=min_quarters, group_spread=g) if len(rows) else pd.Series(dtype=float)
    )
    hits = rows["hit"].astype(float) if len(rows) else pd.Series(dtype=float)
    if len(rows) < min_rows or hits.nunique() < 2:
        notes.append(
            f"not adjusted by past hits and misses: {len(rows)} past agent-quarters with "
            f"{int(hits.sum()) if len(rows) else 0} hits; at least {min_rows} with both outcomes are needed"
        )
    else:
        fit = fit_recalibration(adjusted, hits, min_rows=min_rows)
        if fit.slope < min_slope:
            notes.append(
                f"not adjusted by past hits and misses: past chances barely told hits from misses "
                f"(slope {fit.slope:.2f}), and adjusting would give every agent about the same chance"
            )
        else:
            recal = fit
    return QuotaCalibration(
        drift=None if cf is None else cf[0],
        spread=None if cf is None else cf[1],
        recalibration=recal,
        n_rows=int(len(rows)),
        n_quarters=int(rows["period_start"].nunique()) if len(rows) else 0,
        notes=tuple(notes),
        group_spread=g,
        n_group_rows=n_groups,
    )


def rolling_calibration(backtest: pd.DataFrame, **kwargs) -> pd.DataFrame:
    """Out-of-sample calibrated chances for every row of a quota backtest.

    For each quarter and offset, :func:`learn_quota_calibration` is learned on the rows of the
    quarters that had ended before the quarter started (same offset) and applied to the
    quarter's rows as in the review: every row gets stage 1 (the common factor and the
    territory spread), agents also stage 2. Rows without enough history get NaN.

    Returns
    -------
    DataFrame
        ``backtest`` with ``p_calibrated`` (and ``drift``, ``spread``, ``group_spread``,
        ``slope``) added.
    """
    need = {"period_start", "period_end", "offset_weeks", "level", "p_quota", "hit", "remaining_points"}
    missing = sorted(need - set(backtest.columns))
    if missing:
        raise ConfigError(f"the quota backtest frame lacks {', '.join(missing)}")
    out = backtest.copy()
    for col in ("p_calibrated", "drift", "spread", "slope"):
        out[col] = np.nan
    out["group_spread"] = np.nan
    for (start, off), rows in out.groupby(["period_start", "offset_weeks"], sort=True):
        past = out[(out["period_end"] < start) & (out["offset_weeks"] == off)]
        if not (past["level"] == "agent").any():
            continue
        cal = learn_quota_calibration(past, **kwargs)
        if not cal.factor_applied and cal.recalibration is None:
            continue
        pts = np.stack(rows["remaining_points"].to_numpy())
        p = rows["p_quota"].to_numpy(dtype=float)
        if cal.factor_applied:
            p = chance_with_factor(pts, rows["closed_to_date"], rows["quota"], cal.drift or 0.0, cal.total_spread)
        is_agent = (rows["level"] == "agent").to_numpy()
        p = np.where(is_agent, cal.adjust(p), p)
        out.loc[rows.index, "p_calibrated"] = p
        out.loc[rows.index, "drift"] = np.nan if cal.drift is None else cal.drift
        out.loc[rows.index, "spread"] = np.nan if cal.spread is None else cal.spread
        out.loc[rows.index, "group_spread"] = np.nan if cal.group_spread is None else cal.group_spread
        out.loc[rows.index, "slope"] = cal.recalibration.slope if cal.recalibration is not None else np.nan
    return out


def calibration_window_start(quarter_start: Any, quarters: int) -> pd.Timestamp:
    """First day of the past quarters a calibration made for the quarter starting on
    ``quarter_start`` learns from: ``quarters`` quarters earlier, less a week, so that the oldest
    quarter keeps an origin just before it starts (offset 0)."""
    return pd.Timestamp(quarter_start) - pd.DateOffset(months=3 * int(quarters)) - pd.Timedelta(weeks=1)


def learn_calibration_before(
    rows: pd.DataFrame, quarter_start: Any, *, quarters: int = 12, min_rows: int = 200
) -> QuotaCalibration:
    """:func:`learn_quota_calibration` on the rows of a quota backtest that a forecast of the
    quarter starting on ``quarter_start`` could have known: quarters that ended before it and
    started on or after :func:`calibration_window_start` (the last ``quarters``), rows with a chance.

    Parameters
    ----------
    rows : DataFrame
        Quota backtest rows at one offset (agents, and territories with a ``level`` column),
        with ``remaining_points``; rows of later quarters may be there and are left out.
    quarter_start : date-like
        First day of the quarter forecast.
    quarters, min_rows : int
        The review's ``recalibration_quarters`` and ``recalibration_min_rows``.
    """
    start = pd.Timestamp(quarter_start)
    keep = (
        (rows["period_end"] < start)
        & (rows["period_start"] >= calibration_window_start(start, quarters))
        & rows["p_quota"].notna()
    )
    return learn_quota_calibration(rows[keep], min_rows=min_rows)


def factor_forecast(
    forecast: Forecast,
    calibration: QuotaCalibration | None,
    *,
    seed: int,
    groups: Mapping[str, str] | None = None,
) -> Forecast:
    """The forecast with draw ``j`` of series ``i`` multiplied by ``F_j G_g(i)j``
    (:meth:`QuotaCalibration.factors`): the common factor and the factor of the series' territory
    ``g(i)`` (``groups``: series -> territory; without it, or without a learned territory spread,
    ``G = 1``). Without stage 1 the forecast is returned unchanged.
    """
    if calibration is None or not calibration.factor_applied:
        return forecast
    uids = forecast.unique_ids.astype(str)
    labels = None if groups is None else [groups.get(u, "") for u in uids]
    f = calibration.factors(forecast.draws.shape[2], seed=seed, groups=labels)
    f = f[None, None, :] if f.ndim == 1 else f[:, None, :]
    return Forecast.from_draws(
        forecast.draws * f,
        unique_ids=forecast.unique_ids,
        ds=forecast.ds,
        model=forecast.model,
        freq=forecast.freq,
        quantiles=forecast.quantile_levels,
        series_model=forecast.fallback["model"].to_numpy(),
        reason=forecast.fallback["reason"].to_numpy(),
    )
