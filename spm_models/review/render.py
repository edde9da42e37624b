"""HTML fragments for report cells: titles, headline cards, tables, bullet lists, provenance.

Every piece of text from the data (names, ids, account names, coaching sentences) is
escaped with :func:`html.escape`, so a name like ``<script>alert(1)</script>`` shows as text
and never runs. Each function returns an :class:`Html` object, which a notebook displays as
its cell's output (``_repr_html_``). Numbers are formatted by
:func:`spm_models.present.format.format_value` in their KPI unit, with the currency label.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

import numpy as np
import pandas as pd

from spm_models.present.format import format_value, indicator_label

__all__ = [
    "Html",
    "title",
    "cards",
    "table",
    "bullets",
    "note",
    "provenance",
    "scorecard_table",
    "outlook_cards",
    "commission_cards",
    "accuracy_text",
    "funnel_text",
    "indicator_table",
    "leading_indicator_table",
    "leading_indicator_notes",
    "fallback_note",
    "p_quota_note",
    "territory_agents_table",
    "coherence_table",
    "accounts_table",
    "company_cards",
    "territory_table",
    "leaderboard_table",
    "recognition_list",
    "accuracy_table",
]


class Html(str):
    """A string of HTML that notebooks display as HTML."""

    def _repr_html_(self) -> str:
        return str(self)

    def __repr__(self) -> str:  # the plain-text fallback shows nothing of the markup
        return "<html fragment>"


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def title(heading: str, *subtitle: str) -> Html:
    """``<h1>`` with the report's subject and a line of context (both escaped)."""
    sub = " &middot; ".join(_e(s) for s in subtitle if s)
    return Html(f'<header class="spm-title"><h1>{_e(heading)}</h1><p class="spm-subtitle">{sub}</p></header>')


def cards(items: Sequence[tuple[str, str]]) -> Html:
    """Headline numbers as cards: ``[(label, formatted value), ...]``."""
    body = "".join(
        f'<div class="spm-card"><div class="spm-card-value">{_e(v)}</div><div '
        f'class="spm-card-label">{_e(k)}</div></div>'
        for k, v in items
    )
    return Html(f'<div class="spm-cards">{body}</div>')


def table(
    frame: pd.DataFrame,
    columns: Mapping[str, tuple[str, str]],
    *,
    currency: str = "USD",
    empty: str = "Nothing to show.",
) -> Html:
    """An HTML table of ``frame``.

    Parameters
    ----------
    columns : mapping
        ``column -> (header, unit)``; unit is a :func:`~spm_models.present.format.format_value`
        unit, ``"text"`` for text or ``"percentile"`` (a 0-100 number shown as ``"73rd"``).
    """
    if frame is None or len(frame) == 0:
        return note(empty)
    head = "".join(f"<th>{_e(h)}</th>" for h, _ in columns.values())
    rows = []
    for rec in frame[list(columns)].itertuples(index=False, name=None):
        cells = []
        for value, (_, unit) in zip(rec, columns.values()):
            if unit == "text":
                text, cls = ("" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)), "t"
            elif unit == "percentile":
                text, cls = (_ordinal(value) if value == value and value is not None else "n/a"), "n"
            else:
                text, cls = format_value(value, unit, currency=currency), "n"
            cells.append(f'<td class="{cls}">{_e(text)}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return Html(f'<table class="spm-table"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>')


def _ordinal(p: float) -> str:
    n = int(round(float(p)))
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def bullets(items: Iterable[str], *, ordered: bool = False, empty: str = "Nothing to report.") -> Html:
    """A list of plain-text items (escaped)."""
    items = [str(i) for i in items]
    if not items:
        return note(empty)
    tag = "ol" if ordered else "ul"
    return Html(f'<{tag} class="spm-list">' + "".join(f"<li>{_e(i)}</li>" for i in items) + f"</{tag}>")


def note(text: str) -> Html:
    """A short paragraph of plain text (escaped)."""
    return Html(f'<p class="spm-note">{_e(text)}</p>')


def provenance(prov: Mapping[str, Any]) -> Html:
    """The provenance block every report ends with: run id, parameters, versions, data."""
    rows = [
        ("Run id", prov.get("run_id")),
        ("Parameters", json.dumps(prov.get("parameters", {}), sort_keys=True, ensure_ascii=False)),
        ("Package version", prov.get("package_version")),
        ("Data fingerprint (SHA-256)", prov.get("data_fingerprint")),
        ("Data as of", prov.get("data_as_of")),
        ("Forecasting model", prov.get("model")),
        ("Settings key", prov.get("settings_key")),
    ]
    body = "".join(f"<tr><th>{_e(k)}</th><td><code>{_e(v)}</code></td></tr>" for k, v in rows)
    return Html(f'<table class="spm-provenance">{body}</table>')


# --------------------------------------------------------------------------- report pieces


def scorecard_table(scorecard: pd.DataFrame, *, currency: str) -> Html:
    """The agent's scorecard: value, peer median and quartiles, percentile among peers."""
    # a line nobody has (no quota in the data, no activity log) says nothing: leave it out
    frame = scorecard[scorecard["value"].notna() | scorecard["peer_median"].notna()].copy()
    for col in ("value", "peer_p25", "peer_median", "peer_p75"):
        frame[col] = frame[col].astype(object)
    rows = []
    for rec in frame.itertuples(index=False):

        def fmt(v, unit=rec.unit):
            return format_value(v, unit, currency=currency, digits=0)

        pct = _ordinal(rec.percentile) if rec.percentile == rec.percentile and rec.percentile is not None else "n/a"
        rows.append(
            f'<tr><td class="t">{_e(rec.label)}</td><td class="n">{_e(fmt(rec.value))}</td>'
            f'<td class="n">{_e(fmt(rec.peer_median))}</td><td class="n">{_e(fmt(rec.peer_p25))} to '
            f"{_e(fmt(rec.peer_p75))}</td>"
            f'<td class="n">{_e(pct)}</td></tr>'
        )
    label = scorecard["peer_label"].iloc[0] if len(scorecard) else "peers"
    head = (
        "<tr><th>Measure</th><th>You</th><th>Peer median</th><th>Middle half of peers</th><th>Your percentile</th></tr>"
    )
    caption = f"Peers: {label}; percentiles are anonymous (100th = best)."
    return Html(
        "<table "
        f'class="spm-table"><caption>{_e(caption)}</caption><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'
    )


def outlook_cards(outlook: pd.DataFrame, *, currency: str, quarter: str) -> Html:
    """Headline cards of the quarter outlook: quota, closed, expected, P(quota)."""
    if outlook is None or len(outlook) == 0:
        return note("No forecast is available.")
    o = outlook.iloc[0]
    return cards(
        [
            (f"Quota {quarter}", format_value(o["quota"], "currency", currency=currency)),
            ("Booked so far", format_value(o["closed_to_date"], "currency", currency=currency)),
            ("Expected by quarter end", format_value(o["expected_bookings"], "currency", currency=currency)),
            ("Chance of reaching quota", format_value(o["p_quota"], "ratio")),
        ]
    )


def commission_cards(commission: pd.DataFrame, *, currency: str) -> Html:
    """Expected payout, its 80 % range and what is already earned."""
    if commission is None or len(commission) == 0:
        return note("No commission estimate is available.")
    c = commission.iloc[0]
    money = lambda v: format_value(v, "currency", currency=currency)  # noqa: E731
    return cards(
        [
            ("Expected payout this quarter", money(c["expected_payout"])),
            ("80% range", f"{money(c['payout_q0.1'])} to {money(c['payout_q0.9'])}"),
            ("Earned on bookings so far", money(c["earned_to_date"])),
            ("Payout at exactly 100% of quota", money(c["payout_at_quota"])),
        ]
    )


def accuracy_text(accuracy: pd.DataFrame, *, currency: str, month: str) -> Html:
    """One paragraph: last month's forecast range against the actual bookings."""
    if accuracy is None or len(accuracy) == 0 or pd.isna(accuracy["actual"].iloc[0]):
        return note("There is no forecast from last month to compare with (new in the review, or no earlier data).")
    a = accuracy.iloc[0]
    money = lambda v: format_value(v, "currency", currency=currency)  # noqa: E731
    verdict = "inside" if bool(a["in_80"]) else "outside"
    return note(
        f"At the end of last month the forecast for {month} was {money(a['forecast_mean'])} "
        f"(80% range {money(a['forecast_q0.1'])} to {money(a['forecast_q0.9'])}); actual bookings were "
        f"{money(a['actual'])}, {verdict} that range."
    )


def funnel_text(funnel: pd.DataFrame, *, usable: bool) -> Html:
    """Names the weakest stage against peers, or says why the funnel cannot be shown."""
    if not usable:
        return note(
            "The data do not record the stage at which lost deals were lost, so stage-to-stage conversion "
            "cannot be measured; see the win rate in the scorecard instead."
        )
    w = funnel[funnel["weakest"]] if "weakest" in funnel else funnel.iloc[0:0]
    if w.empty:
        return note("Too few decided deals per stage to compare conversion with peers.")
    r = w.iloc[0]
    stage = str(r["transition"]).replace("->", " to ").replace("_", " ")
    return note(
        f"Weakest stage against peers: {stage}, where {r['agent_rate']:.0%} of your decided deals moved on "
        f"against {r['peer_rate']:.0%} for your peers."
    )


def _lead_text(weeks: int) -> str:
    return f"{int(weeks)} week{'s' if int(weeks) != 1 else ''}"


def indicator_table(indicators: pd.DataFrame, *, currency: str) -> Html:
    """Leading indicators of the month against the agent's own history, with the lag by which each leads.

    ``lead`` (from :func:`spm_models.review.views.indicator_lags`: "3 weeks", "not found to lead"
    or "not tested") is the last column when present.
    """
    if indicators is None or len(indicators) == 0:
        return note("No leading indicators in the data for this month.")
    f = indicators.assign(
        name=[indicator_label(i).capitalize() for i in indicators["indicator"]],
        unit_=["currency" if i == "open_pipeline" else "count" for i in indicators["indicator"]],
    )
    lagged = "lead" in f
    rows = "".join(
        f'<tr><td class="t">{_e(r.name)}</td><td class="n">{_e(format_value(r.value, r.unit_, currency=currency))}</td>'
        f'<td class="n">{_e(format_value(r.history_mean, r.unit_, currency=currency))}</td><td '
        f'class="t">{_e(r.direction)}</td>' + (f'<td class="t">{_e(r.lead)}</td>' if lagged else "") + "</tr>"
        for r in f.itertuples(index=False)
    )
    head = (
        "<tr><th>Indicator</th><th>This month</th><th>Your monthly average (last 12 months)</th><th>Direction</th>"
        + ("<th>Leads bookings by</th>" if lagged else "")
        + "</tr>"
    )
    return Html(f'<table class="spm-table"><thead>{head}</thead><tbody>{rows}</tbody></table>')


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


def fallback_note(reason: str) -> Html:
    """Says when the forecast fell back to a simpler model, and why (empty otherwise)."""
    if not reason:
        return Html("")
    return note(f"Note: the forecast for this series uses a simpler model ({reason}).")


def p_quota_note(text: str) -> Html:
    """Says how the chance of reaching quota was worked out (empty when there is nothing to say)."""
    return note(text) if text else Html("")


def territory_agents_table(agents: pd.DataFrame, *, currency: str) -> Html:
    """The territory report's agent table."""
    return table(
        agents,
        {
            "agent_name": ("Agent", "text"),
            "bookings_qtd": ("Booked this quarter", "currency"),
            "quota_qtd": ("Quota", "currency"),
            "attainment_qtd": ("Attainment", "ratio"),
            "pipeline_coverage": ("Pipeline coverage", "multiple"),
            "p_quota": ("P(quota)", "ratio"),
            "trend": ("3-month trend", "text"),
        },
        currency=currency,
    )


def coherence_table(agent_expected: pd.DataFrame, outlook: pd.DataFrame, *, currency: str) -> Html:
    """Each agent's expected quarter bookings and the territory's: the sum of its agents' draws."""
    total = outlook.assign(agent_name="Territory (sum of the agents' forecasts)") if outlook is not None else None
    frame = (
        pd.concat([agent_expected, total], ignore_index=True) if total is not None and len(total) else agent_expected
    )
    return table(
        frame,
        {
            "agent_name": ("", "text"),
            "closed_to_date": ("Booked so far", "currency"),
            "expected_remaining": ("Expected in the rest of the quarter", "currency"),
            "expected_bookings": ("Expected quarter total", "currency"),
            "p_quota": ("P(quota)", "ratio"),
        },
        currency=currency,
    )


def accounts_table(accounts: pd.DataFrame, *, currency: str) -> Html:
    """Key accounts of the last 12 months."""
    return table(
        accounts,
        {
            "account_name": ("Account", "text"),
            "bookings": ("Bookings, last 12 months", "currency"),
            "deals_won": ("Deals won", "count"),
            "share": ("Share of the territory", "ratio"),
        },
        currency=currency,
        empty="No won deals with an account in the last 12 months.",
    )


def company_cards(company: pd.DataFrame, *, currency: str) -> Html:
    """The company's month and quarter in four numbers."""
    if company is None or len(company) == 0:
        return note("No company figures.")
    c = company.iloc[0]
    money = lambda v: format_value(v, "currency", currency=currency)  # noqa: E731
    return cards(
        [
            ("Bookings this month", money(c["bookings_month"])),
            ("Bookings, quarter to date", money(c["bookings_qtd"])),
            ("Attainment, quarter to date", format_value(c["attainment_qtd"], "ratio")),
            ("Win rate, quarter to date", format_value(c["win_rate_qtd"], "ratio")),
        ]
    )


def territory_table(territories: pd.DataFrame, outlook: pd.DataFrame, *, currency: str) -> Html:
    """Territories side by side: this quarter so far and the forecast."""
    f = territories.merge(outlook[["territory_id", "expected_bookings", "p_quota"]], on="territory_id", how="left")
    return table(
        f,
        {
            "territory_name": ("Territory", "text"),
            "n_agents": ("Agents", "count"),
            "bookings_month": ("Bookings this month", "currency"),
            "bookings_qtd": ("Booked this quarter", "currency"),
            "quota_qtd": ("Quota", "currency"),
            "attainment_qtd": ("Attainment", "ratio"),
            "expected_bookings": ("Expected quarter total", "currency"),
            "p_quota": ("P(quota)", "ratio"),
        },
        currency=currency,
    )


def leaderboard_table(leaderboard: pd.DataFrame, *, currency: str) -> Html:
    """The top agents of the quarter so far."""
    return table(
        leaderboard,
        {
            "rank": ("Rank", "count"),
            "agent_name": ("Agent", "text"),
            "bookings_qtd": ("Booked this quarter", "currency"),
            "attainment_qtd": ("Attainment", "ratio"),
            "win_rate_qtd": ("Win rate", "ratio"),
        },
        currency=currency,
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
