"""HierarchicalBayes: coherent hierarchy forecasts, regressor lags, the two inference paths.

Default tests use ADVI on a few agents (fast, no PyMC import except the density checks).
The recovery and calibration checks on the synthetic organisation are ``slow``:
``.venv/bin/python -m pytest -m slow tests/models/test_hierarchical.py``.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from spm_models.exceptions import ConfigError, DataError
from spm_models.models import MODELS, Forecast
from spm_models.models.hierarchical.design import calendar_features, lag_and_standardize, simulate_hurdle
from spm_models.models.hierarchical.inference import (
    Centering,
    _split,
    build_pymc_model,
    fit_advi,
    hurdle_data,
    layout,
    log_density,
    model_data,
    nutpie_model,
    pearson_log_shape,
)
from spm_models.models.hierarchical.model import COMPANY_ID, HierarchicalBayes, _effects

START = pd.Timestamp("2024-01-01")  # a Monday
FAST = {"method": "advi", "draws": 100, "chains": 1}
AGENTS = {"a1": "north", "a2": "north", "a3": "north", "b1": "south", "b2": "south", "b3": "south"}


def _frame(n_weeks: int = 40, seed: int = 0) -> pd.DataFrame:
    """Six agents in two territories: zero-heavy lognormal bookings and an indicator ``x``."""
    rng = np.random.default_rng(seed)
    ds = pd.date_range(START, periods=n_weeks, freq="W-MON")
    rows = []
    for k, (uid, terr) in enumerate(AGENTS.items()):
        hit = rng.random(n_weeks) < 0.3 + 0.05 * k
        y = np.where(hit, np.round(rng.lognormal(8.0, 0.8, n_weeks)), 0.0)
        x = rng.poisson(5, n_weeks).astype(float)
        rows.append(pd.DataFrame({"unique_id": uid, "ds": ds, "y": y, "x": x, "group": terr}))
    return pd.concat(rows, ignore_index=True)


FRAME = _frame()


# Fitted once per module (an ADVI fit is a quarter of a CPU second). predict draws from a
# generator seeded by the fit, so a fitted model gives the same forecast to every test; a test
# that changes one works on a copy.
@pytest.fixture(scope="module")
def fitted():
    return HierarchicalBayes(**FAST).fit(FRAME)


@pytest.fixture(scope="module")
def fitted_x2():
    return HierarchicalBayes(**FAST, regressors={"x": 2}, random_state=3).fit(FRAME)


def test_registered_in_the_contract_suite():
    assert HierarchicalBayes in MODELS


# ---------------------------------------------------------------------- hierarchy


def test_predict_hierarchy_schema_and_exact_coherence(fitted):
    fc = fitted.predict_hierarchy(4, n_draws=50)
    assert isinstance(fc, Forecast)
    agents = sorted(AGENTS)
    assert list(fc.unique_ids) == agents + ["territory:north", "territory:south", COMPANY_ID]
    assert fc.draws.shape == (9, 4, 50)
    q = fc.quantiles
    assert list(q.columns) == ["unique_id", "ds", "model", "mean", "q0.025", "q0.1", "q0.5", "q0.9", "q0.975"]
    assert (q["model"] == "HierarchicalBayes").all() and not fc.fallback["fallback"].any()
    expected_ds = pd.date_range(START + pd.Timedelta(weeks=40), periods=4, freq="W-MON")
    assert list(q.loc[q["unique_id"] == COMPANY_ID, "ds"]) == list(expected_ds)
    d = dict(zip(fc.unique_ids, fc.draws))
    # sums of the same draws, in any order of addition: exact to rounding
    np.testing.assert_allclose(d["territory:north"], d["a1"] + d["a2"] + d["a3"], rtol=1e-12)
    np.testing.assert_allclose(d["territory:south"], d["b1"] + d["b2"] + d["b3"], rtol=1e-12)
    np.testing.assert_allclose(d[COMPANY_ID], sum(d[a] for a in agents), rtol=1e-12)
    assert (fc.draws >= 0).all()
    # agent rows are exactly what predict returns
    agent_fc = fitted.predict(4, n_draws=50)
    np.testing.assert_array_equal(fc.draws[:6], agent_fc.draws)


def test_groups_mapping_and_group_column_give_the_same_model(fitted):
    a = fitted.predict_hierarchy(3, n_draws=30)
    b = HierarchicalBayes(**FAST, groups=AGENTS).fit(FRAME.drop(columns="group")).predict_hierarchy(3, n_draws=30)
    np.testing.assert_array_equal(a.draws, b.draws)
    assert list(a.unique_ids) == list(b.unique_ids)


def test_without_groups_the_hierarchy_is_agents_and_company():
    fc = HierarchicalBayes(**FAST).fit(FRAME.drop(columns="group")).predict_hierarchy(2, n_draws=20)
    assert list(fc.unique_ids) == sorted(AGENTS) + [COMPANY_ID]


def test_missing_or_changing_territory_is_a_data_error():
    with pytest.raises(DataError, match="no territory in groups: b3"):
        HierarchicalBayes(**FAST, groups={k: v for k, v in AGENTS.items() if k != "b3"}).fit(FRAME)
    moved = FRAME.copy()
    moved.loc[(moved["unique_id"] == "a1") & (moved["ds"] > START + pd.Timedelta(weeks=20)), "group"] = "south"
    with pytest.raises(DataError, match="change territory over time: a1"):
        HierarchicalBayes(**FAST).fit(moved)


# ---------------------------------------------------------------------- regressors


def test_lag_and_standardize_by_hand():
    # one regressor, two series; series 1 is one period shorter (NaN padding on the left)
    x = np.array([[[1.0, 2.0, 3.0, 6.0], [np.nan, 5.0, 5.0, 5.0]]])
    lagged, tail = lag_and_standardize(x, np.array([2]), 2)
    # series 0: mean 3, population sd sqrt(14/4) -> z = (-2, -1, 0, 3) / sqrt(3.5)
    z0 = np.array([-2.0, -1.0, 0.0, 3.0]) / np.sqrt(3.5)
    np.testing.assert_allclose(lagged[0, 0], [0.0, 0.0, z0[0], z0[1]])
    np.testing.assert_allclose(tail[0, 0], z0[2:])
    # a constant series standardises to 0
    np.testing.assert_array_equal(lagged[0, 1], 0.0)
    np.testing.assert_array_equal(tail[0, 1], 0.0)


def test_forecasts_use_the_regressor_value_lag_periods_back(fitted_x2):
    """Plant a posterior where log(y / scale) equals the regressor (a near-constant gamma amount),
    then read it off the draws."""
    model = copy.deepcopy(fitted_x2)
    n, S = 6, model.posterior_["a"].shape[0]
    model.posterior_ = {
        "a": np.full((S, n), 50.0),
        "b": np.zeros((S, n)),
        "shape": np.full((S, n), 1e24),
        "gamma": np.zeros((S, len(model.calendar_names_))),
        "delta": np.zeros((S, len(model.calendar_names_))),
        "beta_p": np.zeros((S, 1)),
        "beta_m": np.ones((S, 1)),
    }
    fc = model.predict(2, n_draws=5)
    x = FRAME.pivot(index="unique_id", columns="ds", values="x").to_numpy()
    z = (x - x.mean(axis=1, keepdims=True)) / x.std(axis=1, keepdims=True)
    # step k sees x at T + k - 2: the last two observed periods
    np.testing.assert_allclose(np.log(fc.draws[:, :, 0] / model.scale_), z[:, -2:], atol=1e-9)
    np.testing.assert_allclose(fc.draws[:, :, 0], fc.draws[:, :, 4])


def test_horizon_beyond_the_shortest_lag_is_a_config_error():
    frame = FRAME.assign(x2=FRAME["x"] * 2)
    model = HierarchicalBayes(**FAST, regressors={"x": 3, "x2": 2}).fit(frame)
    assert model.predict(2, n_draws=10).h == 2
    with pytest.raises(ConfigError, match="regressor 'x2' enters with a lag of 2"):
        model.predict(3, n_draws=10)
    with pytest.raises(ConfigError, match="lag of 2"):
        model.predict_hierarchy(3, n_draws=10)


@pytest.mark.parametrize("lag", [0, -1, 1.5, True])
def test_regressor_lag_must_be_a_positive_whole_number(lag):
    with pytest.raises(ConfigError, match="lag"):
        HierarchicalBayes(**FAST, regressors={"x": lag}).fit(FRAME)


def test_bad_regressor_columns_are_data_errors():
    with pytest.raises(DataError, match="regressor column is missing"):
        HierarchicalBayes(**FAST, regressors={"demos": 3}).fit(FRAME)
    holes = FRAME.copy()
    holes.loc[[3, 50], "x"] = np.nan
    with pytest.raises(DataError, match="2 rows are empty"):
        HierarchicalBayes(**FAST, regressors={"x": 3}).fit(holes)


def test_invalid_method_is_a_config_error():
    with pytest.raises(ConfigError, match="method must be one of nuts, advi"):
        HierarchicalBayes(method="pathfinder").fit(FRAME)


# ---------------------------------------------------------------------- calendar


def test_calendar_features_by_hand():
    ds = np.array(["2024-03-18", "2024-03-25", "2024-03-11", "2024-04-01"], dtype="datetime64[D]")
    feats, names = calendar_features(ds, "W-MON", yearly_terms=1, fiscal_year_start=1)
    assert names == ["quarter_end_push", "year_sin1", "year_cos1"]
    # weeks 11 and 12 of the quarter (from 1 Jan: days 77 and 84 -> weeks 11, 12) are the push
    np.testing.assert_array_equal(feats[:, 0], [1.0, 1.0, 0.0, 0.0])
    # 1 April 2024 is day 91 of the year (0-based)
    np.testing.assert_allclose(feats[3, 1:], [np.sin(2 * np.pi * 91 / 365.25), np.cos(2 * np.pi * 91 / 365.25)])
    monthly, _ = calendar_features(
        np.array(["2024-03-01", "2024-02-01"], dtype="datetime64[D]"), "MS", yearly_terms=0, fiscal_year_start=1
    )
    np.testing.assert_array_equal(monthly[:, 0], [1.0, 0.0])


# ---------------------------------------------------------------------- reproducibility and effects


def test_seed_reproducibility_of_hierarchy_and_effects(fitted_x2):
    kw = {**FAST, "regressors": {"x": 2}}
    a = fitted_x2  # random_state=3
    b = HierarchicalBayes(**kw, random_state=3).fit(FRAME)
    c = HierarchicalBayes(**kw, random_state=4).fit(FRAME)
    np.testing.assert_array_equal(a.predict_hierarchy(2, n_draws=40).draws, b.predict_hierarchy(2, n_draws=40).draws)
    pd.testing.assert_frame_equal(a.effects_, b.effects_)
    assert not np.array_equal(a.predict_hierarchy(2, n_draws=40).draws, c.predict_hierarchy(2, n_draws=40).draws)


def test_effects_frame_schema(fitted_x2):
    eff = fitted_x2.effects_
    assert list(eff.columns) == ["name", "scale", "mean", "sd", "q0.05", "q0.95"]
    assert list(zip(eff["name"], eff["scale"])) == [
        ("quarter_end_push", "logit_p"),
        ("quarter_end_push", "log_size"),
        ("quarter_end_push", "log_mean"),
        ("x", "logit_p"),
        ("x", "log_size"),
        ("x", "log_mean"),
    ]
    assert (eff["q0.05"] <= eff["mean"]).all() and (eff["mean"] <= eff["q0.95"]).all()


def test_log_mean_effect_by_hand():
    """One posterior sample, two series: the per-series log change of summed expected bookings."""
    sig = lambda v: 1.0 / (1.0 + np.exp(-v))  # noqa: E731
    a, gamma, delta, bp, bm = np.array([0.2, -1.0]), 0.4, 0.1, 0.3, 0.05
    series = np.array([0, 1, 0, 1, 0])  # 3 and 2 cells, interleaved
    push = np.array([1.0, 0.0, 0.0, 1.0, 0.0])
    x = np.array([0.5, -1.0, 0.5, 2.0, -2.0])
    post = {
        "a": a[None],
        "b": np.zeros((1, 2)),
        "shape": np.ones((1, 2)),
        "gamma": np.array([[gamma]]),
        "delta": np.array([[delta]]),
        "beta_p": np.array([[bp]]),
        "beta_m": np.array([[bm]]),
    }
    cells = {"series": series, "cal": push[:, None], "x": x[:, None]}
    eff = _effects(post, cells, ["quarter_end_push"], ["x"]).set_index(["name", "scale"])["mean"]
    eta, v = a[series] + gamma * push + bp * x, delta * push + bm * x

    def change(step, e, w):  # sum_i (n_i / n) log(sum_t sig(e + step) e^w / sum_t sig(e) e^w)
        total = lambda e, i: np.sum(sig(e[series == i]) * np.exp(w[series == i]))  # noqa: E731
        return sum(n / 5 * np.log(total(e + step, i) / total(e, i)) for i, n in ((0, 3), (1, 2)))

    demo = bm + change(bp, eta, v)
    push_eff = delta + change(gamma, eta - gamma * push, v - delta * push)
    assert eff[("x", "log_mean")] == pytest.approx(demo, rel=1e-12)
    assert eff[("quarter_end_push", "log_mean")] == pytest.approx(push_eff, rel=1e-12)
    assert eff[("x", "logit_p")] == bp and eff[("x", "log_size")] == bm


def test_pearson_shapes_recover_planted_shapes_through_the_calendar():
    """Gamma amounts of known shapes (0.7 and 3) around means that move with a shared
    regressor and differ by series: with many amounts each series gets its own shape back;
    a series with three amounts keeps about the pooled one; the means' movement is fitted
    first (ignoring it, the regressor's spread would read as dispersion)."""
    rng = np.random.default_rng(0)
    shapes = np.array([0.7, 0.7, 3.0, 3.0, 1.5])
    counts = np.array([4000, 4000, 4000, 4000, 3])
    series = np.repeat(np.arange(5), counts)
    design = rng.choice([0.0, 1.0], size=(series.size, 1))
    mean = np.exp(np.array([0.0, 2.0, -1.0, 1.0, 0.5])[series] + 1.2 * design[:, 0])
    y = rng.gamma(shapes[series], mean / shapes[series])
    k = np.exp(pearson_log_shape(y, series, design, 5))
    np.testing.assert_allclose(k[:4], shapes[:4], rtol=0.08)
    pooled = 1 / (((y[:-3] / mean[:-3]) - 1) ** 2).mean()  # the company's shape (truth-based check)
    assert k[4] == pytest.approx(pooled, rel=0.3)
    ignored = np.exp(pearson_log_shape(y, series, np.zeros((series.size, 0)), 5))
    assert (ignored[:4] < 0.8 * shapes[:4]).all()  # the regressor's spread taken for noise
    # no degree of freedom left: exponential amounts (k = 1), and no amounts at all
    assert np.exp(pearson_log_shape(np.array([1.0, 2.0]), np.array([0, 1]), np.zeros((2, 0)), 2)).tolist() == [1, 1]
    assert pearson_log_shape(np.zeros(0), np.zeros(0, dtype=int), np.zeros((0, 1)), 3).tolist() == [0, 0, 0]


def test_simulated_amounts_have_the_modelled_mean_and_shape():
    """P(y > 0) = sigmoid(a), E[y | y > 0] = scale exp(b) and CV of the amounts 1 / sqrt(k)."""
    post = {
        "a": np.array([[0.4, -1.0]]),
        "b": np.array([[0.3, 1.2]]),
        "shape": np.array([[0.6, 4.0]]),
        "gamma": np.zeros((1, 1)),
        "delta": np.zeros((1, 1)),
        "beta_p": np.zeros((1, 0)),
        "beta_m": np.zeros((1, 0)),
    }
    n = 200_000
    draws = simulate_hurdle(
        post,
        cal=np.zeros((2, 1, 1)),
        x=np.zeros((2, 1, 0)),
        sample=np.zeros(n, dtype=int),
        scale=10.0,
        rng=np.random.default_rng(0),
    )[:, 0, :]
    for i in range(2):
        pos = draws[i][draws[i] > 0]
        p = 1 / (1 + np.exp(-post["a"][0, i]))
        assert len(pos) / n == pytest.approx(p, abs=4 * np.sqrt(p * (1 - p) / n))
        cv = 1 / np.sqrt(post["shape"][0, i])
        assert pos.mean() == pytest.approx(10 * np.exp(post["b"][0, i]), rel=4 * cv / np.sqrt(len(pos)))
        assert pos.std() / pos.mean() == pytest.approx(cv, rel=0.03)


def _simulate(n_series=40, n_weeks=60, beta_p=0.8, beta_m=0.3, seed=1):
    """Data drawn from the model itself with known indicator slopes (x standardised per series):
    gamma amounts of shape 2 around mean ``exp(b + beta_m x)``."""
    rng = np.random.default_rng(seed)
    ds = pd.date_range(START, periods=n_weeks, freq="W-MON")
    a = -0.5 + 0.5 * rng.standard_normal(n_series)
    b = 9.0 + 0.3 * rng.standard_normal(n_series)
    x = rng.standard_normal((n_series, n_weeks))
    xl = np.zeros_like(x)
    xl[:, 1:] = ((x - x.mean(1, keepdims=True)) / x.std(1, keepdims=True))[:, :-1]  # lag 1
    hit = rng.random((n_series, n_weeks)) < 1 / (1 + np.exp(-(a[:, None] + beta_p * xl)))
    y = np.where(hit, rng.gamma(2.0, np.exp(b[:, None] + beta_m * xl) / 2.0), 0.0)
    return pd.DataFrame(
        {
            "unique_id": np.repeat([f"s{i:02d}" for i in range(n_series)], n_weeks),
            "ds": np.tile(ds, n_series),
            "y": y.ravel(),
            "x": x.ravel(),
        }
    )


def test_advi_recovers_slopes_planted_in_simulated_data():
    # seed 2; seed 1's data happen to hold a 3-sd push difference in the raw log amounts (NUTS agrees)
    eff = HierarchicalBayes(method="advi", regressors={"x": 1}, yearly_terms=0).fit(_simulate(seed=2)).effects_
    eff = eff.set_index(["name", "scale"])
    # within 3 posterior sds (over seeds 1-8 the slopes' z-scores were -1.8..1.8: ADVI sds are about right)
    for scale, truth in (("logit_p", 0.8), ("log_size", 0.3)):
        row = eff.loc[("x", scale)]
        assert abs(row["mean"] - truth) < 3 * row["sd"], (scale, row.to_dict())
        assert row["sd"] < 0.1
    for scale in ("logit_p", "log_size"):  # no push was planted
        push = eff.loc[("quarter_end_push", scale)]
        assert abs(push["mean"]) < 3 * push["sd"], (scale, push.to_dict())


# ---------------------------------------------------------------------- the two implementations agree


def _random_hurdle_data(seed, n_cells, group_codes, cal_names):
    rng = np.random.default_rng(seed)
    y = np.where(rng.random(n_cells) < 0.4, rng.lognormal(1.0, 1.0, n_cells), 0.0)
    cells = {
        "series": rng.integers(0, len(group_codes), n_cells),
        "y": y,
        "cal": rng.normal(size=(n_cells, len(cal_names))),
        "x": rng.normal(size=(n_cells, 2)),
    }
    return hurdle_data(
        cells,
        group_codes=np.asarray(group_codes),
        n_series=len(group_codes),
        n_groups=int(max(group_codes)) + 1,
        cal_names=cal_names,
        scale=1.0,
    )


def test_numpy_log_density_matches_the_pymc_model_before_and_after_a_data_swap():
    """The numpy log density has the PyMC model's density (up to a constant) and gradient at
    random points, territories and regressors on. Then a second data set with the same blocks
    is swapped into the model's containers: the compiled functions now give the second data
    set's gradient (against numpy on it) and exactly the log density of a model built for it
    (no value of the first data set is left in the graph). The number of cells, the territory
    sizes and all values differ between the two. One model is compiled for both checks:
    compiling PyMC's log density and gradient is most of the time."""
    cal_names, regs = ["quarter_end_push", "year_sin1", "year_cos1"], ["r1", "r2"]
    d1 = _random_hurdle_data(0, 150, [0, 0, 0, 1, 1, 1], cal_names)
    d2 = _random_hurdle_data(1, 110, [0, 1, 1, 1, 1, 0], cal_names)
    blocks = layout(d1)
    assert layout(d2) == blocks
    model = build_pymc_model(d1, cal_names=cal_names, reg_names=regs)
    logp = model.compile_logp(mode="FAST_COMPILE")
    dlogp = model.compile_dlogp(mode="FAST_COMPILE")
    scalar = {"a0", "b0"}
    by_name = {(f"{k}_log__" if log_t else k): k for k, _, log_t in blocks}
    rng = np.random.default_rng(0)
    thetas = [0.5 * rng.standard_normal(sum(size for _, size, _ in blocks)) for _ in range(3)]

    def point(theta):
        parts = _split(theta, blocks)
        return {
            (f"{k}_log__" if log_t else k): (parts[k][0] if (k in scalar or log_t) else parts[k])
            for k, _, log_t in blocks
        }

    def same_density(d, label):
        offsets = []
        for theta in thetas:
            p = point(theta)
            ours_lp, ours_grad = log_density(theta, d, blocks)
            offsets.append(ours_lp - float(logp(p)))
            theirs, pos, ours = dlogp(p), 0, _split(ours_grad, blocks)
            for v in model.value_vars:
                size = int(np.size(p[v.name]))
                np.testing.assert_allclose(
                    ours[by_name[v.name]], theirs[pos : pos + size], rtol=1e-7, atol=1e-8, err_msg=f"{label}: {v.name}"
                )
                pos += size
        np.testing.assert_allclose(offsets, offsets[0], atol=1e-8, err_msg=label)  # differences agree

    same_density(d1, "the data the model was built for")
    fresh = build_pymc_model(d2, cal_names=cal_names, reg_names=regs)
    fresh_logp = fresh.compile_logp(mode="FAST_COMPILE")
    points = [point(theta) for theta in thetas]
    assert not np.isclose(float(logp(points[0])), float(fresh_logp(points[0])))  # the data sets do differ
    for name, value in model_data(d2, n_reg=len(regs)).items():
        model.set_data(name, value)
    same_density(d2, "the data swapped in")  # the compiled functions read the containers, as nutpie's do
    for p in points:
        np.testing.assert_allclose(float(logp(p)), float(fresh_logp(p)), rtol=1e-12)
    start, start2 = model.initial_point(), fresh.initial_point()  # the start of the chains too
    for name, value in start2.items():
        np.testing.assert_allclose(start[name], value, rtol=1e-12, err_msg=name)


def test_zero_sum_centering_by_hand():
    c = Centering.of(np.array([0, 0, 1, 1, 1, 2]), 3)
    z = np.array([1.0, 3.0, 0.0, 3.0, 6.0, 5.0])  # group means 2, 3, 5
    r2, r15 = np.sqrt(2.0), np.sqrt(1.5)  # sqrt(n / (n - 1)) for groups of 2 and 3
    np.testing.assert_allclose(c.apply(z), [-r2, r2, -3 * r15, 0.0, 3 * r15, 0.0])
    # gradient of sum(w * apply(z)) with respect to z, against finite differences
    w = np.array([0.3, -1.0, 2.0, 0.5, -0.7, 4.0])
    step = 1e-6
    numeric = [(w @ c.apply(z + step * e) - w @ c.apply(z - step * e)) / (2 * step) for e in np.eye(6)]
    np.testing.assert_allclose(c.grad(w), numeric, atol=1e-6)
    # rows of samples are centred one by one
    np.testing.assert_allclose(c.apply(np.vstack([z, 2 * z])), np.vstack([c.apply(z), 2 * c.apply(z)]))


def test_advi_stops_on_convergence_and_reports_it():
    d = hurdle_data(
        {
            "series": np.repeat(np.arange(4), 30),
            "y": np.tile([0.0, 2.0, 0.0, 5.0, 1.0], 24),
            "cal": np.zeros((120, 1)),
            "x": np.zeros((120, 0)),
        },
        group_codes=np.zeros(4, dtype=int),
        n_series=4,
        n_groups=0,
        cal_names=["quarter_end_push"],
        scale=1.0,
    )
    samples, info = fit_advi(d, iterations=20_000, n_samples=10, rng=np.random.default_rng(0))
    assert info["converged"] and info["iterations"] < 20_000
    assert samples["z_a"].shape == (10, 4) and samples["omega_a"].shape == (10,)
    assert (samples["omega_a"] > 0).all()


def test_nutpie_model_is_log_density_with_named_constrained_draws():
    """nutpie samples :func:`log_density` itself (no PyMC graph to compile): its log density and
    gradient are numpy's, and a point expands to the PyMC model's free variables, scales
    exponentiated, the company levels and scales as scalars."""
    cal_names = ["quarter_end_push", "year_sin1"]
    d = _random_hurdle_data(0, 120, [0, 0, 1, 1, 1], cal_names)
    blocks = layout(d)
    model = nutpie_model(d)
    theta = 0.3 * np.random.default_rng(1).standard_normal(sum(size for _, size, _ in blocks))
    lp, grad = model._make_logp_func()(theta)
    ours_lp, ours_grad = log_density(theta, d, blocks)
    assert lp == ours_lp
    np.testing.assert_array_equal(grad, ours_grad)
    values = model._make_expand_func(0, 0, 0)(theta)
    parts = _split(theta, blocks)
    assert list(values) == [name for name, _, _ in blocks]
    assert values["omega_a"].shape == () and values["omega_a"] == np.exp(parts["omega_a"][0])
    assert values["a0"].shape == () and values["a0"] == parts["a0"][0]
    np.testing.assert_array_equal(values["z_a"], parts["z_a"])
    np.testing.assert_array_equal(values["u_b"], parts["u_b"])
    start = model._make_initial_points(3)
    assert start.shape == theta.shape and np.all(np.isfinite(start))


@pytest.mark.slow
def test_nuts_fit_is_reproducible_and_mixes():
    """A small NUTS fit (two chains, regressors on) repeats exactly with the same seed, moves
    with another seed, and its chains agree (R-hat) without divergences."""
    kw = {"method": "nuts", "draws": 150, "tune": 150, "chains": 2, "regressors": {"x": 2}}
    first = HierarchicalBayes(**kw).fit(FRAME)
    again = HierarchicalBayes(**kw).fit(FRAME)
    other = HierarchicalBayes(**kw, random_state=1).fit(FRAME)
    for key, value in first.posterior_.items():
        np.testing.assert_array_equal(again.posterior_[key], value, err_msg=key)
    assert not np.allclose(first.posterior_["a"], other.posterior_["a"])
    d = first.diagnostics_
    assert d["sampler"] == "nutpie" and d["divergences"] == 0 and d["max_rhat"] < 1.05
    assert first.posterior_["a"].shape == (300, len(AGENTS))


# ---------------------------------------------------------------------- synthetic organisation (slow)

H_TEST = 13  # one quarter of held-out weeks


def _org_frame(org) -> pd.DataFrame:
    """Weekly bookings per agent (won deals by the Monday of their close week) over the weeks the
    agent is employed, with the agent's weekly demo count and territory."""
    aw = org.truth.agent_weeks
    cells = aw.loc[aw["employed"], ["agent_id", "week_start"]]
    cells = cells.rename(columns={"agent_id": "unique_id", "week_start": "ds"})
    opp = org.dataset.tables["opportunities"]
    won = opp[opp["outcome"] == "won"]
    close = pd.to_datetime(won["close_date"])
    monday = (close - pd.to_timedelta(close.dt.day_of_week, unit="D")).dt.normalize()
    bookings = (
        pd.DataFrame(
            {
                "unique_id": won["agent_id"].astype("str").to_numpy(),
                "ds": monday.to_numpy(),
                "y": won["amount"].to_numpy(dtype=float),
            }
        )
        .groupby(["unique_id", "ds"], as_index=False)["y"]
        .sum()
    )
    act = org.dataset.tables["activities"]
    demo = act[act["activity_type"] == "demo"]
    demos = pd.DataFrame(
        {
            "unique_id": demo["agent_id"].astype("str").to_numpy(),
            "ds": pd.to_datetime(demo["date"]).to_numpy(),
            "demo": demo["count"].to_numpy(dtype=float),
        }
    )
    f = cells.merge(bookings, on=["unique_id", "ds"], how="left").merge(demos, on=["unique_id", "ds"], how="left")
    f = f.fillna({"y": 0.0, "demo": 0.0})
    f["group"] = f["unique_id"].map(org.truth.agents.set_index("agent_id")["territory_id"]).astype("str")
    return f.sort_values(["unique_id", "ds"], ignore_index=True)


def _oracle_draws(cells: pd.DataFrame, truth, n_draws: int, rng: np.random.Generator) -> np.ndarray:
    """Draws from the true predictive law: Poisson(expected_wins) deals, each lognormal(size_mu, size_sigma)."""
    aw = truth.agent_weeks.rename(columns={"agent_id": "unique_id", "week_start": "ds"})
    wins = cells.merge(aw[["unique_id", "ds", "expected_wins"]], on=["unique_id", "ds"], how="left")["expected_wins"]
    agents = truth.agents.set_index("agent_id")
    mu = agents.loc[cells["unique_id"], "size_mu"].to_numpy()[:, None, None]
    sigma = agents.loc[cells["unique_id"], "size_sigma"].to_numpy()[:, None, None]
    k = rng.poisson(wins.to_numpy()[:, None], size=(len(cells), n_draws))
    deals = np.exp(mu + sigma * rng.standard_normal((len(cells), n_draws, int(k.max()))))
    return np.round((deals * (np.arange(int(k.max())) < k[:, :, None])).sum(axis=-1))


def _randomized_pit(draws: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """PIT ``F(y-) + U (F(y) - F(y-))``: uniform under a calibrated forecast even with an atom at 0."""
    below = (draws < y[:, None]).mean(axis=1)
    at = (draws == y[:, None]).mean(axis=1)
    return below + rng.random(len(y)) * at


def _true_demo_effect(org, frame: pd.DataFrame) -> float:
    """The generator's counterpart of the model's ``log_mean`` demo effect on ``frame``'s agent-weeks.

    The generator puts ``beta`` (0.35) per SD of the agent's demos (lag 3) on the logit of the
    final-stage win probability ``p_iw``, and expected bookings ``e_iw`` are proportional to
    ``p_iw``; one SD more demos in every week turns ``p_iw`` into ``p1_iw = sigmoid(logit p_iw
    + beta)``. The truth is then, like the model's effect, the log change of each agent's
    expected bookings over its fitted weeks, averaged over agents weighted by their weeks::

        sum_i (n_i / n) log(sum_w e_iw p1_iw / p_iw / sum_w e_iw)

    Not ``beta * mean(1 - p_iw)``, the average derivative at each week's own latent state:
    the effect is concave in the demos (log sigmoid) and weekly demo counts are right-skewed,
    so a linear index fits a secant below that average derivative (on seed 1 the least-squares
    slope of the true log expected wins on the lagged demo z-score is 0.129 where the average
    derivative is 0.142), and ``p_iw`` also moves with the lagged market index, which the model
    does not see and averages over (weighting by ``e_iw`` does the same). By ADVI on seeds
    1-12 the mean z-score ``(estimate - truth) / sd`` was -0.69 against the old truth and the
    old average-derivative summary, and is -0.08 now.
    """
    aw = org.truth.agent_weeks.rename(columns={"agent_id": "unique_id", "week_start": "ds"})
    j = frame[["unique_id", "ds"]].merge(aw, on=["unique_id", "ds"], how="left")
    p, e = j["p_negotiation_won"].to_numpy(), j["expected_bookings"].to_numpy()
    assert np.isfinite(p).all() and (p > 0).all()
    p1 = 1.0 / (1.0 + np.exp(-(np.log(p / (1.0 - p)) + org.truth.params["beta_demo"])))
    per_agent = (
        pd.DataFrame({"unique_id": j["unique_id"], "up": e * p1 / p, "e": e, "n": 1.0}).groupby("unique_id").sum()
    )
    assert (per_agent["e"] > 0).all()
    return float(np.sum(np.log(per_agent["up"] / per_agent["e"]) * per_agent["n"]) / per_agent["n"].sum())


def test_true_demo_effect_by_hand():
    """Two agents, two weeks each, against the formula written out."""

    class Truth:
        params = {"beta_demo": 0.5}
        agent_weeks = pd.DataFrame(
            {
                "agent_id": ["a", "a", "b", "b"],
                "week_start": pd.to_datetime(["2024-01-01", "2024-01-08"] * 2),
                "p_negotiation_won": [0.5, 0.8, 0.2, 0.2],
                "expected_bookings": [1.0, 3.0, 2.0, 0.0],
            }
        )

    class Org:
        truth = Truth()

    frame = pd.DataFrame(
        {"unique_id": ["a", "a", "b"], "ds": pd.to_datetime(["2024-01-01", "2024-01-08", "2024-01-01"])}
    )
    s = lambda v: 1.0 / (1.0 + np.exp(-v))  # noqa: E731
    up = lambda p: s(np.log(p / (1 - p)) + 0.5) / p  # noqa: E731
    agent_a = np.log((1.0 * up(0.5) + 3.0 * up(0.8)) / 4.0)
    agent_b = np.log(up(0.2))
    assert _true_demo_effect(Org(), frame) == pytest.approx((2 * agent_a + agent_b) / 3, rel=1e-12)


DEMO_SEEDS = (1, 2, 3, 4)


@pytest.mark.slow
def test_planted_demo_effect_is_recovered_on_several_organisations():
    """The 90% interval of the ``log_mean`` demo effect holds the truth (:func:`_true_demo_effect`)
    on at least 3 of 4 generated organisations, and the z-scores ``(mean - truth) / sd`` do not
    share a bias: their mean is within +-1 (4 independent N(0, 1) give that 95% of the time; the
    one-sd shortfall this test once let through on seed 2 alone fails it)."""
    from spm_models.synthetic.generator import generate_organisation

    rows = []
    for seed in DEMO_SEEDS:
        org = generate_organisation(40, years=3, seed=seed)
        frame = _org_frame(org)
        model = HierarchicalBayes(method="nuts", regressors={"demo": 3}).fit(frame)
        row = model.effects_.set_index(["name", "scale"]).loc[("demo", "log_mean")]
        truth = _true_demo_effect(org, frame)
        rows.append(
            {
                "seed": seed,
                "truth": truth,
                "mean": row["mean"],
                "q0.05": row["q0.05"],
                "q0.95": row["q0.95"],
                "z": (row["mean"] - truth) / row["sd"],
                **{k: model.diagnostics_[k] for k in ("max_rhat", "divergences")},
            }
        )
    table = pd.DataFrame(rows)
    inside = (table["q0.05"] < table["truth"]) & (table["truth"] < table["q0.95"])
    assert inside.sum() >= 3, table.to_string()
    assert abs(table["z"].mean()) < 1.0, table.to_string()
    assert (table["max_rhat"] < 1.05).all() and (table["divergences"] <= 10).all(), table.to_string()


@pytest.mark.slow
def test_held_out_calibration_and_crps_close_to_the_oracle():
    """Last quarter held out. A calibrated forecast has randomized-PIT 80% coverage near 0.8; the
    plain interval coverage [q0.1, q0.9] is inflated by the atom at zero (a zero actual is always
    inside [0, q0.9]), so it is compared with the oracle's plain coverage instead."""
    from spm_models.evaluation.metrics import crps_draws
    from spm_models.synthetic.generator import generate_organisation

    org = generate_organisation(40, years=3, seed=1)
    frame = _org_frame(org).drop(columns="demo")
    cut = frame["ds"].max() - pd.Timedelta(weeks=H_TEST)
    train = frame[frame["ds"] <= cut]
    last = train.groupby("unique_id")["ds"].max()
    test = frame[(frame["ds"] > cut) & frame["unique_id"].isin(last.index[last == cut])].reset_index(drop=True)
    n_draws = 1000
    fc = HierarchicalBayes(method="nuts").fit(train).predict(H_TEST, n_draws=n_draws)
    where = pd.MultiIndex.from_arrays([np.repeat(fc.unique_ids, H_TEST).astype(str), fc.ds.reshape(-1)])
    pos = where.get_indexer(pd.MultiIndex.from_arrays([test["unique_id"], test["ds"].astype("datetime64[us]")]))
    assert (pos >= 0).all() and len(test) > 400
    model_draws = fc.draws.reshape(-1, n_draws)[pos]
    oracle = _oracle_draws(test, org.truth, n_draws, np.random.default_rng(1))
    y = test["y"].to_numpy()
    rng = np.random.default_rng(2)
    pit = _randomized_pit(model_draws, y, rng)
    pit_coverage = float(np.mean((pit >= 0.1) & (pit <= 0.9)))
    assert 0.75 <= pit_coverage <= 0.85, pit_coverage

    def plain(d):
        lo, hi = np.quantile(d, [0.1, 0.9], axis=1)
        return float(np.mean((lo <= y) & (y <= hi)))

    assert abs(plain(model_draws) - plain(oracle)) < 0.05, (plain(model_draws), plain(oracle))
    ratio = float(crps_draws(model_draws, y).mean() / crps_draws(oracle, y).mean())
    assert ratio < 1.10, ratio


def test_quarter_month_terms_mark_the_second_and_third_month_by_thursday():
    ds = np.array(["2024-01-22", "2024-01-29", "2024-02-26", "2024-03-04", "2024-03-25", "2024-04-01"], "datetime64[D]")
    feats, names = calendar_features(ds, "W-MON", yearly_terms=0, fiscal_year_start=1, quarter_terms="months")
    assert names == ["quarter_end_push", "quarter_month2", "quarter_month3"]
    # 29 Jan's Thursday is 1 Feb: second month; 26 Feb's is 29 Feb; 4 and 25 March: third month
    np.testing.assert_array_equal(feats[:, 1], [0, 1, 1, 0, 0, 0])
    np.testing.assert_array_equal(feats[:, 2], [0, 0, 0, 1, 1, 0])
    with pytest.raises(ConfigError, match="quarter_terms"):
        calendar_features(ds, "W-MON", yearly_terms=0, fiscal_year_start=1, quarter_terms="weeks")


@pytest.mark.parametrize(("weeks", "terms"), [(60, 0), (103, 0), (104, 2)])
def test_yearly_terms_only_with_two_years_of_history(weeks, terms):
    """A yearly curve fitted on less than two years extrapolates the months seen once."""
    ds = pd.date_range("2022-01-03", periods=weeks, freq="W-MON")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"unique_id": np.repeat(["a", "b"], weeks), "ds": np.tile(ds, 2), "y": rng.gamma(1.0, 100.0, 2 * weeks)}
    )
    m = HierarchicalBayes(method="advi", advi_iterations=300, draws=20, chains=1).fit(frame)
    assert m.yearly_terms_ == terms
    assert sum(n.startswith("year_") for n in m.calendar_names_) == 2 * terms
    assert {"quarter_month2", "quarter_month3"} <= set(m.calendar_names_)  # the default quarter terms
    fixed = HierarchicalBayes(method="advi", advi_iterations=300, draws=20, chains=1, yearly_terms=1).fit(frame)
    assert fixed.yearly_terms_ == 1
    with pytest.raises(ConfigError, match="yearly_terms"):
        HierarchicalBayes(yearly_terms="sometimes").fit(frame)
