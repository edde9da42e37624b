"""How much HierarchicalBayes' forecast moves with its seed alone.

Usage::

    .venv/bin/python bench/hb_seeds.py                 # Maven, h=4, 6 origins, 5 seeds, ADVI
    .venv/bin/python bench/hb_seeds.py --nuts          # the same by NUTS (about 5 s a fit)
    .venv/bin/python bench/hb_seeds.py --seeds 10 --draws 20000

At each of bench/accuracy.py's rolling origins the agent model is fitted once per seed on the
same weeks, and the company total of the agents' mean forecasts over the horizon is printed:
its mean over the seeds and its spread ``(max - min) / mean``. The seed drives ADVI's
stochastic gradients (or NUTS' chains), the draws from the fitted posterior and the simulated
forecast, so the spread is what a user would see between two runs on the same data. With
``--draws`` large the simulation's own share of it is small (its standard error is printed).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import accuracy as A  # noqa: E402

from spm_models.models import clone  # noqa: E402


def run(*, dataset: str, h: int, seeds: int, draws: int, method: str) -> pd.DataFrame:
    cfg = dataclasses.replace(A.BenchConfig(), datasets=(dataset,), horizons=(h,), hb_method=method)
    data = A.load_data(dataset, cfg)
    origins = A.choose_origins(data.grid, h=h, n_origins=cfg.n_origins, step=cfg.step, min_train=cfg.min_train)
    rows = []
    for origin in origins:
        train, _ = A.split(data, "agent", origin, h)
        totals, se, cpu = [], [], 0.0
        for seed in range(seeds):
            seeded = dataclasses.replace(cfg, hb_seed=seed)
            model, _, tables = A.make_model("hb", level="agent", h=h, data=data, cfg=seeded)
            started = time.process_time()
            model = clone(model).fit(train, **tables)
            cpu += time.process_time() - started
            company = model.predict(h, n_draws=draws).draws.sum(axis=(0, 1))  # the company total, per draw
            totals.append(float(company.mean()))
            se.append(float(company.std() / np.sqrt(draws)))
        totals = np.array(totals)
        rows.append(
            {
                "origin": str(pd.Timestamp(origin).date()),
                "method": method,
                "mean total": totals.mean(),
                "spread %": 100 * (totals.max() - totals.min()) / totals.mean(),
                "sd %": 100 * totals.std(ddof=1) / totals.mean(),
                "simulation se %": 100 * np.mean(se) / totals.mean(),
                "fit CPU s": cpu / seeds,
            }
        )
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="maven", choices=("maven", "synthetic"))
    p.add_argument("--horizon", type=int, default=4)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--draws", type=int, default=5000, help="forecast draws per fit (default 5000)")
    p.add_argument("--nuts", action="store_true", help="NUTS instead of ADVI")
    a = p.parse_args(argv)
    with A._one_blas_thread():
        table = run(dataset=a.dataset, h=a.horizon, seeds=a.seeds, draws=a.draws, method="nuts" if a.nuts else "advi")
    print(table.to_string(index=False, formatters={"mean total": "{:,.0f}".format}, float_format="{:.2f}".format))
    print(f"\nmean over origins: spread {table['spread %'].mean():.2f}%, sd {table['sd %'].mean():.2f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
