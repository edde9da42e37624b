"""The evidence behind a leading indicator: two lagged statistics per candidate and one permutation null.

Discovery (:mod:`spm_models.indicators.discovery`) asks, for every candidate ``c`` and lag
``l``, whether the candidate ``l`` periods earlier moves bookings. This module computes, on
dense arrays (:mod:`spm_models.indicators.arrays`), two statistics for each ``(c, l)`` and their
joint null distribution, from which :func:`max_t_pvalues` corrects for every lag, candidate and
statistic at once.

Units
-----
A candidate is tested on its own *units*: the groups of entities that share one series of it.
An agent's demo count is its own (one unit per agent); a territory's leads are shared by the
territory's agents (one unit per territory); a company-wide index by all (one unit). The target
of a unit is the sum of its members' standardised bookings divided by the square root of the
number of members observed in the period, so every agent counts once whatever the candidate's
scope: for a shared candidate the agent-level panel statistic *is* this sum, and fitting the
target's noise model (below) on the sum lets the test see the noise the members share.

Bookings are first put on a log-like scale, ``asinh(y / c_e)`` with ``c_e`` the entity's mean
non-zero bookings, then detrended (:func:`~spm_models.indicators.arrays.detrend`) and
standardised per entity: one very large deal then weighs like a good week, not like ten, and the
weekly count of wins, which the planted effects move, is what the statistics mostly see.

The two statistics
------------------
For one unit, with ``x`` the detrended candidate, ``phi`` its AR model
(:func:`~spm_models.indicators.arrays.fit_ar`), ``e = F_phi x`` its innovations (the first
``p`` periods of its span set to 0) and ``Y`` the unit's target:

``prewhitened`` (Box-Jenkins)
    ``S1(l) = sum_t e_{t-l} (F_phi Y)_t``: the prewhitened cross-correlation; sharp in the lag,
    but it sees only the innovations of a persistent candidate.
``gls`` (distributed-lag regression with autoregressive errors)
    ``S2(l) = sum_t e_{t-l} v_t`` with ``v = Psi' M G'G Y``: ``G`` the AR filter that whitens
    the target (fitted on ``Y`` alone, order by BIC), ``M`` the removal of the calendar terms,
    ``Psi' `` the transpose of the candidate's AR recursion. Up to the first and last periods this
    is ``sum_t x_{t-l} (G'G Y)_t``, the numerator of the generalised-least-squares slope of ``Y``
    on ``x_{t-l}``: it uses the whole variance of a persistent candidate (an index with AR
    coefficient 0.95 has ten times more variance than its innovations), not just its
    innovations.

Both are linear in the innovations ``e``, and each is self-normalised,
``z = S / sqrt(V)`` with ``V(l) = sum_t e_{t-l}^2 w_t^2`` (``w`` the statistic's target), a
t-statistic robust to unequal variances.

The null
--------
Under "the candidate is unrelated to bookings" the innovations of the candidate are
exchangeable in time while bookings stay as they are. A permutation ``pi`` of the periods,
the same for every unit, candidate and statistic, gives ``S_pi(l) = sum_t e_{pi(t-l)} w_t``:
for ``gls`` that is the statistic of the *recoloured* candidate ``Psi e_pi``, a series with the
candidate's own persistence (a sieve bootstrap). So the null of a persistent candidate is as
wide as a spurious regression of two persistent series would make it, and the permutation
keeps every dependence across units and candidates. All permutations and lags come from one
sparse product over the ``T x T`` matrix ``A[a, t] = sum_units e[a] w[t]``
(:func:`permutation_selector`), whatever the number of units.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from spm_models.indicators.arrays import (
    ar_filter,
    ar_filter_adjoint,
    ar_recolour_adjoint,
    correlation,
    detrend,
    fit_ar,
    lag_sums,
    shared_units,
)

__all__ = [
    "STATISTICS",
    "MIN_PAIRS",
    "Evidence",
    "CandidateSide",
    "candidate_side",
    "permutation_selector",
    "candidate_evidence",
    "max_t_pvalues",
]

#: The statistics computed for every candidate and lag (module docstring).
STATISTICS: tuple[str, ...] = ("prewhitened", "gls")
#: Fewest (candidate, bookings) pairs behind a statistic.
MIN_PAIRS = 20


def permutation_selector(perms: np.ndarray, max_lag: int) -> sparse.csr_matrix:
    """Sparse 0/1 matrix that sums ``A[pi(t - l), t]`` over ``t``: one row per permutation and lag.

    Its columns index the flattened ``(T + 1) x T`` matrix ``A`` whose extra row ``T`` is zero
    and stands for "no pair" (``t < l``). Shape ``(B (L+1), (T+1) T)``; the identity permutation
    gives the observed statistic.
    """
    n_b, n_t = perms.shape
    src = np.arange(n_t)[None, :] - np.arange(max_lag + 1)[:, None]  # (L+1, T)
    rows = np.where(src[None] >= 0, perms[:, np.clip(src, 0, None)], n_t)
    cols = (rows * n_t + np.arange(n_t)[None, None, :]).ravel()
    return sparse.csr_matrix(
        (np.ones(len(cols)), cols, np.arange(0, len(cols) + 1, n_t)), shape=(n_b * (max_lag + 1), (n_t + 1) * n_t)
    )


@dataclass(frozen=True)
class Evidence:
    """What one candidate shows at every lag (``K`` statistics, lags ``0..L``).

    Attributes
    ----------
    z : ndarray (K, L+1)
        Self-normalised statistics ``S / sqrt(V)`` (NaN with fewer than :data:`MIN_PAIRS` pairs).
    null : ndarray (B, K, L+1)
        The same under ``B`` permutations.
    r : ndarray (K, L+1)
        The statistics as correlations, ``sum e w / sqrt(sum e^2 sum w^2)`` over the pairs.
    r_halves : ndarray (2, K, L+1)
        ``r`` over the pairs whose target period is in the first, then the second half.
    unit_r : ndarray (U, K, L+1)
        Each unit's own ``r`` (NaN below :data:`MIN_PAIRS` pairs).
    n_pairs : ndarray (L+1,)
    n_units : int
        Units with at least one pair.
    ar_order : int
        Order of the candidate's AR model.
    """

    z: np.ndarray
    null: np.ndarray
    r: np.ndarray
    r_halves: np.ndarray
    unit_r: np.ndarray
    n_pairs: np.ndarray
    n_units: int
    ar_order: int


def _unit_target(y_std: np.ndarray, my: np.ndarray, unit: np.ndarray, n_units: int) -> tuple[np.ndarray, np.ndarray]:
    """Sum of the members' standardised targets over sqrt(members observed), and where any is."""
    total = np.zeros((n_units, y_std.shape[1]))
    count = np.zeros_like(total)
    np.add.at(total, unit, y_std)
    np.add.at(count, unit, my.astype(float))
    seen = count > 0
    return np.where(seen, total / np.sqrt(np.maximum(count, 1)), np.nan), seen


@dataclass(frozen=True)
class CandidateSide:
    """What a candidate's statistics need of the candidate alone (it does not change with the target).

    ``unit`` maps entities to units, ``keep`` marks the units with a usable series, ``x`` is
    their detrended series, ``phi`` and ``order`` their AR model, ``e`` their innovations.
    """

    unit: np.ndarray
    n_units: int
    keep: np.ndarray
    x: np.ndarray
    phi: np.ndarray
    order: int
    e: np.ndarray


def candidate_side(values: np.ndarray, *, design: np.ndarray, max_ar_order: int = 4) -> CandidateSide:
    """Units, detrended series, AR model and innovations of one candidate (module docstring)."""
    first, unit = shared_units(values)
    x = detrend(values[first], design)
    keep = ~np.isnan(x).all(axis=1)
    phi, order = fit_ar(x[keep], max_order=max_ar_order)
    return CandidateSide(unit, len(first), keep, x[keep], phi, int(order), ar_filter(x[keep], phi))


def _targets(side: CandidateSide, y_std: np.ndarray, design: np.ndarray, max_order: int, cache: dict | None):
    """The two statistics' targets on the candidate's units (module docstring).

    ``G'G Y`` depends on the units only, so candidates sharing them (every agent's own
    activity) share it through ``cache``.
    """
    key = (side.unit.tobytes(), side.keep.tobytes())
    if cache is not None and key in cache:
        y, ggy = cache[key]
    else:
        my = ~np.isnan(y_std)
        y, _ = _unit_target(np.where(my, y_std, 0.0), my, side.unit, side.n_units)
        y = y[side.keep]
        gamma, _ = fit_ar(y, max_order=max_order)
        ggy = np.where(np.isnan(y), np.nan, ar_filter_adjoint(ar_filter(y, gamma), gamma))
        if cache is not None:
            cache[key] = (y, ggy)
    prewhitened = ar_filter(y, side.phi)
    projected = detrend(np.where(np.isnan(side.x), np.nan, ggy), design, min_points=1)
    gls = ar_recolour_adjoint(projected, side.phi)
    return prewhitened, np.where(np.isnan(y), np.nan, gls)


def candidate_evidence(
    values: np.ndarray,
    y_std: np.ndarray,
    *,
    design: np.ndarray,
    selector: sparse.csr_matrix,
    n_permutations: int,
    max_lag: int,
    max_ar_order: int = 4,
    side: CandidateSide | None = None,
    cache: dict | None = None,
) -> Evidence | None:
    """Both statistics of one candidate at lags ``0..max_lag``, observed and permuted.

    Parameters
    ----------
    values : ndarray (E, T)
        The candidate per entity and period (NaN where not observed).
    y_std : ndarray (E, T)
        Target of each entity: scaled (:func:`~spm_models.indicators.arrays.target_scale`),
        detrended and standardised, NaN where missing.
    design : ndarray (T, k)
        Calendar terms removed from the candidate.
    selector : sparse matrix
        :func:`permutation_selector` of the ``n_permutations`` permutations.
    side : CandidateSide, optional
        :func:`candidate_side` of ``values``, when already computed (it does not depend on
        ``y_std``).
    cache : dict, optional
        Shared by calls with the same ``y_std``: the target's filtered sums per set of units.

    Returns
    -------
    Evidence, or None when no unit has a usable (non-constant, long enough) series.
    """
    side = side if side is not None else candidate_side(values, design=design, max_ar_order=max_ar_order)
    if not side.keep.any():
        return None
    targets = _targets(side, y_std, design, max_ar_order, cache)
    e, order = side.e, side.order
    me = ~np.isnan(e)
    e0 = np.where(me, e, 0.0)
    n_t = values.shape[1]
    zero = np.zeros((n_t, 1))
    filled = [(np.where(np.isnan(w), 0.0, w), ~np.isnan(w)) for w in targets]
    # A[a, t] = sum_units e[a] w[t] and Q the same of the squares, for both statistics: one sparse product
    mats = np.concatenate(
        [np.stack([e0.T @ w0, (e0**2).T @ (w0**2)], axis=-1).reshape(n_t * n_t, 2) for w0, _ in filled], 1
    )
    perm = (selector @ np.concatenate([mats, np.repeat(zero, mats.shape[1], axis=1)])).reshape(
        n_permutations, max_lag + 1, len(targets), 2
    )
    obs = np.array([[np.trace(m.reshape(n_t, n_t), offset=lag) for m in mats.T] for lag in range(max_lag + 1)])
    obs = obs.reshape(max_lag + 1, len(targets), 2)
    z, null, r, r_halves, unit_r, n_pairs = [], [], [], [], [], []
    for k, (w0, mw) in enumerate(filled):
        halves = lag_sums(e0, w0, me, mw, max_lag=max_lag, split=n_t // 2)  # (2, 4, U, L+1)
        sums = halves[0] + halves[1]
        n_pairs.append(sums[3])
        enough = sums[3].sum(axis=0) >= MIN_PAIRS
        z.append(np.where(enough, _ratio(obs[:, k, 0], obs[:, k, 1]), np.nan))
        null.append(np.where(enough[None, :], _ratio(perm[..., k, 0], perm[..., k, 1]), np.nan))
        r.append(np.where(enough, correlation(*sums[:3].sum(axis=1)), np.nan))
        r_halves.append([correlation(*h[:3].sum(axis=1)) for h in halves])
        unit_r.append(np.where(sums[3] >= MIN_PAIRS, correlation(*sums[:3]), np.nan))
    return Evidence(
        z=np.array(z),
        null=np.stack(null, axis=1),
        r=np.array(r),
        r_halves=np.transpose(np.array(r_halves), (1, 0, 2)),
        unit_r=np.stack(unit_r, axis=1),
        n_pairs=n_pairs[0].sum(axis=0).astype(np.int64),
        n_units=int((n_pairs[0].sum(axis=1) > 0).sum()),
        ar_order=int(order),
    )


def _ratio(s: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.where(v > 0, s / np.sqrt(np.where(v > 0, v, 1.0)), np.nan)


def max_t_pvalues(z: np.ndarray, null: np.ndarray, *, alpha: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Westfall and Young's step-down maxT over candidates, every statistic and lag included.

    With ``s_ck`` the permutation root mean square of statistic ``k`` of candidate ``c`` (over
    lags and permutations), the studentised values are ``T(c,k,l) = |z(c,k,l)| / s_ck`` and a
    candidate's strength is ``T_c = max_{k,l} T(c,k,l)`` (the hypothesis "candidate ``c`` moves
    bookings at no lag"). Candidates are taken strongest first; at step ``j``, with ``R_j`` the
    candidates not yet taken (the ``j``-th included) and ``M_b(R_j) = max_{c in R_j} T_b(c)``
    the maximum of permutation ``b`` over them,

        p(c, k, l) = max( p_previous_step, (1 + #{b : M_b(R_j) >= T(c,k,l)}) / (1 + B) ),

    the step-down maxT, which holds the family-wise error rate at ``alpha`` over all
    candidates, lags and statistics and rejects at least what the single-step version rejects
    (a candidate is no longer compared with the maxima of candidates already found). At the
    candidate's strongest ``(k, l)`` this is its adjusted p-value.

    Parameters
    ----------
    z : ndarray (C, K, L+1)
    null : ndarray (B, C, K, L+1)

    Returns
    -------
    p_adjusted : ndarray (C, K, L+1)
    studentised : ndarray (C, K, L+1)
        ``T = |z| / s_ck``.
    band : ndarray (C,)
        ``q_{1-alpha}(M(R_j))`` at each candidate's step: the studentised value its statistics
        must exceed.
    """
    finite = np.isfinite(null)
    n_fin = finite.sum(axis=(0, 3))
    sd = np.sqrt(np.where(finite, null**2, 0.0).sum(axis=(0, 3)) / np.maximum(n_fin, 1))  # (C, K)
    sd = np.where(sd > 0, sd, np.inf)
    t_null = (np.where(finite, np.abs(null), 0.0) / sd[None, :, :, None]).max(axis=(2, 3))  # (B, C)
    t_obs = np.abs(z) / sd[..., None]
    strength = np.nan_to_num(t_obs, nan=-np.inf).max(axis=(1, 2))
    order = np.argsort(-strength, kind="stable")
    # maximum over the candidates not yet taken, for every step: a reversed running maximum
    tail_max = np.maximum.accumulate(t_null[:, order[::-1]], axis=1)[:, ::-1]  # (B, C) by step
    n_b = len(t_null)
    p = np.full(t_obs.shape, np.nan)
    band = np.full(len(order), np.nan)
    floor = 0.0
    for step, c in enumerate(order):
        ref = np.sort(tail_max[:, step])
        exceed = n_b - np.searchsorted(ref, np.nan_to_num(t_obs[c], nan=np.inf), side="left")
        raw = np.where(np.isnan(t_obs[c]), np.nan, np.maximum(floor, (1 + exceed) / (1 + n_b)))
        p[c] = raw
        if np.isfinite(strength[c]):
            floor = max(floor, float(np.nanmin(raw)))
        band[c] = float(np.quantile(ref, 1 - alpha))
    return p, t_obs, band
