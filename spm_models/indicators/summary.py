"""What the leading indicators found say about the next weeks: the review's table.

:func:`leading_indicator_summary` runs discovery once (agent level, the panel test) and, for each
indicator that passed every check, answers a manager's three questions:

- **what leads bookings, and by how much time**: the candidate and its lag ``L`` (weeks);
- **how it moved**: the indicator over its last ``L`` weeks (summed over its units: company
  demos, company leads; a company-wide index as it is) against its average of the 52 weeks before;
- **what that implies for the next L weeks**: the weeks whose bookings that movement still acts on.
  With ``b`` the change of bookings, as a share of the usual, per standard deviation of the
  indicator ``L`` weeks earlier (:func:`~spm_models.indicators.backtest.lagged_effect`, on the
  indicator's units) and ``zbar_u`` a unit's indicator over its last ``L`` weeks in its own
  standard deviations, the implied change of the company's bookings over the next ``L`` weeks is

      implied = b * sum_u s_u zbar_u / sum_u s_u          (s_u: the unit's mean weekly bookings)

  and its 80 % range is ``implied`` with ``b`` at ``b (1 -/+ 1.2816 / |z|)``, ``z`` the
  discovery's test statistic at the lag (a test-based standard error, ``|b| / |z|``, so the range
  excludes no change exactly when the test at that level would). In money:
  ``implied x`` the company's mean weekly bookings of the last 13 weeks ``x L``.

Candidates that are not leading indicators keep their verdict (the report says what else was
tested) and empty numbers.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import stats

from spm_models.calendar import DEFAULT_CALENDAR, Calendar
from spm_models.data.dataset import Dataset
from spm_models.exceptions import DataError
from spm_models.indicators.arrays import calendar_design, shared_units, standardise
from spm_models.indicators.backtest import lagged_effect, unit_sums
from spm_models.indicators.discovery import discover_leading_indicators
from spm_models.indicators.regressors import LEADING
from spm_models.indicators.series import build_series, panels

__all__ = ["SUMMARY_COLUMNS", "leading_indicator_summary", "review_leading_indicators"]

SUMMARY_COLUMNS: tuple[str, ...] = (
    "candidate",
    "leading",
    "lag",
    "verdict",
    "p_adjusted",
    "z",
    "effect",
    "effect_low",
    "effect_high",
    "recent",
    "usual",
    "change",
    "recent_z",
    "implied",
    "implied_low",
    "implied_high",
    "weekly_bookings",
    "implied_amount",
    "implied_amount_low",
    "implied_amount_high",
    "last_week",
)
_HISTORY = 52  # weeks the recent movement is compared with
_RECENT_BOOKINGS = 13  # weeks behind the "usual weekly bookings" of the amounts


def leading_indicator_summary(
    dataset: Dataset | Mapping[str, pd.DataFrame],
    *,
    table: pd.DataFrame | None = None,
    interval: float = 0.8,
    n_permutations: int = 999,
    seed: int = 0,
    calendar: Calendar | None = None,
) -> pd.DataFrame:
    """The leading indicators of ``dataset`` and what their recent movement implies (module docstring).

    Parameters
    ----------
    dataset : Dataset or mapping of str to DataFrame
        Typed canonical tables, cut at the date of the review.
    table : DataFrame, optional
        A :func:`~spm_models.indicators.discovery.discover_leading_indicators` table at agent
        level and weekly grain of the same data; computed when omitted.
    interval : float, default 0.8
        Coverage of the ranges.
    n_permutations, seed : int
        Of the discovery, when it is run here.
    calendar : Calendar, optional
        Default the dataset's fiscal calendar.

    Returns
    -------
    DataFrame
        :data:`SUMMARY_COLUMNS`, one row per candidate, leading indicators first. ``lag`` in
        weeks; ``effect*`` and ``implied*`` as shares of usual bookings (0.05 = 5 % more);
        ``recent`` and ``usual`` in the indicator's units; ``change`` = ``recent / usual - 1``;
        ``*_amount`` in the currency of bookings; ``last_week``: start of the last week of data.

    Raises
    ------
    DataError, ConfigError
        As :func:`~spm_models.indicators.discovery.discover_leading_indicators`.
    """
    if calendar is None:
        calendar = dataset.fiscal_calendar if isinstance(dataset, Dataset) else DEFAULT_CALENDAR
    if table is None:
        table = discover_leading_indicators(
            dataset, level="agent", n_permutations=n_permutations, seed=seed, calendar=calendar
        )
    out = pd.DataFrame({"candidate": table["candidate"].astype("str"), "verdict": table["verdict"].astype("str")})
    out["leading"] = out["verdict"] == LEADING
    out["lag"] = table["best_lag"].where(out["leading"]).astype("Int64")
    out["p_adjusted"] = table["p_adjusted"].where(out["leading"])
    out["z"] = table["z"].where(out["leading"])
    for col in SUMMARY_COLUMNS:
        if col not in out:
            out[col] = np.nan
    if out["leading"].any():
        target, candidates = build_series(dataset, level="agent", grain="week", calendar=calendar)
        _, periods, y, xs = panels(target, candidates, grain="week", calendar=calendar)
        design, _ = calendar_design(periods, "week", calendar=calendar)
        total = np.nansum(y, axis=0)
        weekly = float(np.mean(total[-_RECENT_BOOKINGS:]))
        q = stats.norm.ppf(0.5 + interval / 2)
        for i in np.flatnonzero(out["leading"].to_numpy()):
            name, lag, z = out.at[i, "candidate"], int(out.at[i, "lag"]), float(out.at[i, "z"])
            if name in xs:
                for col, value in _movement(y, xs[name], design, lag=lag, z=z, q=q).items():
                    out.at[i, col] = value
        out["weekly_bookings"] = np.where(out["leading"], weekly, np.nan)
        lag = out["lag"].astype(float)
        for part in ("", "_low", "_high"):
            out[f"implied_amount{part}"] = out[f"implied{part}"] * weekly * lag
        out["last_week"] = np.where(out["leading"], periods[-1], pd.NaT)
    out["last_week"] = pd.to_datetime(out["last_week"])
    out = out.sort_values("leading", ascending=False, kind="stable", ignore_index=True)
    return out[list(SUMMARY_COLUMNS)]


def _movement(y: np.ndarray, values: np.ndarray, design: np.ndarray, *, lag: int, z: float, q: float) -> dict:
    """Effect, recent movement and what it implies, for one leading indicator (module docstring)."""
    y_unit, x_unit = unit_sums(y, values)
    effect, scale = lagged_effect(y_unit, x_unit, design, lag=lag)
    se = abs(effect) / abs(z) if np.isfinite(z) and z != 0 else np.nan
    low, high = effect - q * se, effect + q * se
    first, _ = shared_units(values)
    series = np.nansum(values[first], axis=0)
    seen = (~np.isnan(values[first])).any(axis=0)
    recent_rows = seen.copy()
    recent_rows[: len(seen) - lag] = False
    usual_rows = seen.copy()
    usual_rows[len(seen) - lag :] = False
    usual_rows[: max(len(seen) - lag - _HISTORY, 0)] = False
    recent = float(series[recent_rows].mean()) if recent_rows.any() else np.nan
    usual = float(series[usual_rows].mean()) if usual_rows.any() else np.nan
    zu = standardise(x_unit)  # each unit in its own standard deviations (0 where missing)
    zbar = zu[:, -lag:].mean(axis=1)
    weights = np.where(np.isfinite(scale) & (scale > 0), scale, 0.0)
    recent_z = float((weights * zbar).sum() / weights.sum()) if weights.sum() > 0 else np.nan
    implied = np.array([effect, low, high]) * recent_z
    return {
        "effect": effect,
        "effect_low": low,
        "effect_high": high,
        "recent": recent,
        "usual": usual,
        "change": recent / usual - 1 if usual else np.nan,
        "recent_z": recent_z,
        "implied": implied[0],
        "implied_low": float(np.min(implied[1:])),
        "implied_high": float(np.max(implied[1:])),
    }


def review_leading_indicators(dataset: Dataset, *, seed: int = 0) -> pd.DataFrame:
    """:func:`leading_indicator_summary` for a review run, which must not fail for want of history.

    When discovery cannot run on these data (too few weeks of bookings, no candidate), the
    table has one row whose ``candidate`` is empty and whose ``verdict`` says why.
    """
    try:
        return leading_indicator_summary(dataset, seed=seed)
    except DataError as exc:
        row = {c: np.nan for c in SUMMARY_COLUMNS}
        row.update(candidate="", leading=False, verdict=f"leading indicators were not looked for: {exc}")
        out = pd.DataFrame([row], columns=list(SUMMARY_COLUMNS))
        out["lag"] = out["lag"].astype("Int64")
        out["last_week"] = pd.to_datetime(out["last_week"])
        return out
