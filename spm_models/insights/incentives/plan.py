"""The incentive plan model: components, plans, contests, assignments and the plan book.

A *plan book* (:class:`PlanBook`, one TOML file: :mod:`~spm_models.insights.incentives.planfile`)
holds the plans of an organisation, the contests run beside them, who holds which role and any
explicit plan assignments. A *plan* (:class:`Plan`) has effective dates, an eligibility rule
(role, territory, hire date, tenure) and components; every component is settled per fiscal
quarter (the statement period), some measured per month inside it.

Components and their formulas (``B`` the measure in the window, ``Q`` its quota, ``f`` the
share of the period's days the person was on the plan, see :mod:`.engine`):

:class:`Commission`
    Tiered commission on bookings or margin against quota, with accelerators (a tier above
    100 % with a higher rate), decelerators (a later tier with a lower rate), a cap on the
    attainment paid (``cap_attainment``) and on the amount (``cap_amount``, scaled by ``f``).
    ``marginal`` (the default) pays each band's rate on the part of ``B`` inside it::

        C(B, Q) = sum_k r_k * clip(min(B, c Q) - a_k Q, 0, (a_{k+1} - a_k) Q)

    ``retroactive`` pays the rate of the band reached on everything: ``r_k(A) * min(B, c Q)``
    with ``A = min(B / Q, c)``. Without a quota: ``no_quota_rate * B``.
:class:`AttainmentBonus`
    ``f * amount_k`` of the highest step ``k`` with ``B / Q >= at_k``; nothing without a quota.
:class:`KpiBonus`
    On another measure (new accounts won, win rate, activities, a product line's bookings,
    deals won): steps ``f * amount_k`` for the highest ``value >= f * at_k`` (thresholds of
    counts and amounts scale with ``f``; a win rate's do not), or per unit
    ``min(rate * max(value - f * above, 0), f * cap_amount)``.
:class:`Draw`
    A guaranteed minimum of ``f * amount`` per quarter against the quarter's commissions and
    bonuses; recoverable advances are recovered from later earnings above the guarantee.
:class:`Contest`
    A fixed prize pool over a date window: shared by the top ``N`` (``shares``; ties split
    the places they hold) or equally by everyone at or above a bar.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from spm_models.exceptions import ConfigError

__all__ = [
    "PERIODS",
    "QUOTA_MEASURES",
    "KPI_MEASURES",
    "PRORATIONS",
    "Tier",
    "Step",
    "Commission",
    "AttainmentBonus",
    "KpiBonus",
    "Draw",
    "Contest",
    "Plan",
    "Assignment",
    "PlanBook",
    "COMPONENT_TYPES",
    "measure_key",
]

#: Periods a component is measured over; every component is settled per fiscal quarter.
PERIODS: tuple[str, ...] = ("quarter", "month")
#: Measures with a quota in the data (targets of metric bookings or margin).
QUOTA_MEASURES: tuple[str, ...] = ("bookings", "margin")
#: Measures a KPI bonus or a contest can pay on (see :mod:`.credits` for each definition).
KPI_MEASURES: tuple[str, ...] = (
    "bookings",
    "margin",
    "product_bookings",
    "deals_won",
    "new_accounts",
    "win_rate",
    "activities",
)
#: How a partial period is paid: fixed amounts and thresholds scaled by the days on the plan, or not.
PRORATIONS: tuple[str, ...] = ("days", "none")
_ADDITIVE = {"bookings", "margin", "product_bookings", "deals_won", "new_accounts", "activities"}
_MEASURE_WORDS = {
    "bookings": "bookings",
    "margin": "margin",
    "product_bookings": "bookings of {segment}",
    "deals_won": "deals won",
    "new_accounts": "new accounts won",
    "win_rate": "win rate",
    "activities": "{segment} activities",
}


def measure_key(measure: str, segment: str = "") -> str:
    """The credit-ledger key of a measure: ``"bookings"``, ``"product_bookings:Enterprise"``,
    ``"activities:demo"`` (``"activities"`` for every type)."""
    return f"{measure}:{segment}" if segment else measure


def measure_words(measure: str, segment: str = "") -> str:
    """A measure in words (``"new accounts won"``, ``"bookings of Enterprise"``)."""
    text = _MEASURE_WORDS.get(measure, measure)
    return text.format(segment=segment).strip() if segment else text.replace("{segment} ", "")


def _money(v: float) -> str:
    return f"{v:,.0f}" if float(v).is_integer() else f"{v:,.2f}"


def _value(v: float, measure: str) -> str:
    if measure == "win_rate":
        return f"{v:.0%}"
    return _money(v)


def _finite(v: Any, *, low: float | None = 0.0, strict: bool = False) -> bool:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not np.isfinite(v):
        return False
    if low is None:
        return True
    return v > low if strict else v >= low


@dataclass(frozen=True)
class Tier:
    """One band of a commission: ``rate`` is paid from ``from_attainment * quota`` up.

    Attributes
    ----------
    from_attainment : float
        Lower bound of the band as a fraction of quota (0.0, 1.0 = 100 %, ...).
    rate : float
        Commission per unit of the measure inside the band (0.05 = 5 %).
    """

    from_attainment: float
    rate: float


@dataclass(frozen=True)
class Step:
    """One step of a bonus: ``amount`` is paid once the value reaches ``at``."""

    at: float
    amount: float


def _check_steps(steps: Sequence[Step], what: str) -> list[tuple[str, str]]:
    out = []
    if not steps:
        return [("steps", f"a {what} needs at least one step [threshold, amount]")]
    ats = [s.at for s in steps]
    if any(not _finite(a) for a in ats):
        out.append(("steps", f"step thresholds must be non-negative numbers, got {ats}"))
    elif any(b <= a for a, b in zip(ats, ats[1:])):
        out.append(("steps", f"step thresholds must increase, got {ats}"))
    amounts = [s.amount for s in steps]
    if any(not _finite(a) for a in amounts):
        out.append(("steps", f"step amounts must be non-negative numbers, got {amounts}"))
    return out


def _step_payout(steps: Sequence[Step], value: np.ndarray, thresholds_scale: Any, amount_scale: Any) -> np.ndarray:
    """``amount_scale * amount_k`` of the highest step with ``value >= thresholds_scale * at_k`` (0 below all)."""
    out = np.zeros(np.broadcast(value, thresholds_scale, amount_scale).shape)
    for s in steps:  # increasing thresholds: the last one reached wins
        out = np.where(value >= s.at * thresholds_scale - 1e-9, s.amount * amount_scale, out)
    return np.where(np.isnan(value), 0.0, out)


@dataclass(frozen=True)
class Commission:
    """Tiered commission on a measure against its quota (module docstring).

    Attributes
    ----------
    tiers : tuple of Tier
        Increasing ``from_attainment``, the first at 0; any non-negative rates (a later lower
        rate is a decelerator, a 0 first rate a threshold).
    cap_attainment : float or None
        Attainment above which nothing more is paid; ``None`` for no cap.
    no_quota_rate : float
        Flat rate on the measure when there is no quota.
    name : str
        The line's label in statements (default from the measure).
    id : str
        Unique within its plan.
    measure : {"bookings", "margin"}
    period : {"quarter", "month"}
        Window of the measure and its quota; monthly windows give one line per month.
    method : {"marginal", "retroactive"}
    cap_amount : float or None
        Most paid per period (scaled by the share of the period on the plan).
    """

    tiers: tuple[Tier, ...]
    cap_attainment: float | None = None
    no_quota_rate: float = 0.05
    name: str = ""
    id: str = "commission"
    measure: str = "bookings"
    period: str = "quarter"
    method: str = "marginal"
    cap_amount: float | None = None
    type: ClassVar[str] = "commission"

    def __post_init__(self) -> None:
        object.__setattr__(self, "tiers", tuple(self.tiers))
        problems = self.problems()
        if problems:
            raise ConfigError("invalid commission plan: " + "; ".join(m for _, m in problems))

    def problems(self) -> list[tuple[str, str]]:
        """``(key, what is wrong)`` for every rule this component breaks."""
        out = []
        if not self.tiers:
            out.append(("tiers", "a plan needs at least one tier"))
        else:
            lows = [t.from_attainment for t in self.tiers]
            if lows[0] != 0:
                out.append(("tiers", f"the first tier must start at attainment 0, not {lows[0]!r}"))
            if any(b <= a for a, b in zip(lows, lows[1:])):
                out.append(("tiers", f"tier start attainments must increase, got {lows}"))
            bad = [t.rate for t in self.tiers if not _finite(t.rate)]
            if bad:
                out.append(("tiers", f"tier rates must be non-negative numbers, got {bad}"))
        if self.cap_attainment is not None and not _finite(self.cap_attainment, strict=True):
            out.append(("cap_attainment", f"must be a positive number or empty, got {self.cap_attainment!r}"))
        if self.cap_amount is not None and not _finite(self.cap_amount, strict=True):
            out.append(("cap_amount", f"must be a positive amount or empty, got {self.cap_amount!r}"))
        if not _finite(self.no_quota_rate):
            out.append(("no_quota_rate", f"must be a non-negative number, got {self.no_quota_rate!r}"))
        if self.measure not in QUOTA_MEASURES:
            out.append(("measure", f"must be one of {', '.join(QUOTA_MEASURES)}, got {self.measure!r}"))
        if self.period not in PERIODS:
            out.append(("period", f"must be one of {', '.join(PERIODS)}, got {self.period!r}"))
        if self.method not in ("marginal", "retroactive"):
            out.append(("method", f"must be 'marginal' or 'retroactive', got {self.method!r}"))
        return out

    @property
    def label(self) -> str:
        return self.name or f"Commission on {measure_words(self.measure)}"

    @property
    def measures(self) -> tuple[str, ...]:
        return (self.measure,)

    def _bands(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        lows = np.array([t.from_attainment for t in self.tiers], dtype=float)
        highs = np.append(lows[1:], np.inf)
        return lows, highs, np.array([t.rate for t in self.tiers], dtype=float)

    def payout(self, value: Any, quota: Any, fraction: Any = 1.0) -> np.ndarray:
        """Commission on ``value`` against ``quota`` (broadcast elementwise; module docstring).

        Negative values pay 0; ``fraction`` scales only ``cap_amount``.
        """
        b = np.maximum(np.nan_to_num(np.asarray(value, dtype=float)), 0.0)
        q = np.asarray(quota, dtype=float)
        b, q, f = np.broadcast_arrays(b, q, np.asarray(fraction, dtype=float))
        has_q = np.isfinite(q) & (q > 0)
        qq = np.where(has_q, q, 0.0)
        capped = b if self.cap_attainment is None else np.minimum(b, self.cap_attainment * qq)
        lows, highs, rates = self._bands()
        if self.method == "retroactive":
            att = np.where(has_q, capped / np.where(has_q, qq, 1.0), 0.0)
            k = np.searchsorted(lows, att + 1e-12, side="right") - 1
            total = rates[np.clip(k, 0, len(rates) - 1)] * capped
        else:
            total = np.zeros(b.shape)
            for lo, hi, rate in zip(lows, highs, rates):  # a handful of tiers, each vectorised over all draws
                width = (hi - lo) * qq if np.isfinite(hi) else np.inf
                total = total + rate * np.clip(capped - lo * qq, 0.0, width)
        out = np.where(has_q, total, self.no_quota_rate * b)
        if self.cap_amount is not None:
            out = np.minimum(out, self.cap_amount * f)
        return out

    def tier_reached(self, value: Any, quota: Any) -> np.ndarray:
        """Index of the band the attainment ``value / quota`` ends in (``len(tiers)``: above the
        cap; -1 without a quota)."""
        b = np.asarray(value, dtype=float)
        q = np.asarray(quota, dtype=float)
        b, q = np.broadcast_arrays(b, q)
        has_q = np.isfinite(q) & (q > 0)
        att = np.where(has_q, b / np.where(has_q, q, 1.0), 0.0)
        lows, _, _ = self._bands()
        k = np.searchsorted(lows, att + 1e-12, side="right") - 1
        if self.cap_attainment is not None:
            k = np.where(att > self.cap_attainment + 1e-12, len(lows), k)
        return np.where(has_q, k, -1)

    def tier_labels(self) -> list[str]:
        """One label per band (and one for above the cap), as :meth:`tier_reached` numbers them."""
        lows, highs, rates = self._bands()
        cap = self.cap_attainment
        out = []
        for lo, hi, r in zip(lows, highs, rates):
            top = min(hi, cap) if cap is not None else hi
            out.append(f"{lo:.0%} to {top:.0%} ({r:.1%})" if np.isfinite(top) else f"above {lo:.0%} ({r:.1%})")
        if cap is not None:
            out.append(f"above the {cap:.0%} cap")
        return out

    def rate_at(self, value: Any, quota: Any) -> np.ndarray:
        """Rate of the band reached, the attainment held at the cap (the no-quota rate without
        a quota): the statement's "rate"."""
        b = np.asarray(value, dtype=float)
        q = np.asarray(quota, dtype=float)
        if self.cap_attainment is not None:
            b = np.minimum(b, self.cap_attainment * np.where(np.isfinite(q), q, np.inf))
        k = self.tier_reached(b, q)
        rates = self._bands()[2]
        return np.where(k < 0, self.no_quota_rate, rates[np.clip(k, 0, len(rates) - 1)])

    def next_tier(self, value: Any, quota: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(attainment where the next band starts, value still needed to reach it, its rate)``;
        NaN where there is no next band (the last one, the cap, or no quota)."""
        b = np.asarray(value, dtype=float)
        q = np.asarray(quota, dtype=float)
        b, q = np.broadcast_arrays(b, q)
        lows, _, rates = self._bands()
        k = self.tier_reached(b, q)
        nxt = k + 1
        ok = (k >= 0) & (nxt < len(lows))
        if self.cap_attainment is not None:
            ok &= lows[np.clip(nxt, 0, len(lows) - 1)] < self.cap_attainment
        at = np.where(ok, lows[np.clip(nxt, 0, len(lows) - 1)], np.nan)
        need = np.where(ok, np.maximum(at * q - b, 0.0), np.nan)
        return at, need, np.where(ok, rates[np.clip(nxt, 0, len(rates) - 1)], np.nan)

    def describe(self) -> list[str]:
        """One plain-language line per tier (the statement's rule and the report)."""
        lows, highs, rates = self._bands()
        highs = list(highs[:-1]) + [self.cap_attainment if self.cap_attainment is not None else np.inf]
        what = measure_words(self.measure)
        out = []
        for lo, hi, r in zip(lows, highs, rates):
            band = f"{lo:.0%} to {hi:.0%} of quota" if np.isfinite(hi) else f"above {lo:.0%} of quota"
            out.append(f"{r:.1%} of {what} {band}")
        if self.cap_attainment is not None:
            out.append(f"nothing more above {self.cap_attainment:.0%} of quota")
        if self.method == "retroactive":
            out.append("the rate of the band reached applies to everything (retroactive)")
        if self.cap_amount is not None:
            out.append(f"at most {_money(self.cap_amount)} a {self.period}")
        return out

    def rule(self) -> str:
        return (
            "; ".join(self.describe()) + f"; without a quota {self.no_quota_rate:.1%} of {measure_words(self.measure)}"
        )


@dataclass(frozen=True)
class AttainmentBonus:
    """A bonus for reaching attainment thresholds of the bookings or margin quota."""

    steps: tuple[Step, ...]
    id: str = "attainment_bonus"
    name: str = ""
    measure: str = "bookings"
    period: str = "quarter"
    type: ClassVar[str] = "attainment_bonus"

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(self.steps))

    def problems(self) -> list[tuple[str, str]]:
        out = _check_steps(self.steps, "bonus")
        if self.measure not in QUOTA_MEASURES:
            out.append(("measure", f"must be one of {', '.join(QUOTA_MEASURES)}, got {self.measure!r}"))
        if self.period not in PERIODS:
            out.append(("period", f"must be one of {', '.join(PERIODS)}, got {self.period!r}"))
        return out

    @property
    def label(self) -> str:
        return self.name or f"Bonus on {measure_words(self.measure)} attainment"

    @property
    def measures(self) -> tuple[str, ...]:
        return (self.measure,)

    def payout(self, value: Any, quota: Any, fraction: Any = 1.0) -> np.ndarray:
        b = np.asarray(value, dtype=float)
        q = np.asarray(quota, dtype=float)
        b, q, f = np.broadcast_arrays(b, q, np.asarray(fraction, dtype=float))
        has_q = np.isfinite(q) & (q > 0)
        att = np.where(has_q, b / np.where(has_q, q, 1.0), np.nan)
        return _step_payout(self.steps, att, 1.0, f)

    def rule(self) -> str:
        steps = ", ".join(f"{_money(s.amount)} at {s.at:.0%}" for s in self.steps)
        return f"{steps} of the {measure_words(self.measure)} quota (the highest step reached)"


@dataclass(frozen=True)
class KpiBonus:
    """A bonus on a measure other than attainment: steps or an amount per unit (module docstring)."""

    kpi: str
    id: str = "kpi_bonus"
    name: str = ""
    segment: str = ""
    period: str = "quarter"
    steps: tuple[Step, ...] = ()
    per_unit: float | None = None
    above: float = 0.0
    cap_amount: float | None = None
    min_deals: int = 0
    type: ClassVar[str] = "kpi_bonus"

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(self.steps))

    def problems(self) -> list[tuple[str, str]]:
        out = []
        if self.kpi not in KPI_MEASURES:
            out.append(("kpi", f"must be one of {', '.join(KPI_MEASURES)}, got {self.kpi!r}"))
        if self.kpi == "product_bookings" and not self.segment:
            out.append(("segment", "a product_bookings bonus names the product line (series) or product id"))
        if self.segment and self.kpi not in ("product_bookings", "activities"):
            out.append(("segment", f"only product_bookings and activities take a segment, not {self.kpi!r}"))
        if self.period not in PERIODS:
            out.append(("period", f"must be one of {', '.join(PERIODS)}, got {self.period!r}"))
        if bool(self.steps) == (self.per_unit is not None):
            out.append(("steps", "give either steps = [[threshold, amount], ...] or per_unit (an amount per unit)"))
        elif self.steps:
            out += _check_steps(self.steps, "bonus")
            if self.kpi == "win_rate" and any(s.at > 1 for s in self.steps):
                out.append(("steps", "win-rate thresholds are fractions (0.35 = 35%)"))
        elif not _finite(self.per_unit, strict=True):
            out.append(("per_unit", f"must be a positive amount, got {self.per_unit!r}"))
        if self.per_unit is not None and self.kpi == "win_rate":
            out.append(("per_unit", "a win rate is paid in steps, not per unit"))
        if not _finite(self.above):
            out.append(("above", f"must be a non-negative number, got {self.above!r}"))
        if self.cap_amount is not None and not _finite(self.cap_amount, strict=True):
            out.append(("cap_amount", f"must be a positive amount or empty, got {self.cap_amount!r}"))
        if isinstance(self.min_deals, bool) or not isinstance(self.min_deals, int) or self.min_deals < 0:
            out.append(("min_deals", f"must be a whole number of deals, got {self.min_deals!r}"))
        elif self.min_deals and self.kpi != "win_rate":
            out.append(("min_deals", "only a win_rate bonus takes min_deals"))
        return out

    @property
    def label(self) -> str:
        return self.name or f"Bonus on {measure_words(self.kpi, self.segment)}"

    @property
    def measures(self) -> tuple[str, ...]:
        if self.kpi == "win_rate":
            return ("deals_won", "deals_decided")
        return (measure_key(self.kpi, self.segment),)

    def payout(self, value: Any, fraction: Any = 1.0, decided: Any = None) -> np.ndarray:
        v = np.asarray(value, dtype=float)
        v, f = np.broadcast_arrays(v, np.asarray(fraction, dtype=float))
        if self.kpi == "win_rate" and decided is not None:
            v = np.where(np.asarray(decided, dtype=float) >= max(self.min_deals, 1), v, np.nan)
        scale = f if self.kpi in _ADDITIVE else 1.0
        if self.steps:
            return _step_payout(self.steps, v, scale, f)
        out = self.per_unit * np.maximum(np.nan_to_num(v) - self.above * scale, 0.0)
        return np.minimum(out, self.cap_amount * f) if self.cap_amount is not None else out

    def rule(self) -> str:
        what = measure_words(self.kpi, self.segment)
        if self.steps:
            steps = ", ".join(f"{_money(s.amount)} at {_value(s.at, self.kpi)}" for s in self.steps)
            extra = f", with at least {self.min_deals} deals decided" if self.min_deals else ""
            return f"{steps} {what} a {self.period} (the highest step reached{extra})"
        text = f"{_money(self.per_unit)} per unit of {what}"
        if self.above:
            text += f" above {_value(self.above, self.kpi)}"
        if self.cap_amount is not None:
            text += f", at most {_money(self.cap_amount)}"
        return text + f" a {self.period}"


@dataclass(frozen=True)
class Draw:
    """A guaranteed minimum per quarter against commissions and bonuses (module docstring)."""

    amount: float
    id: str = "draw"
    name: str = ""
    recoverable: bool = True
    quarters: int | None = None
    period: str = "quarter"
    type: ClassVar[str] = "draw"

    def problems(self) -> list[tuple[str, str]]:
        out = []
        if not _finite(self.amount, strict=True):
            out.append(("amount", f"must be a positive amount, got {self.amount!r}"))
        if not isinstance(self.recoverable, bool):
            out.append(("recoverable", f"must be true or false, got {self.recoverable!r}"))
        if self.quarters is not None and (
            isinstance(self.quarters, bool) or not isinstance(self.quarters, int) or self.quarters < 1
        ):
            out.append(("quarters", f"must be a positive whole number of quarters, got {self.quarters!r}"))
        if self.period != "quarter":
            out.append(("period", "a draw is settled per quarter: period must be 'quarter'"))
        return out

    @property
    def label(self) -> str:
        return self.name or ("Recoverable draw" if self.recoverable else "Guaranteed draw")

    @property
    def measures(self) -> tuple[str, ...]:
        return ()

    def rule(self) -> str:
        how = "recovered from later earnings above it" if self.recoverable else "not recovered"
        when = f" for the first {self.quarters} quarter{'s' if self.quarters != 1 else ''} on the plan"
        return f"at least {_money(self.amount)} a quarter{when if self.quarters else ''}; advances are {how}"


COMPONENT_TYPES: dict[str, type] = {c.type: c for c in (Commission, AttainmentBonus, KpiBonus, Draw)}


@dataclass(frozen=True)
class Contest:
    """A prize pool over a window (module docstring); paid in the quarter holding ``end``."""

    id: str
    kpi: str
    start: pd.Timestamp
    end: pd.Timestamp
    pool: float
    name: str = ""
    segment: str = ""
    top_n: int | None = None
    shares: tuple[float, ...] = ()
    above: float | None = None
    roles: tuple[str, ...] = ()
    territories: tuple[str, ...] = ()
    min_deals: int = 0
    type: ClassVar[str] = "contest"

    def __post_init__(self) -> None:
        object.__setattr__(self, "shares", tuple(self.shares))
        if self.top_n is not None and not self.shares and isinstance(self.top_n, int) and self.top_n > 0:
            object.__setattr__(self, "shares", tuple([1.0 / self.top_n] * self.top_n))

    def problems(self) -> list[tuple[str, str]]:
        out = []
        if self.kpi not in KPI_MEASURES:
            out.append(("kpi", f"must be one of {', '.join(KPI_MEASURES)}, got {self.kpi!r}"))
        if self.kpi == "product_bookings" and not self.segment:
            out.append(("segment", "a product_bookings contest names the product line (series) or product id"))
        if pd.notna(self.start) and pd.notna(self.end) and self.end < self.start:
            out.append(("to", f"the window ends ({self.end.date()}) before it starts ({self.start.date()})"))
        if not _finite(self.pool, strict=True):
            out.append(("pool", f"must be a positive amount, got {self.pool!r}"))
        if (self.top_n is None) == (self.above is None):
            out.append(("top_n", "give either top_n (the best N share the pool) or above (everyone at or above a bar)"))
        if self.top_n is not None:
            if isinstance(self.top_n, bool) or not isinstance(self.top_n, int) or self.top_n < 1:
                out.append(("top_n", f"must be a positive whole number, got {self.top_n!r}"))
            elif len(self.shares) != self.top_n:
                out.append(("shares", f"needs one share per place ({self.top_n}), got {len(self.shares)}"))
            elif any(not _finite(s) for s in self.shares) or abs(sum(self.shares) - 1) > 1e-6:
                out.append(("shares", f"must be non-negative and add up to 1, got {list(self.shares)}"))
        if self.above is not None and not _finite(self.above):
            out.append(("above", f"must be a non-negative number, got {self.above!r}"))
        if self.kpi == "win_rate" and self.min_deals < 1:
            out.append(("min_deals", "a win-rate contest needs min_deals (at least 1 deal decided to take part)"))
        return out

    @property
    def label(self) -> str:
        return self.name or f"Contest on {measure_words(self.kpi, self.segment)}"

    @property
    def measures(self) -> tuple[str, ...]:
        if self.kpi == "win_rate":
            return ("deals_won", "deals_decided")
        return (measure_key(self.kpi, self.segment),)

    def rule(self) -> str:
        what = measure_words(self.kpi, self.segment)
        window = f"{self.start.date()} to {self.end.date()}"
        if self.top_n is not None:
            split = "/".join(f"{s:.0%}" for s in self.shares)
            return (
                f"the top {self.top_n} by {what} {window} share {_money(self.pool)} ({split}; ties split their places)"
            )
        return f"everyone with {what} of at least {_value(self.above, self.kpi)} {window} shares {_money(self.pool)}"


@dataclass(frozen=True)
class Plan:
    """One plan: when it applies, to whom, and its components (module docstring).

    Eligibility: the person's role is in ``roles`` and territory in ``territories`` (empty: any),
    hired on or after ``hired_on_or_after`` and before ``hired_before`` (an unknown hire date
    counts as hired before the data), between ``min_tenure_months`` and ``max_tenure_months`` of
    tenure (a ramp plan), employed, and inside ``effective_from`` .. ``effective_to`` (inclusive).
    """

    id: str
    effective_from: pd.Timestamp
    components: tuple[Any, ...]
    name: str = ""
    effective_to: pd.Timestamp | None = None
    roles: tuple[str, ...] = ()
    territories: tuple[str, ...] = ()
    hired_on_or_after: pd.Timestamp | None = None
    hired_before: pd.Timestamp | None = None
    min_tenure_months: int = 0
    max_tenure_months: int | None = None
    proration: str = "days"

    def __post_init__(self) -> None:
        object.__setattr__(self, "components", tuple(self.components))
        object.__setattr__(self, "roles", tuple(self.roles))
        object.__setattr__(self, "territories", tuple(self.territories))

    @property
    def label(self) -> str:
        return self.name or self.id

    def problems(self) -> list[tuple[str, str]]:
        out = []
        if self.effective_to is not None and pd.notna(self.effective_to) and self.effective_to < self.effective_from:
            out.append(("effective_to", f"is before effective_from ({self.effective_from.date()})"))
        if not self.components:
            out.append(("components", "a plan needs at least one component"))
        ids = [c.id for c in self.components]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            out.append(("components", f"component ids must be unique in a plan, repeated: {', '.join(dup)}"))
        if sum(isinstance(c, Draw) for c in self.components) > 1:
            out.append(("components", "a plan has at most one draw"))
        if self.proration not in PRORATIONS:
            out.append(("proration", f"must be one of {', '.join(PRORATIONS)}, got {self.proration!r}"))
        if self.max_tenure_months is not None and self.max_tenure_months <= self.min_tenure_months:
            out.append(("max_tenure_months", "must be more than min_tenure_months"))
        return out


@dataclass(frozen=True)
class Assignment:
    """An explicit plan for one person over dates, overriding the eligibility rules there."""

    agent_id: str
    plan_id: str
    start: pd.Timestamp
    end: pd.Timestamp | None = None


@dataclass(frozen=True)
class PlanBook:
    """Every plan of an organisation, its contests, roles and explicit assignments.

    Attributes
    ----------
    plans : tuple of Plan
    contests : tuple of Contest
    assignments : tuple of Assignment
    roles : mapping of str to tuple of str
        Role -> the agent ids holding it; everyone else holds ``default_role``.
    default_role : str
    name : str
    source : str
        Where the book was read from (named in messages).
    """

    plans: tuple[Plan, ...]
    contests: tuple[Contest, ...] = ()
    assignments: tuple[Assignment, ...] = ()
    roles: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    default_role: str = ""
    name: str = "Incentive plans"
    source: str = "<memory>"

    def __post_init__(self) -> None:
        object.__setattr__(self, "plans", tuple(self.plans))
        object.__setattr__(self, "contests", tuple(self.contests))
        object.__setattr__(self, "assignments", tuple(self.assignments))
        object.__setattr__(self, "roles", {str(k): tuple(str(a) for a in v) for k, v in dict(self.roles).items()})

    @classmethod
    def from_commission(cls, commission: Commission) -> PlanBook:
        """A book of one plan for everyone with one commission (the review settings' ``[commission]``)."""
        plan = Plan(
            id="commission",
            name=commission.name or "Configured plan",
            effective_from=pd.Timestamp("2000-01-01"),
            components=(commission,),
        )
        return cls(plans=(plan,), name=commission.name or "Configured plan", source="[commission] settings")

    def plan(self, plan_id: str) -> Plan:
        for p in self.plans:
            if p.id == plan_id:
                return p
        raise ConfigError(f"{self.source}: no plan with id {plan_id!r}; plans: {', '.join(p.id for p in self.plans)}")

    def role_of(self, agent_ids: Sequence[str]) -> np.ndarray:
        """Role of each agent: the role whose list names them, else ``default_role``."""
        lookup = {a: r for r, ids in self.roles.items() for a in ids}
        return np.array([lookup.get(str(a), self.default_role) for a in agent_ids], dtype=object)

    @property
    def start(self) -> pd.Timestamp:
        """First day any plan or contest is effective."""
        days = [p.effective_from for p in self.plans] + [c.start for c in self.contests]
        return min(days)

    def measures(self) -> tuple[str, ...]:
        """Credit-ledger keys every component and contest reads (:mod:`.credits`)."""
        keys = [k for p in self.plans for c in p.components for k in c.measures]
        keys += [k for c in self.contests for k in c.measures]
        return tuple(dict.fromkeys(keys))

    def components(self) -> list[tuple[Plan, Any]]:
        return [(p, c) for p in self.plans for c in p.components]
