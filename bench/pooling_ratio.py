"""What partial pooling does to a scale-free score, with everything known.

Usage::

    .venv/bin/python bench/pooling_ratio.py            # 20,000 agents per row, a few seconds
    .venv/bin/python bench/pooling_ratio.py --maven    # and the same effect measured on Maven

Each agent's mean deal size ``mu`` is drawn from the population ``log mu ~ N(log 1000, w^2)``
and it books ``n`` deals of gamma sizes with shape ``k`` and mean ``mu``. Two estimates of
``mu`` are compared:

* the agent's sample mean (what the month-of-quarter baseline uses), and
* the posterior mean of ``mu`` given the agent's deals and the **true** population, by
  quadrature on a grid of ``log mu`` (what HierarchicalBayes' partial pooling aims at, here
  with no estimation error in the population at all).

Printed per row: the aggregate ratio ``sum est / sum mu`` (both near 1: neither is biased in
dollars), the mean ratio ``mean(est / mu)`` (each agent weighted alike, as a per-series
scaled score such as MASE weights them) and the mean absolute error relative to ``mu``. The
pooled estimate is closer to each agent's ``mu`` (lower relative error), but it moves small
agents up more than it moves large ones down, so its mean ratio sits above 1.

Why that matters for MASE: a week's bookings are skewed, so their median is below their mean
and the expected absolute error of a forecast ``f`` near the mean grows with ``f`` (its slope is
``2 F(f) - 1 > 0``). Moving every agent's forecast by the same share up and down then costs
about ``slope x (mean ratio - 1)`` of MASE, even when each moved forecast is nearer its
agent's mean (bench/README.md, seventh run).
"""

from __future__ import annotations

import argparse

import numpy as np


def row(*, n: int, k: float, w: float, agents: int, rng: np.random.Generator) -> dict[str, float]:
    m = np.log(1000.0)
    grid = np.linspace(m - 6 * w, m + 6 * w, 2001)
    log_prior = -0.5 * ((grid - m) / w) ** 2
    log_mu = rng.normal(m, w, agents)
    mu = np.exp(log_mu)
    totals = rng.gamma(k * n, mu / k)  # the sum of n gamma(k, mu / k) deals
    sample = totals / n
    # log likelihood of the agent's deals at each grid point, up to a constant: -n k b - k S e^-b
    loglik = -n * k * grid[None, :] - k * totals[:, None] * np.exp(-grid)[None, :]
    lp = loglik + log_prior[None, :]
    post = np.exp(lp - lp.max(axis=1, keepdims=True))
    post /= post.sum(axis=1, keepdims=True)
    pooled = post @ np.exp(grid)
    out = {"n": n, "k": k, "w": w}
    for name, est in (("sample", sample), ("pooled", pooled)):
        out[f"{name} sum ratio"] = est.sum() / mu.sum()
        out[f"{name} mean ratio"] = float(np.mean(est / mu))
        out[f"{name} rel. error"] = float(np.mean(np.abs(est - mu) / mu))
    return out


def maven_check(n_draws: int = 2000) -> dict[str, float]:
    """On Maven at h=4 (bench/accuracy.py's origins): the month-of-quarter baseline's agent MASE
    with its forecasts scaled by 0.98, 1 and 1.02, and HierarchicalBayes' agent forecasts over
    the baseline's, per agent and origin (mean ratio) and in total (sum ratio)."""
    import sys
    from pathlib import Path

    import pandas as pd

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import accuracy as A

    from spm_models.evaluation.metrics import mase
    from spm_models.models import clone

    cfg = A.BenchConfig(datasets=("maven",), horizons=(4,))
    data = A.load_data("maven", cfg)
    origins = A.choose_origins(data.grid, h=4, n_origins=cfg.n_origins, step=cfg.step, min_train=cfg.min_train)
    scores = {f: [] for f in (0.98, 1.0, 1.02)}
    ratios, sums = [], np.zeros(2)
    for origin in origins:
        train, actual = A.split(data, "agent", origin, 4)
        means = {}
        for key in ("moq", "hb"):
            model, _, tables = A.make_model(key, level="agent", h=4, data=data, cfg=cfg)
            fc = clone(model).fit(train, **tables).predict(4, n_draws=n_draws)
            means[key] = fc.quantiles
        q = means["moq"].merge(actual, on=["unique_id", "ds"])
        history = {u: g.sort_values("ds")["y"].to_numpy() for u, g in train.groupby("unique_id")}
        for f in scores:
            for u, g in q.groupby("unique_id"):
                scores[f].append(mase(g["y"], f * g["mean"], y_train=history[u]))
        hb, moq = (means[k].groupby("unique_id")["mean"].sum() for k in ("hb", "moq"))
        keep = moq > 0
        ratios.append((hb / moq)[keep])
        sums += [hb[keep].sum(), moq[keep].sum()]
    pooled = {f: float(np.nanmean(v)) for f, v in scores.items()}  # NaN: an agent with no sale (scale 0)
    return {
        "MoQ MASE x0.98": pooled[0.98],
        "MoQ MASE x1": pooled[1.0],
        "MoQ MASE x1.02": pooled[1.02],
        "MASE per +1%": (pooled[1.02] - pooled[0.98]) / 4,
        "HB/MoQ mean ratio": float(pd.concat(ratios).mean()),
        "HB/MoQ sum ratio": float(sums[0] / sums[1]),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--agents", type=int, default=20_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--maven", action="store_true", help="also the check on Maven (about 15 s)")
    a = p.parse_args(argv)
    rng = np.random.default_rng(a.seed)
    stats = ("sum ratio", "mean ratio", "rel. error")
    cols = ["n", "k", "w"] + [f"{e} {s}" for e in ("sample", "pooled") for s in stats]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    # Maven-like rows: 25-40 positive weeks, shapes 0.7-1.5, a within-territory spread of 0.35;
    # then the simulation of the bias probe (w = 0.6) and a thin agent (8 deals)
    for n, k, w in ((35, 1.5, 0.35), (25, 0.7, 0.35), (24, 0.7, 0.6), (8, 0.7, 0.35)):
        r = row(n=n, k=k, w=w, agents=a.agents, rng=rng)
        print("| " + " | ".join(f"{r[c]:.3f}" if isinstance(r[c], float) else str(r[c]) for c in cols) + " |")
    if a.maven:
        check = maven_check()
        print("\nMaven, h=4, agents:")
        for name, value in check.items():
            print(f"- {name}: {value:.4f}")
        implied = check["MASE per +1%"] * 100 * (check["HB/MoQ mean ratio"] - check["HB/MoQ sum ratio"])
        print(f"- MASE the pooling's spread alone would cost (slope x (mean ratio - sum ratio)): {implied:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
