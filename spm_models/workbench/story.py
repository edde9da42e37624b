"""What a workbench result means, in a sentence, and its table as people read it.

The analyst notebooks show each result twice: a table whose numbers carry their unit (``USD
35.7k``, ``65%``, never ``28191.313753``) and a sentence that says what the result means for
the decision at hand. Both come from here, so a notebook only calls and shows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from spm_models.indicators.regressors import LEADING
from spm_models.present.format import format_value, indicator_label

__all__ = [
    "readable_table",
    "accuracy_story",
    "calibration_story",
    "quota_plan_story",
    "quota_backtest_story",
    "discovery_story",
    "known_lag_story",
    "effects_story",
    "readable_effects",
    "scenario_story",
    "plan_comparison_story",
    "cost_coverage_story",
    "tier_story",
    "payout_story",
    "regressors_story",
    "best_lags_story",
]

#: How far an observed share may sit from its target and still read as "about right".
TOLERANCE = 0.05


def readable_table(
    frame: pd.DataFrame, units: Mapping[str, str], *, currency: str = "USD", labels: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """The columns named in ``units``, each value formatted in its unit.

    Parameters
    ----------
    frame : DataFrame
        A result table.
    units : mapping of column to unit
        Units of :func:`~spm_models.present.format.format_value` (``currency``, ``ratio``,
        ``multiple``, ``count``, ``number`` for two decimals, ``text`` left as it is). Columns
        not named are left out, so ids and internals stay out of sight.
    currency : str
        The bookings label.
    labels : mapping of column to header, optional
        Headers people read; a column without one keeps its name.

    Returns
    -------
    DataFrame
        Strings, same rows, index reset.
    """
    out = {}
    for col, unit in units.items():
        values = frame[col]
        if unit == "text":
            out[col] = values.astype("str")
        elif unit == "number":
            out[col] = [format_value(v, "count", digits=2) for v in values]
        elif unit == "indicator":
            out[col] = [indicator_label(str(v)) for v in values]
        else:
            out[col] = [format_value(v, unit, currency=currency) for v in values]
    table = pd.DataFrame(out).reset_index(drop=True)
    return table.rename(columns=dict(labels or {}))


def _direction(observed: float, target: float) -> str:
    if not np.isfinite(observed):
        return "cannot be judged (no actuals)"
    if abs(observed - target) <= TOLERANCE:
        return "about right"
    return "too wide (cautious)" if observed > target else "too narrow (over-confident)"


def accuracy_story(table: pd.DataFrame) -> str:
    """The best model of :func:`~spm_models.workbench.comparison.accuracy_table` and why.

    Names the model with the lowest scaled CRPS (the table's first row), how far ahead of the
    next it is, whether its 80% intervals held about 80% of the actuals, and its bias.
    """
    if table.empty:
        return "No model could be backtested on these data."
    best = table.iloc[0]
    text = f"**{best['model']}** forecasts these data best (scaled CRPS {best['scaled_crps']:.2f}, lower is better"
    if len(table) > 1:
        runner = table.iloc[1]
        gap = (runner["scaled_crps"] - best["scaled_crps"]) / runner["scaled_crps"]
        close = " (a tie for practical purposes)" if gap < 0.02 else ""
        text += f"; {gap:.0%} better than {runner['model']}{close}"
    cover = float(best.get("coverage_80", np.nan))
    text += f"). Its 80% intervals held {format_value(cover, 'ratio')} of the actuals: {_direction(cover, 0.8)}."
    bias = float(best.get("bias_pct", np.nan))
    if np.isfinite(bias):
        side = "over" if bias > 0 else "under"
        text += f" On average it {side}-forecasts by {abs(bias):.0f}% of bookings."
    fallback = int(best.get("n_fallback", 0) or 0)
    if fallback:
        text += f" {fallback} series were too short for it and fell back to a simpler model."
    return text


def calibration_story(calibration: pd.DataFrame) -> str:
    """One clause per model and interval of :func:`~spm_models.workbench.comparison.calibration_table`."""
    if calibration.empty:
        return "The forecasts carry no central intervals to check."
    parts = []
    for model, rows in calibration.groupby("model", sort=True):  # a handful of models
        held = "; ".join(
            f"{r.nominal:.0%} intervals held {r.observed:.0%} ({_direction(r.observed, r.nominal)})"
            for r in rows.itertuples()
        )
        parts.append(f"**{model}**: {held}")
    return ". ".join(parts) + ". An interval that holds more actuals than it promises is safe but vague."


def quota_plan_story(plan: pd.DataFrame, fairness: pd.DataFrame, *, share: float, currency: str = "USD") -> str:
    """What :func:`~spm_models.workbench.quota_planning.quota_plan` set, and how fair it is
    (:func:`~spm_models.workbench.quota_planning.fairness_summary`)."""
    f = fairness.iloc[0]
    total, expected = plan["quota"].sum(), plan["expected_bookings"].sum()
    text = (
        f"{len(plan)} agents get quotas totalling {format_value(total, 'currency', currency=currency)}, "
        f"against {format_value(expected, 'currency', currency=currency)} of expected bookings "
        f"({format_value(total / expected if expected else np.nan, 'ratio')}). "
    )
    spread = f["p_max"] - f["p_min"]
    if not np.isfinite(spread):
        text += "No agent has a forecast to judge fairness by."
    elif spread <= TOLERANCE:
        text += (
            f"Every agent has the same chance of attaining, {format_value(f['p_median'], 'ratio')} "
            f"(the plan aimed at {format_value(share, 'ratio')}): the quotas are equally hard."
        )
    else:
        text += (
            f"The chance of attaining runs from {format_value(f['p_min'], 'ratio')} to "
            f"{format_value(f['p_max'], 'ratio')}: the agents at the low end were given harder quotas."
        )
    missing = int(f.get("no_forecast", 0) or 0)
    if missing:
        text += f" {missing} agent(s) have no bookings forecast and get no quota."
    return text


def quota_backtest_story(shares: pd.Series, *, share: float, model: str) -> str:
    """Whether quotas planned at past origins would have worked
    (:func:`~spm_models.workbench.quota_planning.attainment_share`)."""
    pooled = float(shares.get("all", np.nan))
    n = len(shares) - 1
    if not np.isfinite(pooled):
        return "No past quarter had the actuals to check the plan against."
    text = (
        f"Planned with {model} at {n} past origin(s), {format_value(pooled, 'ratio')} of agents would have "
        f"attained, against the {format_value(share, 'ratio')} the plan aimed at: "
    )
    if abs(pooled - share) <= TOLERANCE:
        return text + "the plan's difficulty was about right."
    if pooled > share:
        return text + "the quotas would have been too easy (the forecast's low end was too low)."
    return text + "the quotas would have been too hard (the forecast was too optimistic)."


def discovery_story(ranked: pd.DataFrame, *, leading: str = LEADING) -> str:
    """What :func:`~spm_models.indicators.discovery.discover_leading_indicators` chose, or that it
    chose nothing, and the strongest candidate it turned down and why."""
    if ranked.empty:
        return "There were no candidates to test."
    chosen = ranked[ranked["verdict"] == leading]
    if len(chosen):
        names = ", ".join(
            f"{indicator_label(r.candidate)} ({int(r.best_lag)} weeks ahead)" for r in chosen.itertuples()
        )
        text = f"Discovery found {len(chosen)} leading indicator(s): {names}."
    else:
        text = "Discovery found no leading indicator that passed every check."
    rest = ranked[(ranked["verdict"] != leading) & ranked["best_lag"].notna() & ranked["z"].notna()]
    if len(rest):
        top = rest.iloc[0]
        text += (
            f" The strongest candidate turned down, {indicator_label(top['candidate'])} at {int(top['best_lag'])} "
            f"weeks (z = {top['z']:.1f} against a bar of {top['z_band']:.1f}), failed because: {top['verdict']}."
        )
    return text


def known_lag_story(results: Sequence[Mapping]) -> str:
    """The one-test view of :func:`~spm_models.indicators.discovery.known_lag_test` results."""
    parts = []
    for r in results:
        seen = "an effect" if r["p"] < 0.05 else "no effect"
        parts.append(
            f"{indicator_label(r['candidate'])} at {r['lag']} weeks: {seen} (z = {r['z']:.1f}, p = {r['p']:.3f})"
        )
    return "With the lag known in advance, one test each: " + "; ".join(parts) + "."


def _money(value: float, currency: str) -> str:
    return format_value(value, "currency", currency=currency)


def _pct(value: float) -> str:
    return f"{value:+.0f}%"


def effects_story(effects: pd.DataFrame) -> str:
    """The clearest effect of :func:`~spm_models.workbench.scenarios.effect_table` and how many
    of the effects the data pin down.

    An effect is pinned down when its 90% interval (``pct_q0.05`` to ``pct_q0.95``) excludes 0;
    the clearest is the one whose interval lies furthest from 0 relative to its width.
    """
    if effects.empty:
        return (
            "This model estimates no effects of indicators; pick a model that uses them "
            "(HierarchicalBayes or Prophet with the found indicators) to see how sure they are."
        )
    lo, hi = effects["pct_q0.05"].to_numpy(float), effects["pct_q0.95"].to_numpy(float)
    clear = (lo > 0) | (hi < 0)
    gap = np.where(lo > 0, lo, np.where(hi < 0, -hi, 0.0)) / np.maximum(hi - lo, 1e-9)
    if not clear.any():
        return (
            f"None of the {len(effects)} effects is pinned down: every 90% interval includes no effect at all, "
            "so a scenario built on them is a guess."
        )
    top = effects.iloc[int(np.argmax(gap))]
    name = indicator_label(str(top["name"]))
    text = (
        f"The clearest effect is {name}: one standard deviation more goes with {_pct(top['pct_mean'])} "
        f"expected bookings (90% interval {_pct(top['pct_q0.05'])} to {_pct(top['pct_q0.95'])})."
    )
    rest = len(effects) - int(clear.sum())
    text += f" {int(clear.sum())} of {len(effects)} effects have a 90% interval that excludes zero"
    return text + (f"; the other {rest} could be no effect at all." if rest else ".")


def scenario_story(view: pd.DataFrame, *, currency: str = "USD") -> str:
    """What :func:`~spm_models.workbench.scenarios.scenario_view` says the scenario changes:
    expected bookings (``change_pct``) and the chance of reaching quota, as fitted and under it."""
    base = view[view["case"] == "as fitted"].iloc[0]
    scen = view[view["case"] == "scenario"].iloc[0]
    text = (
        f"Under the scenario, expected bookings change by {_pct(scen['change_pct'])}: "
        f"{format_value(base['expected_bookings'], 'currency', currency=currency)} as fitted, "
        f"{format_value(scen['expected_bookings'], 'currency', currency=currency)} with it."
    )
    if abs(float(scen["change_pct"])) < 0.5:
        text += " The scenario changes nothing the model uses (it has no effect for that activity)."
    if np.isfinite(base.get("p_quota", np.nan)) and np.isfinite(scen.get("p_quota", np.nan)):
        text += (
            f" The chance of reaching quota moves from {format_value(base['p_quota'], 'ratio')} "
            f"to {format_value(scen['p_quota'], 'ratio')}."
        )
    return text


def readable_effects(effects: pd.DataFrame) -> pd.DataFrame:
    """:func:`~spm_models.workbench.scenarios.effect_table` as people read it: each effect as a
    signed percentage change of expected bookings per standard deviation, with its 90% interval."""
    cols = {"pct_mean": "Change per SD", "pct_q0.05": "90% interval from", "pct_q0.95": "to"}
    out = pd.DataFrame({"Effect": [indicator_label(str(n)) for n in effects["name"]]})
    for col, label in cols.items():
        out[label] = [_pct(v) for v in effects[col].to_numpy(float)]
    return out


def plan_comparison_story(table: pd.DataFrame, *, currency: str = "USD") -> str:
    """What :func:`~spm_models.insights.incentives.compare_plans` says: each plan's expected cost
    with its 80% range and share of expected bookings, and the paired difference of the last plan
    from the first (the columns are the plans, the first is the reference)."""
    parts = []
    for name in table.columns:
        c = table[name]
        share = c.get("cost as share of expected bookings", np.nan)
        parts.append(
            f"{name} is expected to cost {_money(c['expected cost'], currency)} "
            f"(80% range {_money(c['cost, 10th percentile'], currency)} "
            f"to {_money(c['cost, 90th percentile'], currency)}"
            + (f", {format_value(share, 'ratio')} of expected bookings" if np.isfinite(share) else "")
            + ")"
        )
    text = "; ".join(parts) + "."
    if len(table.columns) > 1:
        first, last = table.columns[0], table.columns[-1]
        c = table[last]
        mean = c[f"cost minus {first}, mean"]
        lo, hi = c[f"cost minus {first}, 10th percentile"], c[f"cost minus {first}, 90th percentile"]
        word = "less" if mean < 0 else "more"
        text += (
            f" On the same scenarios {last} costs {_money(abs(mean), currency)} {word} than {first} on average "
            f"(80% range {_money(lo, currency)} to {_money(hi, currency)})"
        )
        if hi < 0:
            text += "; it is cheaper in at least 90% of them."
        elif lo > 0:
            text += "; it costs more in at least 90% of them."
        else:
            text += "; which is cheaper depends on the quarter."
    return text


def cost_coverage_story(coverage: pd.DataFrame) -> str:
    """Whether the forecast cost's 80% range can be budgeted on, from
    :func:`~spm_models.insights.incentives.cost_coverage`: held in ``held`` of ``quarters``, its
    Wilson 90% interval, and where the misses fell."""
    if coverage.empty:
        return "No past quarter is covered by both plan books, so the cost range has not been backtested."
    parts = []
    for r in coverage.itertuples():
        verdict = (
            "about right"
            if r.coverage_low <= 0.8 <= r.coverage_high
            else ("too narrow: budget with care" if r.coverage < 0.8 else "wider than it needs to be")
        )
        parts.append(
            f"{r.plan}: held in {r.held} of {r.quarters} quarters ({format_value(r.coverage, 'ratio')}, 90% interval "
            f"{format_value(r.coverage_low, 'ratio')} to {format_value(r.coverage_high, 'ratio')}; "
            f"{r.below} below, {r.above} above), {verdict}"
        )
    return "The forecast cost's 80% range " + "; ".join(parts) + "."


def tier_story(counts: pd.DataFrame) -> str:
    """Where people land, from :func:`~spm_models.insights.incentives.tier_counts`: per plan and
    component, the band or step with the most people expected and its 80% range."""
    if counts.empty:
        return "No commission band or bonus step is in force this quarter."
    parts = []
    for (plan, comp), g in counts.groupby(["plan_id", "component_id"], sort=False):
        top = g.loc[g["expected_people"].idxmax()]
        parts.append(
            f"{plan} / {comp}: most people land in {top['label']} ({top['expected_people']:.1f} expected, "
            f"80% range {top['q10']:.0f} to {top['q90']:.0f})"
        )
    return "; ".join(parts) + "."


def payout_story(payouts: pd.DataFrame, *, currency: str = "USD") -> str:
    """The spread of :func:`~spm_models.insights.incentives.person_payouts`: the median person's
    expected payout, the largest, and how many are all but sure to be paid something
    (``p_any`` of at least 90%)."""
    if payouts.empty:
        return "Nobody is paid under this plan in the quarter."
    top = payouts.loc[payouts["expected"].idxmax()]
    sure = int((payouts["p_any"] >= 0.9).sum())
    return (
        f"{len(payouts)} people: the median expected payout is {_money(payouts['expected'].median(), currency)}; "
        f"the largest, {top['agent_id']}, expects {_money(top['expected'], currency)} "
        f"(80% range {_money(top['q10'], currency)} to {_money(top['q90'], currency)}). "
        f"{sure} of {len(payouts)} have at least a 90% chance of being paid anything."
    )


def regressors_story(regressors: Mapping[str, int], chosen: pd.DataFrame, *, horizon: int) -> str:
    """What a forecast of ``horizon`` weeks may use of the indicators discovery found: those
    leading by at least ``horizon`` weeks (:func:`~spm_models.indicators.regressors.indicator_regressors`)."""
    if chosen.empty:
        return "No indicator passed every check, so the forecasts use none."
    if not regressors:
        return (
            f"None of the {len(chosen)} indicator(s) found leads by {horizon} weeks or more, so a {horizon}-week "
            "forecast cannot use them (their values would not be known yet); shorter forecasts can."
        )
    names = ", ".join(f"{indicator_label(k)} (lag {v})" for k, v in regressors.items())
    return f"A {horizon}-week forecast can use {names}: each is known at least {horizon} weeks ahead."


def best_lags_story(best: pd.DataFrame) -> str:
    """The best lag of each candidate (``is_best`` rows of
    :func:`~spm_models.indicators.discovery.lagged_correlations`): how many clear the corrected
    bar ``z_band`` with the stronger statistic, and the strongest of them; clearing it is the
    first check, not yet a leading indicator."""
    if best.empty:
        return "There were no candidates to test."
    z = np.where(best["statistic"] == "gls", best["z_gls"], best["z_prewhitened"]).astype(float)
    clears = np.abs(z) > best["z_band"].to_numpy(dtype=float)
    text = f"{int(clears.sum())} of {len(best)} candidates clear the corrected bar at their best lag"
    if not clears.any():
        return text + "; none is significant after searching every lag and candidate."
    k = int(np.nanargmax(np.where(clears, np.abs(z), -np.inf)))
    row = best.iloc[k]
    return text + (
        f"; the strongest is {indicator_label(str(row['candidate']))} at {int(row['lag'])} weeks "
        f"(z = {z[k]:.1f} against {row['z_band']:.1f}). The next checks (stability, out of sample) decide."
    )
