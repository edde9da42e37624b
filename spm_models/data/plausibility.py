"""Values that parse but cannot be right: the plausibility rules of the data contract.

:func:`spm_models.data.validation.validate` converts every cell to its type first; these rules
then look at what the values mean. Errors stop the ingest like any other problem (exit code 2,
every problem listed, nothing stored); warnings are stored with the data and printed.

Errors
------
* **Dates outside the window** ``earliest_date`` to ``latest_date`` (project settings,
  :class:`spm_models.config.ProjectSettings`; 1980-01-01 to 2100-12-31 by default). A deal
  closed on 9999-12-31 would make every weekly table run to the year 9999, and one in the year
  0001 would make it start there. Placeholders that mean "no date" are allowed only where an
  empty cell means the same: a leave date of 9999-12-31 (or 2999-12-31, 3000-01-01) is read as
  "still employed", a hire date of 1900-01-01 (or 0001-01-01, 1753-01-01, 1899-12-30,
  1899-12-31, 1970-01-01) as "employed before the data start"; each is a warning.
* **Numbers too large for their type**: a count above :data:`MAX_COUNT` (``2**53 - 1``: larger
  integers lose precision as numbers and overflow the warehouse's 64-bit integers once summed);
  an amount or indicator value whose size exceeds :data:`MAX_AMOUNT` (``1e18``: sums of such
  values stay finite and exact to well under one unit for any real currency).
* **Control characters** in ids and text (``U+0000`` to ``U+001F`` except tab and line breaks,
  ``U+007F`` to ``U+009F``, the Unicode line separators and the bidirectional overrides such as
  ``U+202E``): invisible, they break files and pages downstream or show text in another order.
* **Overlapping targets**: two targets of one agent (or one territory) whose periods overlap
  would be added together; both rows are named.

Warnings
--------
* A deal created after its agent's leave date; activity logged after it.
* A stage entered before its opportunity was created, or after it closed.
* Events dated after today (deals created or closed, stages entered, activities).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

__all__ = [
    "MAX_COUNT",
    "MAX_AMOUNT",
    "FAR_FUTURE_NONE",
    "FAR_PAST_NONE",
    "table_rules",
    "cross_table_rules",
]

#: Largest count stored: every integer up to it is exact as a number (2**53 - 1).
MAX_COUNT = 2**53 - 1
#: Largest size of an amount or indicator value.
MAX_AMOUNT = 1e18
#: Placeholders that mean "no date" in a column where empty means "not yet" (a leave date).
FAR_FUTURE_NONE = ("9999-12-31", "9999-12-30", "9999-01-01", "2999-12-31", "3000-01-01")
#: Placeholders that mean "no date" in a column where empty means "since before the data" (a hire date).
FAR_PAST_NONE = ("0001-01-01", "1753-01-01", "1899-12-30", "1899-12-31", "1900-01-01", "1970-01-01")
#: Date columns whose out-of-window placeholders mean "none": column -> (placeholders, meaning).
_NONE_DATES = {
    ("agents", "leave_date"): (FAR_FUTURE_NONE, "no leave date (still employed)"),
    ("agents", "hire_date"): (FAR_PAST_NONE, "no hire date (employed before the data start)"),
}
#: Columns that record something that has happened (a date after today is suspicious).
_EVENT_DATES = {
    "opportunities": ("created_date", "close_date"),
    "stage_history": ("entered_date",),
    "activities": ("date",),
}
#: Invisible characters that are never data: C0 and C1 controls (not tab; line breaks have their
#: own rule), Unicode line and paragraph separators, and the bidirectional overrides that make
#: text display in another order than it is stored.
_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]"

#: ``report(table, positions, column, rule, *, warn=False, summary=False)`` records one problem
#: per position (or one warning for all of them with ``summary``); supplied by the validation.
Report = Callable[..., None]


def _positions(mask) -> np.ndarray:
    return np.flatnonzero(np.asarray(mask, dtype=bool))


def _usable(typed: pd.DataFrame, bad: Mapping[str, pd.Series], column: str) -> np.ndarray:
    ok = typed[column].notna().to_numpy(dtype=bool, copy=True)
    if column in bad:
        ok &= ~bad[column].to_numpy(dtype=bool)
    return ok


def _mark_bad(bad: dict[str, pd.Series], typed: pd.DataFrame, column: str, mask: np.ndarray) -> None:
    """Later rules skip cells already reported (as after a failed conversion)."""
    old = bad[column].to_numpy() if column in bad else np.zeros(len(typed), dtype=bool)
    bad[column] = pd.Series(old | mask, index=typed.index)


def _day(text: str) -> np.datetime64:
    return np.datetime64(text, "us")


def _dates(name, spec, typed, bad, report: Report, window) -> None:
    earliest, latest = (np.datetime64(pd.Timestamp(w).to_datetime64(), "us") for w in window)
    span = f"{pd.Timestamp(earliest):%Y-%m-%d} to {pd.Timestamp(latest):%Y-%m-%d}"
    for col in spec.columns:
        if col.kind != "date":
            continue
        values = typed[col.name].to_numpy(dtype="datetime64[us]")
        ok = _usable(typed, bad, col.name)
        outside = ok & ((values < earliest) | (values > latest))
        if not outside.any():
            continue
        placeholders, meaning = _NONE_DATES.get((name, col.name), ((), ""))
        is_none = outside & np.isin(values, [_day(p) for p in placeholders])
        if is_none.any():
            found = ", ".join(f"{pd.Timestamp(v):%Y-%m-%d}" for v in np.unique(values[is_none]))
            report(
                name,
                _positions(is_none),
                col.name,
                f"placeholder date {found} read as {meaning}",
                warn=True,
                summary=True,
            )
            typed.loc[is_none, col.name] = pd.NaT
            outside &= ~is_none
        if outside.any():
            report(
                name,
                _positions(outside),
                col.name,
                f"date outside the plausible range {span}; if it stands for 'no date', leave the cell "
                "empty (if it is a real date, widen earliest_date or latest_date in spm.toml)",
            )
            _mark_bad(bad, typed, col.name, outside)
            typed.loc[outside, col.name] = pd.NaT  # rules comparing dates skip it


def _numbers(name, spec, typed, bad, report: Report) -> None:
    for col in spec.columns:
        if col.kind not in {"count", "money", "float"}:
            continue
        values = typed[col.name].to_numpy(dtype="float64", na_value=np.nan)
        ok = _usable(typed, bad, col.name)
        if col.kind == "count":
            over = ok & (values > MAX_COUNT)
            rule = f"{col.name} is too large: a count must be at most {MAX_COUNT:,}"
        else:
            over = ok & (np.abs(values) > MAX_AMOUNT)
            rule = f"{col.name} is too large: the size of a value must be at most {MAX_AMOUNT:,.0f}"
        if over.any():
            report(name, _positions(over), col.name, rule)
            _mark_bad(bad, typed, col.name, over)


def _control_characters(name, spec, typed, bad, report: Report) -> None:
    for col in spec.columns:
        if col.kind not in {"id", "text"}:
            continue
        codes, uniques = pd.factorize(typed[col.name])  # ids repeat a lot: look at each value once
        flagged = pd.Series(uniques, dtype="str").str.contains(_CONTROL, regex=True).to_numpy(dtype=bool)
        hit = (codes >= 0) & np.append(flagged, False)[codes] & _usable(typed, bad, col.name)
        if hit.any():
            report(
                name,
                _positions(hit),
                col.name,
                "invisible control character (such as a NUL byte) in the text; remove it in the source system",
            )
            _mark_bad(bad, typed, col.name, hit)


def _overlapping_targets(typed, bad, report: Report, rows: np.ndarray) -> None:
    usable = _usable(typed, bad, "period_start") & _usable(typed, bad, "period_end")
    usable &= (typed["period_end"] >= typed["period_start"]).to_numpy()
    for owner in ("agent_id", "territory_id"):
        other = "territory_id" if owner == "agent_id" else "agent_id"
        mine = usable & typed[owner].notna().to_numpy() & typed[other].isna().to_numpy()
        frame = typed.loc[mine, [owner, "period_start", "period_end"]].copy()
        if len(frame) < 2:
            continue
        frame["pos"] = np.flatnonzero(mine)
        frame = frame.sort_values([owner, "period_start", "period_end", "pos"], kind="stable")
        ids = frame[owner].to_numpy()
        starts = frame["period_start"].to_numpy()
        ends = frame["period_end"].to_numpy()
        pos = frame["pos"].to_numpy()
        hits, partners = [], []
        reach, holder = ends[0], pos[0]  # the latest end so far within the owner, and its row
        for k in range(1, len(frame)):
            if ids[k] != ids[k - 1]:
                reach, holder = ends[k], pos[k]
                continue
            if starts[k] <= reach:
                hits.append(pos[k])
                partners.append(holder)
            if ends[k] > reach:
                reach, holder = ends[k], pos[k]
        if hits:
            report(
                "targets",
                np.asarray(hits),
                owner,
                [
                    (
                        f"the target of {owner.removesuffix('_id')} '{typed[owner].iat[h]}' for "
                        f"{_span(typed, h)} overlaps the one for {_span(typed, p)} at row {rows[p]}; "
                        "overlapping targets would be added together: give each period one target"
                    )
                    for h, p in zip(hits, partners)
                ],
            )


def _span(typed: pd.DataFrame, k: int) -> str:
    return f"{typed['period_start'].iat[k]:%Y-%m-%d} to {typed['period_end'].iat[k]:%Y-%m-%d}"


def table_rules(
    name: str,
    spec,
    typed: pd.DataFrame,
    bad: dict[str, pd.Series],
    report: Report,
    *,
    window: tuple[pd.Timestamp, pd.Timestamp],
    rows: np.ndarray,
) -> None:
    """The rules of one table (module docstring): dates, sizes, control characters, overlaps.

    ``rows`` holds the spreadsheet row of each frame row, for messages naming a second row.
    ``typed`` is changed in place (placeholder dates that mean "none" become missing) and
    ``bad`` gains the cells reported, so later rules do not report them again.
    """
    _dates(name, spec, typed, bad, report, window)
    _numbers(name, spec, typed, bad, report)
    _control_characters(name, spec, typed, bad, report)
    if name == "targets":
        _overlapping_targets(typed, bad, report, rows)


def _after_leave(tables, bad, report: Report) -> None:
    agents = tables["agents"]
    leave = agents.set_index("agent_id")["leave_date"].dropna()
    leave = leave[~leave.index.duplicated()]
    if leave.empty:
        return
    for name, column, what in (
        ("opportunities", "created_date", "deal created after its agent's leave date"),
        ("activities", "date", "activity logged after its agent's leave date"),
    ):
        if name not in tables:
            continue
        t = tables[name]
        left = t["agent_id"].map(leave).to_numpy(dtype="datetime64[us]")
        late = _usable(t, bad.get(name, {}), column) & (t[column].to_numpy(dtype="datetime64[us]") > left)
        if late.any():
            report(name, _positions(late), column, f"{what}; check the agent or the date", warn=True, summary=True)


def _stages_out_of_time(tables, bad, report: Report) -> None:
    if "stage_history" not in tables or "opportunities" not in tables:
        return
    sh, opp = tables["stage_history"], tables["opportunities"]
    o = opp.drop_duplicates("opportunity_id").set_index("opportunity_id")
    entered = sh["entered_date"].to_numpy(dtype="datetime64[us]")
    ok = _usable(sh, bad.get("stage_history", {}), "entered_date")
    created = sh["opportunity_id"].map(o["created_date"]).to_numpy(dtype="datetime64[us]")
    closed = sh["opportunity_id"].map(o["close_date"]).to_numpy(dtype="datetime64[us]")
    for mask, what in (
        (ok & (entered < created), "stage entered before its opportunity was created"),
        (ok & (entered > closed), "stage entered after its opportunity was closed"),
    ):
        if mask.any():
            report(
                "stage_history", _positions(mask), "entered_date", f"{what}; check the dates", warn=True, summary=True
            )


def _future_events(tables, bad, report: Report, today: pd.Timestamp) -> None:
    limit = np.datetime64(pd.Timestamp(today).normalize().to_datetime64(), "us")
    for name, columns in _EVENT_DATES.items():
        if name not in tables:
            continue
        t = tables[name]
        for col in columns:
            future = _usable(t, bad.get(name, {}), col) & (t[col].to_numpy(dtype="datetime64[us]") > limit)
            if future.any():
                report(
                    name,
                    _positions(future),
                    col,
                    f"date after today ({pd.Timestamp(limit):%Y-%m-%d}) for something that has happened; "
                    "check the export",
                    warn=True,
                    summary=True,
                )


def cross_table_rules(
    tables: Mapping[str, pd.DataFrame],
    bad: Mapping[str, Mapping[str, pd.Series]],
    report: Report,
    *,
    today: pd.Timestamp,
) -> None:
    """Warnings that need two tables, or today's date (module docstring)."""
    if "agents" in tables:
        _after_leave(tables, bad, report)
    _stages_out_of_time(tables, bad, report)
    _future_events(tables, bad, report, today)
