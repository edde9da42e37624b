"""What-if forecasts from a fitted model's estimated effects.

A scenario changes the agent forecast draws ``y_ikj`` (agent ``i``, period ``k``, draw ``j``):

- an activity's volume changes by a share ``c`` (``0.2`` = +20%): agent ``i``'s
  standardised activity moves by ``dz_i = c * mean_i / sd_i`` (its own mean and standard
  deviation over the fit window, as the model standardises it);
- a market indicator moves by ``s_k`` (its own units, per forecast period):
  ``dz_ik = s_k / sd_i``;
- each draw is multiplied by ``exp(e_j dz_ik)``, where ``e_j ~ N(m, sd)`` is a draw of the
  model's ``log_mean`` effect of that indicator (:attr:`HierarchicalBayes.effects_`: the
  elasticity of expected bookings per standard deviation), so the scenario carries the
  effect's uncertainty;
- ``n`` agents added to (``n > 0``) or gone from (``n < 0``) a territory add ``n`` times the
  territory's average agent, draw by draw, as one extra series.

The effects are estimated from observational data: they are associations, not the result
of an experiment. Agents who demo more may also be the ones with better accounts; a
scenario says what the model's associations imply, and :func:`effect_table` shows how
wide their uncertainty is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from spm_models.exceptions import ConfigError
from spm_models.models.forecast import Forecast
from spm_models.workbench.forecasting import FittedModel, agent_forecast, forecast_view

__all__ = ["Scenario", "default_scenario", "effect_table", "indicator_dz", "scenario_forecast", "scenario_view"]


@dataclass(frozen=True)
class Scenario:
    """One what-if: an activity volume change, agents added or gone, an indicator path.

    Attributes
    ----------
    activity : str, optional
        Regressor column of an activity (``activity:demo``).
    activity_change : float
        Relative change of its volume (0.2 = +20%).
    territory : str, optional
        Territory that gains or loses agents.
    agent_change : int
        Agents added (positive) or gone (negative).
    indicator : str, optional
        Regressor column of a market indicator (``indicator:market_index``).
    indicator_shift : float or sequence of float
        Change of the indicator in its own units, one number for every forecast period or one
        per period.
    """

    activity: str | None = None
    activity_change: float = 0.0
    territory: str | None = None
    agent_change: int = 0
    indicator: str | None = None
    indicator_shift: float | Sequence[float] = 0.0

    @property
    def is_baseline(self) -> bool:
        """True when the scenario changes nothing."""
        shift = np.atleast_1d(np.asarray(self.indicator_shift, dtype=float))
        return (
            (not self.activity or self.activity_change == 0)
            and (not self.territory or self.agent_change == 0)
            and (not self.indicator or not shift.any())
        )


def default_scenario(fitted: FittedModel, *, activity_change: float = 0.2) -> Scenario:
    """An example scenario for a fitted model: its first activity regressor ``activity_change``
    higher (nothing when it has none)."""
    regs = list(getattr(fitted.model, "regressor_lags_", {}) or {})
    acts = [r for r in regs if r.startswith("activity:")]
    return Scenario(activity=acts[0], activity_change=activity_change) if acts else Scenario()


def effect_table(fitted: FittedModel) -> pd.DataFrame:
    """The model's indicator effects as % change of expected bookings per standard deviation.

    ``pct = 100 (exp(log_mean) - 1)`` for the mean and the 5% and 95% posterior quantiles.

    Returns
    -------
    DataFrame
        ``name, pct_mean, pct_q0.05, pct_q0.95, interval_width`` (points), one row per
        indicator and the quarter-end push; empty for a model without effects.
    """
    eff = getattr(fitted.model, "effects_", None)
    if eff is None or not len(eff):
        return pd.DataFrame(columns=["name", "pct_mean", "pct_q0.05", "pct_q0.95", "interval_width"])
    rows = eff[eff["scale"] == "log_mean"]
    out = pd.DataFrame(
        {
            "name": rows["name"].to_numpy(),
            "pct_mean": 100 * np.expm1(rows["mean"].to_numpy()),
            "pct_q0.05": 100 * np.expm1(rows["q0.05"].to_numpy()),
            "pct_q0.95": 100 * np.expm1(rows["q0.95"].to_numpy()),
        }
    )
    out["interval_width"] = out["pct_q0.95"] - out["pct_q0.05"]
    return out


def _effect_draws(fitted: FittedModel, name: str, n: int, rng: np.random.Generator) -> np.ndarray:
    eff = getattr(fitted.model, "effects_", None)
    row = None if eff is None else eff[(eff["name"] == name) & (eff["scale"] == "log_mean")]
    if row is None or not len(row):
        raise ConfigError(
            f"the {fitted.name} model has no estimated effect for {name!r}; pick a model fitted with that "
            "indicator (HierarchicalBayes with regressors) to run this scenario"
        )
    return rng.normal(float(row["mean"].iloc[0]), float(row["sd"].iloc[0]), size=n)


def indicator_dz(
    frame: pd.DataFrame, column: str, uids: np.ndarray, *, change: float = 0.0, shift: Any = 0.0, h: int = 1
) -> np.ndarray:
    """Change of each agent's standardised indicator, ``(n_series, h)``.

    ``dz_ik = (change * mean_i + shift_k) / sd_i`` with the agent's mean and population
    standard deviation of ``column`` in ``frame``; 0 where ``sd_i`` is 0 or the agent is absent.
    """
    if column not in frame.columns:
        raise ConfigError(f"{column!r} is not a column of the model's data; fit the model with it as a regressor")
    stats = frame.groupby("unique_id")[column].agg(["mean", lambda s: s.std(ddof=0)])
    stats.columns = ["mean", "sd"]
    stats = stats.reindex(pd.Index(uids.astype(str)))
    sd = stats["sd"].to_numpy(dtype=float)
    mean = stats["mean"].to_numpy(dtype=float)
    shifts = np.broadcast_to(np.asarray(shift, dtype=float), (h,))
    num = change * mean[:, None] + shifts[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        dz = np.where(sd[:, None] > 0, num / sd[:, None], 0.0)
    return np.nan_to_num(dz)


def scenario_forecast(
    fitted: FittedModel, scenario: Scenario, *, horizon: int, seed: int = 0
) -> tuple[Forecast, dict[str, str]]:
    """Agent forecast under ``scenario`` (module docstring), and the territory of each added series.

    Raises
    ------
    ConfigError
        The scenario needs an effect the model did not estimate, or names an unknown territory.
    """
    base = agent_forecast(fitted, horizon)
    draws = base.draws.copy()
    uids = base.unique_ids.astype(str)
    rng = np.random.default_rng(seed)
    log_mult = np.zeros(draws.shape)
    if scenario.activity and scenario.activity_change:
        effect = _effect_draws(fitted, scenario.activity, base.n_draws, rng)
        dz = indicator_dz(fitted.frame, scenario.activity, uids, change=float(scenario.activity_change), h=base.h)
        log_mult += dz[:, :, None] * effect[None, None, :]
    shift = (
        np.broadcast_to(np.asarray(scenario.indicator_shift, dtype=float), (base.h,))
        if np.ndim(scenario.indicator_shift) == 0
        else np.asarray(scenario.indicator_shift, dtype=float)[: base.h]
    )
    if scenario.indicator and shift.any():
        effect = _effect_draws(fitted, scenario.indicator, base.n_draws, rng)
        dz = indicator_dz(fitted.frame, scenario.indicator, uids, shift=shift, h=base.h)
        log_mult += dz[:, :, None] * effect[None, None, :]
    draws = draws * np.exp(log_mult)
    ids, ds, extra = list(uids), base.ds, {}
    if scenario.territory and scenario.agent_change:
        terr = fitted.agents.set_index("agent_id")["territory_id"].astype("str")
        members = pd.Series(uids).map(terr).to_numpy() == scenario.territory
        if not members.any():
            raise ConfigError(f"territory {scenario.territory!r} has no agents with a forecast")
        average = draws[members].mean(axis=0)
        name = f"{'added' if scenario.agent_change > 0 else 'gone'}:{scenario.territory}"
        draws = np.concatenate([draws, (scenario.agent_change * average)[None]], axis=0)
        ids.append(name)
        ds = np.concatenate([ds, ds[np.flatnonzero(members)[0]][None]], axis=0)
        extra[name] = scenario.territory
    fc = Forecast.from_draws(
        draws, unique_ids=ids, ds=ds, model=base.model, freq=base.freq, quantiles=base.quantile_levels
    )
    return fc, extra


def scenario_view(
    fitted: FittedModel,
    scenario: Scenario,
    *,
    level: str,
    entity: str,
    horizon: int,
    quota: float | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Expected bookings and P(quota) of one entity, as fitted and under ``scenario``.

    Returns
    -------
    DataFrame
        Two rows (``case`` = ``"as fitted"``, ``"scenario"``) of
        :func:`~spm_models.evaluation.quota.probability.attainment_distribution` columns, plus
        ``change_pct``: ``100 (E[scenario] / E[as fitted] - 1)`` of expected bookings.
    """
    _, base = forecast_view(fitted, level=level, entity=entity, horizon=horizon, quota=quota)
    fc, extra = scenario_forecast(fitted, scenario, horizon=horizon, seed=seed)
    _, scen = forecast_view(
        fitted, level=level, entity=entity, horizon=horizon, quota=quota, forecast=fc, territories=extra
    )
    out = pd.concat([base.assign(case="as fitted"), scen.assign(case="scenario")], ignore_index=True)
    out["change_pct"] = 100 * (out["expected_bookings"] / out["expected_bookings"].iloc[0] - 1)
    return out
