"""Writing result tables for people and spreadsheets.

Text cells that a spreadsheet would evaluate (``=HYPERLINK(...)``) are neutralised with a
leading apostrophe when written to CSV, so a hostile name in the source never runs as a
formula in whoever opens the export.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from .exceptions import ConfigError

__all__ = ["write_table", "neutralise_formulas", "latest_period_view"]

_FORMULA = re.compile(r"^[=+\-@\t\r]")


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Copy of ``frame`` whose text cells starting with ``= + - @`` (or tab/CR) get a leading ``'``.

    Numbers are left alone; only text columns are touched.
    """
    out = frame.copy()
    for col in out.columns:
        if pd.api.types.is_string_dtype(out[col]) or out[col].dtype == object:
            s = out[col]
            mask = s.map(lambda v: isinstance(v, str) and bool(_FORMULA.match(v)))
            if mask.any():
                out[col] = s.where(~mask, "'" + s.astype(str))
    return out


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write ``frame`` to ``path`` as CSV or Parquet (by extension), atomically.

    Parameters
    ----------
    frame : DataFrame
        The table.
    path : path-like
        Ends in ``.csv`` or ``.parquet``.

    Raises
    ------
    ConfigError
        For any other extension.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in {".csv", ".parquet"}:
        raise ConfigError(f"cannot write {path}: use a file name ending in .csv or .parquet")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    if suffix == ".csv":
        neutralise_formulas(frame).to_csv(tmp, index=False, lineterminator="\n")
    else:
        frame.to_parquet(tmp, index=False)
    tmp.replace(path)
    return path


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
        chosen = pd.Timestamp(period)
        if chosen not in set(periods):
            raise ConfigError(
                f"no KPIs for period {period}; available: {pd.Timestamp(periods[0]).date()} to {pd.Timestamp(periods[-1]).date()}"
            )
    sub = sub[sub["period"] == chosen]
    name = sub["kpi"]
    if "segment" in sub.columns:
        seg = sub["segment"].fillna("")
        name = name.where(seg == "", name + "[" + seg.astype(str) + "]")
    wide = sub.assign(kpi=name).pivot_table(index="entity_id", columns="kpi", values="value", aggfunc="first", dropna=False)
    wide.columns.name = None
    wide.index.name = level
    wide.attrs["period"] = pd.Timestamp(chosen)
    return wide
