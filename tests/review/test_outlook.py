"""spm_models.review.outlook: the review calendar, data as of a date, draws to quarter numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spm_models.data.dataset import Dataset
from spm_models.exceptions import ConfigError
from spm_models.models.forecast import Forecast
from spm_models.review import outlook as ol

WEEKS = pd.date_range("2024-12-02", periods=5, freq="W-MON").to_numpy()


def _fc(draws, ids=("a", "b")):
    draws = np.asarray(draws, dtype=float)
    return Forecast.from_draws(
        draws, unique_ids=list(ids), ds=np.tile(WEEKS[: draws.shape[1]], (len(ids), 1)), model="Hand", freq="W-MON"
    )


def test_calendar_mid_quarter():
    c = ol.review_calendar("2024-11", data_end="2025-03-01")
    assert c.as_of == pd.Timestamp("2024-11-30") and c.quarter == pd.Timestamp("2024-10-01")
    assert c.forecast_quarter == pd.Timestamp("2024-10-01") and c.forecast_quarter_end == pd.Timestamp("2024-12-31")
    assert c.train_end == pd.Timestamp("2024-11-24")  # the Sunday on or before Saturday 30 Nov
    assert c.h == 6  # weeks starting 25 Nov .. 30 Dec cover to 31 Dec
    assert c.previous_month == pd.Timestamp("2024-10-01") and c.label == "2024-11" and c.quarter_label == "2024-Q4"


def test_calendar_at_a_quarter_end_forecasts_the_next_quarter():
    c = ol.review_calendar("2024-12", data_end="2024-12-31")
    assert c.forecast_quarter == pd.Timestamp("2025-01-01") and c.quarter == pd.Timestamp("2024-10-01")
    assert c.train_end == pd.Timestamp("2024-12-29")


def test_calendar_with_data_ending_mid_month_and_bad_months():
    assert ol.review_calendar("2024-11", data_end="2024-11-20").as_of == pd.Timestamp("2024-11-20")
    with pytest.raises(ConfigError, match="before the month"):
        ol.review_calendar("2025-01", data_end="2024-11-20")
    for bad in ("2024-13", "24-11", "November", "2024/11"):
        with pytest.raises(ConfigError, match="year-month"):
            ol.review_calendar(bad, data_end="2024-11-20")


def test_default_month_is_the_last_complete_one():
    opp = pd.DataFrame({"created_date": pd.to_datetime(["2024-01-05"]), "close_date": pd.to_datetime(["2024-11-30"])})
    assert ol.default_month(Dataset({"opportunities": opp})) == "2024-11"
    opp["close_date"] = pd.to_datetime(["2024-12-15"])
    assert ol.default_month(Dataset({"opportunities": opp})) == "2024-11"


def test_as_of_dataset_reopens_later_closes_and_drops_later_rows():
    opp = pd.DataFrame(
        {
            "opportunity_id": ["1", "2", "3"],
            "agent_id": ["a"] * 3,
            "created_date": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-03-01"]),
            "stage": ["negotiation", "negotiation", "prospecting"],
            "outcome": ["won", "won", "open"],
            "close_date": pd.to_datetime(["2024-01-20", "2024-02-20", None]),
            "amount": [10.0, 20.0, 5.0],
        }
    )
    hist = pd.DataFrame(
        {
            "opportunity_id": ["2", "2", "2"],
            "stage": ["prospecting", "qualification", "negotiation"],
            "entered_date": pd.to_datetime(["2024-01-01", "2024-01-10", "2024-02-10"]),
        }
    )
    act = pd.DataFrame(
        {
            "agent_id": ["a", "a"],
            "date": pd.to_datetime(["2024-01-29", "2024-02-05"]),
            "activity_type": ["call", "call"],
            "count": [1, 2],
        }
    )
    d = ol.as_of_dataset(Dataset({"opportunities": opp, "stage_history": hist, "activities": act}), "2024-01-31")
    o = d["opportunities"].set_index("opportunity_id")
    assert list(o.index) == ["1", "2"]
    assert (
        o.loc["2", "outcome"] == "open" and pd.isna(o.loc["2", "close_date"]) and o.loc["2", "stage"] == "qualification"
    )
    assert o.loc["1", "outcome"] == "won"
    assert len(d["stage_history"]) == 2 and len(d["activities"]) == 1


def test_final_bookings_draws_count_only_the_days_after_as_of():
    # as of Tue 3 Dec: of the week of Mon 2 Dec only 4..8 Dec (5 of 7 days) is still to come;
    # the weeks of 9, 16 and 23 Dec count whole, the week of 30 Dec for 2 of its 7 days; what
    # closed by 3 Dec is added once
    cal = ol.review_calendar("2024-12", data_end="2024-12-03")
    a = [[7.0, 14.0]] + [[7.0, 7.0]] * 4
    b = [[0.0, 0.0], [70.0, 0.0]] + [[0.0, 0.0]] * 3
    fc = _fc([a, b])
    d = ol.final_bookings_draws(fc, pd.Series({"a": 100.0}), cal)
    np.testing.assert_allclose(d, [[100 + 5 + 21 + 2, 100 + 10 + 21 + 2], [70.0, 0.0]])
    # the chance of quota reads the same draws
    o = ol.quarter_outlook(fc, pd.Series({"a": 100.0}), pd.Series({"a": 130.0, "b": 50.0}), cal).set_index("unique_id")
    assert o.loc["a", "p_quota"] == pytest.approx(0.5) and o.loc["b", "p_quota"] == pytest.approx(0.5)


def test_cumulative_fan_and_outlook():
    cal = ol.review_calendar("2024-12", data_end="2024-12-08")  # as of Sun 8 Dec; quarter ends 31 Dec
    fc = _fc(np.ones((2, 5, 3)) * np.array([1.0, 2.0, 3.0]))
    fan = ol.cumulative_fan(fc, pd.Series({"a": 10.0}), cal, quantiles=(0.5,))
    a = fan[fan["unique_id"] == "a"]
    # the week of 2 Dec ends on as_of (share 0, dropped); the next three count fully; the week of
    # 30 Dec for 2 of its 7 days (30 and 31 Dec)
    assert list(pd.DatetimeIndex(a["date"]).strftime("%m-%d")) == ["12-15", "12-22", "12-29", "12-31"]
    np.testing.assert_allclose(a["q0.5"], [12.0, 14.0, 16.0, 16.0 + 2 * 2 / 7])
    o = ol.quarter_outlook(fc, pd.Series({"a": 10.0}), pd.Series({"a": 14.0, "b": np.nan}), cal).set_index("unique_id")
    # totals of a: 10 + (3 + 2/7) * {1, 2, 3} -> 13.3, 16.6, 19.9: two of three reach 14
    assert o.loc["a", "p_quota"] == pytest.approx(2 / 3) and np.isnan(o.loc["b", "p_quota"])


def test_month_check_by_hand():
    fc = _fc([[[10.0, 20.0, 30.0]] * 5, [[0.0, 0.0, 0.0]] * 5])
    # December 2024: weeks of 2, 9, 16, 23 Dec whole, 30 Dec for 2 of 7 days -> 4 + 2/7 weeks
    out = ol.month_check(
        fc, pd.Series({"a": 100.0, "b": 5.0}), month="2024-12", level_of={"a": "agent", "b": "agent"}
    ).set_index("unique_id")
    k = 4 + 2 / 7
    assert out.loc["a", "forecast_mean"] == pytest.approx(20 * k)
    assert out.loc["a", "forecast_q0.1"] == pytest.approx(np.quantile([10 * k, 20 * k, 30 * k], 0.1))
    assert out.loc["a", "in_80"] == 1.0 and out.loc["a", "error"] == pytest.approx(100 - 20 * k)
    assert out.loc["b", "in_80"] == 0.0 and np.isnan(out.loc["b", "pct_error"])
    s = ol.accuracy_summary(out.reset_index())
    assert s["n"].iloc[0] == 2 and s["share_in_80"].iloc[0] == 0.5 and s["actual_total"].iloc[0] == 105.0


def test_weekly_history_fills_gaps_and_ends_together():
    agents = pd.DataFrame(
        {
            "agent_id": ["a", "b"],
            "agent_name": ["A", "B"],
            "territory_id": ["t", "t"],
            "hire_date": pd.to_datetime([None, None]),
            "leave_date": pd.to_datetime([None, None]),
        }
    )
    opp = pd.DataFrame(
        {
            "opportunity_id": ["1", "2", "3"],
            "agent_id": ["a", "a", "b"],
            "created_date": pd.to_datetime(["2024-01-01"] * 3),
            "stage": ["negotiation"] * 3,
            "outcome": ["won", "won", "won"],
            "close_date": pd.to_datetime(["2024-01-03", "2024-01-24", "2024-01-10"]),
            "amount": [5.0, 7.0, 9.0],
        }
    )
    h = ol.weekly_history(Dataset({"agents": agents, "opportunities": opp}), ["a", "b"], end="2024-02-04")
    a = h[h["unique_id"] == "a"]
    assert list(a["y"]) == [5.0, 0.0, 0.0, 7.0, 0.0]
    assert h.groupby("unique_id")["ds"].max().nunique() == 1
