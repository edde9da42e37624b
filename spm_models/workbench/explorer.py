"""The explorer: widget-free state and compute functions, and a small ipywidgets builder.

Everything a control changes goes through a function here that a unit test calls:
:func:`kpi_view` (level, entity, KPI, grain, date range), :func:`fit_model` and
:func:`forecast_view` (model and horizon: forecast fan and P(hit quota)) and
:func:`~spm_models.workbench.scenarios.scenario_view` (what-if controls).
:func:`build_explorer` only wires widgets to them; ipywidgets and matplotlib are imported
when it is called, never at import.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from spm_models.calendar import GRAINS
from spm_models.data.dataset import Dataset
from spm_models.exceptions import ConfigError, SpmError
from spm_models.kpi import KPI_CATALOG, compute_kpis
from spm_models.workbench.forecasting import (
    COMPANY,
    LEVELS,
    MODELS,
    FittedModel,
    fit_model,
    forecast_view,
)

__all__ = ["ExplorerState", "entity_options", "kpi_view", "kpi_unit", "Explorer", "build_explorer"]


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


def kpi_view(
    kpis: pd.DataFrame, *, level: str, entity: str, kpi: str, start: Any = None, end: Any = None
) -> pd.DataFrame:
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


def _subject(level: str, entity: str) -> str:
    """``agent A0001``, ``territory T01``, or ``company`` (not ``company company``)."""
    return level if entity == level else f"{level} {entity}"


def _refresh_kpis(ex: Explorer) -> None:
    s = ex.state
    if s.grain not in ex.kpis:
        ex.kpis[s.grain] = compute_kpis(ex.dataset, grain=s.grain)
    ex.kpi_table = kpi_view(ex.kpis[s.grain], level=s.level, entity=s.entity, kpi=s.kpi, start=s.start, end=s.end)
    if ex.draw:
        _plot(
            ex.controls["kpi_out"],
            ex.kpi_table,
            title=f"{s.kpi} - {_subject(s.level, s.entity)} ({s.grain})",
            unit=kpi_unit(s.kpi),
        )


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
    from spm_models.workbench.scenarios import Scenario, scenario_view

    s = ex.state
    if s.model not in ex.fitted:
        ex.fitted[s.model] = fit_model(ex.dataset, model=s.model, regressors=ex.regressors, fast=ex.fast)
    fitted = ex.fitted[s.model]
    ex.fan, ex.attainment = forecast_view(fitted, level=s.level, entity=s.entity, horizon=s.horizon, quota=s.quota)
    c = ex.controls
    scen = Scenario(
        activity=c["activity"].value or None,
        activity_change=c["activity_change"].value / 100.0,
        territory=c["territory"].value or None,
        agent_change=int(c["agent_change"].value),
        indicator=c["indicator"].value or None,
        indicator_shift=c["indicator_shift"].value,
    )
    try:
        ex.scenario = scenario_view(fitted, scen, level=s.level, entity=s.entity, horizon=s.horizon, quota=s.quota)
    except ConfigError as exc:  # a scenario the chosen model cannot answer; the forecast still shows
        ex.scenario = pd.DataFrame({"case": ["scenario"], "note": [str(exc)]})
    if ex.draw:
        title = f"{s.model}: next {s.horizon} weeks - {_subject(s.level, s.entity)}" + _quota_note(ex.attainment)
        _plot(c["forecast_out"], ex.fan, title=title, fan=True)
        _show(c["forecast_table_out"], ex.scenario)


def _quota_note(attainment: pd.DataFrame) -> str:
    """``"\\nP(hit quota) 81% of 562,800"`` for the fan title from a :func:`forecast_view` row ("" without a quota)."""
    p, quota = attainment["p_quota"].iloc[0], attainment["quota"].iloc[0]
    return "" if not np.isfinite(p) else f"\nP(hit quota) {p:.0%} of {quota:,.0f}"


def kpi_unit(kpi: str) -> str:
    """The unit of a KPI's values (:data:`spm_models.kpi.catalog.KPI_CATALOG`; ``count`` when unknown)."""
    from spm_models.kpi.catalog import KPI_CATALOG

    spec = KPI_CATALOG.get(kpi)
    return spec.unit if spec is not None else "count"


def _plot(out, frame: pd.DataFrame, *, title: str, fan: bool = False, unit: str = "currency") -> None:
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    from spm_models.present.format import axis_formatter

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
        ax.yaxis.set_major_formatter(axis_formatter(unit))  # win rate 31%, not 0; attainment 104%, not 1
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


_MONEY = (
    "quota",
    "closed_to_date",
    "expected_remaining",
    "expected_bookings",
    "median_bookings",
    "expected_shortfall",
)


def _styled(frame: pd.DataFrame):
    """The scenario table for display: one row per case, money whole, P(quota) and attainment in %
    (``expected_attainment``, ``attainment_q0.05``...), other numbers to 2 places."""
    table = frame.set_index("case") if "case" in frame.columns else frame
    numeric = table.select_dtypes("number").columns
    special = {"p_quota": "{:.0%}", "change_pct": "{:+.1f}"}

    def fmt(col: str) -> str:
        if col in _MONEY:
            return "{:,.0f}"
        return "{:.0%}" if "attainment" in col else special.get(col, "{:.2f}")

    return table.style.format({c: fmt(c) for c in numeric}, na_rep="-")


def build_explorer(
    dataset: Dataset,
    *,
    state: ExplorerState | None = None,
    regressors: Mapping[str, int] | None = None,
    draw: bool = True,
    fast: bool = False,
    indicators: list[str] | None = None,
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
        "grain": w.Dropdown(options=list(GRAINS), value=state.grain, description="Grain"),
        "start": w.DatePicker(
            value=None if state.start is None else pd.Timestamp(state.start).date(), description="From"
        ),
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
        "kpi_out": w.Output(),
        "forecast_out": w.Output(),
        "forecast_table_out": w.Output(),
    }
    box = w.VBox(
        [
            w.HBox([c["level"], c["entity"], c["kpi"], c["grain"]]),
            w.HBox([c["start"], c["end"]]),
            c["kpi_out"],
            w.HBox([c["model"], c["horizon"], c["quota"]]),
            w.HBox([c["activity"], c["activity_change"]]),
            w.HBox([c["territory"], c["agent_change"]]),
            w.HBox([c["indicator"], c["indicator_shift"]]),
            c["forecast_out"],
            c["forecast_table_out"],
        ]
    )
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
    for name in (
        "model",
        "horizon",
        "quota",
        "activity",
        "activity_change",
        "territory",
        "agent_change",
        "indicator",
        "indicator_shift",
    ):
        c[name].observe(on_forecast, names="value")
    _refresh_kpis(ex)
    _refresh_forecast(ex)
    return ex
