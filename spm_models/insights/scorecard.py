"""Scorecards: each agent against quota, against anonymous peers, and against their own past.

Every function takes the long KPI frames of :func:`spm_models.kpi.compute_kpis` (columns
``level, entity_id, grain, period, kpi, segment, value``) and returns one tidy frame for all
agents at once; reports only filter and draw them.

Peers
-----
An agent is compared with a *peer group*: the agents of their territory when it has at least
``min_peers`` agents in the review, otherwise every agent of the company. Peers appear only
as anonymous statistics of the whole group (quartiles, pooled rates) and as the agent's
*percentile* in it::

    percentile = 100 * (number of peers below + half the peers tied) / (n - 1)

over the ``n`` group members with a value (the agent included in ``n``), which is
``100 * (average rank - 1) / (n - 1)``. With fewer than ``min_peers`` members with a value,
peer statistics are not shown (NaN): with two or three peers a median would reveal a
colleague's number. For "lower is better" metrics (sales-cycle days) the percentile is taken
on the negated value, so a high percentile is always good.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from spm_models.calendar import DEFAULT_CALENDAR, Calendar, to_day

__all__ = [
    "Metric",
    "METRICS",
    "COMPANY_GROUP",
    "entity_metrics",
    "peer_groups",
    "agent_scorecard",
    "peer_benchmark",
    "indicator_history",
    "trend_change",
    "funnel_counts",
    "funnel_comparison",
    "funnel_coverage",
    "territory_agent_table",
    "leaderboard",
    "plan_comparison",
    "key_accounts",
    "pooled_funnel",
]

#: Peer-group id of agents compared with the whole company.
COMPANY_GROUP = "company"


@dataclass(frozen=True)
class Metric:
    """One scorecard line.

    Attributes
    ----------
    name : str
        Column of :func:`entity_metrics`.
    label : str
        Text for tables.
    unit : {"currency", "count", "ratio", "days", "multiple"}
    higher_is_better : bool or None
        None: context only (quota), no percentile.
    """

    name: str
    label: str
    unit: str
    higher_is_better: bool | None = True


#: Scorecard lines, in report order.
METRICS: tuple[Metric, ...] = (
    Metric("bookings_month", "Bookings this month", "currency"),
    Metric("bookings_qtd", "Bookings, quarter to date", "currency"),
    Metric("quota_qtd", "Quota of the quarter", "currency", None),
    Metric("attainment_qtd", "Attainment, quarter to date", "ratio"),
    Metric("win_rate_qtd", "Win rate, quarter to date", "ratio"),
    Metric("average_deal_size_qtd", "Average deal size, quarter to date", "currency"),
    Metric("cycle_days_qtd", "Median sales cycle of deals won (days)", "days", False),
    Metric("pipeline_coverage", "Open pipeline / quota still to book", "multiple"),
    Metric("opportunities_created_month", "Opportunities created this month", "count"),
    Metric("activities_month", "Activities logged this month", "count"),
)
_METRIC = {m.name: m for m in METRICS}


def _values(kpis: pd.DataFrame, *, level: str, kpi: str, period: pd.Timestamp, summed: bool = False) -> pd.Series:
    """KPI values of one level and period by entity (segments summed when ``summed``)."""
    rows = kpis[(kpis["level"] == level) & (kpis["kpi"] == kpi) & (kpis["period"] == period)]
    if summed:
        return rows.groupby("entity_id", sort=True)["value"].sum(min_count=1)
    rows = rows[rows["segment"] == ""]
    return pd.Series(
        rows["value"].to_numpy(dtype=float), index=pd.Index(rows["entity_id"].astype("str"), name="entity_id")
    )


def entity_metrics(
    kpis_month: pd.DataFrame,
    kpis_quarter: pd.DataFrame,
    *,
    level: str,
    month: Any,
    quarter: Any,
    open_pipeline: pd.Series | None = None,
    remaining_quota: pd.Series | None = None,
) -> pd.DataFrame:
    """The scorecard numbers of every entity of one level, one row each.

    Columns (NaN where a KPI is missing or undefined):

    - ``bookings_month``, ``deals_won_month``, ``opportunities_created_month`` and
      ``activities_month`` (activity volume summed over types): KPI values of ``month``;
    - ``bookings_qtd``, ``quota_qtd`` (0 -> NaN: no quota), ``attainment_qtd``,
      ``win_rate_qtd``, ``average_deal_size_qtd``, ``cycle_days_qtd`` (median cycle),
      ``deals_closed_qtd`` (won + lost): KPI values of the quarter starting ``quarter``,
      computed with the reporting end at the review date (so quarter to date);
    - ``open_pipeline`` (given) and ``pipeline_coverage = open_pipeline / remaining_quota``
      (NaN where nothing remains to book).

    Parameters
    ----------
    kpis_month, kpis_quarter : DataFrame
        Long KPI frames at grain month and quarter.
    level : {"agent", "territory", "company"}
    month, quarter : date-like
        Start of the review month and of its quarter.
    open_pipeline, remaining_quota : Series, optional
        By entity id: value of the deals open at the review date, and quota of the quarter
        in progress still to book (``max(quota - closed, 0)``).

    Returns
    -------
    DataFrame
        Index ``entity_id`` (every entity with a bookings row in the quarter or month).
    """
    m, q = to_day(month, "month"), to_day(quarter, "quarter")
    cols = {
        "bookings_month": _values(kpis_month, level=level, kpi="bookings", period=m),
        "deals_won_month": _values(kpis_month, level=level, kpi="deals_won", period=m),
        "opportunities_created_month": _values(kpis_month, level=level, kpi="opportunities_created", period=m),
        "activities_month": _values(kpis_month, level=level, kpi="activity_volume", period=m, summed=True),
        "bookings_qtd": _values(kpis_quarter, level=level, kpi="bookings", period=q),
        "quota_qtd": _values(kpis_quarter, level=level, kpi="quota", period=q),
        "attainment_qtd": _values(kpis_quarter, level=level, kpi="attainment", period=q),
        "win_rate_qtd": _values(kpis_quarter, level=level, kpi="win_rate", period=q),
        "average_deal_size_qtd": _values(kpis_quarter, level=level, kpi="average_deal_size", period=q),
        "cycle_days_qtd": _values(kpis_quarter, level=level, kpi="cycle_days_median", period=q),
    }
    won_q = _values(kpis_quarter, level=level, kpi="deals_won", period=q)
    lost_q = _values(kpis_quarter, level=level, kpi="deals_lost", period=q)
    ids = cols["bookings_month"].index.union(cols["bookings_qtd"].index)
    out = pd.DataFrame({k: v.reindex(ids) for k, v in cols.items()}, index=ids)
    out["deals_closed_qtd"] = won_q.reindex(ids).fillna(0.0) + lost_q.reindex(ids).fillna(0.0)
    out["quota_qtd"] = out["quota_qtd"].where(out["quota_qtd"] > 0)
    pipe = (open_pipeline if open_pipeline is not None else pd.Series(dtype=float)).reindex(ids).astype(float)
    out["open_pipeline"] = pipe.fillna(0.0) if open_pipeline is not None else np.nan
    rem = (remaining_quota if remaining_quota is not None else pd.Series(dtype=float)).reindex(ids).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["pipeline_coverage"] = np.where(rem > 0, out["open_pipeline"] / rem.where(rem > 0), np.nan)
    out.index.name = "entity_id"
    return out


def peer_groups(agents: pd.DataFrame, *, min_peers: int = 5) -> pd.DataFrame:
    """Peer group of each agent: their territory if it has ``min_peers`` agents, else the company.

    Parameters
    ----------
    agents : DataFrame
        ``agent_id, territory_id`` of the agents in the review.
    min_peers : int
        Smallest territory compared on its own.

    Returns
    -------
    DataFrame
        ``agent_id, territory_id, peer_group`` (a territory id or :data:`COMPANY_GROUP`),
        ``peer_label`` ("your territory" / "all agents") and ``n_in_group``.
    """
    a = pd.DataFrame(
        {
            "agent_id": agents["agent_id"].astype("str").to_numpy(),
            "territory_id": agents["territory_id"].astype("str").to_numpy(),
        }
    )
    size = a.groupby("territory_id")["agent_id"].transform("size")
    own = size >= min_peers
    a["peer_group"] = np.where(own, a["territory_id"], COMPANY_GROUP)
    a["peer_label"] = np.where(own, "agents of your territory", "all agents of the company")
    a["n_in_group"] = a.groupby("peer_group")["agent_id"].transform("size").astype(np.int64)
    return a


def agent_scorecard(metrics: pd.DataFrame, groups: pd.DataFrame, *, min_peers: int = 5) -> pd.DataFrame:
    """Each agent's scorecard lines with anonymous peer statistics and percentile.

    Parameters
    ----------
    metrics : DataFrame
        :func:`entity_metrics` at agent level (index ``entity_id``).
    groups : DataFrame
        :func:`peer_groups`.
    min_peers : int
        Fewest group members with a value for peer statistics to be shown.

    Returns
    -------
    DataFrame
        One row per agent and :data:`METRICS` line: ``agent_id, metric, label, unit, value,
        peer_group, peer_label, n_peers`` (members with a value), ``peer_p25, peer_median,
        peer_p75`` and ``percentile`` (0-100, higher is better; NaN for context lines,
        missing values or small groups).
    """
    names = [m.name for m in METRICS]
    wide = metrics.reindex(columns=names).reindex(groups["agent_id"].to_numpy())
    long = wide.reset_index(names="agent_id").melt(id_vars="agent_id", var_name="metric", value_name="value")
    long = long.merge(groups[["agent_id", "peer_group", "peer_label"]], on="agent_id", how="left")
    sign = long["metric"].map({m.name: (-1.0 if m.higher_is_better is False else 1.0) for m in METRICS})
    long["_key"] = long["value"] * sign
    g = long.groupby(["peer_group", "metric"], sort=False)
    long["n_peers"] = g["value"].transform("count").astype(np.int64)
    for q, col in ((0.25, "peer_p25"), (0.5, "peer_median"), (0.75, "peer_p75")):
        long[col] = g["value"].transform(lambda s, q=q: s.quantile(q))
    rank = g["_key"].rank(method="average")
    n = long["n_peers"].astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = 100.0 * (rank - 1.0) / (n - 1.0)
    context = long["metric"].map({m.name: m.higher_is_better is None for m in METRICS}).astype(bool)
    small = long["n_peers"] < min_peers
    long["percentile"] = pct.where(~context & ~small & long["value"].notna())
    long.loc[small, ["peer_p25", "peer_median", "peer_p75"]] = np.nan
    long["label"] = long["metric"].map({m.name: m.label for m in METRICS})
    long["unit"] = long["metric"].map({m.name: m.unit for m in METRICS})
    order = {n: i for i, n in enumerate(names)}
    long = long.sort_values(
        ["agent_id", "metric"], key=lambda s: s.map(order) if s.name == "metric" else s, kind="stable"
    )
    cols = [
        "agent_id",
        "metric",
        "label",
        "unit",
        "value",
        "peer_group",
        "peer_label",
        "n_peers",
        "peer_p25",
        "peer_median",
        "peer_p75",
        "percentile",
    ]
    return long[cols].reset_index(drop=True)


def peer_benchmark(
    kpis_month: pd.DataFrame,
    groups: pd.DataFrame,
    *,
    kpis: tuple[str, ...] = ("bookings", "attainment"),
    min_peers: int = 5,
) -> pd.DataFrame:
    """Monthly KPI of each agent beside the median of their peer group (for trend charts).

    Returns
    -------
    DataFrame
        ``agent_id, period, kpi, value, peer_median`` (NaN when fewer than ``min_peers``
        group members have a value that month).
    """
    rows = kpis_month[
        (kpis_month["level"] == "agent") & kpis_month["kpi"].isin(list(kpis)) & (kpis_month["segment"] == "")
    ]
    rows = rows[["entity_id", "period", "kpi", "value"]].rename(columns={"entity_id": "agent_id"})
    rows = rows.merge(groups[["agent_id", "peer_group"]], on="agent_id", how="inner")
    g = rows.groupby(["peer_group", "period", "kpi"])["value"]
    med, cnt = g.transform("median"), g.transform("count")
    rows["peer_median"] = med.where(cnt >= min_peers)
    return rows.drop(columns="peer_group").sort_values(["agent_id", "kpi", "period"]).reset_index(drop=True)


def indicator_history(
    kpis_month: pd.DataFrame, *, month: Any, history_months: int = 12, level: str = "agent"
) -> pd.DataFrame:
    """This month's leading indicators of each entity against its own recent history.

    Indicators: ``opportunities_created``, ``open_pipeline`` (value open at the month start)
    and ``activity:<type>`` (activity volume per type). For each, over the
    ``history_months`` months before ``month`` in which the entity has a row::

        z = (value - mean) / sd          (sd with n - 1; NaN with fewer than 3 months or sd 0)
        ratio_to_mean = value / mean
        direction = "up" if z >= 1, "down" if z <= -1, else "steady" ("new" without history)

    Returns
    -------
    DataFrame
        ``entity_id, indicator, value, history_mean, history_sd, n_history, z,
        ratio_to_mean, direction``.
    """
    m = to_day(month, "month")
    first = m - pd.DateOffset(months=history_months)
    k = kpis_month[
        (kpis_month["level"] == level)
        & kpis_month["kpi"].isin(["opportunities_created", "open_pipeline", "activity_volume"])
    ]
    k = k[(k["period"] >= first) & (k["period"] <= m)]
    name = np.where(k["kpi"] == "activity_volume", "activity:" + k["segment"].astype("str"), k["kpi"].astype("str"))
    frame = pd.DataFrame(
        {
            "entity_id": k["entity_id"].astype("str").to_numpy(),
            "indicator": name,
            "period": k["period"].to_numpy(),
            "value": k["value"].to_numpy(dtype=float),
        }
    )
    now = frame[frame["period"] == m].drop(columns="period")
    past = (
        frame[frame["period"] < m]
        .groupby(["entity_id", "indicator"])["value"]
        .agg(history_mean="mean", history_sd="std", n_history="count")
        .reset_index()
    )
    out = now.merge(past, on=["entity_id", "indicator"], how="left")
    out["n_history"] = out["n_history"].fillna(0).astype(np.int64)
    sd = out["history_sd"].where((out["n_history"] >= 3) & (out["history_sd"] > 0))
    out["z"] = (out["value"] - out["history_mean"]) / sd
    mean = out["history_mean"]
    out["ratio_to_mean"] = (out["value"] / mean).where(mean > 0)
    out["direction"] = np.select(
        [out["n_history"] == 0, out["z"] >= 1, out["z"] <= -1], ["new", "up", "down"], "steady"
    )
    return out.sort_values(["entity_id", "indicator"]).reset_index(drop=True)


def trend_change(
    kpis_month: pd.DataFrame,
    *,
    month: Any,
    level: str = "agent",
    kpi: str = "bookings",
    window: int = 3,
    flat_band: float = 0.10,
) -> pd.DataFrame:
    """Change of a KPI over the last ``window`` months against the ``window`` before.

    ``change = sum(last window) / sum(previous window) - 1`` (NaN when the previous window
    sums to 0); ``trend`` is "rising" above ``+flat_band``, "falling" below ``-flat_band``,
    "flat" in between and "new" without a previous window.

    Returns
    -------
    DataFrame
        ``entity_id, recent, previous, change, trend``.
    """
    m = to_day(month, "month")
    k = kpis_month[(kpis_month["level"] == level) & (kpis_month["kpi"] == kpi) & (kpis_month["segment"] == "")]
    recent_from = m - pd.DateOffset(months=window - 1)
    prev_from = m - pd.DateOffset(months=2 * window - 1)
    ids = pd.Index(pd.unique(k["entity_id"].astype("str")), name="entity_id")
    recent = k[(k["period"] >= recent_from) & (k["period"] <= m)].groupby("entity_id")["value"].sum().reindex(ids)
    prev_rows = k[(k["period"] >= prev_from) & (k["period"] < recent_from)]
    previous = prev_rows.groupby("entity_id")["value"].sum().reindex(ids)
    with np.errstate(divide="ignore", invalid="ignore"):
        change = (recent / previous.where(previous > 0)) - 1.0
    trend = np.select([previous.isna(), change > flat_band, change < -flat_band], ["new", "rising", "falling"], "flat")
    trend = np.where(previous.notna() & (previous <= 0), np.where(recent > 0, "rising", "flat"), trend)
    return pd.DataFrame(
        {
            "entity_id": ids,
            "recent": recent.fillna(0.0).to_numpy(),
            "previous": previous.to_numpy(),
            "change": change.to_numpy(),
            "trend": trend,
        }
    ).reset_index(drop=True)


# --------------------------------------------------------------------------- funnel


def funnel_counts(
    opportunities: pd.DataFrame, stage_history: pd.DataFrame | None = None, *, created_from: Any, created_to: Any
) -> pd.DataFrame:
    """Stage-transition counts per agent over the opportunities created in a window.

    The definitions of :mod:`spm_models.kpi.funnel`, pooled over one window instead of per
    period: with ``f_i`` the furthest stage reached (won = the last stage; otherwise the
    furthest of the ``stage`` column and ``stage_history``; unknown -> left out)::

        reached_next(k) = |{i : f_i >= k + 1}|
        decided(k)      = |{i : f_i >= k + 1, or f_i = k and i was lost}|

    over the opportunities created between ``created_from`` and ``created_to`` (both days
    included), for each transition ``k -> k + 1`` of
    :data:`~spm_models.data.schemas.FUNNEL_STAGES`.

    Returns
    -------
    DataFrame
        ``agent_id, transition, step`` (0 = prospecting->qualification), ``reached_next``,
        ``decided`` and ``lost_known`` (lost deals of the window with a known stage, the
        same for every transition of an agent).
    """
    from spm_models.data.schemas import PIPELINE_STAGES
    from spm_models.kpi import TRANSITIONS

    lo, hi = to_day(created_from, "created_from").normalize(), to_day(created_to, "created_to").normalize()
    o = opportunities
    created = pd.to_datetime(o["created_date"])
    o = o[(created >= lo) & (created <= hi)]
    codes = {s: i for i, s in enumerate(PIPELINE_STAGES)}
    f = o["stage"].map(codes).astype(float).to_numpy() if "stage" in o else np.full(len(o), np.nan)
    if stage_history is not None and len(stage_history):
        h = stage_history[stage_history["opportunity_id"].isin(o["opportunity_id"])]
        best = h.assign(code=h["stage"].map(codes).astype(float)).groupby("opportunity_id")["code"].max()
        f = np.fmax(f, best.reindex(o["opportunity_id"].to_numpy()).to_numpy(dtype=float))
    outcome = o["outcome"].astype("str").to_numpy()
    won_code = float(len(PIPELINE_STAGES))
    f = np.where(outcome == "won", won_code, f)
    lost = outcome == "lost"
    known = ~np.isnan(f)
    agent = o["agent_id"].astype("str").to_numpy()[known]
    fk, lk = f[known], lost[known]
    k = np.arange(len(TRANSITIONS), dtype=float)
    reached = fk[:, None] > k[None, :]
    decided = reached | ((fk[:, None] == k[None, :]) & lk[:, None])
    ids, code = np.unique(agent, return_inverse=True)
    n_t = len(TRANSITIONS)
    r = np.zeros((len(ids), n_t))
    d = np.zeros((len(ids), n_t))
    np.add.at(r, code, reached.astype(float))
    np.add.at(d, code, decided.astype(float))
    lost_known = np.bincount(code, weights=lk.astype(float), minlength=len(ids))
    return pd.DataFrame(
        {
            "agent_id": pd.array(np.repeat(ids, n_t), dtype="str"),
            "transition": pd.array(np.tile(np.asarray(TRANSITIONS, dtype=object), len(ids)), dtype="str"),
            "step": np.tile(np.arange(n_t), len(ids)),
            "reached_next": r.reshape(-1),
            "decided": d.reshape(-1),
            "lost_known": np.repeat(lost_known, n_t),
        }
    )


def funnel_comparison(
    counts: pd.DataFrame, groups: pd.DataFrame, *, min_decided: int = 5, min_peers: int = 5
) -> pd.DataFrame:
    """Each agent's stage conversion beside the pooled conversion of their peer group.

    ``agent_rate = reached_next / decided`` (NaN below ``min_decided`` decided deals);
    ``peer_rate`` pools the counts of the whole peer group (the agent included; NaN with
    fewer than ``min_peers`` agents); ``company_rate`` pools every agent. The *weakest
    stage* of an agent is the transition with the lowest ``agent_rate / peer_rate`` among
    those with both rates (ties: the earlier stage).

    Parameters
    ----------
    counts : DataFrame
        :func:`funnel_counts`.
    groups : DataFrame
        :func:`peer_groups`; agents without counts get rows of zeros.

    Returns
    -------
    DataFrame
        ``agent_id, transition, step, reached_next, decided, agent_rate, peer_rate,
        company_rate, gap`` (``agent_rate - peer_rate``) and ``weakest`` (bool).
    """
    from spm_models.kpi import TRANSITIONS

    n_t = len(TRANSITIONS)
    base = pd.DataFrame(
        {
            "agent_id": np.repeat(groups["agent_id"].astype("str").to_numpy(), n_t),
            "transition": np.tile(np.asarray(TRANSITIONS, dtype=object), len(groups)),
            "step": np.tile(np.arange(n_t), len(groups)),
        }
    )
    c = base.merge(counts[["agent_id", "step", "reached_next", "decided"]], on=["agent_id", "step"], how="left").fillna(
        {"reached_next": 0.0, "decided": 0.0}
    )
    c = c.merge(groups[["agent_id", "peer_group"]], on="agent_id", how="left")
    with np.errstate(divide="ignore", invalid="ignore"):
        c["agent_rate"] = (c["reached_next"] / c["decided"]).where(c["decided"] >= min_decided)
        g = c.groupby(["peer_group", "step"])
        peer = g["reached_next"].transform("sum") / g["decided"].transform("sum").where(
            g["decided"].transform("sum") > 0
        )
        members = c.groupby("peer_group")["agent_id"].transform("nunique")
        c["peer_rate"] = peer.where(members >= min_peers)
        comp = c.groupby("step")[["reached_next", "decided"]].transform("sum")
        c["company_rate"] = comp["reached_next"] / comp["decided"].where(comp["decided"] > 0)
        rel = c["agent_rate"] / c["peer_rate"].where(c["peer_rate"] > 0)
    c["gap"] = c["agent_rate"] - c["peer_rate"]
    c["_rel"] = rel
    valid = c[c["_rel"].notna()].sort_values(["agent_id", "_rel", "step"], kind="stable")
    weakest_idx = valid.groupby("agent_id").head(1).index
    c["weakest"] = c.index.isin(weakest_idx)
    c["transition"] = c["transition"].astype("str")
    return c.drop(columns=["_rel", "peer_group"]).sort_values(["agent_id", "step"]).reset_index(drop=True)


def pooled_funnel(funnel: pd.DataFrame, entity_of_agent: pd.Series) -> pd.DataFrame:
    """Stage conversion of teams: the agents' counts summed per entity, then divided.

    Returns ``entity_id, transition, step, reached_next, decided, rate`` (NaN when nothing
    was decided).
    """
    ent = entity_of_agent.astype("str")
    ent.index = ent.index.astype("str")
    f = funnel.assign(entity_id=ent.reindex(funnel["agent_id"].astype("str").to_numpy()).to_numpy()).dropna(
        subset=["entity_id"]
    )
    g = f.groupby(["entity_id", "transition", "step"], as_index=False)[["reached_next", "decided"]].sum()
    g["rate"] = g["reached_next"] / g["decided"].where(g["decided"] > 0)
    g["entity_id"] = g["entity_id"].astype("str")
    return g.sort_values(["entity_id", "step"]).reset_index(drop=True)


def funnel_coverage(counts: pd.DataFrame, opportunities: pd.DataFrame, *, created_from: Any, created_to: Any) -> float:
    """Share of the window's lost deals whose stage is known (the funnel needs it).

    A source that records no stage for lost deals (the Maven export) makes every
    transition look perfect, because only won deals are ever "decided"; reports show the
    funnel only when this share is at least one half.
    """
    lo, hi = to_day(created_from, "created_from").normalize(), to_day(created_to, "created_to").normalize()
    created = pd.to_datetime(opportunities["created_date"])
    window = opportunities[(created >= lo) & (created <= hi)]
    n_lost = int((window["outcome"].astype("str") == "lost").sum())
    if n_lost == 0:
        return float("nan")
    known = counts.drop_duplicates("agent_id")["lost_known"].sum()
    return float(known) / n_lost


# --------------------------------------------------------------------------- teams and company


def territory_agent_table(
    metrics: pd.DataFrame, outlook: pd.DataFrame, trend: pd.DataFrame, agents: pd.DataFrame
) -> pd.DataFrame:
    """One row per agent for the territory report.

    Parameters
    ----------
    metrics : DataFrame
        :func:`entity_metrics` at agent level.
    outlook : DataFrame
        Quarter outlook per agent (``unique_id, p_quota, expected_attainment``), as
        :func:`spm_models.evaluation.quota.probability.attainment_distribution` returns it.
    trend : DataFrame
        :func:`trend_change` at agent level.
    agents : DataFrame
        ``agent_id, agent_name, territory_id`` of the agents in the review.

    Returns
    -------
    DataFrame
        ``territory_id, agent_id, agent_name, bookings_qtd, quota_qtd, attainment_qtd,
        open_pipeline, pipeline_coverage, p_quota, expected_attainment`` (``reached`` too when
        the outlook has it: booked at or above the quota of the forecast quarter), ``change, trend``,
        sorted by territory then attainment (highest first; no quota last).
    """
    a = agents[["agent_id", "agent_name", "territory_id"]].astype("str")
    m = metrics.reindex(a["agent_id"].to_numpy())[
        ["bookings_qtd", "quota_qtd", "attainment_qtd", "open_pipeline", "pipeline_coverage"]
    ]
    cols = ["p_quota", "expected_attainment"] + (["reached"] if "reached" in outlook else [])
    o = outlook.set_index(outlook["unique_id"].astype("str"))[cols].reindex(a["agent_id"].to_numpy())
    t = trend.set_index(trend["entity_id"].astype("str"))[["change", "trend"]].reindex(a["agent_id"].to_numpy())
    out = pd.concat(
        [a.reset_index(drop=True), m.reset_index(drop=True), o.reset_index(drop=True), t.reset_index(drop=True)], axis=1
    )
    out["trend"] = out["trend"].fillna("new").astype("str")
    out = out.sort_values(
        ["territory_id", "attainment_qtd", "bookings_qtd"],
        ascending=[True, False, False],
        na_position="last",
        kind="stable",
    )
    return out.reset_index(drop=True)


def leaderboard(metrics: pd.DataFrame, agents: pd.DataFrame, *, top: int = 10) -> pd.DataFrame:
    """The company's agents ranked by attainment to date (by bookings where no quota is set).

    Agents with a quota are ranked first, by ``attainment_qtd`` then ``bookings_qtd``; the
    rest follow by ``bookings_qtd``. Ranks are 1-based and dense over the sort order.

    Returns
    -------
    DataFrame
        ``rank, agent_id, agent_name, territory_id, bookings_qtd, quota_qtd,
        attainment_qtd, win_rate_qtd``, the first ``top`` rows.
    """
    a = agents[["agent_id", "agent_name", "territory_id"]].astype("str").reset_index(drop=True)
    m = metrics.reindex(a["agent_id"].to_numpy())[
        ["bookings_qtd", "quota_qtd", "attainment_qtd", "win_rate_qtd"]
    ].reset_index(drop=True)
    t = pd.concat([a, m], axis=1)
    t["_no_quota"] = t["attainment_qtd"].isna()
    t = t.sort_values(
        ["_no_quota", "attainment_qtd", "bookings_qtd", "agent_id"], ascending=[True, False, False, True], kind="stable"
    ).head(top)
    t.insert(0, "rank", np.arange(1, len(t) + 1))
    return t.drop(columns="_no_quota").reset_index(drop=True)


def plan_comparison(
    kpis_month: pd.DataFrame,
    *,
    level: str = "company",
    month: Any,
    months: int = 12,
    calendar: Calendar = DEFAULT_CALENDAR,
) -> pd.DataFrame:
    """Bookings against plan (quota) by month, with the year to date running totals.

    ``attainment = bookings / quota`` per month; ``ytd_bookings`` and ``ytd_quota`` add up
    the months of the (fiscal, ``calendar``) year of each row up to that month;
    ``ytd_attainment`` is their ratio.

    Returns
    -------
    DataFrame
        ``entity_id, period, bookings, quota, attainment, ytd_bookings, ytd_quota,
        ytd_attainment`` for the ``months`` months up to ``month``.
    """
    m = to_day(month, "month")
    k = kpis_month[
        (kpis_month["level"] == level) & kpis_month["kpi"].isin(["bookings", "quota"]) & (kpis_month["segment"] == "")
    ]
    k = k[k["period"] <= m]
    wide = k.pivot_table(index=["entity_id", "period"], columns="kpi", values="value", aggfunc="sum").reset_index()
    if "quota" not in wide:
        wide["quota"] = np.nan
    wide["quota"] = wide["quota"].where(wide["quota"] > 0)
    wide["year"] = calendar.period_start(pd.DatetimeIndex(wide["period"]), "year")
    wide["_q0"] = wide["quota"].fillna(0.0)
    g = wide.sort_values("period").groupby(["entity_id", "year"])
    wide["ytd_bookings"] = g["bookings"].cumsum()
    wide["ytd_quota"] = g["_q0"].cumsum()
    wide["ytd_quota"] = wide["ytd_quota"].where(wide["ytd_quota"] > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        wide["attainment"] = wide["bookings"] / wide["quota"]
        wide["ytd_attainment"] = wide["ytd_bookings"] / wide["ytd_quota"]
    first = m - pd.DateOffset(months=months - 1)
    wide = wide[wide["period"] >= first]
    cols = ["entity_id", "period", "bookings", "quota", "attainment", "ytd_bookings", "ytd_quota", "ytd_attainment"]
    out = wide[cols].sort_values(["entity_id", "period"]).reset_index(drop=True)
    out["entity_id"] = out["entity_id"].astype("str")
    return out


def key_accounts(
    opportunities: pd.DataFrame,
    accounts: pd.DataFrame | None,
    entity_of_agent: pd.Series,
    *,
    start: Any,
    end: Any,
    top: int = 5,
) -> pd.DataFrame:
    """The largest accounts of each entity by bookings closed in ``[start, end]``.

    ``share = account bookings / entity bookings`` over the span; deals without an account
    are left out of the ranking but counted in the entity's total.

    Returns
    -------
    DataFrame
        ``territory_id`` (the entity), ``account_id, account_name, bookings, deals_won,
        share``, the ``top`` largest per entity.
    """
    lo, hi = to_day(start, "start").normalize(), to_day(end, "end").normalize()
    o = opportunities[opportunities["outcome"].astype("str") == "won"]
    close = pd.to_datetime(o["close_date"])
    o = o[(close >= lo) & (close <= hi)]
    ent = entity_of_agent.astype("str")
    ent.index = ent.index.astype("str")
    f = pd.DataFrame(
        {
            "territory_id": ent.reindex(o["agent_id"].astype("str").to_numpy()).to_numpy(),
            "account_id": o["account_id"].astype("str").to_numpy(),
            "amount": o["amount"].fillna(0.0).to_numpy(dtype=float),
        }
    ).dropna(subset=["territory_id"])
    total = f.groupby("territory_id")["amount"].sum()
    g = (
        f.dropna(subset=["account_id"])
        .groupby(["territory_id", "account_id"], as_index=False)
        .agg(bookings=("amount", "sum"), deals_won=("amount", "size"))
    )
    if g.empty:  # no won deal names an account (an export without accounts)
        cols = {"territory_id": "str", "account_id": "str", "account_name": "str", "bookings": float}
        cols |= {"deals_won": np.int64, "share": float}
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in cols.items()})
    g["share"] = g["bookings"] / g["territory_id"].map(total).where(lambda s: s > 0)
    names = (
        accounts.set_index(accounts["account_id"].astype("str"))["account_name"].astype("str")
        if accounts is not None and len(accounts)
        else pd.Series(dtype="str")
    )
    g["account_name"] = g["account_id"].map(names).fillna(g["account_id"]).astype("str")
    g = (
        g.sort_values(["territory_id", "bookings", "account_id"], ascending=[True, False, True])
        .groupby("territory_id")
        .head(top)
    )
    g["deals_won"] = g["deals_won"].astype(np.int64)
    return g[["territory_id", "account_id", "account_name", "bookings", "deals_won", "share"]].reset_index(drop=True)
