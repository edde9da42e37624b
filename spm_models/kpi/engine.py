"""Shared machinery of the KPI functions: input checks, the reporting grid and the long output.

Every public KPI function (and :func:`spm_models.kpi.compute_kpis`) builds one
:class:`KpiEngine` over the tables it reads, asks it to evaluate one or more KPI evaluators
(functions ``engine -> list[KpiValues]`` defined in the KPI modules), and gets back the tidy
frame described in :mod:`spm_models.kpi`. Intermediate sums shared by several KPIs (bookings
feeds attainment, average deal size and growth) are computed once per engine (:meth:`memo`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from spm_models.calendar import DEFAULT_CALENDAR, Calendar, check_grain, to_day
from spm_models.data.schemas import OUTCOMES, PIPELINE_STAGES
from spm_models.exceptions import ConfigError, DataError, DataValidationError, Problem
from spm_models.kpi.grid import LEVELS, Grid
from spm_models.kpi.longframe import LongFrame

__all__ = [
    "KpiValues",
    "KpiEngine",
    "Opportunities",
    "evaluate",
    "positions",
    "days",
    "deal_margin",
    "fill_doc",
    "OUTPUT_COLUMNS",
    "INPUT_COLUMNS",
    "OUTCOME_OPEN",
    "OUTCOME_WON",
    "OUTCOME_LOST",
]

#: Columns of every KPI frame, in order.
OUTPUT_COLUMNS: tuple[str, ...] = ("level", "entity_id", "grain", "period", "kpi", "segment", "value")

#: Columns the engine reads: (required, optional) per canonical table.
INPUT_COLUMNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "agents": (("agent_id", "territory_id"), ("hire_date", "leave_date")),
    "opportunities": (
        ("opportunity_id", "agent_id", "created_date", "outcome"),
        ("account_id", "stage", "close_date", "amount", "cost", "margin"),
    ),
    "targets": (("period_start", "period_end", "quota"), ("agent_id", "territory_id", "metric")),
    "activities": (("agent_id", "date", "activity_type", "count"), ()),
    "stage_history": (("opportunity_id", "stage"), ()),
}
_DATES = {"hire_date", "leave_date", "created_date", "close_date", "period_start", "period_end", "date"}
_NUMBERS = {"amount", "quota", "count", "cost", "margin"}
OUTCOME_OPEN, OUTCOME_WON, OUTCOME_LOST = 0, 1, 2
_VALIDATE_FIRST = "run the data through spm_models.data.validation.validate first"


@dataclass
class KpiValues:
    """One KPI evaluated on the grid.

    Attributes
    ----------
    name : str
        KPI name (the ``kpi`` column).
    values : dict of str to ndarray
        Level -> array of shape ``(entities, periods)`` or ``(entities, periods, segments)``.
    active : ndarray of bool, shape (agents, periods)
        Agent-periods where the KPI's inputs are non-zero; shown even outside employment.
    segments : tuple of str
        Segment labels of the last axis (empty: the KPI is not split).
    """

    name: str
    values: dict[str, np.ndarray]
    active: np.ndarray
    segments: tuple[str, ...] = ()


@dataclass
class Opportunities:
    """Opportunity columns as numpy arrays aligned with the grid."""

    ids: pd.Series
    agent: np.ndarray
    account: pd.Series
    created: np.ndarray
    closed: np.ndarray  # close date of won and lost deals, NaT for open ones
    outcome: np.ndarray
    stage: np.ndarray  # index into PIPELINE_STAGES, -1 when unknown
    amount: np.ndarray  # NaN -> 0
    margin: np.ndarray  # margin, else amount - cost; NaN where neither is known
    created_p: np.ndarray
    closed_p: np.ndarray


def _dates(s: pd.Series, *, table: str, column: str) -> pd.Series:
    """A date column as datetime64 without time zone."""
    if s.dtype.kind != "M":
        try:
            s = pd.to_datetime(s)
        except (ValueError, TypeError) as exc:
            raise DataValidationError(
                [Problem(table, None, column, None, f"not a date column ({exc}); {_VALIDATE_FIRST}")]
            ) from None
    if getattr(s.dt, "tz", None) is not None:
        s = s.dt.tz_localize(None)
    return s


def days(frame: pd.DataFrame, column: str) -> np.ndarray:
    """Column of a :meth:`KpiEngine.typed` frame as ``datetime64[D]`` (all NaT when absent)."""
    if column not in frame:
        return np.full(len(frame), np.datetime64("NaT"), dtype="datetime64[D]")
    return frame[column].to_numpy().astype("datetime64[D]")


def _numbers(s: pd.Series, *, table: str, column: str) -> np.ndarray:
    if s.dtype.kind not in "fiub":
        try:
            s = pd.to_numeric(s)
        except (ValueError, TypeError) as exc:
            raise DataValidationError(
                [Problem(table, None, column, None, f"not a number column ({exc}); {_VALIDATE_FIRST}")]
            ) from None
    return s.to_numpy(dtype=float, na_value=np.nan)


def _ids(s: pd.Series) -> pd.Series:
    """Ids as text with missing values as NaN; numbers from a hand-built frame become text.

    Dictionary-encoded (categorical) text, as :meth:`Warehouse.load
    <spm_models.data.warehouse.Warehouse.load>` reads it with ``dictionary=True``, stays
    categorical: ids are then matched through their codes, never as millions of strings.
    """
    if isinstance(s.dtype, pd.CategoricalDtype) and pd.api.types.is_string_dtype(s.cat.categories.dtype):
        return s
    if not isinstance(s.dtype, pd.StringDtype):
        s = s.astype("str")
    return s


def positions(ids: pd.Series, keys: pd.Series) -> np.ndarray:
    """Position in ``ids`` (unique values) of each of ``keys``; -1 where a key is not in ``ids``.

    When both are categorical over the same categories (one dictionary for the column, as the
    warehouse reads it), the match is made on the integer codes.
    """
    if (
        isinstance(ids.dtype, pd.CategoricalDtype)
        and isinstance(keys.dtype, pd.CategoricalDtype)
        and ids.cat.categories.equals(keys.cat.categories)
    ):
        id_codes, key_codes = ids.cat.codes.to_numpy(), keys.cat.codes.to_numpy()
        at = np.full(len(ids.cat.categories) + 1, -1, dtype=np.intp)  # the last entry: a missing key
        at[id_codes] = np.arange(len(ids))
        if (id_codes >= 0).all() and len(np.unique(id_codes)) == len(ids):
            return at[key_codes]
    return pd.Index(ids).get_indexer(keys)


class KpiEngine:
    """Prepared inputs and reporting grid for one KPI run.

    Parameters
    ----------
    tables : mapping of str to DataFrame
        Canonical tables (``agents`` is required; others as the evaluated KPIs need them).
    grain : {"week", "month", "quarter", "year"}
    levels : iterable of {"agent", "territory", "company"}
    start, end : date-like, optional
        Reporting span; default see :meth:`_data_span` (from the first close or activity
        date to the last date in the data).
    calendar : Calendar, optional
        Fiscal quarters and years of the quarter and year grains (calendar year by default).
    """

    def __init__(
        self,
        tables: Mapping[str, pd.DataFrame],
        *,
        grain: str = "month",
        levels: Iterable[str] = LEVELS,
        start: Any = None,
        end: Any = None,
        calendar: Calendar | None = None,
    ):
        self.grain = check_grain(grain)
        self.calendar = calendar if calendar is not None else DEFAULT_CALENDAR
        self.levels = _check_levels(levels)
        self.tables = {k: v for k, v in tables.items() if v is not None}
        self._typed: dict[str, pd.DataFrame] = {}
        self._memo: dict[Any, Any] = {}
        agents = self.typed("agents")
        dup = agents["agent_id"][agents["agent_id"].duplicated()]
        if len(dup):
            raise DataValidationError(
                [
                    Problem(
                        "agents", None, "agent_id", str(v), "agent_id appears more than once; each agent needs one row"
                    )
                    for v in pd.unique(dup)[:50]
                ]
            )
        missing_terr = agents["agent_id"][agents["territory_id"].isna()]
        if len(missing_terr):
            raise DataValidationError(
                [
                    Problem(
                        "agents",
                        None,
                        "territory_id",
                        str(v),
                        "agent has no territory; every agent needs a territory_id",
                    )
                    for v in missing_terr[:50]
                ]
            )
        first, last = self._span(start, end)
        extra = np.array([], dtype=object)
        if "targets" in self.tables:
            t = self.typed("targets")
            if "territory_id" in t:
                extra = t["territory_id"].dropna().to_numpy(dtype=object)
        self.grid = Grid(
            agents["agent_id"].to_numpy(dtype=object),
            agents["territory_id"].to_numpy(dtype=object),
            days(agents, "hire_date"),
            days(agents, "leave_date"),
            extra_territories=extra,
            grain=self.grain,
            first_day=first,
            last_day=last,
            calendar=self.calendar,
        )

    # --- inputs ---------------------------------------------------------------------------
    def has(self, name: str) -> bool:
        return name in self.tables

    def typed(self, name: str) -> pd.DataFrame:
        """Table ``name`` with the columns the engine reads, checked and typed."""
        if name in self._typed:
            return self._typed[name]
        if name not in self.tables:
            raise DataError(f"the {name} table is needed for this KPI but was not provided")
        frame = self.tables[name]
        required, optional = INPUT_COLUMNS[name]
        missing = [c for c in required if c not in frame.columns]
        if missing:
            raise DataValidationError(
                [Problem(name, None, c, None, "column is missing; the KPI engine needs it") for c in missing]
            )
        cols: dict[str, Any] = {}
        for c in required + optional:
            if c not in frame.columns:
                continue
            s = frame[c].reset_index(drop=True)
            if c in _DATES:
                s = _dates(s, table=name, column=c)
            elif c in _NUMBERS:
                s = pd.Series(_numbers(s, table=name, column=c))
            else:
                s = _ids(s)
            cols[c] = s
        out = pd.DataFrame(cols, index=pd.RangeIndex(len(frame)), copy=False)  # already typed: no second copy
        self._typed[name] = out
        return out

    def _span(self, start: Any, end: Any) -> tuple[np.datetime64, np.datetime64]:
        def parse(v: Any, what: str) -> np.datetime64 | None:
            if v is None or (not isinstance(v, str) and pd.isna(v)):
                return None
            return np.datetime64(to_day(v, f"the reporting {what}").date(), "D")

        first, last = parse(start, "start"), parse(end, "end")
        if first is None or last is None:
            lo, hi = self._data_span()
            first = lo if first is None else first
            last = hi if last is None else last
        if first is None or last is None:
            raise DataError("there are no dates in the data to report on; pass start and end")
        if last < first:
            raise ConfigError(f"the reporting end {last} is before its start {first}")
        return first, last

    def _data_span(self) -> tuple[np.datetime64 | None, np.datetime64 | None]:
        """Default reporting span (see ``start, end`` in the KPI docstrings)."""

        def known(a: np.ndarray) -> np.ndarray:
            return a[~np.isnat(a)]

        events: list[np.ndarray] = []  # close dates of closed deals, activity dates
        created = np.array([], "datetime64[D]")
        if "opportunities" in self.tables:
            o = self.typed("opportunities")
            created = known(days(o, "created_date"))
            closed = o["outcome"].isin(["won", "lost"]).to_numpy()
            events.append(known(days(o, "close_date")[closed]))
        if "activities" in self.tables:
            events.append(known(days(self.typed("activities"), "date")))
        happened = np.concatenate(events) if events else np.array([], "datetime64[D]")
        if len(happened):
            # Start at the first close or activity: an export's oldest still-open
            # opportunity (or a backfill of open deals) would otherwise add periods of zeros.
            return happened.min(), max(happened.max(), created.max()) if len(created) else happened.max()
        if len(created):
            return created.min(), created.max()
        if "targets" in self.tables:
            t = self.typed("targets")
            bounds = known(np.concatenate([days(t, "period_start"), days(t, "period_end")]))
            if len(bounds):
                return bounds.min(), bounds.max()
        return None, None

    @property
    def opportunities(self) -> Opportunities:
        """Prepared opportunities (computed once)."""
        return self.memo(_prepare_opportunities)

    def release(self, *, keep: set[str]) -> None:
        """Let go of what was prepared from tables other than ``keep`` (and ``agents``).

        The shared intermediate results (:meth:`memo`) all come from the opportunities and
        targets; they are dropped when neither is kept. A later :meth:`typed` or :meth:`memo`
        call would compute them again.
        """
        for name in [n for n in self._typed if n not in keep and n != "agents"]:
            del self._typed[name]
        if not keep & {"opportunities", "targets", "stage_history"}:
            self._memo.clear()

    def memo(self, fn: Callable[[KpiEngine], Any]) -> Any:
        """``fn(self)``, computed once per engine (shared intermediate results)."""
        if fn not in self._memo:
            self._memo[fn] = fn(self)
        return self._memo[fn]


_COMMON_PARAMETERS = """grain : {"week", "month", "quarter", "year"}, default "month"
        Reporting grain; weeks start on Monday, quarters and years are fiscal (``calendar``).
    levels : iterable of {"agent", "territory", "company"}, default all three
        Levels to report. Territory and company values are computed from the summed
        numerators and denominators of their agents (never by averaging agent ratios).
    start, end : date-like, optional
        First and last day to report; every period overlapping ``[start, end]`` is
        reported. Default start: the first close date of a won or lost deal or activity
        date in the tables passed (else the first created date; for targets alone, the
        first target day), so stale open opportunities do not add periods of zeros; pass
        ``start`` to report earlier cohorts. Default end: the last of those dates and the
        created dates.
    calendar : Calendar, optional
        Fiscal year of the quarter and year grains (:class:`~spm_models.calendar.Calendar`;
        the calendar year by default).

    Returns
    -------
    DataFrame
        The long KPI frame: ``level, entity_id, grain, period, kpi, segment, value`` (see
        :mod:`spm_models.kpi`); the text columns are categorical.

    Raises
    ------
    DataValidationError
        A needed column is missing, or a row names an agent that is not in ``agents``.
    ConfigError
        Unknown grain or level, or an unreadable ``start``/``end``."""


def fill_doc(fn: Callable) -> Callable:
    """Put the shared parameter documentation where a KPI docstring says ``%(common)s``."""
    if fn.__doc__:
        fn.__doc__ = fn.__doc__.replace("%(common)s", _COMMON_PARAMETERS)
    return fn


def _check_levels(levels: Iterable[str]) -> tuple[str, ...]:
    if isinstance(levels, str):
        levels = (levels,)
    levels = tuple(levels)
    bad = [lv for lv in levels if lv not in LEVELS]
    if bad or not levels:
        raise ConfigError(f"unknown reporting level(s) {bad or '(none given)'}: choose from {', '.join(LEVELS)}")
    return tuple(lv for lv in LEVELS if lv in levels)


def deal_margin(opportunities: pd.DataFrame) -> np.ndarray:
    """Margin of each deal: ``margin`` where the data state it, else ``amount - cost``; NaN where
    neither is known (the one margin rule of the KPIs and of incentive plans)."""
    o = opportunities
    n = len(o)
    margin = o["margin"].to_numpy(dtype=float) if "margin" in o else np.full(n, np.nan)
    if "cost" in o:
        raw = o["amount"].to_numpy(dtype=float) if "amount" in o else np.full(n, np.nan)
        margin = np.where(np.isnan(margin), raw - o["cost"].to_numpy(dtype=float), margin)
    return margin


def _prepare_opportunities(engine: KpiEngine) -> Opportunities:
    o = engine.typed("opportunities")
    grid = engine.grid
    n = len(o)
    agent = grid.agent_codes(o["agent_id"], table="opportunities")
    outcome = pd.Categorical(o["outcome"], categories=list(OUTCOMES)).codes.astype(np.int8)
    if "stage" in o:
        stage = pd.Categorical(o["stage"], categories=list(PIPELINE_STAGES)).codes.astype(np.int8)
    else:
        stage = np.full(n, -1, dtype=np.int8)
    created = days(o, "created_date")
    closed = days(o, "close_date")
    closed[(outcome != OUTCOME_WON) & (outcome != OUTCOME_LOST)] = np.datetime64("NaT")
    amount = np.nan_to_num(o["amount"].to_numpy(dtype=float), nan=0.0) if "amount" in o else np.zeros(n)
    margin = deal_margin(o)
    account = o["account_id"] if "account_id" in o else pd.Series(np.full(n, np.nan), dtype="str")
    return Opportunities(
        ids=o["opportunity_id"],
        agent=agent,
        account=account,
        created=created,
        closed=closed,
        outcome=outcome,
        stage=stage,
        amount=amount,
        margin=margin,
        created_p=grid.period_codes(created),
        closed_p=grid.period_codes(closed),
    )


def evaluate(
    evaluators: Iterable[Callable[[KpiEngine], list[KpiValues]]],
    tables: Mapping[str, pd.DataFrame | None],
    *,
    grain: str = "month",
    levels: Iterable[str] = LEVELS,
    start: Any = None,
    end: Any = None,
    names: Iterable[str] | None = None,
    calendar: Calendar | None = None,
    reads: Mapping[Callable, Iterable[str]] | None = None,
) -> pd.DataFrame:
    """Run KPI evaluators over ``tables`` and return the long frame.

    ``names``, when given, keeps only those KPIs (in that order) from the evaluators' results.
    ``reads``, when given, names the tables each evaluator reads besides ``agents``: the
    intermediate results shared between KPIs are let go as soon as no later evaluator reads
    the tables they come from (at 5,000 agents, weekly, those of the opportunities are a
    quarter of a gigabyte, and the activities come last).
    """
    engine = KpiEngine(tables, grain=grain, levels=levels, start=start, end=end, calendar=calendar)
    out = LongFrame(engine.grid, engine.levels, engine.grain)
    wanted = None if names is None else list(dict.fromkeys(names))
    early: dict[str, list[KpiValues]] = {}  # evaluated before their turn in ``names``
    turn = 0
    order = list(dict.fromkeys(evaluators))
    for i, fn in enumerate(order):
        if reads is not None:
            engine.release(keep={t for g in order[i:] for t in reads.get(g, engine.tables)})
        # each KPI's dense arrays become rows of the frame at once, and are let go
        for r in fn(engine):
            if wanted is None:
                out.add(r)
            elif r.name in wanted:
                early.setdefault(r.name, []).append(r)
        while wanted is not None and turn < len(wanted) and wanted[turn] in early:
            for r in early.pop(wanted[turn]):
                out.add(r)
            turn += 1
    for name in [] if wanted is None else wanted[turn:]:
        for r in early.pop(name, []):
            out.add(r)
    return out.frame()
