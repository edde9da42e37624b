"""What a report notebook reads: the run's artifacts, cut to one subject.

A report kernel calls one function here (:func:`agent_view`, :func:`territory_view` or
:func:`monthly_view`) and gets a frozen view holding only the rows it may show. In
particular an :class:`AgentView` holds the agent's own rows and anonymous peer statistics,
never another agent's name, id or numbers, so an agent report cannot leak a colleague's
data whatever its cells do.

Every view also says what the data hold (:mod:`spm_models.review.profile`): ``sections`` says of
each optional section whether it is shown and, if not, why; the parts of a section the data
do not support are ``None``, and the render and plot helpers draw nothing for them. ``currency``
is the bookings label: the currency, or "deals" when bookings are counted in deals.

Artifacts are read once per process and kept (:func:`load_run`); the review's fork server
calls :func:`preload` before it forks kernels, so every report finds them in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from spm_models import __version__
from spm_models.exceptions import ReportError
from spm_models.insights.commission import CommissionPlan, plan_from_mapping
from spm_models.insights.incentives import PlanBook, plan_book_from_mapping
from spm_models.insights.scorecard import pooled_funnel
from spm_models.review.artifact_files import RUN_FILE, TABLES, read_run_info
from spm_models.review.incentives import plan_payout_curve, plan_rules
from spm_models.review.naming import report_file_name
from spm_models.review.profile import DataProfile, Sections, sections
from spm_models.review.recalibration import quota_note

__all__ = [
    "indicator_lags",
    "RunData",
    "load_run",
    "preload",
    "AgentView",
    "TerritoryView",
    "agent_view",
    "territory_view",
]

_CACHE: dict[str, RunData] = {}
#: Tables added after format 3: a run without them shows no headline changes or deals.
_ADDED = frozenset({"headline", "deals_open", "deals_closed", "deals_risk"})


@dataclass(frozen=True)
class RunData:
    """The artifacts of one run, read into memory."""

    path: Path
    info: dict
    tables: dict[str, pd.DataFrame]

    def __getitem__(self, name: str) -> pd.DataFrame:
        return self.tables[name]

    @property
    def plan(self) -> CommissionPlan | None:
        """The configured commission plan, or None when none is configured."""
        spec = self.info["settings"].get("commission")
        return plan_from_mapping(spec) if spec else None

    @property
    def plan_book(self) -> PlanBook | None:
        """The incentive plans of the run (the plan book, or the ``[commission]`` plan as a book of
        one plan), or None when none is configured."""
        spec = self.info["settings"].get("plans")
        if spec:
            return plan_book_from_mapping(spec, source="the run's settings")
        plan = self.plan
        return PlanBook.from_commission(plan) if plan is not None else None

    @property
    def profile(self) -> DataProfile:
        """What the data hold (runs older than the profile: a money dataset with every section)."""
        data = self.info.get("data")
        if data is None:
            return DataProfile(
                bookings_label=self.info["settings"]["currency"],
                has_quota=bool(self.info.get("has_quota")),
                has_commission_plan=True,
                has_stages=True,
                has_accounts=True,
                has_activities=bool(self.info.get("has_activities")),
            )
        return DataProfile.from_dict(data)

    @property
    def currency(self) -> str:
        """The bookings label: the currency, or "deals"."""
        return self.profile.bookings_label


def load_run(run_dir: str | Path) -> RunData:
    """Read an artifacts folder (cached per process and run key).

    Raises
    ------
    ReportError
        The folder is not a complete set of review artifacts.
    """
    path = Path(run_dir).resolve()
    info = read_run_info(path)
    if info is None:
        raise ReportError(f"{path} holds no review artifacts ({RUN_FILE} is missing); run `spm review` first")
    cached = _CACHE.get(str(path))
    if cached is not None and cached.info.get("key") == info.get("key"):
        return cached
    missing = [t for t in TABLES if t not in _ADDED and not (path / f"{t}.parquet").is_file()]
    if missing:
        raise ReportError(f"the review artifacts in {path} are incomplete: missing {', '.join(missing)}")
    tables = {t: pd.read_parquet(path / f"{t}.parquet") for t in TABLES if (path / f"{t}.parquet").is_file()}
    run = RunData(path, info, tables)
    _CACHE[str(path)] = run
    return run


def preload(run_dir: str | Path) -> None:
    """Read the artifacts now, and index their rows by id, so later views in this process (or
    its forks) find them."""
    _index_tables(load_run(run_dir))


def _provenance(run: RunData, parameters: dict) -> dict:
    """What the report ends with; ``run_dir`` is the run's own folder, so no absolute path is shown."""
    shown = {k: ("artifacts/" if k == "run_dir" else v) for k, v in parameters.items()}
    return {
        "run_id": run.info["run_id"],
        "parameters": shown,
        "package_version": __version__,
        "artifacts_version": run.info["package_version"],
        "data_fingerprint": run.info["data_fingerprint"],
        "data_as_of": run.info["calendar"]["as_of"],
        "model": run.info["model"]["name"],
        "settings_key": run.info["key"][:16],
    }


def _quota_note(run: RunData, level: str) -> str:
    """What the report's chance of reaching quota is (adjusted or not); "" without quotas."""
    if not run.info.get("has_quota"):
        return ""
    return quota_note(run.info.get("quota_recalibration"), level=level)


#: Row positions of the run's tables by id (table's id and column -> (table, id -> positions)),
#: built once by :func:`preload` in the fork server, so a report's kernel finds its rows without
#: scanning every agent's (a scan per table and report grows with the organisation).
_INDEX: dict[tuple[int, str], tuple[pd.DataFrame, dict[str, np.ndarray]]] = {}
#: Columns that name the entity a report is about.
_ID_COLUMNS = ("agent_id", "territory_id", "unique_id", "entity_id")
_NONE = np.array([], dtype=np.intp)


def _index_tables(run: RunData) -> None:
    _INDEX.clear()
    for frame in run.tables.values():
        for column in _ID_COLUMNS:
            if column in frame.columns and len(frame):
                keys = frame[column].astype("str").to_numpy()
                positions = pd.Series(np.arange(len(frame), dtype=np.intp)).groupby(keys, sort=False).indices
                _INDEX[(id(frame), column)] = (frame, positions)


def _rows(frame: pd.DataFrame, column: str, value: str) -> pd.DataFrame:
    """The rows of ``frame`` whose ``column`` (as text) is ``value``, in their order, renumbered."""
    entry = _INDEX.get((id(frame), column))
    if entry is not None and entry[0] is frame:  # the very table that was indexed
        return frame.take(entry[1].get(value, _NONE)).reset_index(drop=True)
    return frame[frame[column].astype("str") == value].reset_index(drop=True)


def indicator_lags(indicators: pd.DataFrame, leading: pd.DataFrame) -> pd.DataFrame:
    """An agent's indicators (``indicator_history`` rows) with the lag by which each leads bookings.

    ``lead_weeks`` is the lag of the leading indicator of the same name in the run's discovery
    (``leading_indicators`` artifact), ``<NA>`` otherwise; ``lead`` says it in words: ``"3
    weeks"``, ``"not found to lead"`` (tested, not a leading indicator) or ``"not tested"`` (not
    a candidate of discovery, such as the open pipeline at the month start).
    """
    found = leading[leading["leading"].astype(bool)] if len(leading) else leading
    lags = pd.Series(found["lag"].to_numpy(), index=found["candidate"].astype("str").to_numpy(), dtype="Int64")
    names = indicators["indicator"].astype("str").to_numpy()
    weeks = pd.array(lags.reindex(names).to_numpy(), dtype="Int64")
    tested = set(leading["candidate"].astype("str")) if len(leading) else set()
    out = indicators.copy()
    out["lead_weeks"] = weeks
    out["lead"] = [
        f"{int(w)} week{'s' if int(w) != 1 else ''}"
        if not pd.isna(w)
        else ("not found to lead" if n in tested else "not tested")
        for n, w in zip(names, weeks)
    ]
    return out


def _level(frame: pd.DataFrame, level: str) -> pd.DataFrame:
    """The rows of one hierarchy level (``agent``, ``territory`` or ``company``)."""
    return frame[frame["level"] == level].reset_index(drop=True)


@dataclass(frozen=True)
class _Base:
    """What every report shows: the run, the month and the two quarters a review can speak of.

    ``quarter`` is the forecast quarter (the one in progress, or at a quarter end the next);
    ``review_quarter`` the quarter of the review month. They differ only at a quarter end
    (``quarter_closed``), when a report shows the closed quarter and the next one's outlook in
    separate, labelled sections.
    """

    run_id: str
    month: str
    quarter: str
    as_of: str
    currency: str
    weeks_left: float
    provenance: dict = field(repr=False)
    review_quarter: str = ""
    quarter_closed: bool = False
    sections: Sections = field(default=None, repr=False)
    has_quota: bool = True
    rate_note: str = ""
    links: tuple[tuple[str, str], ...] = ()
    money: str = "USD"
    previous_month: str = ""
    plan_shown: bool = False

    def shows(self, name: str) -> bool:
        """Whether the optional section ``name`` is shown (see :func:`spm_models.review.profile.sections`)."""
        return getattr(self.sections, name).shown


@dataclass(frozen=True)
class AgentView(_Base):
    """One agent's slice of a run (their rows and anonymous peer statistics only)."""

    agent_id: str = ""
    agent_name: str = ""
    territory_name: str = ""
    scorecard: pd.DataFrame = field(default=None, repr=False)
    trend: pd.DataFrame = field(default=None, repr=False)
    activity: pd.DataFrame = field(default=None, repr=False)
    funnel: pd.DataFrame = field(default=None, repr=False)
    funnel_usable: bool = False
    indicators: pd.DataFrame = field(default=None, repr=False)
    outlook: pd.DataFrame = field(default=None, repr=False)
    fan: pd.DataFrame = field(default=None, repr=False)
    actual_path: pd.DataFrame = field(default=None, repr=False)
    accuracy: pd.DataFrame = field(default=None, repr=False)
    commission: pd.DataFrame = field(default=None, repr=False)
    plan_lines: tuple[str, ...] = ()
    plan_name: str = ""
    payout_curve: pd.DataFrame = field(default=None, repr=False)
    coaching: pd.DataFrame = field(default=None, repr=False)
    fallback_reason: str = ""
    quota_note: str = ""
    closed_quarter: pd.DataFrame = field(default=None, repr=False)
    headline: pd.DataFrame = field(default=None, repr=False)
    deals_open: pd.DataFrame = field(default=None, repr=False)
    deals_won: pd.DataFrame = field(default=None, repr=False)
    deals_lost: pd.DataFrame = field(default=None, repr=False)
    deals_stuck: pd.DataFrame = field(default=None, repr=False)
    n_open_deals: int = 0

    @property
    def quota(self) -> float:
        """Quota of the forecast quarter (NaN when none)."""
        return float(self.outlook["quota"].iloc[0]) if len(self.outlook) else float("nan")

    @property
    def coaching_texts(self) -> tuple[str, ...]:
        return tuple(self.coaching.sort_values("rank")["text"].astype("str"))


def _base(run: RunData, parameters: dict) -> dict:
    i = run.info
    profile = run.profile
    return dict(
        run_id=i["run_id"],
        month=i["month"],
        quarter=i["quarter_label"],
        as_of=i["calendar"]["as_of"],
        currency=run.currency,
        weeks_left=float(i["weeks_left"]),
        provenance=_provenance(run, parameters),
        review_quarter=i.get("review_quarter_label", i["quarter_label"]),
        quarter_closed=bool(i.get("quarter_closed", False)),
        sections=sections(profile),
        has_quota=profile.has_quota,
        rate_note=profile.rate_note,
        money=str(i["settings"]["currency"]),
        previous_month=str(pd.Timestamp(i["calendar"]["previous_month"]).strftime("%Y-%m")),
        plan_shown=bool(sections(profile).commission.shown and run.plan is not None),
    )


def _table(run: RunData, name: str) -> pd.DataFrame:
    """An artifact added after format 3, or an empty frame for older runs."""
    return run.tables.get(name, pd.DataFrame())


def _headline(run: RunData, level: str, entity: str) -> pd.DataFrame:
    h = _table(run, "headline")
    return _level(_rows(h, "entity_id", entity), level) if len(h) else h


def _deals(frame: pd.DataFrame, column: str, value: str, *, rank: str, n: int) -> pd.DataFrame:
    """The first ``n`` rows of one agent's or territory's deals by ``rank``."""
    if not len(frame):
        return frame
    f = _rows(frame, column, value)
    return f.sort_values(rank, kind="stable").head(n).reset_index(drop=True)


def _closed(frame: pd.DataFrame, column: str, value: str, outcome: str, n: int) -> pd.DataFrame:
    """The ``n`` largest deals won (or lost) of one agent or territory in the month."""
    if not len(frame):
        return frame
    f = _rows(frame, column, value)
    f = f[f["outcome"] == outcome]
    return f.sort_values(["amount", "opportunity_id"], ascending=[False, True]).head(n).reset_index(drop=True)


def _listed(run: RunData) -> int:
    return int((run.info["settings"].get("coaching") or {}).get("deals_listed", 5))


def _page(kind: str, name: str, entity: str) -> str:
    """A report's file relative to the run folder, as :func:`spm_models.review.pipeline.plan_reports` names it."""
    folder = {"agent": "agents", "territory": "territories"}[kind]
    return f"{folder}/{report_file_name(name, entity, suffix='', fallback=kind)}.html"


def _with_names(deals: pd.DataFrame, agents: pd.DataFrame) -> pd.DataFrame:
    if not len(deals):
        return deals.assign(agent_name=pd.Series(dtype="str"))
    names = agents.set_index(agents["agent_id"].astype("str"))["agent_name"].astype("str")
    return deals.assign(agent_name=deals["agent_id"].astype("str").map(names).fillna(deals["agent_id"]).to_numpy())


def _when(shown: bool, value):
    """``value`` for a section the data support, None (nothing drawn) for one they do not."""
    return value if shown else None


def agent_view(run_dir: str | Path, agent_id: str) -> AgentView:
    """The agent report's data for ``agent_id``.

    Raises
    ------
    ReportError
        No such agent in the run, or an owner that is not a person (no report for them).
    """
    run = load_run(run_dir)
    aid = str(agent_id)
    who = _rows(run["agents"], "agent_id", aid)
    if who.empty:
        raise ReportError(f"agent {aid!r} is not in the review {run.info['run_id']}")
    if "is_person" in who and not bool(who["is_person"].iloc[0]):
        raise ReportError(f"{aid!r} is not a person (agents.is_person is false): owners like it get no agent report")
    out = _level(_rows(run["outlook"], "unique_id", aid), "agent")
    quota = float(out["quota"].iloc[0]) if len(out) else float("nan")
    kpis = _level(_rows(run["kpis_month"], "entity_id", aid), "agent")
    act = kpis[kpis["kpi"] == "activity_volume"]
    fb = _rows(run["fallbacks"], "unique_id", aid)
    book = run.plan_book
    base = _base(run, {"run_dir": str(run_dir), "agent_id": aid})
    funnel_on, paid = base["sections"].funnel.shown, base["sections"].commission.shown and book is not None
    comm = _rows(run["commission"], "unique_id", aid) if paid else None
    plan_id = str(comm["plan_id"].iloc[0]) if paid and len(comm) and "plan_id" in comm else ""
    plan = book.plan(plan_id) if plan_id else None
    curve = (
        plan_payout_curve(plan, float(comm["quota"].iloc[0]))
        if plan is not None and np.isfinite(float(comm["quota"].iloc[0])) and float(comm["quota"].iloc[0]) > 0
        else pd.DataFrame(columns=["attainment", "bookings", "payout"])
    )
    return AgentView(
        **base,
        agent_id=aid,
        agent_name=str(who["agent_name"].iloc[0]),
        territory_name=str(who["territory_name"].iloc[0]),
        scorecard=_rows(run["scorecard"], "agent_id", aid),
        trend=_rows(run["benchmark"], "agent_id", aid),
        activity=act[["period", "segment", "value"]].reset_index(drop=True),
        funnel=_when(funnel_on, _rows(run["funnel"], "agent_id", aid)),
        funnel_usable=bool(run.info["funnel"]["usable"]),
        indicators=indicator_lags(_rows(run["indicators"], "entity_id", aid), run["leading_indicators"]),
        outlook=out,
        fan=_level(_rows(run["fan"], "unique_id", aid), "agent"),
        actual_path=_level(_rows(run["actual_path"], "unique_id", aid), "agent"),
        accuracy=_level(_rows(run["accuracy"], "entity_id", aid), "agent"),
        commission=_when(paid, comm),
        plan_lines=_when(paid, plan_rules(plan) if plan is not None else ()),
        plan_name=plan.label if plan is not None else "",
        payout_curve=_when(paid, curve),
        coaching=_rows(run["coaching"], "agent_id", aid),
        fallback_reason=str(fb["reason"].iloc[0]) if len(fb) else "",
        quota_note=_quota_note(run, "agent") if np.isfinite(quota) and quota > 0 else "",
        closed_quarter=_closed_quarter(run, "agent", aid, comm),
        headline=_headline(run, "agent", aid),
        deals_open=_deals(_table(run, "deals_open"), "agent_id", aid, rank="rank_agent", n=_listed(run)),
        deals_won=_closed(_table(run, "deals_closed"), "agent_id", aid, "won", _listed(run)),
        deals_lost=_closed(_table(run, "deals_closed"), "agent_id", aid, "lost", _listed(run)),
        deals_stuck=_stuck(_table(run, "deals_open"), "agent_id", aid, _listed(run)),
        n_open_deals=len(_rows(_table(run, "deals_open"), "agent_id", aid)) if len(_table(run, "deals_open")) else 0,
        links=(
            (
                "Territory: " + str(who["territory_name"].iloc[0]),
                "../" + _page("territory", str(who["territory_name"].iloc[0]), str(who["territory_id"].iloc[0])),
            ),
            ("Monthly review", "../monthly_review.html"),
            ("All reports", "../index.html"),
        ),
    )


def _stuck(frame: pd.DataFrame, column: str, value: str, n: int) -> pd.DataFrame:
    """Stuck open deals of one agent or territory, the longest over their usual time first."""
    if not len(frame):
        return frame
    f = _rows(frame, column, value)
    f = f[f["stuck"].astype(bool)]
    over = f["days_in_stage"] / f["usual_days_in_stage"]
    return (
        f.assign(_over=over)
        .sort_values(["_over", "amount"], ascending=False)
        .head(n)
        .drop(columns="_over")
        .reset_index(drop=True)
    )


def _closed_quarter(run: RunData, level: str, entity: str, commission: pd.DataFrame | None = None) -> pd.DataFrame:
    """At a quarter end, the final numbers of the quarter that closed: ``bookings, quota,
    attainment`` (and ``payout`` for an agent); an empty frame otherwise."""
    cols = ["bookings", "quota", "attainment", "payout"]
    if not run.info.get("quarter_closed"):
        return pd.DataFrame(columns=cols)
    m = _level(_rows(run["metrics"], "entity_id", entity), level)
    if m.empty:
        return pd.DataFrame(columns=cols)
    pay = np.nan
    if commission is not None and len(commission) and "closed_quarter_payout" in commission:
        pay = float(commission["closed_quarter_payout"].iloc[0])
    return pd.DataFrame(
        {
            "bookings": m["bookings_qtd"].to_numpy(dtype=float),
            "quota": m["quota_qtd"].to_numpy(dtype=float),
            "attainment": m["attainment_qtd"].to_numpy(dtype=float),
            "payout": [pay],
        }
    )


@dataclass(frozen=True)
class TerritoryView(_Base):
    """One territory's slice of a run (its agents are listed: the manager's view)."""

    territory_id: str = ""
    territory_name: str = ""
    metrics: pd.DataFrame = field(default=None, repr=False)
    agents: pd.DataFrame = field(default=None, repr=False)
    outlook: pd.DataFrame = field(default=None, repr=False)
    fan: pd.DataFrame = field(default=None, repr=False)
    actual_path: pd.DataFrame = field(default=None, repr=False)
    agent_expected: pd.DataFrame = field(default=None, repr=False)
    funnel: pd.DataFrame = field(default=None, repr=False)
    funnel_usable: bool = False
    key_accounts: pd.DataFrame = field(default=None, repr=False)
    new_vs_existing: pd.DataFrame = field(default=None, repr=False)
    plan: pd.DataFrame = field(default=None, repr=False)
    risks: pd.DataFrame = field(default=None, repr=False)
    accuracy: pd.DataFrame = field(default=None, repr=False)
    quota_note: str = ""
    closed_quarter: pd.DataFrame = field(default=None, repr=False)
    headline: pd.DataFrame = field(default=None, repr=False)
    deals_open: pd.DataFrame = field(default=None, repr=False)
    deals_won: pd.DataFrame = field(default=None, repr=False)
    deals_lost: pd.DataFrame = field(default=None, repr=False)
    deals_stuck: pd.DataFrame = field(default=None, repr=False)
    deals_risk: pd.DataFrame = field(default=None, repr=False)
    agent_links: pd.DataFrame = field(default=None, repr=False)

    @property
    def quota(self) -> float:
        return float(self.outlook["quota"].iloc[0]) if len(self.outlook) else float("nan")

    @property
    def risk_texts(self) -> tuple[str, ...]:
        return tuple(self.risks["risk"].astype("str"))


def territory_view(run_dir: str | Path, territory_id: str) -> TerritoryView:
    """The territory report's data for ``territory_id``.

    Raises
    ------
    ReportError
        No such territory in the run.
    """
    run = load_run(run_dir)
    tid = str(territory_id)
    terr = _rows(run["territories"], "territory_id", tid)
    if terr.empty:
        raise ReportError(f"territory {tid!r} is not in the review {run.info['run_id']}")
    members = _rows(run["agents"], "territory_id", tid)
    kpis = run["kpis_month"]
    nve = kpis[
        (kpis["level"] == "territory") & (kpis["entity_id"] == tid) & (kpis["kpi"] == "new_vs_existing_bookings")
    ]
    a_out = _level(run["outlook"], "agent")
    expected = a_out[a_out["unique_id"].isin(members["agent_id"])].merge(
        members[["agent_id", "agent_name"]], left_on="unique_id", right_on="agent_id"
    )
    mapping = pd.Series(tid, index=members["agent_id"].to_numpy())
    base = _base(run, {"run_dir": str(run_dir), "territory_id": tid})
    on = {k: getattr(base["sections"], k).shown for k in ("funnel", "accounts")}
    return TerritoryView(
        **base,
        territory_id=tid,
        territory_name=str(terr["territory_name"].iloc[0]),
        metrics=_level(_rows(run["metrics"], "entity_id", tid), "territory"),
        agents=_rows(run["territory_agents"], "territory_id", tid),
        outlook=_level(_rows(run["outlook"], "unique_id", tid), "territory"),
        fan=_level(_rows(run["fan"], "unique_id", tid), "territory"),
        actual_path=_level(_rows(run["actual_path"], "unique_id", tid), "territory"),
        agent_expected=expected.reset_index(drop=True),
        funnel=_when(on["funnel"], pooled_funnel(run["funnel"], mapping)),
        funnel_usable=bool(run.info["funnel"]["usable"]),
        key_accounts=_when(on["accounts"], _rows(run["key_accounts"], "territory_id", tid)),
        new_vs_existing=_when(on["accounts"], nve[["period", "segment", "value"]].reset_index(drop=True)),
        plan=_level(_rows(run["plan"], "entity_id", tid), "territory"),
        risks=_rows(run["risks"], "territory_id", tid),
        accuracy=_level(_rows(run["accuracy"], "entity_id", tid), "territory"),
        quota_note=_quota_note(run, "territory"),
        closed_quarter=_closed_quarter(run, "territory", tid),
        headline=_headline(run, "territory", tid),
        deals_open=_with_names(
            _deals(_table(run, "deals_open"), "territory_id", tid, rank="rank_territory", n=2 * _listed(run)),
            run["agents"],
        ),
        deals_won=_with_names(
            _closed(_table(run, "deals_closed"), "territory_id", tid, "won", _listed(run)), run["agents"]
        ),
        deals_lost=_with_names(
            _closed(_table(run, "deals_closed"), "territory_id", tid, "lost", _listed(run)), run["agents"]
        ),
        deals_stuck=_with_names(
            _stuck(_table(run, "deals_open"), "territory_id", tid, 2 * _listed(run)), run["agents"]
        ),
        deals_risk=_with_names(
            _rows(_table(run, "deals_risk"), "territory_id", tid).head(_listed(run))
            if len(_table(run, "deals_risk"))
            else _table(run, "deals_risk"),
            run["agents"],
        ),
        agent_links=_agent_links(members),
        links=(("Monthly review", "../monthly_review.html"), ("All reports", "../index.html")),
    )


def _agent_links(members: pd.DataFrame) -> pd.DataFrame:
    """Each person of the territory with their page (relative to the territory page)."""
    people = members[members["is_person"].astype(bool)] if "is_person" in members else members
    return pd.DataFrame(
        {
            "agent_name": people["agent_name"].astype("str").to_numpy(),
            "href": [
                "../" + _page("agent", n, a)
                for n, a in zip(people["agent_name"].astype("str"), people["agent_id"].astype("str"))
            ],
        }
    )
