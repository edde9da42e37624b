"""The series that leading-indicator discovery compares: bookings and its candidate drivers.

:func:`bookings_series` is the target (bookings per entity and period) and
:func:`candidate_series` the candidates, both as long frames at one level (agent, territory
or company) and grain. :mod:`spm_models.indicators.arrays` holds the dense-array toolkit that
discovery runs on them.

Candidates
----------
================================  ==============================================================
``activity:<type>``               activities of that type (calls, demos, ...) in the period
``opportunities_created``         opportunities created in the period
``pipeline_added``                sum of the amounts of the opportunities created in the period
``indicator:<name>``              a series of the ``indicators`` table (leads by channel, spend,
                                  a market index), averaged over its rows within the period
================================  ==============================================================

An indicator with an empty ``territory_id`` is company-wide and applies to every entity; a
territory indicator applies to the territory and to each of its agents, and is summed over
territories for the company (leads and spend add up).

The window
----------
Everything is cut to the *bookings window*: from the first to the last period holding a close
date (won or lost deal), an edge period being dropped when the close dates cover less than
half of its days (a partial period would look like a collapse of bookings). A candidate
counts only inside its own data span (activities and indicators: first to last row; the
opportunity series: first to last created date), so periods before a table starts are
missing, not zero.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from spm_models.calendar import DEFAULT_CALENDAR, Calendar, check_grain, parse_dates
from spm_models.data.dataset import Dataset
from spm_models.exceptions import ConfigError, DataError
from spm_models.indicators.arrays import INDICATOR_GRAINS, to_panel
from spm_models.kpi import compute_kpis
from spm_models.kpi.grid import COMPANY, LEVELS

__all__ = [
    "TARGET_COLUMNS",
    "CANDIDATE_COLUMNS",
    "bookings_series",
    "candidate_series",
    "build_series",
    "unusable_candidates",
    "panels",
]

TARGET_COLUMNS: tuple[str, ...] = ("entity_id", "period", "value")
CANDIDATE_COLUMNS: tuple[str, ...] = ("entity_id", "period", "candidate", "value")
# A lost deal whose amount is 0 (or missing) in most rows means "amount = close value":
# the value of a new deal is then only known once it is won, and summing it would leak.
_LEAK_SHARE = 0.5


# --------------------------------------------------------------------------- long series


def _tables(dataset: Dataset | Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    tables = dataset.tables if isinstance(dataset, Dataset) else dataset
    return {k: v for k, v in tables.items() if v is not None}


def _check_level(level: str) -> str:
    if level not in LEVELS:
        raise ConfigError(f"unknown level {level!r}: choose one of {', '.join(LEVELS)}")
    return level


def _dates(frame: pd.DataFrame, column: str) -> pd.Series:
    return parse_dates(frame[column])[0]


def _calendar(dataset: Dataset | Mapping[str, pd.DataFrame], calendar: Calendar | None) -> Calendar:
    if calendar is not None:
        return calendar
    return dataset.fiscal_calendar if isinstance(dataset, Dataset) else DEFAULT_CALENDAR


def _span(
    dates: pd.Series, grain: str, *, events: bool, calendar: Calendar
) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """First and last period start covered by ``dates`` (None when there are none).

    With ``events=True`` the dates are event days (closes, creations): an edge period they
    cover for less than half of its days is dropped. Otherwise each date stands for its whole
    period (weekly rows dated the Monday).
    """
    d = dates.dropna()
    if d.empty:
        return None
    lo, hi = d.min().normalize(), d.max().normalize()
    cal = calendar
    first, last = cal.period_start(lo, grain), cal.period_start(hi, grain)
    if events:
        first_len = (cal.next_period_start(first, grain) - first).days
        if (cal.next_period_start(first, grain) - lo).days < first_len / 2:
            first = cal.next_period_start(first, grain)
        last_len = (cal.next_period_start(last, grain) - last).days
        if (hi - last).days + 1 < last_len / 2:
            last = cal.shift_periods(last, -1, grain)
    return (first, last) if last >= first else None


def _clip(frame: pd.DataFrame, span: tuple[pd.Timestamp, pd.Timestamp] | None) -> pd.DataFrame:
    if span is None:
        return frame.iloc[:0]
    return frame[(frame["period"] >= span[0]) & (frame["period"] <= span[1])]


def unusable_candidates(dataset: Dataset | Mapping[str, pd.DataFrame]) -> dict[str, str]:
    """Candidates that cannot be tested on this data set, with the reason in plain words.

    ``pipeline_added`` is unusable when most lost deals have an amount of 0 or none: the
    source then records the *close* value (Maven's ``close_value``), so the pipeline added in
    a week would contain next months' wins and losses, information not known at the time.
    """
    out: dict[str, str] = {}
    opp = _tables(dataset).get("opportunities")
    if opp is None or "amount" not in opp or "outcome" not in opp:
        return out
    lost = opp.loc[opp["outcome"].astype("str") == "lost", "amount"]
    if len(lost):
        share_blank = float((pd.to_numeric(lost, errors="coerce").fillna(0.0) <= 0).mean())
        if share_blank >= _LEAK_SHARE:
            out["pipeline_added"] = (
                f"not tested: {share_blank:.0%} of lost deals have an amount of 0 or none, so amounts are "
                "close values known only after the deal closes and pipeline added would leak the outcome"
            )
    return out


def build_series(
    dataset: Dataset | Mapping[str, pd.DataFrame], *, level: str, grain: str = "week", calendar: Calendar | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(bookings_series(...), candidate_series(...))`` from one computation of the KPIs."""
    _check_level(level)
    check_grain(grain, INDICATOR_GRAINS)
    cal = _calendar(dataset, calendar)
    tables = _tables(dataset)
    opp = tables.get("opportunities")
    if opp is None or opp.empty:
        raise DataError("there are no opportunities: bookings, the series to explain, cannot be computed")
    outcome = opp["outcome"].astype("str")
    closed = _dates(opp, "close_date")[outcome.isin(["won", "lost"]).to_numpy()]
    window = _span(closed, grain, events=True, calendar=cal)
    if window is None:
        raise DataError("no won or lost deal has a close date: bookings, the series to explain, cannot be computed")
    has_act = "activities" in tables and not tables["activities"].empty
    kpis = ["bookings", "opportunities_created"] + (["activity_volume"] if has_act else [])
    end_day = cal.next_period_start(window[1], grain) - pd.Timedelta(days=1)
    k = compute_kpis(tables, grain=grain, levels=(level,), kpis=kpis, start=window[0], end=end_day, calendar=cal)
    k = k[["entity_id", "period", "kpi", "segment", "value"]]
    kpi = k["kpi"].astype("str")

    target = k.loc[kpi == "bookings", ["entity_id", "period", "value"]].reset_index(drop=True)
    parts = []
    created_span = _span(_dates(opp, "created_date"), grain, events=True, calendar=cal)
    created = _clip(k[kpi == "opportunities_created"], created_span)
    parts.append(created.assign(candidate="opportunities_created")[list(CANDIDATE_COLUMNS)])
    if "pipeline_added" not in unusable_candidates(tables) and "amount" in opp:
        rows = created[["entity_id", "period"]]
        parts.append(_pipeline_added(tables, rows, level=level, grain=grain, calendar=cal))
    if has_act:
        act_span = _span(_dates(tables["activities"], "date"), grain, events=False, calendar=cal)
        act = _clip(k[kpi == "activity_volume"], act_span)
        parts.append(act.assign(candidate="activity:" + act["segment"].astype("str"))[list(CANDIDATE_COLUMNS)])
    if "indicators" in tables and not tables["indicators"].empty:
        parts.append(_indicators(tables, target, level=level, grain=grain, window=window, calendar=cal))
    cand = pd.concat(parts, ignore_index=True)
    cand["candidate"] = cand["candidate"].astype("str")
    cand["entity_id"] = cand["entity_id"].astype("str")
    return target, cand.sort_values(["candidate", "entity_id", "period"], ignore_index=True)


def _entity_of_agent(tables: dict[str, pd.DataFrame], level: str) -> pd.DataFrame:
    """``agent_id -> entity_id`` at ``level``."""
    agents = tables["agents"][["agent_id", "territory_id"]].astype("str")
    if level == "agent":
        return pd.DataFrame({"agent_id": agents["agent_id"], "entity_id": agents["agent_id"]})
    if level == "territory":
        return pd.DataFrame({"agent_id": agents["agent_id"], "entity_id": agents["territory_id"]})
    return pd.DataFrame({"agent_id": agents["agent_id"], "entity_id": COMPANY})


def _pipeline_added(
    tables: dict[str, pd.DataFrame], rows: pd.DataFrame, *, level: str, grain: str, calendar: Calendar
) -> pd.DataFrame:
    """Sum of amounts of opportunities created, on the rows of ``opportunities_created``."""
    opp = tables["opportunities"]
    frame = pd.DataFrame(
        {
            "agent_id": opp["agent_id"].astype("str"),
            "period": calendar.period_start(_dates(opp, "created_date"), grain),
            "amount": pd.to_numeric(opp["amount"], errors="coerce").fillna(0.0),
        }
    ).merge(_entity_of_agent(tables, level), on="agent_id", how="inner")
    sums = frame.groupby(["entity_id", "period"], as_index=False)["amount"].sum()
    out = rows.merge(sums, on=["entity_id", "period"], how="left")
    return pd.DataFrame(
        {
            "entity_id": out["entity_id"],
            "period": out["period"],
            "candidate": "pipeline_added",
            "value": out["amount"].fillna(0.0),
        }
    )


def _indicators(
    tables: dict[str, pd.DataFrame],
    target: pd.DataFrame,
    *,
    level: str,
    grain: str,
    window: tuple[pd.Timestamp, pd.Timestamp],
    calendar: Calendar,
) -> pd.DataFrame:
    """Indicator rows mapped onto the entities of ``level`` (see the module docstring)."""
    ind = tables["indicators"]
    if "territory_id" in ind:
        terr = ind["territory_id"].astype("str")
    else:
        terr = pd.Series(np.nan, index=ind.index, dtype="str")
    frame = pd.DataFrame(
        {
            "name": "indicator:" + ind["name"].astype("str"),
            "territory_id": terr.fillna(""),
            "period": calendar.period_start(_dates(ind, "date"), grain),
            "value": pd.to_numeric(ind["value"], errors="coerce"),
        }
    ).dropna(subset=["period", "value"])
    frame = _clip(frame, window)
    per = frame.groupby(["name", "territory_id", "period"], as_index=False)["value"].mean()
    wide = per[per["territory_id"] == ""].drop(columns="territory_id")
    local = per[per["territory_id"] != ""]
    entities = pd.DataFrame({"entity_id": pd.unique(target["entity_id"])})
    parts = [wide.merge(entities, how="cross")]
    if not local.empty:
        if level == "territory":
            parts.append(local.rename(columns={"territory_id": "entity_id"}))
        elif level == "agent":
            agents = tables["agents"][["agent_id", "territory_id"]].astype("str")
            agents = agents[agents["agent_id"].isin(entities["entity_id"])]
            m = local.merge(agents, on="territory_id", how="inner")
            parts.append(m.rename(columns={"agent_id": "entity_id"}).drop(columns="territory_id"))
        else:
            s = local.groupby(["name", "period"], as_index=False)["value"].sum()
            parts.append(s.assign(entity_id=COMPANY))
    out = pd.concat(parts, ignore_index=True)
    out = out.groupby(["entity_id", "period", "name"], as_index=False)["value"].sum()
    return out.rename(columns={"name": "candidate"})[list(CANDIDATE_COLUMNS)]


def bookings_series(
    dataset: Dataset | Mapping[str, pd.DataFrame], *, level: str, grain: str = "week", calendar: Calendar | None = None
) -> pd.DataFrame:
    """Bookings per entity and period: the series leading indicators should predict.

    ``bookings(e, t) = sum of amount over deals of e won with close date in t`` (the
    ``bookings`` KPI), for every period of the bookings window (module docstring) in which
    the entity has a row (agents: while employed or while something of theirs closes).

    Parameters
    ----------
    dataset : Dataset or mapping of str to DataFrame
        Typed canonical tables (:func:`spm_models.data.validation.validate`).
    level : {"agent", "territory", "company"}
    grain : {"week", "month", "quarter"}, default "week"

    Returns
    -------
    DataFrame
        ``entity_id`` (str), ``period`` (datetime64, period start), ``value`` (float).

    Raises
    ------
    ConfigError
        Unknown level or grain.
    DataError
        No opportunities, or no closed deal with a close date.
    """
    return build_series(dataset, level=level, grain=grain, calendar=calendar)[0]


def candidate_series(
    dataset: Dataset | Mapping[str, pd.DataFrame], *, level: str, grain: str = "week", calendar: Calendar | None = None
) -> pd.DataFrame:
    """Candidate leading indicators per entity and period (see the module docstring).

    Parameters
    ----------
    dataset : Dataset or mapping of str to DataFrame
        Typed canonical tables (:func:`spm_models.data.validation.validate`).
    level : {"agent", "territory", "company"}
    grain : {"week", "month", "quarter"}, default "week"

    Returns
    -------
    DataFrame
        ``entity_id``, ``period``, ``candidate`` (str, e.g. ``activity:demo``), ``value``;
        one row per candidate, entity and period where the candidate is observed. Candidates
        listed by :func:`unusable_candidates` are left out.

    Raises
    ------
    ConfigError
        Unknown level or grain.
    DataError
        No opportunities, or no closed deal with a close date (the window is set by bookings).
    """
    return build_series(dataset, level=level, grain=grain, calendar=calendar)[1]


def panels(
    target: pd.DataFrame, candidates: pd.DataFrame, *, grain: str, calendar: Calendar = DEFAULT_CALENDAR
) -> tuple[np.ndarray, pd.DatetimeIndex, np.ndarray, dict[str, np.ndarray]]:
    """The long target and candidate frames as dense entities x periods arrays.

    Entities are those of the target, periods every one from its first to its last (gaps
    included).

    Returns
    -------
    entities : ndarray of str (E,)
    periods : DatetimeIndex (T,)
    y : ndarray (E, T)
        The target, NaN where it has no row.
    candidates : dict of str to ndarray (E, T)
        One array per candidate, in name order, NaN where not observed.

    Raises
    ------
    ConfigError
        Unknown grain, or a frame without the expected columns.
    DataError
        An empty target, or two rows for the same key.
    """
    check_grain(grain, INDICATOR_GRAINS)
    for name, frame, cols in (("target", target, TARGET_COLUMNS), ("candidates", candidates, CANDIDATE_COLUMNS)):
        missing = [c for c in cols if c not in frame]
        if missing:
            maker = "bookings_series" if name == "target" else "candidate_series"
            raise ConfigError(f"the {name} frame lacks column(s) {', '.join(missing)}; build it with {maker}()")
        keys = [c for c in cols if c != "value"]
        if frame.duplicated(subset=keys).any():
            raise DataError(f"the {name} frame has two rows for the same {', '.join(keys)}; sum or drop them first")
    if target.empty:
        raise DataError("the bookings series is empty: there is nothing to explain")
    periods = calendar.period_range(target["period"].min(), target["period"].max(), grain)
    entities = np.asarray(pd.unique(target["entity_id"].astype("str")), dtype=object)
    names = candidates["candidate"].astype("str")
    xs = {
        str(name): to_panel(part, entities=entities, periods=periods)
        for name, part in candidates.groupby(names, sort=True)
    }
    return entities, periods, to_panel(target, entities=entities, periods=periods), xs
