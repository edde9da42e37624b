"""HTML fragments a page leads with and links by: headline cards with their change since last
month, the deal tables, the movements of the month, and the navigation bar.

Like :mod:`spm_models.review.render` (whose :class:`~spm_models.review.render.Html` and escaping
they share), every text from the data is escaped, every number is formatted by
:mod:`spm_models.present.format`, and a part the data do not hold (no quota, no plan) is left
out rather than shown empty. Every column and card that shows a quarter's number names the
quarter.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from spm_models.present.format import format_change, format_value
from spm_models.review.render import Html, _e, _period_heading, chance_text, note, table

__all__ = [
    "nav",
    "headline_cards",
    "open_deals_table",
    "closed_deals_table",
    "stuck_deals_table",
    "risk_deals_table",
    "movements_table",
    "agent_links",
]


def nav(links: Sequence[tuple[str, str]]) -> Html:
    """A navigation bar of relative links (label, href): agent -> territory -> monthly review -> index."""
    if not links:
        return Html("")
    items = "".join(f'<li><a href="{_e(h)}">{_e(t)}</a></li>' for t, h in links)
    return Html(f'<nav class="spm-nav" aria-label="Reports"><ul>{items}</ul></nav>')


def _card(label: str, value: str, change: str = "", tone: str = "") -> str:
    cls = f" spm-{tone}" if tone else ""
    ch = f'<div class="spm-card-change{cls}">{_e(change)}</div>' if change else ""
    return (
        f'<div class="spm-card"><div class="spm-card-value">{_e(value)}</div>'
        f'<div class="spm-card-label">{_e(label)}</div>{ch}</div>'
    )


def _cards(items: list[str]) -> str:
    return f'<div class="spm-cards spm-headline">{"".join(items)}</div>' if items else ""


def _since(delta, unit: str, month: str, *, currency: str = "USD", good_up: bool = True) -> tuple[str, str]:
    text = format_change(delta, unit, currency=currency)
    if not text:
        return "", ""
    tone = "" if text == "no change" else ("good" if (float(delta) > 0) == good_up else "bad")
    return f"{text} since {month}" if month else text, tone


def headline_cards(
    headline: pd.DataFrame | None,
    *,
    currency: str,
    review_quarter: str,
    quarter: str,
    closed: bool = False,
    previous_month: str = "",
    has_quota: bool = True,
    plan: bool = False,
    money: str = "USD",
) -> Html:
    """The headline first: attainment and gap to quota of ``review_quarter``, the chance of reaching
    the ``quarter`` quota and (with a plan) the expected payout and the next commission tier, each
    with its change since ``previous_month``.

    At a quarter end (``closed``) the two quarters sit in two groups under their own headings;
    the quarter ahead had no forecast last month, so its cards show no change. Without quotas only
    bookings are shown. ``money``: the currency of payouts (money even when bookings are deals).
    """
    if headline is None or len(headline) == 0:
        return Html("")
    h = headline.iloc[0]
    fmt = lambda v: format_value(v, "currency", currency=currency)  # noqa: E731
    done = "(final)" if closed else "to date"
    now = []
    if has_quota and pd.notna(h["quota_qtd"]) and h["quota_qtd"] > 0:
        now.append(
            _card(
                f"Attainment {review_quarter} {done}",
                format_value(h["attainment_qtd"], "ratio"),
                *_since(h["attainment_qtd"] - h["attainment_qtd_prev"], "ratio", previous_month),
            )
        )
        gap_label = f"Gap to the {review_quarter} quota" + (" (final)" if closed else "")
        gap_value = "none: quota reached" if h["gap"] <= 0 else fmt(h["gap"])
        now.append(
            _card(
                gap_label,
                gap_value,
                *_since(h["gap"] - h["gap_prev"], "currency", previous_month, currency=currency, good_up=False),
            )
        )
    else:
        now.append(
            _card(
                f"Booked in {review_quarter} {'(final)' if closed else 'so far'}",
                fmt(h["bookings_qtd"]),
                *_since(h["bookings_qtd"] - h["bookings_qtd_prev"], "currency", previous_month, currency=currency),
            )
        )
    ahead = []
    basis = str(h.get("change_basis") or "")
    if has_quota and pd.notna(h["p_quota"]):
        reached = pd.notna(h["gap"]) and h["gap"] <= 0 and not closed
        text, tone = _since(h["change_p_quota"], "ratio", previous_month)
        ahead.append(_card(f"Chance of reaching the {quarter} quota", chance_text(h["p_quota"], reached), text, tone))
    elif pd.notna(h["median_bookings"]):
        text, tone = _since(
            h["median_bookings"] - h["median_bookings_prev"], "currency", previous_month, currency=currency
        )
        ahead.append(_card(f"Expected {quarter} total (median)", fmt(h["median_bookings"]), text, tone))
    if plan and pd.notna(h["expected_payout"]):
        mon = lambda v: format_value(v, "currency", currency=money)  # noqa: E731
        text, tone = _since(h["change_payout"], "currency", previous_month, currency=money)
        ahead.append(_card(f"Expected payout {quarter} (mean)", mon(h["expected_payout"]), text, tone))
        if pd.notna(h["next_attainment"]):
            ahead.append(
                _card(
                    f"To the next commission tier of {quarter}",
                    f"{fmt(h['to_next_tier'])} more",
                    f"reaches {h['next_attainment']:.0%} of quota, where the rate rises from "
                    f"{h['rate_now']:.1%} to {h['rate_next']:.1%}",
                )
            )
        elif pd.notna(h["rate_now"]):
            ahead.append(_card(f"Commission tier of {quarter}", f"{h['rate_now']:.1%}", "the plan's top rate"))
    foot = ""
    if basis and previous_month:
        foot = (
            f"Changes since {previous_month}: against {basis}"
            + ("" if basis == "last month's review" else " (chances not yet adjusted by past quarters)")
            + "."
        )
    if not closed:
        return Html(_cards(now + ahead) + (note(foot) if foot else ""))
    return Html(
        _period_heading(f"{review_quarter}: the quarter that closed")
        + _cards(now)
        + (_period_heading(f"{quarter}: the quarter ahead") + _cards(ahead) if ahead else "")
    )


def _deal_frame(deals: pd.DataFrame) -> pd.DataFrame:
    f = deals.copy()
    f["account"] = [a or o for a, o in zip(f["account_name"].astype("str"), f["opportunity_id"].astype("str"))]
    if "stage" in f:
        f["stage_text"] = [str(s).replace("_", " ") if s is not None and s == s else "n/a" for s in f["stage"]]
    return f


def open_deals_table(
    deals: pd.DataFrame | None,
    *,
    currency: str,
    quarter: str,
    total: int | None = None,
    with_agent: bool = False,
) -> Html:
    """Open deals ranked by weighted value (amount x win probability of the pipeline model)."""
    if deals is None:
        return Html("")
    if not len(deals):
        return note("No open deals.")
    f = _deal_frame(deals)
    f["in_stage"] = [
        f"{d} (usually {u:.0f})" if np.isfinite(u) else str(d)
        for d, u in zip(f["days_in_stage"], f["usual_days_in_stage"])
    ]
    f["close"] = pd.DatetimeIndex(f["expected_close"]).strftime("%d %b %Y").fillna("not within a year")
    cols = {"account": ("Account", "text")}
    if with_agent:
        cols["agent_name"] = ("Agent", "text")
    cols |= {
        "stage_text": ("Stage", "text"),
        "age_days": ("Age (days)", "count"),
        "in_stage": ("Days in stage", "text"),
        "amount": ("Amount", "currency"),
        "p_win": ("Win probability", "ratio"),
        "p_win_quarter": (f"Win probability by the end of {quarter}", "ratio"),
        "expected_value": ("Weighted value", "currency"),
        "close": ("Likely close (week of)", "text"),
    }
    more = f" ({total} open in all)" if total and total > len(f) else ""
    caption = (
        f"Ranked by weighted value: amount times the win probability of the pipeline model{more}. Likely close: "
        "the week by which a win, if it comes, is more likely than not."
    )
    return Html(
        table(f, cols, currency=currency).replace(
            '<table class="spm-table">', f'<table class="spm-table"><caption>{_e(caption)}</caption>', 1
        )
    )


def closed_deals_table(deals: pd.DataFrame | None, *, currency: str, won: bool, with_agent: bool = False) -> Html:
    """The month's largest wins (``won``) or losses, with the stage a lost deal was lost in."""
    if deals is None:
        return Html("")
    f = _deal_frame(deals) if len(deals) else deals
    if len(deals):
        f["closed_on"] = pd.DatetimeIndex(f["close_date"]).strftime("%d %b %Y")
        f["last_stage_text"] = [
            str(s).replace("_", " ") if s is not None and s == s else "n/a" for s in f["last_stage"]
        ]
    cols = {"account": ("Account", "text")}
    if with_agent:
        cols["agent_name"] = ("Agent", "text")
    cols |= {"amount": ("Amount", "currency"), "closed_on": ("Closed on", "text")}
    cols |= {"cycle_days": ("Days from creation", "count")} if won else {"last_stage_text": ("Lost at stage", "text")}
    return table(f, cols, currency=currency, empty="No deals won this month." if won else "No deals lost this month.")


def stuck_deals_table(deals: pd.DataFrame | None, *, currency: str, with_agent: bool = False) -> Html:
    """Open deals that have sat in their stage longer than usual."""
    if deals is None:
        return Html("")
    f = _deal_frame(deals) if len(deals) else deals
    cols = {"account": ("Account", "text")}
    if with_agent:
        cols["agent_name"] = ("Agent", "text")
    cols |= {
        "stage_text": ("Stage", "text"),
        "days_in_stage": ("Days in stage", "count"),
        "usual_days_in_stage": ("Usual days in stage", "count"),
        "amount": ("Amount", "currency"),
        "p_win": ("Win probability", "ratio"),
    }
    return table(f, cols, currency=currency, empty="No deal has sat in its stage longer than usual.")


def risk_deals_table(deals: pd.DataFrame | None, *, currency: str) -> Html:
    """Deals at risk in a territory: large, and stuck or unlikely to be won late in the funnel."""
    if deals is None:
        return Html("")
    f = _deal_frame(deals) if len(deals) else deals
    cols = {
        "account": ("Account", "text"),
        "agent_name": ("Agent", "text"),
        "stage_text": ("Stage", "text"),
        "amount": ("Amount", "currency"),
        "risk": ("Why at risk", "text"),
    }
    return table(f, cols, currency=currency, empty="No large deal is stuck or unlikely to be won.")


def movements_table(
    moves: pd.DataFrame | None,
    *,
    review_quarter: str,
    quarter: str,
    previous_month: str,
    closed: bool = False,
    has_quota: bool = True,
    what: str = "Agent",
) -> Html:
    """The biggest moves since ``previous_month``: attainment of ``review_quarter`` and, where last
    month forecast the same quarter, the chance of reaching the ``quarter`` quota."""
    if moves is None:
        return Html("")
    if not has_quota:
        return note("Without quotas there is no attainment or chance of quota to compare with last month.")
    if not len(moves):
        return note(f"Nothing moved since {previous_month}.")
    f = moves.copy()
    f["att"] = [format_value(a, "ratio") for a in f["attainment_qtd"]]
    f["att_change"] = [format_change(d, "ratio") for d in f["change_attainment"]]
    cols = {
        "name": (what, "text"),
        "att": (f"Attainment {review_quarter} {'(final)' if closed else 'to date'}", "text"),
    }
    cols["att_change"] = (f"Attainment {review_quarter}: change since {previous_month}", "text")
    if not closed and f["change_p_quota"].notna().any():
        f["chance"] = [chance_text(p, g <= 0) for p, g in zip(f["p_quota"], f["gap"])]
        f["chance_change"] = [format_change(d, "ratio") for d in f["change_p_quota"]]
        cols["chance"] = (f"Chance of reaching the {quarter} quota", "text")
        cols["chance_change"] = (f"Chance {quarter}: change since {previous_month}", "text")
    return table(f, cols)


def agent_links(links: pd.DataFrame | None) -> Html:
    """The territory's agents, each linking to their page."""
    if links is None or not len(links):
        return Html("")
    items = "".join(f'<li><a href="{_e(h)}">{_e(n)}</a></li>' for n, h in zip(links["agent_name"], links["href"]))
    return Html(f'<ul class="spm-list spm-agent-links">{items}</ul>')
