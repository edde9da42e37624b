"""HTML fragments of the incentive-plan sections: statements, cards, cost, tiers and contests.

Same rules as :mod:`spm_models.review.render` (every text escaped, nothing for ``None``): every
column and card with a quarter's number names its quarter, and a quarter-end review shows the
quarter that closed and the quarter ahead under their own headings. Statement amounts are exact
to the cent (a statement is checked against payroll); measures use their own unit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from spm_models.present.format import format_value
from spm_models.review.render import Html, _e, _period_heading, cards, note, table

__all__ = [
    "plan_heading",
    "statement_section",
    "statement_cards",
    "statement_table",
    "statement_history",
    "agent_contests",
    "plan_cost_cards",
    "plan_cost_table",
    "plan_component_table",
    "plan_tier_table",
    "contest_table",
]

_COUNTS = {"deals_won", "deals_decided", "new_accounts", "activities"}


def _money(v, currency: str) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return ""
    return f"{currency} {float(v):,.2f}"


def _measure(v, measure: str, bookings_label: str, money: str) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return ""
    m = str(measure).partition(":")[0]
    if m == "win_rate":
        return format_value(v, "ratio", digits=1)
    if m in _COUNTS:
        return format_value(v, "count", digits=0 if float(v).is_integer() else 1)
    if m in ("guarantee", "balance"):
        return _money(v, money)
    return format_value(v, "currency", currency=bookings_label)


def _window(row) -> str:
    s, e = pd.Timestamp(row["window_start"]), pd.Timestamp(row["window_end"])
    return f"{s:%d %b} to {e:%d %b %Y}"


def plan_heading(view, heading: str, intro: str) -> Html:
    """A plan section's heading and introduction, or nothing when no plan is configured (the
    commission section already says why)."""
    if not view.shown:
        return Html("")
    return Html(f"<h2>{_e(heading)}</h2><p>{_e(intro)}</p>")


def statement_table(lines: pd.DataFrame, *, currency: str, money: str, quarter: str, final: bool = False) -> Html:
    """One quarter's statement lines: what each pays on, its rule, the rate reached and the amounts.

    ``final``: the quarter has closed (one amount per line); otherwise what the results so far
    earn, the mean by the quarter end and its 80% range (the forecast's scenarios).
    """
    if lines is None or len(lines) == 0:
        return note(f"No statement lines for {quarter}: no plan applied to you in it.")
    f = lines.copy()
    f["what"] = [f"{r['line']}" + (f" ({r['plan_name']})" if r["plan_name"] else "") for _, r in f.iterrows()]
    f["days"] = [_window(r) for _, r in f.iterrows()]
    f["value"] = [_measure(v, m, currency, money) for v, m in zip(f["value_to_date"], f["measure"])]
    f["expected_value"] = [_measure(v, m, currency, money) for v, m in zip(f["value_expected"], f["measure"])]
    f["quota_text"] = [format_value(q, "currency", currency=currency) if q == q else "" for q in f["quota"]]
    f["att"] = [format_value(a, "ratio") if a == a else "" for a in f["attainment_to_date"]]
    f["rate_text"] = [format_value(r, "ratio", digits=1) if r == r else "" for r in f["rate"]]
    f["paid"] = [_money(v, money) for v in f["amount_to_date"]]
    f["mean"] = [_money(v, money) for v in f["amount_expected"]]
    f["range"] = [f"{_money(a, money)} to {_money(b, money)}" for a, b in zip(f["amount_q10"], f["amount_q90"])]
    if final:
        columns = {
            "what": ("Line", "text"),
            "days": ("Dates", "text"),
            "rule": ("Rule", "text"),
            "value": (f"Measure {quarter} (final)", "text"),
            "quota_text": (f"Quota {quarter}", "text"),
            "att": (f"Attainment {quarter} (final)", "text"),
            "rate_text": ("Rate reached", "text"),
            "paid": (f"Paid for {quarter}", "text"),
        }
    else:
        columns = {
            "what": ("Line", "text"),
            "days": ("Dates", "text"),
            "rule": ("Rule", "text"),
            "value": (f"Measure {quarter} so far", "text"),
            "quota_text": (f"Quota {quarter}", "text"),
            "att": (f"Attainment {quarter} so far", "text"),
            "rate_text": ("Rate reached so far", "text"),
            "paid": (f"Earned on {quarter} results so far", "text"),
            "expected_value": (f"Expected measure {quarter} (mean)", "text"),
            "mean": (f"Expected pay {quarter} (mean)", "text"),
            "range": (f"80% range {quarter}", "text"),
        }
    if not f["quota"].notna().any():
        columns = {k: v for k, v in columns.items() if k not in ("quota_text", "att")}
    return table(f, columns)


def statement_cards(totals: pd.DataFrame, *, money: str, quarter: str, final: bool = False) -> Html:
    """The statement's totals: paid (final), or earned so far, the mean by the quarter end and
    its 80% range (of the total's own scenarios)."""
    if totals is None or len(totals) == 0:
        return Html("")
    t = totals.iloc[0]
    if final:
        items = [(f"Paid for {quarter} (final)", _money(t["earned_to_date"], money))]
    else:
        items = [
            (f"Earned on {quarter} results so far", _money(t["earned_to_date"], money)),
            (f"Expected pay {quarter} (mean)", _money(t["expected"], money)),
            (f"80% range of pay {quarter}", f"{_money(t['q10'], money)} to {_money(t['q90'], money)}"),
        ]
    bal = t["balance_to_date"] if final else t.get("balance_expected", np.nan)
    if pd.notna(bal) and bal > 0:
        items.append((f"Draw balance to recover after {quarter}", _money(bal, money)))
    return cards(items)


def statement_section(statement, part: str) -> Html:
    """The heading, cards and lines of one part of a person's statement: ``"closed"`` (the quarter
    that closed, at a quarter end only) or ``"ahead"`` (the forecast quarter)."""
    s = statement
    if not s.shown:
        return Html("")
    if part == "closed":
        if not s.quarter_closed:
            return Html("")
        q = s.review_quarter
        return Html(
            _period_heading(f"{q}: the quarter that closed")
            + statement_cards(s.totals_closed, money=s.money, quarter=q, final=True)
            + statement_table(s.closed, currency=s.currency, money=s.money, quarter=q, final=True)
        )
    q = s.quarter
    head = _period_heading(f"{q}: the quarter ahead") if s.quarter_closed else ""
    return Html(
        head
        + statement_cards(s.totals_ahead, money=s.money, quarter=q)
        + statement_table(s.ahead, currency=s.currency, money=s.money, quarter=q)
    )


def statement_history(statement) -> Html:
    """The person's pay per quarter of the plans (final quarters, then the one in progress)."""
    if not statement.shown or statement.history is None or not len(statement.history):
        return Html("")
    h = statement.history.copy()
    money = statement.money
    h["pay"] = [
        _money(p, money) if s == "final" else f"{_money(p, money)} so far; mean by its end {_money(e, money)}"
        for p, e, s in zip(h["earned_to_date"], h["expected"], h["status"])
    ]
    h["balance"] = [_money(b, money) if b > 0 else "" for b in h["balance_to_date"]]
    return table(
        h,
        {
            "period": ("Quarter", "text"),
            "status": ("Status", "text"),
            "pay": ("Pay", "text"),
            "balance": ("Draw balance", "text"),
        },
    )


def agent_contests(statement) -> Html:
    """The person's place in each contest of the run (their own rows only)."""
    s = statement
    if not s.shown or s.standings is None or not len(s.standings):
        return Html("")
    f = s.standings.copy()
    f["value"] = [_measure(v, m, s.currency, s.money) for v, m in zip(f["value_to_date"], f["measure"])]
    f["dates"] = [
        f"{pd.Timestamp(a):%d %b} to {pd.Timestamp(b):%d %b %Y}" for a, b in zip(f["window_start"], f["window_end"])
    ]
    f["prize"] = [_money(v, s.money) for v in f["prize_to_date"]]
    f["mean"] = [_money(v, s.money) for v in f["prize_expected"]]
    return table(
        f,
        {
            "contest": ("Contest", "text"),
            "dates": ("Dates", "text"),
            "status": ("Status", "text"),
            "value": ("Your measure so far", "text"),
            "rank_to_date": ("Your place so far", "count"),
            "prize": ("Prize on the standings so far", "text"),
            "mean": ("Mean prize at the end", "text"),
            "p_prize": ("Chance of a prize", "ratio"),
        },
    )


def plan_cost_cards(outlook: pd.DataFrame, *, money: str, currency: str, quarter: str) -> Html:
    """The cost of the plans in force for ``quarter``: mean, 80% range, share of bookings."""
    if outlook is None or not len(outlook):
        return note("No forecast of the plans' cost is available.")
    o = outlook.iloc[0]
    items = [
        (f"Expected cost of the plans {quarter} (mean)", _money(o["expected_cost"], money)),
        (f"80% range of the cost {quarter}", f"{_money(o['cost_q10'], money)} to {_money(o['cost_q90'], money)}"),
        (
            f"Cost as share of expected bookings {quarter}",
            f"{format_value(o['cost_share_of_bookings'], 'ratio', digits=1)} of "
            f"{format_value(o['expected_bookings'], 'currency', currency=currency)}",
        ),
        (f"People on a plan {quarter}", format_value(o["n_people"], "count")),
    ]
    if pd.notna(o.get("cost_share_of_margin", np.nan)):
        items.append(
            (f"Cost as share of expected margin {quarter}", format_value(o["cost_share_of_margin"], "ratio", digits=1))
        )
    return cards(items)


def plan_component_table(outlook: pd.DataFrame, *, money: str, quarter: str) -> Html:
    """The expected cost of ``quarter`` by kind of component, and how payouts spread across people."""
    if outlook is None or not len(outlook):
        return Html("")
    o = outlook.iloc[0]
    kinds = {
        "commission": "Commissions",
        "attainment_bonus": "Attainment bonuses",
        "kpi_bonus": "KPI bonuses",
        "contest": "Contest prizes",
        "draw": "Draw top-ups less recoveries",
    }
    rows = pd.DataFrame({"kind": list(kinds.values()), "mean": [_money(o[k], money) for k in kinds]})
    spread = pd.DataFrame(
        {
            "what": [
                "10th percentile",
                "Median",
                "90th percentile",
                "Share of the cost to the top tenth",
            ],
            "value": [
                _money(o["person_p10"], money),
                _money(o["person_median"], money),
                _money(o["person_p90"], money),
                format_value(o["top_tenth_share"], "ratio"),
            ],
        }
    )
    return Html(
        table(rows, {"kind": ("Component", "text"), "mean": (f"Expected cost {quarter} (mean)", "text")})
        + table(spread, {"what": ("Across people", "text"), "value": (f"Expected pay per person {quarter}", "text")})
    )


def plan_cost_table(cost: pd.DataFrame, *, money: str) -> Html:
    """The plans' cost of every quarter: final, or so far with the mean and 80% range at its end."""
    if cost is None or not len(cost):
        return Html("")
    c = cost.copy()
    c["paid"] = [_money(v, money) for v in c["earned_to_date"]]
    c["end"] = [_money(v, money) if s != "final" else "" for v, s in zip(c["expected"], c["status"])]
    c["range"] = [
        f"{_money(a, money)} to {_money(b, money)}" if s != "final" else ""
        for a, b, s in zip(c["q10"], c["q90"], c["status"])
    ]
    return table(
        c,
        {
            "period": ("Quarter", "text"),
            "status": ("Status", "text"),
            "n_people": ("People", "count"),
            "paid": ("Cost (final, or on the results so far)", "text"),
            "end": ("Mean by the quarter end", "text"),
            "range": ("80% range by the quarter end", "text"),
        },
    )


def plan_tier_table(tiers: pd.DataFrame, *, quarter: str) -> Html:
    """How many people are expected to end ``quarter`` in each commission band or bonus step."""
    if tiers is None or not len(tiers):
        return Html("")
    t = tiers.assign(range=[f"{a:.0f} to {b:.0f}" for a, b in zip(tiers["q10"], tiers["q90"])])
    t["mean"] = [f"{v:.1f}" for v in t["expected_people"]]
    return table(
        t,
        {
            "plan": ("Plan", "text"),
            "component_id": ("Component", "text"),
            "label": ("Band or step", "text"),
            "mean": (f"People expected {quarter} (mean)", "text"),
            "range": (f"80% range {quarter}", "text"),
        },
    )


def contest_table(standings: pd.DataFrame, *, currency: str, money: str, top: int = 5) -> Html:
    """The first ``top`` places of every contest of the run, by name (the monthly review)."""
    if standings is None or not len(standings):
        return note("No contest ends in these quarters.")
    parts = []
    for (label, status), g in standings.groupby(["contest", "status"], sort=False):
        g = g[g["rank_to_date"] <= top].copy()
        g["value"] = [_measure(v, m, currency, money) for v, m in zip(g["value_to_date"], g["measure"])]
        g["prize"] = [_money(v, money) for v in g["prize_to_date"]]
        g["mean"] = [_money(v, money) for v in g["prize_expected"]]
        end = pd.Timestamp(g["window_end"].iloc[0]) if len(g) else None
        head = f"{label}, to {end:%d %b %Y} ({status})" if end is not None else str(label)
        columns = {
            "rank_to_date": ("Place", "count"),
            "agent_name": ("Agent", "text"),
            "value": ("Measure so far" if status != "final" else "Measure (final)", "text"),
            "prize": ("Prize on the standings so far" if status != "final" else "Prize", "text"),
        }
        if status != "final":
            columns |= {"mean": ("Mean prize at the end", "text"), "p_prize": ("Chance of a prize", "ratio")}
        parts.append(f'<h3 class="spm-contest">{_e(head)}</h3>' + table(g, columns))
    return Html("".join(parts))
