"""Prophet behind the model contract, with leading indicators and quarter-end effects.

One Prophet model (MAP fit, linear trend) per series; :class:`ProphetForecaster` follows the
contract of :mod:`spm_models.models.base` (per-series fallback, seeded draws, save/load).

Leading indicators
    ``regressors={"pipeline_created": 4}`` uses the column ``pipeline_created`` of the
    training frame (its value per ``unique_id`` and ``ds``, *not* shifted) as a regressor
    at lag 4: the bookings of week ``t`` are regressed on the indicator of week ``t - 4``.
    Because the model lags internally, the values needed to forecast ``h <= 4`` periods
    ahead are already in the training frame; asking for a longer horizon raises
    :class:`~spm_models.exceptions.ConfigError`. The first ``max(lag)`` periods of each
    series have no lagged value and are left out of its fit. Each regressor is
    standardised per series (mean 0, standard deviation 1 over the rows fitted); one that
    is constant for a series carries no information there and is dropped for that series,
    which :attr:`ProphetForecaster.dropped_regressors_` records.

Quarter-end effects
    Quota-driven sales bunch up before the quarter closes. With ``period_end=True`` the
    model gets one 0/1 regressor per period at the end of the quarter: the last two weeks
    for weekly data (``period_end_1`` = the week holding the quarter's last day,
    ``period_end_2`` = the week before), the last month for monthly data. An integer
    ``period_end=k`` asks for the last ``k`` periods, ``False`` (or 0) for none. Dates are
    read as the *start* of their period and a period belongs to the quarter its start date
    is in (as in :func:`~spm_models.models.baselines.quarter_position`): the week of Monday
    31 March 2025 holds Q1's last day and is Q1's last week, the week of 24 March its
    second-last. Quarters start in ``fiscal_year_start`` (fiscal years). Other
    frequencies get no indicators. An indicator that never (or always) fires in a
    series' history is dropped for that series and recorded.

Draws
    Prophet's ``predictive_samples`` (trend changes + observation noise; parameters are MAP
    point estimates, so parameter uncertainty is not included) give joint sample paths over
    the horizon. Prophet samples from numpy's global generator; the model seeds it from
    ``seed_`` around each call and restores the caller's state afterwards (so two threads
    must not predict at the same time). With ``floor_at_zero=True`` draws are clipped at 0,
    as bookings cannot be negative: quantiles above 0 are unchanged, but the mean of the
    clipped draws is *above* Prophet's own ``yhat`` wherever the predictive distribution
    reaches below zero (sparse series), which is the honest expected value of a
    non-negative quantity.

Logging
    Prophet (and with it cmdstanpy) is imported inside ``fit``, never at module import.
    Their loggers, and Prophet's own pandas deprecation warnings, are silenced only while
    this model fits or samples, and restored afterwards; no logging configuration is
    changed at import.

Optimiser
    Each series is fitted by MAP with Stan's L-BFGS (Prophet falls back to Newton if it
    fails). Prophet itself picks Newton below 100 observations, which can take tens of
    seconds on a near-noiseless series; L-BFGS takes about 0.1 s.
"""

from __future__ import annotations

import contextlib
import logging
import math
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from spm_models.calendar import Calendar
from spm_models.exceptions import ConfigError, DataValidationError, Problem
from spm_models.models.base import ForecastModel, _positive_int, check_is_fitted
from spm_models.models.baselines import CalendarBaseline
from spm_models.models.forecast import DEFAULT_QUANTILES, Forecast
from spm_models.models.panel import DT_DTYPE, Panel, build_panel, freq_grain, periods_per_quarter

__all__ = ["ProphetForecaster", "period_end_indicators"]

_TABLE = "training frame"
_RESERVED = frozenset({"unique_id", "ds", "y"})
_QUIET_LOGGERS = ("prophet", "prophet.models", "prophet.plot", "cmdstanpy")
_DEFAULT_PERIOD_END = {13: 2, 3: 1}  # weekly: last 2 weeks; monthly: last month


@contextlib.contextmanager
def _quiet_stan() -> Iterator[None]:
    """Disable Prophet's and cmdstanpy's loggers (and Prophet's own deprecation warnings
    about pandas) for the duration, then restore them."""
    loggers = [logging.getLogger(n) for n in _QUIET_LOGGERS]
    saved = [lg.disabled for lg in loggers]
    for lg in loggers:
        lg.disabled = True
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module=r"prophet(\.|$)")
            yield
    finally:
        for lg, was in zip(loggers, saved):
            lg.disabled = was


def _yearly_order(setting: bool | int | str, freq: str, ds: np.ndarray) -> bool | int | str:
    """Resolve ``yearly_seasonality="auto"`` for weekly and monthly data.

    Prophet's own "auto" uses 10 Fourier terms whenever the history spans two years; on
    monthly data that is more terms than 12 points a year can identify (and the Stan
    optimiser then crawls). Here "auto" means: off below two years of history, otherwise
    ``min(10, (periods per year - 1) // 2)`` terms (10 for weekly, 5 for monthly data).
    """
    if not (isinstance(setting, str) and setting == "auto"):
        return setting
    per_q = periods_per_quarter(freq)
    if per_q is None:
        return setting
    span = (np.asarray(ds[-1]) - np.asarray(ds[0])).astype("timedelta64[D]").astype(np.int64)
    if span < 730:
        return False
    order = min(10, (4 * per_q - 1) // 2)
    return order if order >= 1 else False


@contextlib.contextmanager
def _global_numpy_seed(seed: int) -> Iterator[None]:
    """Seed numpy's global generator (which Prophet samples from) and restore it afterwards."""
    # Prophet draws from numpy's legacy global generator, so that is the one to seed.
    state = np.random.get_state()  # noqa: NPY002
    np.random.seed(seed)  # noqa: NPY002
    try:
        yield
    finally:
        np.random.set_state(state)  # noqa: NPY002


def period_end_indicators(ds: np.ndarray, freq: str, *, n_last: int, fiscal_year_start: int = 1) -> np.ndarray:
    """0/1 indicators of the last ``n_last`` periods of each date's quarter.

    Column ``j`` (0-based) is 1 where the period is the ``(j+1)``-th last of its quarter.
    Weekly data: a week starting on date ``d`` is the ``k``-th last of its quarter with
    ``k = ceil((first day of next quarter - d) / 7 days)``, so ``k = 1`` is the week
    holding the quarter's last day. Monthly data: ``k = 3 - month within quarter`` (the
    quarter's last month is ``k = 1``). Other frequencies: all zeros.

    Parameters
    ----------
    ds : array of datetime64
        Period start dates.
    freq : str
        Pandas frequency of ``ds``.
    n_last : int
        Number of indicator columns.
    fiscal_year_start : int
        Month (1-12) in which the fiscal year starts (:class:`~spm_models.calendar.Calendar`).

    Returns
    -------
    ndarray of float, shape (len(ds), n_last)
    """
    d = np.asarray(ds).astype("datetime64[D]")
    grain = freq_grain(freq)
    out = np.zeros((d.size, n_last))
    if n_last == 0 or grain not in ("week", "month"):
        return out
    cal = Calendar(fiscal_year_start)
    if grain == "week":
        next_q = cal.period_end(d, "quarter").astype("datetime64[D]") + np.timedelta64(1, "D")
        k = -(-(next_q - d).astype(np.int64) // 7)
    else:
        k = 3 - cal.position_in_quarter(d, "month")
    return (k[:, None] == np.arange(1, n_last + 1)[None, :]).astype(float)


@dataclass(frozen=True)
class _RegressorPanel(Panel):
    """A panel plus the (unlagged) regressor values, laid out like ``y``: (n_series, width, k)."""

    x: np.ndarray | None = None


@dataclass
class _SeriesFit:
    """What predicting one series needs."""

    model: Any  # fitted prophet.Prophet, its Stan backend removed
    lags: dict[str, int]  # internal regressor column -> lag, only the ones kept
    columns: dict[str, int]  # internal column -> position in the regressor matrix
    mean: dict[str, float]
    sd: dict[str, float]
    tail: np.ndarray  # the last max-lag raw regressor values, (max_lag, k)
    period_end: list[int]  # indicator numbers kept (1 = last period of the quarter)


class ProphetForecaster(ForecastModel):
    """Prophet per series, with lagged leading indicators and quarter-end indicators.

    See the module docstring for how regressors, quarter-end effects and draws work.

    Parameters
    ----------
    regressors : dict of str to int, optional
        Column of the training frame -> lag in periods (at least 1). ``predict(h)`` needs
        ``h`` no longer than the smallest lag.
    period_end : bool or int
        Quarter-end indicators: ``True`` = last 2 weeks (weekly) or last month (monthly),
        an integer = that many last periods, ``False``/0 = none.
    fiscal_year_start : int
        Month (1-12) in which the (fiscal) quarters start.
    yearly_seasonality, weekly_seasonality : bool, int or "auto"
        Passed to Prophet (an int is the number of Fourier terms). Yearly "auto": off
        below two years of history, else 10 terms for weekly and 5 for monthly data.
        Weekly "auto" (Prophet's): only for data finer than weekly, so never for weekly data.
    seasonality_mode : {"additive", "multiplicative"}
        Also the mode of the regressors.
    changepoint_prior_scale : float
        Flexibility of the trend (Prophet's default 0.05).
    regressor_prior_scale : float
        Prior scale of the indicator and quarter-end coefficients (Prophet's default 10).
    uncertainty_samples : int, optional
        Sample paths Prophet draws per series; resampled (balanced, each path used equally
        often) to ``n_draws``. ``None`` draws exactly ``n_draws`` paths.
    floor_at_zero : bool
        Clip draws at 0 (raises the mean of sparse series; see module docstring).
    min_history : int
        Series with fewer usable observations (after the regressor lags) fall back.
    freq, random_state
        See :class:`~spm_models.models.base.ForecastModel`.

    Attributes
    ----------
    series_states_ : list
        Per series, the fitted Prophet model and its regressor settings (``None`` where the
        series fell back).
    dropped_regressors_ : DataFrame
        ``unique_id``, ``regressor``, ``reason``: regressors and quarter-end indicators left
        out of a series' model.

    Notes
    -----
    Series that are too short, all zero, or whose fit raises fall back to
    :class:`~spm_models.models.baselines.CalendarBaseline` (then ``Mean`` and
    ``LastValue``), as recorded in the forecast's ``fallback`` frame.
    """

    name = "Prophet"

    def __init__(
        self,
        *,
        regressors: dict[str, int] | None = None,
        period_end: bool | int = True,
        fiscal_year_start: int = 1,
        yearly_seasonality: bool | int | str = "auto",
        weekly_seasonality: bool | int | str = "auto",
        seasonality_mode: str = "additive",
        changepoint_prior_scale: float = 0.05,
        regressor_prior_scale: float = 10.0,
        uncertainty_samples: int | None = None,
        floor_at_zero: bool = True,
        min_history: int = 8,
        freq: str | None = None,
        random_state: int | None = 0,
    ) -> None:
        self.regressors = regressors
        self.period_end = period_end
        self.fiscal_year_start = fiscal_year_start
        self.yearly_seasonality = yearly_seasonality
        self.weekly_seasonality = weekly_seasonality
        self.seasonality_mode = seasonality_mode
        self.changepoint_prior_scale = changepoint_prior_scale
        self.regressor_prior_scale = regressor_prior_scale
        self.uncertainty_samples = uncertainty_samples
        self.floor_at_zero = floor_at_zero
        self.min_history = min_history
        self.freq = freq
        self.random_state = random_state

    @classmethod
    def get_test_params(cls) -> dict[str, Any]:
        return {"uncertainty_samples": 50}

    # ------------------------------------------------------------------ parameters
    def _regressor_lags(self) -> dict[str, int]:
        """The validated ``regressors`` mapping (ConfigError listing every bad entry)."""
        if self.regressors is None:
            return {}
        if not isinstance(self.regressors, Mapping):
            raise ConfigError(
                f"regressors must map column names to lags, e.g. {{'pipeline_created': 4}}; got {self.regressors!r}"
            )
        bad = []
        for name, lag in self.regressors.items():
            if not isinstance(name, str) or name in _RESERVED:
                bad.append(f"{name!r} is not a usable column name (not unique_id, ds or y)")
            if isinstance(lag, bool) or not isinstance(lag, (int, np.integer)) or lag < 1:
                bad.append(
                    f"lag of {name!r} must be a whole number of periods of at least 1, got {lag!r} "
                    "(a regressor at lag 0 is not known for any future period)"
                )
        if bad:
            raise ConfigError("regressors: " + "; ".join(bad))
        return {str(k): int(v) for k, v in self.regressors.items()}

    def _n_period_end(self, freq: str) -> int:
        per_q = periods_per_quarter(freq)
        if self.period_end is True:
            return _DEFAULT_PERIOD_END.get(per_q, 0)
        if self.period_end is False or self.period_end is None:
            return 0
        k = self.period_end
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
            raise ConfigError(f"period_end must be True, False or a whole number of periods, got {k!r}")
        if per_q in (13, 3) and k >= per_q:
            raise ConfigError(
                f"period_end={k} would mark the whole quarter ({per_q} periods at freq={freq}); use fewer periods"
            )
        return int(k) if per_q in (13, 3) else 0

    def _check_params(self, freq: str) -> None:
        self._regressor_lags()
        self._n_period_end(freq)
        problems = []
        for name in ("changepoint_prior_scale", "regressor_prior_scale"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.number)) or not np.isfinite(v) or v <= 0:
                problems.append(f"{name} must be a positive number, got {v!r}")
        if self.seasonality_mode not in ("additive", "multiplicative"):
            problems.append(f"seasonality_mode must be 'additive' or 'multiplicative', got {self.seasonality_mode!r}")
        for name, minimum in (("min_history", 2), ("fiscal_year_start", 1)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
                problems.append(f"{name} must be a whole number of at least {minimum}, got {v!r}")
        if isinstance(self.fiscal_year_start, (int, np.integer)) and self.fiscal_year_start > 12:
            problems.append(f"fiscal_year_start must be 1-12, got {self.fiscal_year_start!r}")
        us = self.uncertainty_samples
        if us is not None and (isinstance(us, bool) or not isinstance(us, (int, np.integer)) or us < 1):
            problems.append(f"uncertainty_samples must be a positive whole number or None, got {us!r}")
        if problems:
            raise ConfigError("; ".join(problems))

    # ------------------------------------------------------------------ fit
    def fit(self, frame: pd.DataFrame, **tables: pd.DataFrame) -> ProphetForecaster:
        """Fit one Prophet model per series of a long frame.

        Parameters
        ----------
        frame : DataFrame
            ``unique_id``, ``ds``, ``y`` and, when ``regressors`` is set, one column per
            regressor holding its unlagged value for that series and period.

        Returns
        -------
        self

        Raises
        ------
        ConfigError
            Invalid parameters (e.g. a regressor lag below 1).
        DataError
            The frame breaks the data contract, or a regressor column is missing, empty,
            not numeric or infinite somewhere.
        """
        self._check_fit_tables(tables)
        lags = self._regressor_lags()
        panel = build_panel(frame, freq=self.freq)
        if lags:
            fields = {f: getattr(panel, f) for f in Panel.__dataclass_fields__}
            panel = _RegressorPanel(**fields, x=_regressor_matrix(frame, panel, list(lags)))
        return self._fit_from_panel(panel)

    def _fit_panel(self, panel: Panel) -> np.ndarray:
        with _quiet_stan():
            from prophet import Prophet  # heavy: imported only when fitting

            lags = self._regressor_lags()
            names = list(lags)
            x = getattr(panel, "x", None)
            n_pe = self._n_period_end(panel.freq)
            max_lag = max(lags.values(), default=0)
            states: list[_SeriesFit | None] = []
            reasons = np.full(panel.n_series, "", dtype=object)
            dropped: list[tuple[str, str, str]] = []
            for i, uid in enumerate(panel.unique_ids):
                n = int(panel.n_obs[i])
                y = panel.y[i, -n:][max_lag:]
                ds = panel.ds[i, -n:][max_lag:]
                reason = self._series_problem(y, n, max_lag)
                if reason:
                    states.append(None)
                    reasons[i] = reason
                    continue
                xi = x[i, -n:] if x is not None else np.empty((n, 0))
                try:
                    state, drops = self._fit_one(
                        Prophet, y, ds, xi, lags, names, n_pe, panel.freq, seed=self._stan_seed(i)
                    )
                except Exception as exc:  # recorded as this series' fallback reason
                    states.append(None)
                    reasons[i] = f"fit raised {type(exc).__name__}: {exc}"
                    continue
                states.append(state)
                dropped.extend((str(uid), r, why) for r, why in drops)
        self.series_states_ = states
        self.dropped_regressors_ = pd.DataFrame(dropped, columns=["unique_id", "regressor", "reason"]).astype("str")
        return reasons

    def _series_problem(self, y: np.ndarray, n: int, max_lag: int) -> str:
        if len(y) < self.min_history:
            plural = "s" if n != 1 else ""
            if max_lag:
                return (
                    f"only {n} observation{plural}; with regressors lagged up to {max_lag} periods "
                    f"{self.model_name()} needs at least {self.min_history + max_lag}"
                )
            return f"only {n} observation{plural}; {self.model_name()} needs at least {self.min_history}"
        if not np.any(y != 0):
            return "all values are zero; there is nothing for Prophet to fit"
        return ""

    def _stan_seed(self, i: int) -> int:
        return int(np.random.SeedSequence([self.seed_, 7, i]).generate_state(1)[0] % (2**31 - 1))

    def _fit_one(self, Prophet, y, ds, x, lags, names, n_pe, freq, *, seed) -> tuple[_SeriesFit, list[tuple[str, str]]]:
        """Fit one series; ``x`` holds all its raw regressor values (the lag rows included)."""
        n_all = len(x)
        max_lag = max(lags.values(), default=0)
        rows = np.arange(max_lag, n_all)
        df = pd.DataFrame({"ds": pd.DatetimeIndex(ds), "y": y})
        drops: list[tuple[str, str]] = []
        kept_lags: dict[str, int] = {}
        columns: dict[str, int] = {}
        mean: dict[str, float] = {}
        sd: dict[str, float] = {}
        for j, name in enumerate(names):
            values = x[rows - lags[name], j]
            mu, s = float(values.mean()), float(values.std())
            if not s > 1e-12 * max(1.0, abs(mu)):
                drops.append((name, "constant over the fitted periods; carries no information for this series"))
                continue
            col = f"regressor_{j}"
            df[col] = (values - mu) / s
            kept_lags[col], columns[col], mean[col], sd[col] = lags[name], j, mu, s
        pe = period_end_indicators(ds, freq, n_last=n_pe, fiscal_year_start=self.fiscal_year_start)
        kept_pe = []
        for k in range(n_pe):
            col = pe[:, k]
            if col.min() == col.max():
                drops.append((f"period_end_{k + 1}", "never (or always) a quarter-end period in the fitted history"))
                continue
            df[f"period_end_{k + 1}"] = col
            kept_pe.append(k + 1)
        m = Prophet(
            growth="linear",
            yearly_seasonality=_yearly_order(self.yearly_seasonality, freq, ds),
            weekly_seasonality=self.weekly_seasonality,
            daily_seasonality=False,
            seasonality_mode=self.seasonality_mode,
            changepoint_prior_scale=float(self.changepoint_prior_scale),
            uncertainty_samples=1000 if self.uncertainty_samples is None else int(self.uncertainty_samples),
        )
        for col in [*kept_lags, *(f"period_end_{k}" for k in kept_pe)]:
            m.add_regressor(
                col, prior_scale=float(self.regressor_prior_scale), standardize=False, mode=self.seasonality_mode
            )
        m.fit(df, seed=seed, algorithm="LBFGS")
        if not all(np.isfinite(np.asarray(v, dtype=float)).all() for v in m.params.values()):
            raise FloatingPointError("the fitted parameters are not finite")
        m.stan_backend = None  # holds the compiled Stan model and the fit; not needed to sample
        tail = x[n_all - max_lag :] if max_lag else np.empty((0, x.shape[1]))
        return _SeriesFit(m, kept_lags, columns, mean, sd, tail.copy(), kept_pe), drops

    # ------------------------------------------------------------------ predict
    def predict(
        self,
        h: int,
        *,
        quantiles: Iterable[float] = DEFAULT_QUANTILES,
        n_draws: int = 1000,
    ) -> Forecast:
        """Forecast the next ``h`` periods (see :meth:`ForecastModel.predict`).

        Raises
        ------
        ConfigError
            Also when ``h`` is longer than the smallest regressor lag: a regressor at lag
            ``l`` is known only ``l`` periods ahead.
        """
        check_is_fitted(self)
        h = _positive_int(h, "h")
        lags = self._regressor_lags()
        if lags:
            name, lag = min(lags.items(), key=lambda kv: kv[1])
            if h > lag:
                raise ConfigError(
                    f"regressor {name} enters at lag {lag}, so it is known only {lag} periods ahead; "
                    f"use h <= {lag} or a longer lag"
                )
        with _quiet_stan():
            return super().predict(h, quantiles=quantiles, n_draws=n_draws)

    def _predict_series(
        self, state: _SeriesFit, ds: np.ndarray, *, n_draws: int, rng: np.random.Generator
    ) -> np.ndarray:
        h = len(ds)
        future = pd.DataFrame({"ds": pd.DatetimeIndex(ds)})
        max_lag = len(state.tail)
        steps = np.arange(1, h + 1)
        for col, lag in state.lags.items():
            raw = state.tail[max_lag - 1 + steps - lag, state.columns[col]]
            future[col] = (raw - state.mean[col]) / state.sd[col]
        if state.period_end:
            pe = period_end_indicators(
                ds, self.freq_, n_last=max(state.period_end), fiscal_year_start=self.fiscal_year_start
            )
            for k in state.period_end:
                future[f"period_end_{k}"] = pe[:, k - 1]
        m = state.model
        n_samples = n_draws if self.uncertainty_samples is None else int(self.uncertainty_samples)
        m.uncertainty_samples = n_samples
        with _global_numpy_seed(int(rng.integers(0, 2**32 - 1))):
            paths = np.asarray(m.predictive_samples(future)["yhat"], dtype=float)  # (h, n_samples)
        if n_samples != n_draws:
            order = np.concatenate([rng.permutation(n_samples) for _ in range(math.ceil(n_draws / n_samples))])
            paths = paths[:, order[:n_draws]]
        return np.maximum(paths, 0.0) if self.floor_at_zero else paths

    def _make_fallback(self) -> ForecastModel:
        return CalendarBaseline()


def _regressor_matrix(frame: pd.DataFrame, panel: Panel, names: list[str]) -> np.ndarray:
    """Regressor values laid out like ``panel.y``: shape (n_series, width, len(names)).

    Raises DataValidationError listing every missing column and every empty, non-numeric
    or infinite value.
    """
    problems: list[Problem] = []
    missing = [c for c in names if c not in frame.columns]
    for c in missing:
        problems.append(
            Problem(
                _TABLE,
                None,
                c,
                None,
                "regressor column is missing; add the indicator's value for every series and period",
            )
        )
    if missing:
        raise DataValidationError(problems)
    uid = frame["unique_id"].astype("str").to_numpy()
    ds = pd.to_datetime(frame["ds"], errors="coerce").to_numpy().astype(DT_DTYPE)
    raw = frame[names]
    values = raw.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    keys = pd.DataFrame({"unique_id": uid, "ds": ds})
    for j, c in enumerate(names):
        empty = raw[c].isna().to_numpy()
        text = np.isnan(values[:, j]) & ~empty
        inf = np.isinf(values[:, j])
        for mask, what in (
            (empty, "are empty; give 0 where the indicator had no activity"),
            (text, "are not numbers"),
            (inf, "are infinite"),
        ):
            if mask.any():
                shown = ", ".join(
                    f"{u} {pd.Timestamp(d).date()}" for u, d in keys[mask].head(5).itertuples(index=False)
                )
                problems.append(Problem(_TABLE, None, c, None, f"{int(mask.sum())} regressor values {what} ({shown})"))
    if problems:
        raise DataValidationError(problems)
    n, width = panel.y.shape
    cell_uid = np.repeat(panel.unique_ids, width)
    cell_ds = panel.ds.reshape(-1)
    valid = ~np.isnat(cell_ds)
    index = pd.MultiIndex.from_arrays([uid, ds])
    rows = index.get_indexer(pd.MultiIndex.from_arrays([cell_uid[valid], cell_ds[valid]]))
    out = np.full((n * width, len(names)), np.nan)
    out[valid] = values[rows]
    return out.reshape(n, width, len(names))
