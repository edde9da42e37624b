"""Fit once, write everything the reports read: the artifacts of one review run.

:func:`build_artifacts` is the only place a model is fitted in a review. It writes one
folder, ``<run>/artifacts/``, holding parquet tables (listed in
:data:`~spm_models.review.artifact_files.TABLES`), the forecast
snapshot of this run (:mod:`spm_models.evaluation.tracking`) and ``run.json`` (provenance: run id,
month and its calendar, settings, package version, data fingerprint, model and fallbacks,
and the P(quota) adjustment learned from past quarters, :mod:`~spm_models.review.recalibration`).
Report kernels only read these files (:mod:`spm_models.review.views`).

The folder is built under a temporary name and renamed into place, so it is complete or
absent. Its *key* hashes the data fingerprint, the month, the settings and the package
version: a run whose artifacts already carry the same key reuses them (no refit), so
re-running a finished month is cheap and gives the same numbers.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from spm_models import __version__
from spm_models.data.dataset import Dataset
from spm_models.data.warehouse import fingerprint
from spm_models.evaluation.quota.probability import quota_for_period
from spm_models.evaluation.tracking import save_snapshot
from spm_models.exceptions import DataError
from spm_models.indicators.regressors import indicator_regressors
from spm_models.indicators.summary import review_leading_indicators
from spm_models.insights import coaching, scorecard
from spm_models.kpi import compute_kpis
from spm_models.kpi.grid import COMPANY
from spm_models.kpi.leads import channel_summary, lead_kpis
from spm_models.models.pipeline.history import open_at
from spm_models.review import headline as hl
from spm_models.review import outlook as ol
from spm_models.review.artifact_files import RUN_FILE, TABLES, read_run_info
from spm_models.review.forecasting import review_forecast
from spm_models.review.incentives import check_plans, plan_tables
from spm_models.review.last_month import last_month_accuracy, prefixed, previous_snapshot
from spm_models.review.profile import DataProfile, data_profile
from spm_models.review.recalibration import BACKTEST_COLUMNS, recalibrate_outlook
from spm_models.review.settings import ReviewConfig

__all__ = ["ARTIFACTS_FORMAT", "artifacts_key", "build_artifacts"]

ARTIFACTS_FORMAT = 4


def artifacts_key(data_fingerprint: str, month: str, config: ReviewConfig) -> str:
    """SHA-256 identifying a run's artifacts: data, month, settings, package version, format."""
    text = json.dumps([data_fingerprint, month, config.key(), __version__, ARTIFACTS_FORMAT])
    return hashlib.sha256(text.encode()).hexdigest()


def _levels(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return pd.concat([f.assign(level=lv) for lv, f in frames.items()], ignore_index=True)


def _entity_maps(agents: pd.DataFrame) -> dict[str, pd.Series]:
    idx = pd.Index(agents["agent_id"].astype("str"))
    return {
        "agent": pd.Series(idx.to_numpy(), index=idx),
        "territory": pd.Series(agents["territory_id"].astype("str").to_numpy(), index=idx),
        "company": pd.Series(COMPANY, index=idx),
    }


def build_artifacts(
    dataset: Dataset,
    *,
    month: str,
    out_dir: str | Path,
    config: ReviewConfig | None = None,
    runs_root: str | Path | None = None,
    data_fingerprint: str | None = None,
    force: bool = False,
    executor: Any = None,
) -> dict:
    """Compute every table the reports of ``month`` read, and write them to ``out_dir``.

    Parameters
    ----------
    dataset : Dataset
        Typed canonical tables (``Warehouse.load()``).
    month : str
        ``YYYY-MM``.
    out_dir : path-like
        The artifacts folder to create (``<reports>/<month>/artifacts``).
    config : ReviewConfig, optional
    runs_root : path-like, optional
        Folder holding earlier runs (``<runs_root>/<YYYY-MM>/artifacts/snapshot``), where last
        month's forecast is looked up; without one it is refitted on the data as of then.
    data_fingerprint : str, optional
        :func:`spm_models.data.warehouse.fingerprint` of ``dataset`` (computed when omitted).
    force : bool
        Rebuild even when ``out_dir`` holds artifacts with the same key.
    executor : optional
        Runs the model choice's backtests and the parts of a fit in parts as its tasks (the
        review's Dask cluster: :class:`~spm_models.review.cluster.ClusterPool`); the artifacts
        are those of a run without it.

    Returns
    -------
    dict
        The run information written to ``run.json`` (``reused`` tells whether existing
        artifacts were kept).

    Raises
    ------
    ConfigError
        Bad month or settings, or a plan book that does not fit the data (every problem listed).
    DataError
        The data cannot support a review (no agents employed, no bookings history).
    """
    config = config or ReviewConfig()
    out = Path(out_dir)
    fp = data_fingerprint or fingerprint(dataset)
    key = artifacts_key(fp, month, config)
    existing = read_run_info(out)
    if existing and existing.get("key") == key and not force and all((out / f"{t}.parquet").is_file() for t in TABLES):
        return {**existing, "reused": True}
    started = datetime.now(UTC)
    cal = ol.review_calendar(month, data_end=ol.data_last_day(dataset), calendar=config.calendar_for(dataset))
    check_plans(config, dataset)  # a plan naming people or measures the data lack: one error, before any work
    work = out.with_name(out.name + f".tmp-{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        info = _build(dataset, cal, config, fp, key, work, Path(runs_root) if runs_root else None, executor)
        info["created_utc"] = started.isoformat(timespec="seconds")
        (work / RUN_FILE).write_text(json.dumps(info, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
        old = out.with_name(out.name + f".old-{os.getpid()}")
        if out.exists():
            os.replace(out, old)
        os.replace(work, out)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return {**info, "reused": False}


def _build(
    dataset: Dataset,
    cal: ol.ReviewCalendar,
    config: ReviewConfig,
    fp: str,
    key: str,
    work: Path,
    runs_root: Path | None,
    executor: Any = None,
) -> dict:
    asof = ol.as_of_dataset(dataset, cal.as_of)
    agents = ol.review_agents(asof["agents"], cal.as_of)
    if agents.empty:
        raise DataError(f"no agent is employed on {cal.as_of.date()}; there is nobody to review")
    terr = asof["territories"].astype({"territory_id": "str", "territory_name": "str"})
    agents = agents.assign(agent_id=agents["agent_id"].astype("str"), territory_id=agents["territory_id"].astype("str"))
    agents = agents.merge(terr[["territory_id", "territory_name"]], on="territory_id", how="left")
    agents["territory_name"] = agents["territory_name"].fillna(agents["territory_id"]).astype("str")
    agents["is_person"] = agents["is_person"].astype(bool) if "is_person" in agents else True
    agents = (
        agents[["agent_id", "agent_name", "territory_id", "territory_name", "is_person"]]
        .sort_values("agent_id")
        .reset_index(drop=True)
    )
    # owners that are not people (unassigned, house accounts) are forecast and counted for their
    # territory and the company, but get no report and are in no peer group, leaderboard or percentile
    people = agents[agents["is_person"]].reset_index(drop=True)
    territories = agents.groupby(["territory_id", "territory_name"], as_index=False).agg(n_agents=("is_person", "sum"))
    territories["n_agents"] = territories["n_agents"].astype(np.int64)  # people: a catch-all owner is not an agent
    maps = _entity_maps(agents)

    months_back = max(config.trend_months, config.history_months + 1, 7)
    k_start = cal.month - pd.DateOffset(months=months_back - 1)
    kpis_m = compute_kpis(
        asof, grain="month", start=min(k_start, cal.forecast_quarter), end=cal.as_of, calendar=cal.calendar
    )
    kpis_q = compute_kpis(
        asof, grain="quarter", start=cal.quarter - pd.DateOffset(months=3), end=cal.as_of, calendar=cal.calendar
    )

    # discovery first: an indicator leading by at least the horizon is offered to the models that take regressors
    started = time.perf_counter()
    leading = review_leading_indicators(asof, seed=config.seed)
    leading_seconds = round(time.perf_counter() - started, 2)
    regressors = indicator_regressors(leading, horizon=cal.h)
    rf = review_forecast(asof, agents, cal, config, regressors=regressors, executor=executor)
    fcs, model, recal = rf.forecasts, rf.agent_model, rf.recalibration
    targets = asof.get("targets")
    closed, quota, outlook, fan, remaining = {}, {}, {}, {}, {}
    for lv, fc in fcs.items():
        if cal.forecast_quarter == cal.quarter:
            rows = kpis_q[(kpis_q["level"] == lv) & (kpis_q["kpi"] == "bookings") & (kpis_q["period"] == cal.quarter)]
            closed[lv] = pd.Series(
                rows["value"].to_numpy(dtype=float), index=rows["entity_id"].astype("str").to_numpy()
            )
        else:
            closed[lv] = pd.Series(dtype=float)
        if len(targets):
            quota[lv] = quota_for_period(
                targets,
                period_start=cal.forecast_quarter,
                period_end=cal.forecast_quarter_end,
                agents=asof["agents"],
                level=lv,
            )
        else:
            quota[lv] = pd.Series(dtype=float)
        quota[lv] = quota[lv].where(quota[lv] > 0)
        raw = ol.quarter_outlook(rf.raw[lv], closed[lv], quota[lv], cal)
        shown = ol.quarter_outlook(fc, closed[lv], quota[lv], cal)
        outlook[lv] = recalibrate_outlook(shown, raw, recal if lv == "agent" else None)
        fan[lv] = ol.cumulative_fan(fc, closed[lv], cal)
        remaining[lv] = (
            outlook[lv].set_index("unique_id")["quota"] - outlook[lv].set_index("unique_id")["closed_to_date"]
        ).clip(lower=0.0)
    recal_rows = rf.recalibration_rows
    has_quota = bool(len(targets) > 0 and quota["company"].notna().any())
    profile = data_profile(
        dataset,
        currency=config.currency,
        has_quota=has_quota,
        has_commission_plan=config.plan_book is not None,
    )
    label = profile.bookings_label

    opp = asof["opportunities"]
    is_open = open_at(opp, cal.as_of)
    open_amt = opp.loc[is_open.to_numpy(), ["agent_id", "amount"]]
    metrics = {}
    for lv, mp in maps.items():
        ent = mp.reindex(open_amt["agent_id"].astype("str").to_numpy()).to_numpy()
        pipe = pd.Series(open_amt["amount"].fillna(0.0).to_numpy(dtype=float)).groupby(ent).sum()
        metrics[lv] = scorecard.entity_metrics(
            kpis_m,
            kpis_q,
            level=lv,
            month=cal.month,
            quarter=cal.quarter,
            open_pipeline=pipe,
            remaining_quota=remaining[lv],
        )
    metrics["agent"] = metrics["agent"].reindex(agents["agent_id"].to_numpy())
    metrics["agent"].index.name = "entity_id"
    metrics = {lv: _supported(m, profile) for lv, m in metrics.items()}

    groups = scorecard.peer_groups(people, min_peers=config.min_peers)
    card = scorecard.agent_scorecard(metrics["agent"], groups, min_peers=config.min_peers)
    trend_from = cal.month - pd.DateOffset(months=config.trend_months - 1)
    bench = scorecard.peer_benchmark(
        kpis_m, groups, kpis=("bookings", "quota", "attainment"), min_peers=config.min_peers
    )
    bench = bench[bench["period"] >= trend_from].reset_index(drop=True)
    indicators = scorecard.indicator_history(kpis_m, month=cal.month, history_months=config.history_months)
    indicators = indicators[indicators["entity_id"].isin(people["agent_id"])]
    if not profile.has_pipeline:  # only won deals: "new opportunities" are wins dated at their creation
        indicators = indicators[~indicators["indicator"].isin(["opportunities_created", "open_pipeline"])]
    indicators = indicators.reset_index(drop=True)
    f_from = cal.as_of - pd.DateOffset(months=config.funnel_months) + pd.Timedelta(days=1)
    counts = scorecard.funnel_counts(opp, asof.get("stage_history"), created_from=f_from, created_to=cal.as_of)
    funnel_share = scorecard.funnel_coverage(counts, opp, created_from=f_from, created_to=cal.as_of)
    funnel = scorecard.funnel_comparison(
        counts[counts["agent_id"].isin(people["agent_id"])], groups, min_peers=config.min_peers
    )
    funnel_ok = bool(np.isfinite(funnel_share) and funnel_share >= 0.5)
    trend = {lv: scorecard.trend_change(kpis_m, month=cal.month, level=lv) for lv in maps}

    uids = fcs["agent"].unique_ids.astype(str)
    plans, comm, awards = plan_tables(asof, cal, fcs["agent"], config, people, currency=label)

    stacked, level_of = prefixed(fcs)
    save_snapshot(
        stacked,
        folder=work / "snapshot",
        model=model,
        config={"month": cal.label, "settings": config.to_dict()},
        seed=config.seed,
        data_range=(None, cal.train_end),
        data_fingerprint=fp,
        level_of=level_of,
    )
    prev, prev_source = previous_snapshot(
        runs_root, cal, dataset, config, fp, work, rf.picks, regressors, executor=executor
    )
    accuracy = last_month_accuracy(prev, kpis_m, month=cal.month)

    terr_table = scorecard.territory_agent_table(metrics["agent"], outlook["agent"], trend["agent"], people)
    accounts = scorecard.key_accounts(
        opp,
        asof.get("accounts"),
        maps["territory"],
        start=cal.as_of - pd.DateOffset(years=1) + pd.Timedelta(days=1),
        end=cal.as_of,
    )
    out_terr = outlook["territory"]
    risks = coaching.territory_risks(terr_table, out_terr, accounts, currency=label)
    weeks = cal.weeks_left
    deals = hl.deal_tables(asof, cal, agents, settings=config.coaching, count_deals=profile.bookings_measure == "deals")
    points = coaching.coaching_points(
        card,
        funnel if funnel_ok else None,
        indicators,
        outlook["agent"],
        currency=label,
        weeks_left=weeks,
        deals=deals["deals_open"],
        settings=config.coaching,
        quarter=cal.quarter_label,
    )
    plan = pd.concat(
        [
            scorecard.plan_comparison(
                kpis_m, level=lv, month=cal.month, months=config.trend_months, calendar=cal.calendar
            ).assign(level=lv)
            for lv in ("company", "territory")
        ],
        ignore_index=True,
    )
    actual_path = (
        _levels(
            {lv: ol.actual_cumulative(opp, mp, start=cal.forecast_quarter, end=cal.as_of) for lv, mp in maps.items()}
        )
        if cal.forecast_quarter <= cal.as_of
        else pd.DataFrame(columns=["unique_id", "date", "cumulative", "level"])
    )
    fb = fcs["agent"].fallback
    tables = {
        "agents": agents,
        "territories": territories,
        "kpis_month": kpis_m[kpis_m["period"] >= trend_from - pd.DateOffset(months=config.history_months)].reset_index(
            drop=True
        ),
        "metrics": _levels({lv: m.reset_index() for lv, m in metrics.items()}),
        "scorecard": card,
        "benchmark": bench,
        "indicators": indicators,
        "leading_indicators": leading,
        "funnel": funnel,
        "outlook": _levels(outlook),
        "quota_backtest": recal_rows if len(recal_rows) else pd.DataFrame(columns=BACKTEST_COLUMNS),
        "fan": _levels(fan),
        "actual_path": actual_path,
        "forecast_weekly": _levels({lv: fc.quantiles for lv, fc in fcs.items()}),
        "fallbacks": fb[fb["fallback"]].reset_index(drop=True),
        "commission": comm,
        "accuracy": accuracy,
        "trend": _levels(trend),
        "territory_agents": terr_table,
        "key_accounts": accounts,
        "risks": risks,
        "leaderboard": scorecard.leaderboard(metrics["agent"], people),
        "recognition": pd.concat(
            [coaching.recognition(metrics["agent"], people, trend["agent"], currency=label), awards], ignore_index=True
        ),
        "plan": plan,
        "coaching": points,
        **_conversion_tables(asof, kpis_m, cal, profile, months=config.trend_months),
        **plans,
        **deals,
        "headline": hl.build_headline(
            kpis_m,
            metrics,
            outlook,
            comm,
            cal=cal,
            quota=quota,
            closed=closed["agent"],
            snapshot=prev,
            runs_root=runs_root,
            raw_agent_forecast=rf.raw["agent"],
            plan=config.commission,
        ),
    }
    for name, frame in tables.items():
        frame.to_parquet(work / f"{name}.parquet", index=False)
    n_fb = int(fb["fallback"].sum())
    return {
        "format": ARTIFACTS_FORMAT,
        "key": key,
        "run_id": f"{cal.label}-{key[:10]}",
        "month": cal.label,
        "calendar": cal.to_dict(),
        "quarter_label": cal.quarter_label,
        "review_quarter_label": cal.review_quarter_label,
        "quarter_closed": cal.quarter_closed,
        "weeks_left": weeks,
        "package_version": __version__,
        "data_fingerprint": fp,
        "data_source": dataset.source,
        "settings": config.to_dict(),
        "model_choice": rf.choice.to_dict() if rf.choice is not None else None,
        "model": {
            **json.loads(json.dumps(rf.describe(), default=str)),
            "n_series": int(len(uids)),
            "n_fallback": n_fb,
        },
        "funnel": {
            "usable": funnel_ok,
            "lost_with_stage_share": None if not np.isfinite(funnel_share) else round(funnel_share, 4),
            "months": config.funnel_months,
        },
        "previous_forecast": prev_source if prev is not None else None,
        "has_quota": has_quota,
        "data": profile.to_dict(),
        "quota_recalibration": recal.to_dict() if recal is not None else None,
        "has_activities": bool(len(asof.get("activities")) > 0),
        "leading_indicators": {"found": int(leading["leading"].sum()), "seconds": leading_seconds},
        "n_agents": int(len(agents)),
        "n_people": int(len(people)),
        "n_territories": int(len(territories)),
    }


def _supported(metrics: pd.DataFrame, profile: DataProfile) -> pd.DataFrame:
    """Scorecard numbers the data cannot support, blanked (and so left out of every table).

    A close-period win rate without dated losses (it would count wins only); the average deal
    size of bookings counted in deals (always one deal); opportunities created when the data
    hold only won deals (they are wins dated at their creation, not new pipeline).
    """
    out = metrics.copy()
    if profile.win_rate_basis != "close":
        out["win_rate_qtd"] = np.nan
    if profile.bookings_measure == "deals":
        out["average_deal_size_qtd"] = np.nan
    if not profile.has_pipeline:
        out["opportunities_created_month"] = np.nan
    return out


def _conversion_tables(
    asof: Dataset, kpis_m: pd.DataFrame, cal: ol.ReviewCalendar, profile: DataProfile, *, months: int
) -> dict[str, pd.DataFrame]:
    """``channels`` (leads by channel, last ``months`` months) and ``cohorts`` (monthly cohort conversion).

    Cohorts are the opportunities created in each month when lost deals are not dated, the leads
    when there are no lost deals at all, and empty when close-period win rates apply.
    """
    start = cal.month - pd.DateOffset(months=months - 1)
    leads, opp = asof.get("leads"), asof["opportunities"]
    channels = (
        channel_summary(leads, opp, spend=asof.get("channel_spend"), created_from=start, created_to=cal.as_of)
        if len(leads)
        else channel_summary(leads.iloc[0:0], opp)
    )
    cols = ["period", "created", "won", "undecided", "conversion"]
    if profile.win_rate_basis == "leads":
        k = lead_kpis(leads, opp, start=start, end=cal.as_of, calendar=cal.calendar)
        k = k[k["segment"] == ""].pivot_table(index="period", columns="kpi", values="value")
        cohorts = pd.DataFrame(
            {
                "period": k.index,
                "created": k["leads_created"].to_numpy(),
                "won": (k["leads_created"] * k["lead_to_win"].fillna(0.0)).round().to_numpy(),
                "undecided": k["leads_undecided"].to_numpy(),
                "conversion": k["lead_to_win"].to_numpy(),
            }
        )
    elif profile.win_rate_basis == "cohort":
        k = kpis_m[(kpis_m["level"] == "company") & (kpis_m["period"] >= start) & (kpis_m["segment"] == "")]
        k = k.pivot_table(index="period", columns="kpi", values="value")
        created = k["opportunities_created"]
        cohorts = pd.DataFrame(
            {
                "period": k.index,
                "created": created.to_numpy(),
                "won": (created * k["cohort_conversion"].fillna(0.0)).round().to_numpy(),
                "undecided": k["cohort_undecided"].to_numpy(),
                "conversion": k["cohort_conversion"].to_numpy(),
            }
        )
    else:
        cohorts = pd.DataFrame({c: pd.Series(dtype="datetime64[us]" if c == "period" else float) for c in cols})
    return {"channels": channels.reset_index(drop=True), "cohorts": cohorts[cols].reset_index(drop=True)}
