"""Baseline forecasters: every fancier model has to beat these in the backtest.

All four are vectorized over series (one array operation for the whole panel) and produce
predictive draws, so their intervals can be scored like any other model's.

==================  =====================================================  ==================
Model               Predictive draws                                       Falls back to
==================  =====================================================  ==================
``Naive``           last value + random walk of bootstrapped differences   ``Mean``
``SeasonalNaive``   same period last season + bootstrapped seasonal errors ``Mean``
``Mean``            bootstrap of the series' own (recent) values           ``LastValue``
``CalendarBaseline`` level x position-in-quarter factor x bootstrapped      ``Mean``
                    (leverage-standardised) residual ratio, with level
                    uncertainty
==================  =====================================================  ==================

Every baseline draws from its own residuals with the joint (cross-sectional) bootstrap of
:mod:`spm_models.models.bootstrap` by default (``joint_bootstrap=True``).
"""

from __future__ import annotations

import numpy as np

from spm_models.calendar import Calendar
from spm_models.exceptions import ConfigError
from spm_models.models.base import ForecastModel
from spm_models.models.bootstrap import resample
from spm_models.models.panel import Panel, default_season_length, freq_grain, periods_per_quarter

__all__ = ["Naive", "SeasonalNaive", "Mean", "CalendarBaseline"]


def _check_bool(value, name: str) -> None:
    if not isinstance(value, (bool, np.bool_)):
        raise ConfigError(f"{name} must be True or False, got {value!r}")


def _check_int(value, name: str, *, minimum: int, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name} must be a whole number of at least {minimum}, got {value!r}")


class SeasonalNaive(ForecastModel):
    """Same period one season ago, with draws from the series' own seasonal-naive errors.

    Point forecast: :math:`\\hat y_{T+k} = y_{T+k-m\\lceil k/m \\rceil}`. Draws are sample
    paths :math:`y_{T+k} = y_{T+k-m} + e_k` where each :math:`e_k` is resampled from the
    series' in-sample errors :math:`e_t = y_t - y_{t-m}`, so at step ``k`` the error is a
    sum of :math:`\\lceil k/m \\rceil` resampled errors (variance grows like fpp3's
    seasonal-naive interval). Intervals are therefore as wide as the model's own track
    record, and the mean of the draws is the classical point forecast plus the mean in-sample
    error. Errors are additive and draws are not clipped: on sparse revenue, lower quantiles
    can be negative (clipping would bias sums of draws upwards; use
    :class:`CalendarBaseline` for non-negative draws). With ``joint_bootstrap`` every series
    takes the error of the same historical period :math:`t` in a given draw and resampled
    error, :math:`e_{ik} = e_{i,t}`, so errors that hit all series together stay together.

    Parameters
    ----------
    season_length : int, optional
        Periods per season; default one quarter (13 for weekly, 3 for monthly data).
    joint_bootstrap : bool
        Resample one historical period per draw and step for all series together (default),
        keeping their co-movement in sums of draws; ``False`` resamples every series
        independently (the sum of many series is then too narrow when their history moved
        together). Each series' own predictive distribution is the same either way; see the
        module docstring.
    freq, random_state
        See :class:`~spm_models.models.base.ForecastModel`.

    Notes
    -----
    A series needs ``m + max(m, 2)`` observations (``m`` errors at least); shorter series
    fall back to :class:`Mean`.
    """

    def __init__(
        self,
        *,
        season_length: int | None = None,
        joint_bootstrap: bool = True,
        freq: str | None = None,
        random_state: int | None = 0,
    ) -> None:
        self.season_length = season_length
        self.joint_bootstrap = joint_bootstrap
        self.freq = freq
        self.random_state = random_state

    def _season(self, freq: str) -> int:
        return self.season_length if self.season_length is not None else default_season_length(freq)

    def _check_params(self, freq: str) -> None:
        _check_int(self._season(freq), "season_length", minimum=1)
        _check_bool(self.joint_bootstrap, "joint_bootstrap")

    def _fit_panel(self, panel: Panel) -> np.ndarray:
        m = self._season(panel.freq)
        y = panel.y
        if y.shape[1] < 2 * m:
            y = np.hstack([np.full((y.shape[0], 2 * m - y.shape[1]), np.nan), y])
        self.season_length_ = m
        self.last_season_ = y[:, -m:].copy()
        self.errors_ = y[:, m:] - y[:, :-m]
        self.n_errors_ = np.maximum(panel.n_obs - m, 0)
        self.end_offset_ = panel.last_pos.max() - panel.last_pos
        need = m + max(m, 2)
        return np.where(
            panel.n_obs < need,
            [
                f"only {n} observation{'s' if n != 1 else ''}; {self.model_name()} needs at least {need}"
                for n in panel.n_obs
            ],
            "",
        ).astype(object)

    def _predict_panel(self, h: int, *, ds: np.ndarray, n_draws: int, rng: np.random.Generator) -> np.ndarray:
        m = self.season_length_
        n = len(self.unique_ids_)
        seasons = -(-h // m)
        e = resample(self, self.errors_, self.n_errors_, (seasons * m, n_draws), rng)
        # sample paths: the error of period T+k accumulates over the seasons back to the data
        e = np.cumsum(e.reshape(n, seasons, m, n_draws), axis=1).reshape(n, seasons * m, n_draws)[:, :h]
        return self.last_season_[:, np.arange(h) % m][:, :, None] + e

    def _make_fallback(self) -> ForecastModel:
        return Mean(joint_bootstrap=self.joint_bootstrap)


class Naive(SeasonalNaive):
    """Last value, with random-walk draws of the series' own bootstrapped period-to-period changes.

    The seasonal naive model with a season of one period: the draw at step ``k`` is the last
    value plus a sum of ``k`` resampled first differences (resampled jointly across series
    with ``joint_bootstrap``, as in :class:`SeasonalNaive`). Needs 3 observations; shorter
    series fall back to :class:`Mean`.
    """

    def __init__(self, *, joint_bootstrap: bool = True, freq: str | None = None, random_state: int | None = 0) -> None:
        self.joint_bootstrap = joint_bootstrap
        self.freq = freq
        self.random_state = random_state

    def _season(self, freq: str) -> int:
        return 1


class Mean(ForecastModel):
    """Historic mean, with draws bootstrapped from the series' own values (an i.i.d. model).

    Draw ``j`` at step ``k`` is :math:`y_{i,t}` for a resampled period ``t`` of the (recent)
    history; with ``joint_bootstrap`` the same ``t`` for every series.

    Parameters
    ----------
    window : int, optional
        Use only the last ``window`` periods; all history when ``None``.
    joint_bootstrap : bool
        Resample one historical period per draw and step for all series together (default),
        keeping their co-movement in sums of draws; ``False`` resamples every series
        independently (the sum of many series is then too narrow when their history moved
        together). Each series' own predictive distribution is the same either way; see the
        module docstring.
    freq, random_state
        See :class:`~spm_models.models.base.ForecastModel`.

    Notes
    -----
    The predictive distribution is the empirical distribution of the (recent) history, so it
    keeps zeros and skew as they are; it ignores the uncertainty of the mean itself. Needs 2
    observations; a single observation falls back to
    :class:`~spm_models.models.base.LastValue`.
    """

    def __init__(
        self,
        *,
        window: int | None = None,
        joint_bootstrap: bool = True,
        freq: str | None = None,
        random_state: int | None = 0,
    ) -> None:
        self.window = window
        self.joint_bootstrap = joint_bootstrap
        self.freq = freq
        self.random_state = random_state

    def _check_params(self, freq: str) -> None:
        _check_int(self.window, "window", minimum=2, allow_none=True)
        _check_bool(self.joint_bootstrap, "joint_bootstrap")

    def _fit_panel(self, panel: Panel) -> np.ndarray:
        w = panel.y.shape[1] if self.window is None else min(self.window, panel.y.shape[1])
        self.values_ = panel.y[:, -w:].copy()
        self.n_values_ = np.minimum(panel.n_obs, w)
        self.end_offset_ = panel.last_pos.max() - panel.last_pos
        return np.where(
            self.n_values_ < 2,
            f"only 1 observation; {self.model_name()} needs 2 to estimate a spread",
            "",
        ).astype(object)

    def _predict_panel(self, h: int, *, ds: np.ndarray, n_draws: int, rng: np.random.Generator) -> np.ndarray:
        return resample(self, self.values_, self.n_values_, (h, n_draws), rng)


def _position(ds: np.ndarray, freq: str, fiscal_year_start: int) -> np.ndarray:
    """Position in the (fiscal) quarter (:meth:`~spm_models.calendar.Calendar.position_in_quarter`)."""
    grain = freq_grain(freq)
    if grain is None:
        raise ConfigError(f"position in quarter needs weekly or monthly data, got freq={freq!r}")
    return Calendar(fiscal_year_start).position_in_quarter(ds, grain)


_MAX_PSEUDO = 1e9  # "infinitely" strong shrinkage when the data show no calendar effect


def _auto_shrinkage(z: np.ndarray, use: np.ndarray, s: np.ndarray, c: np.ndarray) -> tuple[float, np.ndarray]:
    """Empirical-Bayes pseudo-observation counts ``(k_pool, k_series)`` by the method of moments.

    With per-observation noise variance :math:`\\sigma_i^2` (variance of series ``i``'s
    normalised values) and between-position variance :math:`\\tau^2` of the true factors,
    the posterior mean is a weighted average with ``k = sigma^2 / tau^2`` pseudo-observations
    of the prior; :math:`\\tau^2` is the observed spread of the raw factors minus their
    expected noise, floored at 0 (then ``k`` is huge and the prior wins).
    """
    n_i = use.sum(axis=1)
    zbar = np.divide(z.sum(axis=1), n_i, out=np.zeros(len(n_i)), where=n_i > 0)
    sq = np.where(use, (z - zbar[:, None]) ** 2, 0.0).sum(axis=1)
    var_i = np.divide(sq, n_i - 1, out=np.zeros(len(n_i)), where=n_i > 1)
    cp = c.sum(axis=0)
    seen = cp > 0
    if not seen.any():
        return _MAX_PSEUDO, np.full(len(n_i), _MAX_PSEUDO)
    noise_obs = float((c * var_i[:, None]).sum() / cp.sum())  # noise variance per observation
    raw_pool = s.sum(axis=0)[seen] / cp[seen]
    tau0 = np.mean((raw_pool - 1.0) ** 2) - np.mean(noise_obs / cp[seen])
    k_pool = noise_obs / tau0 if tau0 > noise_obs / _MAX_PSEUDO else _MAX_PSEUDO
    pooled = (s.sum(axis=0) + k_pool) / (cp + k_pool)
    has = c > 0
    raw = np.divide(s, c, out=np.zeros_like(s), where=has)
    dev = ((raw - pooled[None, :]) ** 2)[has]
    tau1 = dev.mean() - np.mean(np.broadcast_to(var_i[:, None], c.shape)[has] / c[has])
    if tau1 <= 0:
        return k_pool, np.full(len(n_i), _MAX_PSEUDO)
    return k_pool, np.minimum(var_i / tau1, _MAX_PSEUDO)


_MAX_LEVERAGE = 0.9  # a week the fit reproduces almost exactly has no residual left to rescale


def _week_index(ds: np.ndarray, use: np.ndarray) -> tuple[np.ndarray, int]:
    """Calendar-week number of every used cell (``-1`` elsewhere) and the number of weeks.

    Panels are right-aligned per series, so column ``t`` is not the same date for every
    series; cells are grouped by their date instead.
    """
    days = np.asarray(ds).astype("datetime64[D]").astype(np.int64)
    days = np.broadcast_to(days, use.shape)
    weeks, inverse = np.unique(days[use], return_inverse=True)
    index = np.full(use.shape, -1, dtype=np.int64)
    index[use] = inverse
    return index, len(weeks)


def _common_shock_leverage(
    use: np.ndarray,
    pos: np.ndarray,
    weeks: tuple[np.ndarray, int],
    n_obs: np.ndarray,
    k_pool: float,
    k_series: np.ndarray,
    counts: np.ndarray,
) -> np.ndarray:
    """Leverage of each cell's week on the cell's own fitted value, for a shock the week shares.

    A shock :math:`\\delta` (in units of normalised values) hitting all :math:`n_t` series
    observed in week ``t`` moves the pooled factor of position ``p`` by
    :math:`n_t \\delta / (n_{\\cdot p} + k_0)`, series ``i``'s factor by
    :math:`(1 + k_i n_t / (n_{\\cdot p} + k_0)) \\delta / (n_{ip} + k_i)`, and its whole-history
    level by :math:`\\delta / n_i`. Their sum is the cell's leverage :math:`h_{it}`, the
    diagonal of the hat matrix of this linear smoother for the shared part of the week.
    ``weeks`` is :func:`_week_index`'s result.
    """
    index, n_weeks = weeks
    n_t = np.bincount(index[use], minlength=n_weeks).astype(float)
    n_week = np.zeros(use.shape)
    n_week[use] = n_t[index[use]]
    cp = counts.sum(axis=0)
    k = np.asarray(k_series, dtype=float)[:, None]
    n_ip = np.take_along_axis(counts, pos, axis=1)
    through_pool = np.divide(n_week, cp[pos] + k_pool, out=np.zeros(use.shape), where=use)
    denominator = n_ip + k
    factor = np.divide(1.0 + k * through_pool, denominator, out=np.zeros(use.shape), where=use & (denominator > 0))
    return np.where(use, factor + 1.0 / np.maximum(n_obs, 1)[:, None], 0.0)


def _standardized_week_adjustment(
    y: np.ndarray, fitted: np.ndarray, hat: np.ndarray, use: np.ndarray, weeks: tuple[np.ndarray, int]
) -> np.ndarray:
    """Per-cell multiplier that turns each week's shared residual into a modified residual.

    The week's shared ratio is :math:`R_t = \\sum_i y_{it} / \\sum_i \\hat y_{it}` over the
    series observed that week, and its leverage :math:`h_t` the :math:`\\hat y`-weighted mean
    of the cells' :math:`h_{it}`. The modified ratio is
    :math:`R^*_t = \\max(0, 1 + (R_t - 1) / \\sqrt{1 - h_t})` (the modified residual
    of Davison & Hinkley 1997, ch. 6, with :math:`h_t` capped at 0.9), and every cell of week ``t`` is multiplied by
    :math:`R^*_t / R_t` (1 where :math:`R_t = 0`: a week without sales stays without sales).
    Each series' deviation from the week's shared ratio is left as it was. ``weeks`` is
    :func:`_week_index`'s result.
    """
    index, n_weeks = weeks
    cells = index[use]
    expected = np.bincount(cells, weights=fitted[use], minlength=n_weeks)
    actual = np.bincount(cells, weights=y[use], minlength=n_weeks)
    ratio = np.divide(actual, expected, out=np.ones(n_weeks), where=expected > 0)
    h = np.divide(
        np.bincount(cells, weights=(hat * fitted)[use], minlength=n_weeks),
        expected,
        out=np.zeros(n_weeks),
        where=expected > 0,
    )
    modified = np.maximum(1.0 + (ratio - 1.0) / np.sqrt(1.0 - np.minimum(h, _MAX_LEVERAGE)), 0.0)
    week_adjustment = np.divide(modified, ratio, out=np.ones(n_weeks), where=ratio > 0)
    out = np.ones(use.shape)
    out[use] = week_adjustment[cells]
    return out


class CalendarBaseline(ForecastModel):
    """Recent level x position-in-quarter factor, with draws for sparse, skewed revenue.

    Mean forecast for series ``i`` at a period in position ``p`` of its quarter:
    :math:`\\mu_{ip} = L_i f_{ip}`.

    Factors (week 1..13 of the quarter for weekly data, month 1..3 for monthly) are
    estimated on values normalised by the series' historic mean :math:`\\bar y_i`, with
    shrinkage of ``k`` pseudo-observations, first pooled across series towards 1, then per
    series towards the pooled factor (so a short or noisy series uses the pooled factors)::

        pooled_p = (sum_i S_ip + k0) / (sum_i n_ip + k0)
        f_ip     = (S_ip + k_i * pooled_p) / (n_ip + k_i),   then scaled to average 1 over p

    with :math:`S_{ip}` the sum and :math:`n_{ip}` the count of normalised values
    :math:`y_{it}/\\bar y_i` in position ``p``. The level :math:`L_i` is the mean of the
    deseasonalised values :math:`y_{it}/f_{i,p(t)}` over the last ``window`` periods.

    Predictive draws (path ``j``, period ``t``):
    :math:`L^{(j)}_i \\, f_{i,p(t)} \\, r^{(j)}_{it}`, where

    * :math:`r` is resampled from the series' own in-sample residual ratios
      :math:`y_{it} / (\\tilde L_i f_{i,p(t)})` (:math:`\\tilde L_i` = deseasonalised mean of
      the whole history, so the ratios average 1), with the part every series shared that
      week standardised for its leverage on the fit (``standardize_residuals``, see Notes).
      A week with no sale has ratio 0, a big
      deal a large ratio: the draws keep the series' own share of zeros and its skew without
      assuming a distribution. With ``joint_bootstrap`` all series take their ratio of the
      same resampled week, :math:`r^{(j)}_{it} = r_{i,s_{jt}}`, so a week that was strong or
      weak for everyone (beyond the calendar factor) is drawn for everyone at once and the
      summed draws of a territory or the company are as wide as that co-movement makes them.
    * :math:`L^{(j)}` is the level's uncertainty, one draw per path shared by all periods
      (so sums over a quarter are not too narrow): gamma with mean :math:`L_i` and
      coefficient of variation ``sd / (L_i sqrt(n))`` of the deseasonalised window values.

    Parameters
    ----------
    window : int, optional
        Periods used for the level; all history when ``None``.
    shrinkage : float or "auto"
        Pseudo-observations ``k0 = k_i`` pulling factors towards the pooled factors (and
        those towards 1). ``"auto"`` estimates them by empirical Bayes (method of moments):
        ``k = noise variance / variance of the true factors``, so sparse, noisy series and
        data without a calendar effect get factors close to the pooled ones or to 1.
    min_history : int
        Fewer observations than this and the series falls back to :class:`Mean`.
    fiscal_year_start : int
        Month (1-12) in which the fiscal year starts; quarters start every three months from
        it (:class:`~spm_models.calendar.Calendar`).
    level_uncertainty : bool
        Draw the level (True) or keep it fixed at :math:`L_i`. Level draws are independent
        across series.
    standardize_residuals : bool
        Rescale each week's shared residual for the leverage of that week on the fit (True,
        the default), or bootstrap the raw in-sample ratios. See Notes.
    joint_bootstrap : bool
        Resample one historical period per draw and step for all series together (default),
        keeping their co-movement in sums of draws; ``False`` resamples every series
        independently (the sum of many series is then too narrow when their history moved
        together). Each series' own predictive distribution is the same either way; see the
        module docstring.
    freq, random_state
        See :class:`~spm_models.models.base.ForecastModel`.

    Notes
    -----
    Series with negative values, no sales at all, or no sales in the level window fall back
    to :class:`Mean`. Data must be weekly or monthly.

    *Why the residuals are standardised.* With a year or less of weekly history each
    position in the quarter has been seen only one to three times, so the pooled factor of
    a position is fitted to those few weeks and absorbs part of whatever moved every series
    in them. In-sample ratios therefore understate the shared week-to-week swings, by the
    factor :math:`\\sqrt{1 - h_t}` of regression residuals, and sums of draws (territory and
    company) come out too narrow; each series' own draws barely change, since one series'
    idiosyncratic noise hardly moves a factor pooled over many. ``standardize_residuals``
    rescales the shared part of each week, the ratio :math:`R_t` of the week's total to its
    fitted total, to the modified residual :math:`1 + (R_t - 1)/\\sqrt{1 - h_t}` (Davison &
    Hinkley, *Bootstrap Methods and their Application*, 1997, ch. 6), where :math:`h_t` is
    the week's leverage on its own fitted value through the pooled factor, the series'
    factor and the level (:func:`_common_shock_leverage`). Each series keeps its own
    deviation from :math:`R_t`. With a long history :math:`h_t` is small and the ratios
    hardly change. The estimation error of the factors themselves is not drawn.
    """

    def __init__(
        self,
        *,
        window: int | None = None,
        shrinkage: float | str = "auto",
        min_history: int = 8,
        fiscal_year_start: int = 1,
        level_uncertainty: bool = True,
        standardize_residuals: bool = True,
        joint_bootstrap: bool = True,
        freq: str | None = None,
        random_state: int | None = 0,
    ) -> None:
        self.window = window
        self.shrinkage = shrinkage
        self.min_history = min_history
        self.fiscal_year_start = fiscal_year_start
        self.level_uncertainty = level_uncertainty
        self.standardize_residuals = standardize_residuals
        self.joint_bootstrap = joint_bootstrap
        self.freq = freq
        self.random_state = random_state

    def _check_params(self, freq: str) -> None:
        _check_int(self.window, "window", minimum=1, allow_none=True)
        _check_int(self.min_history, "min_history", minimum=2)
        _check_int(self.fiscal_year_start, "fiscal_year_start", minimum=1)
        if self.fiscal_year_start > 12:
            raise ConfigError(f"fiscal_year_start must be 1-12, got {self.fiscal_year_start!r}")
        if self.shrinkage != "auto" and (
            isinstance(self.shrinkage, (bool, str))
            or not isinstance(self.shrinkage, (int, float, np.number))
            or not np.isfinite(self.shrinkage)
            or self.shrinkage < 0
        ):
            raise ConfigError(f"shrinkage must be 'auto' or a non-negative number, got {self.shrinkage!r}")
        _check_bool(self.level_uncertainty, "level_uncertainty")
        _check_bool(self.standardize_residuals, "standardize_residuals")
        _check_bool(self.joint_bootstrap, "joint_bootstrap")

    def _fit_panel(self, panel: Panel) -> np.ndarray:
        n, width = panel.y.shape
        per_q = periods_per_quarter(panel.freq)
        if per_q is None:
            return np.full(n, f"{self.model_name()} needs weekly or monthly data, got freq={panel.freq}", dtype=object)
        y = panel.y
        valid = ~np.isnan(y)
        y0 = np.where(valid, y, 0.0)
        pos = _position(panel.ds, panel.freq, self.fiscal_year_start)
        total = y0.sum(axis=1)
        negative = (y0 < 0).any(axis=1)
        w = width if self.window is None else min(self.window, width)
        reasons = np.full(n, "", dtype=object)
        reasons[total == 0] = "all values are zero; there is no level to scale"
        reasons[negative] = "has negative values; it models non-negative amounts"
        short = panel.n_obs < self.min_history
        reasons[short] = [f"only {k} observations; it needs min_history={self.min_history}" for k in panel.n_obs[short]]

        ok = reasons == ""
        ybar = total / panel.n_obs
        use = valid & ok[:, None]
        z = np.where(use, y0 / np.where(ybar > 0, ybar, 1.0)[:, None], 0.0)
        f, pooled, (k_pool, k_series, counts) = self._factors(z, use, np.maximum(pos, 0), per_q)

        f_cell = np.take_along_axis(f, np.maximum(pos, 0), axis=1)
        deseason = np.where(valid, y0 / f_cell, np.nan)
        recent = deseason[:, -w:]
        n_recent = np.minimum(panel.n_obs, w)
        level = np.nansum(recent, axis=1) / np.maximum(n_recent, 1)
        dead = ok & (level <= 0)
        reasons[dead] = f"no sales in the last {w} periods (window)"
        level_all = np.nansum(deseason, axis=1) / panel.n_obs
        ratios = deseason / np.where(level_all > 0, level_all, 1.0)[:, None]
        if self.standardize_residuals:
            fitted = np.where(use, level_all[:, None] * f_cell, 0.0)
            weeks = _week_index(panel.ds, use)
            hat = _common_shock_leverage(use, np.maximum(pos, 0), weeks, panel.n_obs, k_pool, k_series, counts)
            ratios = ratios * _standardized_week_adjustment(y0, fitted, hat, use, weeks)
        dev = np.where(np.isnan(recent), 0.0, recent - level[:, None])
        sd = np.sqrt((dev**2).sum(axis=1) / np.maximum(n_recent - 1, 1))
        cv = np.divide(sd, level * np.sqrt(n_recent), out=np.zeros(n), where=level > 0)

        self.periods_per_quarter_ = per_q
        self.factors_ = f
        self.pooled_factors_ = pooled
        self.level_ = level
        self.level_cv_ = cv
        self.ratios_ = ratios
        self.n_ratios_ = panel.n_obs.copy()
        self.end_offset_ = panel.last_pos.max() - panel.last_pos
        return reasons

    def _factors(self, z: np.ndarray, use: np.ndarray, pos: np.ndarray, per_q: int) -> tuple:
        """Shrunk factors ``(n_series, per_q)``, pooled factors, and the shrinkage behind them.

        The third item is ``(k_pool, k_series, counts)``: the pseudo-observation counts used
        and the number of observations ``n_ip`` of each series in each position.
        """
        n = z.shape[0]
        cell = np.arange(n)[:, None] * per_q + pos
        s = np.bincount(cell[use], weights=z[use], minlength=n * per_q).reshape(n, per_q)
        c = np.bincount(cell[use], minlength=n * per_q).reshape(n, per_q).astype(float)
        sp, cp = s.sum(axis=0), c.sum(axis=0)
        if self.shrinkage == "auto":
            k_pool, k_series = _auto_shrinkage(z, use, s, c)
        else:
            k_pool, k_series = float(self.shrinkage), np.full(n, float(self.shrinkage))
        pooled = np.divide(sp + k_pool, cp + k_pool, out=np.ones(per_q), where=(cp + k_pool) > 0)
        k = k_series[:, None]
        f = np.divide(s + k * pooled, c + k, out=np.broadcast_to(pooled, (n, per_q)).copy(), where=(c + k) > 0)
        f = np.where(f > 0, f, np.where(pooled > 0, pooled, 1.0)[None, :])
        return f / f.mean(axis=1, keepdims=True), pooled / pooled.mean(), (k_pool, k_series, c)

    def _predict_panel(self, h: int, *, ds: np.ndarray, n_draws: int, rng: np.random.Generator) -> np.ndarray:
        n = len(self.unique_ids_)
        pos = _position(ds, self.freq_, self.fiscal_year_start)
        mu = self.level_[:, None] * np.take_along_axis(self.factors_, pos, axis=1)
        r = resample(self, self.ratios_, self.n_ratios_, (h, n_draws), rng)
        if self.level_uncertainty:
            cv = self.level_cv_
            shape = np.where(cv > 0, 1.0 / np.where(cv > 0, cv, 1.0) ** 2, 1.0)
            g = rng.gamma(shape[:, None], 1.0 / shape[:, None], size=(n, n_draws))
            g = np.where(cv[:, None] > 0, g, 1.0)
        else:
            g = np.ones((n, n_draws))
        return mu[:, :, None] * g[:, None, :] * r

    def _make_fallback(self) -> ForecastModel:
        return Mean(joint_bootstrap=self.joint_bootstrap)
