"""Fitting a model on a dataset's agents and reading its forecast at any level.

The compute behind the explorer's forecast fan and P(hit quota) and behind the scenarios:
:func:`fit_model`, :func:`agent_forecast`, :func:`level_forecast` and :func:`forecast_view`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from spm_models.data.dataset import Dataset
from spm_models.evaluation.quota.probability import attainment_distribution, quota_for_period
from spm_models.exceptions import ConfigError, DataError
from spm_models.models import HierarchicalBayes, fit_tables_of, model_class
from spm_models.models import make_model as registry_make_model
from spm_models.models.aggregate import aggregate_draws
from spm_models.models.forecast import Forecast
from spm_models.workbench.frames import model_frame

__all__ = [
    "LEVELS",
    "COMPANY",
    "MODELS",
    "workbench_params",
    "FittedModel",
    "make_model",
    "fit_model",
    "agent_forecast",
    "level_forecast",
    "forecast_window",
    "forecast_view",
]

LEVELS = ("company", "territory", "agent")
COMPANY = "company"


#: Models the explorer offers (registry names, :mod:`spm_models.models.registry`).
MODELS: tuple[str, ...] = ("CalendarBaseline", "HierarchicalBayes", "ProphetForecaster", "PipelineAware")


def workbench_params(name: str, *, regressors: Mapping[str, int] | None = None, fast: bool = False) -> dict[str, Any]:
    """The workbench's settings of a registered model: its regressors where the model takes
    them, and the hierarchical model by ADVI (a few seconds; ``fast`` shortens it further, for
    tests and quick looks)."""
    names = model_class(name)._get_param_names()
    params: dict[str, Any] = {}
    if regressors and "regressors" in names:
        params["regressors"] = dict(regressors)
    if model_class(name) is HierarchicalBayes:
        params.update(method="advi", advi_iterations=3000 if fast else 20_000, draws=200, chains=1)
    return params


@dataclass
class FittedModel:
    """A model fitted on the weekly agent bookings frame of one dataset."""

    name: str
    model: Any
    frame: pd.DataFrame
    agents: pd.DataFrame
    targets: pd.DataFrame | None = None
    forecasts: dict[int, Forecast] = field(default_factory=dict)


def make_model(name: str, *, regressors: Mapping[str, int] | None = None, fast: bool = False):
    """An unfitted registered model with the workbench's settings (:func:`workbench_params`).

    Raises
    ------
    ConfigError
        Unknown model name (the registered ones are listed).
    """
    return registry_make_model(name, **workbench_params(name, regressors=regressors, fast=fast))


def fit_model(
    dataset: Dataset,
    *,
    model: str = "CalendarBaseline",
    regressors: Mapping[str, int] | None = None,
    fast: bool = False,
    frame: pd.DataFrame | None = None,
) -> FittedModel:
    """Fit ``model`` on the weekly agent bookings (:func:`~spm_models.workbench.frames.model_frame`).

    ``regressors`` maps indicator names (``activity:demo``) to lags in weeks; models
    without regressors ignore them. Pass ``frame`` to reuse one already built.
    """
    regs = dict(regressors or {})
    if frame is None:
        frame = model_frame(dataset, grain="week", regressors=list(regs))
    est = make_model(model, regressors=regs, fast=fast)
    est.fit(frame[["unique_id", "ds", "y", "group", *regs]], **fit_tables_of(est, dataset))
    return FittedModel(
        name=model, model=est, frame=frame, agents=dataset.tables["agents"], targets=dataset.tables.get("targets")
    )


def agent_forecast(fitted: FittedModel, horizon: int, *, n_draws: int = 500) -> Forecast:
    """Forecast of the agents whose history runs to the end of the data (those still employed).

    Computed once per horizon and kept in ``fitted.forecasts``, so the explorer's fan, P(quota)
    and scenarios all use the same draws.
    """
    if horizon not in fitted.forecasts:
        fc = fitted.model.predict(horizon, n_draws=n_draws)
        first = fc.ds[:, 0]
        fitted.forecasts[horizon] = fc.select(fc.unique_ids[first == first.max()].astype(str))
    return fitted.forecasts[horizon]


def level_forecast(
    agent_forecast: Forecast, agents: pd.DataFrame, *, level: str, territories: Mapping[str, str] | None = None
) -> Forecast:
    """Agent forecast summed (draw by draw) to ``level``: series named by territory id or ``company``.

    ``territories`` gives the territory of series not in ``agents`` (a scenario's added agents).
    """
    if level == "agent":
        return agent_forecast
    if level not in LEVELS:
        raise ConfigError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")
    uids = pd.Series(agent_forecast.unique_ids.astype(str))
    if level == COMPANY:
        mapping = pd.Series(COMPANY, index=uids.to_numpy())
    else:
        terr = agents.set_index("agent_id")["territory_id"].astype("str")
        if territories:
            terr = pd.concat([terr, pd.Series(dict(territories), dtype="str")])
        mapping = pd.Series(uids.map(terr).fillna("unassigned").to_numpy(), index=uids.to_numpy())
    return aggregate_draws(agent_forecast, mapping)


def forecast_window(forecast: Forecast) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last day covered by a forecast (its first period start, its last period end)."""
    first = pd.Timestamp(forecast.ds.min())
    last = pd.Timestamp(forecast.ds.max()) + pd.tseries.frequencies.to_offset(forecast.freq) - pd.Timedelta(days=1)
    return first, last


def forecast_view(
    fitted: FittedModel,
    *,
    level: str,
    entity: str,
    horizon: int,
    quota: float | None = None,
    forecast: Forecast | None = None,
    territories: Mapping[str, str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Forecast fan and P(hit quota) of one entity over the next ``horizon`` periods.

    ``P(quota) = share of draws j with sum_k y_kj >= quota``, the sum over the forecast
    periods (:func:`~spm_models.evaluation.quota.probability.attainment_distribution`). The quota is
    ``quota`` when given, else the targets prorated to the forecast window
    (:func:`~spm_models.evaluation.quota.probability.quota_for_period`) when they cover the whole
    window; otherwise P(quota) is NaN.

    Parameters
    ----------
    fitted : FittedModel
    level, entity : str
    horizon : int
        Periods (weeks) ahead.
    quota : float, optional
    forecast : Forecast, optional
        Agent-level forecast to use instead of the fitted model's (e.g. a scenario's).
    territories : mapping of str to str, optional
        Territory of forecast series that are not agents (a scenario's added agents).

    Returns
    -------
    fan : DataFrame
        ``ds, mean`` and quantile columns, one row per forecast period.
    attainment : DataFrame
        One row of :func:`~spm_models.evaluation.quota.probability.attainment_distribution`.

    Raises
    ------
    DataError
        ``entity`` has no forecast at ``level``.
    """
    agent_fc = forecast if forecast is not None else agent_forecast(fitted, horizon)
    fc = level_forecast(agent_fc, fitted.agents, level=level, territories=territories)
    if entity not in set(fc.unique_ids.astype(str)):
        raise DataError(f"no forecast for {level} {entity!r}: it has no bookings history in the data")
    one = fc.select([entity])
    fan = one.quantiles.drop(columns=["unique_id", "model"]).reset_index(drop=True)
    start, end = forecast_window(one)
    covered = (
        fitted.targets is not None and len(fitted.targets) and pd.Timestamp(fitted.targets["period_end"].max()) >= end
    )
    if quota is None and covered:
        q = quota_for_period(fitted.targets, period_start=start, period_end=end, agents=fitted.agents, level=level)
        quota = float(q.get(entity, np.nan))
    quota = np.nan if quota is None else float(quota)
    att = attainment_distribution(None, one, quota, period_start=start, period_end=end)
    return fan, att
