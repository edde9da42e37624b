"""spm_models.indicators.arrays: the dense toolkit, each piece against a hand computation or an identity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spm_models.indicators.arrays import (
    ar_filter,
    ar_filter_adjoint,
    ar_recolour,
    ar_recolour_adjoint,
    calendar_design,
    detrend,
    expanding_fe_errors,
    fit_ar,
    prewhiten,
    shared_units,
    target_scale,
)


def test_calendar_design_by_hand():
    periods = pd.date_range("2024-12-30", periods=110, freq="7D")
    design, names = calendar_design(periods, "week")
    assert names[:4] == ["const", "trend", "year_sin1", "year_cos1"]
    assert "quarter_sin1" in names and len(names) == 2 + 6 + 4
    assert design[0, 1] == 0 and design[-1, 1] == 1
    # the first week's middle is 2025-01-02 12:00: 1.5 days into the year and the quarter
    assert design[0, 2] == pytest.approx(np.sin(2 * np.pi * 1.5 / 365.25))
    assert design[0, names.index("quarter_cos1")] == pytest.approx(np.cos(2 * np.pi * 1.5 / 90))
    # a year of weeks: no yearly terms (they would absorb everything)
    _, short = calendar_design(periods[:60], "week")
    assert short == ["const", "trend", "quarter_sin1", "quarter_cos1", "quarter_sin2", "quarter_cos2"]


def test_detrend_leaves_residuals_orthogonal_to_the_calendar(weeks):
    design, _ = calendar_design(weeks, "week")
    rng = np.random.default_rng(0)
    v = design @ rng.normal(size=design.shape[1]) + rng.normal(size=len(weeks))
    v = np.vstack([v, np.full(len(weeks), 4.0)])  # second entity: constant, nothing to explain
    v[0, :10] = np.nan
    r = detrend(v, design)
    ok = ~np.isnan(r[0])
    assert ok.sum() == len(weeks) - 10
    np.testing.assert_allclose(design[ok].T @ r[0, ok], 0.0, atol=1e-5)  # normal equations hold
    assert np.isnan(r[1]).all()


def test_prewhiten_recovers_the_innovations_of_an_ar1():
    rng = np.random.default_rng(4)
    e = rng.normal(size=(3, 400))
    x = np.zeros_like(e)
    for t in range(1, 400):
        x[:, t] = 0.7 * x[:, t - 1] + e[:, t]
    white, y_star, order = prewhiten(x, x.copy(), max_order=4)
    assert order == 1
    for i in range(3):
        assert np.corrcoef(white[i, 1:], e[i, 1:])[0, 1] > 0.99
    np.testing.assert_allclose(white[:, 1:], y_star[:, 1:])
    phi, order = fit_ar(x, max_order=4)
    assert order == 1 and np.allclose(phi[:, 0], 0.7, atol=0.08)


def test_recolour_inverts_the_filter_and_the_adjoints_are_transposes():
    rng = np.random.default_rng(9)
    phi = np.array([[0.9, -0.2], [0.5, 0.1]])
    e = rng.normal(size=(2, 40))
    x = ar_recolour(e, phi)
    # x_t = e_t + 0.9 x_{t-1} - 0.2 x_{t-2} from a zero start, by hand for the first entity
    assert x[0, 0] == pytest.approx(e[0, 0])
    assert x[0, 2] == pytest.approx(e[0, 2] + 0.9 * x[0, 1] - 0.2 * x[0, 0])
    np.testing.assert_allclose(ar_filter(x, phi)[:, 2:], e[:, 2:])
    # <F a, b> = <a, F' b> and <Psi a, b> = <a, Psi' b> over the whole window
    a, b = rng.normal(size=(2, 40)), rng.normal(size=(2, 40))
    fa = np.nan_to_num(ar_filter(a, phi))  # the first two periods lack lags: NaN, counted as 0
    fa_full = a.copy()
    fa_full[:, 1:] -= phi[:, :1] * a[:, :-1]
    fa_full[:, 2:] -= phi[:, 1:2] * a[:, :-2]
    np.testing.assert_allclose((fa_full * b).sum(axis=1), (a * ar_filter_adjoint(b, phi)).sum(axis=1))
    np.testing.assert_allclose(fa[:, 2:], fa_full[:, 2:])
    np.testing.assert_allclose((ar_recolour(a, phi) * b).sum(axis=1), (a * ar_recolour_adjoint(b, phi)).sum(axis=1))


def test_target_scale_is_asinh_of_bookings_over_the_mean_deal_week():
    y = np.array([[0.0, 100.0, 300.0, np.nan], [0.0, 0.0, 0.0, 0.0]])
    out = target_scale(y)
    # entity 0: mean non-zero |y| = 200
    np.testing.assert_allclose(out[0, :3], np.arcsinh(np.array([0.0, 0.5, 1.5])))
    assert np.isnan(out[0, 3])
    np.testing.assert_array_equal(out[1], 0.0)
    # the scale from the rows given only: mean of the first two periods' non-zero values = 100
    np.testing.assert_allclose(target_scale(y, np.array([[True, True, False, False]] * 2))[0, 2], np.arcsinh(3.0))


def test_shared_units_groups_entities_with_one_series():
    v = np.array([[1.0, 2.0, np.nan], [5.0, 5.0, 5.0], [1.0, 2.0, np.nan], [1.0, 2.0, 3.0]])
    first, unit = shared_units(v)
    np.testing.assert_array_equal(first, [0, 1, 3])
    np.testing.assert_array_equal(unit, [0, 1, 0, 2])


def test_expanding_fe_errors_squared_loss_by_hand():
    # one entity, y = 2 f: the regression is exact, so any loss is 0; the baseline (no f) is not
    f = np.arange(10.0)[None, :, None]
    y = 2 * f[..., 0] + 1
    cells = np.ones((1, 10), dtype=bool)
    origins = np.array([6])
    err, count = expanding_fe_errors(y, f, cells, origins, 2, weights=np.ones(1), loss="squared")
    assert count[0] == 2 and err[0] == pytest.approx(0.0, abs=1e-9)
    base, _ = expanding_fe_errors(y, np.zeros((1, 10, 0)), cells, origins, 2, weights=np.ones(1), loss="squared")
    # the intercept alone forecasts mean(y_0..y_5) = 6 for y_6 = 13 and y_7 = 15
    assert base[0] == pytest.approx(7**2 + 9**2)
    with pytest.raises(ValueError, match="loss"):
        expanding_fe_errors(y, f, cells, origins, 2, weights=np.ones(1), loss="huber")
