"""Hierarchical Bayesian forecaster of sparse agent bookings, coherent up to the company.

The model
---------
``y_it`` are the bookings of agent (series) ``i`` in period ``t`` (weekly or monthly), agent
``i`` works in territory ``g(i)``. Revenue per agent and week is mostly zero and, when not,
skewed, so the likelihood is a hurdle::

    P(y_it > 0)           = sigmoid(eta_it)
    y_it / s | y_it > 0   ~ Gamma(shape k_i, mean exp(mu_it))

with ``s`` a fixed scale (geometric mean of the positive amounts, so the priors are unit-free)
and ``k_i`` the shape (coefficient of variation ``1 / sqrt(k_i)``). The positive part models
its mean ``E[y | y > 0] = s exp(mu)`` directly. A log-normal did not: its mean ``exp(mu +
sigma^2 / 2)`` leans on ``sigma``, which left-skewed log amounts inflate (Maven's log
positive agent-weeks have skewness -1.4; the log-normal mean overshot by 1.47x and agent
forecasts were 45% too high); the log of a gamma variable is itself left-skewed. Two linear
predictors are built the same way::

    eta_it = a_i + sum_c gamma_c C_ct + sum_r betaP_r x_r,i,t-L_r
    mu_it  = b_i + sum_c delta_c C_ct + sum_r betaM_r x_r,i,t-L_r

Agent intercepts are partially pooled within territory within the company, non-centred::

    a_i         = a0 + tau_a u_a[g(i)] + omega_a z_a[i]        u, z ~ N(0, 1)
    b_i         = b0 + tau_b u_b[g(i)] + omega_b z_b[i]

with the territory effects ``u`` summing to zero over territories and the agent effects
``z`` summing to zero within each territory (centred raw N(0, 1) variables rescaled to unit
variance: PyMC's ``ZeroSumNormal`` idea, see
:class:`~spm_models.models.hierarchical.inference.Centering`), so ``a0`` is the company
level, ``u`` a territory's offset from it and ``z`` an agent's offset from its territory;
without it NUTS mixed the territory scale badly. An agent with little history (a new hire
with a few weeks) is shrunk towards its territory, and a territory with few agents towards
the company. Without a grouping there is no territory term (nor with a single territory).
Priors: ``a0 ~ N(logit(share of positive periods), 1.5)``, ``b0 ~ N(log mean(y/s) of
positive periods, 1)``, ``tau ~ HalfNormal(0.5)``, ``omega_a ~ HalfNormal(1.5)``, ``omega_b ~
HalfNormal(0.5)``, ``gamma, delta ~ N(0, 0.5)`` (push) and ``N(0, 0.3)`` (Fourier), ``betaP,
betaM ~ N(0, 0.5)``.

The shapes ``k_i`` are estimated before inference and held fixed: Pearson's moment estimator
of each agent's dispersion after a gamma GLM fit of the amounts' means, shrunk towards the
company's (:func:`~spm_models.models.hierarchical.inference.pearson_log_shape`). Estimated
with the rest of the model, the shapes followed the mean of ``log y``, which an agent's
smallest amounts dominate (a week with one small deal among weeks of large ones); on Maven
they came out 30% below the moment estimates, most for the smallest agents, so the model
took their means for uncertain and pulled them 40-50% towards their territory's, and their
forecasts with them (Maven agent MASE at 4 weeks by ADVI, seed 0: 0.746 before, 0.737 after;
over seeds, with ADVI run to convergence, 0.739 now, and 0.738 by NUTS; bench/README.md).

Calendar ``C_ct`` (shared by all agents): ``quarter_end_push`` = 1 in the last 2 weeks (1
month) of a fiscal quarter, with ``quarter_terms="months"`` also ``quarter_month2`` and
``quarter_month3`` (1 in the second and third month of the quarter), and ``yearly_terms``
Fourier pairs ``sin/cos(2 pi k d/365.25)`` of the day of year ``d`` (by default only with two
years of history or more).

Indicators ``x_r`` (``regressors={column: lag}``): column ``r`` of the fit frame,
standardised within each series over its fit window (so a slope is "per standard deviation
of the agent's own series", as for an agent's weekly demo count), entering at lag ``L_r``:
period ``t`` sees ``x_r,i,t-L_r``; the first ``L_r`` periods of a series see 0 (its mean).
Because of the lag its future values are known for ``h <= min(L_r)``; a longer horizon
raises :class:`~spm_models.exceptions.ConfigError`. Slopes are **shared** by all agents
(one ``betaP_r`` and one ``betaM_r``), not ``beta_i ~ N(beta, s_beta)``: an agent has a few
dozen positive weeks, too few to tell its own slope from noise, so ``s_beta`` would sit near
0, the shape (a funnel) on which NUTS samples worst; the shared slope is the average effect
the recovery test checks. (Per-agent slopes were not tried.)

Effects (:attr:`HierarchicalBayes.effects_`) are reported on three scales: ``logit_p``
(``betaP``, ``gamma``), ``log_size`` (``betaM``, ``delta``) and ``log_mean``, the log change
of an agent's expected bookings over its fitted periods, ``sum_t E[y_it]`` with ``E[y] =
sigmoid(eta) exp(mu) s``, when the indicator is one standard deviation higher in
every period (for the push: every period a push period, against none), averaged over agents
weighted by their fitted periods, per posterior sample::

    log_mean_r = betaM_r + sum_i w_i log[sum_t sigmoid(eta_it + betaP_r) e^v_it / sum_t sigmoid(eta_it) e^v_it]

with ``v_it = sum_c delta_c C_ct + sum_r betaM_r x_r,i,t-L_r`` and ``w_i`` agent ``i``'s share
of the fitted cells. Not the average derivative ``mean_it[betaP (1 - p_it) + betaM]``: a
shared slope is a secant over the data, not a derivative (weekly demo counts are skewed and
their true effect on log bookings is concave, so the two differ by about 10% on the
synthetic organisation), and the model's expected bookings average over drivers it does not
see (the synthetic market index moves the win probability and the bookings together), so
what the fitted slopes measure is the change of an agent's total over its periods. It is
also what a what-if applies (:mod:`spm_models.workbench.scenarios`).

Forecasts
---------
Draw ``j`` takes one posterior sample for all agents and periods and simulates the hurdle
(:func:`~spm_models.models.hierarchical.design.simulate_hurdle`), so territory and company
forecasts are **sums of agent draws** (:meth:`HierarchicalBayes.predict_hierarchy`) and carry
the shared parameter uncertainty. The model has no dynamics (no trend, no level drift): a
forecast is the agent's pooled level times the calendar.

Inference
---------
``method="nuts"``: NUTS by nutpie on the model's log density compiled by numba (cached on disk,
:func:`~spm_models.models.hierarchical.inference.nutpie_model`), else PyMC's NUTS on the same
model in PyMC (:mod:`~spm_models.models.hierarchical.inference`). nutpie's own compilation of
the PyMC model took 17-30 s of every new process, more than the sampling itself.
``method="advi"``: mean-field ADVI on the same compiled log density (tested against the PyMC
model); mean-field intervals of the parameters can be too narrow in general, though on the
synthetic organisation its effect sds were within about 10% of NUTS'.

Every series with at least 2 observations and no negative value is fitted, however short:
pooling is what lets a new hire's few weeks borrow strength from its territory. Series with
a single observation or negative values fall back to
:class:`~spm_models.models.baselines.CalendarBaseline` (and its chain), as the contract says.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from spm_models.exceptions import ConfigError
from spm_models.models.aggregate import aggregate_draws
from spm_models.models.base import ForecastModel, check_is_fitted
from spm_models.models.baselines import CalendarBaseline
from spm_models.models.forecast import DEFAULT_QUANTILES, Forecast, check_quantiles, concat_forecasts
from spm_models.models.hierarchical.design import (
    calendar_features,
    check_regressors,
    lag_and_standardize,
    regressor_panel,
    resolve_groups,
    simulate_hurdle,
)
from spm_models.models.hierarchical.inference import agent_effects, fit_advi, hurdle_data, sample_nuts
from spm_models.models.panel import Panel, build_panel, freq_grain

__all__ = ["HierarchicalBayes", "TERRITORY_PREFIX", "COMPANY_ID"]

#: Prefix of territory series in :meth:`HierarchicalBayes.predict_hierarchy`.
TERRITORY_PREFIX = "territory:"
#: Id of the company series in :meth:`HierarchicalBayes.predict_hierarchy`.
COMPANY_ID = "company"
_METHODS = ("nuts", "advi")


class HierarchicalBayes(ForecastModel):
    """Hurdle model of agent bookings with agents pooled in territories (see module docstring).

    Parameters
    ----------
    groups : mapping, optional
        ``unique_id -> territory``. When omitted, an optional ``group`` column of the fit
        frame is used; without either, all agents form one group (no territory level).
    regressors : mapping, optional
        ``column -> lag`` in periods (at least 1) of indicator columns of the fit frame.
    method : {"nuts", "advi"}
        NUTS (nutpie if installed, else PyMC) or mean-field ADVI (fast, approximate).
    draws, tune, chains : int
        NUTS draws and tuning steps per chain, and chains. ADVI draws ``draws * chains``
        samples from the fitted approximation. With 500 tuning steps, 1 fit in 20 on the
        synthetic organisations (4 organisations x 5 seeds) mixed the territory scale of the
        win rates poorly (R-hat 1.07-1.11, bulk ESS about 30); with 1,000, none did (R-hat at
        most 1.033, ESS at least 117), for about a fifth more fit time.
    target_accept : float
        NUTS target acceptance rate. At 0.9, 4 of 6 fits of Maven's agents had 1-2 divergent
        transitions (and the review said the posterior may be biased); at 0.95, none, and on
        the 20 synthetic fits above the smallest bulk ESS rose from 117-205 to 195-381 (max
        R-hat at most 1.024), for 1.5-1.9 times the CPU (the review's fit stage on the
        example: 10.7 s wall before, 15.4 s after; bench/README.md, seventh run).
    advi_iterations : int
        Maximum ADVI optimisation steps; it stops earlier once the ELBO stops improving
        (see :func:`~spm_models.models.hierarchical.inference.fit_advi`).
    yearly_terms : int or "auto"
        Fourier pairs of the yearly seasonality (0 for none). ``"auto"`` (default): 2 when the
        history spans at least two years, else 0: a yearly curve fitted on less than that
        extrapolates whatever the months seen once happened to do (on Maven's ten months it
        tripled the company's error at 13 weeks, bench/README.md).
    quarter_terms : {"months", "push"}
        Quarter shape: the quarter-end push with indicators of the second and third month of
        the quarter (default), or the push alone
        (:func:`~spm_models.models.hierarchical.design.calendar_features`). On Maven the months
        took the company's 4-week MASE from 0.91 to 0.69 (bench/README.md).
    fiscal_year_start : int
        Month (1-12) in which the fiscal year's quarters start.
    freq, random_state
        See :class:`~spm_models.models.base.ForecastModel`.

    Attributes
    ----------
    effects_ : DataFrame
        ``name, scale, mean, sd, q0.05, q0.95`` of the push and indicator effects.
    territories_ : ndarray of str
        Territory of each series (``unique_ids_`` order).
    diagnostics_ : dict
        ``method``, ``sampler``, ``fit_seconds``, ``n_samples``, and for NUTS
        ``divergences``, ``max_rhat``, ``min_ess_bulk`` (two chains or more); for ADVI
        ``iterations``, ``converged`` and ``elbo`` (mean over the last window).
    posterior_ : dict of ndarray
        Posterior samples of the per-agent ``a``, ``b``, ``shape`` ``(S, n_series)`` and of
        ``gamma``, ``delta`` ``(S, n_calendar)``, ``beta_p``, ``beta_m`` ``(S, n_regressors)``.
    scale_ : float
        The scale ``s`` positive amounts are divided by.
    """

    def __init__(
        self,
        *,
        groups: Mapping[str, str] | None = None,
        regressors: Mapping[str, int] | None = None,
        method: str = "nuts",
        draws: int = 500,
        tune: int = 1000,
        chains: int = 2,
        target_accept: float = 0.95,
        advi_iterations: int = 20_000,
        yearly_terms: int | str = "auto",
        quarter_terms: str = "months",
        fiscal_year_start: int = 1,
        freq: str | None = None,
        random_state: int | None = 0,
    ) -> None:
        self.groups = groups
        self.regressors = regressors
        self.method = method
        self.draws = draws
        self.tune = tune
        self.chains = chains
        self.target_accept = target_accept
        self.advi_iterations = advi_iterations
        self.yearly_terms = yearly_terms
        self.quarter_terms = quarter_terms
        self.fiscal_year_start = fiscal_year_start
        self.freq = freq
        self.random_state = random_state

    @classmethod
    def get_test_params(cls) -> dict[str, Any]:
        return {"method": "advi", "advi_iterations": 2000, "draws": 100, "chains": 1}

    # ------------------------------------------------------------------ checks
    def _check_params(self, freq: str) -> None:
        if self.method not in _METHODS:
            raise ConfigError(f"method must be one of {', '.join(_METHODS)}, got {self.method!r}")
        names = ["draws", "tune", "chains", "advi_iterations"]
        names += [] if isinstance(self.yearly_terms, str) and self.yearly_terms == "auto" else ["yearly_terms"]
        for name in names:
            minimum = 0 if name in ("tune", "yearly_terms") else 1
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
                raise ConfigError(f"{name} must be a whole number of at least {minimum}, got {v!r}")
        if not isinstance(self.target_accept, (int, float)) or not 0 < self.target_accept < 1:
            raise ConfigError(f"target_accept must be between 0 and 1, got {self.target_accept!r}")
        q = self.fiscal_year_start
        if isinstance(q, bool) or not isinstance(q, (int, np.integer)) or not 1 <= q <= 12:
            raise ConfigError(f"fiscal_year_start must be 1-12, got {q!r}")
        calendar_features(
            np.array([], dtype="datetime64[D]"),
            freq,
            yearly_terms=0,
            fiscal_year_start=q,
            quarter_terms=self.quarter_terms,
        )

    # ------------------------------------------------------------------ fit
    def fit(self, frame: pd.DataFrame, **tables: pd.DataFrame) -> HierarchicalBayes:
        """Fit the model on a long ``unique_id``/``ds``/``y`` frame.

        The frame may also hold the regressor columns named in ``regressors`` and a ``group``
        column (territory of each series) when ``groups`` is not given.

        Returns
        -------
        self

        Raises
        ------
        DataError
            The frame breaks the data contract, a regressor column is missing or has empty
            values, or a series has no territory.
        ConfigError
            Invalid parameters.
        """
        self._check_fit_tables(tables)
        regs = check_regressors(self.regressors)
        panel = build_panel(frame, freq=self.freq)
        territory, given = resolve_groups(frame, panel.unique_ids, self.groups)
        xraw = regressor_panel(frame, panel, list(regs))
        # handed to _fit_panel through a private attribute that never outlives this call
        self._inputs = (regs, territory, given, xraw)
        try:
            return self._fit_from_panel(panel)
        finally:
            del self._inputs

    def _yearly_terms(self, panel: Panel) -> int:
        """``yearly_terms``, or with ``"auto"`` 2 when the history spans two years or more, else 0."""
        if not (isinstance(self.yearly_terms, str) and self.yearly_terms == "auto"):
            return int(self.yearly_terms)
        per_year = {"week": 52, "month": 12}[freq_grain(panel.freq)]
        return 2 if len(panel.grid) >= 2 * per_year else 0

    def _fit_panel(self, panel: Panel) -> np.ndarray:
        regs, territory, given, xraw = self._inputs
        started = time.perf_counter()
        n = panel.n_series
        name = self.model_name()
        reasons = np.full(n, "", dtype=object)
        negative = np.nan_to_num(panel.y, nan=0.0).min(axis=1) < 0
        reasons[negative] = f"has negative values; {name} models bookings >= 0"
        single = panel.n_obs < 2
        reasons[single] = f"only 1 observation; {name} needs at least 2 per series"
        ok = reasons == ""

        lags = np.array(list(regs.values()), dtype=int)
        self.regressor_lags_ = dict(regs)
        self.max_lag_ = int(lags.max()) if lags.size else 0
        x_lagged, self.x_tail_ = lag_and_standardize(xraw, lags, self.max_lag_)
        self.territories_ = np.asarray(territory, dtype=object)
        self.has_territories_ = bool(given)
        self.yearly_terms_ = self._yearly_terms(panel)
        cal, self.calendar_names_ = calendar_features(
            panel.ds,
            panel.freq,
            yearly_terms=self.yearly_terms_,
            fiscal_year_start=self.fiscal_year_start,
            quarter_terms=self.quarter_terms,
        )
        # only the series the model fits enter it; the others are forecast by the fallback
        fitted = np.flatnonzero(ok)
        rows, cols = np.nonzero(~np.isnan(panel.y[fitted]))
        cells = {
            "series": rows,
            "y": panel.y[fitted][rows, cols],
            "cal": cal[fitted][rows, cols],
            "x": np.moveaxis(x_lagged, 0, -1)[fitted][rows, cols],
        }
        positive = cells["y"] > 0
        self.scale_ = float(np.exp(np.log(cells["y"][positive]).mean())) if positive.any() else 1.0
        if not ok.any():
            self.posterior_ = None
            self.effects_ = _empty_effects()
            self.diagnostics_ = {"method": self.method, "sampler": None, "fit_seconds": 0.0, "n_samples": 0}
            return reasons
        group_codes, group_names = pd.factorize(pd.Series(self.territories_[fitted], dtype="str"), sort=True)
        data = hurdle_data(
            cells,
            group_codes=group_codes,
            n_series=len(fitted),
            n_groups=len(group_names) if given else 0,
            cal_names=self.calendar_names_,
            scale=self.scale_,
        )
        n_samples = int(self.draws) * int(self.chains)
        if self.method == "advi":
            samples, info = fit_advi(
                data,
                iterations=int(self.advi_iterations),
                n_samples=n_samples,
                rng=np.random.default_rng([self.seed_, 2]),
            )
            diag = {"method": "advi", "sampler": "numpy-advi", "n_samples": n_samples, **info}
        else:
            samples, info = sample_nuts(
                data,
                cal_names=self.calendar_names_,
                reg_names=list(regs),
                draws=int(self.draws),
                tune=int(self.tune),
                chains=int(self.chains),
                target_accept=float(self.target_accept),
                seed=int(self.seed_ % 2**31),
            )
            diag = {"method": "nuts", "n_samples": n_samples, **info}
        empty = np.zeros((n_samples, 0))
        post = {
            **agent_effects(samples, data),
            "gamma": samples["gamma"],
            "delta": samples["delta"],
            "beta_p": samples.get("beta_p", empty),
            "beta_m": samples.get("beta_m", empty),
        }
        self.effects_ = _effects(post, cells, self.calendar_names_, list(regs))
        for key, fill in (("a", 0.0), ("b", 0.0), ("shape", 1.0)):  # rows of fallen-back series are never used
            full = np.full((n_samples, n), fill)
            full[:, fitted] = post[key]
            post[key] = full
        self.posterior_ = post
        diag["fit_seconds"] = round(time.perf_counter() - started, 3)
        self.diagnostics_ = diag
        return reasons

    def _make_fallback(self) -> ForecastModel:
        return CalendarBaseline()

    # ------------------------------------------------------------------ predict
    def predict(self, h: int, *, quantiles: Iterable[float] = DEFAULT_QUANTILES, n_draws: int = 1000) -> Forecast:
        """Forecast the next ``h`` periods of every agent (see the base class).

        Raises
        ------
        ConfigError
            ``h`` exceeds the shortest regressor lag: the regressor's values for those
            periods are not known yet.
        """
        self._check_horizon(h)
        return super().predict(h, quantiles=quantiles, n_draws=n_draws)

    def _check_horizon(self, h: int) -> None:
        check_is_fitted(self)
        if self.regressor_lags_ and isinstance(h, (int, np.integer)) and not isinstance(h, bool):
            name, lag = min(self.regressor_lags_.items(), key=lambda kv: kv[1])
            if h > lag:
                raise ConfigError(
                    f"cannot forecast h={h} periods: regressor {name!r} enters with a lag of {lag} "
                    f"periods, so its values for periods beyond {lag} ahead are not known yet. "
                    f"Forecast at most {lag} periods ahead, or refit with a longer lag."
                )

    def _predict_panel(self, h: int, *, ds: np.ndarray, n_draws: int, rng: np.random.Generator) -> np.ndarray:
        cal, _ = calendar_features(
            ds,
            self.freq_,
            yearly_terms=self.yearly_terms_,
            fiscal_year_start=self.fiscal_year_start,
            quarter_terms=self.quarter_terms,
        )
        lags = np.array(list(self.regressor_lags_.values()), dtype=int)
        # step k sees the standardised value at T + k - lag, column max_lag - 1 + k - lag of the tail
        idx = self.max_lag_ - 1 + np.arange(1, h + 1)[None, :] - lags[:, None]
        x = self.x_tail_[np.arange(len(lags))[:, None], :, idx].transpose(2, 1, 0)  # (n_series, h, n_reg)
        n_post = self.posterior_["a"].shape[0]
        sample = rng.choice(n_post, size=n_draws, replace=n_draws > n_post)
        return simulate_hurdle(self.posterior_, cal=cal, x=x, sample=sample, scale=self.scale_, rng=rng)

    def predict_hierarchy(
        self, h: int, *, quantiles: Iterable[float] = DEFAULT_QUANTILES, n_draws: int = 1000
    ) -> Forecast:
        """Agent, territory and company forecasts whose draws add up exactly.

        Territory ``g`` is the series ``"territory:<g>"`` and the company ``"company"``; draw
        ``j`` of each is the sum of draw ``j`` of its agents
        (:func:`spm_models.models.aggregate.aggregate_draws`). Territory rows are left out when the
        model was fitted without a grouping.

        Returns
        -------
        Forecast
            Agents first (sorted), then territories (sorted), then the company.

        Raises
        ------
        DataError
            Agents' histories end on different dates (their forecasts cover different periods).
        """
        levels = check_quantiles(quantiles)
        agents = self.predict(h, quantiles=levels, n_draws=n_draws)
        parts = [agents]
        if self.has_territories_:
            terr = {u: f"{TERRITORY_PREFIX}{g}" for u, g in zip(self.unique_ids_, self.territories_)}
            parts.append(aggregate_draws(agents, terr))
        parts.append(aggregate_draws(agents, {u: COMPANY_ID for u in self.unique_ids_}))
        return concat_forecasts(parts)


# ---------------------------------------------------------------------- posterior post-processing


def _empty_effects() -> pd.DataFrame:
    return pd.DataFrame(
        {
            c: pd.Series(dtype="str" if c in ("name", "scale") else float)
            for c in ("name", "scale", "mean", "sd", "q0.05", "q0.95")
        }
    )


def _effects(
    post: dict[str, np.ndarray], cells: dict[str, np.ndarray], cal_names: list[str], reg_names: list[str]
) -> pd.DataFrame:
    """Posterior summaries of the push and indicator effects on the three scales.

    ``log_mean`` is :func:`_log_mean_effect` of the push (0 -> 1) and of each indicator (+1 sd).
    """
    series, cal, x = cells["series"], cells["cal"], cells["x"]
    push = cal_names.index("quarter_end_push")
    order = np.argsort(series, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(series[order]) != 0])
    weight = np.diff(np.r_[starts, len(order)]) / len(order)  # share of the fitted cells per series
    n_samples = post["a"].shape[0]
    log_mean = np.empty((1 + len(reg_names), n_samples))
    for lo in range(0, n_samples, 100):  # chunks of samples bound the (samples x cells) memory
        sl = slice(lo, lo + 100)
        eta = post["a"][sl][:, series] + post["gamma"][sl] @ cal.T + post["beta_p"][sl] @ x.T
        v = post["delta"][sl] @ cal.T + post["beta_m"][sl] @ x.T  # time-varying part of the log size
        on = cal[:, push][None, :]
        g, d = post["gamma"][sl, push][:, None], post["delta"][sl, push][:, None]
        log_mean[0, sl] = _log_mean_effect(eta - g * on, v - d * on, g, d, order, starts, weight)
        for r in range(len(reg_names)):
            log_mean[1 + r, sl] = _log_mean_effect(
                eta, v, post["beta_p"][sl, r][:, None], post["beta_m"][sl, r][:, None], order, starts, weight
            )
    rows = [
        ("quarter_end_push", "logit_p", post["gamma"][:, push]),
        ("quarter_end_push", "log_size", post["delta"][:, push]),
        ("quarter_end_push", "log_mean", log_mean[0]),
    ]
    for r, name in enumerate(reg_names):
        rows += [
            (name, "logit_p", post["beta_p"][:, r]),
            (name, "log_size", post["beta_m"][:, r]),
            (name, "log_mean", log_mean[1 + r]),
        ]
    vals = np.array([v for _, _, v in rows])
    q = np.quantile(vals, [0.05, 0.95], axis=1)
    return pd.DataFrame(
        {
            "name": pd.array([n for n, _, _ in rows], dtype="str"),
            "scale": pd.array([s for _, s, _ in rows], dtype="str"),
            "mean": vals.mean(axis=1),
            "sd": vals.std(axis=1),
            "q0.05": q[0],
            "q0.95": q[1],
        }
    )


def _log_mean_effect(
    eta: np.ndarray,
    v: np.ndarray,
    step_p: np.ndarray,
    step_m: np.ndarray,
    order: np.ndarray,
    starts: np.ndarray,
    weight: np.ndarray,
) -> np.ndarray:
    """Log change of each series' expected bookings over its fitted periods, averaged over series.

    With ``E_it = sigmoid(eta_it) exp(v_it)`` (the expected bookings of cell ``it`` up to a
    factor constant within series ``i``, which cancels) and the step raising every
    ``eta_it`` by ``step_p`` and every log size by ``step_m``::

        effect = sum_i w_i [step_m + log sum_t sigmoid(eta_it + step_p) exp(v_it)
                                   - log sum_t sigmoid(eta_it) exp(v_it)]

    with ``w_i`` the series' share of the fitted cells. Arrays are ``(samples, cells)``, steps
    ``(samples, 1)``; returns ``(samples,)``.
    """

    def log_total(e: np.ndarray) -> np.ndarray:  # log sum_t sigmoid(e) exp(v) per series
        terms = (-np.logaddexp(0.0, -e) + v)[:, order]
        top = np.maximum.reduceat(terms, starts, axis=1)  # per series, so no series underflows
        sizes = np.diff(np.r_[starts, terms.shape[1]])
        return np.log(np.add.reduceat(np.exp(terms - np.repeat(top, sizes, axis=1)), starts, axis=1)) + top

    return step_m[:, 0] + (log_total(eta + step_p) - log_total(eta)) @ weight
