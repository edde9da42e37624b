"""Customers over time, by hand, and returning bookings against new_vs_existing_bookings.

Won deals (and one lost)::

    account  close        amount
    x        2024-01-10   10
    y        2024-02-01    5
    x        2024-03-05   20     x bought before: returning
    z        2024-03-20    7
    -        2024-03-01    3     no account: not a customer
    y        2024-03-02    1     lost: not a purchase
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spm_models import kpi
from spm_models.kpi.accounts import customer_kpis
from spm_models.synthetic.generator import generate_organisation

JAN, FEB, MAR = (pd.Timestamp(f"2024-{m:02d}-01") for m in (1, 2, 3))


def opps():
    return pd.DataFrame(
        {
            "account_id": ["x", "y", "x", "z", None, "y"],
            "outcome": ["won", "won", "won", "won", "won", "lost"],
            "close_date": pd.to_datetime(
                ["2024-01-10", "2024-02-01", "2024-03-05", "2024-03-20", "2024-03-01", "2024-03-02"]
            ),
            "amount": [10.0, 5.0, 20.0, 7.0, 3.0, 1.0],
        }
    )


def table(frame):
    return frame.pivot_table(index="period", columns="kpi", values="value", dropna=False)


def test_one_month_window():
    t = table(customer_kpis(opps(), grain="month", window=1))
    assert t["customers_active"].tolist() == [1, 1, 2]
    assert t["customers_new"].tolist() == [1, 1, 1]
    assert t["customers_retained"].tolist() == [0, 0, 0]
    assert t["customers_lost"].tolist() == [0, 1, 1]
    assert np.isnan(t.loc[JAN, "customer_retention"]) and t.loc[FEB, "customer_retention"] == 0.0
    assert t["returning_bookings"].tolist() == [0.0, 0.0, 20.0]


def test_two_month_window():
    t = table(customer_kpis(opps(), grain="month", window=2))
    # Feb: {x, y} active, {x} a month ago -> x retained; Mar: {x, y, z} active, {x, y} before
    assert t["customers_active"].tolist() == [1, 2, 3]
    assert t["customers_retained"].tolist() == [0, 1, 2]
    assert t["customers_lost"].tolist() == [0, 0, 0]
    assert t.loc[FEB, "customer_retention"] == 1.0 and t.loc[MAR, "customer_retention"] == 1.0


def test_a_span_after_the_first_deals_still_knows_who_bought_before():
    t = table(customer_kpis(opps(), grain="month", window=1, start="2024-03-01", end="2024-03-31"))
    assert list(t.index) == [MAR]
    assert t.loc[MAR, "customers_new"] == 1 and t.loc[MAR, "customers_lost"] == 1  # y bought in February


@pytest.mark.parametrize("grain", ["month", "quarter"])
def test_returning_bookings_are_the_existing_segment_of_new_vs_existing(grain):
    ds = generate_organisation(10, years=2, seed=6).dataset
    opp = ds["opportunities"]
    mine = table(customer_kpis(opp, grain=grain))["returning_bookings"]
    nve = kpi.new_vs_existing_bookings(opp, ds["agents"], grain=grain, levels=("company",))
    existing = nve[nve["segment"] == "existing"].set_index("period")["value"]
    joined = pd.concat([mine, existing], axis=1, join="inner")
    assert len(joined) >= 6
    np.testing.assert_allclose(joined.iloc[:, 0], joined.iloc[:, 1])
    active = table(customer_kpis(opp, grain=grain))["customers_active"]
    assert (active > 0).all()
