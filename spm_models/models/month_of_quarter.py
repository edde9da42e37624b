"""A strong simple baseline: each series' mean times a month-of-quarter factor of the pooled total.

Quota-driven sales follow the quarter: the last month books more than the first. With little
history, three factors estimated on the total of all series are far steadier than thirteen
week-of-quarter factors per series, and on short real histories this baseline is hard to beat
(bench/README.md). For series ``i`` and period ``t`` in month ``m(t)`` of its (fiscal) quarter
(weeks belong to the month holding their Thursday, as ISO weeks do):

.. math::

    \\hat y_{it} = \\bar y_i \\, f_{m(t)}, \\qquad
    f_m = \\frac{\\operatorname{mean}\\{Y_t : m(t) = m\\}}{\\operatorname{mean}_t Y_t},

with :math:`\\bar y_i` the series' mean over its history (or the last ``window`` periods) and
:math:`Y_t = \\sum_i y_{it}` the pooled total of each period. Predictive draws multiply
:math:`\\hat y` by the series' own in-sample ratios :math:`y_{it} / \\hat y_{it}`, resampled
jointly across series (:mod:`spm_models.models.bootstrap`), so sums of draws keep the weeks
every series shared.
"""

from __future__ import annotations

import numpy as np

from spm_models.calendar import Calendar
from spm_models.exceptions import ConfigError
from spm_models.models.base import ForecastModel
from spm_models.models.baselines import Mean
from spm_models.models.bootstrap import resample
from spm_models.models.panel import Panel, freq_grain

__all__ = ["MonthOfQuarterMean"]


def month_positions(ds: np.ndarray, freq: str, fiscal_year_start: int) -> np.ndarray:
    """Month of the (fiscal) quarter, 0..2, of each period (weeks by their Thursday); -1 for NaT."""
    grain = freq_grain(freq)
    if grain not in ("week", "month"):
        raise ConfigError(f"MonthOfQuarterMean needs weekly or monthly data, got freq={freq!r}")
    days = np.asarray(ds).astype("datetime64[D]")
    if grain == "week":
        days = days + np.timedelta64(3, "D")
    return Calendar(fiscal_year_start).position_in_quarter(days, "month")


class MonthOfQuarterMean(ForecastModel):
    """Each series' mean x a month-of-quarter factor of the pooled total (module docstring).

    Parameters
    ----------
    window : int, optional
        Periods of each series' history behind its mean; all of it when ``None``.
    min_history : int
        Fewer observations than this and the series falls back to :class:`~spm_models.models.baselines.Mean`.
    fiscal_year_start : int
        Month (1-12) the fiscal year starts in; quarters start every three months from it.
    joint_bootstrap : bool
        Resample one past period per draw and step for all series together (default).
    freq, random_state
        See :class:`~spm_models.models.base.ForecastModel`.
    """

    def __init__(
        self,
        *,
        window: int | None = None,
        min_history: int = 4,
        fiscal_year_start: int = 1,
        joint_bootstrap: bool = True,
        freq: str | None = None,
        random_state: int | None = 0,
    ) -> None:
        self.window = window
        self.min_history = min_history
        self.fiscal_year_start = fiscal_year_start
        self.joint_bootstrap = joint_bootstrap
        self.freq = freq
        self.random_state = random_state

    def _check_params(self, freq: str) -> None:
        for name, value, minimum in (("window", self.window, 1), ("min_history", self.min_history, 2)):
            if value is None and name == "window":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
                raise ConfigError(f"{name} must be a whole number of at least {minimum}, got {value!r}")
        if not isinstance(self.joint_bootstrap, (bool, np.bool_)):
            raise ConfigError(f"joint_bootstrap must be True or False, got {self.joint_bootstrap!r}")
        Calendar(self.fiscal_year_start)
        if freq_grain(freq) not in ("week", "month"):
            raise ConfigError(f"MonthOfQuarterMean needs weekly or monthly data, got freq={freq!r}")

    def _fit_panel(self, panel: Panel) -> np.ndarray:
        n, width = panel.y.shape
        valid = ~np.isnan(panel.y)
        y0 = np.where(valid, panel.y, 0.0)
        pos = np.where(valid, month_positions(panel.ds, panel.freq, self.fiscal_year_start), -1)
        reasons = np.full(n, "", dtype=object)
        reasons[y0.sum(axis=1) == 0] = "all values are zero; there is no level to scale"
        reasons[(y0 < 0).any(axis=1)] = "has negative values; it models non-negative amounts"
        short = panel.n_obs < self.min_history
        reasons[short] = [f"only {k} observations; it needs min_history={self.min_history}" for k in panel.n_obs[short]]
        ok = reasons == ""
        # the pooled total of each calendar period (rows are right-aligned, so align by date)
        period = np.searchsorted(panel.grid.to_numpy(), panel.ds.astype(panel.grid.dtype))
        use = valid & ok[:, None]
        total = np.bincount(period[use], weights=y0[use], minlength=len(panel.grid))
        cell_pos = np.full(len(panel.grid), -1)
        cell_pos[period[use]] = pos[use]
        seen = cell_pos >= 0
        mean_all = total[seen].mean() if seen.any() else 0.0
        factors = np.ones(3)
        for m in range(3):
            here = seen & (cell_pos == m)
            if here.any() and mean_all > 0:
                factors[m] = total[here].mean() / mean_all
        factors = np.where(factors > 0, factors, 1.0)
        w = width if self.window is None else min(int(self.window), width)
        seen_w = valid[:, -w:] & ok[:, None]
        count = seen_w.sum(axis=1)
        level = np.where(seen_w, y0[:, -w:], 0.0).sum(axis=1) / np.maximum(count, 1)
        dead = ok & (level <= 0)
        reasons[dead] = f"no sales in the last {w} periods (window)"
        fitted = level[:, None] * factors[np.maximum(pos, 0)]
        ratios = np.where(valid & (fitted > 0), y0 / np.where(fitted > 0, fitted, 1.0), np.nan)
        ratios = self._widen_shared(ratios, fitted, period, use, seen, cell_pos, len(panel.grid))
        self.factors_ = factors
        self.level_ = level
        self.ratios_ = ratios
        self.n_ratios_ = panel.n_obs.copy()
        self.end_offset_ = panel.last_pos.max() - panel.last_pos
        return reasons

    @staticmethod
    def _widen_shared(
        ratios: np.ndarray,
        fitted: np.ndarray,
        period: np.ndarray,
        use: np.ndarray,
        seen: np.ndarray,
        cell_pos: np.ndarray,
        n_grid: int,
    ) -> np.ndarray:
        """The ratios with each period's shared part widened for its leverage on the fit.

        ``r_it = c_t u_it``: ``c_t`` is the pooled total's ratio to its fitted value in period
        ``t`` (what every series shared that week), ``u_it`` the series' own part. In-sample,
        ``c_t`` sits closer to the fit than a new period will: the level and the month's factor
        were estimated from those very periods. ``c_t`` is widened around its mean by
        ``sqrt((1 + h_t) / (1 - h_t))``, the ratio of a new period's error to an in-sample
        residual in a linear fit, with leverage ``h_t = 1/n + 1/n_m`` (``n`` periods behind the
        level, ``n_m`` behind the factor of ``t``'s month). The series' own parts are left alone,
        so one series' draws barely change and sums of draws (the company) get the width that
        their shared errors need; means are kept.
        """
        fit_total = np.bincount(period[use], weights=fitted[use], minlength=n_grid)
        real_total = np.bincount(period[use], weights=np.nan_to_num(ratios * fitted)[use], minlength=n_grid)
        ok = seen & (fit_total > 0)
        if ok.sum() < 2:
            return ratios
        c = np.ones(n_grid)
        c[ok] = real_total[ok] / fit_total[ok]
        n_month = np.array([max(int((ok & (cell_pos == m)).sum()), 1) for m in range(3)])
        lev = np.minimum(1.0 / ok.sum() + 1.0 / n_month[np.maximum(cell_pos, 0)], 0.5)
        centre = c[ok].mean()
        wide = np.where(ok, np.maximum(centre + (c - centre) * np.sqrt((1.0 + lev) / (1.0 - lev)), 0.0), 1.0)
        scale = np.where(c > 0, wide / np.where(c > 0, c, 1.0), 1.0)
        out = ratios.copy()
        out[use] = ratios[use] * scale[period[use]]
        return out

    def _predict_panel(self, h: int, *, ds: np.ndarray, n_draws: int, rng: np.random.Generator) -> np.ndarray:
        pos = month_positions(ds, self.freq_, self.fiscal_year_start)
        mu = self.level_[:, None] * self.factors_[pos]
        r = resample(self, self.ratios_, self.n_ratios_, (h, n_draws), rng)
        return mu[:, :, None] * r

    def _make_fallback(self) -> ForecastModel:
        return Mean(joint_bootstrap=self.joint_bootstrap)
