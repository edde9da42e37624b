"""Recalibrating P(quota) with what earlier quarters showed.

A model that does not see everything behind a quota (open deals, ramp-up, the manager's own
knowledge that went into setting it) tends to be over-confident about quota attainment: its
``p = P(attainment >= 1)`` is too close to 0 or 1. Backtesting it on past quarters
(:func:`spm_models.evaluation.quota.backtest.backtest_quota_probabilities`, on a synthetic
organisation or on the user's own history, as the monthly review does:
:mod:`spm_models.review.recalibration`) gives pairs ``(p, hit)``; logistic recalibration
(Platt scaling) learns how to correct ``p`` from them:

.. math::

    \\operatorname{logit} \\tilde p = a + b \\operatorname{logit}(\\operatorname{clip}(p, \\epsilon, 1 - \\epsilon)),

with ``a, b`` maximising the Bernoulli likelihood of the hits (``b < 1``: the model is
over-confident and its probabilities are pulled towards the middle; ``a`` corrects an overall
bias). It keeps the model's ranking of agents and only moves probabilities.

:func:`rolling_recalibration` applies it the way it would have been used: at every origin it
is fitted only on quarters that had ended by then (same point in the quarter), so the
recalibrated probabilities are out of sample and their reliability table is an honest check.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from spm_models.exceptions import ConfigError, DataError

__all__ = ["Recalibration", "fit_recalibration", "rolling_recalibration"]

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


def rolling_recalibration(
    backtest: pd.DataFrame, *, by: str | None = "offset_weeks", min_rows: int = 200
) -> pd.DataFrame:
    """Out-of-sample recalibrated P(quota) for every row of a quota backtest.

    For each origin (and value of ``by``), :func:`fit_recalibration` is fitted on the rows
    whose quota period had ended by the origin (on or before it) (and have the same ``by`` value), then applied
    to the origin's rows. Rows with fewer than ``min_rows`` such past rows get NaN.

    Parameters
    ----------
    backtest : DataFrame
        ``origin, period_end, p_quota, hit`` (and ``by``), as from
        :func:`spm_models.evaluation.quota.backtest.backtest_quota_probabilities`.
    by : str or None
        Column whose groups are recalibrated separately (the point in the quarter); None pools.
    min_rows : int

    Returns
    -------
    DataFrame
        ``backtest`` with ``p_recalibrated``, ``recal_intercept``, ``recal_slope`` added.
    """
    need = {"origin", "period_end", "p_quota", "hit"} | ({by} if by else set())
    missing = sorted(need - set(backtest.columns))
    if missing:
        raise ConfigError(f"the quota backtest frame lacks {', '.join(missing)}")
    out = backtest.copy()
    out["p_recalibrated"] = np.nan
    out["recal_intercept"] = np.nan
    out["recal_slope"] = np.nan
    keys = ["origin"] + ([by] if by else [])
    for key, rows in out.groupby(keys, sort=True):  # a loop over origins, not agents
        origin = key[0]
        past = out[out["period_end"] <= origin]
        if by:
            past = past[past[by] == key[1]]
        past = past[past["p_quota"].notna()]
        if len(past) < min_rows or past["hit"].nunique() < 2:
            continue
        cal = fit_recalibration(past["p_quota"], past["hit"].astype(float), min_rows=min_rows)
        out.loc[rows.index, "p_recalibrated"] = cal(rows["p_quota"].to_numpy())
        out.loc[rows.index, "recal_intercept"] = cal.intercept
        out.loc[rows.index, "recal_slope"] = cal.slope
    return out
