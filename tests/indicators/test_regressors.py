"""spm_models.indicators.regressors: from a discovery table to the regressors Prophet and HierarchicalBayes take."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spm_models.exceptions import ConfigError
from spm_models.indicators.regressors import add_regressor_columns, indicator_regressors

TABLE = pd.DataFrame(
    {
        "candidate": ["indicator:market_index", "activity:demo", "activity:call", "opportunities_created"],
        "best_lag": pd.array([8, 3, 3, 0], dtype="Int64"),
        "verdict": ["leading indicator", "leading indicator", "not significant", "leading indicator"],
    }
)


def test_only_leading_indicators_whose_lag_covers_the_horizon():
    assert indicator_regressors(TABLE) == {"indicator:market_index": 8, "activity:demo": 3}
    # a lag of 3 is known only 3 weeks ahead: a 4-week forecast cannot use it
    assert indicator_regressors(TABLE, horizon=4) == {"indicator:market_index": 8}
    assert indicator_regressors(TABLE, horizon=3) == {"indicator:market_index": 8, "activity:demo": 3}
    assert indicator_regressors(TABLE, horizon=9) == {}
    # the review's summary table names the lag "lag"
    assert indicator_regressors(TABLE.rename(columns={"best_lag": "lag"}), horizon=4) == {"indicator:market_index": 8}
    with pytest.raises(ConfigError, match="lacks"):
        indicator_regressors(TABLE.drop(columns="verdict"))
    with pytest.raises(ConfigError, match="horizon"):
        indicator_regressors(TABLE, horizon=0)


@pytest.fixture(scope="module")
def org():
    from spm_models.synthetic.generator import generate_organisation

    return generate_organisation(12, years=1.5, seed=2)


def test_columns_come_from_the_agent_series_and_fill_gaps(org):
    from spm_models.workbench.frames import model_frame

    frame = model_frame(org.dataset)
    out = add_regressor_columns(frame, org.dataset, ["activity:demo", "indicator:market_index"])
    assert len(out) == len(frame) and out[["activity:demo", "indicator:market_index"]].notna().all().all()
    acts = org.dataset.tables["activities"]
    # every demo logged in a week the frame covers is in the column (weekly rows dated the Monday)
    week = pd.to_datetime(acts["date"])
    inside = acts[(acts["activity_type"] == "demo") & (week >= frame["ds"].min()) & (week <= frame["ds"].max())]
    per_cell = inside.groupby(["agent_id", "date"])["count"].sum()
    got = out.set_index(["unique_id", "ds"])["activity:demo"]
    sample = per_cell.index[:20]
    np.testing.assert_allclose(got.reindex(sample).to_numpy(), per_cell.reindex(sample).to_numpy())
    # the company-wide index is the same for every agent in a week
    assert out.groupby("ds")["indicator:market_index"].nunique().max() == 1
    with pytest.raises(ConfigError, match="unknown indicator"):
        add_regressor_columns(frame, org.dataset, ["activity:juggling"])
    with pytest.raises(ConfigError, match="already has"):
        add_regressor_columns(out, org.dataset, ["activity:demo"])
    unchanged = frame.sort_values(["unique_id", "ds"], ignore_index=True)
    assert add_regressor_columns(frame, org.dataset, []).equals(unchanged)


@pytest.mark.parametrize(
    "name, params",
    [
        ("HierarchicalBayes", {"method": "advi", "advi_iterations": 300}),
        ("ProphetForecaster", {}),
    ],
)
def test_models_take_the_regressors_and_refuse_a_horizon_past_the_lag(org, name, params):
    from spm_models.models.registry import make_model
    from spm_models.workbench.frames import model_frame

    regs = indicator_regressors(TABLE)
    frame = add_regressor_columns(model_frame(org.dataset), org.dataset, regs)
    model = make_model(name, regressors=regs, random_state=0, **params).fit(frame)
    fc = model.predict(3, n_draws=50)  # the shortest lag, demo's 3 weeks, covers 3 weeks ahead
    assert len(fc.unique_ids) == frame["unique_id"].nunique() and np.isfinite(fc.draws).all()
    with pytest.raises(ConfigError, match="periods ahead"):
        model.predict(4, n_draws=10)
