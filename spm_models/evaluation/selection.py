"""Choosing the forecasting model on the user's own data: a rolling-origin backtest per level.

Every candidate is refitted at a few origins on the agents' weekly bookings known then and
forecasts the next ``h`` weeks. Its agent draws are scored at agent level and, summed draw by
draw, at every parent level (territory, company: :func:`~spm_models.models.aggregate.aggregate_draws`),
so a level's forecast always comes from agent draws that keep the agents' co-movement. The
score is the scaled CRPS (:func:`~spm_models.evaluation.metrics.score`), comparable across series
of any size.

The pick per level follows the one-standard-error rule: candidates are listed from the
simplest to the most complex, and the simplest whose mean scaled CRPS is within one standard
error of the best (the standard error of the paired difference, with series as the
independent units: :func:`paired_standard_error`) wins. A few origins are a noisy judge;
the rule keeps a more complex model from being chosen on noise. With fewer than
:data:`MIN_ORIGINS` backtest dates or :data:`MIN_PAIRS` paired scores at a level (one window
of a short history; the one company series), the simplest model stays: on Maven's first
months, single-window choices picked other models that then lost to it (bench/README.md).

The backtests (one candidate at one origin each) are independent: with an ``executor`` (anything
with ``submit(fn, *args) -> future``: a ``distributed.Client``, a ``concurrent.futures`` pool)
they run as its tasks, all submitted at once and read back in the same order, so the scores and
the picks are those of the run on one machine.

A candidate that fails, or would not finish within the time budget, is left out and the
choice says why. :class:`ModelChoice` records the picks, the scores and the reasons, for the
review's manifest and its "which model and why" section.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from spm_models.evaluation.metrics import score
from spm_models.exceptions import DataError, SpmError
from spm_models.models.aggregate import aggregate_draws
from spm_models.models.base import ForecastModel, clone, fit_tables_of

__all__ = ["ModelChoice", "choose_models", "selection_origins", "paired_standard_error", "SCORE_TABLE_COLUMNS"]

#: A model other than the simplest is picked only on at least this many backtest dates ...
MIN_ORIGINS = 2
#: ... and this many paired scores (series x dates) at its level.
MIN_PAIRS = 4
#: Columns of :attr:`ModelChoice.scores`.
SCORE_TABLE_COLUMNS = ["candidate", "level", "scaled_crps", "mase", "coverage_80", "n", "se_diff", "status", "seconds"]


@dataclass
class ModelChoice:
    """What :func:`choose_models` found.

    Attributes
    ----------
    picks : dict
        Level (``agent``, ``territory``, ``company``) -> the chosen candidate's name.
    scores : DataFrame
        :data:`SCORE_TABLE_COLUMNS`, one row per candidate and level: mean scaled CRPS, MASE
        and 80% coverage over the backtest, the number of scores, the standard error of the
        difference to the level's best, and ``status`` (``"picked"``, ``"scored"``, or why the
        candidate was left out).
    reasons : dict
        Level -> one sentence saying why its model was picked.
    horizon : int
        Weeks forecast at each origin.
    origins : list of str
        The backtest origins (ISO dates).
    seconds : float
    """

    picks: dict[str, str]
    scores: pd.DataFrame
    reasons: dict[str, str]
    horizon: int
    origins: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able record (for run.json and the manifest)."""
        return {
            "picks": dict(self.picks),
            "reasons": dict(self.reasons),
            "horizon": int(self.horizon),
            "origins": list(self.origins),
            "seconds": round(float(self.seconds), 3),
            "scores": self.scores.replace({np.nan: None}).to_dict(orient="records"),
        }


def selection_origins(grid: Sequence[Any], *, h: int, n_origins: int, step: int, min_train: int) -> list[pd.Timestamp]:
    """Up to ``n_origins`` origins ``step`` weeks apart, the last ``h`` weeks before the end of
    ``grid``, each with at least ``min_train`` weeks up to and including it."""
    g = pd.DatetimeIndex(sorted(pd.unique(pd.DatetimeIndex(grid))))
    idx = len(g) - 1 - h - step * np.arange(n_origins)[::-1]
    return [g[i] for i in idx if i >= min_train - 1]


def _parent_frame(frame: pd.DataFrame, mapping: Mapping[str, str]) -> pd.DataFrame:
    """``unique_id, ds, y`` summed from agents to their parents."""
    parent = frame["unique_id"].astype("str").map(mapping)
    out = frame.assign(unique_id=parent).dropna(subset=["unique_id"])
    return out.groupby(["unique_id", "ds"], as_index=False)["y"].sum()


def _score_origin(
    model: ForecastModel,
    frame: pd.DataFrame,
    origin: pd.Timestamp,
    h: int,
    parents: Mapping[str, Mapping[str, str]],
    tables: Mapping[str, pd.DataFrame],
    n_draws: int,
) -> tuple[list[pd.DataFrame], float]:
    """Scores of one candidate at one origin, per level (agent, then each parent level), and the
    seconds they took. ``tables``: what the candidate reads at fit (:func:`fit_tables_of`)."""
    started = time.perf_counter()
    ds = frame["ds"]
    span = frame.groupby("unique_id")["ds"].agg(["min", "max"])
    active = span.index[(span["min"] <= origin) & (span["max"] >= origin)]
    train = frame[frame["unique_id"].isin(active) & (ds <= origin)]
    actual = frame[(ds > origin) & (ds <= origin + pd.Timedelta(weeks=h))]
    if train.empty:
        return [], time.perf_counter() - started
    fitted = clone(model).fit(train, **tables)  # with any regressor columns
    fc = fitted.predict(h, n_draws=n_draws)
    out = [score(fc, actual, train=train).assign(level="agent")]
    for level, mapping in parents.items():
        sub = {u: mapping[u] for u in fc.unique_ids.astype(str) if u in mapping}
        if not sub:
            continue
        up = aggregate_draws(fc.select(list(sub)), sub)
        out.append(score(up, _parent_frame(actual, sub), train=_parent_frame(train, sub)).assign(level=level))
    return [s.assign(origin=origin) for s in out], time.perf_counter() - started


def choose_models(
    frame: pd.DataFrame,
    candidates: Mapping[str, ForecastModel],
    *,
    parents: Mapping[str, Mapping[str, str]],
    h: int,
    n_origins: int = 4,
    step: int = 4,
    min_train: int = 13,
    tables: Any = None,
    n_draws: int = 200,
    budget_seconds: float | None = None,
    min_h: int = 4,
    executor: Any = None,
) -> ModelChoice:
    """Backtest each candidate on ``frame`` and pick one per level (module docstring).

    Parameters
    ----------
    frame : DataFrame
        Weekly agent bookings ``unique_id, ds, y`` (every week of each agent's span), with the
        columns of any regressors a candidate reads.
    candidates : mapping of str to ForecastModel
        Name -> unfitted model, from the simplest to the most complex (the order breaks ties).
    parents : mapping
        Parent level -> ``agent id -> parent id`` (e.g. ``{"territory": {...}, "company": {...}}``).
    h : int
        Weeks ahead, the review's horizon. When the history is too short for one origin with
        ``min_train`` weeks behind it and ``h`` after it, the comparison is made at the longest
        horizon it allows, if that is at least ``min_h`` weeks (:attr:`ModelChoice.horizon` says
        which).
    n_origins, step, min_train : int
        Origins (at most), weeks between them, and weeks of history the first needs.
    tables : Dataset or mapping, optional
        Tables a candidate reads at fit (:func:`~spm_models.models.base.fit_tables_of`).
    n_draws : int
        Draws per forecast (scoring needs fewer than the review's forecast).
    budget_seconds : float, optional
        Time the whole choice may take; a candidate whose first origin shows it would not
        finish within what is left is stopped there and left out. (With an ``executor`` the
        same rule reads each first origin's own time, but the time left is that of the parallel
        run, so near the budget a candidate can be kept that one machine would leave out.)
    executor : optional
        Runs each candidate-and-origin backtest as a task (module docstring); its ``submit``
        receives the candidate, the frame and each candidate's fit tables as arguments
        (:class:`spm_models.review.cluster.ClusterPool` sends the frames to a Dask cluster once).
        None: one after the other, here.

    Returns
    -------
    ModelChoice

    Raises
    ------
    DataError
        The history is too short for any origin, or no candidate could be scored.
    """
    started = time.perf_counter()
    n_weeks = frame["ds"].nunique()
    origins = selection_origins(frame["ds"], h=h, n_origins=n_origins, step=step, min_train=min_train)
    asked = h
    if not origins and n_weeks - min_train >= min_h:  # a shorter horizon the history still allows
        h = n_weeks - min_train
        origins = selection_origins(frame["ds"], h=h, n_origins=n_origins, step=step, min_train=min_train)
    if not origins:
        raise DataError(
            f"the history ({n_weeks} weeks) is too short to compare models {asked} weeks ahead "
            f"with {min_train} weeks of training data"
        )
    tables_of = {name: fit_tables_of(model, tables) for name, model in candidates.items()}
    args = (frame, h, parents, n_draws)
    if executor is None:
        runs = _backtest_here(candidates, origins, args, tables_of, budget_seconds, started)
    else:
        runs = _backtest_submitted(executor, candidates, origins, args, tables_of, budget_seconds, started)
    results, status, seconds = {}, {}, {}
    for name, (parts, outcome, spent) in runs.items():
        seconds[name] = spent
        if outcome:
            status[name] = outcome
        elif parts:
            results[name] = pd.concat(parts, ignore_index=True)
            status[name] = "scored"
    if not results:
        raise DataError("no candidate model could be backtested: " + "; ".join(f"{n} {s}" for n, s in status.items()))
    table, picks, reasons = _pick(results, list(candidates), status, seconds)
    return ModelChoice(
        picks=picks,
        scores=table,
        reasons=reasons,
        horizon=int(h),
        origins=[str(o.date()) for o in origins],
        seconds=time.perf_counter() - started,
    )


class _OverBudget(Exception):
    pass


#: What a backtest may raise that leaves its candidate out (anything else stops the choice).
_CANDIDATE_FAILURES = (SpmError, ValueError, FloatingPointError, np.linalg.LinAlgError)


def _budget_check(first_seconds: float, n_origins: int, budget_seconds: float | None, started: float) -> None:
    """Raise _OverBudget when the origins after the first would not finish in the time left."""
    if budget_seconds is None:
        return
    left = budget_seconds - (time.perf_counter() - started)
    needed = first_seconds * (n_origins - 1)
    if needed > left:
        raise _OverBudget(f"left out: it would need about {needed:.0f} s more, {max(left, 0):.0f} s left")


def _failed(exc: BaseException) -> str:
    return f"left out: it failed ({type(exc).__name__}: {str(exc)[:120]})"


def _candidate_run(scores, n_origins: int, budget_seconds: float | None, started: float) -> tuple[list, str, float]:
    """Read one candidate's ``(parts, seconds)`` per origin from ``scores`` (an iterator, computed
    as it is read), with the budget rule after the first origin: ``(parts, why left out or "",
    seconds spent)``; a candidate left out keeps no parts."""
    parts: list[pd.DataFrame] = []
    total = 0.0
    try:
        for k, (got, spent) in enumerate(scores):
            parts, total = parts + got, total + spent
            if k == 0:
                _budget_check(spent, n_origins, budget_seconds, started)
    except _OverBudget as exc:
        return [], str(exc), total
    except _CANDIDATE_FAILURES as exc:
        return [], _failed(exc), total
    return parts, "", total


def _backtest_here(candidates, origins, args, tables_of, budget_seconds, started) -> dict:
    """Each candidate at each origin, one after the other: name -> (parts, why left out or "", seconds)."""
    frame, h, parents, n_draws = args
    runs = {}
    for name, model in candidates.items():
        t0 = time.perf_counter()
        scores = (_score_origin(model, frame, o, h, parents, tables_of[name], n_draws) for o in origins)
        parts, outcome, _ = _candidate_run(scores, len(origins), budget_seconds, started)
        runs[name] = (parts, outcome, time.perf_counter() - t0)
    return runs


def _backtest_submitted(executor, candidates, origins, args, tables_of, budget_seconds, started) -> dict:
    """Every candidate at every origin as a task of ``executor``, all submitted at once and read in
    the order :func:`_backtest_here` runs them, with the same budget rule and failures."""
    frame, h, parents, n_draws = args
    futures = {
        name: [
            executor.submit(_score_origin, model, frame, origin, h, parents, tables_of[name], n_draws)
            for origin in origins
        ]
        for name, model in candidates.items()
    }
    runs = {}
    try:
        for name, futs in futures.items():
            scores = (fut.result() for fut in futs)
            parts, outcome, total = _candidate_run(scores, len(origins), budget_seconds, started)
            if outcome:
                for fut in futs:
                    fut.cancel()
            runs[name] = (parts, outcome, total)
    except BaseException:
        for fut in (f for futs in futures.values() for f in futs):
            fut.cancel()
        raise
    return runs


def _pick(
    results: dict[str, pd.DataFrame], order: list[str], status: dict[str, str], seconds: dict[str, float]
) -> tuple[pd.DataFrame, dict[str, str], dict[str, str]]:
    """The score table, the pick per level (one-standard-error rule) and the reasons."""
    rows, picks, reasons = [], {}, {}
    levels = list(dict.fromkeys(lv for r in results.values() for lv in r["level"]))
    for level in levels:
        key = ["origin", "unique_id"]
        per = {
            n: r[(r["level"] == level) & r["scaled_crps"].notna()].set_index(key)["scaled_crps"]
            for n, r in results.items()
        }
        common = None
        for s in per.values():
            common = s.index if common is None else common.intersection(s.index)
        means = {n: float(s.reindex(common).mean()) for n, s in per.items() if len(common)}
        if not means:
            continue
        best = min(means, key=means.get)
        se = {n: paired_standard_error(per[n].reindex(common) - per[best].reindex(common)) for n in means}
        within = [n for n in order if n in means and means[n] <= means[best] + se[n]]
        pick = within[0] if within else best
        n_origins = common.get_level_values("origin").nunique() if len(common) else 0
        simplest = next(n for n in order if n in means)
        thin = n_origins < MIN_ORIGINS or len(common) < MIN_PAIRS
        if thin and pick != simplest:  # one backtest window, or a handful of scores, is noise
            picks[level] = simplest
            reasons[level] = (
                f"{simplest}, the simplest model: {len(common)} scores over {n_origins} past "
                f"date(s) at {level} level are too few to tell the models apart (at least {MIN_PAIRS} over "
                f"{MIN_ORIGINS} dates are needed; {best} scored {means[best]:.3f} against {means[simplest]:.3f})."
            )
            pick = simplest
        else:
            picks[level] = pick
            reasons[level] = _reason(level, pick, best, means, se)
        for n in order:
            r = results.get(n)
            if r is None:
                rows.append(dict(candidate=n, level=level, status=status.get(n, ""), seconds=seconds.get(n, 0.0)))
                continue
            sel = r[r["level"] == level].set_index(key).reindex(common)
            rows.append(
                dict(
                    candidate=n,
                    level=level,
                    scaled_crps=means.get(n),
                    mase=float(sel["mase"].mean()),
                    coverage_80=float(np.average(sel["coverage_80"], weights=sel["n"])) if sel["n"].sum() else np.nan,
                    n=int(len(common)),
                    se_diff=se.get(n),
                    status="picked" if n == pick else status.get(n, ""),
                    seconds=seconds.get(n, 0.0),
                )
            )
    table = pd.DataFrame(rows).reindex(columns=SCORE_TABLE_COLUMNS)
    return table, picks, reasons


def paired_standard_error(d: pd.Series) -> float:
    """Standard error of the mean of paired score differences, with series as the independent units.

    ``d`` is indexed by ``(origin, unique_id)``. One series' scores at nearby dates are not
    independent: their windows share weeks (13-week windows 4 weeks apart share 9), and an
    agent who is hard to forecast is hard at every date. On Maven the two dates' differences of
    one agent correlated 0.63, and the spread of all the pairs taken as independent put the
    standard error at 0.0056 where the series-clustered one is 0.0070. So the differences are
    summed per series (the cluster-robust variance, CR1)::

        se^2 = G / (G - 1) * sum_g (S_g - n_g dbar)^2 / N^2

    with ``S_g`` and ``n_g`` the sum and count of series ``g``'s differences, ``N`` the pairs,
    ``G`` the series. A level with one series (the company) has only its dates to go by: their
    spread as if independent, which understates it (so few company scores leave the simplest
    model anyway, :data:`MIN_PAIRS`). 0 for a single pair.
    """
    d = d.dropna()
    n = len(d)
    if n < 2:
        return 0.0
    series = d.index.get_level_values("unique_id")
    g = series.nunique()
    if g < 2:
        return float(d.std(ddof=1) / np.sqrt(n))
    dbar = float(d.mean())
    sums = d.groupby(series).agg(["sum", "count"])
    resid = sums["sum"].to_numpy() - sums["count"].to_numpy() * dbar
    return float(np.sqrt(g / (g - 1) * np.sum(resid**2)) / n)


def _reason(level: str, pick: str, best: str, means: dict[str, float], se: dict[str, float]) -> str:
    score_text = f"scaled CRPS {means[pick]:.3f}"
    if pick == best:
        others = [n for n in means if n != pick]
        if not others:
            return f"{pick}: the only model that could be scored at {level} level ({score_text})."
        runner = min(others, key=means.get)
        return f"{pick} had the lowest error at {level} level ({score_text}; next {runner} {means[runner]:.3f})."
    return (
        f"{pick} is the simplest model within one standard error of the best at {level} level "
        f"({score_text} against {best}'s {means[best]:.3f} ± {se[pick]:.3f}); the difference is within the noise "
        "of the backtest."
    )
