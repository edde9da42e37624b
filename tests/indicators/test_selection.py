"""spm_models.indicators.selection: forward selection takes found indicators out and drops what only moves with them."""

from __future__ import annotations

import numpy as np
import pytest

from spm_models.indicators.arrays import calendar_design, detrend, standardise, target_scale
from spm_models.indicators.selection import residualise, select_indicators
from spm_models.indicators.significance import permutation_selector


def _prepared(y: np.ndarray, weeks, n_perm: int, max_lag: int):
    design, _ = calendar_design(weeks[: y.shape[1]], "week")
    yd = detrend(target_scale(y), design)
    y_std = np.where(np.isnan(yd), np.nan, standardise(yd))
    sel = permutation_selector(np.argsort(np.random.default_rng(0).random((n_perm, y.shape[1])), axis=1), max_lag)
    return y_std, design, sel


def test_residualise_takes_a_known_lagged_effect_out(weeks):
    rng = np.random.default_rng(0)
    n_e, n_t = 20, 156
    x = rng.normal(size=(n_e, n_t))
    y = np.zeros((n_e, n_t))
    y[:, 2:] = 0.8 * x[:, :-2]
    y += 0.3 * rng.normal(size=(n_e, n_t))
    y[:, :2] = np.nan
    design, _ = calendar_design(weeks, "week")
    y = detrend(y, design)  # as discovery's bookings are
    r = residualise(y, {"x": x}, ["x"], design=design, max_lag=4)
    seen = ~np.isnan(y)
    # what is left is the noise, less its calendar part: variance 0.09 (1 - 12 / 156) out of 0.73
    assert np.nanvar(r) == pytest.approx(0.09 * (1 - 12 / 156), rel=0.1)
    assert np.isnan(r[~seen]).all()
    assert residualise(y, {"x": x}, [], design=design, max_lag=4) is y


def test_a_proxy_of_the_driver_is_explained_by_it_and_the_driver_kept(weeks):
    # demo-like driver d acts at lag 3; calls-like proxy c = d + noise moves with it but does nothing
    rng = np.random.default_rng(7)
    n_e, n_t = 60, 156
    d = rng.poisson(5.0, size=(n_e, n_t)).astype(float)
    c = d + rng.normal(0, 1.0, size=(n_e, n_t))
    noise = rng.normal(0, 1.0, size=(n_e, n_t))
    y = np.full((n_e, n_t), np.nan)
    y[:, 3:] = 20 + 0.6 * (d[:, :-3] - 5) + noise[:, 3:]
    y_std, design, sel = _prepared(y, weeks, 199, 8)
    found = select_indicators(
        y_std, {"c": c, "d": d}, design=design, selector=sel, n_permutations=199, max_lag=8, alpha=0.05
    )
    assert found["d"].accepted and found["d"].best[1] == 3
    assert not found["c"].accepted and found["c"].explained_by == "d"
    assert found["c"].p_conditional >= 0.05 and found["c"].p_best < 0.05  # significant alone, not beyond d


def test_a_second_round_finds_what_the_first_hid(weeks):
    # a strong driver a at lag 2 and a weak one b at lag 5: b stands out once a is taken out
    rng = np.random.default_rng(11)
    n_e, n_t = 40, 156
    a = rng.normal(size=(n_e, n_t))
    b = rng.normal(size=(n_e, n_t))
    y = np.full((n_e, n_t), np.nan)
    y[:, 5:] = 50 + 2.0 * a[:, 3:-2] + 0.25 * b[:, :-5] + rng.normal(0, 0.6, size=(n_e, n_t - 5))
    y_std, design, sel = _prepared(y, weeks, 199, 8)
    found = select_indicators(
        y_std,
        {"a": a, "b": b, "noise": rng.normal(size=(n_e, n_t))},
        design=design,
        selector=sel,
        n_permutations=199,
        max_lag=8,
    )
    assert found["a"].accepted and found["a"].round == 0 and found["a"].best[1] == 2
    assert found["b"].accepted and found["b"].best[1] == 5
    assert not found["noise"].accepted
    assert "a" in found["noise"].given  # decided with a taken out of bookings
