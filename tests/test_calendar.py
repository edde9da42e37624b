"""The one calendar: flooring, ranges, lengths and labels, fiscal years, positions, parsing.

Fiscal quarters and labels are checked against pandas' own fiscal periods (``Q-<end month>``),
an implementation independent of ours.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spm_models.calendar import (
    GRAINS,
    Calendar,
    fiscal_year_start_month,
    parse_dates,
    parse_month,
    to_day,
)
from spm_models.exceptions import ConfigError

T = pd.Timestamp
CAL = Calendar()
period_start, next_period_start, shift_periods = CAL.period_start, CAL.next_period_start, CAL.shift_periods
period_range, period_days, period_label = CAL.period_range, CAL.period_days, CAL.period_label
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


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
    with pytest.raises(ConfigError, match="week, month, quarter, year"):
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


# ------------------------------------------------------------------ fiscal years


def _pandas_fiscal(day: pd.Timestamp, start: int) -> pd.Period:
    """pandas' fiscal quarter of ``day`` for a year starting in month ``start`` (ending the month before)."""
    return pd.Period(day, freq=f"Q-{MONTHS[(start - 2) % 12]}")


def test_fiscal_quarters_and_years_starting_in_february():
    fy = Calendar(fiscal_year_start=2)
    assert fy.period_start(T("2025-06-04"), "quarter") == T("2025-05-01")
    assert fy.period_start(T("2025-01-31"), "quarter") == T("2024-11-01")
    assert fy.period_start(T("2025-01-31"), "year") == T("2024-02-01")
    assert fy.period_start(T("2025-02-01"), "year") == T("2025-02-01")
    assert fy.period_end(T("2025-06-04"), "quarter") == T("2025-07-31")
    assert list(fy.period_range("2025-01-15", "2025-09-01", "quarter")) == [
        T("2024-11-01"),
        T("2025-02-01"),
        T("2025-05-01"),
        T("2025-08-01"),
    ]
    assert fy.quarter_label("2025-06-04") == "FY2026-Q2"
    assert fy.quarter_label("2025-01-31") == "FY2025-Q4"
    assert list(fy.period_label(pd.DatetimeIndex(["2024-02-01", "2025-02-01"]), "year")) == ["FY2025", "FY2026"]
    start_named = Calendar(fiscal_year_start=2, fiscal_year_label="start")
    assert start_named.quarter_label("2025-06-04") == "FY2025-Q2"
    # weeks and months do not depend on the fiscal year
    assert fy.period_start(T("2025-06-04"), "week") == CAL.period_start(T("2025-06-04"), "week")
    assert fy.period_start(T("2025-06-04"), "month") == T("2025-06-01")


def test_a_calendar_year_keeps_plain_labels_and_quarters():
    assert CAL.is_calendar_year and CAL.quarter_label("2025-08-15") == "2025-Q3"
    assert list(CAL.period_label(pd.DatetimeIndex(["2025-01-01"]), "year")) == ["2025"]
    # April starts give the same quarters as January, but fiscal labels
    april = Calendar(fiscal_year_start="April")
    assert april.fiscal_year_start == 4
    assert april.period_start(T("2025-08-15"), "quarter") == T("2025-07-01")
    assert april.quarter_label("2025-08-15") == "FY2026-Q2"


@settings(max_examples=300, deadline=None)
@given(
    day=st.dates(min_value=pd.Timestamp("1960-01-01").date(), max_value=pd.Timestamp("2090-12-31").date()),
    start=st.integers(1, 12),
)
def test_fiscal_quarters_match_pandas_fiscal_periods(day, start):
    ts, cal = T(day), Calendar(fiscal_year_start=start)
    ref = _pandas_fiscal(ts, start)
    assert cal.period_start(ts, "quarter") == ref.start_time.normalize()
    assert cal.period_end(ts, "quarter") == ref.end_time.normalize()
    label = cal.quarter_label(ts)
    assert label == (f"FY{ref.qyear}-Q{ref.quarter}" if start != 1 else f"{ref.qyear}-Q{ref.quarter}")
    year = cal.period_start(ts, "year")
    assert year <= ts < cal.next_period_start(year, "year")
    assert year.month == start and year.day == 1
    assert cal.position_in_quarter([ts], "month")[0] == (ts.month - start) % 3


@settings(max_examples=200, deadline=None)
@given(
    day=st.dates(min_value=pd.Timestamp("1950-01-01").date(), max_value=pd.Timestamp("2100-12-31").date()),
    grain=st.sampled_from(GRAINS),
    start=st.integers(1, 12),
)
def test_period_numbers_round_trip(day, grain, start):
    cal = Calendar(fiscal_year_start=start)
    ts = T(day)
    n = cal.period_number([ts], grain)[0]
    assert cal.period_of_number([n], grain)[0] == np.datetime64(cal.period_start(ts, grain).date(), "D")
    assert cal.period_of_number([n + 1], grain)[0] == np.datetime64(
        cal.next_period_start(cal.period_start(ts, grain), grain).date(), "D"
    )


def test_bad_fiscal_settings_are_config_errors():
    for bad in (0, 13, "Smarch", 2.5, True):
        with pytest.raises(ConfigError, match="fiscal_year_start"):
            Calendar(fiscal_year_start=bad)
    with pytest.raises(ConfigError, match="'end' or 'start'"):
        Calendar(fiscal_year_label="middle")
    assert fiscal_year_start_month("oct") == 10 and fiscal_year_start_month(7) == 7


# ------------------------------------------------------------------ positions in the quarter


def test_position_in_quarter_weekly_and_monthly():
    weeks = np.array(
        ["2024-01-01", "2024-01-08", "2024-03-25", "2024-04-01", "2024-03-31", "NaT"], dtype="datetime64[D]"
    )
    # 2024-03-25 is 84 days after 1 Jan: week 12 (0-based); 2024-03-31 is day 90: capped at 12
    assert CAL.position_in_quarter(weeks, "week").tolist() == [0, 1, 12, 0, 12, -1]
    months = pd.date_range("2024-01-01", periods=6, freq="MS").to_numpy()
    assert CAL.position_in_quarter(months, "month").tolist() == [0, 1, 2, 0, 1, 2]
    # fiscal quarters starting in February: Feb, May, Aug, Nov
    assert Calendar(2).position_in_quarter(months, "month").tolist() == [2, 0, 1, 2, 0, 1]
    with pytest.raises(ConfigError, match="week, month, quarter"):
        CAL.position_in_quarter(months, "year")


def test_periods_left_in_the_quarter():
    mondays = pd.DatetimeIndex(["2024-01-01", "2024-03-18", "2024-03-25", "2024-04-01", "2024-06-24"])
    # quarter ends 31 Mar: 13 weeks left from 1 Jan (capped), 1 from 18 Mar, 0 from 25 Mar
    assert CAL.periods_left_in_quarter(mondays, "week").tolist() == [12, 1, 0, 12, 0]
    months = pd.date_range("2024-01-01", periods=4, freq="MS")
    assert CAL.periods_left_in_quarter(months, "month").tolist() == [2, 1, 0, 2]
    assert Calendar(2).periods_left_in_quarter(months, "month").tolist() == [0, 2, 1, 0]


# ------------------------------------------------------------------ parsing


def test_parse_dates_iso_and_formats():
    text = pd.Series(["2024-01-31", None, " 2024-02-01 ", "31/01/2024", "2024-02-01T23:30:00Z", ""])
    days, bad = parse_dates(text)
    assert days.tolist()[:3] == [T("2024-01-31"), pd.NaT, T("2024-02-01")]
    assert days.iloc[4] == T("2024-02-01")  # the date as written, not moved by the time zone
    assert bad.tolist() == [False, False, False, True, False, False]
    assert str(days.dtype) == "datetime64[us]"
    days, bad = parse_dates(pd.Series(["31-01-2024 10:30", "01-02-2024 00:00", "2024-01-31"]), fmt="%d-%m-%Y %H:%M")
    assert days.tolist()[:2] == [T("2024-01-31"), T("2024-02-01")] and bad.tolist() == [False, False, True]
    typed = pd.Series(pd.to_datetime(["2024-01-31 15:00"]).tz_localize("Europe/Paris"))
    assert parse_dates(typed)[0].iloc[0] == T("2024-01-31")
    for fmt in ("%Q-%Y", "no directive"):
        with pytest.raises(ConfigError, match="date format"):
            parse_dates(pd.Series(["x"]), fmt=fmt)


def test_one_day_and_month_helpers():
    assert to_day("2024-05-06 13:00", "as_of") == T("2024-05-06")
    with pytest.raises(ConfigError, match="as_of must be a date"):
        to_day("soon", "as_of")
    assert parse_month("2025-06") == T("2025-06-01")
    for bad in ("2025-6", "June", "2025-13", "20x5-06"):
        with pytest.raises(ConfigError, match="year-month"):
            parse_month(bad)
