"""Lead KPIs: leads by channel, their conversion to opportunities and wins, time to convert,
and marketing return (cost per lead and per won deal) where spend per channel is given.

Every lead KPI is a *cohort* KPI: the leads created in a period, and what became of them by
now (the last day of the data passed). Per lead ``l`` of channel ``ch(l)`` created on
``c(l)``, with converted opportunity ``o(l)`` (if any):

- *converted*: ``o(l)`` is given (and in the opportunities, when they are passed);
- *won*: ``o(l)`` is won;
- *decided*: won, or ``o(l)`` lost, or the lead disqualified; otherwise *undecided*;
- *days to opportunity*: created date of ``o(l)`` minus ``c(l)``; *days to win*: close date
  of ``o(l)`` minus ``c(l)``, for won leads.

For a set ``L`` of leads (one channel's, or all, created in one period):

=========================  ===============================================================
``leads_created``          ``|L|``
``lead_to_opportunity``    ``|converted in L| / |L|``
``lead_to_win``            ``|won in L| / |L|``
``leads_undecided``        ``|undecided in L|``
``days_to_opportunity``    median days to opportunity over the converted leads of ``L``
``days_to_win``            median days to win over the won leads of ``L``
``channel_spend``          spend of the channel dated in the period (``channel_spend`` table)
``cost_per_lead``          ``channel_spend / leads_created``
``cost_per_win``           ``channel_spend / |won in L|``
=========================  ===============================================================

Ratios are NaN where the denominator is 0. Leads without a channel are in the channel
``(none)``. Lead KPIs are company-level (leads often have no owner): ``level`` is
``"company"``, ``segment`` the channel, and ``""`` for all channels together.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from spm_models.calendar import DEFAULT_CALENDAR, Calendar, check_grain, to_day
from spm_models.exceptions import DataValidationError, Problem
from spm_models.kpi.engine import OUTPUT_COLUMNS
from spm_models.kpi.grid import COMPANY

__all__ = ["LEAD_KPIS", "NO_CHANNEL", "lead_outcomes", "lead_kpis", "channel_summary"]

#: KPI name -> (unit, description), in report order.
LEAD_KPIS: dict[str, tuple[str, str]] = {
    "leads_created": ("count", "Leads created in the period"),
    "lead_to_opportunity": ("ratio", "Share of the period's leads that became an opportunity"),
    "lead_to_win": ("ratio", "Share of the period's leads whose opportunity is won by now"),
    "leads_undecided": ("count", "The period's leads neither won, lost nor disqualified yet"),
    "days_to_opportunity": ("days", "Median days from lead to opportunity"),
    "days_to_win": ("days", "Median days from lead to won deal"),
    "channel_spend": ("currency", "Marketing spend of the channel in the period"),
    "cost_per_lead": ("currency", "Spend / leads created"),
    "cost_per_win": ("currency", "Spend / leads won"),
}
#: Channel of leads whose channel is empty.
NO_CHANNEL = "(none)"


def lead_outcomes(leads: pd.DataFrame, opportunities: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per lead: what became of it (module docstring).

    Parameters
    ----------
    leads : DataFrame
        Canonical ``leads`` (typed).
    opportunities : DataFrame, optional
        Canonical ``opportunities``; without it a lead converts when it names an
        opportunity, and none is known to be won or lost.

    Returns
    -------
    DataFrame
        ``lead_id, channel, created, converted, won, decided, days_to_opportunity,
        days_to_win`` (days NaN where they do not apply).

    Raises
    ------
    DataValidationError
        A needed column is missing.
    """
    missing = [c for c in ("lead_id", "created_date") if c not in leads.columns]
    if missing:
        raise DataValidationError([Problem("leads", None, c, None, "column is missing") for c in missing])
    n = len(leads)
    created = pd.to_datetime(leads["created_date"]).to_numpy().astype("datetime64[D]")
    channel = leads["channel"].astype("str") if "channel" in leads else pd.Series([np.nan] * n, dtype="str")
    channel = channel.where(channel.notna() & (channel.str.strip() != ""), NO_CHANNEL)
    opp_id = leads["opportunity_id"] if "opportunity_id" in leads else pd.Series([None] * n, dtype="str")
    has_opp = opp_id.notna().to_numpy()
    nat = np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
    outcome = pd.Series([None] * n, dtype=object)
    opp_created, opp_closed = nat.copy(), nat.copy()
    if opportunities is not None and len(opportunities):
        o = opportunities.drop_duplicates("opportunity_id").set_index(opportunities["opportunity_id"].astype("str"))
        idx = o.index.get_indexer(opp_id.astype("str"))
        found = (idx >= 0) & has_opp
        has_opp = found
        outcome[found] = o["outcome"].astype("str").to_numpy()[idx[found]]
        opp_created[found] = pd.to_datetime(o["created_date"]).to_numpy().astype("datetime64[D]")[idx[found]]
        opp_closed[found] = pd.to_datetime(o["close_date"]).to_numpy().astype("datetime64[D]")[idx[found]]
    won = (outcome == "won").to_numpy()
    lost = (outcome == "lost").to_numpy()
    disq = leads["disqualified_date"].notna().to_numpy() if "disqualified_date" in leads else np.zeros(n, bool)
    to_opp = (opp_created - created).astype("timedelta64[D]").astype(float)
    to_win = np.where(won, (opp_closed - created).astype("timedelta64[D]").astype(float), np.nan)
    return pd.DataFrame(
        {
            "lead_id": leads["lead_id"].astype("str").to_numpy(),
            "channel": channel.to_numpy(),
            "created": created.astype("datetime64[us]"),
            "converted": has_opp,
            "won": won,
            "decided": won | lost | disq,
            "days_to_opportunity": np.where(has_opp, to_opp, np.nan),
            "days_to_win": to_win,
        }
    )


def _summarise(outcomes: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """The lead KPIs of each group of ``outcomes`` (except the spend-based ones)."""
    g = outcomes.groupby(keys, sort=True)
    out = g.agg(
        leads_created=("lead_id", "size"),
        converted=("converted", "sum"),
        won=("won", "sum"),
        decided=("decided", "sum"),
        days_to_opportunity=("days_to_opportunity", "median"),
        days_to_win=("days_to_win", "median"),
    )
    out["lead_to_opportunity"] = out["converted"] / out["leads_created"]
    out["lead_to_win"] = out["won"] / out["leads_created"]
    out["leads_undecided"] = out["leads_created"] - out["decided"]
    return out


def channel_summary(
    leads: pd.DataFrame,
    opportunities: pd.DataFrame | None = None,
    *,
    spend: pd.DataFrame | None = None,
    created_from: Any = None,
    created_to: Any = None,
) -> pd.DataFrame:
    """One row per channel (and ``""`` for all channels) over the leads created in a window.

    Parameters
    ----------
    leads, opportunities : DataFrame
        Canonical tables (typed).
    spend : DataFrame, optional
        Canonical ``channel_spend``; spend dated in the window counts.
    created_from, created_to : date-like, optional
        First and last day of lead creation counted (default: all leads).

    Returns
    -------
    DataFrame
        ``channel, leads_created, converted, won, leads_undecided, lead_to_opportunity,
        lead_to_win, days_to_opportunity, days_to_win, channel_spend, cost_per_lead,
        cost_per_win``; channels by leads created, most first, then the all-channels row.
    """
    o = lead_outcomes(leads, opportunities)
    lo = to_day(created_from, "created_from") if created_from is not None else None
    hi = to_day(created_to, "created_to") if created_to is not None else None
    keep = np.ones(len(o), dtype=bool)
    if lo is not None:
        keep &= (o["created"] >= lo).to_numpy()
    if hi is not None:
        keep &= (o["created"] <= hi).to_numpy()
    o = o[keep]
    per = _summarise(o, ["channel"]).sort_values("leads_created", ascending=False, kind="stable")
    total = _summarise(o.assign(channel=""), ["channel"])
    out = pd.concat([per, total]).reset_index()
    money = pd.Series(np.nan, index=out["channel"])
    if spend is not None and len(spend):
        s = spend.assign(day=pd.to_datetime(spend["date"]))
        if lo is not None:
            s = s[s["day"] >= lo]
        if hi is not None:
            s = s[s["day"] <= hi]
        by = s.groupby(s["channel"].astype("str"))["spend"].sum()
        money = by.reindex(out["channel"]).fillna(0.0)
        money.iloc[-1] = float(by.sum())
    out["channel_spend"] = money.to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["cost_per_lead"] = np.where(out["leads_created"] > 0, out["channel_spend"] / out["leads_created"], np.nan)
        out["cost_per_win"] = np.where(out["won"] > 0, out["channel_spend"] / out["won"], np.nan)
    cols = ["channel", "leads_created", "converted", "won", "leads_undecided", "lead_to_opportunity", "lead_to_win"]
    cols += ["days_to_opportunity", "days_to_win", "channel_spend", "cost_per_lead", "cost_per_win"]
    return out[cols]


def lead_kpis(
    leads: pd.DataFrame,
    opportunities: pd.DataFrame | None = None,
    *,
    spend: pd.DataFrame | None = None,
    grain: str = "month",
    start: Any = None,
    end: Any = None,
    calendar: Calendar | None = None,
) -> pd.DataFrame:
    """The lead KPIs (:data:`LEAD_KPIS`) per created period and channel, as a long KPI frame.

    Parameters
    ----------
    leads, opportunities : DataFrame
        Canonical tables (typed).
    spend : DataFrame, optional
        Canonical ``channel_spend``; without it the spend-based KPIs are left out.
    grain : {"week", "month", "quarter", "year"}
        Period of the cohorts.
    start, end : date-like, optional
        Reporting span (whole periods); default the first to the last lead's created date.
    calendar : Calendar, optional
        Fiscal quarters and years (the calendar year by default).

    Returns
    -------
    DataFrame
        ``level, entity_id, grain, period, kpi, segment, value`` (see :mod:`spm_models.kpi`):
        level ``company``, segment the channel (``""``: all channels); every period of the
        span and every channel, counts 0 where no lead was created.
    """
    grain = check_grain(grain)
    cal = calendar if calendar is not None else DEFAULT_CALENDAR
    o = lead_outcomes(leads, opportunities)
    if not len(o) and (start is None or end is None):
        return pd.DataFrame({c: pd.Series(dtype="str") for c in OUTPUT_COLUMNS})
    first = to_day(start, "start") if start is not None else o["created"].min()
    last = to_day(end, "end") if end is not None else o["created"].max()
    periods = cal.period_range(first, last, grain)
    o = o.assign(period=cal.period_start(o["created"], grain))
    o = o[o["period"].isin(periods)]
    channels = sorted(set(o["channel"]))
    per = _summarise(o, ["period", "channel"])
    total = _summarise(o.assign(channel=""), ["period", "channel"])
    grid = pd.MultiIndex.from_product([periods, channels + [""]], names=["period", "channel"])
    wide = pd.concat([per, total]).reindex(grid)
    for col in ("leads_created", "converted", "won", "decided", "leads_undecided"):
        wide[col] = wide[col].fillna(0.0)
    names = [k for k in LEAD_KPIS if k in wide.columns]
    if spend is not None and len(spend):
        s = spend.assign(period=cal.period_start(pd.to_datetime(spend["date"]), grain), channel=spend["channel"])
        by = s.groupby(["period", "channel"])["spend"].sum()
        all_ch = s.groupby("period")["spend"].sum()
        money = by.reindex(grid).fillna(0.0)
        total_idx = grid.get_level_values("channel") == ""
        money[total_idx] = all_ch.reindex(grid.get_level_values("period")[total_idx]).fillna(0.0).to_numpy()
        wide["channel_spend"] = money
        with np.errstate(divide="ignore", invalid="ignore"):
            wide["cost_per_lead"] = np.where(wide["leads_created"] > 0, money / wide["leads_created"], np.nan)
            wide["cost_per_win"] = np.where(wide["won"] > 0, money / wide["won"], np.nan)
        names += ["channel_spend", "cost_per_lead", "cost_per_win"]
    long = wide[names].reset_index().melt(id_vars=["period", "channel"], var_name="kpi", value_name="value")
    order = {k: i for i, k in enumerate(LEAD_KPIS)}
    long = long.sort_values(["kpi", "channel", "period"], key=lambda s: s.map(order) if s.name == "kpi" else s)
    n = len(long)
    return pd.DataFrame(
        {
            "level": pd.array(["company"] * n, dtype="str"),
            "entity_id": pd.array([COMPANY] * n, dtype="str"),
            "grain": pd.array([grain] * n, dtype="str"),
            "period": long["period"].to_numpy().astype("datetime64[us]"),
            "kpi": pd.array(long["kpi"].to_numpy(), dtype="str"),
            "segment": pd.array(long["channel"].to_numpy(), dtype="str"),
            "value": long["value"].to_numpy(dtype=float),
        }
    ).reset_index(drop=True)
