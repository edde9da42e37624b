"""Every threshold behind the coaching points and the deal lists, in one settings object.

The review reads them from the ``[coaching]`` table of its settings file
(:func:`spm_models.review.settings.load_config`); ``docs/review.md`` lists them with what each
one changes. Defaults are what a sales manager would use without thinking about it: a deal is
*stuck* when it has sat in its stage twice as long as deals usually do there (and at least two
weeks), and an agent at one and a half times quota is coached on next quarter, not on a dip in
calls.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from spm_models.exceptions import ConfigError

__all__ = ["CoachingSettings", "coaching_settings_from_mapping"]


@dataclass(frozen=True)
class CoachingSettings:
    """Thresholds of the coaching points (:mod:`spm_models.insights.coaching`) and deal lists
    (:mod:`spm_models.insights.deals`).

    Attributes
    ----------
    deals_listed : int
        Rows of each deal list (open deals, wins, losses, stuck deals, deals at risk).
    stuck_factor : float
        A deal is stuck when its days in the current stage exceed ``stuck_factor`` times the
        median days deals spent in that stage (over the funnel window) ...
    stuck_min_days : int
        ... and at least this many days.
    risk_p_win : float
        An open deal is at risk when the pipeline model's chance of winning it is below this
        (or it is stuck), and its amount is at least the territory's median open deal.
    far_above_quota : float
        Attainment (booked so far / quota) from which an agent is coached on next quarter's
        pipeline and on sharing what works, never first on an activity dip.
    chance_low, chance_high : float
        Chance of reaching quota below which the quota point is urgent, above which it says
        "on track".
    coverage_low, coverage_target : float
        Pipeline coverage of the quota still to book below which the pipeline point fires,
        and the coverage it asks for.
    funnel_gap : float
        Points (0.05 = 5 points) a stage's conversion must trail the peers' to be named.
    win_rate_percentile : float
        Win-rate percentile among peers below which the win rate is named.
    activity_z : float
        Standard deviations below the agent's own monthly average for an activity dip.
    strength_percentile : float
        Percentile from which the best scorecard line is named as a strength.
    max_points, min_points : int
        Coaching points per agent (most worth first).
    """

    deals_listed: int = 5
    stuck_factor: float = 2.0
    stuck_min_days: int = 14
    risk_p_win: float = 0.2
    far_above_quota: float = 1.5
    chance_low: float = 0.3
    chance_high: float = 0.8
    coverage_low: float = 2.0
    coverage_target: float = 3.0
    funnel_gap: float = 0.05
    win_rate_percentile: float = 25.0
    activity_z: float = 1.0
    strength_percentile: float = 75.0
    max_points: int = 4
    min_points: int = 2

    def __post_init__(self) -> None:
        problems = []
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0:
                problems.append(f"{f.name} must be a number of at least 0, got {v!r}")
        for name in ("deals_listed", "stuck_min_days", "max_points", "min_points"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool):
                problems.append(f"{name} must be a whole number, got {v!r}")
        if not problems:
            if self.deals_listed < 1 or self.max_points < 1:
                problems.append("deals_listed and max_points must be at least 1")
            if self.min_points > self.max_points:
                problems.append(f"min_points ({self.min_points}) must not exceed max_points ({self.max_points})")
            if not self.chance_low < self.chance_high <= 1:
                problems.append(f"chance_low < chance_high <= 1 is needed, got {self.chance_low}, {self.chance_high}")
            if self.risk_p_win > 1:
                problems.append(f"risk_p_win is a chance between 0 and 1, got {self.risk_p_win}")
            if self.stuck_factor < 1:
                problems.append(f"stuck_factor must be at least 1 (times the usual days), got {self.stuck_factor}")
        if problems:
            raise ConfigError("invalid [coaching] settings: " + "; ".join(problems))


def coaching_settings_from_mapping(spec: Mapping[str, Any]) -> CoachingSettings:
    """Settings from a mapping (the ``[coaching]`` table of a review settings file).

    Raises
    ------
    ConfigError
        Unknown keys (named, with the known ones) or invalid values.
    """
    known = {f.name for f in fields(CoachingSettings)}
    unknown = sorted(set(spec) - known)
    if unknown:
        raise ConfigError(f"unknown [coaching] setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return CoachingSettings(**dict(spec))
