"""Inference for :class:`~spm_models.models.hierarchical.model.HierarchicalBayes`: NUTS and ADVI.

One model, written twice on purpose:

* :func:`log_density`, the unnormalised log posterior and its gradient on the unconstrained
  parameters, written as loops compiled by numba
  (:func:`~spm_models.models.hierarchical.kernels.hurdle_log_density`). Both inference paths
  use it: :func:`fit_advi` (mean-field ADVI) and :func:`sample_nuts` (NUTS by nutpie, through
  :func:`nutpie_model`). PyMC's ``pm.fit`` spent about 10 s per fit building and compiling its
  variational graph and nutpie's ``compile_pymc_model`` 17-30 s per process, more than either
  optimisation or sampling of this model; this version is compiled once per machine (numba
  caches it on disk) and is four times faster per call than the numpy version it replaced.
* :func:`build_pymc_model`, the same model in PyMC: the reference
  (``tests/models/test_hierarchical.py`` checks that both agree, log density differences and
  gradients at random points), and what NUTS samples when nutpie is not installed.

Parameters (unconstrained in brackets): ``a0, b0``; ``omega_a, omega_b`` (log) with
half-normal priors; ``z_a, z_b`` per series; ``tau_a, tau_b`` (log) and ``u_a, u_b`` per
territory when there are territories; ``gamma, delta`` per calendar regressor; ``beta_p,
beta_m`` per indicator. Priors are in :class:`HurdleData`. The gamma shapes are not
parameters: they are estimated before inference by :func:`pearson_log_shape` and held fixed.

Zero-sum deviations: the raw ``z`` and ``u`` have N(0, 1) priors, but the model uses them
centred, ``zc_i = c_g (z_i - mean of z over i's territory)`` with ``c_g = sqrt(n_g / (n_g -
1))`` (so ``zc`` still has unit variance), and likewise ``u`` centred over territories
(:class:`Centering`). This is PyMC's ``ZeroSumNormal`` idea for
groups of unequal size: without it the territory effect and the mean of its agents' effects
(and the company level and the mean of the territories) can trade off against each other,
a ridge on which NUTS mixed the territory scale ``tau_a`` badly (effective sample sizes of
15-90 out of 1,000 draws on the synthetic organisation). The direction of the raw ``z`` that
centring removes only sees its prior, which samples trivially. ``a0`` is then the company
level, each territory effect is relative to it and each agent effect to its territory. A
territory with one agent gets no agent deviation (the territory effect is the agent's).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

__all__ = [
    "Centering",
    "HurdleData",
    "hurdle_data",
    "agent_effects",
    "layout",
    "log_density",
    "fit_advi",
    "model_data",
    "build_pymc_model",
    "sample_nuts",
    "pearson_log_shape",
    "nutpie_model",
    "identified",
]

_log = logging.getLogger(__name__)
#: Half-normal prior scales of the (log-transformed) scale parameters.
HALF_NORMAL = {"omega_a": 1.5, "omega_b": 0.5, "tau_a": 0.5, "tau_b": 0.5}
#: Prior sds of the company levels (their means come from the data, see :class:`HurdleData`).
LEVEL_SD = {"a0": 1.5, "b0": 1.0}
#: Prior sd of the indicator slopes (per standard deviation of the indicator).
BETA_SD = 0.5
#: Pseudo-cells of the company's dispersion in each series' gamma shape (:func:`pearson_log_shape`).
SHAPE_PRIOR_CELLS = 10.0


@dataclass(frozen=True)
class Centering:
    """Centre a vector within groups and rescale to unit variance: ``c_g (z_i - mean_g z)``.

    Attributes
    ----------
    codes : int array (n,)
        Group of each element.
    counts : array (n_groups,)
        Elements per group.
    factor : array (n,)
        ``sqrt(n_g / (n_g - 1))`` of each element's group (1 for a group of one, whose
        centred value is 0).
    """

    codes: np.ndarray
    counts: np.ndarray
    factor: np.ndarray

    @classmethod
    def of(cls, codes: np.ndarray, n_groups: int) -> Centering:
        codes = np.asarray(codes, dtype=np.int64)
        counts = np.bincount(codes, minlength=n_groups).astype(float)
        per = np.where(counts > 1, np.sqrt(counts / np.maximum(counts - 1, 1)), 1.0)
        return cls(codes, counts, per[codes])

    def apply(self, z: np.ndarray) -> np.ndarray:
        """Centred, rescaled ``z`` (last axis)."""
        means = _group_sums(z, self.codes, len(self.counts)) / np.maximum(self.counts, 1)
        return (z - means[..., self.codes]) * self.factor

    def grad(self, g: np.ndarray) -> np.ndarray:
        """Gradient with respect to ``z`` given the gradient ``g`` with respect to ``apply(z)``."""
        return self.apply(g * self.factor) / self.factor

    def membership(self) -> np.ndarray:
        """Dense ``(n, n_groups)`` 0/1 matrix of group membership (for the PyMC model)."""
        m = np.zeros((len(self.codes), len(self.counts)))
        m[np.arange(len(self.codes)), self.codes] = 1.0
        return m


def _group_sums(z: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    if z.ndim == 1:
        return np.bincount(codes, weights=z, minlength=n_groups)
    out = np.zeros(z.shape[:-1] + (n_groups,))
    np.add.at(out, (..., codes), z)
    return out


@dataclass(frozen=True)
class HurdleData:
    """Observed cells of the hurdle model and the data-centred prior locations.

    Attributes
    ----------
    series : int array (n_cells,)
        Series index of each observed cell.
    pos : bool array (n_cells,)
        ``y > 0``.
    cal, x : arrays (n_cells, n_cal), (n_cells, n_reg)
        Calendar and lagged standardised indicator regressors.
    ypos, logy : arrays (n_pos,)
        ``y / scale`` of the positive cells and its log.
    group_codes : int array (n_series,)
        Territory of each series; ``n_groups = 0`` means no territory level.
    a_mean, b_mean : float
        Prior means of ``a0`` (logit of the share of positive cells) and ``b0`` (log of the
        mean of ``ypos``).
    log_shape : array (n_series,)
        Log gamma shape of each series' amounts, fixed (:func:`pearson_log_shape`).
    cal_sd : array (n_cal,)
        Prior sd of each calendar coefficient (0.5 for the push, 0.3 for Fourier terms).
    series_pos, cal_pos, x_pos : arrays
        ``series``, ``cal`` and ``x`` of the positive cells.
    cal_rows, row, row_pos : arrays
        The distinct rows of ``cal`` ``(n_rows, n_cal)``, and the row of each cell and of each
        positive cell (``cal == cal_rows[row]``).
    n_pos : array (n_series,)
        Positive cells per series.
    in_territory, territories : Centering
        Centring of ``z_a, z_b`` (within territory, or over all series without territories)
        and of ``u_a, u_b`` (over territories).
    """

    series: np.ndarray
    pos: np.ndarray
    cal: np.ndarray
    x: np.ndarray
    ypos: np.ndarray
    logy: np.ndarray
    group_codes: np.ndarray
    n_series: int
    n_groups: int
    a_mean: float
    b_mean: float
    log_shape: np.ndarray
    cal_sd: np.ndarray
    series_pos: np.ndarray
    n_pos: np.ndarray
    cal_pos: np.ndarray
    x_pos: np.ndarray
    row: np.ndarray
    row_pos: np.ndarray
    cal_rows: np.ndarray
    in_territory: Centering
    territories: Centering

    @cached_property
    def kernel_args(self) -> tuple:
        """Everything :func:`~spm_models.models.hierarchical.kernels.hurdle_log_density` reads
        besides ``theta``, packed once."""

        def centring(c: Centering) -> tuple:
            return (c.codes, np.ascontiguousarray(c.counts, dtype=float), np.ascontiguousarray(c.factor, dtype=float))

        cells = (self.series, self.row, self.pos, self.x, self.series_pos, self.row_pos, self.x_pos)
        cells += (self.ypos, self.logy, self.cal_rows, self.n_pos, np.ascontiguousarray(self.log_shape, dtype=float))
        half_normal = np.array([HALF_NORMAL[k] for k in ("omega_a", "omega_b", "tau_a", "tau_b")])
        level_sd = np.array([LEVEL_SD[k] for k in ("a0", "b0")])
        priors = (self.a_mean, self.b_mean, np.asarray(self.cal_sd, dtype=float), level_sd)
        priors += (half_normal, float(BETA_SD))
        territories = (self.in_territory, self.territories)
        return (self.n_groups, self.group_codes, *map(centring, territories), cells, priors)


def hurdle_data(
    cells: dict[str, np.ndarray],
    *,
    group_codes: np.ndarray,
    n_series: int,
    n_groups: int,
    cal_names: list[str],
    scale: float,
) -> HurdleData:
    """Arrange flattened observed cells (``series, y, cal, x``) for inference.

    ``n_groups`` below 2 means no territory level.
    """
    y = cells["y"]
    pos = y > 0
    # one memory layout and dtype per array, so the compiled cell loop has one signature
    cal, x = (np.ascontiguousarray(cells[k], dtype=float) for k in ("cal", "x"))
    cal_rows, row = np.unique(cal.reshape(len(cal), -1), axis=0, return_inverse=True)
    row = row.reshape(-1).astype(np.int64)
    share = float(np.clip(pos.mean(), 0.02, 0.98)) if len(y) else 0.5
    ypos = y[pos] / scale
    series_pos = cells["series"][pos].astype(np.int64)
    logy = np.log(ypos)
    n_groups = int(n_groups) if n_groups > 1 else 0
    group_codes = np.asarray(group_codes, dtype=np.int64) if n_groups else np.zeros(n_series, dtype=np.int64)
    company = Centering.of(np.zeros(n_series, dtype=np.int64), 1)
    cal_pos, x_pos = cal[pos], x[pos]
    return HurdleData(
        series=cells["series"].astype(np.int64),
        pos=pos,
        cal=cal,
        x=x,
        ypos=ypos,
        logy=logy,
        group_codes=group_codes,
        n_series=int(n_series),
        n_groups=n_groups,
        a_mean=float(np.log(share / (1 - share))),
        b_mean=float(np.log(ypos.mean())) if logy.size else 0.0,
        log_shape=pearson_log_shape(ypos, series_pos, np.column_stack([cal_pos, x_pos]), int(n_series)),
        cal_sd=np.where(np.char.startswith(np.array(cal_names, dtype=str), "quarter_"), 0.5, 0.3),
        series_pos=series_pos,
        n_pos=np.bincount(series_pos, minlength=int(n_series)).astype(float),
        cal_pos=cal_pos,
        row=row,
        row_pos=row[pos],
        cal_rows=np.ascontiguousarray(cal_rows),
        x_pos=x_pos,
        in_territory=Centering.of(group_codes, n_groups) if n_groups else company,
        territories=Centering.of(np.zeros(max(n_groups, 1), dtype=np.int64), 1),
    )


def pearson_log_shape(
    y: np.ndarray,
    series: np.ndarray,
    design: np.ndarray,
    n_series: int,
    *,
    prior_cells: float = SHAPE_PRIOR_CELLS,
    iterations: int = 8,
) -> np.ndarray:
    """Log gamma shape of each series' positive amounts, by Pearson's moment estimator.

    The amounts' means are fitted first by a gamma GLM with log link, one level per series and
    shared slopes on ``design`` (the calendar and indicator columns of the positive cells, as
    the model's ``mu``), by iteratively reweighted least squares (a gamma GLM's working weights
    are constant, so each step is least squares of ``z = eta + y / mu - 1``). The dispersion
    ``phi = 1 / k`` is then estimated from the Pearson residuals ``r = y / mu - 1``: over all
    series ``phi_c = sum r^2 / (n - n_levels - n_slopes)``, and per series shrunk towards it
    with ``prior_cells`` pseudo-cells, ``phi_i = (sum_i r^2 + prior_cells phi_c) / (n_i - 1 +
    prior_cells)``, so a series with few sales keeps about the company's shape.

    Why not estimate ``k`` with the rest of the model: the likelihood's estimate of a gamma
    shape rests on the mean of ``log y``, which the smallest amounts dominate (McCullagh and
    Nelder, *Generalized Linear Models*, 2nd ed., 8.3.6, recommend the moment estimator for
    that reason). Weekly bookings mix a few small deals with large ones: on Maven the
    likelihood put the shapes 30% below the moment estimates, most for the smallest agents,
    whose means the model then thought uncertain enough to pull them 40-50% towards their
    territory's (bench/README.md). The shapes' uncertainty is not propagated; with dozens of
    positive cells per agent it is small next to the means'.

    Parameters
    ----------
    y : array (n_pos,)
        Positive amounts (scaled).
    series : int array (n_pos,)
        Series of each amount.
    design : array (n_pos, p)
        Shared regressors of the log mean.
    n_series : int

    Returns
    -------
    array (n_series,)
        ``log k_i``; without any degree of freedom left (too few amounts) every series gets
        ``k = 1`` (exponential amounts).
    """
    n_series = int(n_series)
    counts = np.bincount(series, minlength=n_series).astype(float)
    if not y.size:
        return np.zeros(n_series)
    per = np.maximum(counts, 1.0)

    def series_mean(v: np.ndarray) -> np.ndarray:
        return _group_sums(v, series, n_series) / per

    p = design.shape[1]
    # the slopes act within series: their columns centred on each series' mean
    centred = design - np.column_stack([series_mean(design[:, c])[series] for c in range(p)]) if p else design
    level = np.log(series_mean(y) + 1e-300)
    beta = np.zeros(p)
    for _ in range(iterations):
        eta = level[series] + design @ beta
        z = eta + y * np.exp(-eta) - 1.0
        if p:
            beta = np.linalg.lstsq(centred, z - series_mean(z)[series], rcond=None)[0]
        level = series_mean(z - design @ beta)
    r2 = (y * np.exp(-(level[series] + design @ beta)) - 1.0) ** 2
    dof = y.size - np.count_nonzero(counts) - p
    if dof <= 0:
        return np.zeros(n_series)
    phi_c = r2.sum() / dof
    phi = (_group_sums(r2, series, n_series) + prior_cells * phi_c) / (np.maximum(counts - 1.0, 0.0) + prior_cells)
    return -np.log(np.clip(phi, 1e-3, 1e3))


def agent_effects(s: dict[str, np.ndarray], d: HurdleData) -> dict[str, np.ndarray]:
    """Per-series ``a``, ``b`` and gamma ``shape`` ``(S, n_series)`` from posterior samples
    (the shapes are fixed, :func:`pearson_log_shape`, so every sample has the same).

    Scalars in ``s`` have shape ``(S,)``, per-series and per-territory blocks ``(S, size)``.
    """
    a = s["a0"][:, None] + s["omega_a"][:, None] * d.in_territory.apply(s["z_a"])
    b = s["b0"][:, None] + s["omega_b"][:, None] * d.in_territory.apply(s["z_b"])
    if d.n_groups:
        a = a + (s["tau_a"][:, None] * d.territories.apply(s["u_a"]))[:, d.group_codes]
        b = b + (s["tau_b"][:, None] * d.territories.apply(s["u_b"]))[:, d.group_codes]
    shape = np.broadcast_to(np.exp(d.log_shape), a.shape).copy()
    return {"a": a, "b": b, "shape": shape}


def layout(d: HurdleData) -> list[tuple[str, int, bool]]:
    """Blocks of the unconstrained parameter vector: ``(name, size, log_transformed)``."""
    n, g, c, r = d.n_series, d.n_groups, d.cal.shape[1], d.x.shape[1]
    blocks = [
        ("a0", 1, False),
        ("b0", 1, False),
        ("omega_a", 1, True),
        ("omega_b", 1, True),
        ("z_a", n, False),
        ("z_b", n, False),
    ]
    if g:
        blocks += [("tau_a", 1, True), ("tau_b", 1, True), ("u_a", g, False), ("u_b", g, False)]
    blocks += [("gamma", c, False), ("delta", c, False)]
    if r:
        blocks += [("beta_p", r, False), ("beta_m", r, False)]
    return blocks


def _split(theta: np.ndarray, blocks) -> dict[str, np.ndarray]:
    """Views of ``theta`` (..., dim) per block; scalars keep a trailing axis of 1."""
    out, i = {}, 0
    for name, size, _ in blocks:
        out[name] = theta[..., i : i + size]
        i += size
    return out


def log_density(theta: np.ndarray, d: HurdleData, blocks=None) -> tuple[float, np.ndarray]:
    """Unnormalised log posterior on the unconstrained scale and its gradient.

    ``theta`` is laid out as ``layout(d)`` (``blocks``, when given, must be it). Log-transformed
    scales ``s = exp(rho)`` carry the Jacobian ``+ rho``. Constants are dropped, so only
    differences and gradients are meaningful. Computed by the compiled
    :func:`~spm_models.models.hierarchical.kernels.hurdle_log_density`.
    """
    lp, grad = _compiled()(np.ascontiguousarray(theta, dtype=float), *d.kernel_args)
    return float(lp), grad


_KERNEL = None


def _compiled():
    """The compiled density, imported at the first fit: importing numba takes about a quarter
    of a CPU second, which every process that imports :mod:`spm_models.models` (a report
    kernel server, the command line, a worker) would otherwise pay without fitting anything."""
    global _KERNEL
    if _KERNEL is None:
        from spm_models.models.hierarchical.kernels import hurdle_log_density

        _KERNEL = hurdle_log_density
    return _KERNEL


def _initial(d: HurdleData, blocks) -> np.ndarray:
    theta = np.zeros(sum(s for _, s, _ in blocks))
    p = _split(theta, blocks)
    p["a0"][:], p["b0"][:] = d.a_mean, d.b_mean
    for name, s in HALF_NORMAL.items():
        if name in p:
            p[name][:] = np.log(0.5 * s)
    return theta


def fit_advi(
    d: HurdleData,
    *,
    iterations: int,
    n_samples: int,
    rng: np.random.Generator,
    learning_rate: float = 0.05,
    window: int = 200,
    decays: int = 8,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Mean-field ADVI: ``q = N(m, diag(exp(2 w)))`` on the unconstrained parameters.

    Adam ascent of the ELBO with one reparameterised sample per step
    (``theta = m + exp(w) eps``; gradients ``g`` and ``g eps exp(w) + 1`` for ``g`` the
    gradient of :func:`log_density`). The ELBO estimates are averaged over windows of
    ``window`` steps; when a window fails to beat the previous one by two standard errors,
    the learning rate is halved, and after ``decays`` halvings the optimisation stops (or
    after ``iterations`` steps, with a warning). The result is the average of ``m`` and
    ``w`` over the last window, so the stochastic-gradient noise averages out. Eight halvings
    (the learning rate ends at 1/256 of its start): with five, a fit stopped while its
    gradient noise still moved the forecast, and the company total of the Maven agents' forecast
    moved by 0.5% (sd) with the seed alone and sat up to 0.4% off NUTS'; with eight, 0.24% (the
    forecast simulation's own noise is 0.14%) and within 0.1% of NUTS', for about a third more
    steps (``bench/hb_seeds.py``).

    Returns
    -------
    samples : dict
        ``n_samples`` draws from ``q`` per parameter, constrained (scales exponentiated);
        scalars have shape ``(n_samples,)``, blocks ``(n_samples, size)``.
    info : dict
        ``iterations`` run, ``converged`` and the last window's mean ELBO estimate ``elbo``.
    """
    blocks = layout(d)
    m0 = _initial(d, blocks)
    dim = m0.size
    params = np.concatenate([m0, np.full(dim, -2.0)])
    mom, vel = np.zeros_like(params), np.zeros_like(params)
    b1, b2, eps_adam = 0.9, 0.999, 1e-8
    lr, n_decays = learning_rate, 0
    acc = np.zeros_like(params)
    elbos = np.zeros(window)
    prev_elbo, final, elbo = None, None, float("nan")
    step = 0
    for step in range(1, iterations + 1):
        sd = np.exp(params[dim:])
        eps = rng.standard_normal(dim)
        lp, g = log_density(params[:dim] + sd * eps, d, blocks)
        grad = np.concatenate([g, g * eps * sd + 1.0])
        mom = b1 * mom + (1 - b1) * grad
        vel = b2 * vel + (1 - b2) * grad**2
        params = params + lr * (mom / (1 - b1**step)) / (np.sqrt(vel / (1 - b2**step)) + eps_adam)
        acc += params
        elbos[(step - 1) % window] = lp + float(params[dim:].sum())
        if step % window == 0:
            final, acc = acc / window, np.zeros_like(params)
            elbo, se = float(elbos.mean()), float(elbos.std() / np.sqrt(window))
            if prev_elbo is not None and elbo - prev_elbo < 2.0 * se:
                lr, n_decays = lr / 2.0, n_decays + 1
            prev_elbo = elbo
            if n_decays >= decays:
                break
    converged = n_decays >= decays
    if final is None:
        final = params
    if not converged:
        _log.warning(
            "HierarchicalBayes ADVI stopped after %d iterations before converging; raise advi_iterations", step
        )
    theta = final[:dim] + np.exp(final[dim:]) * rng.standard_normal((n_samples, dim))
    samples = {}
    for name, _size, log_t in blocks:
        block = _split(theta, blocks)[name]
        vals = np.exp(block) if log_t else block
        samples[name] = vals[:, 0].copy() if name in ("a0", "b0") or log_t else vals.copy()
    return samples, {"iterations": step, "converged": converged, "elbo": elbo}


def model_data(d: HurdleData, *, n_reg: int) -> dict[str, np.ndarray]:
    """Values of the ``pm.Data`` containers of :func:`build_pymc_model`, by container name.

    Everything the PyMC model reads from ``d`` is in a container, except the centring over all
    series and over territories (which depend only on their numbers), so the model computes
    the density of another data set with the same blocks once these values are swapped in
    (``Model.set_data``). ``n_reg`` is the number of indicator regressors.

    Returns
    -------
    dict
        ``data_priors`` ``[a_mean, b_mean, *cal_sd, *territory sizes]``;
        ``data_per_series`` ``[centring factor within territory, n_pos, log_shape, *territory
        membership]`` (``d.in_territory``: one territory of all series without territories);
        ``data_series`` and ``data_positive`` (int) and ``data_cells`` ``[cal | x]`` per cell;
        and when any cell is positive ``data_series_pos`` and ``data_pos_cells``
        ``[cal | x | ypos | logy]`` of the positive cells.
    """
    c = d.in_territory
    out = {
        "data_priors": np.r_[d.a_mean, d.b_mean, d.cal_sd, np.maximum(c.counts, 1)].astype(float),
        "data_per_series": np.column_stack([c.factor, d.n_pos, d.log_shape, c.membership()]).astype(float),
        "data_series": d.series,
        "data_positive": d.pos.astype(np.int8),
        "data_cells": np.column_stack([d.cal, d.x[:, :n_reg]]).astype(float),
    }
    if d.pos.any():
        out["data_series_pos"] = d.series_pos
        out["data_pos_cells"] = np.column_stack([d.cal_pos, d.x_pos[:, :n_reg], d.ypos, d.logy]).astype(float)
    return out


def build_pymc_model(d: HurdleData, *, cal_names: list[str], reg_names: list[str]):
    """The hurdle model in PyMC (same density as :func:`log_density`, which the tests check).

    The data enter through ``pm.Data`` containers (:func:`model_data`). NUTS samples it only
    when nutpie is missing (:func:`sample_nuts`).
    """
    import pymc as pm
    import pytensor.tensor as pt

    n_cal, n_reg = len(cal_names), len(reg_names)
    coords = {"series": np.arange(d.n_series), "cal": cal_names, "reg": reg_names}
    if d.n_groups:
        coords["group"] = np.arange(d.n_groups)
    with pm.Model(coords=coords) as model:
        v = {name: pm.Data(name, value) for name, value in model_data(d, n_reg=n_reg).items()}
        priors, per_series, cells = v["data_priors"], v["data_per_series"], v["data_cells"]
        # d.in_territory from the containers; the other two centrings depend on the key only
        territory = (per_series[:, 3:], priors[2 + n_cal :], per_series[:, 0])
        a0 = pm.Normal("a0", priors[0], LEVEL_SD["a0"])
        b0 = pm.Normal("b0", priors[1], LEVEL_SD["b0"])
        hn = {k: pm.HalfNormal(k, s) for k, s in HALF_NORMAL.items() if d.n_groups or not k.startswith("tau")}
        a = a0 + hn["omega_a"] * _centred(pm.Normal("z_a", 0, 1, dims="series"), *territory)
        b = b0 + hn["omega_b"] * _centred(pm.Normal("z_b", 0, 1, dims="series"), *territory)
        log_shape = per_series[:, 2]  # fixed shapes (pearson_log_shape)
        if d.n_groups:  # a territory's offset reaches its agents through the membership matrix
            groups = _constant(d.territories)
            a = a + pt.dot(territory[0], hn["tau_a"] * _centred(pm.Normal("u_a", 0, 1, dims="group"), *groups))
            b = b + pt.dot(territory[0], hn["tau_b"] * _centred(pm.Normal("u_b", 0, 1, dims="group"), *groups))
        gamma = pm.Normal("gamma", 0, priors[2 : 2 + n_cal], dims="cal")
        delta = pm.Normal("delta", 0, priors[2 : 2 + n_cal], dims="cal")
        eta = a[v["data_series"]] + pm.math.dot(cells[:, :n_cal], gamma)
        if reg_names:
            eta = eta + pm.math.dot(cells[:, n_cal:], pm.Normal("beta_p", 0, BETA_SD, dims="reg"))
            beta_m = pm.Normal("beta_m", 0, BETA_SD, dims="reg")
        pm.Bernoulli("positive", logit_p=eta, observed=v["data_positive"])
        if d.pos.any():
            pos_cells, series_pos = v["data_pos_cells"], v["data_series_pos"]
            ypos, logy = pos_cells[:, n_cal + n_reg], pos_cells[:, n_cal + n_reg + 1]
            mu = b[series_pos] + pm.math.dot(pos_cells[:, :n_cal], delta)
            if reg_names:
                mu = mu + pm.math.dot(pos_cells[:, n_cal : n_cal + n_reg], beta_m)
            # the gamma log density written out, so log-gamma of the shapes is taken once per
            # series (not per positive cell) and PyMC's parameter checks stay out of the graph
            lk = log_shape[series_pos]
            k = pm.math.exp(lk)
            pm.Potential(
                "amount",
                pm.math.sum(k * (lk - mu - ypos * pm.math.exp(-mu)) + (k - 1.0) * logy)
                - pm.math.dot(per_series[:, 1], pt.gammaln(pm.math.exp(log_shape))),
            )
    return model


def _constant(c: Centering) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Membership matrix, group sizes (at least 1) and factors of a centring, for :func:`_centred`."""
    return c.membership(), np.maximum(c.counts, 1), c.factor


def _centred(z, membership, counts, factor):
    """:meth:`Centering.apply` on a PyTensor vector: ``factor * (z - group mean of z)``."""
    import pytensor.tensor as pt

    return (z - pt.dot(membership, pt.dot(membership.T, z) / counts)) * factor


def nutpie_model(d: HurdleData, *, blocks=None):
    """:func:`log_density` as a nutpie model (``nutpie.from_pyfunc``): nothing to compile.

    nutpie's own route, ``compile_pymc_model`` on :func:`build_pymc_model`, spent 17-30 s of
    every new process compiling the PyMC graph with numba (more than the sampling), and its
    compiled gradient was no faster than :func:`log_density` (about 0.4 ms on the 50-agent
    example). The variables are the blocks of :func:`layout`, constrained (scales
    exponentiated; the company levels and scales as scalars), so the draws have the names and
    shapes of the PyMC model's free variables. A chain starts at the prior-centred point of
    :func:`fit_advi` with every coordinate moved by ``U(-1, 1)``, as PyMC jitters its start.
    """
    from nutpie.compiled_pyfunc import from_pyfunc

    blocks = layout(d) if blocks is None else blocks
    start = _initial(d, blocks)
    scalar = {name for name, _, log_t in blocks if log_t or name in LEVEL_SD}

    def make_logp_fn():
        return lambda theta, **_: log_density(theta, d, blocks)

    def make_expand_fn(*_seeds):
        def expand(theta, **_):
            out = {}
            for (name, _size, log_t), v in zip(blocks, _split(theta, blocks).values()):
                v = np.exp(v) if log_t else v.copy()
                out[name] = v.reshape(()) if name in scalar else v
            return out

        return expand

    def initial_point(seed):
        return start + np.random.default_rng(seed).uniform(-1.0, 1.0, start.size)

    return from_pyfunc(
        start.size,
        make_logp_fn,
        make_expand_fn,
        [np.dtype("float64")] * len(blocks),
        [() if name in scalar else (size,) for name, size, _ in blocks],
        [name for name, _, _ in blocks],
        make_initial_point_fn=initial_point,
    )


def sample_nuts(
    d: HurdleData,
    *,
    cal_names: list[str],
    reg_names: list[str],
    draws: int,
    tune: int,
    chains: int,
    target_accept: float,
    seed: int,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """NUTS draws ``{name: (chains * draws, ...)}`` of the free variables, and diagnostics.

    nutpie on :func:`log_density` (:func:`nutpie_model`) when nutpie is installed, else PyMC's
    NUTS on :func:`build_pymc_model`. Diagnostics: ``sampler``, ``divergences``, and with two
    chains or more ``max_rhat`` and ``min_ess_bulk`` over the identified quantities
    (:func:`identified`): the raw ``z`` and ``u`` also move along the direction the zero-sum
    centring removes from the model, which only its prior sees and which may mix slowly
    without mattering to anything.
    """
    try:
        import nutpie
    except ImportError:  # PyMC's own NUTS when nutpie is not installed
        nutpie = None
    cores = min(chains, os.cpu_count() or 1)
    if nutpie is not None:
        names = [name for name, _, _ in layout(d)]
        idata = nutpie.sample(
            nutpie_model(d),
            draws=draws,
            tune=tune,
            chains=chains,
            cores=cores,
            seed=seed,
            target_accept=target_accept,
            progress_bar=False,
        )
        sampler = "nutpie"
    else:
        import pymc as pm

        model = build_pymc_model(d, cal_names=cal_names, reg_names=reg_names)
        names = [v.name for v in model.free_RVs]
        with model:
            idata = pm.sample(
                draws=draws,
                tune=tune,
                chains=chains,
                cores=cores,
                target_accept=target_accept,
                random_seed=seed,
                progressbar=False,
                compute_convergence_checks=False,
                var_names=names,
            )
        sampler = "pymc"
    samples = {}
    for name in names:
        arr = np.asarray(idata.posterior[name].to_numpy(), dtype=float)
        samples[name] = arr.reshape((-1,) + arr.shape[2:])
    div = idata.sample_stats["diverging"].to_numpy() if "diverging" in idata.sample_stats else np.zeros(1)
    diag: dict[str, Any] = {"sampler": sampler, "divergences": int(np.sum(div))}
    if chains > 1:
        import arviz as az

        per_chain = {k: v.reshape((chains, -1) + v.shape[1:]) for k, v in identified(samples, d).items()}
        data = az.convert_to_dataset(per_chain)
        rhat, ess = az.rhat(data), az.ess(data, method="bulk")
        diag["max_rhat"] = float(max(float(rhat[k].max()) for k in per_chain))
        diag["min_ess_bulk"] = float(min(float(ess[k].min()) for k in per_chain))
    if diag["divergences"]:
        _log.warning(
            "HierarchicalBayes: %d divergent NUTS transitions; the posterior may be biased", diag["divergences"]
        )
    return samples, diag


def identified(samples: dict[str, np.ndarray], d: HurdleData) -> dict[str, np.ndarray]:
    """The quantities the likelihood and priors pin down, from samples ``(S, ...)``.

    Company levels, scales, calendar and indicator coefficients as sampled; per-agent ``a`` and
    ``b`` (:func:`agent_effects`) and the territory offsets ``tau * centred(u)``.
    """
    raw = ("z_a", "z_b", "u_a", "u_b")
    out = {k: v for k, v in samples.items() if k not in raw}
    effects = agent_effects(samples, d)
    out.update(a=effects["a"], b=effects["b"])  # the shapes are fixed, not sampled
    if d.n_groups:
        out["territory_a"] = samples["tau_a"][:, None] * d.territories.apply(samples["u_a"])
        out["territory_b"] = samples["tau_b"][:, None] * d.territories.apply(samples["u_b"])
    return out
