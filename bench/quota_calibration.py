"""Is P(quota) calibrated? Reliability tables over past quarters of a synthetic organisation.

Usage::

    .venv/bin/python bench/quota_calibration.py                 # 200 agents, seed 3, all models
    .venv/bin/python bench/quota_calibration.py --agents 100 --seed 4 --models calendar

For every complete quarter from 2023-Q3 on (three years of data: ten quarters) and 0, 4 and 8
weeks into it, each model is refitted on the agents' weekly bookings up to the origin and
P(quota) computed per agent (``spm_models.evaluation.quota.backtest``); the oracle draws from the
generator's truth instead. ``recalibrated`` is the out-of-sample logistic recalibration of
the model's probabilities on the quarters that had ended by each origin
(``spm_models.evaluation.quota.calibration.rolling_recalibration``); both are scored on the same rows
(quarters after the first, where a recalibration exists). Prints, per model and version, the
reliability table (predicted bins against observed hit rates) and a summary: rows, Brier
score (and the constant base rate's), max gap over bins with at least 30 agent-quarters, and
the time to run the backtest.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

MODELS = ("oracle", "calendar", "hb", "calendar+pipeline", "hb+pipeline")


def _model(name: str, org):
    from spm_models.models import CalendarBaseline, HierarchicalBayes, PipelineAware

    if name == "oracle":
        return None
    base, _, pipeline = name.partition("+")
    if base == "calendar":
        model = CalendarBaseline()
    else:
        groups = org.dataset.tables["agents"].set_index("agent_id")["territory_id"].astype(str).to_dict()
        model = HierarchicalBayes(method="advi", groups=groups)
    if pipeline:
        model = PipelineAware(model=model)
    return model


def _markdown(frame: pd.DataFrame) -> str:
    """A pipe table of a frame's index and columns (floats to 3 decimals)."""
    frame = frame.reset_index() if frame.index.name or any(frame.index.names) else frame
    cols = [" ".join(map(str, c)) if isinstance(c, tuple) else str(c) for c in frame.columns]
    cell = lambda v: f"{v:.3f}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def main() -> None:
    from spm_models.evaluation.quota.backtest import backtest_quota_probabilities
    from spm_models.evaluation.quota.calibration import rolling_recalibration
    from spm_models.evaluation.quota.probability import calibration_summary, reliability_table
    from spm_models.synthetic.generator import generate_organisation
    from spm_models.synthetic.oracle import oracle_quota_backtest

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, default=200)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--models", default=",".join(MODELS))
    args = ap.parse_args()
    org = generate_organisation(args.agents, years=3, seed=args.seed)
    tables, summary = [], []
    for name in args.models.split(","):
        t = time.perf_counter()
        if name == "oracle":
            bt = oracle_quota_backtest(org, n_draws=400, first_quarter="2023-07-01")
        else:
            bt = backtest_quota_probabilities(
                org.dataset, model=_model(name, org), n_draws=400, first_quarter="2023-07-01"
            )
        seconds = time.perf_counter() - t
        bt = rolling_recalibration(bt)
        scored = bt[bt["p_recalibrated"].notna()]
        hit = scored["hit"].to_numpy(float)
        for version, col in (("raw", "p_quota"), ("recalibrated", "p_recalibrated")):
            if name == "oracle" and version == "recalibrated":
                continue
            table = reliability_table(scored[col], hit).assign(model=name, version=version)
            tables.append(table)
            s = calibration_summary(scored[col], hit)
            summary.append(
                {
                    "model": name,
                    "version": version,
                    "rows": int(s["n"]),
                    "brier": s["brier"],
                    "base-rate brier": float(np.mean((hit.mean() - hit) ** 2)),
                    "max gap (n>=30)": s["max_gap"],
                    "bins checked": int(s["bins_checked"]),
                    "backtest s": seconds,
                }
            )
    wide = pd.concat(tables)
    wide["cell"] = wide.apply(lambda r: f"{r['observed_rate']:.2f} ({r['n']})" if r["n"] else "-", axis=1)
    grid = wide.pivot_table(index=["lower", "upper"], columns=["model", "version"], values="cell", aggfunc="first")
    print(
        f"\nObserved hit rate (agent-quarters) per predicted-probability bin, {args.agents} agents, seed {args.seed}\n"
    )
    print(_markdown(grid))
    print()
    print(_markdown(pd.DataFrame(summary)))


if __name__ == "__main__":
    main()
