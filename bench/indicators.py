"""Power and false positives of leading-indicator discovery, over seeds of the synthetic organisation.

Usage::

    make bench-indicators                                          # 20 seeds at 50, 200 and 1,000 agents
    .venv/bin/python bench/indicators.py --agents 200 --seeds 5    # a quick look
    .venv/bin/python bench/indicators.py --jobs 2                  # two seeds at a time

For every size and seed, ``generate_organisation(agents, years=3, seed)`` is built and
``discover_leading_indicators(dataset, level="agent")`` (the panel test, 999 permutations, lags
0-16) run on it, timed. Each candidate is then counted:

* **planted** (the generator acts on bookings through the win probability at one lag:
  ``activity:demo`` at 3 weeks, ``indicator:market_index`` at 8): *found* = verdict "leading
  indicator" with a best lag within one week of the planted one. Beside it the **oracle**:
  ``known_lag_test`` at the planted lag, one-sided, the distributed-lag (``gls``) statistic, no
  correction: what an analyst who knew the lag, the direction and the form would find at 5%.
* **placebo** (``indicator:marketing_spend``, planted with no effect) and **no effect of its
  own** (``activity:call``, ``email``, ``meeting``: they move with the agent's activity level,
  which also drives demos, but do not act on bookings): *flagged* = verdict "leading
  indicator" at any lag. These are the false positives.
* **deal flow** (``indicator:leads_*``: the generator scales opportunity creation by the
  territory's lead intensity; ``opportunities_created``, ``pipeline_added``: the pipeline
  itself): these do lead bookings, through deals that close 4 to 12 weeks after they are
  created, at no single lag. Their flagged share is reported, not judged.

On the Maven CRM export (no planted effect; opportunities only) nothing should be flagged, at
agent and at company level.

Each (size, seed) result is cached in ``bench/results/indicators/`` (git-ignored) under a key of
the discovery code, so an interrupted run resumes where it stopped and a change to the method
recomputes everything (``--fresh`` forces it). Progress goes to stderr; the tables to stdout and
to ``bench/results/indicators.md`` (numbers: ``indicators.csv``).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results"
MAVEN = ROOT / "data" / "examples" / "maven_crm"
N_PERMUTATIONS = 999
#: What each synthetic candidate is (module docstring).
GROUPS = {
    "activity:demo": "planted",
    "indicator:market_index": "planted",
    "indicator:marketing_spend": "placebo",
    "activity:call": "no effect of its own",
    "activity:email": "no effect of its own",
    "activity:meeting": "no effect of its own",
    "indicator:leads_web": "deal flow",
    "indicator:leads_referral": "deal flow",
    "indicator:leads_event": "deal flow",
    "opportunities_created": "deal flow",
    "pipeline_added": "deal flow",
}
PLANTED = {"activity:demo": "demo", "indicator:market_index": "market_index"}


#: The modules a seed's result depends on (the review's summary and the regressors do not count).
METHOD_FILES = (
    "indicators/arrays.py",
    "indicators/series.py",
    "indicators/significance.py",
    "indicators/selection.py",
    "indicators/backtest.py",
    "indicators/discovery.py",
)


def method_key() -> str:
    """Hash of the discovery code and of the generator: a cached seed is reused only under the same key."""
    files = [ROOT / "spm_models" / f for f in METHOD_FILES] + sorted((ROOT / "spm_models" / "synthetic").glob("*.py"))
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.read_bytes())
    return digest.hexdigest()[:12]


def planted_lags(org) -> dict[str, int]:
    """Candidate -> planted lag in weeks, from the organisation's ground truth."""
    eff = org.truth.indicator_effects.set_index("name")
    return {cand: int(eff.loc[name, "lag_weeks"]) for cand, name in PLANTED.items()}


def run_seed(agents: int, seed: int) -> pd.DataFrame:
    """One organisation: discovery, oracle, timing; one row per candidate."""
    from spm_models.indicators.discovery import discover_leading_indicators, known_lag_test
    from spm_models.indicators.series import build_series
    from spm_models.synthetic.generator import generate_organisation

    org = generate_organisation(agents, years=3, seed=seed)
    lags = planted_lags(org)
    t = time.perf_counter()
    table = discover_leading_indicators(org.dataset, level="agent", n_permutations=N_PERMUTATIONS)
    seconds = time.perf_counter() - t
    target, candidates = build_series(org.dataset, level="agent")
    oracle = {
        c: known_lag_test(target, candidates, candidate=c, lag=lag, n_permutations=N_PERMUTATIONS)["p"]
        for c, lag in lags.items()
    }
    rows = table[["candidate", "best_lag", "statistic", "p_adjusted", "oos_improvement", "verdict"]].copy()
    rows["agents"], rows["seed"], rows["seconds"] = agents, seed, seconds
    rows["group"] = rows["candidate"].map(GROUPS).fillna("other")
    rows["true_lag"] = rows["candidate"].map(lags).astype("Int64")
    rows["flagged"] = rows["verdict"] == "leading indicator"
    near = (rows["best_lag"] - rows["true_lag"]).abs() <= 1
    rows["found"] = rows["flagged"] & near.fillna(False).astype(bool)
    rows["oracle_p"] = rows["candidate"].map(oracle)
    return rows.reset_index(drop=True)


def cached_seed(agents: int, seed: int, *, key: str, fresh: bool) -> pd.DataFrame:
    path = OUT / "indicators" / f"agents{agents}_seed{seed}_{key}.parquet"
    if path.is_file() and not fresh:
        return pd.read_parquet(path)
    rows = run_seed(agents, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    rows.to_parquet(tmp, index=False)
    tmp.replace(path)
    return rows


def power_table(rows: pd.DataFrame, *, alpha: float = 0.05) -> pd.DataFrame:
    """Per size and candidate: share found at the planted lag, share flagged, the oracle's power."""
    g = rows.groupby(["agents", "group", "candidate"], sort=False)
    out = g.agg(
        seeds=("seed", "nunique"),
        true_lag=("true_lag", "first"),
        found=("found", "mean"),
        flagged=("flagged", "mean"),
        oracle=("oracle_p", lambda p: float((p < alpha).mean()) if p.notna().any() else np.nan),
        modal_lag=("best_lag", lambda s: s.dropna().mode().min() if s.notna().any() else pd.NA),
    ).reset_index()
    out.loc[out["group"] != "planted", ["found", "oracle"]] = np.nan
    order = {"planted": 0, "placebo": 1, "no effect of its own": 2, "deal flow": 3, "other": 4}
    out = out.assign(_o=out["group"].map(order)).sort_values(["agents", "_o", "candidate"]).drop(columns="_o")
    return out.reset_index(drop=True)


def timing_table(rows: pd.DataFrame) -> pd.DataFrame:
    per_seed = rows.groupby(["agents", "seed"])["seconds"].first()
    return per_seed.groupby("agents").agg(seeds="size", median_s="median", max_s="max").reset_index()


def maven_rows() -> pd.DataFrame:
    """Discovery on the Maven export at agent and company level."""
    from spm_models.data.sources.maven import load_maven
    from spm_models.data.validation import validate
    from spm_models.indicators.discovery import discover_leading_indicators

    ds = validate(load_maven(MAVEN))
    parts = []
    for level in ("agent", "company"):
        t = discover_leading_indicators(ds, level=level, n_permutations=N_PERMUTATIONS)
        parts.append(t[["candidate", "level", "best_lag", "p_adjusted", "verdict"]])
    return pd.concat(parts, ignore_index=True)


def markdown(frame: pd.DataFrame) -> str:
    """A pipe table (shares as percentages, other floats to 3 decimals)."""
    cols = list(frame.columns)

    def cell(col: str, v) -> str:
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
            return "-"
        if col in ("found", "flagged", "oracle"):
            return f"{100 * v:.0f}%"
        if isinstance(v, float):
            return f"{v:.3f}" if col not in ("median_s", "max_s") else f"{v:.1f}"
        return str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(cell(c, v) for c, v in zip(cols, row)) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", default="50,200,1000", help="comma-separated sizes")
    ap.add_argument("--seeds", type=int, default=20, help="seeds 0..N-1 per size")
    ap.add_argument("--jobs", type=int, default=1, help="seeds run at a time (processes)")
    ap.add_argument("--fresh", action="store_true", help="recompute cached seeds")
    ap.add_argument("--no-maven", action="store_true")
    args = ap.parse_args(argv)
    sizes = [int(a) for a in args.agents.split(",")]
    key = method_key()
    started = time.perf_counter()
    tasks = [(n, s) for n in sizes for s in range(args.seeds)]
    parts = []
    if args.jobs > 1:
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        with ProcessPoolExecutor(args.jobs) as pool:
            futures = [pool.submit(cached_seed, n, s, key=key, fresh=args.fresh) for n, s in tasks]
            for (n, s), fut in zip(tasks, futures):
                parts.append(fut.result())
                print(f"agents={n} seed={s} done ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    else:
        for n, s in tasks:
            parts.append(cached_seed(n, s, key=key, fresh=args.fresh))
            print(f"agents={n} seed={s} done ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    rows = pd.concat(parts, ignore_index=True)
    power = power_table(rows)
    timing = timing_table(rows)
    text = [
        f"Leading-indicator discovery over {args.seeds} seeds (3 years; method key {key}; "
        f"wall time {time.perf_counter() - started:.0f} s with --jobs {args.jobs}, cached seeds included)",
        "",
        markdown(power),
        "",
        "Discovery time per organisation (seconds, discover_leading_indicators at agent level, this machine):",
        "",
        markdown(timing),
    ]
    if not args.no_maven:
        maven = maven_rows()
        flagged = int((maven["verdict"] == "leading indicator").sum())
        text += ["", f"Maven CRM export: {flagged} candidate(s) flagged", "", markdown(maven)]
    OUT.mkdir(parents=True, exist_ok=True)
    rows.to_csv(OUT / "indicators.csv", index=False)
    (OUT / "indicators.md").write_text("\n".join(text) + "\n", encoding="utf-8")
    print("\n".join(text))


if __name__ == "__main__":
    main()
