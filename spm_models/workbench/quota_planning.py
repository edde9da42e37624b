"""Next period's quotas from the forecast distribution, so a chosen share of agents attains.

For agent ``i`` let ``B_ij`` be draw ``j`` of its bookings over the quota period (the
forecast draws summed over the period, :func:`~spm_models.evaluation.quota.probability.period_shares`
weighting partial periods). Setting ``quota_i = Q_i(1 - s)``, the ``1 - s`` quantile of
``B_i``, gives every agent ``P(B_i >= quota_i) = s``, so a share ``s`` of agents is expected
to attain. Reconciled to a company target ``T`` two ways:

- ``"equal_probability"`` (default): one level ``u`` for everyone, ``quota_i = Q_i(1 - u)``
  with ``sum_i Q_i(1 - u) = T`` (solved on a grid of levels and interpolated): every agent
  has the same chance ``u``, which is then the expected share attaining;
- ``"proportional"``: ``quota_i = Q_i(1 - s) T / sum_k Q_k(1 - s)``; P(attain) then differs
  between agents, and its spread (:func:`fairness_summary`) is the fairness check.

Territory quotas are the sums of their agents'.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from spm_models.evaluation.backtest import BacktestResult, backtest
from spm_models.evaluation.quota.probability import bookings_draws, chance_of_reaching
from spm_models.exceptions import ConfigError

__all__ = [
    "attainment_share",
    "quota_plan",
    "plan_quotas",
    "territory_quotas",
    "fairness_summary",
    "backtest_attainment",
    "plan_backtest",
]

_LEVELS = np.linspace(0.01, 0.99, 99)


def _check_share(share: float) -> float:
    if not isinstance(share, (int, float)) or not 0 < share < 1:
        raise ConfigError(f"the share of agents expected to attain must be between 0 and 1 (e.g. 0.65), got {share!r}")
    return float(share)


def plan_quotas(
    totals: np.ndarray,
    unique_ids,
    *,
    share: float = 0.65,
    company_target: float | None = None,
    reconcile: str = "equal_probability",
    agents: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Quotas per agent from draws of their period bookings (module docstring).

    Parameters
    ----------
    totals : array, shape (n_agents, n_draws)
        Draws of each agent's bookings over the quota period
        (:func:`~spm_models.evaluation.quota.probability.bookings_draws`).
    unique_ids : sequence of str
        Agent ids, in the order of ``totals``.
    share : float
        Share of agents expected to attain (0.6-0.7 is common).
    company_target : float, optional
        Sum the quotas must add up to.
    reconcile : {"equal_probability", "proportional"}
    agents : DataFrame, optional
        Canonical agents table, for a ``territory_id`` column.

    Returns
    -------
    DataFrame
        ``unique_id, territory_id (when agents given), expected_bookings, quota, p_attain``.

    Raises
    ------
    ConfigError
        ``share`` outside (0, 1), a non-positive target or an unknown reconcile method.
    """
    share = _check_share(share)
    totals = np.asarray(totals, dtype=float)
    if reconcile not in ("equal_probability", "proportional"):
        raise ConfigError(f"reconcile must be 'equal_probability' or 'proportional', got {reconcile!r}")
    if company_target is not None and not company_target > 0:
        raise ConfigError(f"the company target must be a positive amount, got {company_target!r}")
    if company_target is None:
        quota = np.quantile(totals, 1 - share, axis=1)
    elif reconcile == "proportional":
        base = np.quantile(totals, 1 - share, axis=1)
        quota = base * company_target / base.sum()
    else:
        grid = np.quantile(totals, 1 - _LEVELS, axis=1).sum(axis=1)  # company total at each level u (decreasing in u)
        u = float(np.interp(company_target, grid[::-1], _LEVELS[::-1]))
        quota = np.quantile(totals, 1 - u, axis=1)
        quota = quota * company_target / quota.sum()  # exact where the target lies beyond the grid
    out = pd.DataFrame(
        {
            "unique_id": pd.array(np.asarray(unique_ids, dtype=str), dtype="str"),
            "expected_bookings": totals.mean(axis=1),
            "quota": quota,
            "p_attain": chance_of_reaching(totals, quota),
        }
    )
    if agents is not None:
        terr = agents.set_index("agent_id")["territory_id"].astype("str")
        out.insert(1, "territory_id", out["unique_id"].map(terr).astype("str"))
    return out


def territory_quotas(plan: pd.DataFrame) -> pd.DataFrame:
    """Territory quotas as the sums of their agents' (``territory_id, agents, expected_bookings, quota,
    mean_p_attain``)."""
    if "territory_id" not in plan.columns:
        raise ConfigError("the plan has no territory_id column; pass the agents table to plan_quotas")
    return plan.groupby("territory_id", as_index=False).agg(
        agents=("unique_id", "size"),
        expected_bookings=("expected_bookings", "sum"),
        quota=("quota", "sum"),
        mean_p_attain=("p_attain", "mean"),
    )


def fairness_summary(plan: pd.DataFrame) -> pd.DataFrame:
    """Spread of P(attain) across agents: the fairness check of a quota plan.

    An agent whose forecast is zero in every draw gets a quota of zero and no chance (NaN);
    such agents are counted in ``no_forecast`` and left out of the spread, so one of them
    cannot blank the whole check.

    Returns
    -------
    DataFrame
        One row: ``agents, expected_share_attaining`` (mean P), ``p_min, p_q0.25, p_median,
        p_q0.75, p_max, p_sd``, ``total_quota`` and ``no_forecast``.
    """
    p = plan["p_attain"].to_numpy(dtype=float)
    known = p[np.isfinite(p)]
    q = np.quantile(known, [0, 0.25, 0.5, 0.75, 1]) if len(known) else np.full(5, np.nan)
    return pd.DataFrame(
        {
            "agents": [len(p)],
            "expected_share_attaining": [known.mean() if len(known) else np.nan],
            "p_min": [q[0]],
            "p_q0.25": [q[1]],
            "p_median": [q[2]],
            "p_q0.75": [q[3]],
            "p_max": [q[4]],
            "p_sd": [known.std() if len(known) else np.nan],
            "total_quota": [plan["quota"].sum()],
            "no_forecast": [len(p) - len(known)],
        }
    )


def backtest_attainment(result: BacktestResult, *, share: float = 0.65) -> pd.DataFrame:
    """Would a share ``share`` of agents have attained quotas planned at past origins?

    At each origin of ``result`` the quota period is the ``h`` forecast periods; quotas are
    planned from that fold's draws (:func:`plan_quotas`, no company target) and compared
    with what each agent actually booked. Agents without an actual for every period are left out.

    Returns
    -------
    DataFrame
        ``origin, unique_id, quota, actual, attained``.
    """
    share = _check_share(share)
    parts = []
    for origin, fold in zip(result.origins, result.folds):  # a handful of origins
        totals = fold.draws.sum(axis=1)
        plan = plan_quotas(totals, fold.unique_ids, share=share)
        rows = result.forecasts[result.forecasts["origin"] == origin]
        actual = rows.groupby("unique_id").agg(actual=("y", "sum"), n=("y", "count"))
        plan = plan.merge(actual, left_on="unique_id", right_index=True, how="inner")
        plan = plan[plan["n"] == result.h]
        parts.append(plan.assign(origin=origin, attained=plan["actual"] >= plan["quota"]))
    out = pd.concat(parts, ignore_index=True)
    return out[["origin", "unique_id", "quota", "actual", "attained"]]


def plan_backtest(fitted, dataset=None, *, periods: int = 13, n_origins: int = 3, n_draws: int = 400) -> BacktestResult:
    """The backtest of the model that plans the quotas: the same model with the same settings.

    A plan made with one model and checked with another says nothing about the plan, so this
    clones ``fitted.model`` (a :class:`~spm_models.workbench.forecasting.FittedModel`) and
    refits it at ``n_origins`` past origins on the same weekly frame, ``periods`` weeks ahead.

    Parameters
    ----------
    fitted : FittedModel
        What :func:`quota_plan` planned with.
    dataset : Dataset, optional
        Its tables, for a model that reads some at fit (the deal model reads open deals).
    periods : int
        Weeks in the quota period (the backtest's horizon).
    n_origins : int
        How many past quota periods are replayed.
    n_draws : int
        Forecast draws per origin.

    Returns
    -------
    BacktestResult
        For :func:`backtest_attainment`; ``result.model`` names the model that was backtested.
    """
    # the columns fit_model fitted on: ids, dates, bookings, territory, regressors ("activity:demo")
    cols = [c for c in fitted.frame.columns if c in ("unique_id", "ds", "y", "group") or ":" in str(c)]
    frame = fitted.frame[cols]
    return backtest(fitted.model, frame, h=periods, n_origins=n_origins, n_draws=n_draws, tables=dataset)


def quota_plan(
    fitted,
    *,
    periods: int = 13,
    share: float = 0.65,
    company_target: float | None = None,
    reconcile: str = "equal_probability",
) -> pd.DataFrame:
    """Plan quotas for the ``periods`` after the data from a fitted explorer model
    (:class:`~spm_models.workbench.forecasting.FittedModel`): the bookings draws of its
    forecast of current agents, then :func:`plan_quotas`."""
    from spm_models.workbench.forecasting import agent_forecast, forecast_window

    fc = agent_forecast(fitted, periods)
    start, end = forecast_window(fc)
    totals = bookings_draws(fc, None, period_start=start, period_end=end)
    return plan_quotas(
        totals, fc.unique_ids, share=share, company_target=company_target, reconcile=reconcile, agents=fitted.agents
    )


def attainment_share(attained: pd.DataFrame) -> pd.Series:
    """Share of agents who attained, per origin of :func:`backtest_attainment`, and ``all`` pooled."""
    per = attained.groupby("origin")["attained"].mean()
    return pd.concat([per.rename(index=str), pd.Series({"all": attained["attained"].mean()})]).rename("share_attained")
