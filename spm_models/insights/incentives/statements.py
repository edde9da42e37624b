"""Statements: per person and quarter, every line with its inputs, rule, rate and amount.

A statement line is one component (or contest, or draw adjustment) for one person, window and
quarter. For an ended quarter (``status = "final"``) the amounts are what was earned; for the
forecast quarter (``"in progress"``, or ``"ahead"`` at a quarter end, before anything is booked)
``amount_to_date`` is what the line pays if the quarter ended with the results so far, and
``amount_expected`` (mean), ``amount_q10`` and ``amount_q90`` describe the forecast's scenarios
of what it will pay by the quarter end. The per-person totals (:func:`statement_totals`) take
their range from the scenarios of the total, never from adding line quantiles. Everything adds
up: the lines of a quarter sum to each person's total, and the people's totals to the company's
(:func:`company_totals`), which the export is checked against.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from spm_models.insights.incentives.context import BookRun
from spm_models.insights.incentives.engine import QuarterResult
from spm_models.insights.incentives.plan import Commission

__all__ = [
    "STATEMENT_COLUMNS",
    "TOTALS_COLUMNS",
    "COMPANY_COLUMNS",
    "statement_lines",
    "statement_totals",
    "company_totals",
    "reconcile",
]

#: Columns of the statement export, in order.
STATEMENT_COLUMNS = [
    "period",
    "period_start",
    "period_end",
    "status",
    "agent_id",
    "agent_name",
    "territory_id",
    "plan_id",
    "plan_name",
    "component_id",
    "component_type",
    "line",
    "window_start",
    "window_end",
    "rule",
    "measure",
    "value_to_date",
    "value_expected",
    "quota",
    "attainment_to_date",
    "fraction",
    "rate",
    "amount_to_date",
    "amount_expected",
    "amount_q10",
    "amount_q90",
]


#: Columns of :func:`statement_totals`.
TOTALS_COLUMNS = [
    "period",
    "period_start",
    "status",
    "agent_id",
    "earned_to_date",
    "expected",
    "q10",
    "q90",
    "balance_to_date",
    "balance_expected",
]
#: Columns of :func:`company_totals`.
COMPANY_COLUMNS = ["period", "period_start", "status", "n_people", "earned_to_date", "expected", "q10", "q50", "q90"]


def _status(run: BookRun, r: QuarterResult) -> str:
    if r.quarter_end <= run.context.as_of:
        return "final"
    return "in progress" if r.quarter_start <= run.context.as_of else "ahead"


def _rates(run: BookRun, lines: pd.DataFrame, value: np.ndarray) -> np.ndarray:
    """Commission lines: the rate of the band reached (on ``value``); NaN elsewhere."""
    out = np.full(len(lines), np.nan)
    for i, (t, pid, cid, q) in enumerate(
        zip(lines["component_type"], lines["plan_id"], lines["component_id"], lines["quota"])
    ):
        if t == "commission":
            comp = next(c for c in run.book.plan(pid).components if c.id == cid)
            if isinstance(comp, Commission):
                out[i] = float(comp.rate_at(value[i], q))
    return out


def _frame(run: BookRun, now: QuarterResult, scen: QuarterResult | None) -> pd.DataFrame:
    cal = run.context.calendar
    lines = now.lines
    v_now = now.values[:, 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        att = np.where(np.isfinite(lines["quota"]) & (lines["quota"] > 0), v_now / lines["quota"].to_numpy(), np.nan)
    out = lines.assign(
        period=cal.quarter_label(now.quarter_start),
        period_start=now.quarter_start,
        period_end=now.quarter_end,
        status=_status(run, now),
        value_to_date=v_now,
        attainment_to_date=att,
        rate=_rates(run, lines, v_now),
        amount_to_date=now.amounts[:, 0],
    )
    if scen is None:
        final = out["status"] == "final"
        out["value_expected"] = np.where(final, v_now, np.nan)
        for c in ("amount_expected", "amount_q10", "amount_q90"):
            out[c] = np.where(final, now.amounts[:, 0], np.nan)
    else:
        q = np.quantile(scen.amounts, [0.1, 0.9], axis=1) if scen.amounts.size else np.zeros((2, 0))
        with np.errstate(all="ignore"):
            out["value_expected"] = np.nanmean(np.where(np.isfinite(scen.values), scen.values, np.nan), axis=1)
        out["amount_expected"] = scen.amounts.mean(axis=1)
        out["amount_q10"], out["amount_q90"] = q[0], q[1]
    return out


def statement_lines(run: BookRun) -> pd.DataFrame:
    """Every statement line of every quarter of ``run`` (:data:`STATEMENT_COLUMNS`), oldest first."""
    frames = [_frame(run, r, None) for r in run.settled]
    if run.to_date is not None:
        frames.append(_frame(run, run.to_date, run.expected))
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=STATEMENT_COLUMNS)
    out = pd.concat(frames, ignore_index=True)
    a = run.context.agents
    names = pd.Series(a["agent_name"].astype("str").to_numpy(), index=a["agent_id"].astype("str"))
    terr = pd.Series(a["territory_id"].astype("str").to_numpy(), index=a["agent_id"].astype("str"))
    out["agent_name"] = out["agent_id"].map(names).fillna("").astype("str")
    out["territory_id"] = out["agent_id"].map(terr).fillna("").astype("str")
    for c in ("period", "status", "agent_id", "plan_id", "plan_name", "component_id", "component_type", "line"):
        out[c] = out[c].astype("str")
    out["rule"] = out["rule"].astype("str")
    out["measure"] = out["measure"].astype("str")
    return out[STATEMENT_COLUMNS]


def _quarters(run: BookRun) -> list[tuple[QuarterResult, QuarterResult | None]]:
    pairs = [(r, None) for r in run.settled]
    if run.to_date is not None:
        pairs.append((run.to_date, run.expected))
    return pairs


def statement_totals(run: BookRun) -> pd.DataFrame:
    """Per person and quarter: ``earned_to_date``, ``expected``, ``q10``, ``q90`` (of the total's
    scenarios), ``balance_after`` (recoverable draw balance after the quarter: so far, and its
    mean over scenarios for the forecast quarter).

    Returns
    -------
    DataFrame
        ``period, period_start, status, agent_id, earned_to_date, expected, q10, q90,
        balance_to_date, balance_expected``.
    """
    cal = run.context.calendar
    rows = []
    for now, scen in _quarters(run):
        if not len(now.people):
            continue
        paid = now.paid()[:, 0]
        status = _status(run, now)
        if scen is not None:
            ps = scen.paid()
            exp, q10, q90 = ps.mean(axis=1), *np.quantile(ps, [0.1, 0.9], axis=1)
            b_exp = scen.balance_out.mean(axis=1)
        elif status == "final":
            exp = q10 = q90 = paid
            b_exp = now.balance_out[:, 0]
        else:
            exp = q10 = q90 = b_exp = np.full(len(paid), np.nan)
        rows.append(
            pd.DataFrame(
                {
                    "period": cal.quarter_label(now.quarter_start),
                    "period_start": now.quarter_start,
                    "status": status,
                    "agent_id": pd.array(now.people.astype(str), dtype="str"),
                    "earned_to_date": paid,
                    "expected": exp,
                    "q10": q10,
                    "q90": q90,
                    "balance_to_date": now.balance_out[:, 0],
                    "balance_expected": b_exp,
                }
            )
        )
    if not rows:
        return pd.DataFrame(columns=TOTALS_COLUMNS)
    out = pd.concat(rows, ignore_index=True)
    out["period"] = out["period"].astype("str")
    out["status"] = out["status"].astype("str")
    return out


def company_totals(run: BookRun) -> pd.DataFrame:
    """Per quarter, the company's cost: ``earned_to_date`` and, over the scenarios of the sum of
    everyone's pay, ``expected``, ``q10``, ``q50``, ``q90``.

    Returns
    -------
    DataFrame
        ``period, period_start, status, n_people, earned_to_date, expected, q10, q50, q90``.
    """
    cal = run.context.calendar
    rows = []
    for now, scen in _quarters(run):
        status = _status(run, now)
        done = float(now.total()[0]) if now.amounts.size else 0.0
        if scen is not None:
            t = scen.total() if scen.amounts.size else np.zeros(scen.n_draws)
            exp, (q10, q50, q90) = float(t.mean()), np.quantile(t, [0.1, 0.5, 0.9])
        elif status == "final":
            exp = q10 = q50 = q90 = done
        else:
            exp = q10 = q50 = q90 = np.nan
        rows.append(
            {
                "period": cal.quarter_label(now.quarter_start),
                "period_start": now.quarter_start,
                "status": status,
                "n_people": int(len(now.people)),
                "earned_to_date": done,
                "expected": exp,
                "q10": float(q10),
                "q50": float(q50),
                "q90": float(q90),
            }
        )
    return pd.DataFrame(rows, columns=COMPANY_COLUMNS)


def reconcile(lines: pd.DataFrame, totals: pd.DataFrame, company: pd.DataFrame, *, tol: float = 0.01) -> pd.DataFrame:
    """Per quarter: the statement lines' sums against the people's totals and the company's.

    Returns
    -------
    DataFrame
        ``period, lines_to_date, people_to_date, company_to_date, lines_expected,
        people_expected, company_expected, ok`` (``ok``: every pair within ``tol``).
    """
    lt = lines.groupby("period")[["amount_to_date", "amount_expected"]].sum(min_count=1)
    pt = totals.groupby("period")[["earned_to_date", "expected"]].sum(min_count=1)
    ct = company.set_index("period")[["earned_to_date", "expected"]]
    out = pd.DataFrame(
        {
            "lines_to_date": lt["amount_to_date"],
            "people_to_date": pt["earned_to_date"],
            "company_to_date": ct["earned_to_date"],
            "lines_expected": lt["amount_expected"],
            "people_expected": pt["expected"],
            "company_expected": ct["expected"],
        }
    ).reindex(ct.index)
    close = lambda a, b: (a.isna() & b.isna()) | ((a - b).abs() <= tol)  # noqa: E731
    out["ok"] = (
        close(out["lines_to_date"].fillna(0), out["company_to_date"])
        & close(out["people_to_date"].fillna(0), out["company_to_date"])
        & close(out["lines_expected"], out["company_expected"])
        & close(out["people_expected"], out["company_expected"])
    )
    out.index.name = "period"
    return out.reset_index()
