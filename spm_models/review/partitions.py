"""The hierarchical model fitted in parts, each a group of whole territories, as parallel tasks.

One joint fit of :class:`~spm_models.models.hierarchical.model.HierarchicalBayes` pools every
agent in one model on one machine. With ``fit_partitions = n`` (n > 1) the review splits the
territories into ``n`` groups of about the same number of agents (:func:`plan_partitions`),
fits the model on each group's agents, and forecasts each; on a Dask cluster (``spm review
--cluster``) each group is a task, elsewhere they run one after the other, with the same
draws either way (each part has its own seed, derived from the run's seed and the part's place).

The parts are put back together draw by draw (:func:`combine_partitions`): draw ``k`` of the
whole is draw ``k`` of every part, so a territory's draw ``k`` (all of its agents are in one
part) and the company's draw ``k`` are sums of the agents' draw ``k``, and every level is
coherent as with the joint fit. What the parts do not share is the posterior of the company-wide
parameters (the company level ``a0``, ``b0`` and the calendar effects): in the joint fit one
posterior sample drives every agent's draw, so that uncertainty moves all territories together;
across parts it is independent. The review's cross-territory co-movement is the common factor of
the recalibration (:func:`~spm_models.review.recalibration.apply_common_factor`), drawn once
per draw for every agent, and it is applied to the combined draws exactly as to a joint fit's;
docs/scale.md says what the parts change in the company's spread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from spm_models.exceptions import DataError
from spm_models.models.base import ForecastModel
from spm_models.models.forecast import Forecast, concat_forecasts

__all__ = ["plan_partitions", "partition_seed", "fit_partition", "combine_partitions", "fit_in_partitions"]


def plan_partitions(agents: pd.DataFrame, n: int) -> list[list[str]]:
    """The territories of ``agents`` in at most ``n`` groups of about equal agent counts.

    Largest territory first, each to the group with the fewest agents so far (ties: the first
    group); a territory is never split, so its agents are pooled together as in the joint fit.
    The plan depends only on the territories and their sizes, not on their order.

    Returns
    -------
    list of list of str
        Territory ids per group, each sorted; no empty group.
    """
    sizes = agents.groupby(agents["territory_id"].astype("str")).size()
    order = sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0]))
    groups: list[list[str]] = [[] for _ in range(max(1, min(int(n), len(order))))]
    load = [0] * len(groups)
    for territory, size in order:
        i = load.index(min(load))
        groups[i].append(territory)
        load[i] += int(size)
    return [sorted(g) for g in groups if g]


def partition_seed(seed: int, part: int) -> int:
    """The random seed of part ``part`` of a run seeded ``seed``: distinct per part, so the parts'
    draws are independent (the same seed would give every part the same random numbers)."""
    return int(np.random.SeedSequence([int(seed), int(part)]).generate_state(1)[0])


def fit_partition(
    model: ForecastModel,
    frame: pd.DataFrame,
    tables: dict[str, pd.DataFrame],
    *,
    h: int,
    n_draws: int,
    quantiles: Iterable[float],
) -> tuple[Forecast, ForecastModel]:
    """Fit ``model`` on one part's agents and forecast them (one task): the forecast and the fitted model."""
    model.fit(frame, **tables)
    return model.predict(h, n_draws=n_draws, quantiles=quantiles), model


def combine_partitions(forecasts: Sequence[Forecast]) -> Forecast:
    """The parts' agent forecasts as one, sorted by agent id, draw ``k`` of each part as draw ``k``.

    Raises
    ------
    DataError
        The parts differ in horizon, draws or periods, or share an agent.
    """
    whole = concat_forecasts(forecasts)
    if len({tuple(map(str, f.ds[0])) for f in forecasts if f.n_series}) > 1:
        raise DataError("the parts of the fit forecast different periods; they cannot be summed draw by draw")
    return whole.select(sorted(whole.unique_ids.astype(str)))


def fit_in_partitions(
    make_model: Callable[[pd.DataFrame, int], ForecastModel],
    frame: pd.DataFrame,
    agents: pd.DataFrame,
    *,
    partitions: int,
    seed: int,
    h: int,
    n_draws: int,
    quantiles: Iterable[float],
    tables: dict[str, pd.DataFrame] | None = None,
    executor: Any = None,
) -> tuple[Forecast, list[ForecastModel]]:
    """Fit and forecast the agents of ``frame`` in ``partitions`` parts (module docstring).

    Parameters
    ----------
    make_model : callable
        ``(the part's agents, the part's seed) -> unfitted model`` pooling those agents.
    frame : DataFrame
        The agents' history (``unique_id, ds, y`` and any regressor columns).
    agents : DataFrame
        ``agent_id, territory_id`` of every agent of ``frame``.
    executor : optional
        Runs each part as a task (``submit(fn, *args) -> future``: a
        :class:`~spm_models.review.cluster.ClusterPool`); None: one after the other, here.

    Returns
    -------
    (Forecast, list of ForecastModel)
        The combined agent forecast and the fitted model of each part.
    """
    ids = frame["unique_id"].astype("str")
    jobs = []
    for part, territories in enumerate(plan_partitions(agents, partitions)):
        members = agents[agents["territory_id"].astype("str").isin(territories)]
        sub = frame[ids.isin(members["agent_id"].astype("str")).to_numpy()].reset_index(drop=True)
        if sub.empty:  # a part whose agents have no history: nothing to fit
            continue
        jobs.append((make_model(members, partition_seed(seed, part)), sub))
    options = dict(h=h, n_draws=n_draws, quantiles=tuple(quantiles))
    if executor is None:
        done = [fit_partition(m, sub, dict(tables or {}), **options) for m, sub in jobs]
    else:
        futures = [executor.submit(fit_partition, m, sub, dict(tables or {}), **options) for m, sub in jobs]
        try:
            done = [f.result() for f in futures]
        except BaseException:
            for f in futures:
                f.cancel()
            raise
    return combine_partitions([fc for fc, _ in done]), [m for _, m in done]
