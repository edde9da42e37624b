"""The review's HierarchicalBayes fit joint, in 2 parts here, and in 2 parts on a 2-worker LocalCluster.

Usage::

    .venv/bin/python bench/fit_partitions.py 300          # ADVI, as model = "auto" fits it
    .venv/bin/python bench/fit_partitions.py 100 nuts     # NUTS, the model's default

A synthetic organisation of the given size (two years, seed 3); the review's forecast alone
(:func:`spm_models.review.forecasting.review_forecast`, 1,000 draws, no recalibration). Prints
the wall time of each fit and the mean and spread of the company's quarter total (the parts do
not share the company-wide parameters; docs/scale.md).
"""

from __future__ import annotations

import sys
import time

from spm_models.data.validation import validate
from spm_models.review import outlook as ol
from spm_models.review.cluster import ClusterPool
from spm_models.review.forecasting import review_forecast
from spm_models.review.freshness import choose_month
from spm_models.review.settings import ReviewConfig
from spm_models.synthetic.generator import generate_organisation


def main() -> None:
    from distributed import Client, LocalCluster

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    nuts = sys.argv[2:] == ["nuts"]
    org = validate(generate_organisation(n, years=2, seed=3).dataset)
    month, _ = choose_month(org)
    cal = ol.review_calendar(month, data_end=ol.data_last_day(org), calendar=org.fiscal_calendar)
    asof = ol.as_of_dataset(org, cal.as_of)
    agents = ol.review_agents(asof["agents"], cal.as_of)
    agents = agents.assign(agent_id=agents["agent_id"].astype(str), territory_id=agents["territory_id"].astype(str))
    print(f"{len(agents)} agents in {agents['territory_id'].nunique()} territories, {'NUTS' if nuts else 'ADVI'}")
    params = {} if nuts else {"method": "advi", "draws": 200, "chains": 1}

    def run(parts: int, label: str, executor=None) -> None:
        config = ReviewConfig(
            model="HierarchicalBayes", model_params=params, n_draws=1000, fit_partitions=parts, recalibrate=False
        )
        t = time.perf_counter()
        rf = review_forecast(asof, agents, cal, config, learn_calibration=False, executor=executor)
        took = time.perf_counter() - t
        total = rf.raw["company"].draws[0].sum(axis=0)
        print(
            f"{label}: {took:.1f} s, company quarter total mean {total.mean():,.0f} sd {total.std():,.0f}", flush=True
        )

    run(1, "joint fit, here")
    run(2, "2 parts, here")
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as lc, Client(lc) as client:
        client.run(__import__, "spm_models.models.hierarchical.model")  # the workers' imports before the clock
        run(2, "2 parts, 2-worker LocalCluster", ClusterPool(client))


if __name__ == "__main__":
    main()
