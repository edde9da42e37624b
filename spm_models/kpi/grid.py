"""The agent x period grid every KPI is computed on, and its roll-up to territories and company.

KPI components (sums and counts) are accumulated into dense numpy arrays of shape
``(n_agents, n_periods)`` (or ``(n_agents, n_periods, n_segments)``) with ``np.bincount``,
then summed to territories and the company. Ratios are formed afterwards from the summed
numerators and denominators at each level, never by averaging agent ratios.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from spm_models.calendar import DEFAULT_CALENDAR, PERIOD_UNIT, Calendar
from spm_models.exceptions import DataValidationError, Problem

__all__ = ["LEVELS", "COMPANY", "Grid", "ratio"]

#: Reporting levels, finest first.
LEVELS: tuple[str, ...] = ("agent", "territory", "company")
#: ``entity_id`` of the company level.
COMPANY = "company"

_NEVER_BEFORE = np.datetime64("-100000-01-01", "D")
_NEVER_AFTER = np.datetime64("100000-01-01", "D")


def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` element-wise, NaN where ``den`` is 0 (or NaN)."""
    out = np.full(np.broadcast(num, den).shape, np.nan)
    ok = den != 0
    with np.errstate(over="ignore"):  # a tiny prorated quota may give an infinite ratio
        np.divide(num, den, out=out, where=ok & ~np.isnan(den))
    return out


class Grid:
    """Agents, territories and reporting periods, and how values move between them.

    Parameters
    ----------
    agent_ids, territory_of_agent : ndarray of str
        One entry per agent (unique ids) and the territory each belongs to.
    hire_days, leave_days : ndarray of datetime64[D]
        Employment dates; NaT means "before the data" and "still employed".
    extra_territories : ndarray of str
        Territories known only from elsewhere (territory-level targets).
    grain : str
        Reporting grain.
    calendar : Calendar
        Weeks, months and the fiscal quarters and years of the grain.
    first_day, last_day : numpy.datetime64
        Calendar span to cover; every period overlapping it is on the grid.

    Attributes
    ----------
    periods : DatetimeIndex
        Period starts (``P`` of them).
    bounds : ndarray of datetime64[D]
        ``P + 1`` values: the period starts, then the end (exclusive) of the last period.
    employed : ndarray of bool, shape (A, P)
        Whether the agent was employed on at least one day of the period.
    """

    def __init__(
        self,
        agent_ids: np.ndarray,
        territory_of_agent: np.ndarray,
        hire_days: np.ndarray,
        leave_days: np.ndarray,
        *,
        extra_territories: np.ndarray,
        grain: str,
        first_day: np.datetime64,
        last_day: np.datetime64,
        calendar: Calendar = DEFAULT_CALENDAR,
    ):
        order = np.argsort(agent_ids, kind="stable")
        self.agent_ids = np.asarray(agent_ids, dtype=object)[order]
        self.agent_index = pd.Index(self.agent_ids)
        own = np.asarray(territory_of_agent, dtype=object)
        every = set(own.tolist()) | set(np.asarray(extra_territories, dtype=object).tolist())
        self.territory_ids = np.array(sorted(every), dtype=object)
        self.agent_territory = pd.Index(self.territory_ids).get_indexer(own[order])
        self.grain = grain
        self.calendar = calendar
        self.periods = calendar.period_range(pd.Timestamp(first_day), pd.Timestamp(last_day), grain)
        starts = self.periods.to_numpy().astype("datetime64[D]")
        end = calendar.next_period_start(self.periods[-1:], grain).to_numpy().astype("datetime64[D]")
        self.bounds = np.concatenate([starts, end])
        hire = np.where(np.isnat(hire_days), _NEVER_BEFORE, hire_days)[order]
        leave = np.where(np.isnat(leave_days), _NEVER_AFTER, leave_days)[order]
        # Employed in a period when [hire, leave] overlaps [start, next start).
        self.employed = (hire[:, None] < self.bounds[None, 1:]) & (leave[:, None] >= self.bounds[None, :-1])
        # Agents sorted by territory, for summing with np.add.reduceat.
        self._by_territory = np.argsort(self.agent_territory, kind="stable")
        terr_sorted = self.agent_territory[self._by_territory]
        self._terr_with_agents, self._terr_offsets = np.unique(terr_sorted, return_index=True)

    # --- sizes ---------------------------------------------------------------------------
    @property
    def n_agents(self) -> int:
        return len(self.agent_ids)

    @property
    def n_territories(self) -> int:
        return len(self.territory_ids)

    @property
    def n_periods(self) -> int:
        return len(self.periods)

    def size(self, level: str) -> int:
        """Number of entities at ``level``."""
        return {"agent": self.n_agents, "territory": self.n_territories, "company": 1}[level]

    # --- mapping rows onto the grid -------------------------------------------------------
    def agent_codes(self, ids: pd.Series, *, table: str) -> np.ndarray:
        """Grid row of each agent id; unknown ids raise :class:`DataValidationError`."""
        if isinstance(ids.dtype, pd.CategoricalDtype):
            # dictionary-encoded: match the vocabulary once, then look the codes up
            at = np.append(self.agent_index.get_indexer(ids.cat.categories), -1)  # last: a missing id
            codes = at[ids.cat.codes.to_numpy()]
        else:
            codes = self.agent_index.get_indexer(ids)
        bad = codes < 0
        if bad.any():
            unknown = pd.unique(pd.Series(np.asarray(ids, dtype=object)[bad]))
            problems = [
                Problem(
                    table,
                    None,
                    "agent_id",
                    None if pd.isna(u) else str(u),
                    "agent_id is not in the agents table; add the agent (with a territory) or fix the id",
                )
                for u in unknown[:50]
            ]
            raise DataValidationError(problems)
        return codes

    def period_codes(self, days: np.ndarray) -> np.ndarray:
        """Grid column of each ``datetime64[D]`` date; -1 outside the grid or NaT."""
        if not self.n_periods:
            return np.full(len(days), -1, dtype=np.int64)
        idx = np.searchsorted(self.bounds, days, side="right") - 1
        idx[(idx >= self.n_periods) | np.isnat(days)] = -1
        return idx

    def first_start_after(self, days: np.ndarray) -> np.ndarray:
        """Index of the first period starting strictly after each date (``P`` if none)."""
        return np.searchsorted(self.bounds[:-1], days, side="right")

    def accumulate(
        self,
        agent: np.ndarray,
        period: np.ndarray,
        weights: np.ndarray | None = None,
        *,
        segment: np.ndarray | None = None,
        n_segments: int | None = None,
    ) -> np.ndarray:
        """Sum ``weights`` (1 each when None) into an ``(A, P)`` or ``(A, P, S)`` array.

        Rows with ``period < 0`` (outside the grid) or ``segment < 0`` are dropped.
        """
        keep = period >= 0
        if segment is not None:
            keep &= segment >= 0
        a, p = agent[keep], period[keep]
        w = None if weights is None else np.asarray(weights, dtype=float)[keep]
        shape = (self.n_agents, self.n_periods)
        flat = a * self.n_periods + p
        if segment is not None:
            shape += (int(n_segments),)
            flat = flat * n_segments + segment[keep]
        size = int(np.prod(shape))
        return np.bincount(flat, weights=w, minlength=size).astype(float).reshape(shape)

    # --- roll-up --------------------------------------------------------------------------
    def to_territories(self, agent_values: np.ndarray) -> np.ndarray:
        """Sum agent rows into their territories (territories without agents get 0)."""
        out = np.zeros((self.n_territories,) + agent_values.shape[1:])
        if self.n_agents:
            sums = np.add.reduceat(agent_values[self._by_territory], self._terr_offsets, axis=0)
            out[self._terr_with_agents] = sums
        return out

    def rollup(self, agent_values: np.ndarray) -> dict[str, np.ndarray]:
        """``{"agent": x, "territory": sum by territory, "company": sum of all}``."""
        terr = self.to_territories(agent_values)
        return {"agent": agent_values, "territory": terr, "company": agent_values.sum(axis=0, keepdims=True)}

    # --- labels ---------------------------------------------------------------------------
    def entity_ids(self, level: str) -> np.ndarray:
        if level == "agent":
            return self.agent_ids
        if level == "territory":
            return self.territory_ids
        return np.array([COMPANY], dtype=object)

    def period_values(self) -> np.ndarray:
        return self.periods.to_numpy().astype(f"datetime64[{PERIOD_UNIT}]")
