"""Leading-indicator discovery: which series move bookings some periods later?

:func:`discover_leading_indicators` returns one ranked table. A candidate (activities by type,
opportunities created, pipeline added, leads and other indicators; see
:mod:`spm_models.indicators.series`) is called a **leading indicator** only when it passes
three separate checks:

1. **Significant** (:func:`lagged_correlations`). Trend and calendar effects are removed from
   the candidate and from bookings by least squares on
   :func:`~spm_models.indicators.arrays.calendar_design` (a linear trend, yearly Fourier terms
   and the position in the quarter). The test pools every agent (the default level): each
   candidate is tested on its own units (an agent's activity per agent, a territory's leads per
   territory, a company-wide index once, against the sum of all agents' standardised bookings),
   with two statistics per lag (:mod:`spm_models.indicators.significance`):

   - ``prewhitened``: the Box-Jenkins cross-correlation of the candidate's innovations with
     bookings filtered by the candidate's AR model; sharp in the lag;
   - ``gls``: the generalised-least-squares slope of bookings (AR errors) on the candidate
     ``l`` periods earlier, a distributed-lag regression; it uses all the variance of a
     persistent candidate, which the prewhitened statistic throws away.

   Their p-values are corrected for trying every lag, every candidate *and* both statistics
   with one max-statistic permutation test (Westfall and Young's step-down maxT,
   :func:`~spm_models.indicators.significance.max_t_pvalues`). The permutations reorder the
   candidates' innovations in time (the same order for every unit and candidate) and, for
   ``gls``, recolour them with the candidate's own AR model, so a persistent candidate is
   judged against persistent noise (the right null for a slowly moving index) and every
   dependence between agents and candidates is kept. Bookings enter on a log-like scale
   (:func:`~spm_models.indicators.arrays.target_scale`) so that one huge deal does not
   decide the test.

   The candidates are decided by forward selection (:mod:`spm_models.indicators.selection`):
   the ones found are taken out of bookings and the others tested again, and a candidate that
   only moves with one found (an agent's calls with its demos) is dropped as *explained by* it.
2. **Stable**. Over time: the statistic at the best lag has the same sign in the first and the
   second half of the bookings window. Across units (when a candidate has three or more):
   the units' own correlations at the best lag have the pooled sign more often than chance
   (one-sided binomial test at ``alpha``); the share whose own best lag is within one period
   of the pooled best lag is reported too.
3. **Useful out of sample** (:func:`~spm_models.indicators.backtest.out_of_sample_value`):
   adding the candidate to a calendar regression of its units' bookings lowers the mean
   absolute error of a rolling-origin backtest.

A best lag of 0 means the candidate moves *with* bookings, not ahead of them.

The power of this procedure, and its false-positive rate, are measured over seeds of the
synthetic organisation by ``bench/indicators.py`` (``make bench-indicators``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse, stats

from spm_models.calendar import DEFAULT_CALENDAR, Calendar
from spm_models.data.dataset import Dataset
from spm_models.exceptions import ConfigError, DataError
from spm_models.indicators.arrays import calendar_design, detrend, standardise, target_scale
from spm_models.indicators.backtest import out_of_sample_value
from spm_models.indicators.selection import Finding, select_indicators
from spm_models.indicators.series import build_series, panels, unusable_candidates
from spm_models.indicators.significance import (
    MIN_PAIRS,
    STATISTICS,
    candidate_evidence,
    permutation_selector,
)

__all__ = [
    "lagged_correlations",
    "known_lag_test",
    "discover_leading_indicators",
    "LAG_COLUMNS",
    "RANKED_COLUMNS",
]

LAG_COLUMNS: tuple[str, ...] = (
    "candidate",
    "lag",
    "statistic",
    "r",
    "z_prewhitened",
    "z_gls",
    "n_pairs",
    "n_units",
    "r_first_half",
    "r_second_half",
    "sign_agreement",
    "sign_p",
    "best_lag_share",
    "z_band",
    "p_adjusted",
    "is_best",
    "ar_order",
    "round",
    "given",
    "accepted",
    "p_conditional",
    "explained_by",
)
RANKED_COLUMNS: tuple[str, ...] = (
    "candidate",
    "level",
    "best_lag",
    "statistic",
    "r",
    "z",
    "p_adjusted",
    "z_band",
    "significant",
    "n_units",
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
    "given",
    "explained_by",
    "verdict",
)


def _check_args(max_lag, alpha, n_permutations, max_ar_order) -> None:
    if isinstance(max_lag, bool) or not isinstance(max_lag, (int, np.integer)) or max_lag < 0:
        raise ConfigError(f"max_lag must be a whole number of periods, 0 or more (got {max_lag!r})")
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must be between 0 and 1 (got {alpha!r})")
    if isinstance(n_permutations, bool) or not isinstance(n_permutations, (int, np.integer)) or n_permutations < 19:
        raise ConfigError(
            f"n_permutations must be a whole number, at least 19 to reach p < 0.05 (got {n_permutations!r})"
        )
    if isinstance(max_ar_order, bool) or not isinstance(max_ar_order, (int, np.integer)) or max_ar_order < 0:
        raise ConfigError(f"max_ar_order must be a whole number, 0 or more (got {max_ar_order!r})")


@dataclass(frozen=True)
class _Prepared:
    """What every test of one data set shares: bookings ready to test, the candidates, the permutations."""

    y_std: np.ndarray
    xs: dict[str, np.ndarray]
    design: np.ndarray
    selector: sparse.csr_matrix


def _prepare(
    target: pd.DataFrame,
    candidates: pd.DataFrame,
    *,
    grain: str,
    max_lag: int,
    n_permutations: int,
    seed: int,
    calendar,
) -> _Prepared:
    """Bookings scaled, detrended and standardised per entity; candidate arrays; the permutations."""
    _, periods, y, xs = panels(target, candidates, grain=grain, calendar=calendar)
    n_t = len(periods)
    if n_t - max_lag < MIN_PAIRS:
        fix = (
            f"lower max_lag to {n_t - MIN_PAIRS} or use a finer grain"
            if n_t > MIN_PAIRS
            else "use a finer grain or a longer history"
        )
        raise DataError(
            f"bookings cover {n_t} {grain}s, too few to try lags up to {max_lag}: each lag needs "
            f"{MIN_PAIRS} {grain}s of overlap; {fix}"
        )
    if not xs:
        raise DataError("there are no candidate series to test")
    design, _ = calendar_design(periods, grain, calendar=calendar)
    y_detrended = detrend(target_scale(y), design)
    y_std = np.where(np.isnan(y_detrended), np.nan, standardise(y_detrended))
    rng = np.random.default_rng(seed)
    selector = permutation_selector(np.argsort(rng.random((n_permutations, n_t)), axis=1), max_lag)
    return _Prepared(y_std, xs, design, selector)


def known_lag_test(
    target: pd.DataFrame,
    candidates: pd.DataFrame,
    *,
    candidate: str,
    lag: int,
    sign: int = 1,
    statistic: str = "gls",
    grain: str = "week",
    max_ar_order: int = 4,
    n_permutations: int = 999,
    seed: int = 0,
    calendar: Calendar = DEFAULT_CALENDAR,
) -> dict:
    """One pre-specified test: does ``candidate`` move bookings ``lag`` periods later, in direction ``sign``?

    The test an analyst who already knew the lag, the direction and the form of an effect would
    run: one statistic of :mod:`spm_models.indicators.significance` (default ``gls``, the
    distributed-lag regression) at one lag, one-sided, against the same permutation null as
    discovery, with no correction (nothing else was tried). ``bench/indicators.py`` uses it,
    given the synthetic organisation's planted lags, as the oracle that shows how much power
    the search over lags and candidates costs.

    ``p = (1 + #{b : sign z_b >= sign z}) / (1 + B)``.

    Returns
    -------
    dict
        ``candidate, lag, statistic, z, p``.

    Raises
    ------
    ConfigError
        Unknown statistic, a sign other than +1 or -1, or a candidate not in the frame.
    DataError
        As :func:`lagged_correlations`.
    """
    if statistic not in STATISTICS:
        raise ConfigError(f"unknown statistic {statistic!r}: choose one of {', '.join(STATISTICS)}")
    if sign not in (1, -1):
        raise ConfigError(f"sign must be 1 or -1 (got {sign!r})")
    _check_args(lag, 0.05, n_permutations, max_ar_order)
    wanted = candidates[candidates["candidate"].astype("str") == candidate]
    if wanted.empty:
        raise ConfigError(f"{candidate!r} is not a candidate in these data")
    prep = _prepare(
        target, wanted, grain=grain, max_lag=lag, n_permutations=n_permutations, seed=seed, calendar=calendar
    )
    ev = candidate_evidence(
        prep.xs[candidate],
        prep.y_std,
        design=prep.design,
        selector=prep.selector,
        n_permutations=n_permutations,
        max_lag=lag,
        max_ar_order=max_ar_order,
    )
    k = STATISTICS.index(statistic)
    z = float(ev.z[k, lag]) if ev is not None else float("nan")
    if not np.isfinite(z):
        return {"candidate": candidate, "lag": lag, "statistic": statistic, "z": z, "p": float("nan")}
    null = sign * ev.null[:, k, lag]
    p = (1 + int((null[np.isfinite(null)] >= sign * z).sum())) / (1 + n_permutations)
    return {"candidate": candidate, "lag": lag, "statistic": statistic, "z": z, "p": p}


def lagged_correlations(
    target: pd.DataFrame,
    candidates: pd.DataFrame,
    *,
    grain: str = "week",
    max_lag: int = 16,
    max_ar_order: int = 4,
    n_permutations: int = 999,
    alpha: float = 0.05,
    seed: int = 0,
    calendar: Calendar = DEFAULT_CALENDAR,
) -> pd.DataFrame:
    """Both lagged statistics of each candidate against bookings, with family-wise p-values.

    Method: module docstring and :mod:`spm_models.indicators.significance`.

    Parameters
    ----------
    target : DataFrame
        ``entity_id, period, value``: bookings
        (:func:`~spm_models.indicators.series.bookings_series`).
    candidates : DataFrame
        ``entity_id, period, candidate, value``
        (:func:`~spm_models.indicators.series.candidate_series`).
    grain : {"week", "month", "quarter"}, default "week"
        Grain of the periods (sets the calendar terms).
    max_lag : int, default 16
        Lags ``0..max_lag`` periods are tried.
    max_ar_order : int, default 4
        Highest order of the AR models of candidates and bookings (chosen by BIC).
    n_permutations : int, default 999
        Permutations of the max-statistic test; the smallest p-value is ``1 / (B + 1)``.
    alpha : float, default 0.05
        Family-wise error rate of the band ``z_band``.
    seed : int, default 0
        Seed of the permutations (same seed, same p-values).

    Returns
    -------
    DataFrame
        One row per candidate and lag (:data:`LAG_COLUMNS`):

        - ``statistic``: the one of ``prewhitened`` and ``gls`` that is stronger (relative to
          its null) at this lag; ``r``: that statistic as a correlation (for ``prewhitened``
          the prewhitened cross-correlation); ``z_prewhitened``, ``z_gls``: both statistics
          as t-values (NaN with fewer than 20 pairs); ``n_pairs``, ``n_units``;
        - ``r_first_half``, ``r_second_half``: ``r`` over the pairs whose bookings period
          lies in the first or the second half of the window;
        - ``sign_agreement``: share of units whose own ``r`` at this lag has the sign of the
          pooled one, ``sign_p`` the one-sided binomial p-value of that share against one
          half; ``best_lag_share``: share of units whose own best lag is within one period of
          this lag (units with 20 pairs at every lag; NaN below three units);
        - ``z_band``: the studentised value a statistic must exceed (family-wise at
          ``alpha``); ``p_adjusted``: the smaller of the two statistics' adjusted p-values;
        - ``is_best``: the lag where the stronger statistic is strongest; ``ar_order``: the
          order of the candidate's AR model.

    Raises
    ------
    ConfigError
        A bad argument, or a frame without the expected columns.
    DataError
        No candidates, duplicate rows, or too few periods for ``max_lag`` (each lag needs 20
        periods of overlap).
    """
    _check_args(max_lag, alpha, n_permutations, max_ar_order)
    prep = _prepare(
        target, candidates, grain=grain, max_lag=max_lag, n_permutations=n_permutations, seed=seed, calendar=calendar
    )
    findings = select_indicators(
        prep.y_std,
        prep.xs,
        design=prep.design,
        selector=prep.selector,
        n_permutations=n_permutations,
        max_lag=max_lag,
        max_ar_order=max_ar_order,
        alpha=alpha,
    )
    if not findings:
        return pd.DataFrame(columns=list(LAG_COLUMNS))
    frames = [_lag_rows(name, f) for name, f in findings.items()]
    return pd.concat(frames, ignore_index=True)[list(LAG_COLUMNS)]


def _lag_rows(name: str, finding: Finding) -> pd.DataFrame:
    """The rows of one candidate: per lag, the stronger statistic and what it shows."""
    ev, p, t = finding.evidence, finding.p, finding.studentised
    n_l = ev.z.shape[1]
    lags = np.arange(n_l)
    k = np.argmax(np.where(np.isfinite(t), t, -np.inf), axis=0)  # (L+1,)
    p_lag = np.nanmin(np.where(np.isnan(p), np.inf, p), axis=0)
    frame = pd.DataFrame(
        {
            "candidate": name,
            "lag": lags,
            "statistic": np.array(STATISTICS)[k],
            "r": ev.r[k, lags],
            "z_prewhitened": ev.z[0],
            "z_gls": ev.z[1],
            "n_pairs": ev.n_pairs,
            "n_units": ev.n_units,
            "r_first_half": ev.r_halves[0, k, lags],
            "r_second_half": ev.r_halves[1, k, lags],
            "sign_agreement": np.nan,
            "sign_p": np.nan,
            "best_lag_share": np.nan,
            "z_band": finding.band,
            "p_adjusted": np.where(np.isfinite(p_lag), p_lag, np.nan),
            "is_best": lags == finding.best[1],
            "ar_order": ev.ar_order,
            "round": finding.round,
            "given": ", ".join(finding.given),
            "accepted": finding.accepted,
            "p_conditional": finding.p_conditional,
            "explained_by": finding.explained_by,
        }
    )
    own = ev.unit_r[:, k, lags]  # (U, L+1): each unit's r of the stronger statistic
    own = own[np.isfinite(own).all(axis=1)]
    r = frame["r"].to_numpy()
    if len(own) >= 3 and np.isfinite(r).all():
        agree = (np.sign(own) == np.sign(r)[None, :]).sum(axis=0)
        frame["sign_agreement"] = agree / len(own)
        frame["sign_p"] = stats.binom.sf(agree - 1, len(own), 0.5)
        own_best = np.argmax(np.abs(own), axis=1)
        frame["best_lag_share"] = (np.abs(own_best[:, None] - lags[None, :]) <= 1).mean(axis=0)
    return frame


# --------------------------------------------------------------------------- the ranked table


def _verdict(row: dict, *, grain: str, n_lags: int, n_candidates: int) -> str:
    """Plain-words verdict of one candidate (see :func:`discover_leading_indicators`)."""
    if row["explained_by"]:
        return (
            f"moves with {row['explained_by']} and adds nothing beyond it (p = {row['p_conditional']:.2f} "
            "once the other indicators found are taken out of bookings)"
        )
    if not row["significant"]:
        p = row["p_adjusted"]
        shown = "p undefined" if pd.isna(p) else f"p = {p:.2f}"
        given = f", with {row['given']} taken out of bookings" if row["given"] else ""
        return (
            f"not significant after correcting for {n_lags} lags x {n_candidates} "
            f"candidate{'s' if n_candidates != 1 else ''} x {len(STATISTICS)} tests ({shown}{given})"
        )
    if row["best_lag"] == 0:
        return f"moves with bookings in the same {grain} (best lag 0): coincident, not leading"
    if not row["stable_over_time"]:
        return (
            f"unstable: the relationship changes sign between the first and second half of the data "
            f"(r = {row['r_first_half']:+.2f}, then {row['r_second_half']:+.2f})"
        )
    if not row["stable_across_units"]:
        return (
            f"unstable across the {int(row['n_units'])} series it was tested on: only "
            f"{row['sign_agreement']:.0%} show the same direction"
        )
    if pd.isna(row["oos_improvement"]):
        return "could not be backtested (too little data at this lag)"
    if not row["oos_holds"]:
        return (
            f"does not improve forecasts out of sample (squared error {-row['oos_improvement']:.2%} worse "
            f"over {row['origins']} backtest origins)"
        )
    return "leading indicator"


def discover_leading_indicators(
    dataset: Dataset | Mapping[str, pd.DataFrame],
    *,
    level: str = "agent",
    grain: str = "week",
    max_lag: int = 16,
    horizon: int = 4,
    alpha: float = 0.05,
    n_permutations: int = 999,
    seed: int = 0,
    calendar: Calendar | None = None,
) -> pd.DataFrame:
    """Rank candidate leading indicators of bookings, with a verdict for each.

    Runs :func:`lagged_correlations` on the bookings and candidate series of ``level``
    (:func:`~spm_models.indicators.series.build_series`), then
    :func:`~spm_models.indicators.backtest.out_of_sample_value` at each candidate's best lag, and
    combines them (module docstring): ``verdict`` is ``"leading indicator"`` only when the
    candidate is

    - selected: significant (``p_adjusted < alpha`` at its best lag ``l*``, where its stronger
      statistic is strongest, with ``l* >= 1``) in its round of the forward selection, and not
      explained by another indicator found (:mod:`spm_models.indicators.selection`);
    - stable: ``sign(r_first_half) = sign(r_second_half) = sign(r)``, and with three units or
      more ``sign_agreement`` above one half by a one-sided binomial test at ``alpha``;
    - useful: ``oos_holds`` (a lower backtest error with it than without);

    otherwise it names the first check that failed, in that order, in plain words.

    Parameters
    ----------
    dataset : Dataset or mapping of str to DataFrame
        Typed canonical tables (:func:`spm_models.data.validation.validate`).
    level : {"agent", "territory", "company"}, default "agent"
        Entities whose bookings are pooled. ``"agent"`` (the panel test) has the most power:
        every candidate is tested on its own units, built from agents.
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
        ``p_adjusted`` and ``|z|``:

        - ``best_lag`` (periods), ``statistic`` (``prewhitened`` or ``gls``), ``r`` and ``z``
          (that statistic as a correlation and as a t-value), ``p_adjusted`` and ``z_band``
          (corrected for all lags, candidates and both statistics), ``significant``;
        - ``n_units`` (series the candidate was tested on), ``r_first_half``,
          ``r_second_half``, ``sign_agreement`` and ``best_lag_share`` (NaN below three
          units), ``stable``;
        - ``lag_used``, ``horizon_used``, ``oos_improvement`` (relative reduction of the
          backtest's squared error), ``share_origins_improved``, ``oos_holds``;
        - ``given``: the indicators taken out of bookings when the candidate was decided
          (forward selection, :mod:`spm_models.indicators.selection`), ``explained_by``: for a
          candidate that only moves with one found, that one;
        - ``verdict``.

        Candidates that cannot be tested (:func:`~spm_models.indicators.series.unusable_candidates`,
        or too little data) come last, with the reason as verdict and the other columns empty.

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
    tested = list(dict.fromkeys(candidates["candidate"].astype("str")))
    best = lagged[lagged["is_best"]].rename(columns={"lag": "best_lag"}).drop(columns="is_best")
    best["z"] = np.where(best["statistic"] == "gls", best["z_gls"], best["z_prewhitened"])
    lags = dict(zip(best["candidate"], best["best_lag"]))
    oos = out_of_sample_value(target, candidates, lags=lags, grain=grain, horizon=horizon, calendar=calendar)
    table = _judge(best.merge(oos, on="candidate", how="left"), alpha=alpha)
    table["level"] = level
    table["verdict"] = [
        _verdict(row, grain=grain, n_lags=max_lag + 1, n_candidates=len(tested)) for row in table.to_dict("records")
    ]
    table = table.assign(_rank=table["verdict"] != "leading indicator", _abs=-table["z"].abs())
    table = table.sort_values(["_rank", "p_adjusted", "_abs"], kind="stable", na_position="last", ignore_index=True)
    untested = {
        c: "not tested: too few observed periods overlap bookings, or the series is constant"
        for c in tested
        if c not in set(best["candidate"])
    }
    untested.update(unusable_candidates(dataset))
    if untested:
        extra = pd.DataFrame(
            {
                "candidate": list(untested),
                "level": level,
                "given": "",
                "explained_by": "",
                "verdict": list(untested.values()),
            }
        )
        table = pd.concat([table, extra], ignore_index=True)
    for col in ("best_lag", "lag_used", "horizon_used", "n_units"):
        table[col] = table[col].astype("Int64")
    for col in ("significant", "stable", "oos_holds"):
        table[col] = table[col].astype("boolean")
    return table[list(RANKED_COLUMNS)]


def _judge(table: pd.DataFrame, *, alpha: float) -> pd.DataFrame:
    """Add ``significant``, ``stable_over_time``, ``stable_across_units`` and ``stable``."""
    table["significant"] = table["p_adjusted"] < alpha
    r1, r2 = np.sign(table["r_first_half"]), np.sign(table["r_second_half"])
    table["stable_over_time"] = (r1 == r2) & (r1 == np.sign(table["r"])) & (r1 != 0)
    table["stable_across_units"] = table["sign_agreement"].isna() | (table["sign_p"] < alpha)
    table["stable"] = table["stable_over_time"] & table["stable_across_units"]
    return table
