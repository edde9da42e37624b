"""The planted parameters and the ground truth of the synthetic organisation.

:class:`SyntheticParams` holds every constant of the generative model (documented in
:mod:`spm_models.synthetic.generator`); :class:`GroundTruth` holds what the generator planted,
per agent and per agent-week, so forecasts and effect estimates can be checked against the
truth instead of against another estimate.

On disk the ground truth is a folder (``ground_truth/`` beside the canonical CSVs) with
``params.json`` and one parquet file per frame.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from spm_models.calendar import DEFAULT_CALENDAR, GRAINS
from spm_models.exceptions import ConfigError, DataError

__all__ = [
    "GENERATOR_VERSION",
    "SyntheticParams",
    "GroundTruth",
    "cycle_pmf",
    "period_weights",
]

#: Bumped whenever the same seed would give different data.
GENERATOR_VERSION = "1.1"  # 1.1: whole-quarter quotas for the current and next quarter


@dataclass(frozen=True)
class SyntheticParams:
    """Every constant of the synthetic organisation (rates per agent and week unless noted).

    The defaults are the planted values documented in :mod:`spm_models.synthetic.generator`.
    All of them are written to ``params.json``.
    """

    # organisation
    agents_per_territory: float = 7.0
    max_territories: int = 60
    team_size: int = 7
    hire_fraction: float = 0.15
    leave_fraction: float = 0.10
    ramp_weeks: int = 12
    stop_before_leave_weeks: int = 8
    replacement_gap_weeks: int = 4
    # skill (log scale): territory effect + agent effect
    territory_effect_sd: float = 0.15
    agent_effect_sd: float = 0.30
    # opportunity creation and yearly seasonality
    opps_per_week: float = 1.5
    season_amplitude: float = 0.15
    season_peak_day: int = 288
    holiday_factor: float = 0.5
    lead_ar_phi: float = 0.9
    lead_ar_sd: float = 0.15
    leads_per_agent: tuple[tuple[str, float], ...] = (("web", 4.0), ("referral", 1.2), ("event", 0.6))
    event_week_prob: float = 0.08
    event_multiplier: float = 6.0
    # activities: negative binomial around base rate x skill^elasticity x season x ramp x AR(1)
    activity_rates: tuple[tuple[str, float], ...] = (("call", 24.0), ("email", 40.0), ("meeting", 6.0), ("demo", 3.0))
    activity_skill_elasticity: float = 0.3
    activity_ar_phi: float = 0.85
    activity_ar_sd: float = 0.25
    activity_dispersion: float = 10.0
    # company-level series
    market_level: float = 100.0
    market_trend_per_year: float = 2.0
    market_ar_phi: float = 0.95
    market_ar_sd: float = 4.0
    marketing_spend_per_agent: float = 600.0
    marketing_spend_noise_sd: float = 0.2
    # sales cycle: discretised gamma, ceil(X) weeks, truncated at cycle_max_weeks
    cycle_mean_min: float = 4.0
    cycle_mean_max: float = 12.0
    cycle_shape: float = 3.0
    cycle_max_weeks: int = 52
    # stage conversions (prospecting->qualification, ..., proposal->negotiation)
    stage_conversion: tuple[float, ...] = (0.85, 0.80, 0.80, 0.85)
    stage_conversion_sd: float = 0.35
    # negotiation->won: logit = theta_i + effects
    theta_mean: float = 0.4
    theta_sd: float = 0.3
    theta_skill: float = 0.5
    demo_lag_weeks: int = 3
    beta_demo: float = 0.35
    market_lag_weeks: int = 8
    beta_market: float = 0.4
    push_weeks: int = 2
    push_logit: float = 0.5
    # deal size: lognormal(mu_i, sigma_i), whole currency units
    size_mu: float = 8.5
    size_mu_sd: float = 0.15
    size_skill: float = 0.3
    size_sigma_min: float = 0.9
    size_sigma_max: float = 1.0
    # quotas
    plan_factor_min: float = 0.95
    plan_factor_max: float = 1.25
    quota_rounding: float = 1000.0
    quota_floor: float = 1000.0
    # whole-quarter quotas, set before the quarter starts, for the quarter holding the last data
    # day and this many quarters after it (the agents employed at the end)
    quota_quarters_ahead: int = 1
    # accounts: per-territory pool, Zipf-like popularity
    accounts_per_agent: float = 40.0
    account_zipf_exponent: float = 1.1
    account_zipf_offset: float = 3.0

    def to_dict(self) -> dict:
        """Plain JSON-ready dict (tuples become lists)."""
        return json.loads(json.dumps(asdict(self)))


def cycle_pmf(gamma_mean: np.ndarray, *, shape: float, max_weeks: int) -> np.ndarray:
    """Sales-cycle length distribution in whole weeks, one row per agent.

    ``P(cycle = d) = (F(d) - F(d - 1)) / F(max_weeks)`` for ``d = 1 .. max_weeks``, where
    ``F`` is the gamma CDF with the given shape and mean ``gamma_mean`` (so the cycle is
    ``ceil(X)`` of a gamma draw, truncated at ``max_weeks``).

    Returns
    -------
    ndarray, shape (n_agents, max_weeks)
        Column ``d - 1`` holds ``P(cycle = d)``; rows sum to one.
    """
    gamma_mean = np.asarray(gamma_mean, dtype=float)
    d = np.arange(max_weeks + 1, dtype=float)
    cdf = stats.gamma.cdf(d[None, :], shape, scale=gamma_mean[:, None] / shape)
    pmf = np.diff(cdf, axis=1)
    return pmf / cdf[:, -1:]


def period_weights(week_start: np.ndarray, *, freq: str = "quarter") -> tuple[np.ndarray, pd.DataFrame]:
    """Share of each week's five weekdays (Monday to Friday) that falls in each calendar period.

    Deals are created and closed on a uniformly drawn weekday of their week, so the expected
    count of a calendar period is ``sum_w expected_w * weight[w, period]``.

    Parameters
    ----------
    week_start : array of datetime64
        Monday of each week.
    freq : {"week", "month", "quarter", "year"}

    Returns
    -------
    weights : ndarray, shape (n_weeks, n_periods)
        Rows sum to one.
    periods : DataFrame
        ``period_start`` and ``period_end`` (inclusive) of each column.
    """
    if freq not in GRAINS:
        raise ConfigError(f"period must be one of {', '.join(GRAINS)}; got {freq!r}")
    cal = DEFAULT_CALENDAR
    weeks = np.asarray(week_start, dtype="datetime64[D]")
    days = (weeks[:, None] + np.arange(5)).ravel()
    idx, uniq = pd.factorize(cal.period_number(days, freq), sort=True)
    weights = np.zeros((len(weeks), len(uniq)))
    np.add.at(weights, (np.repeat(np.arange(len(weeks)), 5), idx), 0.2)
    starts = cal.period_of_number(uniq, freq)
    periods = pd.DataFrame(
        {
            "period_start": starts.astype("datetime64[us]"),
            "period_end": (cal.period_of_number(uniq + 1, freq) - np.timedelta64(1, "D")).astype("datetime64[us]"),
        }
    )
    return weights, periods


_FRAMES = ("agents", "agent_weeks", "indicator_effects")
_SUMMED = ("expected_created", "expected_closes", "expected_wins", "expected_bookings")


@dataclass
class GroundTruth:
    """What the generator planted.

    Attributes
    ----------
    params : dict
        Run settings (seed, n_agents, start, weeks, generator_version, ...) and every
        :class:`SyntheticParams` value.
    agents : DataFrame
        One row per agent: territory, skill (log scale), stage conversions ``c_1 .. c_4``,
        ``theta`` (negotiation->won logit intercept), cycle distribution, deal-size
        distribution and ``mean_deal_size``.
    agent_weeks : DataFrame
        One row per agent and week (dense): ``expected_created``, ``expected_closes``,
        ``p_win``, ``expected_wins``, ``expected_bookings`` and the latent drivers.
        A week is the Monday-to-Sunday week starting ``week_start``; deals are created and
        closed on a uniform weekday of their week.
    indicator_effects : DataFrame
        ``name, level, lag_weeks, effect, scale`` of every planted effect.
    """

    params: dict
    agents: pd.DataFrame
    agent_weeks: pd.DataFrame
    indicator_effects: pd.DataFrame

    def save(self, folder: str | Path) -> list[Path]:
        """Write ``params.json`` and ``<frame>.parquet`` files into ``folder`` (created if needed)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for name in _FRAMES:
            path = folder / f"{name}.parquet"
            tmp = folder / f".{name}.parquet.tmp"
            getattr(self, name).to_parquet(tmp, index=False)
            tmp.replace(path)
            written.append(path)
        path = folder / "params.json"
        tmp = folder / ".params.json.tmp"
        tmp.write_text(json.dumps(self.params, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        tmp.replace(path)
        written.append(path)
        return written

    @classmethod
    def load(cls, folder: str | Path) -> GroundTruth:
        """Read a ground truth written by :meth:`save` or ``SyntheticOrg.write``.

        Parameters
        ----------
        folder : path-like
            The organisation folder (holding ``ground_truth/``) or the ground-truth folder itself.

        Raises
        ------
        DataError
            A file is missing or unreadable.
        """
        folder = Path(folder)
        if (folder / "ground_truth" / "params.json").is_file():
            folder = folder / "ground_truth"
        missing = [f for f in ("params.json", *(f"{n}.parquet" for n in _FRAMES)) if not (folder / f).is_file()]
        if missing:
            raise DataError(
                f"no complete synthetic ground truth in {folder} (missing {', '.join(missing)}); "
                "generate one with `spm demo-data --out FOLDER`"
            )
        try:
            params = json.loads((folder / "params.json").read_text(encoding="utf-8"))
            frames = {n: pd.read_parquet(folder / f"{n}.parquet") for n in _FRAMES}
        except (OSError, ValueError) as exc:
            raise DataError(f"cannot read the synthetic ground truth in {folder}: {exc}") from exc
        return cls(params=params, **frames)

    def expected_by_period(self, *, freq: str = "quarter", employed_only: bool = False) -> pd.DataFrame:
        """Expected counts and bookings per agent and calendar period.

        ``E[period] = sum_w E[week w] * share of week w's weekdays in the period`` (see
        :func:`period_weights`); exact because deal weekdays are uniform on Monday-Friday.

        Parameters
        ----------
        freq : {"week", "month", "quarter", "year"}
        employed_only : bool
            Count only weeks in which the agent is employed (deals a leaver created earlier
            still close after the leave date and are credited to them; this drops them).

        Returns
        -------
        DataFrame
            ``agent_id, period_start, period_end, expected_created, expected_closes,
            expected_wins, expected_bookings``, one row per agent and period touching the data.
        """
        aw = self.agent_weeks
        a_code, agents = pd.factorize(aw["agent_id"], sort=False)
        w_code, weeks = pd.factorize(aw["week_start"], sort=True)
        weights, periods = period_weights(np.asarray(weeks, dtype="datetime64[D]"), freq=freq)
        keep = aw["employed"].to_numpy() if employed_only else np.ones(len(aw), dtype=bool)
        out = {}
        for col in _SUMMED:
            mat = np.zeros((len(agents), len(weeks)))
            mat[a_code, w_code] = np.where(keep, aw[col].to_numpy(), 0.0)
            out[col] = (mat @ weights).ravel()
        n_p = len(periods)
        frame = pd.DataFrame(
            {
                "agent_id": pd.Series(np.repeat(np.asarray(agents, dtype=object), n_p), dtype="str"),
                "period_start": np.tile(periods["period_start"].to_numpy(), len(agents)),
                "period_end": np.tile(periods["period_end"].to_numpy(), len(agents)),
                **out,
            }
        )
        return frame
