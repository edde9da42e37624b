"""Each component's formula on small hand-computed cases: tier boundaries, caps, partial periods."""

from __future__ import annotations

import numpy as np
import pytest

from spm_models.insights.incentives import AttainmentBonus, Commission, Contest, KpiBonus, Step, Tier
from spm_models.insights.incentives.engine import _contest_prizes

ACCEL = Commission(tiers=(Tier(0.0, 0.05), Tier(1.0, 0.08), Tier(1.5, 0.10)), cap_attainment=2.0)
DECEL = Commission(tiers=(Tier(0.0, 0.05), Tier(1.0, 0.09), Tier(2.0, 0.04)), cap_amount=20_000.0)
RETRO = Commission(tiers=(Tier(0.0, 0.06), Tier(1.0, 0.10), Tier(1.5, 0.12)), method="retroactive", cap_attainment=2.5)


@pytest.mark.parametrize(
    "bookings, expected",
    [
        (99_999.0, 4_999.95),  # just below the accelerator: 5% of everything
        (100_000.0, 5_000.0),  # exactly quota
        (100_001.0, 5_000.08),  # the first unit above quota earns 8%
        (200_000.0, 5_000.0 + 4_000.0 + 5_000.0),  # 5% of 100k + 8% of 50k + 10% of 50k
        (200_001.0, 14_000.0),  # capped at 200% of quota
    ],
)
def test_accelerator_tiers_at_their_boundaries(bookings, expected):
    assert ACCEL.payout(bookings, 100_000.0) == pytest.approx(expected)


def test_a_decelerator_pays_less_above_its_start_and_the_amount_cap_scales_with_the_period():
    # 5% of 100k + 9% of 100k + 4% of 50k = 5,000 + 9,000 + 2,000
    assert DECEL.payout(250_000.0, 100_000.0) == pytest.approx(16_000.0)
    # 5,000 + 9,000 + 4% of 200k = 22,000 -> capped at 20,000 a quarter
    assert DECEL.payout(400_000.0, 100_000.0) == pytest.approx(20_000.0)
    # half a quarter on the plan: the cap is half as well (and the quota is the window's)
    assert DECEL.payout(400_000.0, 100_000.0, 0.5) == pytest.approx(10_000.0)


@pytest.mark.parametrize(
    "bookings, expected",
    [
        (99_999.0, 0.06 * 99_999.0),
        (100_000.0, 0.10 * 100_000.0),  # reaching 100% lifts the rate on everything
        (150_000.0, 0.12 * 150_000.0),
        (300_000.0, 0.12 * 250_000.0),  # capped at 250%
    ],
)
def test_retroactive_tiers_pay_the_rate_reached_on_everything(bookings, expected):
    assert RETRO.payout(bookings, 100_000.0) == pytest.approx(expected)


def test_rate_tier_and_what_the_next_tier_takes():
    assert float(ACCEL.rate_at(120_000.0, 100_000.0)) == 0.08
    assert float(ACCEL.rate_at(260_000.0, 100_000.0)) == 0.10  # held at the cap: the last band paid
    assert int(ACCEL.tier_reached(260_000.0, 100_000.0)) == 3  # counted above the cap
    at, need, rate = ACCEL.next_tier(np.array([80_000.0, 120_000.0, 160_000.0]), 100_000.0)
    np.testing.assert_allclose(at, [1.0, 1.5, np.nan])
    np.testing.assert_allclose(need, [20_000.0, 30_000.0, np.nan])
    np.testing.assert_allclose(rate, [0.08, 0.10, np.nan])
    assert ACCEL.tier_labels() == [
        "0% to 100% (5.0%)",
        "100% to 150% (8.0%)",
        "150% to 200% (10.0%)",
        "above the 200% cap",
    ]


def test_commission_on_margin_reads_the_margin_quota():
    plan = Commission(tiers=(Tier(0.0, 0.10), Tier(1.0, 0.15)), measure="margin", no_quota_rate=0.07)
    assert plan.payout(30_000.0, 20_000.0) == pytest.approx(2_000.0 + 1_500.0)
    assert plan.payout(30_000.0, np.nan) == pytest.approx(2_100.0)  # no margin quota: the flat rate
    assert plan.label == "Commission on margin"


def test_attainment_bonus_steps_and_partial_periods():
    bonus = AttainmentBonus(steps=(Step(1.0, 1_000.0), Step(1.25, 2_500.0)))
    got = bonus.payout(np.array([99.9, 100.0, 124.9, 125.0, 300.0]), 100.0)
    np.testing.assert_allclose(got, [0.0, 1_000.0, 1_000.0, 2_500.0, 2_500.0])
    assert bonus.payout(150.0, np.nan) == 0.0  # no quota, no attainment bonus
    assert bonus.payout(110.0, 100.0, 0.4) == pytest.approx(400.0)  # 40% of the period on the plan


def test_kpi_bonus_thresholds_of_counts_scale_with_the_period_and_a_win_rate_does_not():
    logos = KpiBonus(kpi="new_accounts", steps=(Step(4, 400.0), Step(8, 1_000.0)))
    np.testing.assert_allclose(logos.payout(np.array([3.0, 4.0, 8.0])), [0.0, 400.0, 1_000.0])
    # half a quarter: 2 new accounts reach the first step (4 * 0.5), paid 200
    np.testing.assert_allclose(logos.payout(np.array([1.0, 2.0, 4.0]), 0.5), [0.0, 200.0, 500.0])
    rate = KpiBonus(kpi="win_rate", steps=(Step(0.35, 750.0),), min_deals=8)
    np.testing.assert_allclose(
        rate.payout(np.array([0.40, 0.40, 0.34]), 0.5, decided=np.array([10.0, 5.0, 10.0])), [375.0, 0.0, 0.0]
    )


def test_kpi_bonus_per_unit_above_a_floor_with_a_cap():
    demos = KpiBonus(kpi="activities", segment="demo", per_unit=20.0, above=10.0, cap_amount=300.0)
    np.testing.assert_allclose(demos.payout(np.array([5.0, 10.0, 18.0, 40.0])), [0.0, 0.0, 160.0, 300.0])
    # a month with half its days on the plan: floor 5, cap 150
    np.testing.assert_allclose(demos.payout(np.array([12.0, 40.0]), 0.5), [140.0, 150.0])


def _contest(**kw):
    import pandas as pd

    base = dict(id="c", kpi="bookings", start=pd.Timestamp("2025-01-01"), end=pd.Timestamp("2025-03-31"), pool=1000.0)
    return Contest(**{**base, **kw})


def test_contest_top_n_splits_tied_places_and_nobody_places_with_nothing():
    c = _contest(top_n=3, shares=(0.5, 0.3, 0.2))
    v = np.array([[50.0], [80.0], [80.0], [10.0], [0.0]])
    # the two at 80 hold places 1 and 2: (0.5 + 0.3) / 2 each; 50 is third; 10 and 0 get nothing
    np.testing.assert_allclose(_contest_prizes(c, v, None)[:, 0], [200.0, 400.0, 400.0, 0.0, 0.0])
    only_one = np.array([[0.0], [30.0], [0.0]])
    np.testing.assert_allclose(_contest_prizes(c, only_one, None)[:, 0], [0.0, 500.0, 0.0])  # the rest stays unpaid


def test_contest_above_a_bar_splits_the_pool_equally_per_scenario():
    c = _contest(above=4.0, kpi="new_accounts")
    v = np.array([[4.0, 1.0], [5.0, 6.0], [3.0, 7.0], [9.0, 0.0]])
    np.testing.assert_allclose(_contest_prizes(c, v, None), [[1000 / 3, 0], [1000 / 3, 500], [0, 500], [1000 / 3, 0]])


def test_equal_shares_by_default_and_rules_read_as_text():
    c = _contest(top_n=4)
    assert c.shares == (0.25, 0.25, 0.25, 0.25)
    assert "the top 4 by bookings 2025-01-01 to 2025-03-31 share 1,000" in c.rule()
    assert ACCEL.rule().startswith("5.0% of bookings 0% to 100% of quota; 8.0% of bookings 100% to 150% of quota")
