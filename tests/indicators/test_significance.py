"""spm_models.indicators.significance: the two statistics, their permutation null and the step-down maxT.

Known constructions: a white candidate at a known lag, a persistent one (AR 0.95, the planted market
index's persistence) that only the GLS statistic sees well, independent series for the null, and
hand-made null tables for the step-down.
"""

from __future__ import annotations

import numpy as np
import pytest

from spm_models.indicators.arrays import calendar_design, detrend, standardise, target_scale
from spm_models.indicators.significance import (
    STATISTICS,
    candidate_evidence,
    max_t_pvalues,
    permutation_selector,
)


def _ar(rng, phi: float, n: int, burn: int = 200) -> np.ndarray:
    e = rng.normal(size=n + burn)
    x = np.zeros_like(e)
    for t in range(1, len(e)):
        x[t] = phi * x[t - 1] + e[t]
    return x[burn:]


def _evidence(x: np.ndarray, y: np.ndarray, weeks, *, max_lag: int = 12, n_perm: int = 199, seed: int = 0):
    design, _ = calendar_design(weeks[: y.shape[1]], "week")
    yd = detrend(target_scale(y), design)
    y_std = np.where(np.isnan(yd), np.nan, standardise(yd))
    perms = np.argsort(np.random.default_rng(seed).random((n_perm, y.shape[1])), axis=1)
    sel = permutation_selector(perms, max_lag)
    return candidate_evidence(x, y_std, design=design, selector=sel, n_permutations=n_perm, max_lag=max_lag)


def test_selector_of_the_identity_permutation_gives_the_lagged_cross_products():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(6, 6))
    sel = permutation_selector(np.arange(6)[None, :], 2)
    flat = np.concatenate([a.ravel(), np.zeros(6)])
    got = sel @ flat
    # row l sums A[t - l, t] over t >= l: the l-th superdiagonal
    np.testing.assert_allclose(got, [np.trace(a, offset=lag) for lag in range(3)])


def test_a_white_candidate_is_found_at_its_lag_by_both_statistics(weeks):
    rng = np.random.default_rng(1)
    x = rng.normal(size=159)
    y = 1000 + 60 * x[:-3] + 40 * rng.normal(size=156)  # y_t = 60 x_{t-3} + e: r(3) = 60 / sqrt(60^2 + 40^2)
    ev = _evidence(x[3:][None], y[None], weeks)
    assert ev.z.shape == (len(STATISTICS), 13) and ev.null.shape == (199, len(STATISTICS), 13)
    for k in range(len(STATISTICS)):
        assert int(np.nanargmax(np.abs(ev.z[k]))) == 3
        assert ev.z[k, 3] > 6  # about sqrt(150) r = 10
    assert ev.r[0, 3] == pytest.approx(60 / np.sqrt(60**2 + 40**2), abs=0.08)
    assert ev.n_units == 1 and ev.n_pairs[3] == ev.n_pairs[0] - 3 >= 150  # one pair fewer per lag


def test_gls_sees_a_persistent_candidate_the_prewhitened_statistic_hardly_does(weeks):
    # x AR(0.95); y = 0.3 sd(x) x_{t-8} + white noise of sd 1: most of x's variance is slow
    zs = {k: [] for k in STATISTICS}
    for seed in range(6):
        rng = np.random.default_rng(100 + seed)
        x = _ar(rng, 0.95, 164)
        x = x / x.std()
        y = 50 + 0.3 * x[:-8] + rng.normal(size=156)
        ev = _evidence(x[8:][None], y[None], weeks, max_lag=10)
        for k, name in enumerate(STATISTICS):
            zs[name].append(ev.z[k, 8] / np.sqrt(np.nanmean(ev.null[:, k] ** 2)))
    assert np.mean(zs["gls"]) > 1.5 * np.mean(zs["prewhitened"])
    assert np.mean(zs["gls"]) > 2.5


def test_the_null_of_a_persistent_candidate_is_as_wide_as_a_spurious_regression(weeks):
    # two independent persistent series: their level correlation is often large, the test must not be fooled
    smallest = []
    for seed in range(40):
        rng = np.random.default_rng(500 + seed)
        x = _ar(rng, 0.95, 156)
        y = 100 + 3 * _ar(rng, 0.9, 156)
        ev = _evidence(x[None], y[None], weeks, n_perm=99, seed=seed)
        p, _, _ = max_t_pvalues(ev.z[None], ev.null[:, None], alpha=0.05)
        smallest.append(np.nanmin(p))
    # at alpha 0.05 a valid test rejects about 2 of 40; allow sampling noise, refuse a broken null
    assert np.mean(np.array(smallest) < 0.05) <= 0.15


def test_units_are_the_entities_sharing_a_series(weeks):
    # a company-wide candidate given to four agents is one unit; each agent's target adds to it
    rng = np.random.default_rng(2)
    x = rng.normal(size=159)
    y = np.stack([500 + 30 * x[:-3] + 60 * rng.normal(size=156) for _ in range(4)])
    shared = np.repeat(x[3:][None], 4, axis=0)
    ev = _evidence(shared, y, weeks)
    assert ev.n_units == 1 and ev.unit_r.shape[0] == 1
    own = _evidence(rng.normal(size=(4, 156)), y, weeks)
    assert own.n_units == 4


def test_step_down_rejects_more_than_single_step_and_keeps_the_order():
    rng = np.random.default_rng(3)
    null = rng.normal(size=(999, 3, 1, 5))
    z = np.zeros((3, 1, 5))
    z[0, 0, 2] = 8.0  # far beyond anything in the null
    z[1, 0, 1] = 2.9
    p, t, band = max_t_pvalues(z, null, alpha=0.05)
    assert p[0, 0, 2] == pytest.approx(1 / 1000)
    sd = np.sqrt((null**2).mean(axis=(0, 3)))  # (C, K): each candidate's own scale
    studentised = np.abs(null) / sd[None, :, :, None]
    all_max = studentised.max(axis=(1, 2, 3))
    assert band[0] >= band[1] >= band[2]  # fewer candidates left, a lower bar
    # the second candidate is compared with the maxima of candidates 1 and 2 only
    m2 = studentised[:, 1:].max(axis=(1, 2, 3))
    assert t[1, 0, 1] == pytest.approx(2.9 / sd[1, 0])
    assert p[1, 0, 1] == pytest.approx((1 + (m2 >= t[1, 0, 1]).sum()) / 1000)
    assert p[1, 0, 1] <= (1 + (all_max >= t[1, 0, 1]).sum()) / 1000
    assert (p[2] >= p[1, 0, 1] - 1e-12).all()  # adjusted p-values never fall down the steps
