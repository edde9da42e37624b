"""A single tiered commission on bookings, and its expectation over forecast draws.

The plan model lives in :mod:`spm_models.insights.incentives`: a commission plan here is its
:class:`~spm_models.insights.incentives.plan.Commission` component (``CommissionPlan`` is that
class), with tiers, accelerators, a cap and a no-quota rate::

    payout(B, Q) = sum_k rate_k * clip(min(B, cap * Q) - a_k * Q, 0, (a_{k+1} - a_k) * Q)

where ``a_0 = 0 < a_1 < ...`` are the tiers' lower attainment bounds (``a_{K} = inf``),
``B`` the bookings of the period, ``Q`` its quota and ``cap`` the attainment above which
nothing more is paid (``inf`` for no cap). Without a quota (``Q`` missing or 0) the plan pays
``no_quota_rate * B``. This module keeps the functions the review settings' ``[commission]``
table and earlier callers use.

Expected payout
---------------
With draws ``B_j`` of the period's final bookings (closed to date plus forecast draws of
the rest, see :mod:`spm_models.evaluation.quota.probability`), the expected payout is the mean of
``payout(B_j, Q)``, which is not the payout of the expected bookings: accelerators make the
payout convex in ``B``, so uncertainty raises the expectation (Jensen's inequality).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from spm_models.exceptions import ConfigError
from spm_models.insights.incentives.plan import Commission, Tier

__all__ = [
    "Tier",
    "CommissionPlan",
    "DEFAULT_PLAN",
    "payout",
    "expected_payout",
    "payout_curve",
    "plan_from_mapping",
    "next_tier",
]

#: A commission plan is the commission component of the incentive plan model.
CommissionPlan = Commission

#: The plan of the built-in example's review: 5 % up to quota, 8 % from 100 % to 150 %,
#: 10 % above, capped at 200 % attainment.
DEFAULT_PLAN = Commission(
    tiers=(Tier(0.0, 0.05), Tier(1.0, 0.08), Tier(1.5, 0.10)),
    cap_attainment=2.0,
    no_quota_rate=0.05,
    name="Standard plan",
)


def payout(bookings: Any, quota: Any, plan: Commission = DEFAULT_PLAN) -> np.ndarray:
    """Commission for ``bookings`` against ``quota`` under ``plan`` (broadcast elementwise).

    ``payout(B, Q) = sum_k rate_k * clip(min(B, cap*Q) - a_k*Q, 0, (a_{k+1}-a_k)*Q)``; where
    ``Q`` is missing or not positive, ``no_quota_rate * B``. Negative bookings pay 0
    (:meth:`Commission.payout`).

    Parameters
    ----------
    bookings, quota : array-like
        Broadcastable arrays (e.g. draws ``(n, d)`` against quotas ``(n, 1)``).
    plan : CommissionPlan

    Returns
    -------
    ndarray of float
    """
    return plan.payout(bookings, quota)


def expected_payout(
    unique_ids: Sequence[str],
    bookings_draws: np.ndarray,
    quota: Any,
    plan: Commission = DEFAULT_PLAN,
    *,
    closed_to_date: Any = 0.0,
    quantiles: Sequence[float] = (0.1, 0.5, 0.9),
) -> pd.DataFrame:
    """Payout distribution per entity from draws of the period's final bookings.

    Parameters
    ----------
    unique_ids : sequence of str
        Entity of each row of ``bookings_draws``.
    bookings_draws : ndarray, shape (n, d)
        Draws of final bookings of the period (closed to date included).
    quota : array-like, shape (n,)
        Quota of the period (NaN where none).
    plan : CommissionPlan
    closed_to_date : array-like, shape (n,) or scalar
        Bookings already closed; ``earned_to_date`` is their payout.
    quantiles : sequence of float
        Levels of the payout quantiles.

    Returns
    -------
    DataFrame
        ``unique_id, quota, expected_payout, payout_q0.1 ..., payout_at_quota,
        earned_to_date, payout_of_expected_bookings`` (the payout of the mean bookings, below
        the expected payout when accelerators apply), then what the next tier takes from the
        bookings closed to date (:meth:`Commission.next_tier`): ``next_tier_attainment``,
        ``bookings_to_next_tier`` and ``next_tier_rate`` (NaN past the last tier or the cap,
        or without a quota).
    """
    draws = np.asarray(bookings_draws, dtype=float)
    q = np.asarray(quota, dtype=float).reshape(-1)
    if draws.ndim != 2 or draws.shape[0] != len(unique_ids) or q.shape[0] != draws.shape[0]:
        raise ConfigError(
            f"bookings draws of shape {draws.shape} do not match {len(unique_ids)} entities and {q.shape[0]} quotas"
        )
    pay = plan.payout(draws, q[:, None])
    closed = np.broadcast_to(np.asarray(closed_to_date, dtype=float), q.shape)
    out = pd.DataFrame(
        {
            "unique_id": pd.array([str(u) for u in unique_ids], dtype="str"),
            "quota": q,
            "expected_payout": pay.mean(axis=1),
        }
    )
    qs = np.quantile(pay, list(quantiles), axis=1) if pay.shape[1] else np.full((len(quantiles), len(q)), np.nan)
    for lev, values in zip(quantiles, qs):
        out[f"payout_q{lev:g}"] = values
    out["payout_at_quota"] = np.where(np.isfinite(q) & (q > 0), plan.payout(q, q), np.nan)
    out["earned_to_date"] = plan.payout(closed, q)
    out["payout_of_expected_bookings"] = plan.payout(draws.mean(axis=1), q)
    at, need, rate = plan.next_tier(closed, q)
    out["next_tier_attainment"], out["bookings_to_next_tier"], out["next_tier_rate"] = at, need, rate
    return out


def next_tier(bookings: Any, quota: Any, plan: CommissionPlan = DEFAULT_PLAN) -> pd.DataFrame:
    """What it takes to reach the next band of the plan from ``bookings`` against ``quota``.

    The next tier is the first ``a_k`` above the current attainment ``B / Q`` (below the cap);
    ``to_next = a_k * Q - B`` is the bookings still needed to reach it, where the marginal rate
    rises from ``rate_now`` to ``rate_next``. Missing (NaN) where there is no quota, or no tier
    above (the top band, or the cap reached).

    Parameters
    ----------
    bookings, quota : array-like, shape (n,)
    plan : CommissionPlan

    Returns
    -------
    DataFrame
        ``next_attainment, to_next, rate_now, rate_next`` (one row per entity).
    """
    b = np.atleast_1d(np.maximum(np.asarray(bookings, dtype=float), 0.0))
    q = np.atleast_1d(np.asarray(quota, dtype=float))
    b, q = np.broadcast_arrays(b, q)
    lows = np.array([t.from_attainment for t in plan.tiers])
    rates = np.array([t.rate for t in plan.tiers])
    has_q = np.isfinite(q) & (q > 0)
    att = np.where(has_q, b / np.where(has_q, q, 1.0), np.nan)
    now = np.clip(np.searchsorted(lows, np.nan_to_num(att), side="right") - 1, 0, len(lows) - 1)
    nxt = now + 1
    exists = has_q & (nxt < len(lows))
    nxt_safe = np.minimum(nxt, len(lows) - 1)
    if plan.cap_attainment is not None:
        exists &= lows[nxt_safe] < plan.cap_attainment
    a_next = np.where(exists, lows[nxt_safe], np.nan)
    return pd.DataFrame(
        {
            "next_attainment": a_next,
            "to_next": np.where(exists, a_next * q - b, np.nan),
            "rate_now": np.where(has_q, rates[now], plan.no_quota_rate),
            "rate_next": np.where(exists, rates[nxt_safe], np.nan),
        }
    )


def payout_curve(
    quota: float, plan: Commission = DEFAULT_PLAN, *, max_attainment: float = 2.5, points: int = 101
) -> pd.DataFrame:
    """The plan's payout as a function of attainment, for one quota (for the report's chart).

    Returns
    -------
    DataFrame
        ``attainment`` (0 .. ``max_attainment``), ``bookings = attainment * quota`` and
        ``payout``.
    """
    a = np.linspace(0.0, max_attainment, points)
    b = a * quota
    return pd.DataFrame({"attainment": a, "bookings": b, "payout": plan.payout(b, np.full_like(b, quota))})


def plan_from_mapping(spec: Mapping[str, Any]) -> Commission:
    """Build a plan from a configuration mapping (e.g. the ``[commission]`` table of a TOML file).

    Expected keys: ``tiers`` (a list of ``{from_attainment, rate}`` tables or of
    ``[from_attainment, rate]`` pairs), and optionally ``cap_attainment``,
    ``no_quota_rate`` and ``name``. A full plan book with bonuses, draws and contests is a plan
    file (:mod:`spm_models.insights.incentives.planfile`).

    Raises
    ------
    ConfigError
        Unknown keys, or an invalid plan.
    """
    known = {"tiers", "cap_attainment", "no_quota_rate", "name"}
    unknown = sorted(set(spec) - known)
    if unknown:
        raise ConfigError(f"unknown commission setting(s) {', '.join(unknown)}; use {', '.join(sorted(known))}")
    if "tiers" not in spec:
        raise ConfigError("the commission plan needs tiers, e.g. tiers = [[0.0, 0.05], [1.0, 0.08]]")
    tiers = []
    for t in spec["tiers"]:
        try:
            if isinstance(t, Mapping):
                tiers.append(Tier(float(t["from_attainment"]), float(t["rate"])))
            else:
                lo, rate = t
                tiers.append(Tier(float(lo), float(rate)))
        except (KeyError, TypeError, ValueError):
            raise ConfigError(
                f"a commission tier must be [from_attainment, rate] or {{from_attainment, rate}}, got {t!r}"
            ) from None
    cap = spec.get("cap_attainment")
    return Commission(
        tiers=tuple(tiers),
        cap_attainment=None if cap is None else float(cap),
        no_quota_rate=float(spec.get("no_quota_rate", DEFAULT_PLAN.no_quota_rate)),
        name=str(spec.get("name", "Configured plan")),
    )
