"""Smoke test of bench/indicators.py: one small seed end to end, and the power table on known rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


@pytest.fixture(scope="module")
def bench(load_bench):
    return load_bench("indicators")


def test_a_seed_gives_one_row_per_candidate_with_its_group_and_the_oracle(bench, monkeypatch):
    monkeypatch.setattr(bench, "N_PERMUTATIONS", 99)
    rows = bench.run_seed(15, 3)
    assert set(rows["candidate"]) >= set(bench.GROUPS) - {"pipeline_added"}
    assert (rows["group"] != "other").all() and rows["seconds"].gt(0).all()
    planted = rows[rows["group"] == "planted"].set_index("candidate")
    assert planted["true_lag"].to_dict() == {"activity:demo": 3, "indicator:market_index": 8}
    assert planted["oracle_p"].between(0, 1).all() and rows.loc[rows["group"] != "planted", "oracle_p"].isna().all()
    assert (rows["found"] <= rows["flagged"]).all()


def test_power_table_counts_found_flagged_and_the_oracle(bench):
    rows = pd.DataFrame(
        {
            "agents": 50,
            "seed": [0, 0, 1, 1],
            "candidate": ["activity:demo", "activity:call", "activity:demo", "activity:call"],
            "group": ["planted", "no effect of its own"] * 2,
            "true_lag": pd.array([3, pd.NA, 3, pd.NA], dtype="Int64"),
            "best_lag": pd.array([3, 5, 6, 2], dtype="Int64"),
            "flagged": [True, True, True, False],
            "found": [True, False, False, False],  # seed 1's demo at lag 6 is not at the planted lag
            "oracle_p": [0.001, np.nan, 0.2, np.nan],
            "seconds": [1.0, 1.0, 2.0, 2.0],
        }
    )
    t = bench.power_table(rows).set_index("candidate")
    assert t.loc["activity:demo", "found"] == 0.5 and t.loc["activity:demo", "flagged"] == 1.0
    assert t.loc["activity:demo", "oracle"] == 0.5 and t.loc["activity:call", "flagged"] == 0.5
    assert np.isnan(t.loc["activity:call", "found"])
    timing = bench.timing_table(rows)
    assert timing["median_s"].iloc[0] == 1.5 and timing["max_s"].iloc[0] == 2.0
    assert "| 50 | planted | activity:demo | 2 | 3 | 50% | 100% | 50% |" in bench.markdown(
        t.reset_index()[["agents", "group", "candidate", "seeds", "true_lag", "found", "flagged", "oracle"]]
    )
