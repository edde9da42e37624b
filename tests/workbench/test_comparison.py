"""Model comparison on the user's data (spm_models.workbench.comparison)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spm_models.evaluation.backtest import BacktestResult
from spm_models.workbench.comparison import accuracy_table, calibration_table, compare_on_dataset


def _result(y, lo80, hi80) -> BacktestResult:
    f = pd.DataFrame(
        {"origin": pd.Timestamp("2024-01-01"), "unique_id": "a", "y": y, "q0.1": lo80, "q0.9": hi80, "q0.5": 0.0}
    )
    return BacktestResult(
        model="m", h=1, freq="W-MON", origins=pd.DatetimeIndex([]), forecasts=f, scores=pd.DataFrame(), folds=()
    )


def test_calibration_counts_actuals_inside_each_central_interval():
    # 3 of 4 actuals with a value lie in [q0.1, q0.9]; the NaN actual is not counted
    r = _result([1.0, 5.0, 2.0, 9.0, np.nan], [0.0, 0.0, 0.0, 0.0, 0.0], [3.0, 6.0, 3.0, 3.0, 3.0])
    table = calibration_table({"m": r})
    assert table.to_dict("records") == [{"model": "m", "nominal": pytest.approx(0.8), "observed": 0.75, "n": 4}]


def test_compare_on_dataset_backtests_each_model_at_the_same_origins(small_org):
    results = compare_on_dataset(
        small_org.dataset, models=["CalendarBaseline", "HierarchicalBayes"], h=2, n_origins=2, fast=True, n_draws=100
    )
    assert list(results["CalendarBaseline"].origins) == list(results["HierarchicalBayes"].origins)
    acc = accuracy_table(results)
    assert sorted(acc["model"]) == ["CalendarBaseline", "HierarchicalBayes"]
    assert acc["scaled_crps"].is_monotonic_increasing
    calib = calibration_table(results)
    assert set(calib["nominal"].round(2)) == {0.8, 0.95}
    assert calib["observed"].between(0, 1).all()
