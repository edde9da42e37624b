"""HTML fragments for report cells: titles, headline cards, tables, bullet lists, provenance.

Every piece of text from the data (names, ids, account names, coaching sentences) is
escaped with :func:`html.escape`, so a name like ``<script>alert(1)</script>`` shows as text
and never runs. Each function returns an :class:`Html` object, which a notebook displays as
its cell's output (``_repr_html_``). Numbers are formatted by
:func:`spm_models.present.format.format_value` in their KPI unit, with the bookings label (a
currency, or "deals").

Reports adapt to what the data hold (:mod:`spm_models.review.profile`): :func:`section` writes
a section's heading, or one line saying why the section is not shown, and every helper given
``None`` (the view's value for a part the data do not support) writes nothing.
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
    "section",
    "absent",
    "title",
    "cards",
    "table",
    "bullets",
    "note",
    "provenance",
    "scorecard_table",
    "outlook_cards",
    "closed_quarter_cards",
    "chance_text",
    "commission_cards",
    "accuracy_text",
    "funnel_text",
    "indicator_table",
    "fallback_note",
    "p_quota_note",
    "territory_agents_table",
    "coherence_table",
    "accounts_table",
]


class Html(str):
    """A string of HTML that notebooks display as HTML."""

    def _repr_html_(self) -> str:
        return str(self)

    def __repr__(self) -> str:  # the plain-text fallback shows nothing of the markup
        return "<html fragment>"


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def section(state, heading: str, intro: str = "") -> Html:
    """A section's heading and introduction, or one line saying why it is not shown.

    Parameters
    ----------
    state : Section
        From the view's ``sections`` (``shown`` and ``reason``).
    heading, intro : str
        The section's title and its first paragraph.
    """
    if state.shown:
        return Html(f"<h2>{_e(heading)}</h2>" + (f"<p>{_e(intro)}</p>" if intro else ""))
    if not state.reason:  # a section these data have no use for (e.g. leads, in an export without them)
        return Html("")
    return Html(f'<p class="spm-note spm-absent">Not shown: {_e(heading.lower())}, because {_e(state.reason)}</p>')


def absent(state, what: str) -> Html:
    """One line saying why ``what`` is not shown, or nothing when it is (for parts of a section)."""
    return section(state, what) if not state.shown else Html("")


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
        unit, ``"text"`` for text, ``"percentile"`` (a 0-100 number shown as ``"73rd"``),
        ``"score"`` (3 decimals) or ``"chance"`` (text made by :func:`chance_text`).
    """
    if frame is None or len(frame) == 0:
        return note(empty)
    head = "".join(f"<th>{_e(h)}</th>" for h, _ in columns.values())
    rows = []
    for rec in frame[list(columns)].itertuples(index=False, name=None):
        cells = []
        for value, (_, unit) in zip(rec, columns.values()):
            if unit == "chance":  # already text (chance_text)
                text, cls = str(value), "n"
            elif unit == "score":  # a unit-free error score, to 3 decimals
                text, cls = format_value(value, "count", digits=3), "n"
            elif unit == "text":
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


def bullets(items: Iterable[str] | None, *, ordered: bool = False, empty: str = "Nothing to report.") -> Html:
    """A list of plain-text items (escaped); nothing for ``None``."""
    if items is None:
        return Html("")
    items = [str(i) for i in items]
    if not items:
        return note(empty)
    tag = "ol" if ordered else "ul"
    return Html(f'<{tag} class="spm-list">' + "".join(f"<li>{_e(i)}</li>" for i in items) + f"</{tag}>")


def note(text: str) -> Html:
    """A short paragraph of plain text (escaped); nothing for an empty text."""
    return Html(f'<p class="spm-note">{_e(text)}</p>') if text else Html("")


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


def _period_label(label: str, month: str, quarter: str, closed: bool) -> str:
    """A scorecard label with its period named: "this month" -> "in <month>", "quarter to date"
    -> "<quarter> to date" (or "(final)" once the quarter has closed)."""
    if month:
        label = label.replace("this month", f"in {month}")
    if quarter:
        label = label.replace(", quarter to date", f", {quarter} {'(final)' if closed else 'to date'}")
        label = label.replace("Quota of the quarter", f"Quota {quarter}")
    return label


def scorecard_table(
    scorecard: pd.DataFrame, *, currency: str, month: str = "", quarter: str = "", closed: bool = False
) -> Html:
    """The agent's scorecard: value, peer median and quartiles, percentile among peers; each
    line names its period (``month``, ``quarter``; ``closed`` once the quarter has ended)."""
    # a line nobody has (no quota in the data, no activity log) says nothing: leave it out
    frame = scorecard[scorecard["value"].notna() | scorecard["peer_median"].notna()].copy()
    frame["label"] = [_period_label(str(x), month, quarter, closed) for x in frame["label"]]
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


def chance_text(p: Any, reached: Any = False) -> str:
    """A chance of reaching quota as shown: ``"reached (100%)"`` when booked at or above quota."""
    if reached is True or (
        reached is not None and not isinstance(reached, str) and reached == reached and bool(reached)
    ):
        return "reached (100%)"
    return format_value(p, "ratio")


def _period_heading(text: str) -> str:
    return f'<h3 class="spm-period">{_e(text)}</h3>'


def outlook_cards(
    outlook: pd.DataFrame, *, currency: str, quarter: str, closed: bool = False, after_headline: bool = False
) -> Html:
    """Headline cards of the ``quarter`` outlook: quota, booked so far, the median total (the
    line of the fan chart), the chance of reaching quota ("reached" once booked at or above it);
    the quota cards only where there is a quota.

    ``closed``: the review month closed the quarter before ``quarter``; the cards then sit under
    their own heading, apart from that quarter's final numbers (:func:`closed_quarter_cards`).
    ``after_headline``: the page opened with :func:`spm_models.review.page.headline_cards`, so
    what they showed (the chance of reaching quota; without a quota, the median total and the
    bookings so far) is not repeated.
    """
    if outlook is None or len(outlook) == 0:
        return note("No forecast is available.")
    o = outlook.iloc[0]
    money = lambda v: format_value(v, "currency", currency=currency)  # noqa: E731
    quota = pd.notna(o["quota"]) and float(o["quota"]) > 0
    median = o["median_bookings"] if "median_bookings" in o else o["expected_bookings"]
    what = "median" if "median_bookings" in o else "mean"
    items = [(f"Quota {quarter}", money(o["quota"]))] if quota else []
    if not closed and (quota or not after_headline):
        items.append((f"Booked in {quarter} so far", money(o["closed_to_date"])))
    if quota or not after_headline:
        items.append((f"Expected {quarter} total ({what})", money(median)))
    if quota and not after_headline:
        items.append((f"Chance of reaching the {quarter} quota", chance_text(o["p_quota"], o.get("reached", False))))
    if not items:
        return Html("")
    head = _period_heading(f"{quarter}: the quarter ahead") if closed else ""
    return Html(head + cards(items))


def closed_quarter_cards(closed: pd.DataFrame, *, currency: str, quarter: str, after_headline: bool = False) -> Html:
    """The final numbers of the quarter a quarter-end review closes (empty when none).

    ``after_headline``: the page's headline cards already gave the final attainment (or, without
    a quota, the final bookings); that card is not repeated.
    """
    if closed is None or len(closed) == 0:
        return Html("")
    c = closed.iloc[0]
    money = lambda v: format_value(v, "currency", currency=currency)  # noqa: E731
    quota = pd.notna(c["quota"])
    items = [] if after_headline and not quota else [(f"Booked in {quarter} (final)", money(c["bookings"]))]
    if quota:
        items.append((f"Quota {quarter}", money(c["quota"])))
        if not after_headline:
            items.append((f"Attainment {quarter} (final)", format_value(c["attainment"], "ratio")))
    if "payout" in c and pd.notna(c["payout"]):
        items.append((f"Payout {quarter} (final)", money(c["payout"])))
    if not items:
        return Html("")
    return Html(_period_heading(f"{quarter}: the quarter that closed") + cards(items))


def commission_cards(
    commission: pd.DataFrame | None, *, currency: str, quarter: str = "this quarter", after_headline: bool = False
) -> Html:
    """Expected payout of ``quarter``, its 80 % range and what is already earned (nothing for
    ``None``: no plan). ``after_headline``: the expected payout was a headline card; not repeated."""
    if commission is None:
        return Html("")
    if len(commission) == 0:
        return note("No commission estimate is available.")
    c = commission.iloc[0]
    money = lambda v: format_value(v, "currency", currency=currency)  # noqa: E731
    items = [] if after_headline else [(f"Expected payout {quarter} (mean)", money(c["expected_payout"]))]
    return cards(
        items
        + [
            (f"80% range {quarter}", f"{money(c['payout_q0.1'])} to {money(c['payout_q0.9'])}"),
            (f"Earned on {quarter} bookings so far", money(c["earned_to_date"])),
            (f"Payout at exactly 100% of the {quarter} quota", money(c["payout_at_quota"])),
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


def funnel_text(funnel: pd.DataFrame | None, *, usable: bool) -> Html:
    """Names the weakest stage against peers, or says why the funnel cannot be shown."""
    if funnel is None:
        return Html("")
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


def fallback_note(reason: str) -> Html:
    """Says when the forecast fell back to a simpler model, and why (empty otherwise)."""
    if not reason:
        return Html("")
    return note(f"Note: the forecast for this series uses a simpler model ({reason}).")


def p_quota_note(text: str) -> Html:
    """Says how the chance of reaching quota was worked out (empty when there is nothing to say)."""
    return note(text) if text else Html("")


def _columns(columns: dict, *, has_quota: bool) -> dict:
    """``columns`` without those that need a quota when there is none."""
    needs = {
        "quota_qtd",
        "attainment_qtd",
        "pipeline_coverage",
        "p_quota",
        "chance",
        "expected_attainment",
        "quota_ahead",
    }
    return columns if has_quota else {k: v for k, v in columns.items() if k not in needs}


def _with_chance(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with ``chance`` (text): its ``p_quota`` as shown, "reached (100%)" where reached."""
    reached = frame["reached"] if "reached" in frame else pd.Series(False, index=frame.index)
    return frame.assign(chance=[chance_text(p, r) for p, r in zip(frame["p_quota"], reached)])


def territory_agents_table(
    agents: pd.DataFrame,
    *,
    currency: str,
    review_quarter: str = "this quarter",
    quarter: str | None = None,
    closed: bool = False,
    has_quota: bool = True,
) -> Html:
    """The territory report's agent table, every column naming its quarter (quota columns only
    with quotas).

    Mid-quarter one table (``review_quarter`` is the quarter forecast). At a quarter end
    (``closed``) two: the closed quarter's final numbers, then the next quarter (``quarter``):
    pipeline coverage and chance of reaching quota.
    """
    ahead = quarter or review_quarter
    f = _with_chance(agents) if agents is not None and len(agents) else agents
    done = "(final)" if closed else "so far"
    past = {
        "agent_name": ("Agent", "text"),
        "bookings_qtd": (f"Booked in {review_quarter} {done}", "currency"),
        "quota_qtd": (f"Quota {review_quarter}", "currency"),
        "attainment_qtd": (f"Attainment {review_quarter} {done}", "ratio"),
    }
    future = {
        "pipeline_coverage": (f"Pipeline coverage {ahead}", "multiple"),
        "chance": (f"Chance of reaching the {ahead} quota", "chance"),
    }
    return _by_quarter(
        f,
        past={**past, "trend": ("3-month trend", "text")},
        future=future,
        name={"agent_name": ("Agent", "text")},
        quarters=(review_quarter, ahead),
        closed=closed,
        has_quota=has_quota,
        currency=currency,
    )


def _by_quarter(
    frame: pd.DataFrame,
    *,
    past: dict,
    future: dict,
    name: dict,
    quarters: tuple[str, str],
    closed: bool,
    has_quota: bool,
    currency: str,
) -> Html:
    """One table of ``past`` then ``future`` columns mid-quarter; at a quarter end (``closed``)
    two, each under its quarter's heading and led by the ``name`` column, so no row mixes two
    quarters. The quarter ahead's table is left out when, without quotas, only its name remains."""
    cols = lambda c: _columns(c, has_quota=has_quota)  # noqa: E731
    if not closed:
        return table(frame, cols({**past, **future}), currency=currency)
    now, ahead = quarters
    after = cols({**name, **future})
    return Html(
        _period_heading(f"{now}: the quarter that closed")
        + table(frame, cols(past), currency=currency)
        + (
            _period_heading(f"{ahead}: the quarter ahead") + table(frame, after, currency=currency)
            if len(after) > 1
            else ""
        )
    )


def coherence_table(
    agent_expected: pd.DataFrame, outlook: pd.DataFrame, *, currency: str, quarter: str = "", has_quota: bool = True
) -> Html:
    """Each agent's expected ``quarter`` bookings and the territory's: the sum of its agents' draws.

    Means, because means add up: the territory's expected total is its agents' expected totals summed.
    """
    q = f" {quarter}" if quarter else ""
    total = outlook.assign(agent_name="Territory (sum of the agents' forecasts)") if outlook is not None else None
    frame = (
        pd.concat([agent_expected, total], ignore_index=True) if total is not None and len(total) else agent_expected
    )
    if frame is not None and len(frame):
        frame = _with_chance(frame)
    return table(
        frame,
        _columns(
            {
                "agent_name": ("", "text"),
                "closed_to_date": (f"Booked in{q} so far", "currency"),
                "expected_remaining": (f"Expected in the rest of{q or ' the quarter'} (mean)", "currency"),
                "expected_bookings": (f"Expected{q} total (mean)", "currency"),
                "chance": (f"Chance of reaching the{q} quota", "chance"),
            },
            has_quota=has_quota,
        ),
        currency=currency,
    )


def accounts_table(accounts: pd.DataFrame | None, *, currency: str) -> Html:
    """Key accounts of the last 12 months (nothing for ``None``: the data name no accounts)."""
    if accounts is None:
        return Html("")
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
