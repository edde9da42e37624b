"""Readable views of the long KPI frame."""

from __future__ import annotations

import pandas as pd

from spm_models.calendar import to_day
from spm_models.exceptions import ConfigError

__all__ = ["latest_period_view"]


def latest_period_view(kpis: pd.DataFrame, *, level: str = "company", period: str | None = None) -> pd.DataFrame:
    """A wide, readable view of one period: one row per entity, one column per KPI.

    Parameters
    ----------
    kpis : DataFrame
        Long KPI frame from :func:`spm_models.kpi.compute_kpis`.
    level : str
        ``"agent"``, ``"territory"`` or ``"company"``.
    period : str, optional
        Period start (``"2025-06"`` or ``"2025-06-01"``); default the latest complete period
        in the frame.
    """
    sub = kpis[kpis["level"] == level]
    if sub.empty:
        raise ConfigError(f"no KPIs at level {level!r}; choose one of {sorted(kpis['level'].unique())}")
    periods = sorted(sub["period"].unique())
    if period is None:
        chosen = periods[-2] if len(periods) > 1 else periods[-1]  # last one is usually partial
    else:
        chosen = to_day(period, "the period (a month like 2025-06 or a day like 2025-06-02)")
        if chosen not in set(periods):
            raise ConfigError(
                f"no KPIs for period {period}; available: {pd.Timestamp(periods[0]).date()} to "
                f"{pd.Timestamp(periods[-1]).date()}"
            )
    sub = sub[sub["period"] == chosen]
    name = sub["kpi"].astype("str")  # the frame's text columns are categorical (kpi.engine)
    if "segment" in sub.columns:
        seg = sub["segment"].astype("str").fillna("")
        name = name.where(seg == "", name + "[" + seg + "]")
    wide = sub.assign(kpi=name).pivot_table(
        index="entity_id", columns="kpi", values="value", aggfunc="first", dropna=False
    )
    wide.columns.name = None
    wide.index.name = level
    wide.attrs["period"] = pd.Timestamp(chosen)
    return wide
