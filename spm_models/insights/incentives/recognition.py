"""Contests and bonuses as recognition: standings for the leaderboard, awards for the review.

:func:`contest_standings` ranks every participant of each contest the run evaluates (contests
ending in its last settled quarter, ``final``, or in the forecast quarter, ``in progress``): the
value so far, the rank so far (ties share the best rank), the prize so far (the contest's rule
applied to the standings now) and, with scenarios, the expected prize and the chance of any
prize. :func:`incentive_awards` turns them and the bonus lines into award rows shaped like
:func:`spm_models.insights.coaching.recognition`'s: contest winners (final) or leaders (in
progress), and the people who reached the top step of an attainment bonus so far.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from spm_models.insights.incentives.context import BookRun
from spm_models.insights.incentives.engine import QuarterResult
from spm_models.insights.incentives.plan import AttainmentBonus
from spm_models.present.format import format_value

__all__ = ["contest_standings", "incentive_awards", "STANDINGS_COLUMNS"]

STANDINGS_COLUMNS = [
    "contest_id",
    "contest",
    "period",
    "status",
    "window_start",
    "window_end",
    "measure",
    "agent_id",
    "value_to_date",
    "rank_to_date",
    "prize_to_date",
    "prize_expected",
    "p_prize",
]


def _standings(run: BookRun, now: QuarterResult, scen: QuarterResult | None, status: str) -> list[pd.DataFrame]:
    out = []
    cal = run.context.calendar
    for c in run.book.contests:
        idx = np.flatnonzero(
            ((now.lines["component_type"] == "contest") & (now.lines["component_id"] == c.id)).to_numpy()
        )
        if not len(idx):
            continue
        v = now.values[idx, 0]
        rank = rankdata(-np.nan_to_num(v, nan=-np.inf), method="min").astype(int)
        out.append(
            pd.DataFrame(
                {
                    "contest_id": c.id,
                    "contest": c.label,
                    "period": cal.quarter_label(now.quarter_start),
                    "status": status,
                    "window_start": c.start,
                    "window_end": c.end,
                    "measure": now.lines["measure"].iloc[idx].to_numpy(),
                    "agent_id": now.lines["agent_id"].iloc[idx].astype("str").to_numpy(),
                    "value_to_date": v,
                    "rank_to_date": rank,
                    "prize_to_date": now.amounts[idx, 0],
                    "prize_expected": scen.amounts[idx].mean(axis=1) if scen is not None else now.amounts[idx, 0],
                    "p_prize": (scen.amounts[idx] > 0).mean(axis=1)
                    if scen is not None
                    else (now.amounts[idx, 0] > 0).astype(float),
                }
            )
        )
    return out


def contest_standings(run: BookRun) -> pd.DataFrame:
    """Every participant of the contests ending in the last settled or the forecast quarter
    (module docstring; :data:`STANDINGS_COLUMNS`), best first."""
    frames = []
    if run.last_settled is not None:
        frames += _standings(run, run.last_settled, None, "final")
    if run.to_date is not None:
        frames += _standings(run, run.to_date, run.expected, "in progress")
    if not frames:
        return pd.DataFrame(
            {c: pd.Series(dtype="str" if c in ("agent_id", "contest") else float) for c in STANDINGS_COLUMNS}
        )
    out = pd.concat(frames, ignore_index=True).sort_values(["period", "contest_id", "rank_to_date", "agent_id"])
    for c in ("contest_id", "contest", "period", "status", "measure", "agent_id"):
        out[c] = out[c].astype("str")
    return out.reset_index(drop=True)


def _value(v: float, measure: str, currency: str) -> str:
    m = measure.partition(":")[0]
    if m == "win_rate":
        return format_value(v, "ratio")
    if m in ("bookings", "margin", "product_bookings"):
        return format_value(v, "currency", currency=currency)
    return format_value(v, "count")


def incentive_awards(
    run: BookRun, standings: pd.DataFrame, agents: pd.DataFrame, *, month_end: pd.Timestamp, currency: str = "USD"
) -> pd.DataFrame:
    """Award rows (``award, agent_id, agent_name, territory_id, text``) from contests and bonuses.

    - *Contest winner: <contest>*, each prize winner of a contest that ended in the month ending
      ``month_end``;
    - *Leads <contest>*, the leader(s) so far of a contest in progress;
    - *<bonus>: top step reached*, everyone whose bookings so far in the forecast quarter reach
      the top step of an attainment bonus (at most five, highest attainment first).
    """
    a = agents.assign(agent_id=agents["agent_id"].astype("str")).drop_duplicates("agent_id").set_index("agent_id")
    rows = []
    month_start = month_end.to_period("M").start_time
    for (_, status), g in standings.groupby(["contest_id", "status"], sort=False):
        label = str(g["contest"].iloc[0])
        end = pd.Timestamp(g["window_end"].iloc[0])
        if status == "final" and month_start <= end <= month_end:
            for r in g[g["prize_to_date"] > 0].itertuples():
                prize = format_value(r.prize_to_date, "currency", currency=currency)
                rows.append(
                    (
                        f"Contest winner: {label}",
                        r.agent_id,
                        f"place {r.rank_to_date}, {prize} prize",
                        r.value_to_date,
                        r,
                    )
                )
        elif status == "in progress" and end > month_end:
            best = g[(g["rank_to_date"] == 1) & (g["value_to_date"] > 0)]
            for r in best.itertuples():
                rows.append((f"Leads {label}", r.agent_id, f"so far, to {end.date()}", r.value_to_date, r))
    out = []
    for award, aid, text, value, r in rows:
        what = _value(value, r.measure, currency)
        out.append((award, aid, f"{what}: {text}"))
    if run.to_date is not None:
        lines = run.to_date.lines
        for plan in run.book.plans:
            for comp in plan.components:
                if not isinstance(comp, AttainmentBonus):
                    continue
                idx = np.flatnonzero(((lines["plan_id"] == plan.id) & (lines["component_id"] == comp.id)).to_numpy())
                q = lines["quota"].to_numpy()[idx]
                with np.errstate(invalid="ignore", divide="ignore"):
                    att = np.where(q > 0, run.to_date.values[idx, 0] / np.where(q > 0, q, 1.0), np.nan)
                top = comp.steps[-1].at
                hit = [(att[k], i) for k, i in enumerate(idx) if att[k] >= top - 1e-9]
                for at, i in sorted(hit, key=lambda t: -t[0])[:5]:
                    out.append(
                        (f"{comp.label}: top step reached", str(lines["agent_id"].iloc[i]), f"{at:.0%} of quota")
                    )
    frame = pd.DataFrame(out, columns=["award", "agent_id", "text"])
    frame["agent_name"] = frame["agent_id"].map(a["agent_name"].astype("str")).fillna("")
    frame["territory_id"] = frame["agent_id"].map(a["territory_id"].astype("str")).fillna("")
    return frame[["award", "agent_id", "agent_name", "territory_id", "text"]].astype("str").reset_index(drop=True)
