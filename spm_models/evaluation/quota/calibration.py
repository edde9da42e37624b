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
2. **Logistic recalibration** (Platt scaling) of the agents' chances after stage 1:
   ``logit p~ = a + b logit p``, fitted on the past agent-quarters, each adjusted with the
   factor that was known before it. It keeps the ranking of agents and never moves a chance
   of exactly 0 or 1 (booked at or above quota: 1). When too few past outcomes exist, or the
   slope is near zero (the past chances did not separate hits from misses, and the fit would
   give everyone the same number), stage 2 is not applied and the calibration says why.

Each stage is learned per position in the quarter: the review backtests at its own offset.
:func:`rolling_calibration` applies the same two functions quarter by quarter with only what had
ended before each quarter, so a reliability table of its output is an honest check
(``make bench-quota``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.optimize import minimize

from spm_models.exceptions import ConfigError, DataError

__all__ = [
    "Recalibration",
    "fit_recalibration",
    "QuotaCalibration",
    "learn_quota_calibration",
    "chance_with_factor",
    "rolling_calibration",
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
#: Standard normal quantiles that integrate over the common factor for stored rows.
_Z = stats.norm.ppf((np.arange(64) + 0.5) / 64)


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

    @property
    def factor_applied(self) -> bool:
        return self.drift is not None

    def factors(self, n_draws: int, *, seed: int = 0) -> np.ndarray:
        """``F_j`` for ``n_draws`` scenarios (all ones without stage 1), shared by every series."""
        if not self.factor_applied:
            return np.ones(n_draws)
        z = np.random.default_rng(seed).standard_normal(n_draws)
        return np.exp(self.drift + self.spread * z - 0.5 * self.spread**2)

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


def chance_with_factor(
    points: np.ndarray, closed: Any, quota: Any, drift: float, spread: float, *, chunk: int = 2000
) -> np.ndarray:
    """``P(closed + F R >= quota)`` per row from stored order statistics of ``R`` (``points``).

    ``F = exp(drift + spread Z - spread^2/2)`` is integrated over 64 normal quantiles of ``Z``;
    each row's ``R`` is taken as uniform over its points. Rows at or above quota get 1.
    """
    pts = np.asarray(points, dtype=float)
    need = np.asarray(quota, dtype=float) - np.asarray(closed, dtype=float)
    f = np.exp(drift + spread * _Z - 0.5 * spread**2)
    out = np.empty(len(pts))
    for lo in range(0, len(pts), chunk):  # chunks of rows bound the (rows, points, factors) array
        x = need[lo : lo + chunk, None] / f[None, :]
        out[lo : lo + chunk] = (pts[lo : lo + chunk, :, None] >= x[:, None, :]).mean(axis=(1, 2))
    return np.where(need <= 0, 1.0, out)


def _adjusted_history(rows: pd.DataFrame, *, min_quarters: int) -> pd.Series:
    """Each past row's chance after stage 1 with the factor known before its quarter (raw before that)."""
    ratios = _quarter_ratios(rows)
    out = pd.Series(rows["p_quota"].to_numpy(dtype=float), index=rows.index)
    for start, sub in rows.groupby("period_start", sort=True):  # a loop over quarters
        cf = _factor_from(ratios[ratios.index < start], min_quarters=min_quarters)
        if cf is not None:
            pts = np.stack(sub["remaining_points"].to_numpy())
            out[sub.index] = chance_with_factor(pts, sub["closed_to_date"], sub["quota"], *cf)
    return out


def learn_quota_calibration(
    rows: pd.DataFrame, *, min_quarters: int = 3, min_rows: int = 200, min_slope: float = 0.2
) -> QuotaCalibration:
    """Learn the two stages from past agent-quarters at one point in the quarter (module docstring).

    Parameters
    ----------
    rows : DataFrame
        Agent rows of a quota backtest for quarters that had ended (``period_start, quota,
        closed_to_date, p_quota, hit, expected_remaining, realised_remaining,
        remaining_points``), all at the same offset.
    min_quarters : int
        Fewest past quarters for the common factor.
    min_rows : int
        Fewest past agent-quarters (with both hits and misses) for stage 2.
    min_slope : float
        Smallest stage-2 slope kept; below it the past chances barely separated hits from
        misses and stage 2 is left out.

    Returns
    -------
    QuotaCalibration
    """
    notes = []
    ratios = _quarter_ratios(rows)
    cf = _factor_from(ratios, min_quarters=min_quarters)
    if cf is None:
        notes.append(f"no common correction: {len(ratios)} past quarters, at least {max(min_quarters, 2)} are needed")
    recal = None
    adjusted = _adjusted_history(rows, min_quarters=min_quarters) if len(rows) else pd.Series(dtype=float)
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
    )


def rolling_calibration(backtest: pd.DataFrame, **kwargs) -> pd.DataFrame:
    """Out-of-sample calibrated chances for every row of a quota backtest.

    For each quarter and offset, :func:`learn_quota_calibration` is learned on the agent rows of
    the quarters that had ended before the quarter started (same offset) and applied to the
    quarter's rows: agents get both stages, other levels (territories) the common factor only,
    as in the review. Rows without enough history get NaN.

    Returns
    -------
    DataFrame
        ``backtest`` with ``p_calibrated`` (and ``drift``, ``spread``, ``slope``) added.
    """
    need = {"period_start", "period_end", "offset_weeks", "level", "p_quota", "hit", "remaining_points"}
    missing = sorted(need - set(backtest.columns))
    if missing:
        raise ConfigError(f"the quota backtest frame lacks {', '.join(missing)}")
    out = backtest.copy()
    for col in ("p_calibrated", "drift", "spread", "slope"):
        out[col] = np.nan
    agents = out[out["level"] == "agent"]
    for (start, off), rows in out.groupby(["period_start", "offset_weeks"], sort=True):
        past = agents[(agents["period_end"] < start) & (agents["offset_weeks"] == off)]
        if past.empty:
            continue
        cal = learn_quota_calibration(past, **kwargs)
        if not cal.factor_applied and cal.recalibration is None:
            continue
        pts = np.stack(rows["remaining_points"].to_numpy())
        p = rows["p_quota"].to_numpy(dtype=float)
        if cal.factor_applied:
            p = chance_with_factor(pts, rows["closed_to_date"], rows["quota"], cal.drift, cal.spread)
        is_agent = (rows["level"] == "agent").to_numpy()
        p = np.where(is_agent, cal.adjust(p), p)
        out.loc[rows.index, "p_calibrated"] = p
        out.loc[rows.index, "drift"] = cal.drift if cal.factor_applied else np.nan
        out.loc[rows.index, "spread"] = cal.spread if cal.factor_applied else np.nan
        out.loc[rows.index, "slope"] = cal.recalibration.slope if cal.recalibration is not None else np.nan
    return out
