"""Forecast scores: accuracy (MASE), calibration (CRPS, interval coverage) and bias.

Array functions take plain arrays and ignore positions where the actual is NaN (an actual
that is not known yet is not an error). :func:`score` applies them to a
:class:`~spm_models.models.forecast.Forecast` per series; :func:`summarize` pools the
per-series scores by hierarchy level (agent, territory, company). Sign convention:
error = forecast - actual, so a positive bias means over-forecasting.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from spm_models.exceptions import DataError
from spm_models.models.forecast import Forecast, quantile_column
from spm_models.models.panel import DT_DTYPE

__all__ = [
    "clean_actuals",
    "mase_scale",
    "mase",
    "crps_draws",
    "pinball_loss",
    "crps_quantiles",
    "coverage",
    "randomized_pit",
    "mean_error",
    "percent_bias",
    "score",
    "summarize",
    "SCORE_COLUMNS",
]

#: Columns of the frame returned by :func:`score`, in order.
SCORE_COLUMNS: tuple[str, ...] = (
    "unique_id",
    "model",
    "fallback",
    "n",
    "mae",
    "mase",
    "crps",
    "scaled_crps",
    "crps_quantiles",
    "coverage_80",
    "coverage_95",
    "pit_coverage_80",
    "mean_error",
    "bias_pct",
    "sum_actual",
    "sum_forecast",
    "scale",
)


def _float(a) -> np.ndarray:
    return np.asarray(a, dtype=float)


def mase_scale(y_train, *, season: int = 1) -> float:
    """In-sample MAE of the seasonal naive forecast: the MASE denominator.

    .. math:: s = \\frac{1}{T-m} \\sum_{t=m+1}^{T} |y_t - y_{t-m}|

    Parameters
    ----------
    y_train : array-like
        Training values in time order, one per period (NaN pairs are skipped).
    season : int
        Seasonal lag ``m``; 1 (the default) scales by the naive (random-walk) forecast's
        MAE, which exists for any series with two points. Use 13 (weekly) or 3 (monthly) to
        compare against a same-period-last-quarter forecast.

    Returns
    -------
    float
        NaN when fewer than ``m + 1`` usable values.
    """
    y = _float(y_train)
    if season < 1:
        raise DataError(f"season must be at least 1, got {season}")
    if y.size <= season:
        return float("nan")
    d = np.abs(y[season:] - y[:-season])
    return float(np.nanmean(d)) if np.isfinite(d).any() else float("nan")


def mase(y_true, y_pred, *, y_train, season: int = 1) -> float:
    """Mean absolute scaled error (Hyndman & Koehler, 2006).

    .. math:: \\mathrm{MASE} = \\frac{\\frac1h \\sum_k |y_{T+k} - \\hat y_{T+k}|}{s}

    with ``s`` from :func:`mase_scale`. Below 1: better than the in-sample seasonal naive
    forecast. NaN actuals are skipped.

    Returns
    -------
    float
        NaN when there is no actual, or the scale is 0 or undefined (a constant or too
        short training series).
    """
    y, p = _float(y_true), _float(y_pred)
    ok = ~np.isnan(y)
    scale = mase_scale(y_train, season=season)
    if not ok.any() or not np.isfinite(scale) or scale == 0:
        return float("nan")
    return float(np.mean(np.abs(y[ok] - p[ok])) / scale)


def crps_draws(draws, y) -> np.ndarray:
    """Continuous ranked probability score of an ensemble of draws, in O(n log n).

    Energy form (Gneiting & Raftery, 2007), exact for the empirical distribution of the
    draws :math:`x_1..x_n`:

    .. math::

        \\mathrm{CRPS} = \\frac1n \\sum_i |x_i - y| - \\frac{1}{2n^2}\\sum_{i,j} |x_i - x_j|
                      = \\frac1n \\sum_i |x_i - y| - \\frac{1}{n^2}\\sum_{i=1}^n (2i - n - 1)\\, x_{(i)}

    where :math:`x_{(i)}` are the sorted draws, so the pair sum costs one sort instead of
    :math:`n^2` differences. A point mass scores its absolute error. Lower is better; the
    unit is the unit of ``y``.

    Parameters
    ----------
    draws : array, shape (..., n)
    y : array, shape (...)

    Returns
    -------
    ndarray, shape (...)
        NaN where ``y`` is NaN.
    """
    x = np.sort(_float(draws), axis=-1)
    y = _float(y)
    n = x.shape[-1]
    if n == 0:
        raise DataError("crps_draws needs at least one draw")
    y_safe = np.where(np.isnan(y), 0.0, y)
    spread = x @ ((2.0 * np.arange(1, n + 1) - n - 1) / n**2)
    out = np.mean(np.abs(x - y_safe[..., None]), axis=-1) - spread
    return np.where(np.isnan(y), np.nan, out)


def randomized_pit(draws, y, *, seed: int = 0) -> np.ndarray:
    """Randomised probability integral transform of each actual under its draws.

    .. math:: u = F(y^-) + V\\,(F(y) - F(y^-)),\\qquad V \\sim U(0, 1),

    with :math:`F` the empirical CDF of the draws (Czado, Gneiting & Held, 2009). For a
    calibrated forecast ``u`` is uniform on [0, 1] even when the predictive law has atoms,
    as weekly bookings have at 0; the plain PIT :math:`F(y)` is not (every actual 0 sits at
    the atom's top). The share of ``u`` in [0.1, 0.9] is therefore the honest "80% coverage"
    of a forecast with an atom: plain interval coverage of ``[q0.1, q0.9]`` counts every
    actual 0 as covered when ``P(0) >= 0.1`` and so exceeds 0.8 even for the true law.

    Parameters
    ----------
    draws : array, shape (..., n)
    y : array, shape (...)
    seed : int
        Seed of the uniforms ``V`` (the result is reproducible).

    Returns
    -------
    ndarray, shape (...)
        NaN where ``y`` is NaN.
    """
    x = _float(draws)
    y = _float(y)
    y_safe = np.where(np.isnan(y), 0.0, y)[..., None]
    below = (x < y_safe).mean(axis=-1)
    at = (x == y_safe).mean(axis=-1)
    v = np.random.default_rng(seed).random(below.shape)
    return np.where(np.isnan(y), np.nan, below + v * at)


def pinball_loss(y, q, tau: float) -> np.ndarray:
    """Quantile (pinball) loss :math:`\\rho_\\tau(y - q) = \\max(\\tau (y-q), (\\tau-1)(y-q))`."""
    d = _float(y) - _float(q)
    return np.maximum(tau * d, (tau - 1.0) * d)


def crps_quantiles(quantiles, levels, y) -> np.ndarray:
    """CRPS approximated from a few quantiles by the mean pinball loss.

    CRPS equals :math:`2\\int_0^1 \\rho_\\tau(y - q_\\tau)\\,d\\tau`; with ``K`` levels the
    integral is replaced by their average:

    .. math:: \\mathrm{CRPS} \\approx \\frac{2}{K} \\sum_k \\rho_{\\tau_k}(y - q_{\\tau_k})

    This converges to the CRPS for many evenly spaced levels; with the default five uneven
    levels (0.025, 0.1, 0.5, 0.9, 0.975) it is a rough proxy that weights the tails heavily,
    comparable only between forecasts scored on the same levels. For a point forecast
    (all quantiles equal) and levels symmetric around 0.5 it equals the absolute error.

    Parameters
    ----------
    quantiles : array, shape (..., K)
    levels : sequence of float, length K
    y : array, shape (...)

    Returns
    -------
    ndarray, shape (...)
        NaN where ``y`` is NaN.
    """
    q = _float(quantiles)
    tau = _float(levels)
    if q.shape[-1] != tau.size:
        raise DataError(f"{q.shape[-1]} quantile columns for {tau.size} levels")
    return 2.0 * np.mean(pinball_loss(_float(y)[..., None], q, tau), axis=-1)


def coverage(y, lower, upper) -> float:
    """Share of actuals inside their interval, bounds included: mean of 1[lower <= y <= upper].

    A calibrated 80% interval covers about 80% of actuals. With many zero actuals and a
    lower bound of 0 the share can exceed the nominal level (the atom at zero sits on the
    bound). NaN actuals are skipped; NaN when none is left.
    """
    y, lo, hi = _float(y), _float(lower), _float(upper)
    ok = ~np.isnan(y)
    if not ok.any():
        return float("nan")
    return float(np.mean((lo[ok] <= y[ok]) & (y[ok] <= hi[ok])))


def mean_error(y_true, y_pred) -> float:
    """Mean error :math:`\\frac1n\\sum(\\hat y - y)` (positive: over-forecast); NaN actuals skipped."""
    y, p = _float(y_true), _float(y_pred)
    ok = ~np.isnan(y)
    return float(np.mean(p[ok] - y[ok])) if ok.any() else float("nan")


def percent_bias(y_true, y_pred) -> float:
    """Bias as a percentage of the actual total: :math:`100 \\sum(\\hat y - y) / \\sum y`.

    Totals, not an average of per-period percentages, so zero-sales periods are fine.
    NaN when the actual total is 0.
    """
    y, p = _float(y_true), _float(y_pred)
    ok = ~np.isnan(y)
    total = y[ok].sum()
    return float(100.0 * (p[ok] - y[ok]).sum() / total) if ok.any() and total != 0 else float("nan")


def _interval(forecast: Forecast, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of the central ``level`` interval per cell, from the quantile frame or draws."""
    lo_q, hi_q = round((1 - level) / 2, 6), round(1 - (1 - level) / 2, 6)
    cols = [quantile_column(lo_q), quantile_column(hi_q)]
    if all(c in forecast.quantiles.columns for c in cols):
        return forecast.quantiles[cols[0]].to_numpy(), forecast.quantiles[cols[1]].to_numpy()
    b = np.quantile(forecast.draws, [lo_q, hi_q], axis=-1)
    return b[0].reshape(-1), b[1].reshape(-1)


def _scales(train: pd.DataFrame, uids: np.ndarray, season: int) -> np.ndarray:
    """:func:`mase_scale` of each series in ``uids`` from a long training frame (NaN if absent)."""
    missing = [c for c in ("unique_id", "ds", "y") if c not in train.columns]
    if missing:
        raise DataError(f"train frame is missing columns {', '.join(missing)}")
    t = pd.DataFrame(
        {
            "unique_id": train["unique_id"].astype("str").to_numpy(),
            "ds": pd.to_datetime(train["ds"]).to_numpy(),
            "y": pd.to_numeric(train["y"], errors="coerce").to_numpy(dtype=float),
        }
    )
    t = t.sort_values(["unique_id", "ds"], kind="stable")
    d = (t["y"] - t.groupby("unique_id", sort=False)["y"].shift(season)).abs()
    scale = d.groupby(t["unique_id"], sort=False).mean()
    return scale.reindex(pd.Index(uids, dtype="str")).to_numpy(dtype=float)


def clean_actuals(actuals: pd.DataFrame) -> pd.DataFrame:
    """Observed values as ``unique_id`` (text), ``ds`` (datetime) and ``y`` (float).

    Raises
    ------
    DataError
        A column is missing, or a (``unique_id``, ``ds``) pair repeats.
    """
    missing = [c for c in ("unique_id", "ds", "y") if c not in actuals.columns]
    if missing:
        raise DataError(f"actuals are missing columns {', '.join(missing)}")
    act = pd.DataFrame(
        {
            "unique_id": actuals["unique_id"].astype("str").to_numpy(),
            "ds": pd.to_datetime(actuals["ds"]).to_numpy().astype(DT_DTYPE),
            "y": pd.to_numeric(actuals["y"], errors="coerce").to_numpy(dtype=float),
        }
    )
    if act.duplicated(["unique_id", "ds"]).any():
        raise DataError("actuals repeat a (unique_id, ds) pair; give one row per series and period")
    return act


def score(
    forecast: Forecast,
    actuals: pd.DataFrame,
    *,
    train: pd.DataFrame,
    season: int = 1,
    point: str = "mean",
) -> pd.DataFrame:
    """Score a forecast against actuals, one row per series.

    Parameters
    ----------
    forecast : Forecast
    actuals : DataFrame
        ``unique_id``, ``ds``, ``y``; periods without an actual (or with NaN) are not scored.
    train : DataFrame
        The data the model was fitted on (``unique_id``, ``ds``, ``y``), for the MASE scale.
    season : int
        Seasonal lag of the MASE scale (see :func:`mase_scale`).
    point : str
        Column of ``forecast.quantiles`` used as the point forecast (``"mean"`` or e.g.
        ``"q0.5"``) for MAE, MASE and bias.

    Returns
    -------
    DataFrame
        :data:`SCORE_COLUMNS`: ``n`` scored periods; ``mae``; ``mase`` = mae / scale;
        ``crps`` (from draws, :func:`crps_draws`) averaged over periods; ``scaled_crps`` =
        crps / scale (comparable across series of different size); ``crps_quantiles``
        (:func:`crps_quantiles`); ``coverage_80`` / ``coverage_95`` (:func:`coverage` of the
        central 80% and 95% intervals); ``pit_coverage_80`` (share of randomised PIT values,
        :func:`randomized_pit`, in [0.1, 0.9]: the 80% coverage of a law with atoms); ``mean_error`` and ``bias_pct``
        (:func:`mean_error`, :func:`percent_bias`); ``sum_actual``, ``sum_forecast``
        (point forecast over scored periods) and ``scale`` (:func:`mase_scale`).

    Raises
    ------
    DataError
        Missing columns, repeated actuals, or an unknown ``point`` column.
    """
    if point not in forecast.quantiles.columns:
        raise DataError(f"point={point!r} is not a column of the forecast ({', '.join(forecast.quantiles.columns)})")
    act = clean_actuals(actuals)
    keys = forecast.quantiles[["unique_id", "ds"]]
    y = keys.merge(act, on=["unique_id", "ds"], how="left")["y"].to_numpy(dtype=float)
    n_series, h = forecast.n_series, forecast.h
    ok = ~np.isnan(y)
    series = np.repeat(np.arange(n_series), h)

    def per_series(values: np.ndarray) -> np.ndarray:
        return np.bincount(series[ok], weights=values[ok], minlength=n_series)

    n = per_series(np.ones_like(y))
    pt = forecast.quantiles[point].to_numpy(dtype=float)
    err = pt - np.where(ok, y, 0.0)
    crps = crps_draws(forecast.draws.reshape(n_series * h, -1), y)
    crps_q = crps_quantiles(forecast.quantiles[forecast.quantile_columns].to_numpy(), forecast.quantile_levels, y)
    cov = {}
    for lev in (0.8, 0.95):
        lo, hi = _interval(forecast, lev)
        cov[lev] = ((lo <= y) & (y <= hi)).astype(float)
    pit = randomized_pit(forecast.draws.reshape(n_series * h, -1), y)
    pit80 = ((pit >= 0.1) & (pit <= 0.9)).astype(float)
    scale = _scales(train, forecast.unique_ids, season)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_of = lambda v: np.where(n > 0, per_series(v) / np.where(n > 0, n, 1), np.nan)  # noqa: E731
        mae = mean_of(np.abs(err))
        crps_s = mean_of(crps)
        safe_scale = np.where(scale > 0, scale, np.nan)
        sum_actual = per_series(np.where(ok, y, 0.0))
        sum_forecast = per_series(pt)
        out = pd.DataFrame(
            {
                "unique_id": pd.array(forecast.unique_ids, dtype="str"),
                "model": forecast.fallback["model"].to_numpy(),
                "fallback": forecast.fallback["fallback"].to_numpy(),
                "n": n.astype(np.int64),
                "mae": mae,
                "mase": mae / safe_scale,
                "crps": crps_s,
                "scaled_crps": crps_s / safe_scale,
                "crps_quantiles": mean_of(crps_q),
                "coverage_80": mean_of(cov[0.8]),
                "coverage_95": mean_of(cov[0.95]),
                "pit_coverage_80": mean_of(pit80),
                "mean_error": mean_of(err),
                "bias_pct": np.where(
                    sum_actual != 0,
                    100.0 * (sum_forecast - sum_actual) / np.where(sum_actual != 0, sum_actual, 1),
                    np.nan,
                ),
                "sum_actual": sum_actual,
                "sum_forecast": sum_forecast,
                "scale": scale,
            }
        )
    return out


def summarize(scores: pd.DataFrame, *, level: str | Mapping[str, str] | pd.Series | None = None) -> pd.DataFrame:
    """Pool per-series scores (from :func:`score` or a backtest) by hierarchy level.

    Parameters
    ----------
    scores : DataFrame
        Rows as returned by :func:`score` (extra columns such as ``origin`` are fine).
    level : str, mapping or Series, optional
        Grouping: the name of a column of ``scores``, or a map ``unique_id -> level``
        (e.g. ``"agent"``, ``"territory"``, ``"company"``); all rows in one group
        ``"all"`` when omitted.

    Returns
    -------
    DataFrame
        One row per level: ``n_series`` (distinct series with a scored period), ``n``
        (scored periods), ``n_fallback`` (rows whose series fell back), the mean over rows of
        ``mase``, ``crps``, ``scaled_crps`` and ``crps_quantiles`` (NaN rows skipped),
        ``coverage_80``/``coverage_95``/``pit_coverage_80`` and ``mean_error`` pooled over periods (weighted by
        ``n``), and ``bias_pct`` = 100 * (sum of forecasts - sum of actuals) / sum of actuals.
    """
    s = scores[scores["n"] > 0]
    if level is None:
        key = pd.Series("all", index=s.index, name="level")
    elif isinstance(level, str):
        if level not in s.columns:
            raise DataError(f"scores have no column {level!r} to summarize by")
        key = s[level].rename("level")
    else:
        mapping = pd.Series(level) if not isinstance(level, pd.Series) else level
        key = s["unique_id"].map(mapping).rename("level")
        if key.isna().any():
            unknown = s.loc[key.isna(), "unique_id"].unique()[:5]
            raise DataError(f"series without a level in the mapping: {', '.join(map(str, unknown))}")
    w = s["n"].astype(float)
    frame = s.assign(
        level=key.to_numpy(),
        _cov80=s["coverage_80"] * w,
        _cov95=s["coverage_95"] * w,
        _pit80=(s["pit_coverage_80"] if "pit_coverage_80" in s.columns else np.nan) * w,
        _err=s["mean_error"] * w,
        _fb=s["fallback"].astype(int),
    )
    g = frame.groupby("level", sort=True)
    out = pd.DataFrame(
        {
            "n_series": g["unique_id"].nunique(),
            "n": g["n"].sum(),
            "n_fallback": g["_fb"].sum(),
            "mase": g["mase"].mean(),
            "crps": g["crps"].mean(),
            "scaled_crps": g["scaled_crps"].mean(),
            "crps_quantiles": g["crps_quantiles"].mean(),
            "coverage_80": g["_cov80"].sum() / g["n"].sum(),
            "coverage_95": g["_cov95"].sum() / g["n"].sum(),
            "pit_coverage_80": g["_pit80"].sum(min_count=1) / g["n"].sum(),
            "mean_error": g["_err"].sum() / g["n"].sum(),
        }
    )
    tot_a, tot_f = g["sum_actual"].sum(), g["sum_forecast"].sum()
    out["bias_pct"] = np.where(tot_a != 0, 100.0 * (tot_f - tot_a) / tot_a.where(tot_a != 0, 1.0), np.nan)
    return out.reset_index()
