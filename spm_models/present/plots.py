"""Report figures. They draw only: every number shown comes from a frame computed elsewhere.

Each function takes frames from :mod:`spm_models.review.views` (which hold the outputs of
:mod:`spm_models.insights.scorecard`, :mod:`spm_models.insights.commission` and the forecast), and returns a
:class:`matplotlib.figure.Figure` made by :mod:`spm_models.present.figures` (no pyplot, the report
style, SVG on a page) with its alternative text. Axes say their unit and the bookings label (a
currency, or deals). A figure for a part of a report the data do not support is given ``None``
and draws nothing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from spm_models.present.figures import HEIGHT, WIDTH, figure_html, new_figure, style, with_alt, with_legend
from spm_models.present.format import format_value, indicator_label

__all__ = [
    "warm_up",
    "bookings_trend",
    "activity_trend",
    "funnel_chart",
    "indicator_chart",
    "fan_chart",
    "payout_chart",
    "attainment_bars",
    "new_vs_existing_chart",
    "plan_chart",
    "territory_chart",
    "accuracy_chart",
]

_BLUE, _GREY, _ORANGE, _GREEN, _RED = "#2f6db3", "#8c8c8c", "#e08214", "#3b8f4f", "#c0392b"
#: One colour means "you" (the agent, or the team the page is about) in every figure.
_YOU = _BLUE


def _wrap(labels, width: int = 28) -> list[str]:
    """Category labels of a bar chart wrapped at ``width`` characters (stage and people names
    come from the data, so any length reaches here)."""
    import textwrap

    return [textwrap.fill(str(t), width=width, break_long_words=True) or " " for t in labels]


def _left_for(labels, fontsize: float, width: float = WIDTH, *, least: float = 0.12) -> float:
    """Left margin (a share of ``width`` inches) that holds the widest of ``labels``' lines at
    ``fontsize`` points, set in bold (a highlighted label is), beside the axis; measured with
    the font of the current style (call it inside :func:`_style`)."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextToPath

    props, measure = FontProperties(size=fontsize, weight="bold"), TextToPath()
    lines = [line for t in labels for line in str(t).split("\n")]
    widest = max((measure.get_text_width_height_descent(x, props, ismath=False)[0] for x in lines), default=0.0)
    import matplotlib

    room = matplotlib.rcParams["ytick.major.size"] + matplotlib.rcParams["ytick.major.pad"] + 6.0  # tick, pad, slack
    return min(0.6, max(least, (widest + room) / 72.0 / width))


#: Height of a chart with a legend: the legend is on the page, above the chart
#: (:func:`~spm_models.present.figures.with_legend`), so the figure keeps no band for it.
_LEGEND_HEIGHT = HEIGHT - 0.35


def _legend(ax, handles=None, labels=None) -> None:
    """The chart's legend, drawn by the page above it (never over the data): the labelled
    artists of ``ax``, or the ``handles`` and ``labels`` given (a chart with two axes)."""
    if handles is None:
        handles, labels = ax.get_legend_handles_labels()
    with_legend(ax.figure, handles, labels)


def _money_axis(ax, currency: str, *, axis: str = "y") -> None:
    """Bookings ticks (:func:`~spm_models.present.format.tick_label`); whole numbers for deal counts."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    from spm_models.present.format import is_deals, tick_label

    target = ax.yaxis if axis == "y" else ax.xaxis
    if is_deals(currency):  # no tick between two whole deals (no "0, 0, 1, 2, 2")
        target.set_major_locator(MaxNLocator(integer=True))
    target.set_major_formatter(FuncFormatter(lambda v, _: tick_label(v)))


def _pct_axis(ax, *, axis: str = "y") -> None:
    from matplotlib.ticker import PercentFormatter

    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(PercentFormatter(1.0))


def _empty(text: str):
    with style():
        fig, ax = new_figure(height=1.2)
        ax.axis("off")
        ax.text(0.5, 0.5, text, ha="center", va="center", color=_GREY)
    return with_alt(fig, text)


def warm_up() -> None:
    """Draw and encode one small figure, loading fonts and the SVG writer once (fork-server use)."""
    fig = bookings_trend(
        pd.DataFrame(
            {
                "period": pd.to_datetime(["2024-01-01", "2024-02-01"]),
                "kpi": "bookings",
                "value": [1.0, 2.0],
                "peer_median": [1.0, 1.0],
            }
        ),
        currency="USD",
    )
    figure_html(fig)


def _monthly_bookings_axes(ax, periods, currency: str) -> None:
    """Month labels under bars at 0..n-1, a bookings y axis in ``currency``, the legend of the bars and lines."""
    ax.set_xticks(np.arange(len(periods)), pd.DatetimeIndex(periods).strftime("%b %y"), fontsize=8)
    ax.set_xlabel("Month")
    ax.set_ylabel(f"Bookings ({currency})")
    _money_axis(ax, currency)
    _legend(ax)


def bookings_trend(trend: pd.DataFrame, *, currency: str):
    """Monthly bookings (bars) with quota (line) and the peer-group median (dashed)."""
    b = trend[trend["kpi"] == "bookings"].sort_values("period")
    if b.empty:
        return _empty("No bookings history.")
    q = trend[trend["kpi"] == "quota"].sort_values("period")
    with style():
        fig, ax = new_figure(height=_LEGEND_HEIGHT)
        x = np.arange(len(b))
        ax.bar(x, b["value"].to_numpy(), color=_BLUE, label="Your bookings")
        if len(q) and (q["value"] > 0).any():
            qy = q.set_index("period")["value"].reindex(b["period"]).to_numpy()
            ax.plot(x, qy, color=_ORANGE, marker="o", lw=1.5, label="Your quota")
        if b["peer_median"].notna().any():
            ax.plot(x, b["peer_median"].to_numpy(), color=_GREY, ls="--", lw=1.5, label="Peer median")
        _monthly_bookings_axes(ax, b["period"], currency)
    last = b.iloc[-1]
    return with_alt(
        fig,
        f"Bar chart of your monthly bookings over {len(b)} months, from {pd.Timestamp(b['period'].iloc[0]):%b %Y} to "
        f"{pd.Timestamp(last['period']):%b %Y}; the last month "
        f"{format_value(last['value'], 'currency', currency=currency)}"
        + (", with your quota as a line" if len(q) and (q["value"] > 0).any() else "")
        + (" and the peer median dashed." if b["peer_median"].notna().any() else "."),
    )


def activity_trend(activity: pd.DataFrame):
    """Activities logged per month, one line per activity type."""
    import seaborn as sns

    if activity is None or activity.empty:
        return _empty("The data hold no activity log.")
    with style():
        fig, ax = new_figure(height=_LEGEND_HEIGHT)
        w = activity.pivot_table(index="period", columns="segment", values="value", aggfunc="sum").sort_index()
        x = np.arange(len(w))
        for seg, color in zip(w.columns, sns.color_palette("deep", len(w.columns))):  # one line per activity type
            ax.plot(x, w[seg].to_numpy(), marker="o", ms=4, color=color, label=str(seg))
        ax.set_xticks(x, pd.DatetimeIndex(w.index).strftime("%b %y"), fontsize=8)
        ax.set_xlabel("Month")
        ax.set_ylabel("Activities logged (count)")
        ax.set_ylim(bottom=0)
        _legend(ax)
    last = w.iloc[-1]
    return with_alt(
        fig,
        f"Line chart of the activities you logged per month by type, {len(w)} months; in "
        f"{pd.Timestamp(w.index[-1]):%b %Y}: " + ", ".join(f"{int(v)} {c}" for c, v in last.items()) + ".",
    )


def funnel_chart(funnel: pd.DataFrame, *, usable: bool = True):
    """Conversion of each stage: the agent (or team) against peers; the weakest stage in red."""
    if funnel is None:
        return None
    if not usable or funnel is None or funnel.empty:
        return _empty("Stage conversion cannot be measured from these data.")
    rate_col = "agent_rate" if "agent_rate" in funnel else "rate"
    with style():
        y = np.arange(len(funnel))
        weakest = funnel.get("weakest", pd.Series(False, index=funnel.index)).fillna(False).astype(bool).to_numpy()
        labels = _wrap(
            t.replace("->", " → ").replace("_", " ") + (" (weakest)" if w else "")
            for t, w in zip(funnel["transition"].astype("str"), weakest)
        )
        fig, ax = new_figure(height=2.85, left=_left_for(labels, 8), right=0.95)
        who = "You" if rate_col == "agent_rate" else "Team"
        # "you" keeps its colour; the weakest stage is named on its label and outlined, never recoloured
        ax.barh(
            y + 0.2,
            funnel[rate_col].fillna(0).to_numpy(),
            height=0.4,
            color=_YOU,
            edgecolor=["black" if w else _YOU for w in weakest],
            linewidth=[1.5 if w else 0.0 for w in weakest],
            label=who,
        )
        peer_col = "peer_rate" if "peer_rate" in funnel else None
        if peer_col is not None and funnel[peer_col].notna().any():
            ax.barh(y - 0.2, funnel[peer_col].fillna(0).to_numpy(), height=0.4, color=_GREY, label="Peers (pooled)")
        ax.set_yticks(y, labels, fontsize=8)
        for tick, w in zip(ax.get_yticklabels(), weakest):
            if w:
                tick.set_fontweight("bold")
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        _pct_axis(ax, axis="x")
        ax.set_xlabel("Deals moving on to the next stage (% of decided deals)")
        _legend(ax)
    parts = [
        f"{t.replace('->', ' to ').replace('_', ' ')} {r:.0%}" + (f" (peers {p:.0%})" if p == p else "")
        for t, r, p in zip(
            funnel["transition"].astype("str"),
            funnel[rate_col].fillna(0),
            funnel[peer_col] if peer_col else [float("nan")] * len(funnel),
        )
    ]
    weak = [lab for lab, w in zip(funnel["transition"].astype("str"), weakest) if w]
    return with_alt(
        fig,
        f"Bar chart of stage conversion, {who.lower()} against peers: "
        + "; ".join(parts)
        + (f". Weakest stage: {weak[0].replace('->', ' to ').replace('_', ' ')}." if weak else "."),
    )


def indicator_chart(indicators: pd.DataFrame):
    """This month against the agent's own monthly average (1 = usual)."""
    f = indicators[indicators["ratio_to_mean"].notna()] if indicators is not None else None
    if f is None or f.empty:
        return _empty("No history to compare leading indicators with.")
    with style():
        labels = _wrap(indicator_label(i).capitalize() for i in f["indicator"])
        fig, ax = new_figure(height=0.45 * len(f) + 1.0, left=_left_for(labels, 8))
        y = np.arange(len(f))
        colors = [{"up": _GREEN, "down": _RED}.get(d, _GREY) for d in f["direction"]]
        ax.barh(y, f["ratio_to_mean"].to_numpy(), color=colors)
        ax.axvline(1.0, color="black", lw=1)
        ax.set_yticks(y, labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("This month ÷ own 12-month average (1.0 = usual)")
        ax.set_xlim(0, max(2.0, float(f["ratio_to_mean"].max()) * 1.1))
    return with_alt(
        fig,
        "Bar chart of this month against your own monthly average (1.0 = usual): "
        + "; ".join(f"{indicator_label(i)} {r:.2f}" for i, r in zip(f["indicator"], f["ratio_to_mean"]))
        + ".",
    )


def fan_chart(fan: pd.DataFrame, actual: pd.DataFrame, *, quota: float | None, currency: str, quarter: str):
    """Cumulative bookings of the quarter: actual so far, then the forecast's median and bands."""
    if fan is None or fan.empty:
        return _empty("No forecast is available.")
    with style():
        fig, ax = new_figure(height=3.45)
        d = pd.DatetimeIndex(fan["date"])
        if actual is not None and len(actual):
            a = actual.sort_values("date")
            ax.step(
                pd.DatetimeIndex(a["date"]), a["cumulative"], where="post", color="black", lw=2, label="Booked so far"
            )
            d = d.insert(0, pd.Timestamp(a["date"].max()))
            start = float(a["cumulative"].iloc[-1])
        else:
            d = d.insert(0, d[0] - pd.Timedelta(days=7))
            start = 0.0
        col = lambda c: np.r_[start, fan[c].to_numpy()]  # noqa: E731
        ax.fill_between(d, col("q0.05"), col("q0.95"), color=_BLUE, alpha=0.15, lw=0, label="90% range")
        ax.fill_between(d, col("q0.1"), col("q0.9"), color=_BLUE, alpha=0.2, lw=0, label="80% range")
        ax.fill_between(d, col("q0.25"), col("q0.75"), color=_BLUE, alpha=0.3, lw=0, label="50% range")
        ax.plot(d, col("q0.5"), color=_BLUE, lw=2, label="Median forecast")
        if quota is not None and np.isfinite(quota) and quota > 0:
            ax.axhline(quota, color=_ORANGE, lw=1.5, ls="--", label=f"Quota {quarter}")
        ax.set_xlabel(f"Date ({quarter})")
        ax.set_ylabel(f"Cumulative bookings ({currency})")
        _money_axis(ax, currency)
        ax.set_ylim(bottom=0)
        # day and month ticks ("15 Oct"), never full dates that run into each other
        from matplotlib.dates import AutoDateLocator, DateFormatter

        ax.xaxis.set_major_locator(AutoDateLocator(minticks=3, maxticks=7))
        ax.xaxis.set_major_formatter(DateFormatter("%d %b"))
        _legend(ax)
    last = fan.iloc[-1]
    money = lambda v: format_value(v, "currency", currency=currency)  # noqa: E731
    q = f"; quota {money(quota)}" if quota is not None and np.isfinite(quota) and quota > 0 else ""
    return with_alt(
        fig,
        f"Fan chart of cumulative bookings in {quarter}: booked so far {money(start)}, median forecast at the end "
        f"{money(last['q0.5'])}, 80% range {money(last['q0.1'])} to {money(last['q0.9'])}{q}.",
    )


def payout_chart(curve: pd.DataFrame, commission: pd.DataFrame, *, currency: str):
    """The plan's payout by attainment, with the expected payout and its 80 % range marked."""
    if commission is None:  # no plan configured
        return None
    if curve is None or curve.empty or commission is None or commission.empty:
        return _empty("No quota, so the payout curve cannot be drawn.")
    c = commission.iloc[0]
    with style():
        fig, ax = new_figure(height=2.85)
        ax.plot(curve["attainment"], curve["payout"], color=_BLUE, lw=2, label="Plan payout")
        ax.axhspan(c["payout_q0.1"], c["payout_q0.9"], color=_GREEN, alpha=0.15, label="80% range of your payout")
        ax.axhline(c["expected_payout"], color=_GREEN, lw=1.5, label="Expected payout")
        ax.axvline(1.0, color=_GREY, lw=1, ls=":")
        _pct_axis(ax, axis="x")
        ax.set_xlabel("Attainment of the quarter's quota")
        ax.set_ylabel(f"Commission ({currency})")
        _money_axis(ax, currency)
        _legend(ax)
    money = lambda v: format_value(v, "currency", currency=currency)  # noqa: E731
    return with_alt(
        fig,
        f"Line chart of the plan's payout by attainment; your expected payout {money(c['expected_payout'])}, 80% "
        f"range {money(c['payout_q0.1'])} to {money(c['payout_q0.9'])}.",
    )


def attainment_bars(agents: pd.DataFrame, *, quarter: str = "the quarter", closed: bool = False):
    """Attainment of ``quarter`` per agent of a territory: to date with the expected value at its
    end, or, once the quarter has closed (``closed``), the final attainment alone (the expected
    values are then the next quarter's, which never share a chart with it). Nothing without
    quotas: the report says why the quota parts are absent."""
    f = agents[agents["attainment_qtd"].notna()]
    if f.empty:
        return None
    with style():
        names = _wrap(f["agent_name"])
        fig, ax = new_figure(height=0.4 * len(f) + 1.15, left=_left_for(names, 8))
        y = np.arange(len(f))
        done = f"Attainment {quarter} (final)" if closed else f"Attainment {quarter} to date"
        ax.barh(y, f["attainment_qtd"].to_numpy(), color=_BLUE, label=done)
        if not closed:
            ax.scatter(
                f["expected_attainment"].to_numpy(),
                y,
                color=_ORANGE,
                zorder=3,
                label=f"Expected at the end of {quarter}",
            )
        ax.axvline(1.0, color="black", lw=1)
        ax.set_yticks(y, names, fontsize=8)
        ax.invert_yaxis()
        _pct_axis(ax, axis="x")
        ax.set_xlabel(f"Attainment of the {quarter} quota")
        ax.set_xlim(0, max(1.2, float(np.nanmax(f[["attainment_qtd"]].to_numpy())) * 1.1))
        _legend(ax)
    return with_alt(
        fig,
        f"Bar chart of each agent's attainment of the {quarter} quota: "
        + "; ".join(f"{n} {a:.0%}" for n, a in zip(f["agent_name"], f["attainment_qtd"]))
        + ".",
    )


def new_vs_existing_chart(nve: pd.DataFrame, *, currency: str):
    """Monthly bookings from new and existing accounts (stacked)."""
    if nve is None:
        return None
    if nve.empty or not (nve["value"] > 0).any():
        return _empty("No bookings by account status to show.")
    with style():
        fig, ax = new_figure(height=_LEGEND_HEIGHT)
        w = nve.pivot_table(index="period", columns="segment", values="value", aggfunc="sum").fillna(0.0)
        x = np.arange(len(w))
        bottom = np.zeros(len(w))
        for seg, color in zip(w.columns, (_BLUE, _ORANGE, _GREY)):
            ax.bar(x, w[seg].to_numpy(), bottom=bottom, color=color, label=f"{seg} accounts")
            bottom += w[seg].to_numpy()
        _monthly_bookings_axes(ax, w.index, currency)
    tot = w.sum()
    return with_alt(
        fig,
        f"Stacked bar chart of monthly bookings from new and existing accounts over {len(w)} months; in all "
        + ", ".join(f"{seg} {format_value(v, 'currency', currency=currency)}" for seg, v in tot.items())
        + ".",
    )


def plan_chart(plan: pd.DataFrame, *, currency: str):
    """Monthly bookings against plan (quota), with year-to-date attainment on a second axis."""
    if plan is None or plan.empty:
        return _empty("No bookings history.")
    with style():
        fig, ax = new_figure(height=_LEGEND_HEIGHT, right=0.885)
        x = np.arange(len(plan))
        ax.bar(x, plan["bookings"].to_numpy(), color=_BLUE, label="Bookings")
        if plan["quota"].notna().any():
            ax.plot(x, plan["quota"].to_numpy(), color=_ORANGE, marker="o", label="Plan (quota)")
            ax2 = ax.twinx()
            ax2.plot(x, plan["ytd_attainment"].to_numpy(), color=_GREEN, ls="--", label="Year-to-date attainment")
            ax2.set_ylabel("Year-to-date attainment")
            _pct_axis(ax2)
            ax2.grid(False)
            # from 0, so a swing of a few points does not look like a collapse
            ax2.set_ylim(0, max(1.2, float(np.nanmax(plan["ytd_attainment"].to_numpy(dtype=float))) * 1.1))
        _monthly_bookings_axes(ax, plan["period"], currency)
        if plan["quota"].notna().any():  # one legend for both axes, above the plot
            h1, l1 = ax.get_legend_handles_labels()
            h2, l2 = ax2.get_legend_handles_labels()
            _legend(ax, h1 + h2, l1 + l2)
    last = plan.iloc[-1]
    ytd = (
        f", year-to-date attainment {last['ytd_attainment']:.0%}"
        if "ytd_attainment" in plan and pd.notna(last.get("ytd_attainment"))
        else ""
    )
    return with_alt(
        fig,
        f"Bar chart of monthly bookings against plan over {len(plan)} months; {pd.Timestamp(last['period']):%b %Y}: "
        f"{format_value(last['bookings'], 'currency', currency=currency)}{ytd}.",
    )


def territory_chart(outlook: pd.DataFrame, *, currency: str, quarter: str = "the quarter"):
    """Territories side by side in ``quarter``: booked so far, expected by its end (mean), and quota."""
    if outlook is None or outlook.empty:
        return _empty("No territories to compare.")
    with style():
        names = _wrap(outlook["territory_name"])
        fig, ax = new_figure(height=0.55 * len(outlook) + 1.25, left=_left_for(names, 8))
        y = np.arange(len(outlook))
        ax.barh(
            y - 0.2, outlook["closed_to_date"].to_numpy(), height=0.4, color=_BLUE, label=f"Booked in {quarter} so far"
        )
        ax.barh(
            y + 0.2,
            outlook["expected_bookings"].to_numpy(),
            height=0.4,
            color=_GREEN,
            alpha=0.7,
            label=f"Expected {quarter} total (mean)",
        )
        if outlook["quota"].notna().any():
            ax.scatter(
                outlook["quota"].to_numpy(), y, marker="|", s=400, color=_ORANGE, zorder=3, label=f"Quota {quarter}"
            )
        ax.set_yticks(y, names, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel(f"Bookings of {quarter} ({currency})")
        _money_axis(ax, currency, axis="x")
        _legend(ax)
    money = lambda v: format_value(v, "currency", currency=currency)  # noqa: E731
    return with_alt(
        fig,
        f"Bar chart of territories in {quarter}, booked so far and expected total: "
        + "; ".join(
            f"{n} {money(c)} booked, {money(e)} expected"
            for n, c, e in zip(outlook["territory_name"], outlook["closed_to_date"], outlook["expected_bookings"])
        )
        + ".",
    )


def accuracy_chart(accuracy: pd.DataFrame, *, currency: str, label_column: str = "entity_id"):
    """Last month's forecast (median and 80 % range) against actual bookings."""
    f = accuracy[accuracy["actual"].notna()] if accuracy is not None and len(accuracy) else None
    if f is None or f.empty:
        return _empty("No forecast from last month to compare with.")
    with style():
        names = _wrap(f[label_column])
        fig, ax = new_figure(height=0.45 * len(f) + 1.15, left=_left_for(names, 8))
        y = np.arange(len(f))
        ax.hlines(y, f["forecast_q0.1"], f["forecast_q0.9"], color=_BLUE, lw=6, alpha=0.35, label="80% range")
        ax.scatter(f["forecast_q0.5"], y, color=_BLUE, marker="|", s=200, label="Median forecast")
        ax.scatter(f["actual"], y, color="black", zorder=3, label="Actual bookings (each row's own)")
        ax.set_yticks(y, names, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel(f"Bookings of the month ({currency})")
        _money_axis(ax, currency, axis="x")
        _legend(ax)
    money = lambda v: format_value(v, "currency", currency=currency)  # noqa: E731
    return with_alt(
        fig,
        "Chart of last month's forecast against actual bookings: "
        + "; ".join(
            f"{n}: forecast {money(m)} (80% range {money(lo)} to {money(hi)}), actual {money(a)}"
            for n, m, lo, hi, a in zip(
                f[label_column], f["forecast_q0.5"], f["forecast_q0.1"], f["forecast_q0.9"], f["actual"]
            )
        )
        + ".",
    )
