"""What a page leads with: the headline numbers, how each moved since last month, and the deals.

Built once per run by :func:`~spm_models.review.artifacts.build_artifacts` (these functions only
arrange numbers computed by tested functions elsewhere) into four artifacts:

``headline``
    Per level and entity: attainment of the review quarter and the gap to its quota now and at
    the end of last month; the chance of reaching the forecast quarter's quota, its median
    total and (agents, with a plan) the expected payout now and last month; what it takes to
    reach the next commission tier (:func:`spm_models.insights.commission.next_tier`).
``deals_open``, ``deals_closed``, ``deals_risk``
    :mod:`spm_models.insights.deals`: open deals ranked by expected value with the pipeline
    model's chances, the month's wins and losses, deals at risk.

Changes since last month
------------------------
Attainment and the gap come from bookings, so they are always exact: bookings of the review
quarter up to the end of last month (nothing when last month closed the previous quarter).
The chance of quota, the median total and the payout of last month are those of last month's
review when its artifacts are in the reports folder and forecast the same quarter
(``change_basis = "last month's review"``). Otherwise they come from the forecast made as of
last month (:func:`~spm_models.review.artifacts`'s previous snapshot, refitted on the data as
they stood): it is the model's own, not recalibrated, so the change is measured between the
model's own numbers of both months (``p_quota_raw`` now against last month's), never between
two methods (``change_basis = "the model's own, both months"``). A quarter-end review's
forecast quarter had no forecast last month: no change is shown for it (``change_basis = ""``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from spm_models.insights.commission import CommissionPlan, expected_payout, next_tier
from spm_models.models.forecast import Forecast
from spm_models.review import outlook as ol

__all__ = ["HEADLINE_COLUMNS", "headline_table", "bookings_by_month_end", "previous_outlook", "LAST_REVIEW", "OWN"]

LAST_REVIEW = "last month's review"
OWN = "the model's own, both months"
HEADLINE_COLUMNS = (
    "level",
    "entity_id",
    "bookings_qtd",
    "bookings_qtd_prev",
    "quota_qtd",
    "attainment_qtd",
    "attainment_qtd_prev",
    "gap",
    "gap_prev",
    "p_quota",
    "p_quota_prev",
    "change_p_quota",
    "median_bookings",
    "median_bookings_prev",
    "expected_payout",
    "expected_payout_prev",
    "change_payout",
    "change_basis",
    "next_attainment",
    "to_next_tier",
    "rate_now",
    "rate_next",
)


def bookings_by_month_end(kpis_month: pd.DataFrame, *, level: str, start: pd.Timestamp, end: pd.Timestamp) -> pd.Series:
    """Bookings per entity of ``level`` over the months from ``start`` to ``end`` (0 when ``end < start``)."""
    k = kpis_month[
        (kpis_month["level"] == level)
        & (kpis_month["kpi"] == "bookings")
        & (kpis_month["segment"] == "")
        & (kpis_month["period"] >= start)
        & (kpis_month["period"] <= end)
    ]
    return k.groupby(k["entity_id"].astype("str"))["value"].sum()


def previous_outlook(
    previous: Forecast | None,
    level_of: dict[str, str] | None,
    *,
    cal: ol.ReviewCalendar,
    closed_prev: dict[str, pd.Series],
    quota: dict[str, pd.Series],
    plan: CommissionPlan | None,
) -> dict[str, pd.DataFrame]:
    """Last month's outlook of this review's forecast quarter, per level, from its forecast draws.

    ``previous`` is the stacked forecast of last month (ids ``<level>:<id>``). Returns level ->
    ``unique_id, p_quota, median_bookings, expected_payout`` (payout for agents with a plan);
    empty when last month forecast another quarter or there is no forecast.
    """
    if previous is None or not level_of:
        return {}
    pcal = ol.review_calendar(f"{cal.previous_month:%Y-%m}", data_end=cal.as_of, calendar=cal.calendar)
    if pcal.forecast_quarter != cal.forecast_quarter:
        return {}
    out = {}
    for lv in ("agent", "territory", "company"):
        ids = [u for u, v in level_of.items() if v == lv and u in set(previous.unique_ids.astype(str))]
        if not ids:
            continue
        fc = previous.select(ids)
        bare = pd.Index([u.split(":", 1)[1] for u in ids])
        closed = closed_prev.get(lv, pd.Series(dtype=float)).reindex(bare).fillna(0.0)
        q = quota.get(lv, pd.Series(dtype=float)).reindex(bare)
        closed.index, q.index = pd.Index(ids), pd.Index(ids)
        o = ol.quarter_outlook(fc, closed, q, pcal)
        frame = pd.DataFrame(
            {
                "unique_id": bare.astype("str"),
                "p_quota": o["p_quota"].to_numpy(dtype=float),
                "median_bookings": o["median_bookings"].to_numpy(dtype=float),
                "expected_payout": np.nan,
            }
        )
        if lv == "agent" and plan is not None:
            draws = ol.final_bookings_draws(fc, closed, pcal)
            pay = expected_payout(ids, draws, q.to_numpy(dtype=float), plan)
            frame["expected_payout"] = pay["expected_payout"].to_numpy()
        out[lv] = frame
    return out


def last_review_outlook(runs_root: Path | None, cal: ol.ReviewCalendar) -> dict[str, pd.DataFrame]:
    """Last month's review's own outlook and payout of the same forecast quarter, per level ({} when none)."""
    if runs_root is None:
        return {}
    folder = runs_root / f"{cal.previous_month:%Y-%m}" / "artifacts"
    try:
        import json

        info = json.loads((folder / "run.json").read_text(encoding="utf-8"))
        if info.get("quarter_label") != cal.quarter_label:
            return {}
        o = pd.read_parquet(folder / "outlook.parquet")
        comm = pd.read_parquet(folder / "commission.parquet")
    except (OSError, ValueError):
        return {}
    pay = comm.set_index(comm["unique_id"].astype("str"))["expected_payout"] if len(comm) else pd.Series(dtype=float)
    out = {}
    for lv, g in o.groupby("level"):
        ids = g["unique_id"].astype("str")
        out[str(lv)] = pd.DataFrame(
            {
                "unique_id": ids.to_numpy(),
                "p_quota": g["p_quota"].to_numpy(dtype=float),
                "median_bookings": g["median_bookings"].to_numpy(dtype=float),
                "expected_payout": ids.map(pay).to_numpy(dtype=float) if lv == "agent" else np.nan,
            }
        )
    return out


def headline_table(
    metrics: dict[str, pd.DataFrame],
    outlook: dict[str, pd.DataFrame],
    commission: pd.DataFrame,
    *,
    bookings_prev: dict[str, pd.Series],
    previous: dict[str, pd.DataFrame],
    basis: str,
    raw_payout: pd.Series | None = None,
    plan: CommissionPlan | None = None,
) -> pd.DataFrame:
    """The headline numbers of every entity and their change since last month (module docstring).

    Parameters
    ----------
    metrics : dict
        Level -> :func:`spm_models.insights.scorecard.entity_metrics` (index ``entity_id``).
    outlook : dict
        Level -> the forecast quarter's outlook (``p_quota``, ``p_quota_raw``, ``median_bookings``).
    commission : DataFrame
        Agents' expected payout of the forecast quarter (empty without a plan).
    bookings_prev : dict
        Level -> bookings of the review quarter up to the end of last month.
    previous : dict
        Level -> last month's ``p_quota, median_bookings, expected_payout``
        (:func:`last_review_outlook` or :func:`previous_outlook`).
    basis : str
        :data:`LAST_REVIEW`, :data:`OWN` or "" (no comparable forecast last month).
    raw_payout : Series, optional
        Agents' expected payout on the model's own draws (compared when ``basis`` is :data:`OWN`).
    plan : CommissionPlan, optional
        For the next tier (agents).

    Returns
    -------
    DataFrame
        :data:`HEADLINE_COLUMNS`; ``gap = max(quota - booked, 0)``; ``change_p_quota`` and
        ``change_payout`` in the same method both months (NaN without a comparable figure).
    """
    parts = []
    pay = commission.set_index(commission["unique_id"].astype("str")) if len(commission) else None
    for lv, m in metrics.items():
        ids = pd.Index(m.index.astype("str"), name="entity_id")
        o = outlook[lv].set_index(outlook[lv]["unique_id"].astype("str")).reindex(ids)
        prev = previous.get(lv)
        prev = prev.set_index("unique_id").reindex(ids) if prev is not None else pd.DataFrame(index=ids)
        quota = m["quota_qtd"].to_numpy(dtype=float)
        booked = m["bookings_qtd"].fillna(0.0).to_numpy(dtype=float)
        booked_prev = bookings_prev.get(lv, pd.Series(dtype=float)).reindex(ids).fillna(0.0).to_numpy(dtype=float)
        has_q = np.isfinite(quota) & (quota > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            att_prev = np.where(has_q, booked_prev / np.where(has_q, quota, 1.0), np.nan)
        p_now = o["p_quota"].to_numpy(dtype=float)
        p_prev = prev["p_quota"].to_numpy(dtype=float) if "p_quota" in prev else np.full(len(ids), np.nan)
        p_base = o["p_quota_raw"].to_numpy(dtype=float) if basis == OWN and "p_quota_raw" in o else p_now
        f = pd.DataFrame(
            {
                "level": lv,
                "entity_id": ids.to_numpy(),
                "bookings_qtd": booked,
                "bookings_qtd_prev": booked_prev,
                "quota_qtd": quota,
                "attainment_qtd": m["attainment_qtd"].to_numpy(dtype=float),
                "attainment_qtd_prev": att_prev,
                "gap": np.where(has_q, np.maximum(quota - booked, 0.0), np.nan),
                "gap_prev": np.where(has_q, np.maximum(quota - booked_prev, 0.0), np.nan),
                "p_quota": p_now,
                "p_quota_prev": p_prev,
                "change_p_quota": p_base - p_prev,
                "median_bookings": o["median_bookings"].to_numpy(dtype=float),
                "median_bookings_prev": prev["median_bookings"].to_numpy(dtype=float)
                if "median_bookings" in prev
                else np.nan,
            }
        )
        # an agent already at or above quota has reached it: 100% now, and the change is what it is
        reached = o["reached"].fillna(False).astype(bool).to_numpy() if "reached" in o else np.zeros(len(ids), bool)
        f.loc[reached, "change_p_quota"] = 1.0 - p_prev[reached]
        if lv == "agent" and pay is not None:
            now = pay["expected_payout"].reindex(ids).to_numpy(dtype=float)
            base = raw_payout.reindex(ids).to_numpy(dtype=float) if basis == OWN and raw_payout is not None else now
            f["expected_payout"] = now
            f["expected_payout_prev"] = (
                prev["expected_payout"].to_numpy(dtype=float) if "expected_payout" in prev else np.nan
            )
            f["change_payout"] = base - f["expected_payout_prev"].to_numpy(dtype=float)
        else:
            f["expected_payout"] = f["expected_payout_prev"] = f["change_payout"] = np.nan
        if lv == "agent" and plan is not None:
            # the next tier of the forecast quarter (at a quarter end: the new quarter, nothing booked yet)
            booked_ahead = o["closed_to_date"].fillna(0.0).to_numpy(dtype=float)
            nt = next_tier(booked_ahead, o["quota"].to_numpy(dtype=float), plan)
            f["next_attainment"], f["to_next_tier"] = nt["next_attainment"].to_numpy(), nt["to_next"].to_numpy()
            f["rate_now"], f["rate_next"] = nt["rate_now"].to_numpy(), nt["rate_next"].to_numpy()
        else:
            f["next_attainment"] = f["to_next_tier"] = f["rate_now"] = f["rate_next"] = np.nan
        f["change_basis"] = basis if np.isfinite(p_prev).any() or f["expected_payout_prev"].notna().any() else ""
        parts.append(f)
    out = pd.concat(parts, ignore_index=True)
    out["change_basis"] = out["change_basis"].astype("str")
    return out[list(HEADLINE_COLUMNS)]


def deal_tables(
    asof,
    cal: ol.ReviewCalendar,
    agents: pd.DataFrame,
    *,
    settings,
    count_deals: bool = False,
) -> dict[str, pd.DataFrame]:
    """``deals_open``, ``deals_closed`` (the review month) and ``deals_risk`` of a review.

    The pipeline model (:func:`~spm_models.models.pipeline.forecast.fit_pipeline_model`, weekly,
    the review's fiscal quarters) is fitted once on the data as of the review day and gives each
    open deal its chance of being won, by the end of the forecast quarter and at any time, and
    when. Deals created after the model's last full week count as created at its end. Without
    closed deals to learn from the chances are missing. ``count_deals``: bookings are counted in
    deals, so every deal's amount is one.
    """
    from spm_models.exceptions import DataError
    from spm_models.insights.deals import closed_deals, deals_at_risk, open_deals
    from spm_models.models.pipeline.history import open_at

    opp = asof["opportunities"]
    if count_deals:
        opp = opp.assign(amount=1.0)
    history = asof.get("stage_history")
    history = history if history is not None and len(history) else None
    territory_of = pd.Series(agents["territory_id"].astype("str").to_numpy(), index=agents["agent_id"].astype("str"))
    timing = None
    try:
        from spm_models.models.pipeline.forecast import fit_pipeline_model

        model = fit_pipeline_model(
            opp, history, as_of=cal.as_of, freq="W-MON", fiscal_year_start=cal.calendar.fiscal_year_start
        )
        now_open = opp[open_at(opp, cal.as_of).to_numpy()]
        created = pd.to_datetime(now_open["created_date"]).clip(upper=model.as_of)
        timing = model.deal_timing(now_open.assign(created_date=created), h=52, until=cal.forecast_quarter_end)
    except DataError:
        timing = None
    accounts = asof.get("accounts")
    deals = open_deals(
        opp,
        as_of=cal.as_of,
        territory_of=territory_of,
        timing=timing,
        stage_history=history,
        accounts=accounts,
        settings=settings,
    )
    won_lost = closed_deals(
        opp, start=cal.month, end=cal.as_of, territory_of=territory_of, stage_history=history, accounts=accounts
    )
    return {"deals_open": deals, "deals_closed": won_lost, "deals_risk": deals_at_risk(deals, settings=settings)}


def build_headline(
    kpis_month: pd.DataFrame,
    metrics: dict[str, pd.DataFrame],
    outlook: dict[str, pd.DataFrame],
    commission: pd.DataFrame,
    *,
    cal: ol.ReviewCalendar,
    quota: dict[str, pd.Series],
    closed: pd.Series,
    snapshot=None,
    runs_root: Path | None = None,
    raw_agent_forecast: Forecast | None = None,
    plan: CommissionPlan | None = None,
) -> pd.DataFrame:
    """The ``headline`` artifact: :func:`headline_table` with last month's figures found as the
    module docstring says (last month's review, else the forecast as of last month, else none)."""
    levels = list(metrics)
    booked_prev = {
        lv: bookings_by_month_end(kpis_month, level=lv, start=cal.quarter, end=cal.previous_month) for lv in levels
    }
    previous, basis = last_review_outlook(runs_root, cal), LAST_REVIEW
    if not previous and snapshot is not None:
        closed_prev = {
            lv: bookings_by_month_end(kpis_month, level=lv, start=cal.forecast_quarter, end=cal.previous_month)
            for lv in levels
        }
        previous = previous_outlook(
            snapshot.forecast, snapshot.level_of, cal=cal, closed_prev=closed_prev, quota=quota, plan=plan
        )
        basis = OWN
    raw_payout = None
    if basis == OWN and previous and plan is not None and raw_agent_forecast is not None:
        uids = raw_agent_forecast.unique_ids.astype(str)
        draws = ol.final_bookings_draws(raw_agent_forecast, closed, cal)
        q = quota["agent"].reindex(uids).to_numpy(dtype=float)
        raw = expected_payout(uids, draws, q, plan, closed_to_date=closed.reindex(uids).fillna(0.0).to_numpy())
        raw_payout = raw.set_index("unique_id")["expected_payout"]
    return headline_table(
        metrics,
        outlook,
        commission,
        bookings_prev=booked_prev,
        previous=previous,
        basis=basis if previous else "",
        raw_payout=raw_payout,
        plan=plan,
    )
