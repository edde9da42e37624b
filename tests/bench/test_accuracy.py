"""Smoke test of bench/accuracy.py: a tiny run of the benchmark, so the script cannot rot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

MAVEN = Path(__file__).resolve().parents[2] / "data" / "examples" / "maven_crm"


@pytest.fixture(scope="module")
def acc(load_bench):
    return load_bench("accuracy")


def test_choose_origins_steps_back_from_the_end(acc):
    grid = pd.date_range("2024-01-01", periods=30, freq="W-MON").to_numpy()
    # last origin at index 30-1-4 = 25, then 21, 17, 13, 9, 5; min_train=10 keeps index >= 9
    got = acc.choose_origins(grid, h=4, n_origins=6, step=4, min_train=10)
    np.testing.assert_array_equal(got, grid[[9, 13, 17, 21, 25]])


def test_complete_fills_missing_weeks_with_zero(acc):
    long = pd.DataFrame(
        {
            "entity_id": ["a", "a", "b"],
            "period": pd.to_datetime(["2024-01-01", "2024-01-22", "2024-01-08"]),
            "value": [5.0, 7.0, 3.0],
        }
    )
    out = acc._complete(long)
    assert out["unique_id"].tolist() == ["a", "a", "a", "a", "b"]
    assert out["y"].tolist() == [5.0, 0.0, 0.0, 7.0, 3.0]
    assert out["ds"].iloc[1] == pd.Timestamp("2024-01-08")


def test_forecast_from_intervals_keeps_bounds_and_clips_draws(acc):
    rows = pd.DataFrame(
        {
            "unique_id": ["a", "a"],
            "step": [1, 2],
            "ds": pd.to_datetime(["2024-01-08", "2024-01-15"]),
            "mean": [10.0, 10.0],
            "lo-80": [-2.8155, 7.0],
            "hi-80": [22.8155, 13.0],
            "lo-95": [-9.5996, 5.0],
            "hi-95": [29.5996, 15.0],
            "fallback": ["", ""],
        }
    )
    fc = acc.forecast_from_intervals(rows, model="AutoETS", n_draws=400)
    q = fc.quantiles
    assert q["q0.1"].tolist() == [-2.8155, 7.0]  # statsforecast's own bounds are kept
    assert q["mean"].tolist() == [10.0, 10.0]
    assert fc.draws.min() >= 0.0  # bookings are not negative
    # step 2: sd = (15 - 5) / (2 * 1.96) = 2.551; the draws' spread matches it (no clipping there)
    assert fc.draws[0, 1].std() == pytest.approx(10 / (2 * 1.959964), rel=0.02)


def test_tiny_benchmark_runs_every_level_and_approach(acc):
    cfg = acc.BenchConfig.quick(
        datasets=("synthetic", "maven"),
        models=("oracle", "seasonal_naive", "calendar"),
        n_agents=10,
        years=1.5,
        n_draws=100,
        maven_folder=MAVEN,
        sf_python=None,
    )
    messages = []
    table = acc.run_benchmark(cfg, progress=messages.append)
    assert set(table["n_origins"]) == {2}
    assert set(table["h"]) == {4}
    syn = table[table["dataset"] == "synthetic"]
    # oracle (agent + 2 aggregates) + 2 baselines x (agent + 2 levels x direct/bottom-up)
    assert len(syn) == 3 + 2 * 5
    assert set(table.loc[table["dataset"] == "maven", "model"]) == {"SeasonalNaive", "CalendarBaseline"}
    bu = table[table["approach"] == "bottom-up"]
    assert set(bu["level"]) == {"territory", "company"}
    assert (table.loc[table["level"] == "company", "n_series"] == 1).all()
    for col in ("mase", "scaled_crps", "coverage_80", "coverage_95"):
        assert table[col].notna().all(), col
    assert table["coverage_80"].between(0, 1).all()
    assert (table["coverage_95"] >= table["coverage_80"]).all()
    md = acc.to_markdown(table)
    assert md.count("\n") == len(table) + 1 and "| MASE |" in md


def test_statsforecast_is_skipped_with_a_message_without_its_environment(acc, tmp_path):
    cfg = acc.BenchConfig.quick(
        datasets=("synthetic",),
        models=("seasonal_naive", "autoets"),
        n_agents=10,
        years=1.5,
        n_draws=50,
        sf_python=tmp_path / "missing" / "python",
    )
    messages = []
    table = acc.run_benchmark(cfg, progress=messages.append)
    assert any("statsforecast skipped" in m for m in messages)
    assert set(table["model"]) == {"SeasonalNaive"}


def test_hb_fit_time_table_has_the_recent_window_and_full_history(acc):
    cfg = acc.BenchConfig.quick(n_agents=6, years=1.0)
    table = acc.hb_scaling((6, 8), methods={"advi": 8}, cfg=cfg, recent_weeks=20, progress=lambda m: None)
    assert table[["agents", "history"]].values.tolist() == [
        [6, "last 20 weeks"],
        [6, "full history"],
        [8, "full history"],
    ]
    recent, full = table.iloc[0], table.iloc[1]
    assert recent["agent_weeks"] < full["agent_weeks"]
    assert recent["agent_weeks"] <= 20 * recent["series"]
    assert (table["fit_s"] > 0).all() and table["check"].str.startswith("converged=True").all()


@pytest.mark.slow
def test_hb_fit_time_table_reports_the_nuts_check(acc):
    cfg = acc.BenchConfig.quick(n_agents=6, years=1.0)
    table = acc.hb_scaling((6,), methods={"nuts": 6}, cfg=cfg, recent_weeks=20, progress=lambda m: None)
    assert (table["sampler"] == "nutpie").all()
    assert table["check"].str.match(r"divergences=\d+, max R-hat=\d\.\d{3}$").all()


def test_auto_verdict_allows_summation_order_but_not_a_worse_score(acc):
    import pandas as pd

    def table(auto_crps):
        rows = [
            dict(
                dataset="d",
                h=4,
                level="company",
                model=acc.LABELS["auto"],
                approach="bottom-up",
                mase=0.5,
                scaled_crps=auto_crps,
                coverage_80=0.8,
                picks="MonthOfQuarterMean x6",
            ),
            dict(
                dataset="d",
                h=4,
                level="company",
                model=acc.BASELINE,
                approach="direct",
                mase=0.5,
                scaled_crps=0.4840051317589034,
                coverage_80=0.8,
                picks="",
            ),
        ]
        return pd.DataFrame(rows)

    assert ": ok:" in acc.auto_verdicts(table(0.4840051317589035))  # the same draws summed in another order
    assert "NOT MET" in acc.auto_verdicts(table(0.4841))
