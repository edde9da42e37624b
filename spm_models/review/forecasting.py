"""The review's forecast: which model, fitted once, checked against past quarters, summed up.

With ``model = "auto"`` (the default) the review backtests its candidate models on the
organisation's own weekly bookings (:func:`~spm_models.evaluation.selection.choose_models`) and
picks one per level: the agent forecast comes from the agent-level pick, and a territory's
(company's) forecast is the sum, draw by draw, of the agent draws of the model picked at that
level. A named model is used at every level. Each picked model is fitted once, on all agents.

The chances of reaching quota are then checked against past quarters with the agent-level
model (:mod:`spm_models.review.recalibration`): the common factor it learns scales every
model's agent draws before anything is summed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from spm_models.calendar import Calendar
from spm_models.data.dataset import Dataset
from spm_models.evaluation.selection import SCORE_TABLE_COLUMNS, ModelChoice, choose_models
from spm_models.exceptions import DataError
from spm_models.kpi.grid import COMPANY
from spm_models.models.aggregate import aggregate_draws
from spm_models.models.base import ForecastModel, fit_tables_of
from spm_models.models.forecast import Forecast
from spm_models.models.hierarchical.model import HierarchicalBayes
from spm_models.models.registry import make_model, model_class
from spm_models.review import outlook as ol
from spm_models.review.recalibration import QuotaRecalibration, apply_common_factor, learn_recalibration
from spm_models.review.settings import AUTO, ReviewConfig

__all__ = ["ReviewForecast", "build_model", "candidate_models", "review_forecast", "LEVELS"]

LEVELS = ("agent", "territory", "company")


def build_model(
    name: str,
    params: Mapping[str, Any],
    *,
    config: ReviewConfig,
    calendar: Calendar,
    agents: pd.DataFrame,
    fast: bool = False,
) -> ForecastModel:
    """A registered model as the review fits it: the run's seed, weekly data, the fiscal year for
    models with quarter-end effects and, for the hierarchical model, the agents' territories
    (pooling); ``fast`` fits it by ADVI (the model choice and the past-quarter refits)."""
    cls = model_class(name)
    names = cls._get_param_names()
    p = {"random_state": config.seed, "freq": "W-MON", **dict(params)}
    if "fiscal_year_start" in names:
        p.setdefault("fiscal_year_start", calendar.fiscal_year_start)
    if cls is HierarchicalBayes:
        p.setdefault("groups", dict(zip(agents["agent_id"].astype(str), agents["territory_id"].astype(str))))
        if fast:
            p.update(method="advi", draws=200, chains=1)
    return make_model(name, **p)


def candidate_models(
    config: ReviewConfig, calendar: Calendar, agents: pd.DataFrame, dataset: Dataset
) -> dict[str, ForecastModel]:
    """The models ``model = "auto"`` compares, simplest first; those the data cannot feed are left out."""
    out = {}
    has_deals = len(dataset.get("opportunities")) > 0
    for name in config.auto_candidates:
        cls = model_class(name)
        if cls.fit_tables.get("opportunities") and not has_deals:
            continue
        out[name] = build_model(name, {}, config=config, calendar=calendar, agents=agents, fast=True)
    return out


@dataclass
class ReviewForecast:
    """The forecasts of one review.

    Attributes
    ----------
    picks : dict
        Level -> model name.
    models : dict
        Model name -> the fitted model.
    raw, forecasts : dict
        Level -> forecast: the models' own draws, and after the common factor.
    choice : ModelChoice or None
        What ``model = "auto"`` compared (None for a named model).
    recalibration : QuotaRecalibration or None
        The calibration learned with the agent-level model (None when not learned).
    recalibration_rows : DataFrame
        The past agent-quarters it was learned from.
    history : DataFrame
        The weekly agent bookings the models were fitted on.
    """

    picks: dict[str, str]
    models: dict[str, ForecastModel]
    raw: dict[str, Forecast]
    forecasts: dict[str, Forecast]
    choice: ModelChoice | None = None
    recalibration: QuotaRecalibration | None = None
    recalibration_rows: pd.DataFrame = field(default_factory=pd.DataFrame)
    history: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def agent_model(self) -> ForecastModel:
        return self.models[self.picks["agent"]]

    def describe(self) -> dict[str, Any]:
        """The agent-level model's name and parameters, the pick per level and every used model's
        parameters (for run.json)."""
        return {
            "name": self.agent_model.model_name(),
            "params": _jsonable(self.agent_model.get_params()),
            "picks": dict(self.picks),
            "params_by_model": {n: _jsonable(m.get_params()) for n, m in self.models.items()},
        }


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    """Parameters as JSON values: nested models by name, anything else not plain as text."""
    plain = (int, float, str, bool, type(None))
    return {
        k: v.model_name() if isinstance(v, ForecastModel) else v if isinstance(v, plain) else str(v)
        for k, v in params.items()
    }


def _sum_to(fc: Forecast, agents: pd.DataFrame, level: str) -> Forecast:
    a = agents.set_index(agents["agent_id"].astype("str"))["territory_id"].astype("str")
    if level == "agent":
        return fc
    mapping = a if level == "territory" else pd.Series(COMPANY, index=a.index)
    return aggregate_draws(fc, mapping, quantiles=ol.FAN_QUANTILES)


def review_forecast(
    asof: Dataset,
    agents: pd.DataFrame,
    cal: ol.ReviewCalendar,
    config: ReviewConfig,
    *,
    learn_calibration: bool = True,
    picks: Mapping[str, str] | None = None,
) -> ReviewForecast:
    """Choose (when ``model = "auto"`` and no ``picks`` are given), fit, calibrate and sum the
    review's forecasts (module docstring)."""
    history = ol.weekly_history(asof, agents["agent_id"], end=cal.train_end)
    choice = None
    if picks is None and config.model == AUTO:
        parents = {
            "territory": dict(zip(agents["agent_id"].astype(str), agents["territory_id"].astype(str))),
            "company": {a: COMPANY for a in agents["agent_id"].astype(str)},
        }
        candidates = candidate_models(config, cal.calendar, agents, asof)
        try:
            choice = choose_models(
                history,
                candidates,
                parents=parents,
                h=cal.h,
                n_origins=config.auto_origins,
                tables=asof,
                budget_seconds=config.auto_budget_seconds,
            )
        except DataError as exc:  # too little history to compare: the simplest candidate, said so
            simplest = next(iter(candidates))
            reason = f"{simplest}, the simplest candidate: {exc}, so no comparison was possible."
            choice = ModelChoice(
                picks=dict.fromkeys(LEVELS, simplest),
                scores=pd.DataFrame(columns=SCORE_TABLE_COLUMNS),
                reasons=dict.fromkeys(LEVELS, reason),
                horizon=int(cal.h),
            )
        picks = {lv: choice.picks.get(lv, choice.picks["agent"]) for lv in LEVELS}
    elif picks is None:
        picks = dict.fromkeys(LEVELS, config.model)
    picks = dict(picks)
    models, raw_by_model = {}, {}
    for name in dict.fromkeys(picks.values()):
        params = config.model_params if config.model != AUTO else {}
        model = build_model(
            name, params, config=config, calendar=cal.calendar, agents=agents, fast=config.model == AUTO
        )
        model.fit(history, **fit_tables_of(model, asof))
        models[name] = model
        raw_by_model[name] = model.predict(cal.h, n_draws=config.n_draws, quantiles=ol.FAN_QUANTILES)
    recal, rows = None, pd.DataFrame()
    if learn_calibration and len(asof.get("targets")):  # no quotas: no chances to calibrate
        agent_model = models[picks["agent"]]
        backtested = agent_model
        if isinstance(agent_model, HierarchicalBayes) and agent_model.method == "nuts":
            backtested = build_model(
                picks["agent"],
                dict(config.model_params),
                config=config,
                calendar=cal.calendar,
                agents=agents,
                fast=True,
            )
        recal, rows = learn_recalibration(asof, backtested, cal, config)
    territory = dict(zip(agents["agent_id"].astype(str), agents["territory_id"].astype(str)))
    adjusted = {n: apply_common_factor(fc, recal, seed=config.seed, groups=territory) for n, fc in raw_by_model.items()}
    return ReviewForecast(
        picks=picks,
        models=models,
        raw={lv: _sum_to(raw_by_model[picks[lv]], agents, lv) for lv in LEVELS},
        forecasts={lv: _sum_to(adjusted[picks[lv]], agents, lv) for lv in LEVELS},
        choice=choice,
        recalibration=recal,
        recalibration_rows=rows,
        history=history,
    )
