"""The forecasting model contract. Every model in :mod:`spm_models.models` follows it.

Construction
    ``__init__`` takes keyword-only parameters with defaults and only stores them, each
    under its own name (no validation, no computation), so :meth:`ForecastModel.get_params`,
    :meth:`ForecastModel.set_params` and :func:`clone` work as in scikit-learn. Every model
    has ``freq`` (pandas frequency of the data, ``None`` = inferred) and ``random_state``
    (int seed, ``None`` = fresh entropy drawn once at fit time).

``fit(frame, **tables) -> self``
    ``frame`` is a long frame with columns ``unique_id`` (text), ``ds`` (timestamps on one
    regular weekly or monthly calendar) and ``y`` (float); other columns are ignored. Every
    series needs a row for every period between its first and last date (``y = 0`` where
    nothing was sold); series may start and end at different dates. Bad input raises
    :class:`~spm_models.exceptions.DataError` (a :class:`DataValidationError` listing every
    problem: missing columns, empty or non-numeric ``y``, repeated (``unique_id``, ``ds``),
    dates off the calendar or missing periods). A model that reads canonical tables besides
    the frame (the open deals of :class:`~spm_models.models.pipeline_aware.PipelineAware`)
    names them in :attr:`ForecastModel.fit_tables` and takes them as keyword arguments of
    ``fit`` (``fit(frame, opportunities=..., stage_history=...)``); :func:`fit_tables_of` picks
    them from a dataset, so callers treat every model alike. A table a model does not read is
    refused. Fitting sets attributes whose names end in ``_`` and nothing else; refitting
    replaces them.

Per-series fallback
    A series the model cannot fit (too short, all zeros, the fit raised) does not stop the
    run: it is fitted by the simpler model returned by ``_make_fallback`` (a chain, e.g.
    ``SeasonalNaive -> Naive -> Mean -> LastValue``; :class:`LastValue` never fails), and the
    forecast says so in its ``model`` column and its ``fallback`` frame with the reason.

``predict(h, *, quantiles=(0.025, 0.1, 0.5, 0.9, 0.975), n_draws=1000) -> Forecast``
    Forecasts the ``h`` periods after each series' last date. The
    :class:`~spm_models.models.forecast.Forecast` holds the draws as a dense array
    ``[n_series, h, n_draws]`` (with the ``unique_ids`` order and a ``ds`` array
    ``[n_series, h]``), a long quantile frame (``unique_id, ds, model, mean, q0.025, ...``)
    computed from those draws, the model name and the per-series fallback record. Predicting
    before fitting raises :class:`~spm_models.exceptions.NotFittedError`. Draws come from a
    generator seeded by ``seed_``, so the same fitted model (or a refit with the same
    ``random_state`` on the same data) returns identical forecasts.

``save(path)`` / ``ForecastModel.load(path)``
    A pickle file holding ``{"format": "spm_models.forecast_model", "format_version": 1,
    "class": "<module>.<Class>", "spm_version": ..., "model": <the fitted model>}``. Loading
    restores a model whose predictions equal those before saving. Pickle runs code when
    loaded: only load files you made.

Writing a model
    Subclass :class:`ForecastModel`, declare the parameters in ``__init__`` and either
    (a) override ``_fit_panel`` / ``_predict_panel`` to work on all series at once (the
    baselines do), or (b) implement ``_fit_series`` / ``_predict_series`` and let the base
    class loop over series (a per-series library such as Prophet). Return a reason string
    for each series that cannot be fitted instead of raising; import heavy libraries inside
    ``fit``, never at module import. Give fast settings in ``get_test_params`` and add the
    class to :data:`spm_models.models.MODELS`, which runs the contract suite
    (``tests/models/test_contract.py``) on it.
"""

from __future__ import annotations

import copy
import inspect
import logging
import os
import pickle
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from spm_models import __version__
from spm_models.exceptions import ConfigError, ModelError, NotFittedError
from spm_models.models.forecast import DEFAULT_QUANTILES, Forecast, check_quantiles
from spm_models.models.panel import DT_DTYPE, Panel, build_panel

__all__ = ["ForecastModel", "LastValue", "clone", "check_is_fitted", "fit_tables_of", "SAVE_FORMAT"]

SAVE_FORMAT = "spm_models.forecast_model"
_SAVE_VERSION = 1
_log = logging.getLogger(__name__)


class ForecastModel:
    """Base class: parameters, input checks, fallback, draws to quantiles, save and load.

    Parameters
    ----------
    freq : str, optional
        Pandas frequency of ``ds`` (``"W-MON"``, ``"MS"``); inferred when ``None``.
    random_state : int, optional
        Seed of the predictive draws; ``None`` draws a seed at fit time (kept in ``seed_``).
    """

    #: Name shown in forecasts; defaults to the class name.
    name: ClassVar[str | None] = None
    #: Canonical tables ``fit`` reads besides the frame: table name -> required.
    fit_tables: ClassVar[dict[str, bool]] = {}
    #: True for models of weekly data only (monthly data are refused with a ConfigError).
    weekly_only: ClassVar[bool] = False

    def __init__(self, *, freq: str | None = None, random_state: int | None = 0) -> None:
        self.freq = freq
        self.random_state = random_state

    # ------------------------------------------------------------------ parameters
    @classmethod
    def model_name(cls) -> str:
        return cls.name or cls.__name__

    @classmethod
    def _get_param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        names = []
        for p in list(sig.parameters.values())[1:]:
            if p.kind is not inspect.Parameter.KEYWORD_ONLY:
                raise TypeError(f"{cls.__name__}.__init__ must take keyword-only parameters, got {p.name!r}")
            names.append(p.name)
        return sorted(names)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor parameters and their current values."""
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params: Any) -> ForecastModel:
        """Set constructor parameters; an unknown name raises ConfigError. Returns self."""
        valid = self._get_param_names()
        unknown = sorted(set(params) - set(valid))
        if unknown:
            raise ConfigError(
                f"{self.model_name()} has no parameter {', '.join(map(repr, unknown))}; "
                f"valid parameters: {', '.join(valid)}"
            )
        for k, v in params.items():
            setattr(self, k, v)
        return self

    @classmethod
    def get_test_params(cls) -> dict[str, Any]:
        """Fast parameter settings for the contract test suite (override in slow models)."""
        return {}

    @classmethod
    def get_test_fit_tables(cls, frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
        """Tables of :attr:`fit_tables` consistent with a contract-suite frame (override when needed)."""
        return {}

    def _check_fit_tables(self, tables: dict[str, Any]) -> dict[str, Any]:
        """The declared tables given to ``fit`` (``None`` for an absent optional one), or ConfigError."""
        unknown = sorted(set(tables) - set(self.fit_tables))
        if unknown:
            reads = ", ".join(self.fit_tables) or "no table"
            raise ConfigError(
                f"{self.model_name()}.fit takes no {', '.join(unknown)} table; it reads the frame and {reads}"
            )
        missing = [t for t, required in self.fit_tables.items() if required and tables.get(t) is None]
        if missing:
            raise ConfigError(
                f"{self.model_name()} needs the {', '.join(missing)} table at fit: "
                f"fit(frame, {', '.join(f'{t}=...' for t in missing)})"
            )
        return {t: tables.get(t) for t in self.fit_tables}

    def __repr__(self) -> str:
        defaults = {p.name: p.default for p in inspect.signature(type(self).__init__).parameters.values()}
        shown = [f"{k}={v!r}" for k, v in self.get_params().items() if defaults.get(k) != v]
        return f"{type(self).__name__}({', '.join(shown)})"

    # ------------------------------------------------------------------ fit / predict
    def fit(self, frame: pd.DataFrame, **tables: pd.DataFrame) -> ForecastModel:
        """Fit every series of a long ``unique_id``/``ds``/``y`` frame.

        Parameters
        ----------
        frame : DataFrame
            The series (module docstring).
        **tables : DataFrame
            Canonical tables named in :attr:`fit_tables`, for models that read them.

        Returns
        -------
        self

        Raises
        ------
        DataError
            The frame breaks the data contract (see the module docstring).
        ConfigError
            A table the model does not read, or a required one missing.
        """
        self._check_fit_tables(tables)
        return self._fit_from_panel(build_panel(frame, freq=self.freq))

    def _fit_from_panel(self, panel: Panel) -> ForecastModel:
        for attr in [a for a in vars(self) if a.endswith("_")]:
            delattr(self, attr)
        if self.random_state is None:
            seed = int(np.random.SeedSequence().generate_state(1)[0])
        else:
            try:
                seed = int(np.random.SeedSequence(self.random_state).generate_state(1)[0])
            except (TypeError, ValueError) as exc:
                raise ConfigError(
                    f"random_state must be a non-negative whole number or None, got {self.random_state!r}"
                ) from exc
        self._check_params(panel.freq)
        self.seed_ = seed
        self.freq_ = panel.freq
        self.unique_ids_ = panel.unique_ids.copy()
        self.last_ds_ = panel.last_ds.astype(DT_DTYPE)
        self.n_obs_ = panel.n_obs.copy()
        try:
            reasons = np.asarray(self._fit_panel(panel), dtype=object)
            if reasons.shape != (panel.n_series,):
                raise ModelError(f"_fit_panel returned {reasons.shape} reasons for {panel.n_series} series")
        except Exception as exc:  # one broken model must not take the run down; recorded below
            _log.warning("%s failed on the whole panel, every series falls back: %r", self.model_name(), exc)
            reasons = np.full(panel.n_series, f"fit raised {type(exc).__name__}: {exc}", dtype=object)
        reasons = np.where(pd.isna(reasons), "", reasons).astype(object)
        self.fallback_reason_ = reasons
        failed = reasons != ""
        self.fallback_model_ = None
        if failed.any():
            fb = self._make_fallback()
            if fb is None:
                raise ModelError(
                    f"{self.model_name()} could not fit {', '.join(map(str, panel.unique_ids[failed][:5]))} "
                    f"and has no fallback: {reasons[failed][0]}"
                )
            fb.set_params(freq=panel.freq, random_state=int(np.random.SeedSequence([seed, 1]).generate_state(1)[0]))
            self.fallback_model_ = fb._fit_from_panel(panel.subset(failed))
        return self

    def predict(
        self,
        h: int,
        *,
        quantiles: Iterable[float] = DEFAULT_QUANTILES,
        n_draws: int = 1000,
    ) -> Forecast:
        """Forecast the next ``h`` periods of every fitted series.

        Parameters
        ----------
        h : int
            Number of periods ahead (at least 1).
        quantiles : iterable of float
            Quantile levels for :attr:`Forecast.quantiles`.
        n_draws : int
            Predictive draws per series and period.

        Returns
        -------
        Forecast

        Raises
        ------
        NotFittedError
            ``fit`` has not been called.
        ConfigError
            ``h`` or ``n_draws`` is not a positive whole number, or a quantile is outside (0, 1).
        """
        check_is_fitted(self)
        h = _positive_int(h, "h")
        n_draws = _positive_int(n_draws, "n_draws")
        levels = check_quantiles(quantiles)
        ds = self._future_ds(h)
        n = len(self.unique_ids_)
        failed = self.fallback_reason_ != ""
        draws = np.empty((n, h, n_draws))
        model = np.full(n, self.model_name(), dtype=object)
        reason = np.full(n, "", dtype=object)
        if (~failed).any():
            own = np.asarray(
                self._predict_panel(h, ds=ds, n_draws=n_draws, rng=np.random.default_rng(self.seed_)), dtype=float
            )
            if own.shape != (n, h, n_draws):
                raise ModelError(f"{self.model_name()} returned draws of shape {own.shape}, expected {(n, h, n_draws)}")
            draws[~failed] = own[~failed]
        if failed.any():
            fb = self.fallback_model_.predict(h, quantiles=levels, n_draws=n_draws)
            draws[failed] = fb.draws
            model[failed] = fb.fallback["model"].to_numpy()
            inner = fb.fallback["reason"].to_numpy()
            own_reason = self.fallback_reason_[failed]
            reason[failed] = [f"{self.model_name()}: {r}" + (f"; {i}" if i else "") for r, i in zip(own_reason, inner)]
        return Forecast.from_draws(
            draws,
            unique_ids=self.unique_ids_,
            ds=ds,
            model=self.model_name(),
            freq=self.freq_,
            quantiles=levels,
            series_model=model,
            reason=reason,
        )

    def _future_ds(self, h: int) -> np.ndarray:
        last = self.last_ds_
        grid = pd.date_range(last.min(), last.max(), freq=self.freq_)
        ext = pd.date_range(grid[0], periods=len(grid) + h, freq=self.freq_).to_numpy().astype(DT_DTYPE)
        pos = np.searchsorted(ext, last)
        return ext[pos[:, None] + np.arange(1, h + 1)[None, :]]

    # ------------------------------------------------------------------ subclass hooks
    def _check_params(self, freq: str) -> None:
        """Raise ConfigError for invalid parameters (called by fit before any fitting)."""

    def _fit_panel(self, panel: Panel) -> np.ndarray:
        """Fit all series; return a fallback reason per series (``""`` where fitted).

        The default loops over series calling :meth:`_fit_series`; a series whose fit raises
        gets the exception as its reason.
        """
        states: list[Any] = []
        reasons = np.full(panel.n_series, "", dtype=object)
        for i in range(panel.n_series):
            n = int(panel.n_obs[i])
            try:
                states.append(self._fit_series(panel.y[i, -n:], panel.ds[i, -n:]))
            except Exception as exc:  # recorded as this series' fallback reason
                states.append(None)
                reasons[i] = f"fit raised {type(exc).__name__}: {exc}"
        self.series_states_ = states
        return reasons

    def _predict_panel(self, h: int, *, ds: np.ndarray, n_draws: int, rng: np.random.Generator) -> np.ndarray:
        """Draws ``(n_series, h, n_draws)`` for every series (rows of fallen-back series are ignored).

        The default loops over series calling :meth:`_predict_series`.
        """
        out = np.zeros((len(self.unique_ids_), h, n_draws))
        for i, state in enumerate(self.series_states_):
            if state is not None:
                out[i] = self._predict_series(state, ds[i], n_draws=n_draws, rng=rng)
        return out

    def _fit_series(self, y: np.ndarray, ds: np.ndarray) -> Any:
        """Fit one series (its observed values and dates); return whatever predict needs."""
        raise NotImplementedError(f"{type(self).__name__} implements neither _fit_panel nor _fit_series")

    def _predict_series(self, state: Any, ds: np.ndarray, *, n_draws: int, rng: np.random.Generator) -> np.ndarray:
        """Draws ``(h, n_draws)`` for one series at future dates ``ds``."""
        raise NotImplementedError(f"{type(self).__name__} implements neither _predict_panel nor _predict_series")

    def _make_fallback(self) -> ForecastModel | None:
        """The simpler, unfitted model for series this one cannot fit (``None``: no fallback)."""
        return LastValue()

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> Path:
        """Write the fitted model to ``path`` (pickle, see the module docstring).

        Raises
        ------
        NotFittedError
            ``fit`` has not been called.
        """
        check_is_fitted(self)
        path = Path(path)
        payload = {
            "format": SAVE_FORMAT,
            "format_version": _SAVE_VERSION,
            "class": f"{type(self).__module__}.{type(self).__qualname__}",
            "spm_version": __version__,
            "model": self,
        }
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as fh:
            pickle.dump(payload, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> ForecastModel:
        """Read a model written by :meth:`save`.

        Raises
        ------
        ModelError
            The file is missing, is not a saved model, or holds a model of another class
            than the one ``load`` was called on.
        """
        path = Path(path)
        if not path.is_file():
            raise ModelError(f"no saved model at {path}")
        try:
            with open(path, "rb") as fh:
                payload = pickle.load(fh)
        except Exception as exc:
            raise ModelError(f"{path} is not a saved forecast model ({type(exc).__name__}: {exc})") from exc
        if not isinstance(payload, dict) or payload.get("format") != SAVE_FORMAT:
            raise ModelError(f"{path} is not a saved forecast model")
        if payload.get("format_version") != _SAVE_VERSION:
            raise ModelError(
                f"{path} was saved in model format {payload.get('format_version')}; this version reads {_SAVE_VERSION}"
            )
        model = payload["model"]
        if not isinstance(model, cls):
            raise ModelError(f"{path} holds a {payload.get('class')}, not a {cls.__name__}")
        return model


class LastValue(ForecastModel):
    """Last resort: every future period equals the series' last value, with no spread.

    Used when nothing else can be fitted (e.g. a series with a single observation), so its
    intervals have zero width; the fallback record says why it was used. It never fails.
    """

    def _fit_panel(self, panel: Panel) -> np.ndarray:
        self.last_value_ = panel.y[:, -1].copy()
        return np.full(panel.n_series, "", dtype=object)

    def _predict_panel(self, h: int, *, ds: np.ndarray, n_draws: int, rng: np.random.Generator) -> np.ndarray:
        return np.broadcast_to(self.last_value_[:, None, None], (len(self.last_value_), h, n_draws)).copy()

    def _make_fallback(self) -> None:
        return None


def fit_tables_of(model: ForecastModel, tables: Any) -> dict[str, pd.DataFrame]:
    """The tables ``model`` reads at fit (:attr:`ForecastModel.fit_tables`), taken from a
    :class:`~spm_models.data.dataset.Dataset` or a mapping of canonical tables (``None``: none).

    Pass the result to ``fit``: ``model.fit(frame, **fit_tables_of(model, dataset))``.
    """
    if tables is None or not model.fit_tables:
        return {}
    source = getattr(tables, "tables", tables)
    return {t: source[t] for t in model.fit_tables if t in source and source[t] is not None}


def clone(model: ForecastModel) -> ForecastModel:
    """A new, unfitted model with deep copies of ``model``'s parameters."""
    return type(model)(**copy.deepcopy(model.get_params()))


def check_is_fitted(model: ForecastModel) -> None:
    """Raise NotFittedError unless ``model.fit`` has been called."""
    if getattr(model, "seed_", None) is None or getattr(model, "unique_ids_", None) is None:
        raise NotFittedError(f"{model.model_name()} is not fitted yet: call .fit(frame) before .predict() or .save()")


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{name} must be a positive whole number, got {value!r}")
    return int(value)
