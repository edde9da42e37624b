"""spm_models.insights.commission: tiered payout by hand, expectation over draws, plan parsing."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spm_models.exceptions import ConfigError
from spm_models.insights.commission import (
    DEFAULT_PLAN,
    CommissionPlan,
    Tier,
    expected_payout,
    payout,
    payout_curve,
    plan_from_mapping,
)

PLAN = CommissionPlan(tiers=(Tier(0.0, 0.05), Tier(1.0, 0.08), Tier(1.5, 0.10)), cap_attainment=2.0, no_quota_rate=0.03)


@pytest.mark.parametrize(
    "bookings, expected",
    [
        (0.0, 0.0),
        (50_000.0, 2_500.0),  # 5% of 50k
        (100_000.0, 5_000.0),  # exactly quota
        (120_000.0, 6_600.0),  # 5,000 + 8% of 20k
        (150_000.0, 9_000.0),  # 5,000 + 8% of 50k
        (180_000.0, 12_000.0),  # 9,000 + 10% of 30k
        (250_000.0, 14_000.0),  # capped at 200k: 9,000 + 10% of 50k
        (-10.0, 0.0),
    ],
)
def test_tiered_payout_by_hand(bookings, expected):
    assert payout(bookings, 100_000.0, PLAN) == pytest.approx(expected)


def test_no_quota_pays_the_flat_rate():
    out = payout(np.array([1000.0, 2000.0]), np.array([np.nan, 0.0]), PLAN)
    np.testing.assert_allclose(out, [30.0, 60.0])


def test_threshold_tier_pays_nothing_below_it():
    plan = CommissionPlan(tiers=(Tier(0.0, 0.0), Tier(0.5, 0.1)))
    assert payout(40.0, 100.0, plan) == 0.0
    assert payout(70.0, 100.0, plan) == pytest.approx(2.0)  # 10% of the 20 above half the quota


def test_expected_payout_is_the_mean_over_draws_and_beats_the_payout_of_the_mean():
    draws = np.array([[80_000.0, 160_000.0]])  # mean 120k
    out = expected_payout(["a"], draws, [100_000.0], PLAN, closed_to_date=[40_000.0], quantiles=(0.5,))
    # payout(80k) = 4,000; payout(160k) = 9,000 + 10% of 10k = 10,000 -> mean 7,000
    assert out["expected_payout"].iloc[0] == pytest.approx(7_000.0)
    assert out["payout_of_expected_bookings"].iloc[0] == pytest.approx(6_600.0)
    assert out["earned_to_date"].iloc[0] == pytest.approx(2_000.0)
    assert out["payout_at_quota"].iloc[0] == pytest.approx(5_000.0)
    assert out["payout_q0.5"].iloc[0] == pytest.approx(7_000.0)


def test_payout_curve_spans_attainment():
    c = payout_curve(100.0, PLAN, max_attainment=2.5, points=6)
    np.testing.assert_allclose(c["attainment"], [0, 0.5, 1.0, 1.5, 2.0, 2.5])
    np.testing.assert_allclose(c["payout"], [0, 2.5, 5.0, 9.0, 14.0, 14.0])


@settings(max_examples=60, deadline=None)
@given(st.floats(0, 1e7), st.floats(0, 1e7), st.floats(1, 1e6))
def test_payout_never_decreases_with_bookings(a, b, q):
    lo, hi = sorted((a, b))
    assert payout(lo, q, DEFAULT_PLAN) <= payout(hi, q, DEFAULT_PLAN) + 1e-9


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"tiers": [[0.5, 0.05]]}, "start at attainment 0"),
        ({"tiers": [[0.0, 0.05], [0.0, 0.1]]}, "must increase"),
        ({"tiers": [[0.0, -0.05]]}, "non-negative"),
        ({"tiers": [[0.0, 0.05]], "bonus": 1}, "unknown commission setting"),
        ({}, "needs tiers"),
        ({"tiers": ["x"]}, "from_attainment, rate"),
    ],
)
def test_bad_plans_are_config_errors(spec, message):
    with pytest.raises(ConfigError, match=message):
        plan_from_mapping(spec)


def test_plan_from_mapping_accepts_tables_and_pairs():
    p = plan_from_mapping(
        {"tiers": [{"from_attainment": 0, "rate": 0.04}, [1.2, 0.09]], "cap_attainment": 3, "name": "FY"}
    )
    assert p.tiers == (Tier(0.0, 0.04), Tier(1.2, 0.09)) and p.cap_attainment == 3.0 and p.name == "FY"
    assert p.describe()[0] == "4.0% of bookings 0% to 120% of quota"
