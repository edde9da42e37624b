"""From finding to forecast: the leading indicators a discovery found, as regressors a model can take.

Prophet (:class:`~spm_models.models.prophet_model.ProphetForecaster`) and the hierarchical model
(:class:`~spm_models.models.hierarchical.model.HierarchicalBayes`) take ``regressors={column:
lag}``: the bookings of period ``t`` are regressed on the column's value at ``t - lag``, so the
values needed to forecast up to ``lag`` periods ahead are already in the training frame, and a
longer horizon is refused. :func:`indicator_regressors` turns a table of
:func:`~spm_models.indicators.discovery.discover_leading_indicators` into that mapping (only the
indicators that passed every check, and only those whose lag covers the horizon);
:func:`add_regressor_columns` puts their series into a training frame (``unique_id, ds, y``,
one row per agent and period), as the models expect.

Typical use (weekly agent history, a forecast ``h`` weeks ahead)::

    table = discover_leading_indicators(dataset, level="agent")
    regs = indicator_regressors(table, horizon=h)
    frame = add_regressor_columns(history, dataset, regs)
    model = make_model("HierarchicalBayes", regressors=regs).fit(frame)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from spm_models.data.dataset import Dataset
from spm_models.exceptions import ConfigError
from spm_models.indicators.series import candidate_series

__all__ = ["LEADING", "indicator_regressors", "add_regressor_columns"]

#: The verdict of a candidate that passed every check of discovery.
LEADING = "leading indicator"


def indicator_regressors(table: pd.DataFrame, *, horizon: int | None = None) -> dict[str, int]:
    """``{candidate: lag}`` of the leading indicators in a discovery table.

    A row counts when its ``verdict`` is ``"leading indicator"`` (significant, stable and useful
    out of sample, lag of at least 1 period). With ``horizon``, only indicators whose lag is at
    least ``horizon`` are kept: an indicator leading by ``L`` periods is known only ``L``
    periods ahead, so a model forecasting further would need values not yet observed (the
    models refuse it).

    Parameters
    ----------
    table : DataFrame
        :func:`~spm_models.indicators.discovery.discover_leading_indicators` output (columns
        ``candidate``, ``best_lag``, ``verdict``), or the review's
        :func:`~spm_models.indicators.summary.leading_indicator_summary` (``lag`` for the lag).
    horizon : int, optional
        Periods the model will forecast.

    Returns
    -------
    dict of str to int
        In the table's order (strongest first); empty when nothing qualifies.

    Raises
    ------
    ConfigError
        The table lacks a column, or ``horizon`` is not a whole number of at least 1.
    """
    lag_column = "best_lag" if "best_lag" in table or "lag" not in table else "lag"
    missing = [c for c in ("candidate", lag_column, "verdict") if c not in table]
    if missing:
        raise ConfigError(
            f"the discovery table lacks {', '.join(missing)}; pass the output of discover_leading_indicators()"
        )
    if horizon is not None and (isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 1):
        raise ConfigError(f"horizon must be a whole number of periods, 1 or more (got {horizon!r})")
    rows = table[(table["verdict"] == LEADING) & table[lag_column].notna()]
    out = {str(c): int(lag) for c, lag in zip(rows["candidate"], rows[lag_column]) if int(lag) >= 1}
    if horizon is not None:
        out = {c: lag for c, lag in out.items() if lag >= horizon}
    return out


def add_regressor_columns(
    frame: pd.DataFrame,
    dataset: Dataset | Mapping[str, pd.DataFrame],
    names: Iterable[str],
    *,
    grain: str = "week",
) -> pd.DataFrame:
    """The training frame with one column per candidate in ``names``, from the agent-level series.

    Each column holds :func:`~spm_models.indicators.series.candidate_series` (level ``agent``)
    on the frame's ``unique_id`` (an agent id) and ``ds`` (period start), carried forward then
    back within an agent where it is not observed, and 0 where an agent never has it. The
    models standardise each column within a series, so its units do not matter.

    Parameters
    ----------
    frame : DataFrame
        ``unique_id, ds, y`` (plus any columns), agents by period.
    dataset : Dataset or mapping of str to DataFrame
        The canonical tables the frame was built from (cut at the same date).
    names : iterable of str
        Candidates, e.g. the keys of :func:`indicator_regressors`.

    Returns
    -------
    DataFrame
        ``frame`` sorted by ``unique_id, ds`` with the new columns.

    Raises
    ------
    ConfigError
        A name is not a candidate in these data, or clashes with a column of the frame.
    """
    names = list(dict.fromkeys(str(n) for n in names))
    out = frame.sort_values(["unique_id", "ds"], ignore_index=True)
    if not names:
        return out
    clash = sorted(set(names) & set(frame.columns))
    if clash:
        raise ConfigError(f"the frame already has column(s) {', '.join(clash)}")
    cands = candidate_series(dataset, level="agent", grain=grain)
    unknown = sorted(set(names) - set(cands["candidate"].unique()))
    if unknown:
        raise ConfigError(
            f"unknown indicator(s) {', '.join(unknown)}; available: {', '.join(sorted(cands['candidate'].unique()))}"
        )
    wide = (
        cands[cands["candidate"].isin(names)]
        .pivot_table(index=["entity_id", "period"], columns="candidate", values="value", aggfunc="sum")
        .reset_index()
        .rename(columns={"entity_id": "unique_id", "period": "ds"})
    )
    wide.columns.name = None
    keys = out[["unique_id", "ds"]].astype({"unique_id": "str"})
    wide = wide.astype({"unique_id": "str"})
    wide["ds"] = wide["ds"].astype(out["ds"].dtype)
    merged = keys.merge(wide, on=["unique_id", "ds"], how="left")
    filled = merged.groupby("unique_id", sort=False)[names].transform(lambda s: s.ffill().bfill())
    out[names] = filled.fillna(0.0).to_numpy()
    return out
