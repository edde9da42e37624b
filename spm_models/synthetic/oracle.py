"""The oracle: forecasts drawn from the synthetic organisation's ground truth.

Only a synthetic organisation knows its own expected rates, so only it can forecast as well as
anything could. Benchmarks and tests compare models with it, and check on it that the
machinery which turns draws into chances of reaching quota is calibrated.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from spm_models.calendar import to_day
from spm_models.evaluation.quota.backtest import backtest_quota_probabilities
from spm_models.exceptions import DataError
from spm_models.models.forecast import Forecast
from spm_models.synthetic.generator import SyntheticOrg

__all__ = ["oracle_forecast", "oracle_quota_backtest"]


def oracle_forecast(org: SyntheticOrg, *, start: Any, h: int, n_draws: int = 500, seed: int = 0) -> Forecast:
    """Weekly bookings draws of every agent straight from the synthetic ground truth.

    Won deals of agent ``i`` closing in week ``w`` are ``Poisson(expected_wins_iw)``
    (exact, see :mod:`spm_models.synthetic.generator`), each of size
    ``lognormal(size_mu_i, size_sigma_i)``; the draw is the sum of the sizes.

    Parameters
    ----------
    org : SyntheticOrg
    start : date-like
        Monday of the first forecast week (must be a week of the data).
    h : int
        Number of weeks (the forecast stops at the last week of the data).
    n_draws : int
    seed : int

    Returns
    -------
    Forecast
        Model ``"Oracle"``, one series per agent.
    """
    aw = org.truth.agent_weeks
    agents = org.truth.agents.set_index("agent_id")
    weeks = np.sort(aw["week_start"].unique())
    first = np.searchsorted(weeks, np.datetime64(to_day(start, "start")))
    if first >= len(weeks) or weeks[first] != np.datetime64(to_day(start, "start")):
        raise DataError(f"{start} is not the Monday of a week of the synthetic data")
    sel = weeks[first : first + int(h)]
    sub = aw[aw["week_start"].isin(sel)]
    ids = np.asarray(sorted(sub["agent_id"].unique()), dtype=object)
    mean = (
        sub.pivot(index="agent_id", columns="week_start", values="expected_wins")
        .reindex(index=ids, columns=sel)
        .to_numpy()
    )
    rng = np.random.default_rng(seed)
    counts = rng.poisson(mean[:, :, None], size=mean.shape + (n_draws,))
    cell = np.repeat(np.arange(counts.size), counts.ravel())
    agent = cell // (len(sel) * n_draws)
    mu = agents.loc[ids, "size_mu"].to_numpy(dtype=float)[agent]
    sigma = agents.loc[ids, "size_sigma"].to_numpy(dtype=float)[agent]
    sizes = np.exp(mu + sigma * rng.standard_normal(len(cell)))
    draws = np.bincount(cell, weights=sizes, minlength=counts.size).reshape(counts.shape)
    return Forecast.from_draws(draws, unique_ids=ids, ds=np.tile(sel, (len(ids), 1)), model="Oracle", freq="W-MON")


def oracle_quota_backtest(org: SyntheticOrg, **kwargs: Any) -> pd.DataFrame:
    """:func:`~spm_models.evaluation.quota.backtest.backtest_quota_probabilities` with the oracle.

    Every agent with a quota is scored, over the organisation's own weeks; ``kwargs`` are
    passed on (``offsets_weeks``, ``n_draws``, ``seed``, ``first_quarter``, ...).
    """
    weeks = np.sort(org.truth.agent_weeks["week_start"].unique())
    first, last = pd.Timestamp(weeks[0]), pd.Timestamp(weeks[-1]) + pd.Timedelta(days=6)

    def forecaster(origin: pd.Timestamp, n_weeks: int, n_draws: int, seed: int) -> Forecast:
        return oracle_forecast(org, start=origin + pd.Timedelta(days=1), h=n_weeks, n_draws=n_draws, seed=seed)

    kwargs.setdefault("data_start", first)
    kwargs.setdefault("data_end", last)
    return backtest_quota_probabilities(org.dataset, forecaster=forecaster, **kwargs)
