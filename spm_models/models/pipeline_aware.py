"""Bookings from deals already open plus deals not created yet: a pipeline-aware forecast.

A bookings model fitted on weekly totals knows nothing of the deals open today, yet in the
next weeks most bookings come from exactly those deals. :class:`PipelineAware` splits the
bookings of agent ``i`` in future week ``k`` (``k = 1..h`` after the forecast origin) into

.. math::

    B_{ik} = O_{ik} + N_{ik},

* ``O``: deals open at the origin, drawn by the pipeline model
  (:func:`spm_models.models.pipeline.forecast.fit_pipeline_model`: stage- and age-specific win and
  close-time probabilities pooled across agents, each deal booking its own amount);
* ``N``: deals created after the origin. A deal created after the origin that closes in week
  ``k`` is at most ``k - 1`` weeks old when it closes, so with ``a_d`` the age in weeks
  (close week minus created week) of the won deals that closed in the ``lookback_weeks`` before
  the origin,

  .. math:: \\phi_k = \\frac{\\sum_{d:\\ a_d \\le k-1} x_d}{\\sum_d x_d}

  is the share of bookings that come from deals young enough, and ``N_{ik}`` has mean
  ``phi_k E[Y_{ik}]`` and variance ``phi_k Var(Y_{ik})`` (each deal kept with probability
  ``phi_k``), with ``Y`` the wrapped model's draws of total bookings.

Draw ``j`` is ``O_{ikj} + phi_k Y_{ikj} G_{ikj}`` (the two parts independent), where the gamma
factor ``G`` (mean 1) restores the variance a thinned total has (see :func:`_thin`). Only what was known at
the origin is used: the pipeline model ignores deals created later and counts deals closed
later as open, and ``phi`` reads closes up to the origin only. The origin is the last day of the
last week of the fitted frame. Series whose data end earlier (an agent who left) get the
wrapped model's forecast alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from spm_models.calendar import DEFAULT_CALENDAR
from spm_models.exceptions import ConfigError, DataError
from spm_models.models.base import ForecastModel, _positive_int, check_is_fitted, clone, fit_tables_of
from spm_models.models.baselines import CalendarBaseline
from spm_models.models.forecast import DEFAULT_QUANTILES, Forecast, check_quantiles
from spm_models.models.panel import Panel, build_panel
from spm_models.models.pipeline.forecast import fit_pipeline_model

__all__ = ["PipelineAware", "new_deal_share"]


def new_deal_share(opportunities: pd.DataFrame, *, as_of: Any, h: int, lookback_weeks: int = 52) -> np.ndarray:
    """``phi_k`` for ``k = 1..h``: the share of recent bookings from deals at most ``k - 1``
    weeks old at their close (module docstring).

    Parameters
    ----------
    opportunities : DataFrame
        Canonical opportunities (``outcome, created_date, close_date, amount``).
    as_of : date-like
        Only deals won on or before it, and after ``as_of - lookback_weeks`` weeks, count.
    h : int
    lookback_weeks : int

    Returns
    -------
    ndarray, shape (h,)
        Non-decreasing shares in [0, 1].

    Raises
    ------
    DataError
        No deal was won in the lookback window.
    """
    as_of = pd.Timestamp(as_of).normalize()
    won = opportunities[opportunities["outcome"] == "won"]
    close = pd.to_datetime(won["close_date"])
    recent = won[(close <= as_of) & (close > as_of - pd.Timedelta(weeks=int(lookback_weeks)))]
    amount = recent["amount"].to_numpy(dtype=float)
    if not len(recent) or np.nansum(amount) <= 0:
        raise DataError(
            f"no deal was won in the {lookback_weeks} weeks up to {as_of.date()}; the pipeline-aware forecast "
            "needs recent wins to learn how young the deals that close are (raise lookback_weeks)"
        )
    week = DEFAULT_CALENDAR.period_start
    weeks = week(recent["close_date"], "week") - week(recent["created_date"], "week")
    age = (weeks.dt.days // 7).to_numpy()
    amount = np.nan_to_num(amount)
    return np.array([amount[age <= k - 1].sum() for k in range(1, int(h) + 1)]) / amount.sum()


class PipelineAware(ForecastModel):
    """Open-pipeline draws plus a share of a bookings model's draws (module docstring).

    ``fit(frame, opportunities=..., stage_history=...)`` takes the canonical opportunities of
    the same agents (all of them: the pipeline model and ``phi`` see only what was known at
    the origin) and, optionally, the stage history (better win probabilities for open deals).

    Parameters
    ----------
    model : ForecastModel, optional
        Unfitted model of weekly agent bookings (``unique_id`` = agent id), cloned at fit;
        :class:`~spm_models.models.baselines.CalendarBaseline` when ``None``.
    lookback_weeks : int
        Weeks of past wins behind ``phi``.
    fiscal_year_start : int
        Month the fiscal year starts in (the pipeline model's quarter-end effect).
    freq, random_state
        See :class:`~spm_models.models.base.ForecastModel`; weekly data only.
    """

    fit_tables = {"opportunities": True, "stage_history": False}
    weekly_only = True

    def __init__(
        self,
        *,
        model: ForecastModel | None = None,
        lookback_weeks: int = 52,
        fiscal_year_start: int = 1,
        freq: str | None = None,
        random_state: int | None = 0,
    ) -> None:
        self.model = model
        self.lookback_weeks = lookback_weeks
        self.fiscal_year_start = fiscal_year_start
        self.freq = freq
        self.random_state = random_state

    def model_name(self) -> str:  # type: ignore[override]
        return f"Pipeline+{self._inner().model_name()}"

    def _inner(self) -> ForecastModel:
        return CalendarBaseline() if self.model is None else self.model

    @classmethod
    def get_test_fit_tables(cls, frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
        """Opportunities behind a contract-suite frame: one won deal per week with a sale, closed
        that week, and three open deals per series created in its last four weeks."""
        sold = frame[frame["y"] > 0]
        won = pd.DataFrame(
            {
                "opportunity_id": [f"w{i}" for i in range(len(sold))],
                "agent_id": sold["unique_id"].astype(str).to_numpy(),
                "created_date": pd.to_datetime(sold["ds"]).to_numpy() - np.timedelta64(14, "D"),
                "outcome": "won",
                "close_date": pd.to_datetime(sold["ds"]).to_numpy() + np.timedelta64(2, "D"),
                "amount": sold["y"].to_numpy(dtype=float),
            }
        )
        last = frame.groupby("unique_id")["ds"].max()
        mean = sold.groupby("unique_id")["y"].mean().reindex(last.index).fillna(1.0)
        uid = np.repeat(last.index.astype(str).to_numpy(), 3)
        open_ = pd.DataFrame(
            {
                "opportunity_id": [f"o{i}" for i in range(len(uid))],
                "agent_id": uid,
                "created_date": np.repeat(pd.to_datetime(last).to_numpy(), 3)
                - np.tile([0, 7, 21], len(last)).astype("timedelta64[D]"),
                "outcome": "open",
                "close_date": pd.NaT,
                "amount": np.repeat(mean.to_numpy(dtype=float), 3),
            }
        )
        return {"opportunities": pd.concat([won, open_], ignore_index=True)}

    def _check_params(self, freq: str) -> None:
        if not isinstance(self._inner(), ForecastModel):
            raise ConfigError(f"PipelineAware needs model=<an unfitted ForecastModel>, got {type(self.model).__name__}")
        if not str(freq).startswith("W"):
            raise ConfigError(f"PipelineAware forecasts weekly bookings; the data have freq={freq!r}")
        if isinstance(self.lookback_weeks, bool) or not isinstance(self.lookback_weeks, (int, np.integer)):
            raise ConfigError(f"lookback_weeks must be a whole number of weeks, got {self.lookback_weeks!r}")
        if int(self.lookback_weeks) < 4:
            raise ConfigError(f"lookback_weeks must be at least 4, got {self.lookback_weeks!r}")

    def fit(self, frame: pd.DataFrame, **tables: pd.DataFrame) -> PipelineAware:
        """Fit a clone of ``model`` on the frame (with its own ``fit``, so models that read
        extra columns, such as regressors, get them) and the pipeline model at the frame's
        last week on ``opportunities`` (and ``stage_history``).

        A series the bookings model could not fit keeps its open deals: its draws are the
        pipeline's plus the share of the bookings model's fallback, and the forecast says so
        (``model`` ``Pipeline+<fallback>``, with the bookings model's reason).
        """
        given = self._check_fit_tables(tables)
        if not isinstance(given["opportunities"], pd.DataFrame):
            raise ConfigError("PipelineAware needs opportunities=<the canonical opportunities table> at fit")
        panel = build_panel(frame, freq=self.freq)
        self._check_params(panel.freq)
        base = clone(self._inner()).set_params(freq=panel.freq)
        base.fit(frame, **fit_tables_of(base, given))
        self._given, self._base = given, base  # read by _fit_panel; never outlive this call
        try:
            self._fit_from_panel(panel)
        finally:
            del self._given, self._base
        self.opportunities_ = given["opportunities"]
        self.base_ = base
        return self

    def _fit_panel(self, panel: Panel) -> np.ndarray:
        base = self._base
        if not np.array_equal(base.unique_ids_.astype(str), panel.unique_ids.astype(str)):
            raise DataError("the bookings model and the pipeline model see different series")
        last = panel.last_ds.astype("datetime64[us]")
        self.as_of_ = pd.Timestamp(last.max()) + pd.Timedelta(days=6)
        self.current_ = last == last.max()
        self.pipeline_ = fit_pipeline_model(
            self._given["opportunities"],
            self._given["stage_history"],
            as_of=self.as_of_,
            freq="W-MON",
            fiscal_year_start=self.fiscal_year_start,
        )
        return np.full(panel.n_series, "", dtype=object)

    def _make_fallback(self) -> None:
        return None  # the bookings model falls back on its own; see predict

    def predict(self, h: int, *, quantiles: Iterable[float] = DEFAULT_QUANTILES, n_draws: int = 1000) -> Forecast:
        """Forecast as :meth:`ForecastModel.predict`; a series whose bookings model fell back is
        marked ``Pipeline+<fallback model>`` with that model's reason (its open deals still count)."""
        check_is_fitted(self)
        h, n_draws = _positive_int(h, "h"), _positive_int(n_draws, "n_draws")
        levels = check_quantiles(quantiles)
        base = self.base_.predict(h, n_draws=n_draws)
        ds = self._future_ds(h)
        draws = self._combine(base.draws, h, ds=ds, n_draws=n_draws, rng=np.random.default_rng(self.seed_))
        fb = base.fallback
        fell = fb["fallback"].to_numpy(dtype=bool)
        name = self.model_name()
        return Forecast.from_draws(
            draws,
            unique_ids=self.unique_ids_,
            ds=ds,
            model=name,
            freq=self.freq_,
            quantiles=levels,
            series_model=np.where(fell, "Pipeline+" + fb["model"].astype(str).to_numpy(), name),
            reason=np.where(fell, f"{name}: its bookings model fell back: " + fb["reason"].astype(str).to_numpy(), ""),
        )

    def _combine(
        self, base: np.ndarray, h: int, *, ds: np.ndarray, n_draws: int, rng: np.random.Generator
    ) -> np.ndarray:
        """Pipeline draws of the deals open at the origin plus the thinned draws of the bookings model."""
        opportunities = self.opportunities_
        phi = new_deal_share(opportunities, as_of=self.as_of_, h=h, lookback_weeks=self.lookback_weeks)
        ids = [str(u) for u in self.unique_ids_[self.current_]]
        opps = opportunities[opportunities["agent_id"].astype(str).isin(set(ids))]
        pipe = self.pipeline_.draws(opps, h=h, n_draws=n_draws, seed=int(rng.integers(2**31)), unique_ids=ids)
        if not np.array_equal(pipe.ds[0].astype("datetime64[D]"), ds[self.current_][0].astype("datetime64[D]")):
            raise DataError("the pipeline forecast and the model forecast start in different weeks")
        out = base.copy()
        out[self.current_] = pipe.draws + _thin(base[self.current_], phi, rng)
        return out


def _thin(draws: np.ndarray, phi: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draws of the share ``phi_k`` of bookings ``Y``: mean ``phi mu``, variance ``phi sigma^2``.

    Keeping each deal of a compound-Poisson total with probability ``phi`` scales its mean and
    its variance by ``phi``; scaling the draws by ``phi`` alone would scale the variance by
    ``phi^2`` and make the intervals too narrow. So each draw is ``phi Y G`` with ``G`` gamma
    of mean 1 and variance ``v = sigma^2 (1/phi - 1) / (sigma^2 + mu^2)`` (``mu, sigma^2``: the
    mean and variance of the cell's draws), which gives exactly that mean and variance, keeps
    zeros and never goes negative.
    """
    mu = draws.mean(axis=-1, keepdims=True)
    var = draws.var(axis=-1, keepdims=True)
    f = np.broadcast_to(phi[None, :, None], mu.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        v = np.where((f > 0) & (var + mu**2 > 0), var * (1.0 / np.where(f > 0, f, 1.0) - 1.0) / (var + mu**2), 0.0)
    v = np.broadcast_to(v, draws.shape)
    g = np.ones(draws.shape)
    pos = v > 1e-12
    g[pos] = rng.gamma(1.0 / v[pos], v[pos])
    return f * draws * g
