"""choose_models: the review's model choice by a rolling backtest on the organisation's own data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spm_models.evaluation.selection import (
    SCORE_TABLE_COLUMNS,
    _pick,
    choose_models,
    paired_standard_error,
    selection_origins,
)
from spm_models.exceptions import DataError, ModelError
from spm_models.models import Mean, MonthOfQuarterMean, Naive
from spm_models.models.month_of_quarter import month_positions

PARENTS_OF = {"a0": "T1", "a1": "T1", "a2": "T2", "a3": "T2"}


def _quarter_end_frame(weeks: int = 60, seed: int = 0) -> pd.DataFrame:
    """Four agents who book three times as much in the last month of each quarter."""
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2024-01-01", periods=weeks, freq="W-MON")
    lift = np.array([1.0, 1.0, 3.0])[month_positions(ds.to_numpy(), "W-MON", 1)]
    return pd.concat(
        [
            pd.DataFrame({"unique_id": a, "ds": ds, "y": 100 * (i + 1) * lift * rng.gamma(8.0, 1 / 8.0, weeks)})
            for i, a in enumerate(PARENTS_OF)
        ],
        ignore_index=True,
    )


PARENTS = {"territory": PARENTS_OF, "company": dict.fromkeys(PARENTS_OF, "all")}


def test_origins_are_step_apart_and_leave_h_weeks_to_score():
    grid = pd.date_range("2024-01-01", periods=40, freq="W-MON")
    o = selection_origins(grid, h=5, n_origins=4, step=4, min_train=13)
    assert o == [grid[22], grid[26], grid[30], grid[34]] and o[-1] == grid[-1 - 5]
    # the first origins are dropped when they would have too little history
    assert selection_origins(grid, h=5, n_origins=4, step=4, min_train=28) == [grid[30], grid[34]]


def test_the_model_that_knows_the_quarter_wins_at_every_level():
    choice = choose_models(
        _quarter_end_frame(), {"Naive": Naive(), "MonthOfQuarterMean": MonthOfQuarterMean()}, parents=PARENTS, h=6
    )
    assert choice.picks == dict.fromkeys(("agent", "territory", "company"), "MonthOfQuarterMean")
    assert list(choice.scores.columns) == SCORE_TABLE_COLUMNS
    s = choice.scores.set_index(["candidate", "level"])
    for level in ("agent", "territory", "company"):
        assert s.loc[("MonthOfQuarterMean", level), "scaled_crps"] < s.loc[("Naive", level), "scaled_crps"]
        assert s.loc[("MonthOfQuarterMean", level), "status"] == "picked"
        assert "MonthOfQuarterMean had the lowest error" in choice.reasons[level]
    assert choice.horizon == 6 and len(choice.origins) == 4
    assert choice.to_dict()["picks"] == choice.picks


def test_a_tie_goes_to_the_simpler_model_listed_first():
    frame = _quarter_end_frame()
    same = {"Mean": Mean(), "Mean again": Mean(window=10_000)}  # the same forecasts under two names
    assert choose_models(frame, same, parents={}, h=4).picks == {"agent": "Mean"}
    flipped = {"Mean again": Mean(window=10_000), "Mean": Mean()}
    assert choose_models(frame, flipped, parents={}, h=4).picks == {"agent": "Mean again"}


class _Spy(Mean):
    """Records the last week of every training frame it is fitted on."""

    seen: list = []

    def fit(self, frame, **tables):
        _Spy.seen.append(pd.Timestamp(frame["ds"].max()))
        return super().fit(frame, **tables)


def test_each_origin_trains_on_data_up_to_it_only():
    _Spy.seen = []
    frame = _quarter_end_frame()
    choice = choose_models(frame, {"spy": _Spy()}, parents={}, h=4, n_origins=3)
    assert [str(d.date()) for d in _Spy.seen] == choice.origins


class _Clock:
    """A stand-in for ``time`` in the selection module: only ``_Slow`` moves it, so the budget
    test does not depend on how busy the machine is."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


class _Slow(Mean):
    clock: _Clock  # set on the class by the test: the backtest fits copies of the model

    def fit(self, frame, **tables):
        self.clock.now += 0.3
        return super().fit(frame, **tables)


class _Broken(Mean):
    def fit(self, frame, **tables):
        raise ModelError("it cannot be fitted on these data")


def test_a_candidate_over_budget_or_failing_is_left_out_and_said_so(monkeypatch):
    from spm_models.evaluation import selection

    clock = _Clock()  # Mean and broken take no time on it; each fit of slow takes 0.3 s
    monkeypatch.setattr(selection, "time", clock)
    monkeypatch.setattr(_Slow, "clock", clock, raising=False)
    frame = _quarter_end_frame()
    choice = choose_models(
        frame, {"Mean": Mean(), "slow": _Slow(), "broken": _Broken()}, parents={}, h=4, budget_seconds=0.5
    )
    assert choice.picks == {"agent": "Mean"}
    status = choice.scores.set_index("candidate")["status"]
    assert status["slow"].startswith("left out: it would need about")
    assert status["broken"] == "left out: it failed (ModelError: it cannot be fitted on these data)"


def test_too_short_a_history_or_no_candidate_scored_is_a_data_error():
    frame = _quarter_end_frame(weeks=12)
    with pytest.raises(DataError, match="too short to compare models"):
        choose_models(frame, {"Mean": Mean()}, parents={}, h=4)
    with pytest.raises(DataError, match="no candidate model could be backtested: broken left out"):
        choose_models(_quarter_end_frame(), {"broken": _Broken()}, parents={}, h=4)


def test_a_short_history_is_compared_at_the_longest_horizon_it_allows():
    frame = _quarter_end_frame(weeks=24)  # 24 - 13 = 11 weeks after the first training window
    choice = choose_models(frame, {"Mean": Mean(), "MonthOfQuarterMean": MonthOfQuarterMean()}, parents={}, h=13)
    assert choice.horizon == 11 and len(choice.origins) == 1
    with pytest.raises(DataError, match="too short to compare models 13 weeks ahead"):
        choose_models(_quarter_end_frame(weeks=16), {"Mean": Mean()}, parents={}, h=13)  # 3 weeks < min_h


def test_one_backtest_date_is_too_little_to_leave_the_simplest_model():
    """The quarter-end model wins clearly at every date, but on a single date the simplest stays."""
    frame = _quarter_end_frame(weeks=60)
    cands = {"Naive": Naive(), "MonthOfQuarterMean": MonthOfQuarterMean()}
    one = choose_models(frame, cands, parents=PARENTS, h=6, n_origins=1)
    assert one.picks == dict.fromkeys(("agent", "territory", "company"), "Naive")
    assert "too few to tell the models apart" in one.reasons["agent"]
    # the company is one series: two dates give two scores, still too few
    two = choose_models(frame, cands, parents=PARENTS, h=6, n_origins=2)
    assert two.picks["agent"] == "MonthOfQuarterMean" and two.picks["company"] == "Naive"


def test_backtests_run_as_an_executors_tasks_give_the_same_choice():
    """With an executor (here a thread pool; the review passes its Dask cluster) every candidate
    and origin is a task, and the picks, scores and reasons are those of the run here."""
    from concurrent.futures import ThreadPoolExecutor

    frame = _quarter_end_frame()
    cands = {"Naive": Naive(), "MonthOfQuarterMean": MonthOfQuarterMean(), "broken": _Broken()}
    here = choose_models(frame, cands, parents=PARENTS, h=6)
    with ThreadPoolExecutor(2) as pool:
        submitted = choose_models(frame, cands, parents=PARENTS, h=6, executor=pool)
    assert submitted.picks == here.picks and submitted.reasons == here.reasons
    assert submitted.origins == here.origins and len(here.origins) == 4
    pd.testing.assert_frame_equal(submitted.scores.drop(columns="seconds"), here.scores.drop(columns="seconds"))
    assert here.scores.set_index("candidate").loc["broken", "status"].iloc[0].startswith("left out: it failed")


def _paired(values_by_series: dict[str, list[float]]) -> pd.Series:
    rows = [(f"d{k}", u, v) for u, vals in values_by_series.items() for k, v in enumerate(vals)]
    return pd.DataFrame(rows, columns=["origin", "unique_id", "d"]).set_index(["origin", "unique_id"])["d"]


def test_the_standard_error_takes_series_not_pairs_as_the_independent_units():
    """A series scored the same at two dates has told us one thing, not two."""
    once = np.array([0.03, -0.01, 0.02, 0.05, 0.00, 0.04])
    twice = _paired({f"a{i}": [v, v] for i, v in enumerate(once)})
    assert paired_standard_error(twice) == pytest.approx(once.std(ddof=1) / np.sqrt(len(once)))
    # the pairs taken as independent would claim sqrt(2) times more precision (roughly)
    naive = twice.std(ddof=1) / np.sqrt(len(twice))
    assert naive < 0.75 * paired_standard_error(twice)
    # unequal counts: the cluster-robust (CR1) formula, by hand
    d = _paired({"a": [0.1, 0.3], "b": [-0.2], "c": [0.05, 0.0, 0.1]})
    dbar, n, g = d.mean(), len(d), 3
    sums = {"a": 0.4 - 2 * dbar, "b": -0.2 - dbar, "c": 0.15 - 3 * dbar}
    expected = np.sqrt(g / (g - 1) * sum(v * v for v in sums.values())) / n
    assert paired_standard_error(d) == pytest.approx(expected)
    # one series (the company): only its dates to go by; one pair: no spread at all
    company = _paired({"all": [0.1, 0.3, 0.2]})
    assert paired_standard_error(company) == pytest.approx(np.std([0.1, 0.3, 0.2], ddof=1) / np.sqrt(3))
    assert paired_standard_error(_paired({"all": [0.1]})) == 0.0


def _scores(crps_by_series: dict[str, list[float]]) -> pd.DataFrame:
    rows = [
        dict(level="agent", origin=pd.Timestamp("2024-01-01") + pd.Timedelta(weeks=4 * k), unique_id=u, scaled_crps=v)
        for u, vals in crps_by_series.items()
        for k, v in enumerate(vals)
    ]
    return pd.DataFrame(rows).assign(mase=1.0, coverage_80=0.8, n=4)


def test_a_complex_model_ahead_by_less_than_its_series_level_noise_is_not_picked():
    """Ahead by 0.01 at every date, with agents who differ by +-0.04 consistently over the dates:
    the 24 pairs taken as independent would call that significant, the 12 agents do not."""
    rng = np.random.default_rng(3)
    simple = {f"a{i}": [0.5, 0.5] for i in range(12)}
    offsets = 0.04 * rng.choice([-1.0, 1.0], 12)
    offsets -= offsets.mean()  # ahead by exactly 0.01 on average
    complex_ = {f"a{i}": [0.49 + o, 0.49 + o] for i, o in enumerate(offsets)}
    results = {"Simple": _scores(simple), "Complex": _scores(complex_)}
    table, picks, reasons = _pick(results, ["Simple", "Complex"], {}, {})
    se = table.set_index("candidate").loc["Simple", "se_diff"]
    d = np.repeat(offsets, 2)
    naive = d.std(ddof=1) / np.sqrt(d.size)  # the 24 pairs as if independent (the rule before)
    assert naive < 0.01 < se
    assert picks == {"agent": "Simple"}
    assert "within one standard error" in reasons["agent"]
