"""Plain-language points derived from the numbers: coaching, territory risks, recognition.

Each statement is produced by a rule on numbers computed elsewhere (scorecard, funnel,
forecast outlook, the open deals of :mod:`spm_models.insights.deals`), and quotes those numbers
and names the deals behind them, so a reader can check it against the tables of the same
report. Every threshold is a field of :class:`~spm_models.insights.settings.CoachingSettings`.

Coaching points, ranked by what they are worth to the person
------------------------------------------------------------
Each point carries a *worth*: the bookings at stake, as a share of the agent's quota of the
forecast quarter (``s``; without a quota, of the agent's expected quarter total), so a point
about a large gap to quota outranks a point about a dip in calls. Per agent the
``max_points`` most worth are kept (at least ``min_points``).

=================  ===========================================  ==========================================
topic              fires when                                   worth
=================  ===========================================  ==========================================
``quota_outlook``  a quota; not reached                         expected shortfall ``E[max(Q - B, 0)] / Q``
                   chance above ``chance_high``                 0.1 ("on track", names next quarter)
``next_quarter``   attainment >= ``far_above_quota``            ``attainment - 1`` (at least 0.5): the
                                                                quarter is made, next quarter matters
``stuck``          open deals stuck in their stage              ``sum(amount * p_win) / s`` of those deals
``pipeline``       coverage of quota still to book              ``(coverage_target - coverage) * still to
                   < ``coverage_low``                           book * win rate / s`` (win rate 25% when
                                                                unknown)
``funnel``         weakest stage >= ``funnel_gap`` below peers  ``points below * open pipeline / s``
``win_rate``       win-rate percentile < ``win_rate_percentile``  ``(peer median - rate) * open pipeline / s``
``activity``       an activity >= ``activity_z`` sd below own   ``0.02 * |z|``: small, worth acting on when
                   history                                      nothing bigger is; never first for an
                                                                agent far above quota
``strength``       best percentile >= ``strength_percentile``   0.01
``bookings``       always (fallback)                            0
=================  ===========================================  ==========================================

A percentile among peers compares the agent with the *other* members of the peer group, so
the strength point says "better than 86% of the 7 other agents of your territory", or "the
best of the 8 agents" at the top.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from spm_models.insights.settings import CoachingSettings
from spm_models.present.format import format_value, indicator_label

__all__ = [
    "coaching_points",
    "territory_risks",
    "recognition",
    "COACHING_COLUMNS",
    "deal_names",
]

COACHING_COLUMNS = ("agent_id", "rank", "topic", "severity", "text")
_ACTIVITY_WORTH = 0.02
_REF_WIN_RATE = 0.25


def _metric(sc: pd.DataFrame, name: str) -> pd.DataFrame:
    return sc[sc["metric"] == name].set_index("agent_id")


def deal_names(deals: pd.DataFrame, *, currency: str, extra=None, limit: int = 3) -> str:
    """``"Apex Inc (USD 12.3k, proposal), Vertex SA (...)"``: the first ``limit`` deals by name,
    amount and ``extra(row)`` (text, or None for the stage)."""
    items = []
    for rec in deals.head(limit).itertuples(index=False):
        name = rec.account_name or rec.opportunity_id
        bits = [format_value(rec.amount, "currency", currency=currency)]
        more = extra(rec) if extra is not None else (str(rec.stage).replace("_", " ") if rec.stage else "")
        if more:
            bits.append(more)
        items.append(f"{name} ({', '.join(bits)})")
    return ", ".join(items)


class _Points:
    """Collects points ``(agent, topic, worth, text)``."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, float, str]] = []

    def add(self, agent: str, topic: str, worth: float, text: str) -> None:
        self.rows.append((str(agent), topic, float(worth), text))


def _quota_points(pts, o, deals, att, s: CoachingSettings, money, left, quarter) -> None:
    """The quota outlook (gap, on track) and, far above quota, next quarter."""
    for aid, r in o.iterrows():
        q, p, closed = r["quota"], r["p_quota"], r["closed_to_date"]
        if not (np.isfinite(q) and q > 0 and np.isfinite(p)):
            continue
        mine = deals[deals["agent_id"] == aid] if deals is not None else None
        a = att.get(aid, np.nan)
        if np.isfinite(a) and a >= s.far_above_quota:
            text = f"At {a:.0%} of the {quarter}quota the quarter is made: what matters now is next quarter."
            if mine is not None and len(mine):
                text += (
                    f" Your open pipeline holds {len(mine)} deals worth {money(mine['amount'].sum())}; "
                    f"the largest by expected value: {deal_names(mine, currency=money.currency)}."
                )
            pts.add(aid, "next_quarter", max(a - 1.0, 0.5), text)
            continue
        if bool(r.get("reached", False)) or closed >= q:
            pts.add(aid, "quota_outlook", 0.1, f"Quota reached ({money(closed)} booked against {money(q)}).")
            continue
        gap = max(q - closed, 0.0)
        if p > s.chance_high:
            pts.add(
                aid,
                "quota_outlook",
                0.1,
                f"You are on track, with a {p:.0%} chance of reaching quota ({money(r['expected_bookings'])} "
                f"expected against {money(q)}). Use the time to build next quarter's pipeline.",
            )
            continue
        lead = "On current form you have" if p < s.chance_low else "Quota is within reach:"
        text = (
            f"{lead} a {p:.0%} chance of reaching the {quarter}quota of {money(q)}: {money(gap)} is still to "
            f"book{left}, and expected bookings are {money(r['expected_bookings'])}."
        )
        if mine is not None:
            soon = mine[mine["p_win_quarter"].fillna(0) > 0].copy()
            soon["_v"] = soon["amount"] * soon["p_win_quarter"]
            soon = soon.sort_values("_v", ascending=False)
            if len(soon):
                text += " The deals that can close in time: " + deal_names(
                    soon, currency=money.currency, extra=lambda d: f"{d.p_win_quarter:.0%} chance by the quarter end"
                )
                text += "."
            else:
                text += " No open deal is expected to close before the quarter ends: new opportunities are needed."
        pts.add(aid, "quota_outlook", r["expected_shortfall"] / q, text)


class _Money:
    def __init__(self, currency: str) -> None:
        self.currency = currency

    def __call__(self, v) -> str:
        return format_value(v, "currency", currency=self.currency)


def coaching_points(
    scorecard: pd.DataFrame,
    funnel: pd.DataFrame | None,
    indicators: pd.DataFrame,
    outlook: pd.DataFrame,
    *,
    currency: str = "USD",
    weeks_left: float | None = None,
    max_points: int | None = None,
    min_points: int | None = None,
    deals: pd.DataFrame | None = None,
    settings: CoachingSettings | None = None,
    quarter: str = "",
) -> pd.DataFrame:
    """Two to four coaching points per agent, the most worth first (rules in the module docstring).

    Parameters
    ----------
    scorecard : DataFrame
        :func:`spm_models.insights.scorecard.agent_scorecard`.
    funnel : DataFrame or None
        :func:`spm_models.insights.scorecard.funnel_comparison` (None when the data have no usable
        stages).
    indicators : DataFrame
        :func:`spm_models.insights.scorecard.indicator_history` at agent level.
    outlook : DataFrame
        Quarter outlook per agent: ``unique_id, quota, closed_to_date, expected_bookings,
        p_quota, expected_shortfall`` (and ``reached``).
    currency : str
    weeks_left : float, optional
        Weeks left in the quarter, quoted in the outlook point.
    max_points, min_points : int, optional
        Override ``settings``.
    deals : DataFrame, optional
        :func:`spm_models.insights.deals.open_deals`: the deals the points name.
    settings : CoachingSettings, optional
    quarter : str, optional
        Label of the forecast quarter, named in the quota point.

    Returns
    -------
    DataFrame
        ``agent_id, rank, topic, severity, text``; ``severity`` is the point's worth, ``rank``
        1 the most worth.
    """
    s = settings or CoachingSettings()
    max_points = s.max_points if max_points is None else max_points
    min_points = s.min_points if min_points is None else min_points
    agents = pd.Index(pd.unique(scorecard["agent_id"].astype("str")), name="agent_id")
    money = _Money(currency)
    pts = _Points()
    if deals is not None:
        deals = deals[deals["agent_id"].astype("str").isin(agents)].sort_values(
            ["agent_id", "rank_agent"], kind="stable"
        )
    o = outlook.set_index(outlook["unique_id"].astype("str")).reindex(agents)
    quota = o["quota"].where(o["quota"] > 0)
    scale = quota.fillna(o["expected_bookings"].where(o["expected_bookings"] > 0))
    att = (o["closed_to_date"] / quota).to_dict()
    left = "" if weeks_left is None else f" in the {weeks_left:.0f} weeks left"
    q_label = f"{quarter} " if quarter else "quarter's "
    _quota_points(pts, o, deals, att, s, money, left, q_label)
    open_value = (
        deals.groupby("agent_id")["amount"].sum().reindex(agents)
        if deals is not None
        else (
            _metric(scorecard, "pipeline_coverage")["value"] * (o["quota"] - o["closed_to_date"]).clip(lower=0)
        ).reindex(agents)
    )

    if deals is not None:
        stuck = deals[deals["stuck"]]
        for aid, g in stuck.groupby("agent_id", sort=False):
            worth = float((g["amount"] * g["p_win"].fillna(0)).sum()) / scale.get(aid, np.nan)
            names = deal_names(
                g.sort_values("amount", ascending=False),
                currency=currency,
                extra=lambda d: (
                    f"{str(d.stage or 'open').replace('_', ' ')} for {d.days_in_stage} days, "
                    f"usually {d.usual_days_in_stage:.0f}"
                ),
            )
            n = len(g)
            pts.add(
                aid,
                "stuck",
                worth if np.isfinite(worth) else 0.05,
                f"{n} open deal{'s have' if n != 1 else ' has'} sat in {'their' if n != 1 else 'its'} stage longer "
                f"than usual: {names}. Move {'them' if n != 1 else 'it'} on or close {'them' if n != 1 else 'it'} "
                "out.",
            )

    wr = _metric(scorecard, "win_rate_qtd").reindex(agents)
    cov = _metric(scorecard, "pipeline_coverage").reindex(agents)["value"]
    for aid, c in cov[cov.notna() & (cov < s.coverage_low)].items():
        still = max(float(o.at[aid, "quota"] - o.at[aid, "closed_to_date"]), 0.0)
        rate = wr.at[aid, "value"] if np.isfinite(wr.at[aid, "value"]) else _REF_WIN_RATE
        need = max(s.coverage_target - c, 0.0) * still
        pts.add(
            aid,
            "pipeline",
            need * rate / scale.get(aid, np.nan) if scale.get(aid, np.nan) > 0 else 0.05,
            f"Your open pipeline covers {c:.1f}x the {money(still)} still to book this quarter; aim for about "
            f"{s.coverage_target:.0f}x by adding about {money(need)} of new opportunities now.",
        )

    if funnel is not None and len(funnel):
        w = funnel[funnel["weakest"] & (funnel["gap"] <= -s.funnel_gap)]
        labels = (
            _metric(scorecard, "bookings_month")["peer_label"].reindex(w["agent_id"].astype("str")).fillna("your peers")
        )
        for aid, t, a, pr, gap, lab in zip(
            w["agent_id"].astype("str"), w["transition"], w["agent_rate"], w["peer_rate"], w["gap"], labels
        ):
            stage = t.split("->")[0]
            text = (
                f"Your weakest stage is {t.replace('->', ' to ').replace('_', ' ')}: {a:.0%} of your deals move on, "
                f"against {pr:.0%} for {lab}."
            )
            here = deals[(deals["agent_id"] == aid) & (deals["stage"] == stage)] if deals is not None else None
            if here is not None and len(here):
                text += f" Your deals in {stage.replace('_', ' ')} now: {deal_names(here, currency=currency)}."
            else:
                text += " Review the deals you lost there for a common reason."
            value, sc = open_value.get(aid, np.nan), scale.get(aid, np.nan)
            worth = -gap * value / sc if np.isfinite(value) and sc > 0 else -gap * 0.5
            pts.add(aid, "funnel", worth, text)

    weak = wr[wr["percentile"].notna() & (wr["percentile"] < s.win_rate_percentile)]
    for aid, r in weak.iterrows():
        value, sc = open_value.get(aid, np.nan), scale.get(aid, np.nan)
        diff = max(float(r["peer_median"] - r["value"]), 0.0)
        worth = diff * value / sc if np.isfinite(value) and sc > 0 else 0.05
        pts.add(
            aid,
            "win_rate",
            worth,
            f"Your win rate this quarter is {r['value']:.0%}, below most {r['peer_label']} (median "
            f"{r['peer_median']:.0%}).",
        )

    ind = indicators[
        (indicators["direction"] == "down")
        & indicators["entity_id"].astype("str").isin(agents)
        & (indicators["z"].abs() >= s.activity_z)
    ]
    ind = ind.sort_values(["entity_id", "z"]).groupby("entity_id").head(1)
    for aid, i, v, m, z in zip(
        ind["entity_id"].astype("str"), ind["indicator"], ind["value"], ind["history_mean"], ind["z"]
    ):
        unit = "currency" if i == "open_pipeline" else "count"
        worth = _ACTIVITY_WORTH * abs(z)
        if np.isfinite(att.get(aid, np.nan)) and att[aid] >= s.far_above_quota:
            worth = min(worth, 0.001)  # far above quota, a dip in activity is never the first thing to say
        pts.add(
            aid,
            "activity",
            worth,
            f"{indicator_label(i).capitalize()}: {format_value(v, unit, currency=currency)} this month, against "
            f"your usual {format_value(m, unit, currency=currency)} a month.",
        )

    ranked = scorecard[scorecard["percentile"].notna()].sort_values(
        ["agent_id", "percentile"], ascending=[True, False], kind="stable"
    )
    best = ranked.groupby("agent_id").head(1)
    for r in best[best["percentile"] >= s.strength_percentile].itertuples(index=False):
        what = f"your {r.label[0].lower() + r.label[1:]} ({format_value(r.value, r.unit, currency=currency)})"
        others = int(r.n_peers) - 1 if "n_peers" in best and np.isfinite(r.n_peers) else None
        group = str(r.peer_label).removeprefix("all ")  # "agents of your territory", "agents of the company"
        if others and r.percentile >= 100:
            text = f"Strength to build on: {what} is the best of the {others + 1} {group}."
        elif others:
            text = f"Strength to build on: {what} is better than {r.percentile:.0f}% of the {others} other {group}."
        else:
            text = f"Strength to build on: {what} is better than {r.percentile:.0f}% of the other {group}."
        pts.add(r.agent_id, "strength", 0.01, text)

    bm = _metric(scorecard, "bookings_month").reindex(agents)
    for aid, v, m, lab in zip(bm.index, bm["value"].fillna(0.0), bm["peer_median"].astype(float), bm["peer_label"]):
        pts.add(
            aid,
            "bookings",
            0.0,
            f"You booked {money(v)} this month"
            + (f" (the median of {lab} was {money(m)})." if np.isfinite(m) else "."),
        )

    allp = pd.DataFrame(pts.rows, columns=["agent_id", "topic", "severity", "text"])
    allp["severity"] = allp["severity"].fillna(0.0)
    allp = allp.sort_values(["agent_id", "severity"], ascending=[True, False], kind="stable")
    allp["rank"] = allp.groupby("agent_id").cumcount() + 1
    keep = (allp["rank"] <= max_points) & ((allp["severity"] > 0) | (allp["rank"] <= min_points))
    out = allp[keep].reset_index(drop=True)
    for c in ("agent_id", "text", "topic"):
        out[c] = out[c].astype("str")
    return out[list(COACHING_COLUMNS)]


def territory_risks(
    agent_table: pd.DataFrame,
    territory_outlook: pd.DataFrame,
    accounts: pd.DataFrame | None = None,
    *,
    currency: str = "USD",
    p_low: float = 0.3,
    coverage_low: float = 1.0,
    concentration: float = 0.4,
) -> pd.DataFrame:
    """Risks to each territory's quarter, most severe first.

    Rules: the territory's ``p_quota < p_low`` (severity 3); each agent with
    ``p_quota < p_low`` (2); each agent whose pipeline covers less than ``coverage_low``
    times the quota still to book (2); each agent whose bookings trend is falling (1); one
    account bringing more than ``concentration`` of the territory's bookings (1).

    Parameters
    ----------
    agent_table : DataFrame
        :func:`spm_models.insights.scorecard.territory_agent_table`.
    territory_outlook : DataFrame
        ``unique_id, quota, p_quota, expected_shortfall`` per territory.
    accounts : DataFrame, optional
        Key accounts (``territory_id, account_name, share``), the largest first.

    Returns
    -------
    DataFrame
        ``territory_id, severity, risk``.
    """
    money = lambda v: format_value(v, "currency", currency=currency)  # noqa: E731
    rows: list[pd.DataFrame] = []

    def add(terr, sev, text):
        terr = np.asarray(terr, dtype=object)
        if len(terr):
            rows.append(
                pd.DataFrame({"territory_id": terr, "severity": float(sev), "risk": np.asarray(text, dtype=object)})
            )

    t = territory_outlook[territory_outlook["p_quota"].notna() & (territory_outlook["p_quota"] < p_low)]
    add(
        t["unique_id"],
        3,
        [
            f"The territory has a {p:.0%} chance of making its quarter quota of {money(q)}; expected shortfall "
            f"{money(s)}."
            for p, q, s in zip(t["p_quota"], t["quota"], t["expected_shortfall"])
        ],
    )
    a = agent_table
    low = a[a["p_quota"].notna() & (a["p_quota"] < p_low)]
    add(
        low["territory_id"],
        2,
        [f"{n}: {p:.0%} chance of reaching quota." for n, p in zip(low["agent_name"], low["p_quota"])],
    )
    thin = a[a["pipeline_coverage"].notna() & (a["pipeline_coverage"] < coverage_low)]
    add(
        thin["territory_id"],
        2,
        [
            f"{n}: open pipeline covers only {c:.1f}x the quota still to book."
            for n, c in zip(thin["agent_name"], thin["pipeline_coverage"])
        ],
    )
    fall = a[a["trend"] == "falling"]
    add(
        fall["territory_id"],
        1,
        [
            f"{n}: bookings of the last 3 months are {abs(c):.0%} below the 3 months before."
            for n, c in zip(fall["agent_name"], fall["change"])
        ],
    )
    if accounts is not None and len(accounts):
        top = accounts.sort_values("share", ascending=False).groupby("territory_id").head(1)
        top = top[top["share"] > concentration]
        add(
            top["territory_id"],
            1,
            [
                f"Concentration: {n} brought {s:.0%} of the territory's bookings over the last 12 months."
                for n, s in zip(top["account_name"], top["share"])
            ],
        )
    if not rows:
        return pd.DataFrame(
            {"territory_id": pd.Series(dtype="str"), "severity": pd.Series(dtype=float), "risk": pd.Series(dtype="str")}
        )
    out = pd.concat(rows, ignore_index=True).sort_values(
        ["territory_id", "severity"], ascending=[True, False], kind="stable"
    )
    out["territory_id"] = out["territory_id"].astype("str")
    out["risk"] = out["risk"].astype("str")
    return out.reset_index(drop=True)


def recognition(
    metrics: pd.DataFrame, agents: pd.DataFrame, trend: pd.DataFrame, *, currency: str = "USD", min_closed: int = 5
) -> pd.DataFrame:
    """Awards of the month, one agent each (ties: the lower agent id).

    - *Highest attainment this quarter*: largest ``attainment_qtd``;
    - *Most bookings this month*: largest ``bookings_month`` (above 0);
    - *Best win rate this quarter*: largest ``win_rate_qtd`` among agents with at least
      ``min_closed`` deals closed this quarter;
    - *Strongest momentum*: largest rise of the last 3 months' bookings over the 3 before.

    Returns
    -------
    DataFrame
        ``award, agent_id, agent_name, territory_id, text``.
    """
    a = agents[["agent_id", "agent_name", "territory_id"]].astype("str").set_index("agent_id")
    m = metrics.reindex(a.index)
    tr = trend.set_index(trend["entity_id"].astype("str"))["change"].reindex(a.index)
    rows = []

    def best(series: pd.Series, award: str, text):
        s = series.dropna()
        if not len(s):
            return
        s = s.sort_index().sort_values(ascending=False, kind="stable")
        aid = s.index[0]
        rows.append(
            {
                "award": award,
                "agent_id": aid,
                "agent_name": a.loc[aid, "agent_name"],
                "territory_id": a.loc[aid, "territory_id"],
                "text": text(s.iloc[0]),
            }
        )

    best(m["attainment_qtd"], "Highest attainment this quarter", lambda v: f"{v:.0%} of quota booked so far")
    best(
        m["bookings_month"].where(m["bookings_month"] > 0),
        "Most bookings this month",
        lambda v: f"{format_value(v, 'currency', currency=currency)} booked",
    )
    best(
        m["win_rate_qtd"].where(m["deals_closed_qtd"] >= min_closed),
        "Best win rate this quarter",
        lambda v: f"{v:.0%} of closed deals won (at least {min_closed} closed)",
    )
    best(tr.where(tr > 0), "Strongest momentum", lambda v: f"bookings of the last 3 months up {v:.0%} on the 3 before")
    return pd.DataFrame(rows, columns=["award", "agent_id", "agent_name", "territory_id", "text"]).astype("str")
