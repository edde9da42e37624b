"""KPIs on fiscal quarters and years: the grain follows the organisation's calendar.

A synthetic organisation's KPIs at quarter and year grain with a fiscal year starting in
February must equal its monthly KPIs added up over the months of each fiscal quarter and
year (additive KPIs), and ratios must be recomputed from the summed parts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spm_models.calendar import Calendar
from spm_models.data.dataset import Dataset
from spm_models.kpi import compute_kpis
from spm_models.synthetic.generator import generate_organisation

FEB = Calendar(fiscal_year_start=2)


@pytest.fixture(scope="module")
def org():
    return generate_organisation(12, years=2, seed=11)


def _company(frame: pd.DataFrame, kpi: str) -> pd.Series:
    rows = frame[(frame["level"] == "company") & (frame["kpi"] == kpi) & (frame["segment"] == "")]
    return rows.set_index("period")["value"]


@pytest.mark.parametrize("grain", ["quarter", "year"])
def test_fiscal_periods_add_up_their_months(org, grain):
    months = compute_kpis(org.dataset, grain="month", kpis=["bookings", "win_rate", "quota"], start="2023-02-01")
    fiscal = compute_kpis(
        org.dataset, grain=grain, kpis=["bookings", "win_rate", "quota"], start="2023-02-01", calendar=FEB
    )
    starts = fiscal["period"].drop_duplicates().sort_values()
    assert (starts.dt.month.isin([2, 5, 8, 11]) if grain == "quarter" else starts.dt.month == 2).all()
    monthly = _company(months, "bookings")
    by_fiscal = monthly.groupby(FEB.period_start(pd.DatetimeIndex(monthly.index), grain)).sum()
    got = _company(fiscal, "bookings")
    # fiscal periods whose every month is in the monthly table (the last quarter runs past the data)
    whole = FEB.period_end(pd.DatetimeIndex(got.index), grain) <= monthly.index.max() + pd.offsets.MonthEnd(0)
    common = got.index[whole].intersection(by_fiscal.index)
    assert len(common) >= (6 if grain == "quarter" else 1)
    np.testing.assert_allclose(got[common].to_numpy(), by_fiscal[common].to_numpy())
    quota = _company(months, "quota")
    q_by = quota.groupby(FEB.period_start(pd.DatetimeIndex(quota.index), grain)).sum()
    np.testing.assert_allclose(_company(fiscal, "quota")[common].to_numpy(), q_by[common].to_numpy())


def test_a_dataset_carries_its_calendar_into_the_kpis(org):
    fiscal = Dataset(tables=org.dataset.tables, source="fiscal", calendar=FEB)
    plain = compute_kpis(org.dataset, grain="quarter", kpis=["bookings"])
    carried = compute_kpis(fiscal, grain="quarter", kpis=["bookings"])
    assert set(plain["period"].dt.month) == {1, 4, 7, 10}
    assert set(carried["period"].dt.month) == {2, 5, 8, 11}
    explicit = compute_kpis(org.dataset, grain="quarter", kpis=["bookings"], calendar=FEB)
    pd.testing.assert_frame_equal(carried, explicit)
