"""The deals behind the numbers: open opportunities, the month's wins and losses, stuck deals, deals at risk.

Every function takes canonical tables (opportunities, stage history, accounts) and returns one
tidy frame for every agent at once; reports only filter and draw them.

Open deals
----------
:func:`open_deals` lists every opportunity open at the end of the review day (created by then,
not won or lost by then: :func:`~spm_models.models.pipeline.history.open_at`) with its stage,
age, amount and, from the pipeline model (:mod:`spm_models.models.pipeline.forecast`), the
chance of winning it (``p_win``, at any time), the chance of winning it by the end of the
forecast quarter (``p_win_quarter``) and when a win is expected (``expected_close``: the
median of the win's timing). Its *expected value* is ``amount * p_win``; deals are ranked by
it, per agent and per territory.

Stuck deals
-----------
The usual time in a stage is the median number of days deals spent in it, over the stays
that ended in the window (a stay ends when the deal enters its next stage or closes). A deal
is *stuck* when its days in the current stage exceed ``stuck_factor`` times that median and
at least ``stuck_min_days`` (:class:`~spm_models.insights.settings.CoachingSettings`). Without a
stage history the deal's age is compared with the median age at which deals were won.

Deals at risk (territories)
---------------------------
Open deals at least as large as the territory's median open deal that are stuck, or that have
reached the last two stages (proposal, negotiation; any stage without a stage history) with less
than ``risk_p_win`` chance of being won, largest first.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from spm_models.data.schemas import PIPELINE_STAGES
from spm_models.insights.settings import CoachingSettings
from spm_models.models.pipeline.history import open_at

__all__ = [
    "OPEN_DEAL_COLUMNS",
    "CLOSED_DEAL_COLUMNS",
    "usual_days_in_stage",
    "open_deals",
    "closed_deals",
    "deals_at_risk",
]

OPEN_DEAL_COLUMNS = (
    "opportunity_id",
    "agent_id",
    "territory_id",
    "account_name",
    "stage",
    "created_date",
    "age_days",
    "days_in_stage",
    "usual_days_in_stage",
    "stuck",
    "amount",
    "p_win",
    "p_win_quarter",
    "expected_value",
    "expected_close",
    "rank_agent",
    "rank_territory",
)
CLOSED_DEAL_COLUMNS = (
    "opportunity_id",
    "agent_id",
    "territory_id",
    "account_name",
    "outcome",
    "close_date",
    "amount",
    "last_stage",
    "cycle_days",
)
_OPEN_STAGE = "open (no stage recorded)"


def _day(value: Any) -> pd.Timestamp:
    return pd.Timestamp(value).normalize()


def _dates(series: pd.Series) -> pd.Series:
    return pd.to_datetime(series).dt.normalize()


def _account_names(opportunities: pd.DataFrame, accounts: pd.DataFrame | None) -> pd.Series:
    """Account name of each opportunity (its id where the account table names none; "" without)."""
    if "account_id" not in opportunities:
        return pd.Series("", index=opportunities.index, dtype="str")
    ids = opportunities["account_id"].astype("str").where(opportunities["account_id"].notna(), "")
    if accounts is None or not len(accounts):
        return ids.astype("str")
    names = accounts.set_index(accounts["account_id"].astype("str"))["account_name"].astype("str")
    return ids.map(names).fillna(ids).astype("str")


def _stays(stage_history: pd.DataFrame | None, opportunities: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """Every stay in a stage known at ``as_of``: ``opportunity_id, stage, entered, left`` (NaT: still there)."""
    cols = ["opportunity_id", "stage", "entered", "left"]
    if stage_history is None or not len(stage_history):
        return pd.DataFrame({c: pd.Series(dtype="datetime64[us]" if c in ("entered", "left") else "str") for c in cols})
    h = pd.DataFrame(
        {
            "opportunity_id": stage_history["opportunity_id"].astype("str").to_numpy(),
            "stage": stage_history["stage"].astype("str").str.strip().str.lower().to_numpy(),
            "entered": _dates(stage_history["entered_date"]).to_numpy(),
        }
    )
    h = h[h["entered"] <= as_of].sort_values(["opportunity_id", "entered"], kind="stable")
    nxt = h.groupby("opportunity_id")["entered"].shift(-1)
    o = opportunities.set_index(opportunities["opportunity_id"].astype("str"))
    close = _dates(o["close_date"]).where(o["outcome"].astype("str").isin(["won", "lost"]))
    close = close.where(close <= as_of)
    left = nxt.fillna(h["opportunity_id"].map(close))
    return h.assign(left=left.to_numpy())[cols].reset_index(drop=True)


def usual_days_in_stage(
    stage_history: pd.DataFrame | None, opportunities: pd.DataFrame, *, as_of: Any, window_days: int = 365
) -> pd.Series:
    """Median days deals spent in each stage, over the stays that ended in the ``window_days`` to ``as_of``.

    A stay ends when the deal enters its next stage or is won or lost. Without a stage
    history, one entry :data:`_OPEN_STAGE` holds the median age (days from creation) at which
    the deals won in the window were won.

    Returns
    -------
    Series
        Median days by stage name.
    """
    as_of = _day(as_of)
    start = as_of - pd.Timedelta(days=window_days)
    stays = _stays(stage_history, opportunities, as_of)
    if len(stays):
        done = stays[stays["left"].notna() & (stays["left"] > start)]
        days = (done["left"] - done["entered"]).dt.days
        return days.groupby(done["stage"].to_numpy()).median().astype(float)
    won = opportunities[opportunities["outcome"].astype("str") == "won"]
    close, created = _dates(won["close_date"]), _dates(won["created_date"])
    keep = (close > start) & (close <= as_of)
    med = float((close[keep] - created[keep]).dt.days.median()) if keep.any() else np.nan
    return pd.Series({_OPEN_STAGE: med}, dtype=float)


def open_deals(
    opportunities: pd.DataFrame,
    *,
    as_of: Any,
    territory_of: pd.Series,
    timing: pd.DataFrame | None = None,
    stage_history: pd.DataFrame | None = None,
    accounts: pd.DataFrame | None = None,
    settings: CoachingSettings | None = None,
) -> pd.DataFrame:
    """Every opportunity open at the end of ``as_of``, with its state, chances and rank.

    Parameters
    ----------
    opportunities : DataFrame
        Canonical opportunities (as known at ``as_of``).
    as_of : date-like
        The review's last day.
    territory_of : Series
        Territory id by agent id (agents outside it are left out: not in the review).
    timing : DataFrame, optional
        :meth:`~spm_models.models.pipeline.forecast.PipelineModel.deal_timing` of the open deals
        (``opportunity_id, p_win, p_win_by, expected_close``); without it the chances are missing.
    stage_history, accounts : DataFrame, optional
    settings : CoachingSettings, optional
        ``stuck_factor`` and ``stuck_min_days`` (module docstring).

    Returns
    -------
    DataFrame
        :data:`OPEN_DEAL_COLUMNS`; ``expected_value = amount * p_win``; ``rank_agent`` and
        ``rank_territory`` (1 = largest expected value, then amount) within the agent's and the
        territory's open deals.
    """
    s = settings or CoachingSettings()
    day = _day(as_of)
    opp = opportunities[open_at(opportunities, day).to_numpy()]
    opp = opp[opp["agent_id"].astype("str").isin(territory_of.index)]
    ids = opp["opportunity_id"].astype("str")
    created = _dates(opp["created_date"])
    stays = _stays(stage_history, opportunities, day)
    current = stays[stays["left"].isna()].drop_duplicates("opportunity_id", keep="last").set_index("opportunity_id")
    usual = usual_days_in_stage(stage_history, opportunities, as_of=day)
    if len(stays):
        stage = ids.map(current["stage"]).astype("str").where(ids.isin(current.index), None)
        entered = ids.map(current["entered"]).where(ids.isin(current.index), created.to_numpy())
        typical = stage.map(usual)
    else:
        stage = pd.Series(None, index=opp.index, dtype=object)
        entered = created
        typical = pd.Series(usual.get(_OPEN_STAGE, np.nan), index=opp.index)
    age = (day - created).dt.days.to_numpy()
    in_stage = (day - pd.to_datetime(entered)).dt.days.to_numpy()
    usual_days = typical.to_numpy(dtype=float)
    stuck = np.isfinite(usual_days) & (in_stage > s.stuck_factor * np.nan_to_num(usual_days, nan=np.inf))
    stuck &= in_stage >= s.stuck_min_days
    t = (timing if timing is not None else pd.DataFrame(columns=["opportunity_id"])).copy()
    t = t.set_index(t["opportunity_id"].astype("str")) if len(t) else t
    get = lambda c, dtype=float: (  # noqa: E731
        ids.map(t[c]).to_numpy(dtype=dtype) if c in t else np.full(len(ids), np.nan)
    )
    amount = pd.to_numeric(opp["amount"], errors="coerce").to_numpy(dtype=float)
    p_win = get("p_win")
    out = pd.DataFrame(
        {
            "opportunity_id": ids.to_numpy(),
            "agent_id": opp["agent_id"].astype("str").to_numpy(),
            "territory_id": opp["agent_id"].astype("str").map(territory_of).astype("str").to_numpy(),
            "account_name": _account_names(opp, accounts).to_numpy(),
            "stage": stage.to_numpy(dtype=object),
            "created_date": created.to_numpy(),
            "age_days": age.astype(np.int64),
            "days_in_stage": in_stage.astype(np.int64),
            "usual_days_in_stage": usual_days,
            "stuck": stuck.astype(bool),
            "amount": amount,
            "p_win": p_win,
            "p_win_quarter": get("p_win_by"),
            "expected_value": amount * p_win,
            "expected_close": pd.to_datetime(
                ids.map(t["expected_close"]) if "expected_close" in t else pd.Series(pd.NaT, index=ids.index)
            ).to_numpy(),
        }
    )
    out["stage"] = out["stage"].astype("str").where(out["stage"].notna(), None)
    order = out.sort_values(["expected_value", "amount", "opportunity_id"], ascending=[False, False, True])
    out["rank_agent"] = order.groupby("agent_id").cumcount().reindex(out.index).to_numpy() + 1
    out["rank_territory"] = order.groupby("territory_id").cumcount().reindex(out.index).to_numpy() + 1
    out = out.sort_values(["agent_id", "rank_agent"], kind="stable").reset_index(drop=True)
    return out[list(OPEN_DEAL_COLUMNS)]


def closed_deals(
    opportunities: pd.DataFrame,
    *,
    start: Any,
    end: Any,
    territory_of: pd.Series,
    stage_history: pd.DataFrame | None = None,
    accounts: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The deals won or lost from ``start`` to ``end`` (both included), largest first per agent.

    ``last_stage`` is the last stage the deal reached (where a lost deal was lost);
    ``cycle_days`` the days from creation to the close. Lost deals without a close date cannot
    be placed in a month and are left out.

    Returns
    -------
    DataFrame
        :data:`CLOSED_DEAL_COLUMNS`.
    """
    close = _dates(opportunities["close_date"])
    outcome = opportunities["outcome"].astype("str").str.strip().str.lower()
    keep = outcome.isin(["won", "lost"]) & (close >= _day(start)) & (close <= _day(end))
    keep &= opportunities["agent_id"].astype("str").isin(territory_of.index)
    opp = opportunities[keep.to_numpy()]
    ids = opp["opportunity_id"].astype("str")
    last = pd.Series(dtype=object)
    if stage_history is not None and len(stage_history):
        h = stage_history[stage_history["opportunity_id"].astype("str").isin(set(ids))]
        h = h.assign(_d=_dates(h["entered_date"])).sort_values("_d", kind="stable")
        last = h.groupby(h["opportunity_id"].astype("str"))["stage"].last().astype("str")
    out = pd.DataFrame(
        {
            "opportunity_id": ids.to_numpy(),
            "agent_id": opp["agent_id"].astype("str").to_numpy(),
            "territory_id": opp["agent_id"].astype("str").map(territory_of).astype("str").to_numpy(),
            "account_name": _account_names(opp, accounts).to_numpy(),
            "outcome": outcome[keep].to_numpy(),
            "close_date": close[keep].to_numpy(),
            "amount": pd.to_numeric(opp["amount"], errors="coerce").to_numpy(dtype=float),
            "last_stage": ids.map(last).to_numpy(dtype=object),
            "cycle_days": (close[keep] - _dates(opp["created_date"])).dt.days.to_numpy(),
        }
    )
    out = out.sort_values(["agent_id", "outcome", "amount", "opportunity_id"], ascending=[True, False, False, True])
    return out.reset_index(drop=True)[list(CLOSED_DEAL_COLUMNS)]


def deals_at_risk(deals: pd.DataFrame, *, settings: CoachingSettings | None = None) -> pd.DataFrame:
    """Open deals at risk, per territory, largest first (module docstring), with the reason.

    Parameters
    ----------
    deals : DataFrame
        :func:`open_deals`.

    Returns
    -------
    DataFrame
        The rows of ``deals`` at risk plus ``risk`` (text: why).
    """
    s = settings or CoachingSettings()
    amount = deals["amount"].fillna(0.0)
    median = amount.groupby(deals["territory_id"]).transform("median")
    # early stages are won rarely by nature; a low chance means trouble from the proposal on
    late = deals["stage"].isna() | deals["stage"].isin(PIPELINE_STAGES[-2:])
    low = deals["p_win"].notna() & (deals["p_win"] < s.risk_p_win) & late
    risky = (amount >= median) & (amount > 0) & (deals["stuck"] | low)
    f = deals[risky].copy()
    reasons = []
    for stuck, lo, p, d, u in zip(f["stuck"], low[risky], f["p_win"], f["days_in_stage"], f["usual_days_in_stage"]):
        why = []
        if stuck:
            why.append(f"{d} days in its stage (usually {u:.0f})")
        if lo:
            why.append(f"{p:.0%} chance of winning")
        reasons.append("; ".join(why))
    f["risk"] = pd.Series(reasons, index=f.index, dtype="str")
    f = f.sort_values(["territory_id", "amount", "opportunity_id"], ascending=[True, False, True], kind="stable")
    return f.reset_index(drop=True)
