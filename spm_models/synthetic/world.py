"""The state of a synthetic organisation while it is being drawn."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from spm_models.synthetic.truth import SyntheticParams

__all__ = ["World"]

# One independent random stream per component: changing one part leaves the others as they were.
_STREAMS = {
    n: i
    for i, n in enumerate(
        (
            "staff",
            "names",
            "skill",
            "leads",
            "activities",
            "market",
            "agent_params",
            "opps",
            "outcomes",
            "sizes",
            "accounts",
            "quotas",
            "quota_plans_ahead",
        ),
        start=1,
    )
}


@dataclass
class World:
    """Everything drawn so far, as arrays (agents x weeks where two-dimensional)."""

    p: SyntheticParams
    seed: int
    weeks: np.ndarray  # Monday of each week, datetime64[D]
    n: int = 0
    n_terr: int = 0
    a: dict = field(default_factory=dict)  # per agent
    aw: dict = field(default_factory=dict)  # agents x weeks
    tw: dict = field(default_factory=dict)  # per territory / week
    opp: dict = field(default_factory=dict)  # per opportunity
    quota: dict = field(default_factory=dict)  # agents x quarters

    @property
    def W(self) -> int:
        return len(self.weeks)

    @property
    def B(self) -> int:
        """Pre-start weeks whose deals may still be open at the start (the longest cycle)."""
        return self.p.cycle_max_weeks

    def rng(self, stream: str) -> np.random.Generator:
        return np.random.default_rng([self.seed, _STREAMS[stream]])
