"""The hurdle log density and its gradient, compiled (numba).

:func:`~spm_models.models.hierarchical.inference.log_density` is called tens of thousands of
times per fit (every NUTS leapfrog step, every ADVI step), so its speed is most of a fit's time.
Written as numpy expressions it was some sixty array operations per call (about 0.45 ms on the
50-agent example's 6,200 agent-weeks, half of it Python overhead on small arrays); here it is
loops, and the exponentials of the cells are taken once per series and once per distinct
calendar row rather than once per cell (:func:`hurdle_log_density`).

``cache=True`` keeps the machine code on disk (``__pycache__`` beside this file), so only the
first process on a machine compiles it (a few seconds); ``nogil=True`` lets two NUTS chains run
it at the same time.
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["cell_terms", "hurdle_log_density"]


@numba.njit(cache=True, nogil=True)
def cell_terms(
    a: np.ndarray,
    b: np.ndarray,
    lk: np.ndarray,
    gamma: np.ndarray,
    delta: np.ndarray,
    beta_p: np.ndarray,
    beta_m: np.ndarray,
    series: np.ndarray,
    row: np.ndarray,
    pos: np.ndarray,
    x: np.ndarray,
    series_pos: np.ndarray,
    row_pos: np.ndarray,
    x_pos: np.ndarray,
    ypos: np.ndarray,
    logy: np.ndarray,
    cal_rows: np.ndarray,
):
    """Log likelihood of the cells and its gradient, except the per-series ``lgamma`` term.

    ``eta = a[s] + cal @ gamma + x @ beta_p`` per cell adds ``pos * eta - log(1 + e^eta)``;
    ``mu = b[s] + cal @ delta + x @ beta_m`` per positive cell adds ``k (log k - mu - y e^-mu) +
    (k - 1) log y`` with ``k = exp(lk[s])`` (fixed shapes, so no gradient for them). A cell's
    calendar regressors are row ``row`` of ``cal_rows`` (the distinct rows: a few per quarter
    position, or one per week with yearly terms), so ``e^(cal @ gamma)`` and ``e^-(cal @ delta)``
    are taken once per row and ``e^a``, ``e^-b`` once per series: without indicators a cell
    costs one ``log1p`` and no exponential (that is most of the time of a fit).

    Returns
    -------
    (lp, d_a, d_b, g_gamma, g_delta, g_beta_p, g_beta_m)
        ``d_*`` per series (gradients with respect to ``a`` and ``b``), ``g_*`` per coefficient.
    """
    n, n_rows = a.shape[0], cal_rows.shape[0]
    n_reg = x.shape[1]
    d_a, d_b = np.zeros(n), np.zeros(n)
    r_row, e_row = np.zeros(n_rows), np.zeros(n_rows)  # residuals summed per calendar row
    g_beta_p, g_beta_m = np.zeros(n_reg), np.zeros(n_reg)
    c_gamma, c_delta = cal_rows @ gamma, cal_rows @ delta
    exp_a, exp_cg = np.exp(a), np.exp(c_gamma)
    lp = 0.0
    for i in range(series.shape[0]):
        s, t = series[i], row[i]
        eta = a[s] + c_gamma[t]
        odds = exp_a[s] * exp_cg[t]
        if n_reg:
            xb = 0.0
            for r in range(n_reg):
                xb += x[i, r] * beta_p[r]
            eta += xb
            odds *= np.exp(xb)
        if 1e-300 < odds < 1e13:  # log(1 + e^eta) and sigmoid(eta) from the odds e^eta
            lp -= np.log1p(odds)
            resid = -odds / (1.0 + odds)
        else:  # far out (a trajectory going astray): the overflow-free form
            e = np.exp(-abs(eta))
            if eta >= 0:
                lp -= eta + np.log1p(e)
                resid = -1.0 / (1.0 + e)
            else:
                lp -= np.log1p(e)
                resid = -e / (1.0 + e)
        if pos[i]:
            lp += eta
            resid += 1.0
        d_a[s] += resid
        r_row[t] += resid
        for r in range(n_reg):
            g_beta_p[r] += x[i, r] * resid
    k_all = np.exp(lk)
    inv_b, inv_cd = np.exp(-b), np.exp(-c_delta)
    for j in range(series_pos.shape[0]):
        s, t = series_pos[j], row_pos[j]
        mu = b[s] + c_delta[t]
        inv_mean = inv_b[s] * inv_cd[t]
        if n_reg:
            xb = 0.0
            for r in range(n_reg):
                xb += x_pos[j, r] * beta_m[r]
            mu += xb
            inv_mean *= np.exp(-xb)
        if not 1e-300 < inv_mean < 1e300:  # a factor over- or underflowed
            inv_mean = np.exp(-mu)
        k = k_all[s]
        ratio = ypos[j] * inv_mean  # y / mean
        lp += k * (lk[s] - mu - ratio) + (k - 1.0) * logy[j]
        e = k * (ratio - 1.0)  # d/d mu
        d_b[s] += e
        e_row[t] += e
        for r in range(n_reg):
            g_beta_m[r] += x_pos[j, r] * e
    return lp, d_a, d_b, cal_rows.T @ r_row, cal_rows.T @ e_row, g_beta_p, g_beta_m


@numba.njit(cache=True, nogil=True)
def _centre(z: np.ndarray, codes: np.ndarray, counts: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """``factor * (z - mean of z over its group)``
    (:meth:`~spm_models.models.hierarchical.inference.Centering.apply`)."""
    sums = np.zeros(counts.shape[0])
    for i in range(z.shape[0]):
        sums[codes[i]] += z[i]
    out = np.empty_like(z)
    for i in range(z.shape[0]):
        out[i] = (z[i] - sums[codes[i]] / max(counts[codes[i]], 1.0)) * factor[i]
    return out


@numba.njit(cache=True, nogil=True)
def _centre_grad(g: np.ndarray, codes: np.ndarray, counts: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """Gradient with respect to ``z`` from the gradient ``g`` with respect to :func:`_centre`
    (``g f - group mean of g f``)."""
    return _centre(g * factor, codes, counts, np.ones_like(factor))


@numba.njit(cache=True, nogil=True)
def hurdle_log_density(
    theta: np.ndarray,
    n_groups: int,
    group_codes: np.ndarray,
    in_territory: tuple,
    territories: tuple,
    cells: tuple,
    priors: tuple,
):
    """Unnormalised log posterior and gradient (see
    :func:`~spm_models.models.hierarchical.inference.log_density`, whose arguments these are).

    ``theta`` is laid out as :func:`~spm_models.models.hierarchical.inference.layout` says;
    the centrings are ``(codes, counts, factor)``; ``cells`` the arguments of
    :func:`cell_terms` after the parameters, then ``n_pos`` and the fixed log shapes;
    ``priors`` ``(a_mean, b_mean, cal_sd, level_sd (2,), half_normal (4,), beta_sd)`` with
    ``half_normal`` in the order ``omega_a, omega_b, tau_a, tau_b``.
    """
    a_mean, b_mean, cal_sd, level_sd, half_normal, beta_sd = priors
    n = group_codes.shape[0]
    n_cal, n_reg = cal_sd.shape[0], cells[3].shape[1]
    grad = np.zeros_like(theta)
    # offsets of the blocks, in layout() order
    o_z = 4
    o_tau = o_z + 2 * n
    o_u = o_tau + 2
    o_cal = o_u + 2 * n_groups if n_groups else o_tau
    o_reg = o_cal + 2 * n_cal
    scales = np.exp(theta[2:4])
    za, zb = theta[o_z : o_z + n], theta[o_z + n : o_z + 2 * n]
    zca = _centre(za, in_territory[0], in_territory[1], in_territory[2])
    zcb = _centre(zb, in_territory[0], in_territory[1], in_territory[2])
    a = theta[0] + scales[0] * zca
    b = theta[1] + scales[1] * zcb
    taus = np.zeros(2)
    uca, ucb = np.zeros(n_groups), np.zeros(n_groups)
    if n_groups:
        taus = np.exp(theta[o_tau : o_tau + 2])
        uca = _centre(theta[o_u : o_u + n_groups], territories[0], territories[1], territories[2])
        ucb = _centre(theta[o_u + n_groups : o_u + 2 * n_groups], territories[0], territories[1], territories[2])
        for i in range(n):
            a[i] += taus[0] * uca[group_codes[i]]
            b[i] += taus[1] * ucb[group_codes[i]]
    gamma, delta = theta[o_cal : o_cal + n_cal], theta[o_cal + n_cal : o_cal + 2 * n_cal]
    beta_p, beta_m = theta[o_reg : o_reg + n_reg], theta[o_reg + n_reg : o_reg + 2 * n_reg]
    series, row, pos, x, series_pos, row_pos, x_pos, ypos, logy, cal_rows, n_pos, lk = cells
    lp, d_a, d_b, g_gamma, g_delta, g_beta_p, g_beta_m = cell_terms(
        a, b, lk, gamma, delta, beta_p, beta_m, series, row, pos, x, series_pos, row_pos, x_pos, ypos, logy, cal_rows
    )
    # the gamma law's normalising term, - lgamma(k) per positive cell, once per series (a
    # constant, the shapes being fixed, kept so the density is the gamma law's)
    for i in range(n):
        if n_pos[i] > 0:
            lp -= math.lgamma(math.exp(lk[i])) * n_pos[i]
    grad[0], grad[1] = d_a.sum(), d_b.sum()
    grad[o_z : o_z + n] = scales[0] * _centre_grad(d_a, in_territory[0], in_territory[1], in_territory[2])
    grad[o_z + n : o_z + 2 * n] = scales[1] * _centre_grad(d_b, in_territory[0], in_territory[1], in_territory[2])
    grad[2] = scales[0] * np.dot(zca, d_a)
    grad[3] = scales[1] * np.dot(zcb, d_b)
    if n_groups:
        dga, dgb = np.zeros(n_groups), np.zeros(n_groups)
        for i in range(n):
            dga[group_codes[i]] += d_a[i]
            dgb[group_codes[i]] += d_b[i]
        grad[o_u : o_u + n_groups] = taus[0] * _centre_grad(dga, territories[0], territories[1], territories[2])
        grad[o_u + n_groups : o_u + 2 * n_groups] = taus[1] * _centre_grad(
            dgb, territories[0], territories[1], territories[2]
        )
        grad[o_tau] = taus[0] * np.dot(uca, dga)
        grad[o_tau + 1] = taus[1] * np.dot(ucb, dgb)
    grad[o_cal : o_cal + n_cal] = g_gamma
    grad[o_cal + n_cal : o_cal + 2 * n_cal] = g_delta
    grad[o_reg : o_reg + n_reg] = g_beta_p
    grad[o_reg + n_reg : o_reg + 2 * n_reg] = g_beta_m
    # priors: the company levels, the half-normal scales (with the Jacobian of exp), the raw
    # deviations, the calendar and indicator coefficients
    means = (a_mean, b_mean)
    for j in range(2):
        dev = theta[j] - means[j]
        lp -= 0.5 * (dev / level_sd[j]) ** 2
        grad[j] -= dev / level_sd[j] ** 2
    for j in range(4 if n_groups else 2):
        at = 2 + j if j < 2 else o_tau + j - 2
        s = scales[j] if j < 2 else taus[j - 2]
        lp += -0.5 * s * s / half_normal[j] ** 2 + theta[at]
        grad[at] += -(s * s) / half_normal[j] ** 2 + 1.0
    for i in range(o_z, o_tau):
        lp -= 0.5 * theta[i] * theta[i]
        grad[i] -= theta[i]
    for i in range(o_u, o_u + 2 * n_groups if n_groups else o_u):
        lp -= 0.5 * theta[i] * theta[i]
        grad[i] -= theta[i]
    for c in range(n_cal):
        for i in (o_cal + c, o_cal + n_cal + c):
            lp -= 0.5 * (theta[i] / cal_sd[c]) ** 2
            grad[i] -= theta[i] / cal_sd[c] ** 2
    for i in range(o_reg, o_reg + 2 * n_reg):
        lp -= 0.5 * (theta[i] / beta_sd) ** 2
        grad[i] -= theta[i] / beta_sd**2
    return lp, grad
