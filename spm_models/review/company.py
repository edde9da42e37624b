"""HTML fragments of the company's monthly review: its cards, the territories side by side, the
leaderboard, lead channels and cohorts, awards, last month's accuracy per level, which model made
the forecast and why, and the leading indicators with what they imply.

Split from :mod:`spm_models.review.render` (the fragments every page uses), whose rules these
follow: text from the data is escaped, numbers are formatted in their unit, ``None`` writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from spm_models.present.format import format_value, indicator_label
from spm_models.review.render import (
    Html,
    _by_quarter,
    _columns,
    _e,
    _lead_text,
    _with_chance,
    bullets,
    cards,
    note,
    table,
)

__all__ = [
    "accuracy_table",
    "channel_table",
    "cohort_table",
    "company_cards",
    "leaderboard_table",
    "leading_indicator_notes",
    "leading_indicator_table",
    "model_choice_section",
    "recognition_list",
    "territory_table",
]


def _leading_rows(table: pd.DataFrame) -> pd.DataFrame:
    return table[table["leading"].astype(bool)] if table is not None and len(table) else pd.DataFrame()


def leading_indicator_table(table: pd.DataFrame, *, currency: str) -> Html:
    """The monthly review's leading indicators: lag, recent movement, what it implies, with its range.

    ``table`` is the run's ``leading_indicators`` artifact
    (:func:`spm_models.indicators.summary.leading_indicator_summary`); only indicators that passed
    every check of discovery are listed (the others: :func:`leading_indicator_notes`).
    """
    found = _leading_rows(table)
    if found.empty:
        return note("No leading indicator of bookings passed every check on these data.")
    rows = []
    for r in found.itertuples(index=False):
        weeks = int(r.lag)
        recent, usual = format_value(r.recent, "count", digits=1), format_value(r.usual, "count", digits=1)
        moved = (
            f"{recent} on average, against {usual} in the year before ({format_value(r.change, 'ratio')} change)"
            if np.isfinite(r.change)
            else f"{recent} on average"
        )
        amount = format_value(r.implied_amount, "currency", currency=currency)
        implied = f"{r.implied:+.1%} on usual bookings, about {amount} over the {weeks} weeks"
        span = f"{r.implied_low:+.1%} to {r.implied_high:+.1%}"
        cells = (indicator_label(r.candidate).capitalize(), _lead_text(weeks), moved, implied, span)
        rows.append("<tr>" + "".join(f'<td class="t">{_e(c)}</td>' for c in cells) + "</tr>")
    head = (
        "<tr><th>Indicator</th><th>Leads bookings by</th><th>Its last weeks (as many as it leads by)</th>"
        "<th>What that implies for the next weeks</th><th>80% range</th></tr>"
    )
    return Html(f'<table class="spm-table"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>')


def leading_indicator_notes(table: pd.DataFrame) -> Html:
    """What else was tested and why it is not shown (one sentence per candidate)."""
    if table is None or len(table) == 0:
        return note("Leading indicators were not looked for in this run.")
    rest = table[~table["leading"].astype(bool)]
    names = sorted((c for c in table["candidate"].astype("str") if c), key=len, reverse=True)

    def readable(verdict: str) -> str:  # the verdicts name candidates by id: say them as in the table
        for name in names:
            verdict = verdict.replace(name, indicator_label(name))
        return verdict

    items = [
        f"{indicator_label(c).capitalize()}: {readable(v)}." if c else f"{str(v)[0].upper()}{str(v)[1:]}."
        for c, v in zip(rest["candidate"].astype("str"), rest["verdict"].astype("str"))
    ]
    return bullets(items, empty="Every candidate tested leads bookings.")


def company_cards(
    company: pd.DataFrame,
    *,
    currency: str,
    month: str = "",
    quarter: str = "",
    closed: bool = False,
    has_quota: bool = True,
    conversion: tuple[str, float] | None = None,
) -> Html:
    """The company's month and quarter in a few numbers, each naming its period.

    Attainment only with quotas; the close-period win rate, or where the data cannot support it
    the ``conversion`` card that stands in for it (:class:`~spm_models.review.views.MonthlyView`).
    """
    if company is None or len(company) == 0:
        return note("No company figures.")
    c = company.iloc[0]
    money = lambda v: format_value(v, "currency", currency=currency)  # noqa: E731
    q = quarter or "the quarter"
    done = "(final)" if closed else "to date"
    items = [
        (f"Bookings {month or 'this month'}", money(c["bookings_month"])),
        (f"Bookings {q} {done}", money(c["bookings_qtd"])),
    ]
    if has_quota:
        items.append((f"Attainment {q} {done}", format_value(c["attainment_qtd"], "ratio")))
    if conversion is not None:
        items.append((conversion[0], format_value(conversion[1], "ratio")))
    elif pd.notna(c["win_rate_qtd"]):
        items.append((f"Win rate {q} {done}", format_value(c["win_rate_qtd"], "ratio")))
    return cards(items)


def territory_table(
    territories: pd.DataFrame,
    outlook: pd.DataFrame,
    *,
    currency: str,
    month: str = "",
    review_quarter: str = "this quarter",
    quarter: str | None = None,
    closed: bool = False,
    has_quota: bool = True,
) -> Html:
    """Territories side by side, every column naming its period (quota columns only with quotas).

    Mid-quarter one table: the month, the quarter so far and its forecast (the same quarter).
    At a quarter end (``closed``) two tables under their own headings: the quarter that closed
    (final bookings, quota, attainment) and the next quarter (``quarter``): its quota, expected
    total and chance of reaching quota. A row never mixes two quarters.
    """
    ahead = quarter or review_quarter
    f = territories.merge(
        outlook[
            ["territory_id", "quota", "expected_bookings", "p_quota"] + (["reached"] if "reached" in outlook else [])
        ].rename(columns={"quota": "quota_ahead"}),
        on="territory_id",
        how="left",
    )
    f = _with_chance(f)
    done = "(final)" if closed else "so far"
    past = {
        "territory_name": ("Territory", "text"),
        "n_agents": ("Agents", "count"),
        "bookings_month": (f"Bookings {month or 'this month'}", "currency"),
        "bookings_qtd": (f"Booked in {review_quarter} {done}", "currency"),
        "quota_qtd": (f"Quota {review_quarter}", "currency"),
        "attainment_qtd": (f"Attainment {review_quarter} {done}", "ratio"),
    }
    future = {
        "expected_bookings": (f"Expected {ahead} total (mean)", "currency"),
        "chance": (f"Chance of reaching the {ahead} quota", "chance"),
    }
    return _by_quarter(
        f,
        past=past,
        future={"quota_ahead": (f"Quota {ahead}", "currency"), **future} if closed else future,
        name={"territory_name": ("Territory", "text")},
        quarters=(review_quarter, ahead),
        closed=closed,
        has_quota=has_quota,
        currency=currency,
    )


def leaderboard_table(
    leaderboard: pd.DataFrame, *, currency: str, quarter: str = "", closed: bool = False, has_quota: bool = True
) -> Html:
    """The top agents of the quarter, so far or final once it has closed (attainment only with
    quotas; the win rate only where the data support it)."""
    q = quarter or "this quarter"
    done = "(final)" if closed else "so far"
    columns = {
        "rank": ("Rank", "count"),
        "agent_name": ("Agent", "text"),
        "bookings_qtd": (f"Booked in {q} {done}", "currency"),
        "attainment_qtd": (f"Attainment {q} {done}", "ratio"),
    }
    if leaderboard is not None and leaderboard["win_rate_qtd"].notna().any():
        columns["win_rate_qtd"] = (f"Win rate {q} {done}", "ratio")
    return table(leaderboard, _columns(columns, has_quota=has_quota), currency=currency)


def channel_table(channels: pd.DataFrame | None, *, spend_currency: str) -> Html:
    """Leads of the last 12 months by channel: how many, how many won by now, conversion, time to
    win, and cost per lead and per won deal where spend is given, in ``spend_currency`` (marketing
    spend is money even when bookings are counted in deals). Nothing for ``None``."""
    if channels is None:
        return Html("")
    f = channels.assign(channel=channels["channel"].replace({"": "All channels"}))
    for col in ("cost_per_lead", "cost_per_win"):
        f[col] = [format_value(v, "currency", currency=spend_currency) for v in f[col]]
    columns = {
        "channel": ("Channel", "text"),
        "leads_created": ("Leads", "count"),
        "won": ("Won by now", "count"),
        "lead_to_win": ("Conversion", "ratio"),
        "leads_undecided": ("Undecided", "count"),
        "days_to_win": ("Median days to win", "days"),
    }
    if f["channel_spend"].notna().any():
        columns |= {"cost_per_lead": ("Cost per lead", "text"), "cost_per_win": ("Cost per won deal", "text")}
    return table(f, columns, empty="No leads in the last 12 months.")


def cohort_table(cohorts: pd.DataFrame | None) -> Html:
    """Monthly cohorts: created, won by now, still undecided, and the share won (nothing for ``None``)."""
    if cohorts is None:
        return Html("")
    f = cohorts.assign(month=pd.DatetimeIndex(cohorts["period"]).strftime("%b %Y"))
    return table(
        f,
        {
            "month": ("Created in", "text"),
            "created": ("Created", "count"),
            "won": ("Won by now", "count"),
            "undecided": ("Still undecided", "count"),
            "conversion": ("Won, share of created", "ratio"),
        },
        empty="Nothing created in the last 12 months.",
    )


def recognition_list(recognition: pd.DataFrame) -> Html:
    """Awards of the month as a list: "award: name (what they did)"."""
    return bullets(
        [f"{a}: {n} ({t})" for a, n, t in zip(recognition["award"], recognition["agent_name"], recognition["text"])],
        empty="No awards this month.",
    )


def accuracy_table(by_level: pd.DataFrame, *, currency: str) -> Html:
    """Last month's forecast accuracy per level."""
    return table(
        by_level,
        {
            "level": ("Level", "text"),
            "n": ("Forecasts checked", "count"),
            "share_in_80": ("Actual inside the 80% range", "ratio"),
            "median_abs_pct_error": ("Median absolute error (% of forecast)", "ratio"),
            "forecast_total": ("Forecast total", "currency"),
            "actual_total": ("Actual total", "currency"),
        },
        currency=currency,
        empty="No forecast from last month to check.",
    )


def model_choice_section(model_choice: Mapping[str, Any] | None, model: Mapping[str, Any] | None = None) -> Html:
    """Which model made the forecast, and why: the pick per level with its reason, then the
    backtest that chose it (mean scaled CRPS, MASE and 80% coverage of every candidate, lower
    is better for the first two), from ``run.json``'s ``model_choice``; for a model named in
    the settings, a sentence saying so."""
    if not model_choice:
        name = (model or {}).get("name", "the model named in the settings")
        return note(f"The forecast uses {name}, named in the review settings; it was not compared with other models.")
    picks = model_choice.get("picks", {})
    reasons = model_choice.get("reasons", {})
    origins = model_choice.get("origins", [])
    intro = note(
        f"The review compared its candidate models on this organisation's own history: each was fitted at "
        f"{len(origins)} past dates ({', '.join(origins)}) and scored on the next {model_choice.get('horizon')} "
        "weeks, per level; the simplest model within one standard error of the best was picked."
    )
    levels = [lv for lv in ("agent", "territory", "company") if lv in picks]
    listed = bullets([f"{lv.capitalize()}: {reasons.get(lv, picks[lv])}" for lv in levels])
    scores = pd.DataFrame(model_choice.get("scores") or [])
    if scores.empty:
        return Html(intro + listed)
    scores = scores.assign(status=scores["status"].fillna("").astype(str))
    return Html(
        intro
        + listed
        + table(
            scores,
            {
                "level": ("Level", "text"),
                "candidate": ("Model", "text"),
                "scaled_crps": ("Scaled CRPS", "score"),
                "mase": ("MASE", "score"),
                "coverage_80": ("In the 80% range", "ratio"),
                "status": ("", "text"),
            },
        )
    )
