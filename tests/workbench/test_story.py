"""Sentences and tables of the analyst notebooks (spm_models.workbench.story), on hand-made results."""

from __future__ import annotations

import numpy as np
import pandas as pd

from spm_models.workbench import story
from spm_models.workbench.story import (
    accuracy_story,
    calibration_story,
    discovery_story,
    known_lag_story,
    quota_backtest_story,
    quota_plan_story,
    readable_table,
)


def test_readable_table_formats_each_column_in_its_unit_and_drops_the_rest():
    frame = pd.DataFrame(
        {"unique_id": ["A1"], "quota": [28191.313753], "p": [0.6512], "z": [2.220446e-16], "c": ["indicator:x_y"]}
    )
    out = readable_table(
        frame, {"quota": "currency", "p": "ratio", "z": "number", "c": "indicator"}, labels={"p": "Chance"}
    )
    assert list(out.columns) == ["quota", "Chance", "z", "c"]
    assert out.iloc[0].tolist() == ["USD 28.2k", "65%", "0.00", "x y"]


def _accuracy(**best) -> pd.DataFrame:
    rows = [
        {"model": "A", "scaled_crps": 0.50, "coverage_80": 0.80, "bias_pct": 12.0, "n_fallback": 0, **best},
        {"model": "B", "scaled_crps": 0.60, "coverage_80": 0.70, "bias_pct": -3.0, "n_fallback": 0},
    ]
    return pd.DataFrame(rows)


def test_accuracy_story_names_the_best_model_its_lead_intervals_and_bias():
    text = accuracy_story(_accuracy())
    assert text.startswith("**A** forecasts these data best (scaled CRPS 0.50")
    assert "17% better than B" in text  # (0.60 - 0.50) / 0.60
    assert "held 80% of the actuals: about right" in text and "over-forecasts by 12%" in text
    assert "too narrow" in accuracy_story(_accuracy(coverage_80=0.6))
    assert "a tie" in accuracy_story(_accuracy(scaled_crps=0.595))
    assert "2 series were too short" in accuracy_story(_accuracy(n_fallback=2))


def test_calibration_story_judges_each_interval():
    calib = pd.DataFrame({"model": ["A", "A"], "nominal": [0.8, 0.95], "observed": [0.88, 0.94], "n": [10, 10]})
    text = calibration_story(calib)
    assert "80% intervals held 88% (too wide (cautious))" in text and "95% intervals held 94% (about right)" in text


def test_quota_plan_story_says_whether_quotas_are_equally_hard():
    plan = pd.DataFrame({"quota": [60.0, 40.0], "expected_bookings": [100.0, 100.0], "p_attain": [0.65, 0.65]})
    fair = pd.DataFrame([{"p_min": 0.65, "p_max": 0.66, "p_median": 0.65, "no_forecast": 0}])
    text = quota_plan_story(plan, fair, share=0.65)
    assert "2 agents get quotas totalling USD 100" in text and "(50%)" in text and "equally hard" in text
    spread = quota_plan_story(plan, fair.assign(p_min=0.4, p_max=0.9, no_forecast=1), share=0.65)
    assert "runs from 40% to 90%" in spread and "1 agent(s) have no bookings forecast" in spread


def test_quota_backtest_story_says_too_easy_too_hard_or_right():
    def shares(x):
        return pd.Series({"2024-01-01": x, "all": x})

    assert "too easy" in quota_backtest_story(shares(0.81), share=0.65, model="M")
    assert "too hard" in quota_backtest_story(shares(0.40), share=0.65, model="M")
    right = quota_backtest_story(shares(0.66), share=0.65, model="HierarchicalBayes")
    assert right.startswith("Planned with HierarchicalBayes at 1 past origin(s), 66%") and "about right" in right
    assert "No past quarter" in quota_backtest_story(pd.Series({"all": np.nan}), share=0.65, model="M")


def test_discovery_story_names_what_was_chosen_and_the_best_refusal():
    ranked = pd.DataFrame(
        {
            "candidate": ["activity:demo", "indicator:market_index"],
            "best_lag": [3, 8],
            "z": [5.2, 3.1],
            "z_band": [3.9, 3.9],
            "verdict": ["leading indicator", "not significant after correcting for the search"],
        }
    )
    text = discovery_story(ranked)
    assert "found 1 leading indicator(s): demos logged (3 weeks ahead)" in text
    assert "market index at 8 weeks (z = 3.1 against a bar of 3.9)" in text
    assert "found no leading indicator" in discovery_story(ranked.iloc[1:])
    untested = ranked.iloc[1:].assign(best_lag=np.nan, z=np.nan, verdict="too little data")
    assert discovery_story(untested) == "Discovery found no leading indicator that passed every check."


def test_known_lag_story_reports_each_test():
    text = known_lag_story(
        [
            {"candidate": "indicator:market_index", "lag": 8, "z": 2.5, "p": 0.006},
            {"candidate": "indicator:marketing_spend", "lag": 8, "z": 0.1, "p": 0.46},
        ]
    )
    assert "market index at 8 weeks: an effect (z = 2.5, p = 0.006)" in text
    assert "marketing spend at 8 weeks: no effect" in text


def _effects(rows):
    return pd.DataFrame(rows, columns=["name", "pct_mean", "pct_q0.05", "pct_q0.95"]).assign(
        interval_width=lambda f: f["pct_q0.95"] - f["pct_q0.05"]
    )


def test_effects_story_names_the_clearest_effect_and_counts_those_pinned_down():
    effects = _effects(
        [
            ("activity:call", 3.0, -2.0, 8.0),  # includes 0
            ("activity:demo", 12.0, 6.0, 18.0),  # 6 from 0, width 12: 0.5
            ("indicator:market_index", -9.0, -20.0, -1.0),  # 1 from 0, width 19
        ]
    )
    text = story.effects_story(effects)
    assert text.startswith("The clearest effect is demos logged: one standard deviation more goes with +12%")
    assert "(90% interval +6% to +18%)" in text
    assert "2 of 3 effects have a 90% interval that excludes zero; the other 1 could be no effect at all." in text
    none = story.effects_story(_effects([("activity:call", 1.0, -3.0, 5.0)]))
    assert none.startswith("None of the 1 effects is pinned down")
    assert "estimates no effects" in story.effects_story(_effects([]))
    table = story.readable_effects(effects)
    assert table.loc[1].tolist() == ["demos logged", "+12%", "+6%", "+18%"]


def test_scenario_story_says_the_change_of_bookings_and_of_the_chance_of_quota():
    view = pd.DataFrame(
        {
            "case": ["as fitted", "scenario"],
            "expected_bookings": [100_000.0, 112_000.0],
            "p_quota": [0.40, 0.55],
            "change_pct": [0.0, 12.0],
        }
    )
    text = story.scenario_story(view)
    assert text.startswith(
        "Under the scenario, expected bookings change by +12%: USD 100.0k as fitted, USD 112.0k with it."
    )
    assert text.endswith("The chance of reaching quota moves from 40% to 55%.")
    same = story.scenario_story(view.assign(expected_bookings=[100_000.0, 100_000.0], change_pct=[0.0, 0.0]))
    assert "changes nothing the model uses" in same


def test_plan_comparison_story_gives_each_plan_and_the_paired_difference():
    table = pd.DataFrame(
        {
            "current": {
                "expected cost": 180_000.0,
                "cost, 10th percentile": 167_000.0,
                "cost, 90th percentile": 194_000.0,
                "cost as share of expected bookings": 0.077,
                "cost minus current, mean": 0.0,
                "cost minus current, 10th percentile": 0.0,
                "cost minus current, 90th percentile": 0.0,
            },
            "draft": {
                "expected cost": 142_000.0,
                "cost, 10th percentile": 128_000.0,
                "cost, 90th percentile": 158_000.0,
                "cost as share of expected bookings": 0.061,
                "cost minus current, mean": -38_000.0,
                "cost minus current, 10th percentile": -42_500.0,
                "cost minus current, 90th percentile": -32_900.0,
            },
        }
    )
    text = story.plan_comparison_story(table)
    assert text.startswith("current is expected to cost USD 180.0k (80% range USD 167.0k to USD 194.0k, 8% of expected")
    assert "draft costs USD 38.0k less than current on average" in text
    assert text.endswith("it is cheaper in at least 90% of them.")
    mixed = table.copy()
    mixed.loc["cost minus current, 90th percentile", "draft"] = 5_000.0
    assert story.plan_comparison_story(mixed).endswith("which is cheaper depends on the quarter.")


def test_cost_coverage_story_judges_the_range_by_its_interval():
    cov = pd.DataFrame(
        [
            {
                "plan": "current",
                "quarters": 7,
                "held": 4,
                "coverage": 4 / 7,
                "coverage_low": 0.29,
                "coverage_high": 0.81,
                "below": 2,
                "above": 1,
            },
            {
                "plan": "draft",
                "quarters": 20,
                "held": 10,
                "coverage": 0.5,
                "coverage_low": 0.33,
                "coverage_high": 0.67,
                "below": 6,
                "above": 4,
            },
        ]
    )
    text = story.cost_coverage_story(cov)
    assert "current: held in 4 of 7 quarters (57%, 90% interval 29% to 81%; 2 below, 1 above), about right" in text
    assert "draft: held in 10 of 20 quarters" in text and text.endswith("too narrow: budget with care.")
    assert "has not been backtested" in story.cost_coverage_story(cov.iloc[:0])


def test_tier_and_payout_stories_name_the_crowded_band_and_the_spread():
    counts = pd.DataFrame(
        {
            "plan_id": ["ae", "ae", "ae"],
            "component_id": ["commission"] * 3,
            "tier": [0, 1, 2],
            "label": ["below 100%", "100% to 150%", "150% and above"],
            "expected_people": [12.4, 20.6, 3.0],
            "q10": [9.0, 17.0, 1.0],
            "q90": [16.0, 24.0, 5.0],
        }
    )
    assert story.tier_story(counts) == (
        "ae / commission: most people land in 100% to 150% (20.6 expected, 80% range 17 to 24)."
    )
    payouts = pd.DataFrame(
        {
            "agent_id": ["A1", "A2", "A3"],
            "earned_to_date": [0.0, 100.0, 50.0],
            "expected": [1_000.0, 9_000.0, 2_000.0],
            "q10": [0.0, 4_000.0, 500.0],
            "q90": [3_000.0, 15_000.0, 4_000.0],
            "p_any": [0.6, 1.0, 0.95],
        }
    )
    text = story.payout_story(payouts)
    assert text.startswith("3 people: the median expected payout is USD 2.0k; the largest, A2, expects USD 9.0k")
    assert text.endswith("2 of 3 have at least a 90% chance of being paid anything.")


def test_regressors_story_says_what_a_forecast_of_the_horizon_may_use():
    chosen = pd.DataFrame({"candidate": ["activity:demo", "indicator:market_index"], "best_lag": [3, 8]})
    assert story.regressors_story({"indicator:market_index": 8}, chosen, horizon=4) == (
        "A 4-week forecast can use market index (lag 8): each is known at least 4 weeks ahead."
    )
    assert "cannot use them" in story.regressors_story({}, chosen.iloc[:1], horizon=4)
    assert "forecasts use none" in story.regressors_story({}, chosen.iloc[:0], horizon=4)


def test_best_lags_story_counts_those_over_the_corrected_bar():
    best = pd.DataFrame(
        {
            "candidate": ["activity:demo", "activity:call", "indicator:market_index"],
            "lag": [3, 10, 8],
            "statistic": ["prewhitened", "gls", "gls"],
            "z_prewhitened": [4.2, 1.0, 1.1],
            "z_gls": [3.0, 1.5, 2.5],
            "z_band": [3.5, 3.5, 3.5],
        }
    )
    assert story.best_lags_story(best) == (
        "1 of 3 candidates clear the corrected bar at their best lag; the strongest is demos logged at 3 weeks "
        "(z = 4.2 against 3.5). The next checks (stability, out of sample) decide."
    )
    assert story.best_lags_story(best.iloc[1:]).endswith("none is significant after searching every lag and candidate.")
