"""The company's monthly review as data: what ``monthly_review.ipynb`` shows.

Built from one run's artifacts like the agent and territory views (:mod:`spm_models.review.views`,
whose run cache and helpers it shares): the company against plan, the territories, the
leaderboard, last month's accuracy, the leading indicators, and the biggest movements since last
month (:func:`movements`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from spm_models.review.outlook import accuracy_summary
from spm_models.review.profile import DataProfile
from spm_models.review.views import (
    RunData,
    _Base,
    _base,
    _closed_quarter,
    _headline,
    _level,
    _listed,
    _quota_note,
    _table,
    _when,
    _with_names,
    load_run,
)

__all__ = ["MonthlyView", "monthly_view", "movements"]


@dataclass(frozen=True)
class MonthlyView(_Base):
    """The company's monthly review."""

    company: pd.DataFrame = field(default=None, repr=False)
    plan: pd.DataFrame = field(default=None, repr=False)
    territories: pd.DataFrame = field(default=None, repr=False)
    territory_outlook: pd.DataFrame = field(default=None, repr=False)
    outlook: pd.DataFrame = field(default=None, repr=False)
    fan: pd.DataFrame = field(default=None, repr=False)
    actual_path: pd.DataFrame = field(default=None, repr=False)
    leaderboard: pd.DataFrame = field(default=None, repr=False)
    recognition: pd.DataFrame = field(default=None, repr=False)
    accuracy: pd.DataFrame = field(default=None, repr=False)
    accuracy_by_level: pd.DataFrame = field(default=None, repr=False)
    accuracy_rows: pd.DataFrame = field(default=None, repr=False)
    leading_indicators: pd.DataFrame = field(default=None, repr=False)
    n_agents: int = 0
    n_fallback: int = 0
    quota_note: str = ""
    closed_quarter: pd.DataFrame = field(default=None, repr=False)
    model_choice: dict | None = field(default=None, repr=False)
    model: dict = field(default_factory=dict, repr=False)
    channels: pd.DataFrame = field(default=None, repr=False)
    cohorts: pd.DataFrame = field(default=None, repr=False)
    conversion: tuple[str, float] | None = None
    spend_currency: str = "USD"
    headline: pd.DataFrame = field(default=None, repr=False)
    movements: pd.DataFrame = field(default=None, repr=False)
    territory_movements: pd.DataFrame = field(default=None, repr=False)
    deals_won: pd.DataFrame = field(default=None, repr=False)
    deals_lost: pd.DataFrame = field(default=None, repr=False)

    @property
    def quota(self) -> float:
        return float(self.outlook["quota"].iloc[0]) if len(self.outlook) else float("nan")


def movements(headline: pd.DataFrame, names: pd.Series, *, n: int = 5) -> pd.DataFrame:
    """The largest moves since last month: the ``n`` largest rises and ``n`` largest falls.

    The move is the change of the chance of reaching quota where last month's chance is known
    (``change_p_quota``), else the change of attainment (``attainment_qtd - attainment_qtd_prev``);
    ``name`` from ``names`` (entity id -> name). Rows without a change are left out.
    """
    if headline is None or not len(headline):
        return pd.DataFrame(columns=["entity_id", "name", "move", "change_attainment", "change_p_quota"])
    f = headline.copy()
    f["change_attainment"] = f["attainment_qtd"] - f["attainment_qtd_prev"]
    f["move"] = f["change_p_quota"].where(f["change_p_quota"].notna(), f["change_attainment"])
    f = f[f["move"].notna() & (f["move"] != 0)]
    f["name"] = f["entity_id"].astype("str").map(names).fillna(f["entity_id"]).astype("str")
    up = f[f["move"] > 0].sort_values(["move", "entity_id"], ascending=[False, True]).head(n)
    down = f[f["move"] < 0].sort_values(["move", "entity_id"], ascending=[True, True]).head(n)
    return pd.concat([up, down], ignore_index=True)


def monthly_view(run_dir: str | Path) -> MonthlyView:
    """The company monthly review's data."""
    run = load_run(run_dir)
    terr = _level(run["metrics"], "territory").merge(
        run["territories"], left_on="entity_id", right_on="territory_id", how="left"
    )
    t_out = _level(run["outlook"], "territory").merge(
        run["territories"], left_on="unique_id", right_on="territory_id", how="left"
    )
    base = _base(run, {"run_dir": str(run_dir)})
    profile = run.profile
    return MonthlyView(
        **base,
        company=_level(run["metrics"], "company"),
        plan=_level(run["plan"], "company"),
        territories=terr,
        territory_outlook=t_out,
        outlook=_level(run["outlook"], "company"),
        fan=_level(run["fan"], "company"),
        actual_path=_level(run["actual_path"], "company"),
        leaderboard=run["leaderboard"],
        recognition=run["recognition"],
        accuracy=_level(run["accuracy"], "company"),
        accuracy_by_level=accuracy_summary(run["accuracy"]),
        accuracy_rows=_accuracy_rows(run),
        leading_indicators=run["leading_indicators"],
        n_agents=int(run.info["n_agents"]),
        n_fallback=int(run.info["model"]["n_fallback"]),
        quota_note=_quota_note(run, "company"),
        closed_quarter=_closed_quarter(run, "company", "company"),
        model_choice=run.info.get("model_choice"),
        model=run.info.get("model", {}),
        channels=_when(base["sections"].channels.shown, run.tables.get("channels")),
        cohorts=_when(profile.win_rate_basis in ("cohort", "leads"), run.tables.get("cohorts")),
        conversion=_conversion_card(run, profile),
        spend_currency=str(run.info["settings"]["currency"]),
        headline=_headline(run, "company", "company"),
        movements=_movers(run, "agent"),
        territory_movements=_movers(run, "territory"),
        deals_won=_company_closed(run, "won"),
        deals_lost=_company_closed(run, "lost"),
        links=(("All reports", "index.html"),),
    )


def _movers(run: RunData, level: str) -> pd.DataFrame:
    h = _table(run, "headline")
    if not len(h):
        return movements(h, pd.Series(dtype="str"))
    if level == "agent":
        a = run["agents"]
        people = a[a["is_person"].astype(bool)] if "is_person" in a else a
        names = people.set_index(people["agent_id"].astype("str"))["agent_name"].astype("str")
        h = h[(h["level"] == "agent") & h["entity_id"].astype("str").isin(names.index)]
    else:
        t = run["territories"]
        names = t.set_index(t["territory_id"].astype("str"))["territory_name"].astype("str")
        h = h[h["level"] == "territory"]
        return movements(h, names, n=len(h))
    return movements(h, names, n=_listed(run))


def _company_closed(run: RunData, outcome: str) -> pd.DataFrame:
    f = _table(run, "deals_closed")
    if not len(f):
        return f
    f = f[f["outcome"] == outcome].sort_values(["amount", "opportunity_id"], ascending=[False, True]).head(_listed(run))
    return _with_names(f.reset_index(drop=True), run["agents"])


def _conversion_card(run: RunData, profile: DataProfile) -> tuple[str, float] | None:
    """The company card that stands in for the close-period win rate, when the data need one."""
    cohorts = run.tables.get("cohorts")
    if profile.win_rate_basis not in ("cohort", "leads") or cohorts is None or not len(cohorts):
        return None
    created, won = float(cohorts["created"].sum()), float(cohorts["won"].sum())
    what = "opportunities" if profile.win_rate_basis == "cohort" else "leads"
    return (f"Won by now, of the {what} created in the last 12 months", won / created if created else float("nan"))


def _accuracy_rows(run: RunData) -> pd.DataFrame:
    """Last month's check for the company and each territory, labelled by name."""
    acc = run["accuracy"]
    rows = acc[acc["level"].isin(["territory", "company"])]
    names = run["territories"].set_index("territory_id")["territory_name"]
    label = rows["entity_id"].map(names).fillna("Company").astype("str")
    return rows.assign(label=label.to_numpy()).reset_index(drop=True)
