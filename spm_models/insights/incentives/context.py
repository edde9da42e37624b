"""One organisation's data at one date, ready to evaluate any plan book on any quarter.

:class:`PlanContext` holds what every evaluation shares: the credit ledger, the quotas, the
calendar, ``as_of`` and, when given, the forecast of the quarter ahead with its projection
(:mod:`.projection`). Quarters that ended by ``as_of`` are *settled* on actual results, in
order, so the recoverable draw balance carried into each quarter is known; the *forecast
quarter* (the quarter holding the day after ``as_of``) is evaluated twice: on the results so
far ("if the quarter ended today") and over the forecast's scenarios. Two plan books evaluated
on one context see the same scenarios (:meth:`PlanContext.prepare` first cuts the horizon at
both books' window edges), so their difference is paired.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from spm_models.calendar import Calendar
from spm_models.evaluation.quota.calibration import QuotaCalibration
from spm_models.exceptions import ConfigError, DataError
from spm_models.insights.incentives.assign import plan_segments
from spm_models.insights.incentives.credits import CreditLedger
from spm_models.insights.incentives.engine import Actuals, QuarterResult, Quotas, WithProjection, evaluate_quarter
from spm_models.insights.incentives.plan import PlanBook
from spm_models.insights.incentives.projection import Projection
from spm_models.models.forecast import Forecast

__all__ = ["PlanContext", "BookRun"]


class BookRun:
    """One plan book evaluated on a context: settled quarters, the forecast quarter so far and
    over scenarios (``expected``, None without a forecast)."""

    def __init__(
        self,
        book: PlanBook,
        settled: list[QuarterResult],
        to_date: QuarterResult | None,
        expected: QuarterResult | None,
        context: PlanContext,
    ) -> None:
        self.book, self.settled, self.to_date, self.expected, self.context = book, settled, to_date, expected, context

    @property
    def last_settled(self) -> QuarterResult | None:
        return self.settled[-1] if self.settled else None


class PlanContext:
    """Data, dates and scenarios plan books are evaluated on (module docstring).

    Parameters
    ----------
    tables : mapping of str to DataFrame
        Typed canonical tables (a Dataset works); as of ``as_of`` or later (credits after
        ``as_of`` are never read for the forecast quarter).
    calendar : Calendar
        Fiscal quarters.
    as_of : date-like
        Last day of actual results.
    forecast : Forecast, optional
        Agent-level weekly bookings draws covering the forecast quarter's days after ``as_of``.
    seed : int
        Seed of the projection of measures other than bookings.
    history_days : int
        Look-back of those projections.
    calibration : QuotaCalibration, optional
        What the forecast's draws were multiplied by (:mod:`.scenarios`); kept to be reported.
    """

    def __init__(
        self,
        tables: Mapping[str, pd.DataFrame],
        *,
        calendar: Calendar,
        as_of: Any,
        forecast: Forecast | None = None,
        seed: int = 0,
        history_days: int = 182,
        calibration: QuotaCalibration | None = None,
    ) -> None:
        self.tables = tables
        self.calibration = calibration
        self.calendar = calendar
        self.as_of = pd.Timestamp(as_of).normalize()
        self.agents = tables["agents"]
        self.ledger = CreditLedger(tables)
        self.quotas = Quotas(tables.get("targets"), self.agents, calendar)
        self.quarter_start = calendar.quarter_start(self.as_of + pd.Timedelta(days=1))
        self.quarter_end = calendar.quarter_end(self.quarter_start)
        self.projection = None
        if forecast is not None:
            self.projection = Projection(
                forecast,
                self.ledger,
                self.agents,
                as_of=self.as_of,
                horizon_end=self.quarter_end,
                history_days=history_days,
                seed=seed,
            )
        self._segments: dict[int, pd.DataFrame] = {}
        days = [pd.to_datetime(tables["opportunities"][c]).min() for c in ("created_date", "close_date")]
        act = tables.get("activities")
        if act is not None and len(act):
            days.append(pd.to_datetime(act["date"]).min())
        days = [d for d in days if pd.notna(d)]
        #: First day with any data: no quarter before it is settled (a plan "from 2000" starts here).
        self.data_start = min(days) if days else self.as_of

    def first_quarter(self, book: PlanBook) -> pd.Timestamp:
        """The first quarter settled for ``book``: its first effective day's, or the data's first."""
        return self.calendar.quarter_start(max(pd.Timestamp(book.start), self.data_start))

    @property
    def quarter_label(self) -> str:
        return self.calendar.quarter_label(self.quarter_start)

    def segments(self, book: PlanBook) -> pd.DataFrame:
        """:func:`~spm_models.insights.incentives.assign.plan_segments` of ``book`` from its first
        settled quarter (:meth:`first_quarter`) to the forecast quarter's end."""
        key = id(book)
        if key not in self._segments:
            self._segments[key] = plan_segments(book, self.agents, start=self.first_quarter(book), end=self.quarter_end)
        return self._segments[key]

    def settled_quarters(self, book: PlanBook) -> list[pd.Timestamp]:
        """Starts of the quarters from :meth:`first_quarter` to the last ended by ``as_of``."""
        first = self.first_quarter(book)
        if first >= self.quarter_start:
            return []
        return list(self.calendar.period_range(first, self.quarter_start - pd.Timedelta(days=1), "quarter"))

    def prepare(self, books: Iterable[PlanBook]) -> None:
        """Cut the projection's horizon at every window edge of ``books`` (paired scenarios)."""
        if self.projection is None:
            return
        days = []
        q0, q1 = self.quarter_start, self.quarter_end
        for book in books:
            seg = self.segments(book)
            seg = seg[(seg["start"] <= q1) & (seg["end"] >= q0)]
            days += list(seg["start"]) + list(seg["end"] + pd.Timedelta(days=1))
            days += [c.start for c in book.contests] + [c.end + pd.Timedelta(days=1) for c in book.contests]
            months = self.calendar.period_range(q0, q1, "month")
            days += list(months)
        self.projection.prepare(days)

    def evaluate(self, book: PlanBook, *, scenarios: bool = True) -> BookRun:
        """Settle ``book``'s past quarters and evaluate the forecast quarter (module docstring).

        Parameters
        ----------
        scenarios : bool
            Also evaluate the forecast quarter over the forecast's scenarios (needs a forecast).

        Raises
        ------
        ConfigError
            People on two plans at once (:func:`~spm_models.insights.incentives.assign.plan_segments`).
        """
        if scenarios and self.projection is None:
            raise DataError("this plan context has no forecast, so it cannot give scenarios of the quarter ahead")
        seg = self.segments(book)
        settled, balance = [], pd.Series(dtype=float)
        common = dict(agents=self.agents, quotas=self.quotas, calendar=self.calendar)
        for q in self.settled_quarters(book):
            r = evaluate_quarter(book, seg, q, measures=Actuals(self.ledger), balance=balance, **common)
            settled.append(r)
            balance = pd.Series(r.balance_out[:, 0], index=r.people)
        to_date = evaluate_quarter(
            book, seg, self.quarter_start, measures=Actuals(self.ledger, until=self.as_of), balance=balance, **common
        )
        expected = None
        if scenarios:
            self.prepare([book])
            expected = evaluate_quarter(
                book,
                seg,
                self.quarter_start,
                measures=WithProjection(self.ledger, self.projection),
                balance=balance,
                **common,
            )
            _check_aligned(to_date, expected)
        return BookRun(book, settled, to_date, expected, self)

    def bookings(self, people: Iterable[str], *, measure: str = "bookings") -> np.ndarray:
        """Draws ``(n, d)`` of each person's ``measure`` over the whole forecast quarter."""
        if self.projection is None:
            raise DataError("this plan context has no forecast")
        ids = [str(p) for p in people]
        n = len(ids)
        self.projection.prepare([self.quarter_start])
        m = WithProjection(self.ledger, self.projection)
        return m.values(measure, ids, [self.quarter_start] * n, [self.quarter_end] * n)


def _check_aligned(a: QuarterResult, b: QuarterResult) -> None:
    keys = ["agent_id", "plan_id", "component_id", "window_start", "window_end"]
    if len(a.lines) != len(b.lines) or not a.lines[keys].equals(b.lines[keys]):
        raise ConfigError("internal: the statement lines so far and over scenarios differ; please report this")
