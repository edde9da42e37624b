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

from spm_models.calendar import DEFAULT_CALENDAR, PERIOD_UNIT, Calendar, check_grain, to_day
from spm_models.data.schemas import OUTCOMES, PIPELINE_STAGES
from spm_models.exceptions import ConfigError, DataError, DataValidationError, Problem
from spm_models.kpi.grid import LEVELS, Grid

__all__ = [
    "KpiValues",
    "KpiEngine",
    "Opportunities",
    "evaluate",
    "days",
    "deal_margin",
    "fill_doc",
    "OUTPUT_COLUMNS",
    "OUTCOME_OPEN",
    "OUTCOME_WON",
    "OUTCOME_LOST",
]

#: Columns of every KPI frame, in order.
OUTPUT_COLUMNS: tuple[str, ...] = ("level", "entity_id", "grain", "period", "kpi", "segment", "value")

# Columns the engine reads: (required, optional) per canonical table.
_COLUMNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "agents": (("agent_id", "territory_id"), ("hire_date", "leave_date")),
    "opportunities": (
        ("opportunity_id", "agent_id", "created_date", "outcome"),
        ("account_id", "stage", "close_date", "amount", "cost", "margin"),
    ),
    "targets": (("period_start", "period_end", "quota"), ("agent_id", "territory_id", "metric")),
    "activities": (("agent_id", "date", "activity_type", "count"), ()),
    "stage_history": (("opportunity_id", "stage"), ("entered_date",)),
}
_DATES = {"hire_date", "leave_date", "created_date", "close_date", "period_start", "period_end", "date", "entered_date"}
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

    ids: np.ndarray
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
    """Ids as text with missing values as NaN; numbers from a hand-built frame become text."""
    if not isinstance(s.dtype, pd.StringDtype):
        s = s.astype("str")
    return s


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
        required, optional = _COLUMNS[name]
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
        out = pd.DataFrame(cols, index=pd.RangeIndex(len(frame)))
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

    def memo(self, fn: Callable[[KpiEngine], Any]) -> Any:
        """``fn(self)``, computed once per engine (shared intermediate results)."""
        if fn not in self._memo:
            self._memo[fn] = fn(self)
        return self._memo[fn]

    # --- output ---------------------------------------------------------------------------
    def rows(self, r: KpiValues) -> _Rows:
        """The rows of one evaluated KPI in the long frame, as compact arrays.

        Taken as soon as a KPI is evaluated, so its dense ``(entities, periods, segments)``
        arrays can be let go before the next one is computed: at 5,000 agents and weekly grain
        the dense arrays of every KPI together would be larger than the long frame itself.
        """
        grid = self.grid
        offsets = dict(zip(LEVELS, np.cumsum([0] + [grid.size(lv) for lv in LEVELS])[:-1]))
        parts = []
        for level in self.levels:
            arr = r.values[level]
            if level == "agent":
                keep = grid.employed | r.active
            else:
                keep = np.ones(arr.shape[:2], dtype=bool)
            e, p = np.nonzero(keep)
            e, p = e.astype(np.int32), p.astype(np.int32)
            if r.segments:
                n_seg = arr.shape[2]
                v = arr[e, p, :].ravel()
                s = np.tile(np.arange(n_seg, dtype=np.int16), len(e))
                e, p = np.repeat(e, n_seg), np.repeat(p, n_seg)
            else:
                v = arr[e, p]
                s = np.zeros(len(e), dtype=np.int16)
            parts.append((LEVELS.index(level), e + np.int32(offsets[level]), p, s, v.astype(float, copy=False)))
        return _Rows(r.name, tuple(r.segments), parts)

    def to_frame(self, results: list[KpiValues | _Rows]) -> pd.DataFrame:
        """Stack evaluated KPIs into the long output frame (see :mod:`spm_models.kpi`).

        The output columns are allocated once and filled KPI by KPI, each KPI's rows freed as
        they are copied, so the peak is the frame plus one KPI's rows.
        """
        grid = self.grid
        rows = [r if isinstance(r, _Rows) else self.rows(r) for r in results]
        segment_vocab: dict[str, int] = {"": 0}
        for r in rows:
            for s in r.segments:
                segment_vocab.setdefault(s, len(segment_vocab))
        kpi_names = list(dict.fromkeys(r.name for r in rows))
        entity_vocab = np.concatenate([grid.entity_ids(lv) for lv in LEVELS])
        n = sum(len(part[1]) for r in rows for part in r.parts)
        level = np.empty(n, dtype=np.int8)
        entity = np.empty(n, dtype=np.int32)
        period = np.empty(n, dtype=np.int32)
        kpi = np.empty(n, dtype=np.int16)
        segment = np.empty(n, dtype=np.int16)
        value = np.empty(n, dtype=float)
        at = 0
        while rows:
            r = rows.pop(0)
            seg_map = np.array([segment_vocab[s] for s in r.segments] or [0], dtype=np.int16)
            while r.parts:
                lv, e, p, s, v = r.parts.pop(0)
                end = at + len(e)
                level[at:end], entity[at:end], period[at:end], value[at:end] = lv, e, p, v
                kpi[at:end] = kpi_names.index(r.name)
                segment[at:end] = seg_map[s] if r.segments else 0
                at = end
        per = grid.period_values()[period] if n else np.array([], dtype=f"datetime64[{PERIOD_UNIT}]")
        del period
        return pd.DataFrame(
            {
                "level": _text(LEVELS, level),
                "entity_id": _text(entity_vocab, entity),
                "grain": _text([self.grain], np.zeros(n, dtype=np.int8)),
                "period": per,
                "kpi": _text(kpi_names, kpi),
                "segment": _text(list(segment_vocab), segment),
                "value": value,
            },
            copy=False,
        )


@dataclass
class _Rows:
    """One KPI's rows of the long frame: per level (level, entity, period, segment, value) arrays."""

    name: str
    segments: tuple[str, ...]
    parts: list[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]


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


def _text(vocabulary, codes: np.ndarray) -> pd.Categorical:
    """``vocabulary[codes]`` as a dictionary-encoded (categorical) column.

    A text column of the long frame repeats a handful of values millions of times (``grain``
    holds one); stored as small integer codes into its vocabulary it costs one or two bytes a
    row instead of a string each. The categories are the vocabulary sorted, so sorting the
    column sorts it alphabetically, as it would a ``str`` column.
    """
    # sorted and without repeats (an agent id may also be a territory id)
    categories, inverse = np.unique(np.asarray([str(v) for v in vocabulary], dtype=object), return_inverse=True)
    small = np.int8 if len(categories) < 2**7 else np.int16 if len(categories) < 2**15 else np.int32
    codes = inverse.reshape(-1).astype(small)[codes] if len(codes) else np.asarray(codes, dtype=small)
    return pd.Categorical.from_codes(codes, categories=pd.Index(categories, dtype="str"), validate=False)


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
        ids=o["opportunity_id"].to_numpy(dtype=object),
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
) -> pd.DataFrame:
    """Run KPI evaluators over ``tables`` and return the long frame.

    ``names``, when given, keeps only those KPIs (in that order) from the evaluators' results.
    """
    engine = KpiEngine(tables, grain=grain, levels=levels, start=start, end=end, calendar=calendar)
    wanted = None if names is None else list(names)
    rows: list[_Rows] = []
    for fn in dict.fromkeys(evaluators):
        # each KPI's dense arrays become its compact rows at once, and are let go
        rows.extend(engine.rows(r) for r in fn(engine) if wanted is None or r.name in wanted)
    if wanted is not None:
        rows.sort(key=lambda r: wanted.index(r.name))
    return engine.to_frame(rows)
