"""The output of every model: predictive draws, their quantiles, and which series fell back."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from spm_models.exceptions import ConfigError, DataError, ModelError
from spm_models.models.panel import DT_DTYPE

__all__ = [
    "DEFAULT_QUANTILES",
    "Forecast",
    "quantile_column",
    "check_quantiles",
    "concat_forecasts",
]

#: Quantile levels reported by default: the median and the 80% and 95% central intervals.
DEFAULT_QUANTILES: tuple[float, ...] = (0.025, 0.1, 0.5, 0.9, 0.975)


def quantile_column(q: float) -> str:
    """Column name of quantile level ``q``: ``0.1 -> "q0.1"``, ``0.025 -> "q0.025"``."""
    return f"q{q:g}"


def check_quantiles(quantiles: Iterable[float]) -> tuple[float, ...]:
    """Sorted, distinct quantile levels strictly between 0 and 1; ConfigError otherwise."""
    try:
        levels = tuple(sorted({float(q) for q in quantiles}))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"quantiles must be numbers between 0 and 1, got {quantiles!r}") from exc
    if not levels or levels[0] <= 0 or levels[-1] >= 1:
        raise ConfigError(f"quantiles must be between 0 and 1 (exclusive), got {quantiles!r}")
    return levels


@dataclass(frozen=True, eq=False)
class Forecast:
    """Predictive distribution of ``h`` future periods for each series.

    Draws are the primary output and a dense array, because everything downstream
    (quantiles, CRPS, coherent sums up the hierarchy) is a reduction over the draw axis.

    Attributes
    ----------
    quantiles : DataFrame
        Long frame, one row per series and future period, ordered like ``draws``:
        ``unique_id``, ``ds``, ``model`` (the model that produced that series, which differs
        from :attr:`model` where the series fell back), ``mean`` and one column per quantile
        level named by :func:`quantile_column` (``q0.025``, ``q0.1``, ``q0.5``, ...).
    draws : ndarray of float, shape (n_series, h, n_draws)
        Joint predictive draws; ``draws[i, k, j]`` is draw ``j`` of series ``unique_ids[i]``
        at ``ds[i, k]``. The same ``j`` across periods is one sample path.
    unique_ids : ndarray of str, shape (n_series,)
        Order of the first axis of ``draws``.
    ds : ndarray of datetime64[us], shape (n_series, h)
        Dates of the forecast periods per series (each series continues from its own last
        date).
    fallback : DataFrame
        One row per series: ``unique_id``, ``model`` (the model that produced it),
        ``fallback`` (bool) and ``reason`` (why the requested model was not used; empty
        string when it was).
    model : str
        Name of the requested model.
    freq : str
        Pandas frequency of ``ds``.
    quantile_levels : tuple of float
        The levels in :attr:`quantiles`.
    """

    quantiles: pd.DataFrame
    draws: np.ndarray
    unique_ids: np.ndarray
    ds: np.ndarray
    fallback: pd.DataFrame
    model: str
    freq: str
    quantile_levels: tuple[float, ...]

    @property
    def n_series(self) -> int:
        return self.draws.shape[0]

    @property
    def h(self) -> int:
        return self.draws.shape[1]

    @property
    def n_draws(self) -> int:
        return self.draws.shape[2]

    @property
    def quantile_columns(self) -> list[str]:
        return [quantile_column(q) for q in self.quantile_levels]

    @classmethod
    def from_draws(
        cls,
        draws: np.ndarray,
        *,
        unique_ids: Sequence[str],
        ds: np.ndarray,
        model: str,
        freq: str,
        quantiles: Iterable[float] = DEFAULT_QUANTILES,
        series_model: Sequence[str] | None = None,
        reason: Sequence[str] | None = None,
    ) -> Forecast:
        """Build a forecast from draws; the mean and quantiles are taken over the draw axis.

        Parameters
        ----------
        draws : array, shape (n_series, h, n_draws)
        unique_ids : sequence of str, length n_series
        ds : array of datetime64, shape (n_series, h)
        model : str
            Requested model name.
        freq : str
        quantiles : iterable of float
            Levels to report, computed with linear interpolation between order statistics.
        series_model : sequence of str, optional
            Model that produced each series (defaults to ``model``).
        reason : sequence of str, optional
            Fallback reason per series, ``""`` where none; a series falls back when its
            ``series_model`` differs from ``model`` or its reason is not empty.

        Raises
        ------
        ModelError
            Shapes disagree or a draw is not finite (a model bug, not a data problem).
        """
        draws = np.asarray(draws, dtype=float)
        uids = np.asarray(list(unique_ids), dtype=object)
        ds = np.asarray(ds).astype(DT_DTYPE)
        if draws.ndim != 3 or draws.shape[0] != len(uids) or ds.shape != draws.shape[:2]:
            raise ModelError(
                f"draws of shape {draws.shape} do not match {len(uids)} series and dates of shape {ds.shape}"
            )
        if not np.isfinite(draws).all():
            bad = uids[~np.isfinite(draws).all(axis=(1, 2))]
            raise ModelError(f"{model} produced non-finite draws for series {', '.join(map(str, bad[:5]))}")
        levels = check_quantiles(quantiles)
        n, h, _ = draws.shape
        series_model = np.asarray([model] * n if series_model is None else list(series_model), dtype=object)
        reason = np.asarray([""] * n if reason is None else list(reason), dtype=object)
        qs = np.quantile(draws, levels, axis=-1)  # (n_levels, n, h)
        frame = pd.DataFrame(
            {
                "unique_id": pd.array(np.repeat(uids, h), dtype="str"),
                "ds": ds.reshape(-1),
                "model": pd.array(np.repeat(series_model, h), dtype="str"),
                "mean": draws.mean(axis=-1).reshape(-1),
            }
        )
        for q, values in zip(levels, qs):
            frame[quantile_column(q)] = values.reshape(-1)
        fallback = pd.DataFrame(
            {
                "unique_id": pd.array(uids, dtype="str"),
                "model": pd.array(series_model, dtype="str"),
                "fallback": (series_model != model) | (reason != ""),
                "reason": pd.array(reason, dtype="str"),
            }
        )
        return cls(frame, draws, uids, ds, fallback, model, freq, levels)

    def draws_frame(self) -> pd.DataFrame:
        """Draws as a long frame ``unique_id``, ``ds``, ``draw``, ``y`` (large: n*h*n_draws rows)."""
        n, h, nd = self.draws.shape
        return pd.DataFrame(
            {
                "unique_id": pd.array(np.repeat(self.unique_ids, h * nd), dtype="str"),
                "ds": np.repeat(self.ds.reshape(-1), nd),
                "draw": np.tile(np.arange(nd), n * h),
                "y": self.draws.reshape(-1),
            }
        )

    def select(self, unique_ids: Iterable[str]) -> Forecast:
        """The forecast of the given series, in the given order.

        Raises
        ------
        DataError
            A requested series is not in this forecast.
        """
        wanted = np.asarray(list(unique_ids), dtype=object)
        index = pd.Index(self.unique_ids)
        pos = index.get_indexer(wanted)
        if (pos < 0).any():
            raise DataError(f"series not in this forecast: {', '.join(map(str, wanted[pos < 0][:5]))}")
        h = self.h
        rows = (pos[:, None] * h + np.arange(h)[None, :]).reshape(-1)
        return Forecast(
            self.quantiles.iloc[rows].reset_index(drop=True),
            self.draws[pos],
            self.unique_ids[pos],
            self.ds[pos],
            self.fallback.iloc[pos].reset_index(drop=True),
            self.model,
            self.freq,
            self.quantile_levels,
        )


def concat_forecasts(forecasts: Sequence[Forecast]) -> Forecast:
    """Stack forecasts of disjoint series (e.g. agents, territories and the company).

    Raises
    ------
    DataError
        The forecasts differ in horizon, number of draws, frequency or quantile levels, or
        share a series id.
    """
    forecasts = list(forecasts)
    if not forecasts:
        raise DataError("no forecasts to combine")
    first = forecasts[0]
    for f in forecasts[1:]:
        if (f.h, f.n_draws, f.freq, f.quantile_levels) != (first.h, first.n_draws, first.freq, first.quantile_levels):
            raise DataError(
                "forecasts to combine must share horizon, number of draws, frequency and quantile "
                f"levels: got (h={f.h}, n_draws={f.n_draws}, freq={f.freq}) and "
                f"(h={first.h}, n_draws={first.n_draws}, freq={first.freq})"
            )
    uids = np.concatenate([f.unique_ids for f in forecasts])
    dup = pd.Index(uids).duplicated()
    if dup.any():
        raise DataError(f"series appear in more than one forecast: {', '.join(map(str, uids[dup][:5]))}")
    return Forecast(
        pd.concat([f.quantiles for f in forecasts], ignore_index=True),
        np.concatenate([f.draws for f in forecasts]),
        uids,
        np.concatenate([f.ds for f in forecasts]),
        pd.concat([f.fallback for f in forecasts], ignore_index=True),
        first.model,
        first.freq,
        first.quantile_levels,
    )
