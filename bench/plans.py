"""Two plan books on the built-in example: next quarter's cost side by side, and a backtest.

The built-in example (``generate_organisation(50, years=3, seed=7)``, what ``spm demo`` loads)
is modelled under ``plans/example.toml`` (the plans in force) and ``plans/draft.toml`` (a
draft): :func:`~spm_models.insights.incentives.plan_runs` from the review's default date, then
:func:`~spm_models.insights.incentives.compare_plans`. The backtest
(:func:`~spm_models.insights.incentives.backtest_plan_cost`) forecasts every past quarter's cost
from the Sunday before it, on the review's recalibrated scenarios, and counts how often the 80%
range held what the plans cost: per quarter, on the built-in example, then pooled over the
organisations of ``--seeds`` (same size and span, other seeds: seven quarters each are too few
to tell 57% from 80%), against the model's own draws on the same quarters.

    .venv/bin/python bench/plans.py                      # CalendarBaseline, 500 draws, seeds 0-9
    .venv/bin/python bench/plans.py --model MonthOfQuarterMean --as-of 2025-09-30 --seeds 7
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from spm_models.insights.incentives import (
    backtest_plan_cost,
    compare_plans,
    cost_coverage,
    load_plan_book,
    plan_runs,
    tier_counts,
)
from spm_models.insights.incentives.planfile import example_plan_file
from spm_models.models import make_model
from spm_models.synthetic.generator import generate_organisation

BUILT_IN = 7
ROW = [
    "plan", "period", "expected_cost", "cost_q10", "cost_q90", "realised_cost", "held",
    "drift", "spread", "territory_spread",
]  # fmt: skip


def _coverage(bt: pd.DataFrame) -> pd.DataFrame:
    """:func:`cost_coverage` with the distance from the nominal 0.8 in binomial standard errors
    of ``n`` quarters at 0.8."""
    cov = cost_coverage(bt)
    cov["z_vs_0.8"] = (cov["coverage"] - 0.8) / np.sqrt(0.8 * 0.2 / cov["quarters"])
    return cov.drop(columns=["coverage_low", "coverage_high"])


def _bias_width(bt: pd.DataFrame) -> pd.DataFrame:
    """Is a miss bias or width? Per plan: the mean and spread of ``log(realised / expected)``
    over the quarters, against the spread the ranges claimed (``log(q90 / q10) / 2.563``, the
    standard deviation of a log-normal with that 80% range; the median over the quarters)."""
    err = np.log(bt["realised_cost"] / bt["expected_cost"])
    claimed = np.log(bt["cost_q90"] / bt["cost_q10"]) / (2 * 1.2815515655446004)
    frame = pd.DataFrame({"plan": bt["plan"], "err": err, "claimed": claimed})
    return frame.groupby("plan", sort=False).agg(
        mean_log_error=("err", "mean"), sd_log_error=("err", "std"), claimed_sd=("claimed", "median")
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="CalendarBaseline")
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--as-of", default=None, help="last day of actuals (default: the review's default date)")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(10)), help="organisations pooled")
    args = parser.parse_args(argv)
    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 20)
    t0, c0 = time.perf_counter(), time.process_time()
    books = {
        name: load_plan_book(example_plan_file(file)) for name, file in (("current", "example"), ("draft", "draft"))
    }
    data = generate_organisation(50, years=3, seed=BUILT_IN).dataset
    runs = plan_runs(data, books, model=make_model(args.model), as_of=args.as_of, n_draws=args.draws)
    ctx = next(iter(runs.values())).context
    qc = ctx.calibration
    print(f"## Next quarter ({ctx.quarter_label}), model {args.model}, {args.draws} scenarios\n")
    learned = {"drift": qc.drift, "spread": qc.spread, "territory spread": qc.group_spread}
    print(
        "review's recalibration: "
        + ", ".join(f"{k} {'-' if v is None else f'{v:.3f}'}" for k, v in learned.items())
        + (f"; not applied: {'; '.join(qc.notes)}" if qc.notes else ""),
        "\n",
    )
    print(compare_plans(runs).round(3).to_string(), "\n")
    for name, run in runs.items():
        print(f"people per tier, {name}:")
        print(tier_counts(run).round(1).to_string(index=False), "\n")

    frames = {}
    for seed in dict.fromkeys([BUILT_IN, *args.seeds]):
        org = data if seed == BUILT_IN else generate_organisation(50, years=3, seed=seed).dataset
        for how, calibrate in (("review", True), ("raw", False)):
            bt = backtest_plan_cost(org, books, model=make_model(args.model), n_draws=args.draws, calibrate=calibrate)
            frames[seed, how] = bt.assign(seed=seed)
    print(f"## Backtest of the built-in example (seed {BUILT_IN}): forecast from the Sunday before each quarter\n")
    print("the review's recalibrated scenarios (drift, spread: the common factor; NaN: too few quarters before)")
    print(frames[BUILT_IN, "review"][ROW].round(3).to_string(index=False), "\n")
    print(_coverage(frames[BUILT_IN, "review"]).round(3).to_string(index=False), "\n")
    print("the model's own draws, for comparison")
    print(_coverage(frames[BUILT_IN, "raw"]).round(3).to_string(index=False), "\n")

    seeds = list(dict.fromkeys(args.seeds))
    review = pd.concat([frames[s, "review"] for s in seeds], ignore_index=True)
    raw = pd.concat([frames[s, "raw"] for s in seeds], ignore_index=True)
    print(f"## Backtest pooled over seeds {seeds}\n")
    print("every quarter, review's scenarios:")
    print(review[["seed", *ROW]].round(3).to_string(index=False), "\n")
    per_seed = review.groupby(["plan", "seed"], sort=False)["held"].agg(held="sum", quarters="size").reset_index()
    print("held per organisation:")
    print(per_seed.pivot(index="seed", columns="plan", values="held").to_string(), "\n")
    by_period = review.groupby(["period", "plan"])["held"].mean().unstack("plan")
    print("share held per quarter, over the organisations:")
    print(by_period.round(2).to_string(), "\n")
    print("bias or width? log(realised / expected) against the spread the ranges claimed:")
    both = pd.concat({"review": _bias_width(review), "model's own": _bias_width(raw)}, names=["draws"])
    print(both.round(3).to_string(), "\n")
    print("pooled, review's scenarios:")
    print(_coverage(review).round(3).to_string(index=False), "\n")
    print("pooled, the model's own draws:")
    print(_coverage(raw).round(3).to_string(index=False))
    print(f"\n{time.perf_counter() - t0:.1f} s wall, {time.process_time() - c0:.1f} s CPU")


if __name__ == "__main__":
    main()
