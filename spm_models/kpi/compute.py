"""``compute_kpis``: every KPI of the catalog in one call, sharing the intermediate sums."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from spm_models.calendar import Calendar
from spm_models.data.dataset import Dataset
from spm_models.exceptions import ConfigError, DataError
from spm_models.kpi.catalog import KPI_CATALOG
from spm_models.kpi.engine import INPUT_COLUMNS, evaluate
from spm_models.kpi.grid import LEVELS

__all__ = ["compute_kpis", "kpi_columns"]


def compute_kpis(
    dataset_or_tables: Dataset | Mapping[str, pd.DataFrame],
    *,
    grain: str = "month",
    levels: Iterable[str] = LEVELS,
    kpis: Iterable[str] | None = None,
    start: Any = None,
    end: Any = None,
    calendar: Calendar | None = None,
) -> pd.DataFrame:
    """Compute KPIs for every agent, territory and the company, in one long frame.

    Parameters
    ----------
    dataset_or_tables : Dataset or mapping of str to DataFrame
        Typed canonical tables (as returned by :func:`spm_models.data.validation.validate` or
        read from the warehouse). ``agents`` is required; each KPI needs the tables listed
        in its :data:`~spm_models.kpi.KPI_CATALOG` entry.
    grain : {"week", "month", "quarter", "year"}, default "month"
        Reporting grain; weeks start on Monday; quarters and years are those of ``calendar``.
    levels : iterable of {"agent", "territory", "company"}
        Levels to report.
    kpis : iterable of str, optional
        KPI names from :data:`~spm_models.kpi.KPI_CATALOG`, reported in that order. Default:
        every KPI whose tables are present (so a source without targets gets no quota,
        attainment or coverage, and one without activities no activity volume), and margin KPIs
        only when the data hold a cost or margin (margin objectives: targets on margin).
    start, end : date-like, optional
        First and last day to report (whole periods). Default: from the first close date of
        a won or lost deal or the first activity, whichever is earlier, to the last date in
        the data (created, close or activity date). Pass ``start`` to report opportunities
        created before the first close.
    calendar : Calendar, optional
        Fiscal year behind the quarter and year grains; default the dataset's
        (:attr:`Dataset.calendar <spm_models.data.dataset.Dataset.calendar>`, set at ingest from
        the project or mapping settings), the calendar year for a plain mapping of tables.

    Returns
    -------
    DataFrame
        Columns ``level, entity_id, grain, period, kpi, segment, value`` (see
        :mod:`spm_models.kpi`), KPIs in catalog order (or the order of ``kpis``).

    Raises
    ------
    ConfigError
        Unknown KPI name, grain or level, or an unreadable start or end.
    DataError
        ``agents`` is missing, or a requested KPI needs a table that is missing;
        :class:`~spm_models.exceptions.DataValidationError` when a needed column is missing
        or a row names an unknown agent.
    """
    if calendar is None and isinstance(dataset_or_tables, Dataset):
        calendar = dataset_or_tables.fiscal_calendar
    tables = dict(dataset_or_tables.tables if isinstance(dataset_or_tables, Dataset) else dataset_or_tables)
    tables = {k: v for k, v in tables.items() if v is not None}
    if "agents" not in tables:
        raise DataError("the agents table is missing; KPIs are reported per agent and territory, so it is required")
    if kpis is None:
        names = [
            n
            for n, spec in KPI_CATALOG.items()
            if all(t in tables for t in spec.tables) and (spec.holds is None or spec.holds(tables))
        ]
    else:
        names = [kpis] if isinstance(kpis, str) else list(dict.fromkeys(kpis))
        unknown = [n for n in names if n not in KPI_CATALOG]
        if unknown:
            raise ConfigError(f"unknown KPI(s) {', '.join(map(repr, unknown))}; available: {', '.join(KPI_CATALOG)}")
        lacking = {n: [t for t in KPI_CATALOG[n].tables if t not in tables] for n in names}
        lacking = {n: ts for n, ts in lacking.items() if ts}
        if lacking:
            detail = "; ".join(f"{n} needs {', '.join(ts)}" for n, ts in lacking.items())
            raise DataError(f"the data set lacks tables needed for the requested KPIs: {detail}")
    used = {"agents"} | {t for n in names for t in KPI_CATALOG[n].tables}
    if "opportunities" in used and "stage_history" in tables:
        used.add("stage_history")
    if "activities" in tables:
        used.add("activities")  # activity dates also set the default reporting span
    if "opportunities" in tables:
        used.add("opportunities")
    return evaluate(
        [KPI_CATALOG[n].evaluator for n in names],
        {k: v for k, v in tables.items() if k in used},
        grain=grain,
        levels=levels,
        start=start,
        end=end,
        names=names,
        calendar=calendar,
        reads={KPI_CATALOG[n].evaluator: _reads(KPI_CATALOG[n].tables) for n in names},
    )


def _reads(tables: tuple[str, ...]) -> tuple[str, ...]:
    # the funnel's KPIs also read the stage history where there is one
    return tables + ("stage_history",) if "opportunities" in tables else tables


def kpi_columns(kpis: Iterable[str] | None = None) -> dict[str, list[str]]:
    """The tables and columns :func:`compute_kpis` reads, to load no more than that.

    ``Warehouse(path).load(columns=kpi_columns(), dictionary=True)`` reads these columns only,
    with their ids dictionary-encoded: at 5,000 agents a fraction of the memory of the whole
    warehouse in pandas, for the same KPIs.

    Parameters
    ----------
    kpis : iterable of str, optional
        KPI names (default: the whole catalog).

    Returns
    -------
    dict of str to list of str
        Canonical table -> its columns the KPI engine reads (required, then optional ones).

    Raises
    ------
    ConfigError
        An unknown KPI name.
    """
    names = list(KPI_CATALOG) if kpis is None else ([kpis] if isinstance(kpis, str) else list(kpis))
    unknown = [n for n in names if n not in KPI_CATALOG]
    if unknown:
        raise ConfigError(f"unknown KPI(s) {', '.join(map(repr, unknown))}; available: {', '.join(KPI_CATALOG)}")
    # as compute_kpis: opportunities and activities also set the default span, stage history the funnel
    used = {"agents", "opportunities", "activities", "stage_history"}
    used |= {t for n in names for t in KPI_CATALOG[n].tables}
    return {t: list(req + opt) for t, (req, opt) in INPUT_COLUMNS.items() if t in used}
