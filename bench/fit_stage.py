"""The review's fit stage on the built-in example: choose (auto), fit, recalibrate, sum up.

Usage::

    .venv/bin/python bench/fit_stage.py HierarchicalBayes         # the model named in the settings
    .venv/bin/python bench/fit_stage.py auto --month 2025-09

Times :func:`spm_models.review.forecasting.review_forecast` once, in this fresh process (what
``spm review`` pays each month), on the example organisation ``spm demo`` builds (its default
size, years and seed) as of the month before the data end (or ``--month``). Prints one JSON
line: wall and CPU seconds (this process and its children, every thread), the picks, and the
seconds of the model choice and of the past-quarter recalibration inside it.
"""

from __future__ import annotations

import argparse
import inspect
import json
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def cpu_seconds() -> float:
    """User and system CPU of this process (all threads) and its reaped children."""
    return sum(
        u.ru_utime + u.ru_stime for u in map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", help='model name as in the review settings, or "auto"')
    p.add_argument("--month", help="review month YYYY-MM (default: the month before the data end)")
    a = p.parse_args(argv)

    import pandas as pd

    from spm_models import demo
    from spm_models.data.validation import validate
    from spm_models.review import outlook as ol
    from spm_models.review.forecasting import review_forecast
    from spm_models.review.settings import ReviewConfig
    from spm_models.synthetic.generator import generate_organisation

    defaults = inspect.signature(demo.run_demo).parameters
    n, years, seed = (defaults[k].default for k in ("n_agents", "years", "seed"))
    ds = validate(generate_organisation(n, years=years, seed=seed).dataset)
    end = ol.data_last_day(ds)
    month = a.month or (end + pd.Timedelta(days=1) - pd.DateOffset(months=1)).strftime("%Y-%m")
    cal = ol.review_calendar(month, data_end=end, calendar=ds.fiscal_calendar)
    asof = ol.as_of_dataset(ds, cal.as_of)
    agents = ol.review_agents(asof["agents"], cal.as_of)
    agents = agents.assign(agent_id=agents["agent_id"].astype(str), territory_id=agents["territory_id"].astype(str))
    t0, c0 = time.perf_counter(), cpu_seconds()
    rf = review_forecast(asof, agents, cal, ReviewConfig(model=a.model))
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    diag = getattr(rf.agent_model, "diagnostics_", {})
    out = {
        "model": a.model,
        "agents": n,
        "month": month,
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "picks": rf.picks,
        "choice_s": None if rf.choice is None else round(rf.choice.seconds, 1),
        "recalibration_s": None if rf.recalibration is None else round(rf.recalibration.seconds, 1),
        "quarters_checked": None if rf.recalibration is None else len(rf.recalibration.to_dict().get("quarters", [])),
        "diagnostics": {k: diag[k] for k in ("divergences", "max_rhat", "min_ess_bulk") if k in diag},
    }
    print(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
