"""The dense-array toolkit of leading-indicator discovery: entities x periods arrays, NaN where missing.

Calendar regressors (:func:`calendar_design`), trend-and-season removal (:func:`detrend`),
autoregressive models (:func:`fit_ar`, :func:`prewhiten`) with their filters and the transposes
the generalised-least-squares statistic needs (:func:`ar_filter`, :func:`ar_filter_adjoint`,
:func:`ar_recolour`, :func:`ar_recolour_adjoint`), lagged cross-products (:func:`lag_sums`) and
the expanding-window backtest (:func:`expanding_fe_errors`). All of it is vectorized over
entities; the only loops run over lags, AR orders, periods of a recursive filter or forecast
steps.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from spm_models.calendar import DEFAULT_CALENDAR, Calendar, check_grain

__all__ = [
    "PERIODS_PER_YEAR",
    "INDICATOR_GRAINS",
    "to_panel",
    "shared_units",
    "target_scale",
    "covers_years",
    "calendar_design",
    "detrend",
    "prewhiten",
    "fit_ar",
    "ar_filter",
    "ar_filter_adjoint",
    "ar_recolour",
    "ar_recolour_adjoint",
    "standardise",
    "lag_sums",
    "correlation",
    "expanding_fe_errors",
]

#: Average number of periods in a year, per grain.
PERIODS_PER_YEAR: dict[str, float] = {"week": 365.2425 / 7, "month": 12.0, "quarter": 4.0}
#: Grains leading indicators are looked for at (a year has too few periods for lags).
INDICATOR_GRAINS: tuple[str, ...] = tuple(PERIODS_PER_YEAR)
# Harmonics of the yearly cycle fitted per grain (only with two years of data or more).
_YEARLY_HARMONICS = {"week": 3, "month": 2, "quarter": 1}


def to_panel(frame: pd.DataFrame, *, entities: np.ndarray, periods: pd.DatetimeIndex) -> np.ndarray:
    """Spread a long frame (``entity_id``, ``period``, ``value``) onto an entities x periods array.

    Rows whose entity or period is not on the grid are ignored; cells without a row, or with a
    NaN value, are NaN. Returns an array of shape ``(len(entities), len(periods))``.
    """
    values = np.full((len(entities), len(periods)), np.nan)
    e = pd.Index(entities).get_indexer(frame["entity_id"].astype("str"))
    t = periods.get_indexer(pd.DatetimeIndex(frame["period"]))
    ok = (e >= 0) & (t >= 0)
    values[e[ok], t[ok]] = frame["value"].to_numpy(dtype=float)[ok]
    return values


def shared_units(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group the entities whose series of one candidate are identical (NaN equal to NaN).

    Returns
    -------
    first : ndarray of int (U,)
        The first entity of each unit, in order of appearance.
    unit : ndarray of int (E,)
        The unit of each entity.
    """
    key = np.where(np.isnan(values), np.inf, values)
    _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return first[order], rank[np.ravel(inverse)]


def target_scale(y: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """``asinh(y / c_e)`` per entity, ``c_e`` = mean of the entity's non-zero ``|y|`` over ``rows``.

    ``rows`` (bool, like ``y``) defaults to every observed cell; NaN stays NaN. Close to
    ``y / c_e`` for small values and to ``log(2 y / c_e)`` for large ones: a week with one
    more deal adds about as much as any other, one huge deal does not dominate.
    """
    nz = ~np.isnan(y) & (y != 0)
    if rows is not None:
        nz &= rows
    scale = np.where(nz, np.abs(y), 0.0).sum(axis=1) / np.maximum(nz.sum(axis=1), 1)
    return np.arcsinh(y / np.where(scale > 0, scale, 1.0)[:, None])


def covers_years(n_periods: int, grain: str, years: float) -> bool:
    """Whether ``n_periods`` periods make at least ``years`` years (104 weeks count as two)."""
    return n_periods >= int(np.floor(years * PERIODS_PER_YEAR[grain]))


def calendar_design(
    periods: pd.DatetimeIndex, grain: str, *, yearly: bool | None = None, calendar: Calendar = DEFAULT_CALENDAR
) -> tuple[np.ndarray, list[str]]:
    """Regressors for trend and calendar effects, one row per period.

    Columns: ``const``; ``trend`` (``t / T``); with two years of periods or more (or
    ``yearly=True``) the yearly Fourier terms ``sin(2 pi k u), cos(2 pi k u)`` for
    ``k = 1..K`` (``K`` = 3 weekly, 2 monthly, 1 quarterly), where ``u`` is the fraction of
    the year elapsed at the middle of the period; and, with a year of data or more, the
    position within the (fiscal, ``calendar``) quarter (the quarter-end push): for weeks
    ``sin(2 pi j q), cos(2 pi j q)``, ``j = 1, 2``, with ``q`` the fraction of the quarter
    elapsed, for months a dummy for the 2nd and for the 3rd month of the quarter.

    Returns
    -------
    design : ndarray, shape (T, k)
    names : list of str
    """
    check_grain(grain, INDICATOR_GRAINS)
    n = len(periods)
    if yearly is None:
        yearly = covers_years(n, grain, 2)
    starts = pd.DatetimeIndex(periods)
    mid = starts + (calendar.next_period_start(starts, grain) - starts) / 2
    cols = [np.ones(n), np.arange(n) / max(n - 1, 1)]
    names = ["const", "trend"]
    if yearly:
        u = (mid.day_of_year.to_numpy() - 1 + mid.hour.to_numpy() / 24) / 365.25
        for k in range(1, _YEARLY_HARMONICS[grain] + 1):
            cols += [np.sin(2 * np.pi * k * u), np.cos(2 * np.pi * k * u)]
            names += [f"year_sin{k}", f"year_cos{k}"]
    if covers_years(n, grain, 1) and grain == "week":
        q_start = calendar.period_start(mid, "quarter")
        q_len = (calendar.next_period_start(q_start, "quarter") - q_start).days.to_numpy()
        q = ((mid - q_start) / pd.Timedelta(days=1)).to_numpy() / q_len
        for j in (1, 2):
            cols += [np.sin(2 * np.pi * j * q), np.cos(2 * np.pi * j * q)]
            names += [f"quarter_sin{j}", f"quarter_cos{j}"]
    elif covers_years(n, grain, 1) and grain == "month":
        m = calendar.position_in_quarter(mid, "month")
        cols += [(m == 1).astype(float), (m == 2).astype(float)]
        names += ["quarter_month2", "quarter_month3"]
    return np.column_stack(cols), names


def _solve(xtx: np.ndarray, xty: np.ndarray) -> np.ndarray:
    """Batched ``(X'X + eps I)^-1 X'y``; the tiny ridge keeps rank-deficient fits finite."""
    k = xtx.shape[-1]
    if k == 0:
        return np.zeros(xty.shape)
    scale = np.trace(xtx, axis1=-2, axis2=-1)[..., None, None] / k
    ridge = 1e-9 * np.where(scale > 0, scale, 1.0) * np.eye(k)
    return np.linalg.solve(xtx + ridge, xty[..., None])[..., 0]


def detrend(values: np.ndarray, design: np.ndarray, *, min_points: int | None = None) -> np.ndarray:
    """Residuals of each entity's series regressed on ``design`` (OLS over its observed periods).

    ``resid[e, t] = v[e, t] - d_t' b_e``, ``b_e = argmin sum_t m[e, t] (v[e, t] - d_t' b)^2``.
    Entities with fewer than ``min_points`` observed periods (default: ``2 k + 8`` for ``k``
    regressors) get all-NaN residuals, as do constant series (nothing to correlate).

    Parameters
    ----------
    values : ndarray, shape (E, T), NaN where missing
    design : ndarray, shape (T, k)

    Returns
    -------
    ndarray, shape (E, T), NaN where missing or dropped
    """
    m = ~np.isnan(values)
    v = np.where(m, values, 0.0)
    k = design.shape[1]
    # m_et d_tk d_tl summed over t: one matrix product over the k^2 column pairs
    pairs = (design[:, :, None] * design[:, None, :]).reshape(len(design), k * k)
    xtx = (m.astype(float) @ pairs).reshape(len(values), k, k)
    xty = v @ design
    beta = _solve(xtx, xty)
    resid = np.where(m, v - beta @ design.T, np.nan)
    need = 2 * k + 8 if min_points is None else min_points
    rss = np.where(m, resid, 0.0) ** 2
    tss = v**2
    # constant (or exactly calendar-shaped) series leave nothing to correlate
    drop = (m.sum(axis=1) < need) | (rss.sum(axis=1) <= 1e-12 * tss.sum(axis=1))
    resid[drop] = np.nan
    return resid


def _lagged(values: np.ndarray, p: int) -> np.ndarray:
    """``out[e, t, j] = values[e, t - 1 - j]`` (NaN before the start), shape (E, T, p)."""
    e, t = values.shape
    out = np.full((e, t, p), np.nan)
    for j in range(p):
        out[:, j + 1 :, j] = values[:, : t - j - 1]
    return out


def _ar_fit(x: np.ndarray, p: int, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-entity AR(p) coefficients (E, p) and residual variance (E,) fitted on ``rows``."""
    if p == 0:
        ss = np.where(rows, x, 0.0) ** 2
        return np.zeros((len(x), 0)), ss.sum(axis=1) / np.maximum(rows.sum(axis=1), 1)
    z = _lagged(x, p)
    w = rows.astype(float)
    z0 = np.where(rows[..., None], z, 0.0)
    x0 = np.where(rows, x, 0.0)
    phi = _solve(np.matmul(z0.transpose(0, 2, 1) * w[:, None, :], z0), np.matmul(x0[:, None, :], z0)[:, 0])
    resid = x0 - np.matmul(z0, phi[..., None])[..., 0]
    return phi, (resid**2).sum(axis=1) / np.maximum(rows.sum(axis=1), 1)


def ar_filter(v: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """``v[e, t] - sum_j phi[e, j] v[e, t - 1 - j]``; NaN unless all terms are observed.

    The AR filter ``(1 - sum_j phi_j B^j)``: applied to the series it was fitted on it
    returns the innovations. ``phi`` has shape (E, p).
    """
    p = phi.shape[1]
    if p == 0:
        return v.copy()
    return v - np.einsum("etk,ek->et", _lagged(v, p), phi)


def ar_filter_adjoint(v: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """The transpose of :func:`ar_filter` over the periods: ``u[e, s] = v[e, s] - sum_j phi[e, j] v[e, s + 1 + j]``.

    Missing cells of ``v`` count as 0, so the result has no NaN: ``<ar_filter(a), b> =
    <a, ar_filter_adjoint(b)>`` for fully observed ``a`` (tested). With :func:`ar_filter` it
    gives ``F'F v``, the generalised-least-squares weighting of a series whose noise ``F``
    whitens.
    """
    v0 = np.nan_to_num(v, nan=0.0)
    out = v0.copy()
    n_t = v.shape[1]
    for j in range(phi.shape[1]):
        out[:, : n_t - 1 - j] -= phi[:, j : j + 1] * v0[:, 1 + j :]
    return out


def ar_recolour(e: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """The inverse of :func:`ar_filter` from a zero start: ``x_t = e_t + sum_j phi_j x_{t-1-j}``.

    Missing cells of ``e`` count as 0. A loop over periods, vectorized over entities (and any
    leading axes of ``e``, which must end with (E, T)).
    """
    e0 = np.nan_to_num(e, nan=0.0)
    out = np.zeros_like(e0)
    for t in range(e0.shape[-1]):
        acc = e0[..., t].copy()
        for j in range(min(phi.shape[1], t)):
            acc += phi[:, j] * out[..., t - 1 - j]
        out[..., t] = acc
    return out


def ar_recolour_adjoint(v: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """The transpose of :func:`ar_recolour`: ``u_s = v_s + sum_j phi_j u_{s+1+j}``, run backwards.

    ``<ar_recolour(e), v> = <e, ar_recolour_adjoint(v)>`` (tested): ``u_s`` is the weight the
    innovation of period ``s`` carries into every later value of the series. Missing cells of
    ``v`` count as 0.
    """
    v0 = np.nan_to_num(v, nan=0.0)
    out = np.zeros_like(v0)
    n_t = v0.shape[1]
    for s in range(n_t - 1, -1, -1):
        acc = v0[:, s].copy()
        for j in range(min(phi.shape[1], n_t - 1 - s)):
            acc += phi[:, j] * out[:, s + 1 + j]
        out[:, s] = acc
    return out


def fit_ar(x: np.ndarray, *, max_order: int = 4) -> tuple[np.ndarray, int]:
    """Per-entity AR coefficients of a common order chosen by the Bayesian information criterion.

    The order ``p`` (0..``max_order``, common to all entities) minimises the summed
    ``sum_e [n_e log(sigma2_e) + p log(n_e)]`` on the periods where ``max_order`` lags are
    observed; the coefficients of ``x_t = sum_{j=1..p} phi_j x_{t-j} + e_t`` are then refitted
    per entity by least squares on every period whose ``p`` lags are observed.

    Returns
    -------
    phi : ndarray, shape (E, p)
    order : int
    """
    base = ~np.isnan(x) & ~np.isnan(_lagged(x, max_order)).any(axis=2) if max_order else ~np.isnan(x)
    ok = base.sum(axis=1) > max_order + 2
    best, best_ic = 0, np.inf
    for p in range(max_order + 1):
        _, s2 = _ar_fit(x, p, base)
        n = base.sum(axis=1)
        ic = float(np.sum(np.where(ok, n * np.log(np.maximum(s2, 1e-300)) + p * np.log(np.maximum(n, 1)), 0.0)))
        if ic < best_ic - 1e-9:
            best, best_ic = p, ic
    rows = ~np.isnan(x) & ~np.isnan(_lagged(x, best)).any(axis=2) if best else ~np.isnan(x)
    phi, _ = _ar_fit(x, best, rows)
    return phi, best


def prewhiten(x: np.ndarray, y: np.ndarray, *, max_order: int = 4) -> tuple[np.ndarray, np.ndarray, int]:
    """Filter a candidate and the target with an AR model of the candidate (Box-Jenkins).

    Fit ``x_t = sum_{j=1..p} phi_j x_{t-j} + e_t`` to each entity's (detrended) candidate
    (:func:`fit_ar`), then return ``e_t = x_t - sum_j phi_j x_{t-j}`` and
    ``y*_t = y_t - sum_j phi_j y_{t-j}``. The cross-correlation of ``e`` and ``y*`` at lag
    ``l`` is proportional to the impulse response of ``y`` to ``x`` at lag ``l``; without the
    filter a persistent candidate smears one true lag over many neighbours and inflates every
    correlation.

    BIC rather than AIC for the order: an order fitted to noise (AIC picks one for a white
    series about a quarter of the time) filters the target with coefficients that depend on the
    candidate, which made the permutation test of :mod:`spm_models.indicators.discovery` too
    lenient in simulation (p < 0.5 in 65 % of null runs with an autocorrelated target, 59 % with
    BIC, 57 % without any filter).

    Returns
    -------
    e, y_star : ndarray, shape (E, T), NaN where a term is missing
    order : int
    """
    phi, best = fit_ar(x, max_order=max_order)
    return ar_filter(x, phi), ar_filter(y, phi), best


def standardise(v: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """``(v - mean_e) / sd_e`` per entity, with mean and sd over ``rows`` (default: observed cells).

    Cells that are missing, or of an entity whose sd is 0, are 0 (they add nothing to sums).
    """
    obs = ~np.isnan(v)
    rows = obs if rows is None else rows & obs
    n = np.maximum(rows.sum(axis=1), 1)
    mean = np.where(rows, v, 0.0).sum(axis=1) / n
    sd = np.sqrt(np.where(rows, (v - mean[:, None]) ** 2, 0.0).sum(axis=1) / n)
    z = (np.where(obs, v, 0.0) - mean[:, None]) / np.where(sd > 0, sd, 1.0)[:, None]
    return np.where(obs & (sd[:, None] > 0), z, 0.0)


def lag_sums(
    x: np.ndarray,
    y: np.ndarray,
    mx: np.ndarray,
    my: np.ndarray,
    *,
    max_lag: int,
    t_range: tuple[int, int] | None = None,
    split: int | None = None,
) -> np.ndarray:
    """Sums over the pairs ``(x[e, t - l], y[e, t])`` observed in both, per entity and lag.

    Only pairs whose ``t`` lies in ``t_range = [lo, hi)`` count (default: all periods). With
    ``split``, the sums of ``[lo, split)`` and ``[split, hi)`` come separately, from one pass.

    Returns
    -------
    ndarray, shape (4, E, L+1), or (2, 4, E, L+1) with ``split``
        ``sum x y``, ``sum x^2``, ``sum y^2`` and the number of pairs.
    """
    n_e, n_t = x.shape
    t_lo, t_hi = t_range or (0, n_t)
    cut = t_hi if split is None else split
    out = np.zeros((2, 4, n_e, max_lag + 1))
    for lag in range(max_lag + 1):  # a loop over at most a few dozen lags, vectorized inside
        lo = max(t_lo, lag)
        if lo >= t_hi:
            continue
        xs, ys = x[:, lo - lag : t_hi - lag], y[:, lo:t_hi]
        pair = mx[:, lo - lag : t_hi - lag] & my[:, lo:t_hi]
        parts = (np.where(pair, xs * ys, 0.0), np.where(pair, xs**2, 0.0), np.where(pair, ys**2, 0.0), pair)
        at = min(max(cut - lo, 0), t_hi - lo)
        for i, part in enumerate(parts):
            out[0, i, :, lag] = part[:, :at].sum(axis=1)
            out[1, i, :, lag] = part[:, at:].sum(axis=1)
    return out if split is not None else out[0] + out[1]


def correlation(sxy: np.ndarray, sxx: np.ndarray, syy: np.ndarray) -> np.ndarray:
    """``sxy / sqrt(sxx syy)``, NaN where a sum of squares is 0."""
    den = np.sqrt(sxx * syy)
    return np.where(den > 0, sxy / np.where(den > 0, den, 1.0), np.nan)


def expanding_fe_errors(
    y: np.ndarray,
    feats: np.ndarray,
    cells: np.ndarray,
    origins: np.ndarray,
    horizon: int,
    *,
    weights: np.ndarray,
    loss: str = "absolute",
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted absolute (or squared) errors of an expanding-window fixed-effects regression, per origin.

    For origin ``o`` the model ``y_{e,t} = a_e + f_{e,t}' b + u`` is fitted on the cells with
    ``t < o`` by the within estimator (``b`` from the entity-demeaned normal equations,
    ``a_e = ybar_e - fbar_e' b``) and scored on the cells ``o <= t < o + horizon``. The
    normal equations of every origin come from prefix sums over time, so all origins cost
    ``O(E T k^2)`` together instead of one refit each.

    Parameters
    ----------
    y : ndarray (E, T)
    feats : ndarray (E, T, k)
        Regressors without a constant (the entity intercepts take its place).
    cells : ndarray of bool (E, T)
        Cells usable for fitting and scoring.
    origins : ndarray of int (O,)
    horizon : int
    weights : ndarray (E,)
        Multiplies each entity's errors (e.g. to undo a per-entity scaling of ``y``).
    loss : {"absolute", "squared"}, default "absolute"

    Returns
    -------
    errors : ndarray (O,)
        ``sum_{e,t} weights_e |y_{e,t} - yhat_{e,t}|`` (squared: ``weights_e (y - yhat)^2``)
        over the scored cells.
    counts : ndarray (O,)
        Number of scored cells.
    """
    if loss not in ("absolute", "squared"):
        raise ValueError(f"loss must be 'absolute' or 'squared', not {loss!r}")
    power = 1 if loss == "absolute" else 2
    n_t = feats.shape[1]
    f = np.where(cells[..., None], feats, 0.0)
    yv = np.where(cells, y, 0.0)

    def before(a: np.ndarray, axis: int) -> np.ndarray:  # sums over t < o, for every origin o
        c = np.cumsum(a, axis=axis)
        pad = [(0, 0)] * a.ndim
        pad[axis] = (1, 0)
        return np.take(np.pad(c, pad), origins, axis=axis)

    n_e = before(cells.astype(float), 1)  # (E, O)
    sf = before(f, 1)  # (E, O, k)
    sy = before(yv, 1)  # (E, O)
    sff = before(np.einsum("etk,etl->tkl", f, f), 0)  # (O, k, k)
    sfy = before(np.einsum("etk,et->tk", f, yv), 0)  # (O, k)
    inv_n = np.where(n_e > 0, 1.0 / np.maximum(n_e, 1), 0.0)
    xtx = sff - np.einsum("eok,eol,eo->okl", sf, sf, inv_n)
    xty = sfy - np.einsum("eok,eo,eo->ok", sf, sy, inv_n)
    beta = _solve(xtx, xty)  # (O, k)
    y_bar, f_bar = sy * inv_n, sf * inv_n[..., None]
    err, count = np.zeros(len(origins)), np.zeros(len(origins))
    for j in range(horizon):  # at most a handful of steps ahead
        t = origins + j
        inside = t < n_t
        tt = np.where(inside, t, 0)
        pred = y_bar + np.einsum("eok,ok->eo", feats[:, tt] - f_bar, beta)
        score = cells[:, tt] & (n_e > 0) & inside[None, :]
        err += np.where(score, weights[:, None] * np.abs(y[:, tt] - pred) ** power, 0.0).sum(axis=0)
        count += score.sum(axis=0)
    return err, count
