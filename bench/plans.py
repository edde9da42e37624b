"""Two plan books on the built-in example: next quarter's cost side by side, and a backtest.

The built-in example (``generate_organisation(50, years=3, seed=7)``, what ``spm demo`` loads)
is modelled under ``plans/example.toml`` (the plans in force) and ``plans/draft.toml`` (a
draft): :func:`~spm_models.insights.incentives.plan_runs` from the review's default date, then
:func:`~spm_models.insights.incentives.compare_plans`. The backtest
(:func:`~spm_models.insights.incentives.backtest_plan_cost`) forecasts every past quarter's cost
from the Sunday before it and counts how often the 80% range held what the plans cost.

    .venv/bin/python bench/plans.py                      # CalendarBaseline, 500 draws
    .venv/bin/python bench/plans.py --model MonthOfQuarterMean --as-of 2025-09-30
"""

from __future__ import annotations

import argparse
import time

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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="CalendarBaseline")
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--as-of", default=None, help="last day of actuals (default: the review's default date)")
    args = parser.parse_args(argv)
    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 20)
    t0 = time.perf_counter()
    data = generate_organisation(50, years=3, seed=7).dataset
    books = {
        name: load_plan_book(example_plan_file(file)) for name, file in (("current", "example"), ("draft", "draft"))
    }
    runs = plan_runs(data, books, model=make_model(args.model), as_of=args.as_of, n_draws=args.draws)
    quarter = next(iter(runs.values())).context.quarter_label
    print(f"## Next quarter ({quarter}), model {args.model}, {args.draws} scenarios\n")
    print(compare_plans(runs).round(3).to_string(), "\n")
    for name, run in runs.items():
        print(f"people per tier, {name}:")
        print(tier_counts(run).round(1).to_string(index=False), "\n")
    bt = backtest_plan_cost(data, books, model=make_model(args.model), n_draws=args.draws)
    print("## Backtest: forecast from the Sunday before each quarter\n")
    print(bt.drop(columns=["period_start", "origin"]).round(0).to_string(index=False), "\n")
    print(cost_coverage(bt).round(3).to_string(index=False))
    print(f"\n{time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
