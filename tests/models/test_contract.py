"""One contract suite, run on every model registered in ``spm_models.models.MODELS``.

A new model gets all of these checks by being added to ``MODELS`` (sktime's
``TestAllForecasters``, scikit-learn's ``parametrize_with_checks``).
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from spm_models.exceptions import ConfigError, DataError, ModelError, NotFittedError
from spm_models.models import MODELS, Forecast, ForecastModel, LastValue, clone

H = 6
N_DRAWS = 64
QUANTILES = (0.025, 0.1, 0.5, 0.9, 0.975)
START = pd.Timestamp("2023-01-02")  # a Monday
N_POINTS = 80


def _frame(seed: int = 0) -> pd.DataFrame:
    """Four weekly series of 80 points: smooth, zero-heavy, trending, and a shorter one."""
    rng = np.random.default_rng(seed)
    ds = pd.date_range(START, periods=N_POINTS, freq="W-MON")
    t = np.arange(N_POINTS)
    smooth = 100 + 10 * np.sin(2 * np.pi * t / 13) + rng.normal(0, 5, N_POINTS)
    sparse = rng.gamma(1.0, 500.0, N_POINTS) * (rng.random(N_POINTS) < 0.35)
    trend = 50 + 0.5 * t + rng.normal(0, 3, N_POINTS)
    rows = [
        pd.DataFrame({"unique_id": "a_smooth", "ds": ds, "y": smooth}),
        pd.DataFrame({"unique_id": "b_sparse", "ds": ds, "y": sparse}),
        pd.DataFrame({"unique_id": "c_trend", "ds": ds, "y": trend}),
        # starts later and ends earlier than the others
        pd.DataFrame({"unique_id": "d_short", "ds": ds[20:70], "y": rng.poisson(3.0, 50).astype(float)}),
    ]
    return pd.concat(rows, ignore_index=True)


FRAME = _frame()
LAST = {
    "a_smooth": START + pd.Timedelta(weeks=79),
    "b_sparse": START + pd.Timedelta(weeks=79),
    "c_trend": START + pd.Timedelta(weeks=79),
    "d_short": START + pd.Timedelta(weeks=69),
}


def _model(cls: type[ForecastModel], **extra) -> ForecastModel:
    return cls(**{**cls.get_test_params(), **extra})


def _fit(model: ForecastModel, frame: pd.DataFrame) -> ForecastModel:
    """``fit`` with the canonical tables the model reads (:attr:`ForecastModel.fit_tables`),
    made for the clean test frame (so a corrupted frame is the only thing wrong)."""
    return model.fit(frame, **type(model).get_test_fit_tables(FRAME))


@pytest.fixture(params=MODELS, ids=lambda c: c.__name__)
def cls(request) -> type[ForecastModel]:
    return request.param


def test_registry_is_not_empty_and_holds_model_classes():
    assert len(MODELS) >= 4
    assert all(isinstance(c, type) and issubclass(c, ForecastModel) for c in MODELS)


def test_init_only_stores_keyword_parameters(cls):
    model = _model(cls)
    params = model.get_params()
    assert {"freq", "random_state"} <= set(params)
    assert set(vars(model)) == set(params), "__init__ must store each parameter under its name and nothing else"
    again = clone(model)
    assert again is not model and type(again) is cls
    assert again.get_params() == params
    assert model.set_params(random_state=7) is model and model.random_state == 7
    with pytest.raises(ConfigError, match="no parameter"):
        model.set_params(not_a_parameter=1)
    with pytest.raises(TypeError):
        cls(None)  # positional arguments are not accepted


def test_fit_returns_self_and_sets_only_trailing_underscore_attributes(cls):
    model = _model(cls)
    before = set(vars(model))
    assert _fit(model, FRAME) is model
    added = set(vars(model)) - before
    assert added, "fit must set fitted attributes"
    assert all(a.endswith("_") and not a.startswith("_") for a in added), sorted(added)
    assert model.get_params() == clone(model).get_params()  # fit does not change parameters


def test_predict_and_save_before_fit_raise_not_fitted(cls, tmp_path):
    model = _model(cls)
    with pytest.raises(NotFittedError, match="fit"):
        model.predict(H)
    with pytest.raises(NotFittedError):
        model.save(tmp_path / "m.pkl")


def test_output_schema(cls):
    fc = _fit(_model(cls), FRAME).predict(H, quantiles=QUANTILES, n_draws=N_DRAWS)
    assert isinstance(fc, Forecast)
    q = fc.quantiles
    assert list(q.columns) == ["unique_id", "ds", "model", "mean", "q0.025", "q0.1", "q0.5", "q0.9", "q0.975"]
    assert fc.draws.shape == (4, H, N_DRAWS)
    assert list(fc.unique_ids) == ["a_smooth", "b_sparse", "c_trend", "d_short"]
    assert len(q) == 4 * H
    assert (q.groupby("unique_id").size() == H).all()
    assert fc.model == _model(cls).model_name()
    # each series continues weekly from its own last date
    for uid, last in LAST.items():
        expected = pd.date_range(last + pd.Timedelta(weeks=1), periods=H, freq="W-MON")
        assert list(q.loc[q["unique_id"] == uid, "ds"]) == list(expected)
    values = q[["q0.025", "q0.1", "q0.5", "q0.9", "q0.975"]].to_numpy()
    assert np.all(np.diff(values, axis=1) >= -1e-9), "quantiles must not cross"
    assert np.isfinite(fc.draws).all()
    np.testing.assert_allclose(q["mean"].to_numpy(), fc.draws.mean(axis=-1).reshape(-1))
    assert list(fc.fallback.columns) == ["unique_id", "model", "fallback", "reason"]
    assert not fc.fallback["fallback"].any(), fc.fallback


def test_fixed_seed_makes_refits_identical(cls):
    a = _fit(_model(cls, random_state=11), FRAME).predict(H, n_draws=N_DRAWS)
    b = _fit(_model(cls, random_state=11), FRAME).predict(H, n_draws=N_DRAWS)
    np.testing.assert_array_equal(a.draws, b.draws)
    pd.testing.assert_frame_equal(a.quantiles, b.quantiles)
    c = _fit(_model(cls, random_state=12), FRAME).predict(H, n_draws=N_DRAWS)
    if np.ptp(a.draws, axis=-1).max() > 0:
        assert not np.array_equal(a.draws, c.draws), "random_state must drive the draws"


def test_save_then_load_predicts_the_same(cls, tmp_path):
    model = _fit(_model(cls), FRAME)
    before = model.predict(H, n_draws=N_DRAWS)
    path = model.save(tmp_path / "model.pkl")
    loaded = cls.load(path)
    assert type(loaded) is cls
    after = loaded.predict(H, n_draws=N_DRAWS)
    np.testing.assert_array_equal(before.draws, after.draws)
    pd.testing.assert_frame_equal(before.quantiles, after.quantiles)
    assert ForecastModel.load(path).get_params() == model.get_params()


def _missing_column(f):
    return f.drop(columns="y")


def _nan_y(f):
    f = f.copy()
    f.loc[5, "y"] = np.nan
    return f


def _duplicate(f):
    return pd.concat([f, f.iloc[[3]]], ignore_index=True)


def _irregular_dates(f):
    f = f.copy()
    f.loc[7, "ds"] = f.loc[7, "ds"] + pd.Timedelta(days=2)
    return f


def _gap(f):
    return f.drop(index=10).reset_index(drop=True)


def _text_y(f):
    f = f.astype({"y": object}).copy()
    f.loc[2, "y"] = "n/a"
    return f


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (_missing_column, "column is missing"),
        (_nan_y, "no value"),
        (_duplicate, "more than once"),
        (_irregular_dates, "not on the W-MON calendar"),
        (_gap, "missing W-MON periods"),
        (_text_y, "not numbers"),
    ],
    ids=["missing-column", "nan-y", "duplicate", "irregular-dates", "gap", "text-y"],
)
def test_bad_input_raises_data_error(cls, corrupt, message):
    with pytest.raises(DataError, match=message):
        _fit(_model(cls), corrupt(FRAME))


def test_irregular_dates_without_freq_raise_data_error(cls):
    f = pd.DataFrame({"unique_id": "a", "ds": pd.to_datetime(["2024-01-01", "2024-01-03", "2024-01-10"]), "y": 1.0})
    with pytest.raises(DataError, match="regular weekly or monthly"):
        _fit(_model(cls), f)


def test_series_that_breaks_the_model_falls_back_and_says_so(cls):
    single = pd.DataFrame({"unique_id": ["z_single"], "ds": [START + pd.Timedelta(weeks=79)], "y": [42.0]})
    fc = _fit(_model(cls), pd.concat([FRAME, single], ignore_index=True)).predict(H, n_draws=N_DRAWS)
    fb = fc.fallback.set_index("unique_id")
    assert bool(fb.loc["z_single", "fallback"])
    name = _model(cls).model_name()
    assert fb.loc["z_single", "model"] != name
    assert name in fb.loc["z_single", "reason"] and "observation" in fb.loc["z_single", "reason"]
    assert not fb.drop(index="z_single")["fallback"].any()
    rows = fc.quantiles[fc.quantiles["unique_id"] == "z_single"]
    assert len(rows) == H and (rows["model"] == fb.loc["z_single", "model"]).all()
    assert np.isfinite(fc.draws).all()


def test_monthly_data_with_explicit_freq(cls):
    ds = pd.date_range("2021-01-01", periods=30, freq="MS")
    f = pd.DataFrame({"unique_id": "m", "ds": ds, "y": np.arange(30.0) % 3 + 5})
    if cls.weekly_only:
        with pytest.raises(ConfigError, match="weekly"):
            _fit(_model(cls, freq="MS"), f)
        return
    fc = _fit(_model(cls, freq="MS"), f).predict(4, n_draws=N_DRAWS)
    assert list(fc.quantiles["ds"]) == list(pd.date_range("2023-07-01", periods=4, freq="MS"))


# ------------------------------------------------------------------ base machinery


class _Flaky(ForecastModel):
    """Per-series model that breaks on series whose id starts with 'bad'."""

    def _fit_series(self, y, ds):
        if np.all(y == 0):
            raise ValueError("cannot fit an all-zero series")
        return float(y[-1])

    def _predict_series(self, state, ds, *, n_draws, rng):
        return state + rng.normal(0.0, 1.0, size=(len(ds), n_draws))


def test_a_series_whose_fit_raises_falls_back_with_the_exception_as_reason():
    f = pd.concat([FRAME, pd.DataFrame({"unique_id": "e_zero", "ds": FRAME["ds"].iloc[:80], "y": 0.0})])
    fc = _Flaky().fit(f).predict(H, n_draws=N_DRAWS)
    fb = fc.fallback.set_index("unique_id")
    assert fb.loc["e_zero", "model"] == "LastValue"
    assert "ValueError: cannot fit an all-zero series" in fb.loc["e_zero", "reason"]
    assert fb["fallback"].sum() == 1
    np.testing.assert_array_equal(fc.select(["e_zero"]).draws, 0.0)


class _Broken(ForecastModel):
    def _fit_panel(self, panel):
        raise RuntimeError("numerical blow-up")


def test_a_model_that_fails_on_the_whole_panel_falls_back_for_every_series():
    fc = _Broken().fit(FRAME).predict(H, n_draws=N_DRAWS)
    assert fc.fallback["fallback"].all()
    assert fc.fallback["reason"].str.contains("RuntimeError: numerical blow-up").all()
    assert (fc.fallback["model"] == "LastValue").all()


def test_last_value_is_the_terminal_fallback():
    fc = LastValue().fit(FRAME).predict(2, n_draws=3)
    last = FRAME.sort_values("ds").groupby("unique_id")["y"].last().to_numpy()
    np.testing.assert_array_equal(fc.draws, np.broadcast_to(last[:, None, None], (4, 2, 3)))


def test_predict_arguments_are_checked():
    model = LastValue().fit(FRAME)
    with pytest.raises(ConfigError, match="h must be"):
        model.predict(0)
    with pytest.raises(ConfigError, match="n_draws"):
        model.predict(2, n_draws=0)
    with pytest.raises(ConfigError, match="quantiles"):
        model.predict(2, quantiles=(0.5, 1.5))


def test_load_rejects_other_files(tmp_path):
    p = tmp_path / "x.pkl"
    p.write_bytes(b"not a pickle")
    with pytest.raises(ModelError, match="not a saved forecast model"):
        ForecastModel.load(p)
    with pytest.raises(ModelError, match="no saved model"):
        ForecastModel.load(tmp_path / "missing.pkl")
    LastValue().fit(FRAME).save(tmp_path / "lv.pkl")
    with pytest.raises(ModelError, match="not a"):
        MODELS[0].load(tmp_path / "lv.pkl")


def test_models_metrics_and_backtest_import_no_heavy_library():
    code = (
        "import sys, spm_models.models, spm_models.evaluation.metrics, spm_models.evaluation.backtest;"
        "heavy = {'pymc', 'pytensor', 'prophet', 'matplotlib', 'arviz', 'nutpie', 'seaborn', 'numba'};"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in heavy)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
