"""Is the review's chance of hitting quota calibrated? Reliability over past quarters.

Usage::

    make bench-quota                                            # 500 agents, seed 3, three years
    .venv/bin/python bench/quota_calibration.py --agents 200 --seed 4

The synthetic organisation's data stand in for a user's export. The chances are made on the
review's own code path, as ``spm review`` makes them at the end of every month:

1. the model: ``model = "auto"`` compares the review's candidates on the agents' weekly
   bookings as of the last review month (:func:`spm_models.review.forecasting.candidate_models`,
   :func:`spm_models.evaluation.selection.choose_models`); the agent-level pick is the model
   whose chances the review calibrates (built as the review builds it for its past-quarter
   refits);
2. the backtest: that model refitted at the end of the 1st and 2nd month of every past quarter
   (4 and 8 weeks in) and at the quarter end before it (0 weeks: a quarter-end review forecasts
   the next quarter from its start), with the review's settings (draws, day count, history),
   for agents and for territories (sums of their agents' draws, draw by draw);
3. the calibration: for each quarter, :func:`~spm_models.evaluation.quota.calibration.learn_quota_calibration`
   on the agent rows of the quarters that had ended before it (same point in the quarter), applied
   as the review applies it: both stages to agents, the common factor to territories
   (:func:`~spm_models.evaluation.quota.calibration.rolling_calibration`).

Rows already at or above quota (chance exactly 1, shown as "reached") are counted but left out
of the bins and the Brier score: they cannot miss. Quarters before the calibration has anything
to learn from are left out too (the review shows the model's own chance there, with a note).

For every month of the quarter and level, the table lists each predicted-probability bin
(tenths) with at least 30 cases: mean predicted, observed hit rate, the gap, and the tolerance
``max(0.08, 2 sqrt(p (1 - p) / n))``; then the Brier score of the calibrated and the raw chances
against the base rate's (the hit rate of those rows, a constant forecast). The last line says
whether every bin is within tolerance and every Brier score beats the base rate.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import pandas as pd

#: Offset (weeks into the quarter) of each review month: the 3rd month's review forecasts the next quarter.
MONTH_OF_OFFSET = {4: "1st month", 8: "2nd month", 0: "3rd month"}
MIN_COUNT = 30
TOLERANCE = 0.08


def _markdown(frame: pd.DataFrame) -> str:
    """A pipe table (floats to 3 decimals)."""
    cell = lambda v: f"{v:.3f}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def review_model(dataset, config):
    """The agent-level model ``model = "auto"`` picks at the last review month, as the review
    builds it for its past-quarter refits, and the choice."""
    from spm_models.evaluation.selection import choose_models
    from spm_models.kpi.grid import COMPANY
    from spm_models.review import outlook as ol
    from spm_models.review.forecasting import build_model, candidate_models

    end = ol.data_last_day(dataset)
    month = (end + pd.Timedelta(days=1) - pd.DateOffset(months=1)).strftime("%Y-%m")
    cal = ol.review_calendar(month, data_end=end, calendar=dataset.fiscal_calendar)
    asof = ol.as_of_dataset(dataset, cal.as_of)
    agents = ol.review_agents(asof["agents"], cal.as_of)
    agents = agents.assign(agent_id=agents["agent_id"].astype(str), territory_id=agents["territory_id"].astype(str))
    history = ol.weekly_history(asof, agents["agent_id"], end=cal.train_end)
    terr = dict(zip(agents["agent_id"], agents["territory_id"]))
    choice = choose_models(
        history,
        candidate_models(config, cal.calendar, agents, asof),
        parents={"territory": terr, "company": dict.fromkeys(terr, COMPANY)},
        h=cal.h,
        n_origins=config.auto_origins,
        tables=asof,
        budget_seconds=config.auto_budget_seconds,
    )
    pick = choice.picks["agent"]
    model = build_model(pick, {}, config=config, calendar=cal.calendar, agents=agents, fast=True)
    return model, choice, month


def reliability(scored: pd.DataFrame, column: str) -> pd.DataFrame:
    """Bins of tenths with at least :data:`MIN_COUNT` cases, with their tolerance and verdict."""
    from spm_models.evaluation.quota.probability import reliability_table

    t = reliability_table(scored[column], scored["hit"], bins=10, min_count=MIN_COUNT)
    t = t[t["enough"]].copy()
    se2 = 2 * np.sqrt(t["mean_predicted"] * (1 - t["mean_predicted"]) / t["n"])
    t["tolerance"] = np.maximum(TOLERANCE, se2)
    t["two_se"] = se2
    t["ok"] = t["abs_gap"] <= t["tolerance"]
    return t


def main(argv: list[str] | None = None) -> int:
    from spm_models.evaluation.quota.backtest import backtest_quota_probabilities
    from spm_models.evaluation.quota.calibration import rolling_calibration
    from spm_models.review.settings import ReviewConfig
    from spm_models.synthetic.generator import generate_organisation

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, default=500)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--years", type=int, default=3)
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    org = generate_organisation(args.agents, years=args.years, seed=args.seed)
    config = ReviewConfig()
    model, choice, month = review_model(org.dataset, config)
    t_choice = time.perf_counter() - t0
    print(f"\n{args.agents} agents, seed {args.seed}, {args.years} years; auto at {month} picked:")
    for level, reason in choice.reasons.items():
        print(f"- {level}: {reason}")
    print(f"The review calibrates the agent pick's chances: {model.model_name()} (choice {t_choice:.0f} s)")

    t1 = time.perf_counter()
    bt = backtest_quota_probabilities(
        org.dataset,
        model=model,
        offsets_weeks=tuple(MONTH_OF_OFFSET),
        n_draws=config.recalibration_draws,
        seed=config.seed,
        day_count="calendar",
        levels=("agent", "territory"),
    )
    out = rolling_calibration(bt, min_rows=config.recalibration_min_rows)
    t_backtest = time.perf_counter() - t1
    reached = out["closed_to_date"] >= out["quota"]
    scored = out[out["p_calibrated"].notna() & ~reached]
    print(
        f"Backtest {t_backtest:.0f} s: {len(out)} rows over {out['period_start'].nunique()} quarters; "
        f"{int(reached.sum())} already reached quota (chance 1, all hit: {bool(out.loc[reached, 'hit'].all())}); "
        f"{int((out['p_calibrated'].isna() & ~reached).sum())} before any calibration could be learned; "
        f"{len(scored)} scored."
    )

    early = out[out["p_calibrated"].isna() & ~reached]
    if len(early):
        hit = early["hit"].to_numpy(float)
        print(
            f"Shown uncalibrated (too little history to learn from): {len(early)} cases, Brier "
            f"{np.mean((early['p_quota'].to_numpy(float) - hit) ** 2):.3f} against the base rate's "
            f"{np.mean((hit.mean() - hit) ** 2):.3f}."
        )

    summary, all_ok = [], True
    for offset, month_name in MONTH_OF_OFFSET.items():
        for level in ("agent", "territory"):
            rows = scored[(scored["offset_weeks"] == offset) & (scored["level"] == level)]
            if rows.empty:
                continue
            hit = rows["hit"].to_numpy(float)
            base = float(np.mean((hit.mean() - hit) ** 2))
            brier = {c: float(np.mean((rows[c].to_numpy(float) - hit) ** 2)) for c in ("p_calibrated", "p_quota")}
            table = reliability(rows, "p_calibrated")
            ok = bool(table["ok"].all()) and brier["p_calibrated"] < base
            all_ok &= ok
            plural = {"agent": "agents", "territory": "territories"}[level]
            print(f"\n### {month_name} of the quarter (offset {offset} weeks), {plural}: {len(rows)} cases\n")
            shown = table[["lower", "upper", "n", "mean_predicted", "observed_rate", "abs_gap", "two_se", "tolerance"]]
            shown = shown.assign(within=np.where(table["ok"], "yes", "NO"))
            print(_markdown(shown.rename(columns={"abs_gap": "gap", "two_se": "2 SE"})))
            summary.append(
                {
                    "month": month_name,
                    "level": level,
                    "cases": len(rows),
                    "hit rate": float(hit.mean()),
                    "bins (n>=30)": len(table),
                    "bins within": int(table["ok"].sum()),
                    "max gap": float(table["abs_gap"].max()) if len(table) else float("nan"),
                    "Brier calibrated": brier["p_calibrated"],
                    "Brier raw": brier["p_quota"],
                    "Brier base rate": base,
                }
            )
    print("\n### Summary\n")
    print(_markdown(pd.DataFrame(summary)))
    verdict = "every bin within tolerance and every Brier score below the base rate's"
    print(f"\n{'PASS' if all_ok else 'FAIL'}: {verdict if all_ok else 'not ' + verdict}")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
