"""The explorer: widget-free state and compute functions, and a small ipywidgets builder.

Everything a control changes goes through a function here that a unit test calls:
:func:`kpi_view` (level, entity, KPI, grain, date range), :func:`fit_model` and
:func:`forecast_view` (model and horizon: forecast fan and P(hit quota)) and
:func:`~spm_models.workbench.scenarios.scenario_view` (what-if controls).
:func:`build_explorer` only wires widgets to them; ipywidgets and matplotlib are imported
when it is called, never at import.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd

from ..backtest import aggregate_draws
from ..dataset import Dataset
from ..exceptions import ConfigError, DataError, SpmError
from ..kpi import KPI_CATALOG, compute_kpis
from ..models import CalendarBaseline, HierarchicalBayes
from ..models.forecast import Forecast
from ..quota_probability import attainment_distribution, quota_for_period
from .frames import model_frame

__all__ = [
    "LEVELS", "MODELS", "ExplorerState", "FittedModel", "entity_options", "kpi_view", "make_model",
    "fit_model", "agent_forecast", "level_forecast", "forecast_window", "forecast_view", "Explorer", "build_explorer",
]

LEVELS = ("company", "territory", "agent")
COMPANY = "company"


def _hierarchical(regressors: Mapping[str, int] | None, fast: bool) -> HierarchicalBayes:
    iters = 3000 if fast else 20_000
    return HierarchicalBayes(method="advi", advi_iterations=iters, draws=200, chains=1, regressors=regressors or None)


def _prophet(regressors: Mapping[str, int] | None, fast: bool):
    from ..models import ProphetForecaster

    return ProphetForecaster(regressors=dict(regressors or {}))


#: Model choices of the explorer: name -> factory(regressors, fast).
MODELS: dict[str, Callable[[Mapping[str, int] | None, bool], Any]] = {
    "CalendarBaseline": lambda regressors, fast: CalendarBaseline(),
    "HierarchicalBayes (ADVI)": _hierarchical,
    "Prophet": _prophet,
}


@dataclass
class ExplorerState:
    """What the explorer's controls say (all plain values, so tests need no widgets)."""

    level: str = COMPANY
    entity: str = COMPANY
    kpi: str = "bookings"
    grain: str = "month"
    start: Any = None
    end: Any = None
    model: str = "CalendarBaseline"
    horizon: int = 3
    quota: float | None = None


@dataclass
class FittedModel:
    """A model fitted on the weekly agent bookings frame of one dataset."""

    name: str
    model: Any
    frame: pd.DataFrame
    agents: pd.DataFrame
    targets: pd.DataFrame | None = None
    forecasts: dict[int, Forecast] = field(default_factory=dict)


def entity_options(dataset: Dataset, level: str) -> list[str]:
    """Entity ids a user can pick at ``level`` (agents, territories or ``["company"]``).

    Raises
    ------
    ConfigError
        Unknown level.
    """
    if level not in LEVELS:
        raise ConfigError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")
    if level == COMPANY:
        return [COMPANY]
    agents = dataset.tables["agents"]
    col = "agent_id" if level == "agent" else "territory_id"
    return sorted(agents[col].dropna().astype("str").unique().tolist())


def kpi_view(kpis: pd.DataFrame, *, level: str, entity: str, kpi: str, start: Any = None, end: Any = None) -> pd.DataFrame:
    """Rows of a :func:`~spm_models.kpi.compute_kpis` frame for one entity and KPI, in a date range.

    Parameters
    ----------
    kpis : DataFrame
        Output of :func:`~spm_models.kpi.compute_kpis`.
    level, entity, kpi : str
    start, end : date-like, optional
        Keep periods starting on or after ``start`` and on or before ``end``.

    Returns
    -------
    DataFrame
        ``period, segment, value`` sorted by period then segment.

    Raises
    ------
    ConfigError
        Unknown KPI.
    """
    if kpi not in KPI_CATALOG:
        raise ConfigError(f"unknown KPI {kpi!r}; available: {', '.join(KPI_CATALOG)}")
    mask = (kpis["level"] == level) & (kpis["entity_id"] == entity) & (kpis["kpi"] == kpi)
    if start is not None:
        mask &= kpis["period"] >= pd.Timestamp(start)
    if end is not None:
        mask &= kpis["period"] <= pd.Timestamp(end)
    out = kpis.loc[mask, ["period", "segment", "value"]]
    return out.sort_values(["period", "segment"], ignore_index=True)


def make_model(name: str, *, regressors: Mapping[str, int] | None = None, fast: bool = False):
    """An unfitted model of :data:`MODELS` (``fast`` shortens ADVI, for tests and quick looks).

    Raises
    ------
    ConfigError
        Unknown model name.
    """
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    return MODELS[name](regressors, fast)


def fit_model(
    dataset: Dataset, *, model: str = "CalendarBaseline", regressors: Mapping[str, int] | None = None,
    fast: bool = False, frame: pd.DataFrame | None = None,
) -> FittedModel:
    """Fit ``model`` on the weekly agent bookings (:func:`~spm_models.workbench.frames.model_frame`).

    ``regressors`` maps indicator names (``activity:demo``) to lags in weeks; models
    without regressors ignore them. Pass ``frame`` to reuse one already built.
    """
    regs = dict(regressors or {})
    if frame is None:
        frame = model_frame(dataset, grain="week", regressors=list(regs))
    est = make_model(model, regressors=regs, fast=fast)
    cols = ["unique_id", "ds", "y", "group", *regs] if model != "CalendarBaseline" else ["unique_id", "ds", "y"]
    est.fit(frame[cols])
    return FittedModel(name=model, model=est, frame=frame, agents=dataset.tables["agents"],
                       targets=dataset.tables.get("targets"))


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
    fitted: FittedModel, *, level: str, entity: str, horizon: int, quota: float | None = None,
    forecast: Forecast | None = None, territories: Mapping[str, str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Forecast fan and P(hit quota) of one entity over the next ``horizon`` periods.

    ``P(quota) = share of draws j with sum_k y_kj >= quota``, the sum over the forecast
    periods (:func:`~spm_models.quota_probability.attainment_distribution`). The quota is
    ``quota`` when given, else the targets prorated to the forecast window
    (:func:`~spm_models.quota_probability.quota_for_period`) when they cover the whole
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
        One row of :func:`~spm_models.quota_probability.attainment_distribution`.

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
    covered = fitted.targets is not None and len(fitted.targets) and pd.Timestamp(fitted.targets["period_end"].max()) >= end
    if quota is None and covered:
        q = quota_for_period(fitted.targets, period_start=start, period_end=end, agents=fitted.agents, level=level)
        quota = float(q.get(entity, np.nan))
    quota = np.nan if quota is None else float(quota)
    att = attainment_distribution(None, one, quota, period_start=start, period_end=end)
    return fan, att


# ---------------------------------------------------------------------------- widgets


@dataclass
class Explorer:
    """The live explorer: its widgets, its state and what it computed last.

    Tests set ``controls[name].value`` and read ``kpi_table``, ``fan``, ``attainment`` and
    ``scenario`` (each recomputed by the widget callbacks).
    """

    dataset: Dataset
    state: ExplorerState
    controls: dict[str, Any]
    widget: Any
    kpis: dict[str, pd.DataFrame] = field(default_factory=dict)
    fitted: dict[str, FittedModel] = field(default_factory=dict)
    regressors: dict[str, int] = field(default_factory=dict)
    kpi_table: pd.DataFrame | None = None
    fan: pd.DataFrame | None = None
    attainment: pd.DataFrame | None = None
    scenario: pd.DataFrame | None = None
    error: str = ""
    draw: bool = True
    fast: bool = False


def _refresh_kpis(ex: Explorer) -> None:
    s = ex.state
    if s.grain not in ex.kpis:
        ex.kpis[s.grain] = compute_kpis(ex.dataset, grain=s.grain)
    ex.kpi_table = kpi_view(ex.kpis[s.grain], level=s.level, entity=s.entity, kpi=s.kpi, start=s.start, end=s.end)
    if ex.draw:
        _plot(ex.controls["kpi_out"], ex.kpi_table, title=f"{s.kpi} - {s.level} {s.entity} ({s.grain})")


def _refresh_forecast(ex: Explorer) -> None:
    """Refit when needed and recompute the fan, P(quota) and the scenario; a choice the model
    cannot answer (a horizon beyond a regressor's lag) is shown as ``error``, not raised."""
    try:
        _forecast(ex)
        ex.error = ""
    except SpmError as exc:
        ex.error = str(exc)
        if ex.draw:
            ex.controls["forecast_out"].clear_output()
            with ex.controls["forecast_out"]:
                print(ex.error)


def _forecast(ex: Explorer) -> None:
    from .scenarios import Scenario, scenario_view

    s = ex.state
    if s.model not in ex.fitted:
        ex.fitted[s.model] = fit_model(ex.dataset, model=s.model, regressors=ex.regressors, fast=ex.fast)
    fitted = ex.fitted[s.model]
    ex.fan, ex.attainment = forecast_view(fitted, level=s.level, entity=s.entity, horizon=s.horizon, quota=s.quota)
    c = ex.controls
    scen = Scenario(
        activity=c["activity"].value or None, activity_change=c["activity_change"].value / 100.0,
        territory=c["territory"].value or None, agent_change=int(c["agent_change"].value),
        indicator=c["indicator"].value or None, indicator_shift=c["indicator_shift"].value,
    )
    try:
        ex.scenario = scenario_view(fitted, scen, level=s.level, entity=s.entity, horizon=s.horizon, quota=s.quota)
    except ConfigError as exc:  # a scenario the chosen model cannot answer; the forecast still shows
        ex.scenario = pd.DataFrame({"case": ["scenario"], "note": [str(exc)]})
    if ex.draw:
        title = f"{s.model}: next {s.horizon} weeks - {s.level} {s.entity}" + _quota_note(ex.attainment)
        _plot(c["forecast_out"], ex.fan, title=title, fan=True)
        _show(c["forecast_table_out"], ex.scenario)


def _quota_note(attainment: pd.DataFrame) -> str:
    """``"\\nP(hit quota) 81% of 562,800"`` for the fan title from a :func:`forecast_view` row ("" without a quota)."""
    p, quota = attainment["p_quota"].iloc[0], attainment["quota"].iloc[0]
    return "" if not np.isfinite(p) else f"\nP(hit quota) {p:.0%} of {quota:,.0f}"


def _plot(out, frame: pd.DataFrame, *, title: str, fan: bool = False) -> None:
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from matplotlib.ticker import StrMethodFormatter

    out.clear_output(wait=True)
    with out:
        fig, ax = plt.subplots(figsize=(8, 3))
        x = frame["ds"] if fan else frame["period"]
        if fan:  # a tick per forecast week (at most about eight)
            ax.set_xticks(x.iloc[:: max(1, len(x) // 8)])
            ax.xaxis.set_major_formatter(mdates.DateFormatter("%d %b %Y"))
        else:
            locator = mdates.AutoDateLocator(maxticks=8)
            ax.xaxis.set_major_locator(locator)
            ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
        if fan:
            ax.fill_between(x, frame["q0.1"], frame["q0.9"], alpha=0.25, label="80% interval")
            ax.plot(x, frame["mean"], label="mean")
        else:
            for seg, part in frame.groupby("segment", sort=True):
                ax.plot(part["period"], part["value"], marker="o", label=seg or "total")
        ax.set_title(title)
        ax.legend(loc="best", fontsize=8)
        plt.show()


def _show(out, frame: pd.DataFrame) -> None:
    from IPython.display import display

    out.clear_output(wait=True)
    with out:
        display(_styled(frame))


_MONEY = ("quota", "closed_to_date", "expected_remaining", "expected_bookings", "expected_shortfall")


def _styled(frame: pd.DataFrame):
    """The scenario table for display: one row per case, money whole, P(quota) in %, ratios to 2 places."""
    table = frame.set_index("case") if "case" in frame.columns else frame
    numeric = table.select_dtypes("number").columns
    special = {"p_quota": "{:.0%}", "change_pct": "{:+.1f}"}
    formats = {c: "{:,.0f}" if c in _MONEY else special.get(c, "{:.2f}") for c in numeric}
    return table.style.format(formats, na_rep="-")


def build_explorer(
    dataset: Dataset, *, state: ExplorerState | None = None, regressors: Mapping[str, int] | None = None,
    draw: bool = True, fast: bool = False, indicators: list[str] | None = None,
) -> Explorer:
    """Widgets for the explorer, wired to :func:`kpi_view`, :func:`forecast_view` and the scenarios.

    Parameters
    ----------
    dataset : Dataset
    state : ExplorerState, optional
        Initial control values.
    regressors : mapping of str to int, optional
        Indicators (and lags, in weeks) the models that take them are fitted with; the
        scenario controls offer these.
    draw : bool
        Draw charts and tables into the output widgets (tests switch it off).
    fast : bool
        Short ADVI runs.
    """
    import ipywidgets as w

    state = state or ExplorerState()
    regs = dict(regressors or {})
    acts = [""] + [r for r in regs if r.startswith("activity:")]
    inds = [""] + [r for r in regs if not r.startswith("activity:")]
    terrs = [""] + entity_options(dataset, "territory")
    wide = {"description_width": "initial"}  # labels longer than the default width, shown whole
    c: dict[str, Any] = {
        "level": w.Dropdown(options=list(LEVELS), value=state.level, description="Level"),
        "entity": w.Dropdown(options=entity_options(dataset, state.level), value=state.entity, description="Entity"),
        "kpi": w.Dropdown(options=list(KPI_CATALOG), value=state.kpi, description="KPI"),
        "grain": w.Dropdown(options=["week", "month", "quarter"], value=state.grain, description="Grain"),
        "start": w.DatePicker(value=None if state.start is None else pd.Timestamp(state.start).date(), description="From"),
        "end": w.DatePicker(value=None if state.end is None else pd.Timestamp(state.end).date(), description="To"),
        "model": w.Dropdown(options=list(MODELS), value=state.model, description="Model"),
        "horizon": w.IntSlider(value=state.horizon, min=1, max=13, description="Weeks ahead", style=wide),
        "quota": w.FloatText(value=state.quota or 0.0, description="Quota (0: targets)", style=wide),
        "activity": w.Dropdown(options=acts, value="", description="Activity"),
        "activity_change": w.FloatSlider(value=0.0, min=-50, max=100, step=5, description="Change %"),
        "territory": w.Dropdown(options=terrs, value="", description="Territory"),
        "agent_change": w.IntSlider(value=0, min=-3, max=3, description="Agents +/-"),
        "indicator": w.Dropdown(options=inds, value="", description="Indicator"),
        "indicator_shift": w.FloatText(value=0.0, description="Shift by"),
        "kpi_out": w.Output(), "forecast_out": w.Output(), "forecast_table_out": w.Output(),
    }
    box = w.VBox([
        w.HBox([c["level"], c["entity"], c["kpi"], c["grain"]]), w.HBox([c["start"], c["end"]]), c["kpi_out"],
        w.HBox([c["model"], c["horizon"], c["quota"]]),
        w.HBox([c["activity"], c["activity_change"]]), w.HBox([c["territory"], c["agent_change"]]),
        w.HBox([c["indicator"], c["indicator_shift"]]), c["forecast_out"], c["forecast_table_out"],
    ])
    ex = Explorer(dataset=dataset, state=state, controls=c, widget=box, regressors=regs, draw=draw, fast=fast)

    def on_level(change):
        ex.state.level = change["new"]
        options = entity_options(dataset, change["new"])
        c["entity"].options = options  # resets the value, which fires on_entity
        c["entity"].value = options[0]

    def on_view(change):
        for name in ("entity", "kpi", "grain"):
            setattr(ex.state, name, c[name].value)
        ex.state.start, ex.state.end = c["start"].value, c["end"].value
        if ex.state.entity is None:
            return
        _refresh_kpis(ex)
        if change["owner"] is c["entity"]:
            _refresh_forecast(ex)

    def on_forecast(change):
        ex.state.model, ex.state.horizon = c["model"].value, int(c["horizon"].value)
        ex.state.quota = float(c["quota"].value) or None
        _refresh_forecast(ex)

    c["level"].observe(on_level, names="value")
    for name in ("entity", "kpi", "grain", "start", "end"):
        c[name].observe(on_view, names="value")
    for name in ("model", "horizon", "quota", "activity", "activity_change", "territory", "agent_change", "indicator", "indicator_shift"):
        c[name].observe(on_forecast, names="value")
    _refresh_kpis(ex)
    _refresh_forecast(ex)
    return ex
