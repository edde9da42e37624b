"""Design arrays of :class:`~spm_models.models.hierarchical.model.HierarchicalBayes` (numpy only).

Everything here is plain numpy/pandas so it can be tested without PyMC: which territory each
series belongs to, the calendar regressors (quarter-end push, yearly Fourier terms), the
lagged and standardised indicator regressors aligned to the padded
:class:`~spm_models.models.panel.Panel`, and the posterior predictive simulation of the
hurdle model from stored posterior samples.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from spm_models.calendar import Calendar
from spm_models.exceptions import ConfigError, DataError, DataValidationError, Problem
from spm_models.models.panel import DT_DTYPE, Panel, freq_grain, periods_per_quarter

__all__ = [
    "GROUP_COLUMN",
    "DEFAULT_GROUP",
    "check_regressors",
    "resolve_groups",
    "regressor_panel",
    "lag_and_standardize",
    "calendar_features",
    "push_periods",
    "simulate_hurdle",
]

#: Optional column of the fit frame naming each series' territory.
GROUP_COLUMN = "group"
#: Territory of every series when no grouping is given (the model then has no territory level).
DEFAULT_GROUP = "all"
_TABLE = "training frame"
_MAX_LISTED = 5


def _listing(values) -> str:
    values = list(map(str, values))
    more = f" and {len(values) - _MAX_LISTED} more" if len(values) > _MAX_LISTED else ""
    return ", ".join(values[:_MAX_LISTED]) + more


def check_regressors(regressors: Mapping[str, int] | None) -> dict[str, int]:
    """Validate ``{column: lag}``; every lag a whole number of at least 1 period.

    Raises
    ------
    ConfigError
        Not a mapping, a reserved column name, or a lag below 1 (a regressor at lag 0 has no
        known future value, so it could never be forecast).
    """
    if regressors is None:
        return {}
    if not isinstance(regressors, Mapping):
        raise ConfigError(f"regressors must be a mapping {{column: lag in periods}}, got {type(regressors).__name__}")
    out: dict[str, int] = {}
    for name, lag in regressors.items():
        if name in ("unique_id", "ds", "y", GROUP_COLUMN):
            raise ConfigError(f"{name!r} cannot be a regressor: it is a reserved column of the training frame")
        if isinstance(lag, (bool, np.bool_)) or not isinstance(lag, (int, np.integer)) or lag < 1:
            raise ConfigError(
                f"regressor {name!r} has lag {lag!r}; give a whole number of periods of at least 1 "
                "(the regressor of period t is its value at t - lag, so forecasts up to lag periods "
                "ahead use values already known)"
            )
        out[str(name)] = int(lag)
    return out


def resolve_groups(
    frame: pd.DataFrame, unique_ids: np.ndarray, groups: Mapping[str, str] | None
) -> tuple[np.ndarray, bool]:
    """Territory of each series, from ``groups`` or else the frame's ``group`` column.

    Returns
    -------
    territory : ndarray of str, shape (n_series,)
        In the order of ``unique_ids``; :data:`DEFAULT_GROUP` for all when no grouping is given.
    given : bool
        Whether a grouping was given.

    Raises
    ------
    DataError
        Series missing from ``groups`` or without a group value, or a series whose ``group``
        column changes over time.
    """
    uids = pd.Index(np.asarray(unique_ids, dtype=object).astype(str))
    if groups is not None:
        if not isinstance(groups, Mapping):
            raise ConfigError(f"groups must be a mapping {{unique_id: territory}}, got {type(groups).__name__}")
        mapped = pd.Series({str(k): v for k, v in groups.items()}, dtype=object).reindex(uids)
        missing = uids[mapped.isna().to_numpy()]
        if len(missing):
            raise DataError(
                f"{len(missing)} series have no territory in groups: {_listing(missing)}; "
                "add them to the groups mapping"
            )
        return mapped.astype(str).to_numpy(dtype=object), True
    if GROUP_COLUMN not in frame.columns:
        return np.full(len(uids), DEFAULT_GROUP, dtype=object), False
    g = pd.DataFrame(
        {"unique_id": frame["unique_id"].astype("str").to_numpy(), "group": frame[GROUP_COLUMN].to_numpy()}
    )
    empty = g["group"].isna() | (g["group"].astype("str").str.strip() == "")
    problems = []
    if empty.any():
        series = _listing(g.loc[empty, "unique_id"].unique())
        problems.append(
            Problem(_TABLE, None, GROUP_COLUMN, None, f"{int(empty.sum())} rows have no group (series {series})")
        )
    g = g[~empty].assign(group=lambda d: d["group"].astype("str"))
    n_groups = g.groupby("unique_id")["group"].nunique()
    changing = n_groups.index[n_groups.to_numpy() > 1]
    if len(changing):
        problems.append(
            Problem(
                _TABLE,
                None,
                GROUP_COLUMN,
                None,
                f"series change territory over time: {_listing(changing)}; give each series one territory",
            )
        )
    if problems:
        raise DataValidationError(problems)
    first = g.drop_duplicates("unique_id").set_index("unique_id")["group"].reindex(uids)
    return first.to_numpy(dtype=object), True


def regressor_panel(frame: pd.DataFrame, panel: Panel, columns: list[str]) -> np.ndarray:
    """Regressor values laid out like ``panel.y``: shape ``(n_regressors, n_series, width)``.

    Padding cells are NaN.

    Raises
    ------
    DataValidationError
        A regressor column is missing, or has empty, non-numeric or infinite values.
    """
    if not columns:
        return np.zeros((0,) + panel.y.shape)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataValidationError(
            [Problem(_TABLE, None, c, None, "regressor column is missing (named in regressors=)") for c in missing]
        )
    values = {}
    problems = []
    for c in columns:
        v = pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(v)
        if bad.any():
            problems.append(
                Problem(
                    _TABLE,
                    None,
                    c,
                    None,
                    f"{int(bad.sum())} rows are empty, not numbers or infinite; regressors "
                    "need a value in every row (0 where nothing happened)",
                )
            )
        values[c] = v
    if problems:
        raise DataValidationError(problems)
    keys = pd.DataFrame(
        {
            "unique_id": frame["unique_id"].astype("str").to_numpy(),
            "ds": pd.to_datetime(frame["ds"]).to_numpy().astype(DT_DTYPE),
            **values,
        }
    )
    n, width = panel.y.shape
    rows, cols = np.nonzero(~np.isnat(panel.ds))
    cells = pd.DataFrame(
        {"unique_id": np.asarray(panel.unique_ids, dtype=object)[rows].astype(str), "ds": panel.ds[rows, cols]}
    )
    merged = cells.merge(keys, on=["unique_id", "ds"], how="left")
    out = np.full((len(columns), n, width), np.nan)
    for k, c in enumerate(columns):
        out[k, rows, cols] = merged[c].to_numpy(dtype=float)
    return out


def lag_and_standardize(x: np.ndarray, lags: np.ndarray, n_tail: int) -> tuple[np.ndarray, np.ndarray]:
    """Standardise each series' regressors, then shift them by their lags.

    ``z_it = (x_it - mean_i) / sd_i`` over the series' own observed periods (population sd;
    ``z = 0`` for a constant series), and the regressor of period ``t`` is ``z_{i, t - lag}``;
    before a series' first ``lag`` periods it is unknown and set to 0 (the series' mean).

    Parameters
    ----------
    x : array, shape (n_reg, n_series, width)
        Right-aligned, NaN-padded (as :func:`regressor_panel`).
    lags : array of int, shape (n_reg,)
    n_tail : int
        Periods of standardised values to keep for forecasting (the largest lag).

    Returns
    -------
    lagged : array, shape (n_reg, n_series, width)
        0 in padding cells.
    tail : array, shape (n_reg, n_series, n_tail)
        Last ``n_tail`` standardised values of each series (0 where the series is shorter).
    """
    n_reg, n, width = x.shape
    obs = ~np.isnan(x)
    cnt = obs.sum(axis=2, keepdims=True)
    mean = np.where(obs, x, 0.0).sum(axis=2, keepdims=True) / np.maximum(cnt, 1)
    var = (np.where(obs, x - mean, 0.0) ** 2).sum(axis=2, keepdims=True) / np.maximum(cnt, 1)
    sd = np.sqrt(var)
    z = np.where(obs & (sd > 0), (x - mean) / np.where(sd > 0, sd, 1.0), 0.0)
    lagged = np.zeros_like(z)
    for r, lag in enumerate(lags):  # one shift per regressor, vectorised over series
        if lag < width:
            lagged[r, :, lag:] = z[r, :, : width - lag]
    if n_tail > width:
        z = np.concatenate([np.zeros((n_reg, n, n_tail - width)), z], axis=2)
    return lagged, z[:, :, z.shape[2] - n_tail :].copy()


def push_periods(freq: str) -> int:
    """Periods at the end of a quarter that count as the quarter-end push: 2 weeks or 1 month."""
    per_q = periods_per_quarter(freq)
    return 2 if per_q == 13 else 1


#: Quarter terms of :func:`calendar_features`: the quarter-end push alone, or with the months of the quarter.
QUARTER_TERMS = ("push", "months")


def calendar_features(
    ds: np.ndarray, freq: str, *, yearly_terms: int, fiscal_year_start: int, quarter_terms: str = "push"
) -> tuple[np.ndarray, list[str]]:
    """Calendar regressors of each date: quarter-end push, months of the quarter, yearly Fourier terms.

    ``push = 1`` in the last :func:`push_periods` periods of a (fiscal) quarter (by
    :meth:`~spm_models.calendar.Calendar.position_in_quarter`). With ``quarter_terms="months"``
    also ``quarter_month2`` and ``quarter_month3``, 1 in the second and third month of the
    quarter (a week counts in the month of its Thursday), so the model learns the quarter's
    shape month by month, as :class:`~spm_models.models.month_of_quarter.MonthOfQuarterMean`
    does. Yearly terms ``sin(2 pi k d / 365.25)``, ``cos(2 pi k d / 365.25)`` for
    ``k = 1..yearly_terms``, with ``d`` the day of the year of the period's date. ``NaT``
    gives 0 everywhere.

    Returns
    -------
    features : array, shape ``ds.shape + (n_terms,)``
    names : list of str
        ``["quarter_end_push", ("quarter_month2", "quarter_month3",) "year_sin1", "year_cos1", ...]``.
    """
    per_q = periods_per_quarter(freq)
    if per_q is None or per_q == 1:
        raise ConfigError(f"the hierarchical model needs weekly or monthly data, got freq={freq!r}")
    if quarter_terms not in QUARTER_TERMS:
        raise ConfigError(f"quarter_terms must be one of {', '.join(QUARTER_TERMS)}, got {quarter_terms!r}")
    ds = np.asarray(ds).astype("datetime64[D]")
    nat = np.isnat(ds)
    cal = Calendar(fiscal_year_start)
    pos = cal.position_in_quarter(ds, freq_grain(freq))
    push = ((pos >= per_q - push_periods(freq)) & ~nat).astype(float)
    safe = np.where(nat, np.datetime64("2000-01-01", "D"), ds)
    doy = (safe - safe.astype("datetime64[Y]").astype("datetime64[D]")).astype(np.int64)
    feats = [push]
    names = ["quarter_end_push"]
    if quarter_terms == "months":
        thursday = safe + np.timedelta64(3, "D") if freq_grain(freq) == "week" else safe
        month = cal.position_in_quarter(thursday, "month")
        for m in (1, 2):
            feats.append(((month == m) & ~nat).astype(float))
            names.append(f"quarter_month{m + 1}")
    for k in range(1, yearly_terms + 1):
        angle = 2.0 * np.pi * k * doy / 365.25
        feats += [np.where(nat, 0.0, np.sin(angle)), np.where(nat, 0.0, np.cos(angle))]
        names += [f"year_sin{k}", f"year_cos{k}"]
    return np.stack(feats, axis=-1), names


def simulate_hurdle(
    post: Mapping[str, np.ndarray],
    *,
    cal: np.ndarray,
    x: np.ndarray,
    sample: np.ndarray,
    scale: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Posterior predictive draws of the hurdle model, ``(n_series, h, n_draws)``.

    Draw ``j`` uses posterior sample ``sample[j]`` for every series and period (so sums over
    agents and periods carry the shared parameter uncertainty):
    ``y = 1[u < sigmoid(eta)] * scale * g``, ``u ~ U(0, 1)``, ``g ~ Gamma(shape k, mean
    exp(mu))`` (scale ``exp(mu) / k``).

    Parameters
    ----------
    post : mapping
        Posterior samples: ``a``, ``b``, ``shape`` ``(S, n_series)``; ``gamma``, ``delta``
        ``(S, n_cal)``; ``beta_p``, ``beta_m`` ``(S, n_reg)``.
    cal : array, shape (n_series, h, n_cal)
    x : array, shape (n_series, h, n_reg)
        Lagged standardised regressors of the forecast periods.
    sample : array of int, shape (n_draws,)
    scale : float
        Scale the positive amounts were divided by before fitting.
    """
    a = post["a"][sample].T[:, None, :]  # (n, 1, J)
    b = post["b"][sample].T[:, None, :]
    k = post["shape"][sample].T[:, None, :]
    eta = a + cal @ post["gamma"][sample].T + x @ post["beta_p"][sample].T
    mu = b + cal @ post["delta"][sample].T + x @ post["beta_m"][sample].T
    p = 1.0 / (1.0 + np.exp(-eta))
    hit = rng.random(eta.shape) < p
    amount = rng.gamma(np.broadcast_to(k, eta.shape), np.exp(mu) / k)
    return np.where(hit, scale * amount, 0.0)
