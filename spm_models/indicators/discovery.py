"""Leading-indicator discovery: which series move bookings some periods later?

:func:`discover_leading_indicators` returns one ranked table. A candidate (activities by type,
opportunities created, pipeline added, leads and other indicators; see
:mod:`spm_models.indicators.series`) is called a **leading indicator** only when it passes
three separate checks:

1. **Significant** (:func:`lagged_correlations`). Trend and calendar effects are removed from
   the candidate ``x`` and from bookings ``y`` by least squares on
   :func:`~spm_models.indicators.arrays.calendar_design` (a linear trend, yearly Fourier terms
   and the position in the quarter; regression rather than first differences, which would
   double the noise of weekly bookings and turn a level effect into a derivative). Both are
   then prewhitened with an AR model of ``x`` (:func:`~spm_models.indicators.arrays.prewhiten`),
   so that a persistent candidate does not smear one true lag over its neighbours. Each
   entity's two series are standardised and stacked, and the pooled cross-correlation at
   lag ``l``::

       r(l) = sum_{e,t} x_{e,t-l} y_{e,t} / sqrt(sum x_{e,t-l}^2 * sum y_{e,t}^2)

   (sums over the pairs where both are observed) is computed for ``l = 0..max_lag``. Its
   p-value is corrected for trying every lag *and* every candidate with a max-statistic
   permutation test: after prewhitening the candidate's innovations are close to
   independent, so permuting their order (the same permutation for every entity and every
   candidate) gives the null distribution of the whole table. With ``s_c`` the permutation
   standard deviation of candidate ``c``'s correlations, the studentised maximum is
   ``M_b = max_{c,l} |r_b(c,l)| / s_c`` for permutation ``b`` and

       p_adjusted(c, l) = (1 + #{b : M_b >= |r(c,l)| / s_c}) / (1 + B)

   (Westfall and Young's single-step maxT), which holds the family-wise error rate at
   ``alpha`` over all lags and candidates. The band ``r_band(c) = q_{1-alpha}(M) * s_c`` is
   the correlation a candidate must exceed. Circular shifts would give too few distinct
   permutations on a year of weekly data; full permutations are valid because of the
   prewhitening (checked by simulation: with independent series the smallest p-value falls
   below 0.05 in 4-5 % of runs). Pooling stacks agents rather than averaging their
   correlations, so an agent counts in proportion to its number of weeks, and a candidate
   shared by all agents (a company-wide index) is tested against their common variation.
2. **Stable**. Over time: the correlation at the best lag has the same sign in the first and
   the second half of the bookings window. Across entities (agent and territory levels): the
   entities' own correlations at the best lag have the pooled sign more often than chance
   (one-sided binomial test at ``alpha``); the share whose own best lag is within one period
   of the pooled best lag is reported too.
3. **Useful out of sample** (:func:`out_of_sample_value`): adding the candidate to a
   calendar regression of bookings lowers the mean absolute error of a rolling-origin
   backtest.

A best lag of 0 means the candidate moves *with* bookings, not ahead of them.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import sparse, stats

from spm_models.calendar import DEFAULT_CALENDAR, Calendar, check_grain
from spm_models.data.dataset import Dataset
from spm_models.exceptions import ConfigError, DataError
from spm_models.indicators.arrays import (
    INDICATOR_GRAINS,
    PERIODS_PER_YEAR,
    calendar_design,
    correlation,
    covers_years,
    detrend,
    expanding_fe_errors,
    lag_sums,
    prewhiten,
    standardise,
    to_panel,
)
from spm_models.indicators.series import (
    CANDIDATE_COLUMNS,
    TARGET_COLUMNS,
    bookings_series,
    build_series,
    candidate_series,
    unusable_candidates,
)

__all__ = [
    "bookings_series",
    "candidate_series",
    "unusable_candidates",
    "lagged_correlations",
    "out_of_sample_value",
    "discover_leading_indicators",
    "LAG_COLUMNS",
    "OOS_COLUMNS",
    "RANKED_COLUMNS",
]

LAG_COLUMNS: tuple[str, ...] = (
    "candidate",
    "lag",
    "r",
    "n_pairs",
    "n_entities",
    "r_first_half",
    "r_second_half",
    "sign_agreement",
    "best_lag_share",
    "r_band",
    "p_adjusted",
    "is_best",
    "ar_order",
)
OOS_COLUMNS: tuple[str, ...] = (
    "candidate",
    "lag_used",
    "horizon_used",
    "origins",
    "mae_baseline",
    "mae_with_candidate",
    "oos_improvement",
    "share_origins_improved",
    "oos_holds",
)
RANKED_COLUMNS: tuple[str, ...] = (
    "candidate",
    "level",
    "best_lag",
    "r",
    "p_adjusted",
    "r_band",
    "significant",
    "r_first_half",
    "r_second_half",
    "sign_agreement",
    "best_lag_share",
    "stable",
    "lag_used",
    "horizon_used",
    "oos_improvement",
    "share_origins_improved",
    "oos_holds",
    "verdict",
)
_MIN_PAIRS = 20  # fewest (candidate, bookings) pairs behind a correlation


# --------------------------------------------------------------------------- inputs


def _grid(
    target: pd.DataFrame, candidates: pd.DataFrame, grain: str, calendar: Calendar
) -> tuple[np.ndarray, pd.DatetimeIndex]:
    """Entities of the target, and every period from its first to its last (gaps included)."""
    check_grain(grain, INDICATOR_GRAINS)
    for name, frame, cols in (("target", target, TARGET_COLUMNS), ("candidates", candidates, CANDIDATE_COLUMNS)):
        missing = [c for c in cols if c not in frame]
        if missing:
            maker = "bookings_series" if name == "target" else "candidate_series"
            raise ConfigError(f"the {name} frame lacks column(s) {', '.join(missing)}; build it with {maker}()")
        keys = [c for c in cols if c != "value"]
        if frame.duplicated(subset=keys).any():
            raise DataError(f"the {name} frame has two rows for the same {', '.join(keys)}; sum or drop them first")
    if target.empty:
        raise DataError("the bookings series is empty: there is nothing to explain")
    periods = calendar.period_range(target["period"].min(), target["period"].max(), grain)
    entities = np.asarray(pd.unique(target["entity_id"].astype("str")), dtype=object)
    return entities, periods


def _candidate_panels(
    candidates: pd.DataFrame, entities: np.ndarray, periods: pd.DatetimeIndex
) -> dict[str, np.ndarray]:
    """Candidate name -> (E, T) array, in name order."""
    names = candidates["candidate"].astype("str")
    return {
        str(name): to_panel(part, entities=entities, periods=periods)
        for name, part in candidates.groupby(names, sort=True)
    }


# --------------------------------------------------------------------------- correlations


def _permutation_selector(perms: np.ndarray, max_lag: int) -> sparse.csr_matrix:
    """Sparse 0/1 matrix that sums ``A[pi(b - l), b]`` over ``b``: one row per permutation and lag.

    Its columns index the flattened ``(T + 1) x T`` matrix ``A`` whose extra row ``T`` is zero
    and stands for "no pair" (``b < l``). Shape ``(B (L+1), (T+1) T)``.
    """
    n_b, n_t = perms.shape
    src = np.arange(n_t)[None, :] - np.arange(max_lag + 1)[:, None]  # (L+1, T)
    rows = np.where(src[None] >= 0, perms[:, np.clip(src, 0, None)], n_t)
    cols = (rows * n_t + np.arange(n_t)[None, None, :]).ravel()
    return sparse.csr_matrix(
        (np.ones(len(cols)), cols, np.arange(0, len(cols) + 1, n_t)), shape=(n_b * (max_lag + 1), (n_t + 1) * n_t)
    )


def _permuted_r(x, y, mx, my, selector: sparse.csr_matrix, n_perm: int) -> np.ndarray:
    """Pooled r(l) with the candidate's time order permuted, shape (B, L+1).

    With ``A[a, b] = sum_e x[e, a] y[e, b]`` (and likewise for the two sums of squares over
    the pairs), the lag-l sum after permutation ``pi`` is ``sum_{b >= l} A[pi(b - l), b]``:
    all permutations and lags in one sparse product, whatever the number of entities.
    """
    n_t = x.shape[1]
    mats = np.stack([x.T @ y, (x**2).T @ my.astype(float), mx.astype(float).T @ (y**2)], axis=-1)
    sums = selector @ np.concatenate([mats.reshape(n_t * n_t, 3), np.zeros((n_t, 3))])
    sums = sums.reshape(n_perm, -1, 3)
    return correlation(sums[..., 0], sums[..., 1], sums[..., 2])


def lagged_correlations(
    target: pd.DataFrame,
    candidates: pd.DataFrame,
    *,
    grain: str = "week",
    max_lag: int = 16,
    prewhiten_candidates: bool = True,
    max_ar_order: int = 4,
    n_permutations: int = 999,
    alpha: float = 0.05,
    seed: int = 0,
    calendar: Calendar = DEFAULT_CALENDAR,
) -> pd.DataFrame:
    """Cross-correlation of each candidate at ``t - lag`` with bookings at ``t``, with significance.

    Method (module docstring): per entity, trend and calendar terms are removed from both
    series (:func:`~spm_models.indicators.arrays.detrend`), both are filtered with the
    candidate's AR model (:func:`~spm_models.indicators.arrays.prewhiten`) and standardised;
    the pooled correlation is ``r(l) = sum x_{e,t-l} y_{e,t} / sqrt(sum x^2 sum y^2)`` over the
    observed pairs of all entities, and ``p_adjusted`` comes from the max-statistic
    permutation test over all lags and candidates.

    Parameters
    ----------
    target : DataFrame
        ``entity_id, period, value``: bookings (:func:`bookings_series`).
    candidates : DataFrame
        ``entity_id, period, candidate, value`` (:func:`candidate_series`).
    grain : {"week", "month", "quarter"}, default "week"
        Grain of the periods (sets the calendar terms).
    max_lag : int, default 16
        Lags ``0..max_lag`` periods are tried.
    prewhiten_candidates : bool, default True
        Filter both series with the candidate's AR model, order chosen by AIC up to
        ``max_ar_order``. Without it a persistent candidate correlates at many lags at once
        and the permutation test, which assumes independent innovations, is too lenient.
    max_ar_order : int, default 4
    n_permutations : int, default 999
        Permutations of the max-statistic test; the smallest p-value is ``1 / (B + 1)``.
    alpha : float, default 0.05
        Family-wise error rate of the band ``r_band``.
    seed : int, default 0
        Seed of the permutations (same seed, same p-values).

    Returns
    -------
    DataFrame
        One row per candidate and lag (:data:`LAG_COLUMNS`):

        - ``r``: pooled correlation (NaN with fewer than 20 pairs), ``n_pairs``, ``n_entities``;
        - ``r_first_half``, ``r_second_half``: the same over the pairs whose bookings period
          lies in the first or the second half of the window;
        - ``sign_agreement``: share of entities whose own correlation at this lag has the
          sign of ``r``; ``best_lag_share``: share of entities whose own best lag (largest
          ``|r_e|``) is within one period of this lag (entities with 20 pairs at every lag;
          NaN below three entities);
        - ``r_band``: the family-wise band ``|r|`` must exceed; ``p_adjusted``;
        - ``is_best``: the lag of largest ``|r|``; ``ar_order``: prewhitening order.

    Raises
    ------
    ConfigError
        A bad argument, or a frame without the expected columns.
    DataError
        No candidates, duplicate rows, or too few periods for ``max_lag`` (each lag needs 20
        periods of overlap).
    """
    if isinstance(max_lag, bool) or not isinstance(max_lag, (int, np.integer)) or max_lag < 0:
        raise ConfigError(f"max_lag must be a whole number of periods, 0 or more (got {max_lag!r})")
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must be between 0 and 1 (got {alpha!r})")
    if n_permutations < 19:
        raise ConfigError(f"n_permutations must be at least 19 to reach p < 0.05 (got {n_permutations!r})")
    entities, periods = _grid(target, candidates, grain, calendar)
    n_t = len(periods)
    if n_t - max_lag < _MIN_PAIRS:
        fix = (
            f"lower max_lag to {n_t - _MIN_PAIRS} or use a finer grain"
            if n_t > _MIN_PAIRS
            else "use a finer grain or a longer history"
        )
        raise DataError(
            f"bookings cover {n_t} {grain}s, too few to try lags up to {max_lag}: each lag needs "
            f"{_MIN_PAIRS} {grain}s of overlap; {fix}"
        )
    xs = _candidate_panels(candidates, entities, periods)
    if not xs:
        raise DataError("there are no candidate series to test")
    design, _ = calendar_design(periods, grain, calendar=calendar)
    y_detrended = detrend(to_panel(target, entities=entities, periods=periods), design)
    rng = np.random.default_rng(seed)
    selector = _permutation_selector(np.argsort(rng.random((n_permutations, n_t)), axis=1), max_lag)
    halves = ((0, n_t // 2), (n_t // 2, n_t))
    rows, null = [], []
    for name, values in xs.items():
        x, y, order = detrend(values, design), y_detrended, 0
        if prewhiten_candidates:
            x, y, order = prewhiten(x, y, max_order=max_ar_order)
        mx, my = ~np.isnan(x), ~np.isnan(y)
        xz, yz = standardise(x), standardise(y)
        full = lag_sums(xz, yz, mx, my, max_lag=max_lag)
        n_pairs = full[3].sum(axis=0)
        enough = n_pairs >= _MIN_PAIRS
        per_half = [correlation(*lag_sums(xz, yz, mx, my, max_lag=max_lag, t_range=h)[:3].sum(axis=1)) for h in halves]
        null_r = _permuted_r(xz, yz, mx, my, selector, n_permutations)
        null.append(np.where(enough[None, :], null_r, np.nan))
        frame = pd.DataFrame(
            {
                "candidate": name,
                "lag": np.arange(max_lag + 1),
                "r": np.where(enough, correlation(*full[:3].sum(axis=1)), np.nan),
                "n_pairs": n_pairs.astype(np.int64),
                "n_entities": int((full[3] > 0).any(axis=1).sum()),
                "r_first_half": per_half[0],
                "r_second_half": per_half[1],
                "ar_order": order,
            }
        )
        rows.append(_entity_agreement(frame, full))
    return _add_significance(pd.concat(rows, ignore_index=True), np.stack(null, axis=1), alpha)


def _entity_agreement(frame: pd.DataFrame, sums: np.ndarray) -> pd.DataFrame:
    """Add ``sign_agreement``, ``best_lag_share`` and ``is_best`` to one candidate's lag rows."""
    r = frame["r"].to_numpy()
    lags = frame["lag"].to_numpy()
    own = np.where(sums[3] >= _MIN_PAIRS, correlation(*sums[:3]), np.nan)  # (E, L+1)
    own = own[np.isfinite(own).all(axis=1)]
    frame["sign_agreement"] = np.nan
    frame["best_lag_share"] = np.nan
    if len(own) >= 3 and np.isfinite(r).all():
        frame["sign_agreement"] = (np.sign(own) == np.sign(r)[None, :]).mean(axis=0)
        own_best = np.argmax(np.abs(own), axis=1)
        frame["best_lag_share"] = (np.abs(own_best[:, None] - lags[None, :]) <= 1).mean(axis=0)
    best = int(np.nanargmax(np.abs(r))) if np.isfinite(r).any() else -1
    frame["is_best"] = lags == best
    return frame


def _add_significance(table: pd.DataFrame, null: np.ndarray, alpha: float) -> pd.DataFrame:
    """Westfall-Young single-step maxT p-values and bands; ``null`` has shape (B, C, L+1)."""
    names = list(dict.fromkeys(table["candidate"]))
    finite = np.isfinite(null)
    n_fin = finite.sum(axis=(0, 2))
    sd = np.sqrt(np.where(finite, null**2, 0.0).sum(axis=(0, 2)) / np.maximum(n_fin, 1))  # (C,)
    sd = np.where(sd > 0, sd, np.nan)
    t_null = np.where(finite, np.abs(null), 0.0) / np.where(np.isnan(sd), np.inf, sd)[None, :, None]
    max_t = np.sort(t_null.max(axis=(1, 2)))  # (B,)
    c_index = pd.Index(names).get_indexer(table["candidate"])
    t_obs = np.abs(table["r"].to_numpy()) / sd[c_index]
    exceed = len(max_t) - np.searchsorted(max_t, t_obs, side="left")
    table["p_adjusted"] = np.where(np.isnan(t_obs), np.nan, (1 + exceed) / (1 + len(max_t)))
    table["r_band"] = np.quantile(max_t, 1 - alpha) * sd[c_index]
    return table[list(LAG_COLUMNS)]


# --------------------------------------------------------------------------- out of sample


def out_of_sample_value(
    target: pd.DataFrame,
    candidates: pd.DataFrame,
    *,
    lags: Mapping[str, int],
    grain: str = "week",
    horizon: int = 4,
    min_train: int | None = None,
    calendar: Calendar = DEFAULT_CALENDAR,
) -> pd.DataFrame:
    """Does a candidate at its lag improve a rolling-origin backtest of bookings?

    Two models are fitted by pooled least squares over entities, with an intercept per entity
    (the within estimator), on an expanding window:

    - baseline: ``y_{e,t} / s_e = a_e + d_t' g + u_{e,t}``, ``d_t`` the trend and calendar
      terms of :func:`~spm_models.indicators.arrays.calendar_design` (the yearly terms only
      when the first training window spans two years, the quarter terms only when it spans
      one);
    - with the candidate: the same plus ``b z_{e,t-l}``,

    where ``s_e`` is the entity's mean bookings and ``z`` its candidate standardised, both over
    the first training window (so no statistic looks past an origin; entities with fewer than
    8 periods or no bookings there are left out). A candidate leading by ``l`` periods can
    inform forecasts up to ``l`` periods ahead, so the backtest forecasts ``h = min(horizon,
    l)`` periods from every origin ``o = min_train .. T - h`` (default ``min_train``: two
    years of periods, or less to keep four forecasts, but at least half the window) and
    scores those ``h`` periods, the same cells for both models. Then

        oos_improvement = 1 - sum |y - yhat_with| / sum |y - yhat_baseline|

    the relative reduction of the MAE (and of the MASE, whose scale cancels), and
    ``share_origins_improved`` is the share of origins whose error the candidate lowers.
    ``oos_holds``: the improvement is positive and holds at more than half of the origins.
    A lag of 0 forecasts nothing and gets no backtest (``origins`` = 0).

    Parameters
    ----------
    target, candidates : DataFrame
        As for :func:`lagged_correlations`.
    lags : mapping of str to int
        Candidate -> lag to test; candidates not listed are skipped.
    grain : {"week", "month", "quarter"}, default "week"
    horizon : int, default 4
        Longest forecast horizon, in periods.
    min_train : int, optional
        Periods in the first training window.

    Returns
    -------
    DataFrame
        One row per candidate (:data:`OOS_COLUMNS`); ``mae_*`` are per entity and period, in
        the currency of bookings.

    Raises
    ------
    ConfigError
        ``horizon`` below 1, or a bad frame.
    DataError
        Too few periods for a backtest.
    """
    if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 1:
        raise ConfigError(f"horizon must be a whole number of periods, 1 or more (got {horizon!r})")
    entities, periods = _grid(target, candidates, grain, calendar)
    n_t = len(periods)
    if min_train is None:
        two_years = int(np.floor(2 * PERIODS_PER_YEAR[grain]))
        min_train = max(n_t // 2, min(two_years, n_t - 4 * horizon))
    if min_train < 8 or min_train >= n_t:
        raise DataError(f"bookings cover {n_t} {grain}s: too few for a backtest that trains on {min_train} first")
    design, _ = calendar_design(periods, grain, yearly=covers_years(min_train, grain, 2), calendar=calendar)
    if not covers_years(min_train, grain, 1):
        design = design[:, :2]  # the position in the quarter needs a year of data to be estimated
    calendar = np.broadcast_to(design[None, :, 1:], (len(entities), n_t, design.shape[1] - 1))
    y = to_panel(target, entities=entities, periods=periods)
    wanted = candidates[candidates["candidate"].astype("str").isin([str(k) for k in lags])]
    rows = []
    for name, values in _candidate_panels(wanted, entities, periods).items():
        lag = int(lags[name])
        h = min(horizon, lag)
        row = {"candidate": name, "lag_used": lag, "horizon_used": max(h, 0), "origins": 0, "oos_holds": False}
        if h < 1 or lag >= n_t - min_train:
            rows.append(row)
            continue
        x_lagged = np.full_like(values, np.nan)
        x_lagged[:, lag:] = values[:, : n_t - lag]
        ok = ~np.isnan(y) & ~np.isnan(x_lagged)
        first = ok & (np.arange(n_t) < min_train)[None, :]
        scale = np.where(first, y, 0.0).sum(axis=1) / np.maximum(first.sum(axis=1), 1)
        ok &= ((first.sum(axis=1) >= 8) & (scale > 0))[:, None]
        y_scaled = y / np.where(scale > 0, scale, 1.0)[:, None]
        z = standardise(x_lagged, first & ok)[..., None]
        origins = np.arange(min_train, n_t - h + 1)
        base, cells = expanding_fe_errors(y_scaled, calendar, ok, origins, h, weights=scale)
        with_x, _ = expanding_fe_errors(y_scaled, np.concatenate([calendar, z], axis=2), ok, origins, h, weights=scale)
        scored = cells > 0
        if not scored.any():
            rows.append(row)
            continue
        mae_base, mae_with = base.sum() / cells.sum(), with_x.sum() / cells.sum()
        improvement = 1 - mae_with / mae_base if mae_base > 0 else np.nan
        share = float((with_x[scored] < base[scored]).mean())
        row.update(
            origins=int(scored.sum()),
            mae_baseline=mae_base,
            mae_with_candidate=mae_with,
            oos_improvement=improvement,
            share_origins_improved=share,
            oos_holds=bool(improvement > 0 and share > 0.5),
        )
        rows.append(row)
    return pd.DataFrame(rows, columns=list(OOS_COLUMNS))


# --------------------------------------------------------------------------- the ranked table


def _verdict(row: dict, *, level: str, grain: str, n_lags: int, n_candidates: int) -> str:
    """Plain-words verdict of one candidate (see :func:`discover_leading_indicators`)."""
    if not row["significant"]:
        p = row["p_adjusted"]
        shown = "p undefined" if pd.isna(p) else f"p = {p:.2f}"
        return (
            f"not significant after correcting for {n_lags} lags x {n_candidates} "
            f"candidate{'s' if n_candidates != 1 else ''} ({shown})"
        )
    if row["best_lag"] == 0:
        return f"moves with bookings in the same {grain} (best lag 0): coincident, not leading"
    if not row["stable_over_time"]:
        return (
            f"unstable: the correlation changes sign between the first and second half of the data "
            f"(r = {row['r_first_half']:+.2f}, then {row['r_second_half']:+.2f})"
        )
    if not row["stable_across_entities"]:
        return f"unstable across {level}s: only {row['sign_agreement']:.0%} of {level}s show the same direction"
    if pd.isna(row["oos_improvement"]):
        return "could not be backtested (too little data at this lag)"
    if row["oos_improvement"] <= 0:
        return (
            f"does not improve forecasts out of sample (MAE {-row['oos_improvement']:.1%} worse "
            f"over {row['origins']} backtest origins)"
        )
    if not row["oos_holds"]:
        return (
            f"improves forecasts at only {row['share_origins_improved']:.0%} of {row['origins']} backtest "
            f"origins (MAE {row['oos_improvement']:.1%} better overall)"
        )
    return "leading indicator"


def discover_leading_indicators(
    dataset: Dataset | Mapping[str, pd.DataFrame],
    *,
    level: str = "company",
    grain: str = "week",
    max_lag: int = 16,
    horizon: int = 4,
    alpha: float = 0.05,
    n_permutations: int = 999,
    seed: int = 0,
    calendar: Calendar | None = None,
) -> pd.DataFrame:
    """Rank candidate leading indicators of bookings at one level, with a verdict for each.

    Runs :func:`lagged_correlations` on :func:`bookings_series` and :func:`candidate_series`,
    then :func:`out_of_sample_value` at each candidate's best lag, and combines them (module
    docstring): ``verdict`` is ``"leading indicator"`` only when the candidate is

    - significant: ``p_adjusted < alpha`` at its best lag ``l* = argmax_l |r(l)|``, with
      ``l* >= 1``;
    - stable: ``sign(r_first_half) = sign(r_second_half) = sign(r)``, and at agent and
      territory level ``sign_agreement`` above one half by a one-sided binomial test at
      ``alpha``;
    - useful: ``oos_holds`` (lower backtest MAE overall and at most origins);

    otherwise it names the first check that failed, in that order, in plain words.

    Parameters
    ----------
    dataset : Dataset or mapping of str to DataFrame
        Typed canonical tables (:func:`spm_models.data.validation.validate`).
    level : {"company", "territory", "agent"}, default "company"
    grain : {"week", "month", "quarter"}, default "week"
    max_lag : int, default 16
        Longest lead tried, in periods.
    horizon : int, default 4
        Forecast horizon of the backtest (a candidate leading by fewer periods is scored on
        forecasts as far ahead as it leads).
    alpha : float, default 0.05
    n_permutations : int, default 999
    seed : int, default 0
    calendar : Calendar, optional
        Fiscal quarters of the calendar terms; default the dataset's.

    Returns
    -------
    DataFrame
        One row per candidate (:data:`RANKED_COLUMNS`), leading indicators first, then by
        ``p_adjusted`` and ``|r|``:

        - ``best_lag`` (periods), ``r`` (pooled prewhitened correlation there),
          ``p_adjusted`` and ``r_band`` (corrected for all lags and candidates),
          ``significant``;
        - ``r_first_half``, ``r_second_half``, ``sign_agreement`` and ``best_lag_share``
          (entity measures: NaN at company level), ``stable``;
        - ``lag_used``, ``horizon_used``, ``oos_improvement`` (relative MAE reduction),
          ``share_origins_improved``, ``oos_holds`` (see :func:`out_of_sample_value`);
        - ``verdict``.

        Candidates that cannot be tested (:func:`unusable_candidates`, or too little data)
        come last, with the reason as verdict and the other columns empty.

    Raises
    ------
    ConfigError
        Unknown level or grain, or a bad argument.
    DataError
        No bookings, no candidates, or too few periods for ``max_lag``.
    """
    if calendar is None:
        calendar = dataset.fiscal_calendar if isinstance(dataset, Dataset) else DEFAULT_CALENDAR
    target, candidates = build_series(dataset, level=level, grain=grain, calendar=calendar)
    lagged = lagged_correlations(
        target,
        candidates,
        grain=grain,
        max_lag=max_lag,
        alpha=alpha,
        n_permutations=n_permutations,
        seed=seed,
        calendar=calendar,
    )
    tested = list(dict.fromkeys(lagged["candidate"]))
    best = lagged[lagged["is_best"]].rename(columns={"lag": "best_lag"}).drop(columns="is_best")
    lags = dict(zip(best["candidate"], best["best_lag"]))
    oos = out_of_sample_value(target, candidates, lags=lags, grain=grain, horizon=horizon, calendar=calendar)
    table = best.merge(oos, on="candidate", how="left")
    table["level"] = level
    table["significant"] = table["p_adjusted"] < alpha
    r1, r2 = np.sign(table["r_first_half"]), np.sign(table["r_second_half"])
    table["stable_over_time"] = (r1 == r2) & (r1 == np.sign(table["r"])) & (r1 != 0)
    n_ent = table["n_entities"].to_numpy()
    agree = np.rint(table["sign_agreement"].fillna(0).to_numpy() * n_ent).astype(int)
    # one binomial test per candidate (a handful), not per entity
    p_agree = np.array(
        [
            stats.binomtest(int(k), int(n), 0.5, alternative="greater").pvalue if n > 0 else 1.0
            for k, n in zip(agree, n_ent)
        ]
    )
    table["stable_across_entities"] = table["sign_agreement"].isna() | (p_agree < alpha)
    table["stable"] = table["stable_over_time"] & table["stable_across_entities"]
    table["verdict"] = [
        _verdict(row, level=level, grain=grain, n_lags=max_lag + 1, n_candidates=len(tested))
        for row in table.to_dict("records")
    ]
    table = table.assign(_rank=table["verdict"] != "leading indicator", _abs=-table["r"].abs())
    table = table.sort_values(["_rank", "p_adjusted", "_abs"], kind="stable", na_position="last", ignore_index=True)
    untested = {
        c: "not tested: too few observed periods overlap bookings, or the series is constant"
        for c in tested
        if c not in set(best["candidate"])
    }
    untested.update(unusable_candidates(dataset))
    if untested:
        extra = pd.DataFrame({"candidate": list(untested), "level": level, "verdict": list(untested.values())})
        table = pd.concat([table, extra], ignore_index=True)
    for col in ("best_lag", "lag_used", "horizon_used"):
        table[col] = table[col].astype("Int64")
    for col in ("significant", "stable", "oos_holds"):
        table[col] = table[col].astype("boolean")
    return table[list(RANKED_COLUMNS)]
