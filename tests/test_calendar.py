"""Reporting periods: flooring, ranges, lengths and labels, checked against a calendar."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spm_models.calendar import (
    GRAINS,
    next_period_start,
    period_days,
    period_label,
    period_range,
    period_start,
    shift_periods,
)
from spm_models.exceptions import ConfigError

T = pd.Timestamp


@pytest.mark.parametrize(
    "day, grain, expected",
    [
        ("2017-06-04", "week", "2017-05-29"),  # Sunday -> the Monday before
        ("2017-06-05", "week", "2017-06-05"),  # Monday stays
        ("2017-01-01", "week", "2016-12-26"),  # across a year end
        ("2017-06-04", "month", "2017-06-01"),
        ("2017-06-30", "month", "2017-06-01"),
        ("2017-06-04", "quarter", "2017-04-01"),
        ("2017-03-31", "quarter", "2017-01-01"),
        ("2017-10-01", "quarter", "2017-10-01"),
        ("2017-12-31", "quarter", "2017-10-01"),
        ("1969-11-15", "quarter", "1969-10-01"),  # before the numpy epoch
        ("1969-12-31", "week", "1969-12-29"),  # a Wednesday before the epoch
    ],
)
def test_period_start_of_a_timestamp(day, grain, expected):
    assert period_start(T(day), grain) == T(expected)


def test_period_start_keeps_the_container_and_missing_dates():
    s = pd.Series(pd.to_datetime(["2017-06-04 15:30", None]), index=[10, 20], name="d")
    out = period_start(s, "month")
    assert isinstance(out, pd.Series)
    assert list(out.index) == [10, 20] and out.name == "d"
    assert out.iloc[0] == T("2017-06-01")  # the time of day is dropped
    assert pd.isna(out.iloc[1])
    assert str(out.dtype) == "datetime64[us]"
    idx = period_start(pd.DatetimeIndex(["2017-02-14"]), "quarter")
    assert isinstance(idx, pd.DatetimeIndex) and idx[0] == T("2017-01-01")
    arr = period_start(np.array(["2017-02-14"], dtype="datetime64[s]"), "week")
    assert isinstance(arr, np.ndarray) and arr[0] == np.datetime64("2017-02-13")
    assert period_start(pd.NaT, "week") is pd.NaT


def test_every_week_starts_on_a_monday():
    days = pd.date_range("2015-01-01", "2019-12-31", freq="D")
    starts = period_start(days, "week")
    assert (starts.day_of_week == 0).all()
    assert ((days - starts).days.to_numpy() < 7).all() and ((days - starts).days.to_numpy() >= 0).all()


def test_shift_and_next_period_start():
    assert next_period_start(T("2017-12-01"), "month") == T("2018-01-01")
    assert next_period_start(T("2017-10-01"), "quarter") == T("2018-01-01")
    assert next_period_start(T("2017-12-25"), "week") == T("2018-01-01")
    assert shift_periods(T("2017-03-01"), -3, "month") == T("2016-12-01")
    assert shift_periods(T("2017-01-02"), -1, "week") == T("2016-12-26")


def test_period_range_covers_partial_periods_at_both_ends():
    r = period_range("2016-12-20", "2017-03-01", "month")
    assert list(r) == [T("2016-12-01"), T("2017-01-01"), T("2017-02-01"), T("2017-03-01")]
    assert r.name == "period" and str(r.dtype) == "datetime64[us]"
    weeks = period_range("2017-01-01", "2017-01-09", "week")  # Sunday .. the Monday after next
    assert list(weeks) == [T("2016-12-26"), T("2017-01-02"), T("2017-01-09")]
    assert list(period_range("2017-02-15", "2017-11-15", "quarter")) == [
        T("2017-01-01"),
        T("2017-04-01"),
        T("2017-07-01"),
        T("2017-10-01"),
    ]
    assert len(period_range("2017-03-01", "2017-02-01", "month")) == 0


def test_period_days_and_labels():
    months = period_range("2016-01-01", "2016-03-31", "month")
    assert list(period_days(months, "month")) == [31, 29, 31]  # 2016 is a leap year
    quarters = period_range("2017-01-01", "2017-12-31", "quarter")
    assert list(period_days(quarters, "quarter")) == [90, 91, 92, 92]
    assert list(period_days(period_range("2017-01-02", "2017-01-02", "week"), "week")) == [7]
    assert list(period_label(months, "month")) == ["2016-01", "2016-02", "2016-03"]
    assert list(period_label(quarters, "quarter")) == ["2017-Q1", "2017-Q2", "2017-Q3", "2017-Q4"]
    # 2017-01-02 is the Monday of ISO week 1 of 2017; 2016-12-26 is in ISO week 52 of 2016.
    assert list(period_label(pd.DatetimeIndex(["2016-12-26", "2017-01-02"]), "week")) == ["2016-W52", "2017-W01"]


def test_unknown_grain_and_missing_range_are_config_errors():
    with pytest.raises(ConfigError, match="week, month, quarter"):
        period_start(T("2017-01-01"), "fortnight")
    with pytest.raises(ConfigError):
        period_range(None, "2017-01-01", "month")


@settings(max_examples=200, deadline=None)
@given(
    day=st.dates(min_value=pd.Timestamp("1950-01-01").date(), max_value=pd.Timestamp("2100-12-31").date()),
    grain=st.sampled_from(GRAINS),
)
def test_a_date_lies_in_its_period(day, grain):
    ts = T(day)
    start = period_start(ts, grain)
    end = next_period_start(start, grain)
    assert start <= ts < end
    assert period_start(start, grain) == start  # idempotent
    assert (end - start).days == period_days(np.array([start.to_datetime64()]), grain)[0]
    r = period_range(ts, ts, grain)
    assert list(r) == [start]
