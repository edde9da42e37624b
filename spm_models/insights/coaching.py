"""Plain-language points derived from the numbers: coaching, territory risks, recognition.

Each statement is produced by a rule on numbers computed elsewhere (scorecard, funnel,
forecast outlook), and quotes those numbers, so a reader can check it against the tables
of the same report. Rules carry a *severity*; the most severe points are shown first.

Coaching rules (per agent; the 2 to 4 most severe are kept)
------------------------------------------------------------
=====================  ===============================================  =======================
topic                  fires when                                       severity
=====================  ===============================================  =======================
``quota_outlook``      a quota exists                                   3 + (0.3 - p) if
                                                                        p < 0.3; 2 if p <= 0.8;
                                                                        1 otherwise
``pipeline``           coverage of the quota still to book < 2          3 if < 1, else 2
``funnel``             weakest stage at least 5 points below peers      2 + points below / 100
``win_rate``           win-rate percentile < 25                         2
``activity``           an indicator at least 1 sd below own history     1.5 + |z| / 2
``strength``           best percentile >= 75                            0.5
``bookings``           always (fallback)                                0
=====================  ===============================================  =======================
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from spm_models.present.format import format_value, indicator_label

__all__ = [
    "coaching_points",
    "territory_risks",
    "recognition",
    "COACHING_COLUMNS",
]

COACHING_COLUMNS = ("agent_id", "rank", "topic", "severity", "text")


def _metric(sc: pd.DataFrame, name: str) -> pd.DataFrame:
    return sc[sc["metric"] == name].set_index("agent_id")


def coaching_points(
    scorecard: pd.DataFrame,
    funnel: pd.DataFrame | None,
    indicators: pd.DataFrame,
    outlook: pd.DataFrame,
    *,
    currency: str = "USD",
    weeks_left: float | None = None,
    max_points: int = 4,
    min_points: int = 2,
) -> pd.DataFrame:
    """Two to four coaching points per agent, most severe first (rules in the module docstring).

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
        p_quota, expected_shortfall``.
    currency : str
    weeks_left : float, optional
        Weeks left in the quarter, quoted in the outlook point.

    Returns
    -------
    DataFrame
        ``agent_id, rank, topic, severity, text``; ``rank`` 1 is the most severe.
    """
    agents = pd.Index(pd.unique(scorecard["agent_id"].astype("str")), name="agent_id")
    money = lambda v: format_value(v, "currency", currency=currency)  # noqa: E731
    parts: list[pd.DataFrame] = []

    def add(ids, topic, severity, texts):
        ids = np.asarray(ids, dtype=object)
        if len(ids):
            parts.append(
                pd.DataFrame(
                    {
                        "agent_id": ids,
                        "topic": topic,
                        "severity": np.broadcast_to(np.asarray(severity, dtype=float), ids.shape),
                        "text": np.asarray(texts, dtype=object),
                    }
                )
            )

    o = outlook.set_index(outlook["unique_id"].astype("str")).reindex(agents)
    has_q = o["quota"].notna() & (o["quota"] > 0) & o["p_quota"].notna()
    ob = o[has_q]
    p = ob["p_quota"].to_numpy(dtype=float)
    left = "" if weeks_left is None else f" in the {weeks_left:.0f} weeks left"
    texts = [
        (
            f"On current form you have about a {pi:.0%} chance of reaching this quarter's quota of {money(q)}: "
            f"expected bookings are {money(e)}, about {money(s)} short on average. Focus on the deals that can "
            f"close{left}."
        )
        if pi < 0.3
        else (
            f"Quota is within reach ({pi:.0%} chance): {money(max(q - c, 0.0))} of the {money(q)} quota is still to "
            f"book{left}."
        )
        if pi <= 0.8
        else (
            f"You are on track, with a {pi:.0%} chance of reaching quota ({money(e)} expected against {money(q)}). "
            "Use the time to build next quarter's pipeline."
        )
        for pi, q, c, e, s in zip(
            p, ob["quota"], ob["closed_to_date"], ob["expected_bookings"], ob["expected_shortfall"]
        )
    ]
    add(ob.index, "quota_outlook", np.where(p < 0.3, 3 + (0.3 - p), np.where(p <= 0.8, 2.0, 1.0)), texts)

    cov = _metric(scorecard, "pipeline_coverage").reindex(agents)
    pipe = cov["value"]
    low = pipe[pipe.notna() & (pipe < 2.0)]
    add(
        low.index,
        "pipeline",
        np.where(low < 1.0, 3.0, 2.0),
        [
            f"Your open pipeline covers {c:.1f}x the quota still to book this quarter; aim for about 3x by adding new "
            "opportunities now."
            for c in low
        ],
    )

    if funnel is not None and len(funnel):
        w = funnel[funnel["weakest"] & (funnel["gap"] <= -0.05)]
        labels = (
            _metric(scorecard, "bookings_month")["peer_label"].reindex(w["agent_id"].astype("str")).fillna("your peers")
        )
        add(
            w["agent_id"].astype("str"),
            "funnel",
            2 + (-w["gap"].to_numpy()),
            [
                f"Your weakest stage is {t.replace('->', ' to ').replace('_', ' ')}: {a:.0%} of your deals move on, "
                f"against {pr:.0%} for {lab}. "
                "Review the deals you lost there for a common reason."
                for t, a, pr, lab in zip(w["transition"], w["agent_rate"], w["peer_rate"], labels)
            ],
        )

    wr = _metric(scorecard, "win_rate_qtd").reindex(agents)
    weak = wr[wr["percentile"].notna() & (wr["percentile"] < 25)]
    add(
        weak.index,
        "win_rate",
        2.0,
        [
            f"Your win rate this quarter is {v:.0%}, below most {lab} (median {m:.0%})."
            for v, m, lab in zip(weak["value"], weak["peer_median"], weak["peer_label"])
        ],
    )

    ind = indicators[(indicators["direction"] == "down") & indicators["entity_id"].astype("str").isin(agents)]
    ind = ind.sort_values(["entity_id", "z"]).groupby("entity_id").head(1)
    add(
        ind["entity_id"].astype("str"),
        "activity",
        1.5 + ind["z"].abs().to_numpy() / 2,
        [
            f"{indicator_label(i).capitalize()}: "
            f"{format_value(v, 'currency' if i == 'open_pipeline' else 'count', currency=currency)} this month, "
            "against your usual "
            f"{format_value(m, 'currency' if i == 'open_pipeline' else 'count', currency=currency)} a month."
            for i, v, m in zip(ind["indicator"], ind["value"], ind["history_mean"])
        ],
    )

    ranked = scorecard[scorecard["percentile"].notna()].sort_values(
        ["agent_id", "percentile"], ascending=[True, False], kind="stable"
    )
    best = ranked.groupby("agent_id").head(1)
    best = best[best["percentile"] >= 75]
    add(
        best["agent_id"].astype("str"),
        "strength",
        0.5,
        [
            f"Strength to build on: your {lab[0].lower() + lab[1:]} "
            f"({format_value(v, u, currency=currency, digits=0)}) is better than {pc:.0f}% of {pl}."
            for lab, v, u, pc, pl in zip(
                best["label"], best["value"], best["unit"], best["percentile"], best["peer_label"]
            )
        ],
    )

    bm = _metric(scorecard, "bookings_month").reindex(agents)
    add(
        bm.index,
        "bookings",
        0.0,
        [
            f"You booked {money(v)} this month" + (f" (the median of {lab} was {money(m)})." if np.isfinite(m) else ".")
            for v, m, lab in zip(bm["value"].fillna(0.0), bm["peer_median"].astype(float), bm["peer_label"])
        ],
    )

    allp = (
        pd.concat(parts, ignore_index=True)
        if parts
        else pd.DataFrame(columns=["agent_id", "topic", "severity", "text"])
    )
    allp = allp.sort_values(["agent_id", "severity"], ascending=[True, False], kind="stable")
    allp["rank"] = allp.groupby("agent_id").cumcount() + 1
    keep = (allp["rank"] <= max_points) & ((allp["severity"] > 0) | (allp["rank"] <= min_points))
    out = allp[keep].reset_index(drop=True)
    out["agent_id"] = out["agent_id"].astype("str")
    out["text"] = out["text"].astype("str")
    out["topic"] = out["topic"].astype("str")
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
