"""The review's forecast: which model, fitted once, checked against past quarters, summed up.

With ``model = "auto"`` (the default) the review backtests its candidate models on the
organisation's own weekly bookings (:func:`~spm_models.evaluation.selection.choose_models`) and
picks one per level: the agent forecast comes from the agent-level pick, and a territory's
(company's) forecast is the sum, draw by draw, of the agent draws of the model picked at that
level. A named model is used at every level. Each picked model is fitted once, on all agents.

With ``fit_partitions`` above 1, the hierarchical model is fitted in parts of whole territories
(:mod:`spm_models.review.partitions`), combined draw by draw before anything is summed. Given
an ``executor`` (the review's Dask cluster, :class:`~spm_models.review.cluster.ClusterPool`),
the model choice's backtests and the parts run as its tasks, with the results of one machine.

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
from spm_models.exceptions import ConfigError, DataError
from spm_models.indicators.regressors import add_regressor_columns
from spm_models.kpi.grid import COMPANY
from spm_models.models.aggregate import aggregate_draws
from spm_models.models.base import ForecastModel, fit_tables_of
from spm_models.models.forecast import Forecast
from spm_models.models.hierarchical.model import HierarchicalBayes
from spm_models.models.registry import make_model, model_class
from spm_models.review import outlook as ol
from spm_models.review.partitions import fit_in_partitions
from spm_models.review.recalibration import QuotaRecalibration, apply_common_factor, learn_recalibration
from spm_models.review.settings import AUTO, ReviewConfig

__all__ = [
    "ReviewForecast",
    "build_model",
    "candidate_models",
    "review_forecast",
    "takes_regressors",
    "LEVELS",
    "WITH_INDICATORS",
]

LEVELS = ("agent", "territory", "company")


#: Suffix of a candidate that reads the leading indicators discovery found (``"ProphetForecaster+indicators"``).
WITH_INDICATORS = "+indicators"


def build_model(
    name: str,
    params: Mapping[str, Any],
    *,
    config: ReviewConfig,
    calendar: Calendar,
    agents: pd.DataFrame,
    fast: bool = False,
    regressors: Mapping[str, int] | None = None,
) -> ForecastModel:
    """A registered model as the review fits it: the run's seed, weekly data, the fiscal year for
    models with quarter-end effects and, for the hierarchical model, the agents' territories
    (pooling); ``fast`` fits it by ADVI (the model choice and the past-quarter refits). A name
    ending in :data:`WITH_INDICATORS` is the model with ``regressors`` (indicator column -> lag)."""
    base, with_indicators = _split(name)
    cls = model_class(base)
    names = cls._get_param_names()
    p = {"random_state": config.seed, "freq": "W-MON", **dict(params)}
    if with_indicators:
        if not regressors:
            raise ConfigError(f"{name} needs the leading indicators it reads, and none were given")
        p["regressors"] = dict(regressors)
    if "fiscal_year_start" in names:
        p.setdefault("fiscal_year_start", calendar.fiscal_year_start)
    if cls is HierarchicalBayes:
        p.setdefault("groups", dict(zip(agents["agent_id"].astype(str), agents["territory_id"].astype(str))))
        if fast:
            p.update(method="advi", draws=200, chains=1)
    return make_model(base, **p)


def _split(name: str) -> tuple[str, bool]:
    """``(registered name, whether it reads the indicators)`` of a candidate name."""
    if name.endswith(WITH_INDICATORS):
        return name[: -len(WITH_INDICATORS)], True
    return name, False


def takes_regressors(name: str) -> bool:
    """Whether a registered model accepts ``regressors`` (Prophet, HierarchicalBayes)."""
    return "regressors" in model_class(name)._get_param_names()


def candidate_models(
    config: ReviewConfig,
    calendar: Calendar,
    agents: pd.DataFrame,
    dataset: Dataset,
    regressors: Mapping[str, int] | None = None,
) -> dict[str, ForecastModel]:
    """The models ``model = "auto"`` compares, simplest first; those the data cannot feed are left
    out. With ``regressors`` (leading indicators found, lag >= the horizon), each model that takes
    regressors is also compared with them (``<name>+indicators``): the backtest decides whether
    an indicator helps."""
    out = {}
    has_deals = len(dataset.get("opportunities")) > 0
    for name in config.auto_candidates:
        cls = model_class(name)
        if cls.fit_tables.get("opportunities") and not has_deals:
            continue
        out[name] = build_model(name, {}, config=config, calendar=calendar, agents=agents, fast=True)
        if regressors and takes_regressors(name):
            out[name + WITH_INDICATORS] = build_model(
                name + WITH_INDICATORS,
                {},
                config=config,
                calendar=calendar,
                agents=agents,
                fast=True,
                regressors=regressors,
            )
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
    partitions : dict
        Model name -> the fitted model of each part, for a model fitted in parts (``models``
        then holds its settings unfitted: no one fitted model holds every agent).
    """

    picks: dict[str, str]
    models: dict[str, ForecastModel]
    raw: dict[str, Forecast]
    forecasts: dict[str, Forecast]
    choice: ModelChoice | None = None
    recalibration: QuotaRecalibration | None = None
    recalibration_rows: pd.DataFrame = field(default_factory=pd.DataFrame)
    history: pd.DataFrame = field(default_factory=pd.DataFrame)
    partitions: dict[str, list[ForecastModel]] = field(default_factory=dict)

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
            **({"fit_partitions": {n: len(p) for n, p in self.partitions.items()}} if self.partitions else {}),
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


def _fit_forecast(
    name: str,
    history: pd.DataFrame,
    asof: Dataset,
    agents: pd.DataFrame,
    cal: ol.ReviewCalendar,
    config: ReviewConfig,
    regs: Mapping[str, int],
    *,
    executor: Any = None,
) -> tuple[ForecastModel, Forecast, list[ForecastModel]]:
    """Fit model ``name`` on every agent and forecast them: the model, its agent forecast and, for
    a fit in parts (``fit_partitions``, the hierarchical model), each part's fitted model (the
    model returned is then the unfitted settings of the whole)."""
    params = config.model_params if config.model != AUTO else {}

    def make(members: pd.DataFrame, seed: int | None = None) -> ForecastModel:
        model = build_model(
            name,
            params,
            config=config,
            calendar=cal.calendar,
            agents=members,
            fast=config.model == AUTO,
            regressors=regs,
        )
        return model if seed is None else model.set_params(random_state=seed)

    model = make(agents)
    tables = fit_tables_of(model, asof)
    if config.fit_partitions > 1 and isinstance(model, HierarchicalBayes):
        forecast, parts = fit_in_partitions(
            make,
            history,
            agents,
            partitions=config.fit_partitions,
            seed=config.seed,
            h=cal.h,
            n_draws=config.n_draws,
            quantiles=ol.FAN_QUANTILES,
            tables=tables,
            executor=executor,
        )
        return model, forecast, parts
    model.fit(history, **tables)
    return model, model.predict(cal.h, n_draws=config.n_draws, quantiles=ol.FAN_QUANTILES), []


def review_forecast(
    asof: Dataset,
    agents: pd.DataFrame,
    cal: ol.ReviewCalendar,
    config: ReviewConfig,
    *,
    learn_calibration: bool = True,
    picks: Mapping[str, str] | None = None,
    regressors: Mapping[str, int] | None = None,
    executor: Any = None,
) -> ReviewForecast:
    """Choose (when ``model = "auto"`` and no ``picks`` are given), fit, calibrate and sum the
    review's forecasts (module docstring).

    ``regressors``: leading indicators found by discovery (column -> lag); those leading by at
    least the horizon are offered to the candidates that take regressors (:func:`candidate_models`).
    ``executor``: runs the backtests and the parts of a fit as its tasks (module docstring).
    """
    history = ol.weekly_history(asof, agents["agent_id"], end=cal.train_end)
    regs = {c: int(lag) for c, lag in (regressors or {}).items() if int(lag) >= cal.h}
    if regs:
        history = add_regressor_columns(history, asof, list(regs))
    choice = None
    if picks is None and config.model == AUTO:
        parents = {
            "territory": dict(zip(agents["agent_id"].astype(str), agents["territory_id"].astype(str))),
            "company": {a: COMPANY for a in agents["agent_id"].astype(str)},
        }
        candidates = candidate_models(config, cal.calendar, agents, asof, regressors=regs)
        try:
            choice = choose_models(
                history,
                candidates,
                parents=parents,
                h=cal.h,
                n_origins=config.auto_origins,
                tables=asof,
                budget_seconds=config.auto_budget_seconds,
                executor=executor,
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
    # a pick that read indicators no longer known over this horizon (a reconstruction) goes without them
    picks = {lv: (n if regs or not n.endswith(WITH_INDICATORS) else _split(n)[0]) for lv, n in picks.items()}
    models, raw_by_model, parts = {}, {}, {}
    for name in dict.fromkeys(picks.values()):
        models[name], raw_by_model[name], fitted_parts = _fit_forecast(
            name, history, asof, agents, cal, config, regs, executor=executor
        )
        if fitted_parts:
            parts[name] = fitted_parts
    recal, rows = None, pd.DataFrame()
    if learn_calibration and len(asof.get("targets")):  # no quotas: no chances to calibrate
        agent_model = models[picks["agent"]]
        backtested = agent_model
        # the past quarters hold agents who have left since: the hierarchical model pools them
        # in their territories too (without them in its groups it cannot be refitted there)
        everyone = asof["agents"].dropna(subset=["territory_id"])
        if _split(picks["agent"])[1]:  # the past-quarter refits see bookings only
            backtested = build_model(
                _split(picks["agent"])[0], {}, config=config, calendar=cal.calendar, agents=everyone, fast=True
            )
        elif isinstance(agent_model, HierarchicalBayes):  # by ADVI: the fast approximation
            backtested = build_model(
                picks["agent"],
                dict(config.model_params),
                config=config,
                calendar=cal.calendar,
                agents=everyone,
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
        partitions=parts,
    )
