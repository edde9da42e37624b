"""The hierarchical model fitted in parts of whole territories (spm_models.review.partitions).

Fast tests of the plan and of putting the parts together (no cluster); the same fits as Dask
tasks on a two-worker LocalCluster are in test_cluster.py (slow).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

from spm_models.exceptions import DataError
from spm_models.models import CalendarBaseline
from spm_models.models.aggregate import aggregate_draws
from spm_models.models.forecast import Forecast
from spm_models.review.partitions import combine_partitions, fit_in_partitions, partition_seed, plan_partitions
from spm_models.review.settings import ReviewConfig


def _agents(sizes: dict[str, int]) -> pd.DataFrame:
    rows = [(f"{t}-{i:02d}", t) for t, n in sizes.items() for i in range(n)]
    return pd.DataFrame(rows, columns=["agent_id", "territory_id"])


def test_territories_are_never_split_and_parts_are_about_equal():
    agents = _agents({"T1": 9, "T2": 7, "T3": 5, "T4": 4, "T5": 3, "T6": 1})
    plan = plan_partitions(agents, 2)
    assert sorted(t for part in plan for t in part) == ["T1", "T2", "T3", "T4", "T5", "T6"]
    sizes = agents.groupby("territory_id").size()
    assert sorted(int(sizes[p].sum()) for p in plan) == [14, 15]  # 29 agents: as even as whole territories allow
    assert plan == plan_partitions(agents.sample(frac=1.0, random_state=1), 2)  # not the rows' order
    assert plan_partitions(agents, 1) == [sorted(sizes.index)]
    assert len(plan_partitions(agents, 50)) == 6  # at most one part per territory, none empty


def test_each_part_has_its_own_seed():
    seeds = [partition_seed(0, p) for p in range(4)]
    assert len(set(seeds)) == 4 and seeds == [partition_seed(0, p) for p in range(4)]
    assert partition_seed(1, 0) != seeds[0]


def _forecast(ids, draws, start="2025-01-06") -> Forecast:
    ds = np.tile(pd.date_range(start, periods=draws.shape[1], freq="W-MON").to_numpy(), (len(ids), 1))
    return Forecast.from_draws(draws, unique_ids=ids, ds=ds, model="m", freq="W-MON")


def test_parts_combine_draw_by_draw_so_company_draws_are_sums_of_agent_draws():
    rng = np.random.default_rng(0)
    # whole amounts: their float sums are exact in any order, so the check below is equality
    a = _forecast(["T2-00", "T2-01"], rng.poisson(30.0, (2, 3, 50)).astype(float))
    b = _forecast(["T1-00", "T1-01", "T1-02"], rng.poisson(30.0, (3, 3, 50)).astype(float))
    whole = combine_partitions([a, b])
    assert list(whole.unique_ids) == ["T1-00", "T1-01", "T1-02", "T2-00", "T2-01"]
    np.testing.assert_array_equal(whole.draws[3], a.draws[0])  # draw k of a part is draw k of the whole
    np.testing.assert_array_equal(whole.draws[:3], b.draws)
    company = aggregate_draws(whole, dict.fromkeys(whole.unique_ids, "all"))
    total = np.zeros_like(whole.draws[0])
    for agent in whole.draws:  # draw k of the company is the sum of every agent's draw k
        total += agent
    np.testing.assert_array_equal(company.draws[0], total)
    with pytest.raises(DataError, match="more than one forecast"):
        combine_partitions([a, a])
    with pytest.raises(DataError, match="different periods"):
        combine_partitions([a, _forecast(["T3-00"], rng.gamma(2.0, 10.0, (1, 3, 50)), start="2025-02-03")])


def _history(agents: pd.DataFrame, weeks: int = 30) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    ds = pd.date_range("2024-01-01", periods=weeks, freq="W-MON")
    return pd.concat(
        [pd.DataFrame({"unique_id": a, "ds": ds, "y": rng.gamma(2.0, 50.0, weeks)}) for a in agents["agent_id"]],
        ignore_index=True,
    )


def test_a_fit_in_parts_gives_the_same_draws_run_here_or_as_tasks():
    agents = _agents({"T1": 3, "T2": 2, "T3": 2})
    frame = _history(agents)
    seeds: list[int] = []

    def make(members: pd.DataFrame, seed: int) -> CalendarBaseline:
        seeds.append(seed)
        return CalendarBaseline(freq="W-MON", random_state=seed)

    options = dict(partitions=2, seed=7, h=4, n_draws=100, quantiles=(0.1, 0.5, 0.9))
    here, models = fit_in_partitions(make, frame, agents, **options)
    with ThreadPoolExecutor(2) as pool:
        tasks, _ = fit_in_partitions(make, frame, agents, executor=pool, **options)
    assert len(models) == 2 and len(set(seeds)) == 2  # two parts, each with its own seed
    assert list(here.unique_ids) == sorted(agents["agent_id"])
    np.testing.assert_array_equal(here.draws, tasks.draws)


def test_fit_partitions_is_a_setting_and_part_of_the_runs_identity():
    with pytest.raises(Exception, match="fit_partitions must be a positive whole number"):
        ReviewConfig(fit_partitions=0)
    assert ReviewConfig(fit_partitions=1).key() == ReviewConfig().key()  # one joint fit, as before the setting
    assert ReviewConfig(fit_partitions=4).key() != ReviewConfig().key()  # the parts change the forecast
