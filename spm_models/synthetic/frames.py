"""Turning a drawn synthetic world into canonical frames and its ground truth.

Pure assembly: every random draw happens in :mod:`spm_models.synthetic.generator`; this module
only shapes its arrays into the typed canonical tables (``str`` ids, ``datetime64[us]`` dates) and
the :class:`~spm_models.synthetic.truth.GroundTruth` frames.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from spm_models.data.schemas import PIPELINE_STAGES, TABLES
from spm_models.synthetic.names import PRODUCTS, SECTORS, account_names, territory_names
from spm_models.synthetic.truth import GENERATOR_VERSION, GroundTruth
from spm_models.synthetic.world import World

__all__ = ["build_tables", "build_truth"]

_DATE = "datetime64[us]"


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pd.Series:
    return prefix + pd.Series(np.asarray(numbers), dtype="int64").astype("str").str.zfill(width)


def _take(labels: pd.Series, codes: np.ndarray) -> pd.Series:
    """``labels[codes]`` as a ``str`` Series (an Arrow take: no Python string objects)."""
    return pd.Series(labels.astype("str").array.take(np.asarray(codes, dtype=np.int64)))


def _dates(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype="datetime64[D]").astype(_DATE)


def build_tables(world: World) -> dict[str, pd.DataFrame]:
    """The nine canonical tables of the first contract version, typed, columns in contract order."""
    p, n = world.p, world.n
    a, aw, o = world.a, world.aw, world.opp
    terr_id = _ids("T", np.arange(1, world.n_terr + 1), 2)
    agent_id = _ids("A", np.arange(1, n + 1), max(4, len(str(n))))
    t = {}
    t["territories"] = pd.DataFrame(
        {
            "territory_id": terr_id,
            "territory_name": pd.Series(territory_names(world.n_terr), dtype="str"),
        }
    )
    t["agents"] = pd.DataFrame(
        {
            "agent_id": agent_id,
            "agent_name": pd.Series(a["name"], dtype="str"),
            "territory_id": _take(terr_id, a["terr"]),
            "manager": pd.Series(a["manager"], dtype="str"),
            "hire_date": _dates(a["hire_date"]),
            "leave_date": _dates(a["leave_date"]),
        }
    )
    used = np.unique(o["account"])
    acc_width = len(str(o["pool_size"]))
    t["accounts"] = pd.DataFrame(
        {
            "account_id": _ids("C", used + 1, acc_width),
            "account_name": account_names(used),
            "sector": _take(pd.Series(SECTORS, dtype="str"), o["sector"][used]),
        }
    )
    t["products"] = pd.DataFrame(
        {
            "product_id": pd.Series([r[0] for r in PRODUCTS], dtype="str"),
            "product_name": pd.Series([r[1] for r in PRODUCTS], dtype="str"),
            "series": pd.Series([r[2] for r in PRODUCTS], dtype="str"),
            "list_price": np.array([r[3] for r in PRODUCTS], dtype="float64"),
        }
    )
    m = len(o["agent"])
    opp_id = _ids("O", np.arange(1, m + 1), max(6, len(str(m))))
    stages = pd.Series(PIPELINE_STAGES, dtype="str")
    t["opportunities"] = pd.DataFrame(
        {
            "opportunity_id": opp_id,
            "agent_id": _take(agent_id, o["agent"]),
            "account_id": _take(t["accounts"]["account_id"], np.searchsorted(used, o["account"])),
            "product_id": _take(t["products"]["product_id"], o["product"]),
            "created_date": _dates(o["created"]),
            "stage": _take(stages, o["stage"]),
            "outcome": _take(pd.Series(["open", "won", "lost"], dtype="str"), o["outcome"]),
            "close_date": _dates(o["close"]),
            "amount": o["amount"],
        }
    )
    row = np.repeat(np.arange(m), o["n_hist"])
    j = np.arange(len(row)) - np.repeat(np.cumsum(o["n_hist"]) - o["n_hist"], o["n_hist"])
    entered = o["created"][row] + (j * o["span"][row]) // o["denom"][row]
    t["stage_history"] = pd.DataFrame(
        {
            "opportunity_id": _take(opp_id, row),
            "stage": _take(stages, j),
            "entered_date": _dates(entered),
        }
    )

    kinds = [k for k, _ in p.activity_rates]
    ai, wi = np.nonzero(aw["employed"])
    k = len(kinds)
    stacked = np.stack([aw["activity"][kind][ai, wi] for kind in kinds], axis=1).ravel()
    t["activities"] = pd.DataFrame(
        {
            "agent_id": _take(agent_id, np.repeat(ai, k)),
            "date": _dates(np.repeat(world.weeks[wi], k)),
            "activity_type": _take(pd.Series(kinds, dtype="str"), np.tile(np.arange(k), len(ai))),
            "count": stacked.astype("int64"),
        }
    )
    t["targets"] = _targets(world, agent_id)
    t["indicators"] = _indicators(world, terr_id)
    # the tables and columns of the first contract version: the organisation predates the rest
    return {name: t[name].loc[:, [c.name for c in TABLES[name].columns if c.since == 1]] for name in t}


def _targets(world: World, agent_id: pd.Series) -> pd.DataFrame:
    quota, active, periods = world.quota["quota"], world.quota["active"], world.quota["periods"]
    ai, qi = np.nonzero(active)
    return pd.DataFrame(
        {
            "agent_id": _take(agent_id, ai),
            "territory_id": pd.Series(np.nan, index=range(len(ai)), dtype="str"),
            "period_start": periods["period_start"].to_numpy()[qi],
            "period_end": periods["period_end"].to_numpy()[qi],
            "quota": quota[ai, qi],
        }
    )


def _indicators(world: World, terr_id: pd.Series) -> pd.DataFrame:
    tw, W, nt = world.tw, world.W, world.n_terr
    parts = []
    for name, values in tw["leads"].items():
        parts.append(
            pd.DataFrame(
                {
                    "date": _dates(np.tile(world.weeks, nt)),
                    "name": name,
                    "value": values.ravel(),
                    "territory_id": _take(terr_id, np.repeat(np.arange(nt), W)),
                }
            )
        )
    for name in ("market_index", "marketing_spend"):
        parts.append(
            pd.DataFrame(
                {
                    "date": _dates(world.weeks),
                    "name": name,
                    "value": tw[name].astype(float),
                    "territory_id": pd.Series(np.nan, index=range(W), dtype="str"),
                }
            )
        )
    out = pd.concat(parts, ignore_index=True)
    out["name"] = out["name"].astype("str")
    return out


def build_truth(world: World, *, start: str, years: float) -> GroundTruth:
    p, n, W = world.p, world.n, world.W
    a, aw = world.a, world.aw
    agent_id = _ids("A", np.arange(1, n + 1), max(4, len(str(n))))
    terr_id = _ids("T", np.arange(1, world.n_terr + 1), 2)
    d = np.arange(1, p.cycle_max_weeks + 1)
    agents = pd.DataFrame(
        {
            "agent_id": agent_id,
            "territory_id": _take(terr_id, a["terr"]),
            "hired_after_start": a["hired_after_start"],
            "leaves_before_end": a["leaves"],
            "skill": a["skill"],
            "territory_effect": world.tw["terr_effect"][a["terr"]],
            **{f"c_{k + 1}": a["conv"][:, k] for k in range(a["conv"].shape[1])},
            "theta": a["theta"],
            "opps_per_week": p.opps_per_week * np.exp(a["skill"]),
            "cycle_gamma_mean": a["cycle_gamma_mean"],
            "cycle_shape": np.full(n, p.cycle_shape),
            "mean_cycle_weeks": a["pmf"] @ d,
            "size_mu": a["size_mu"],
            "size_sigma": a["size_sigma"],
            "mean_deal_size": a["mean_size"],
            "demo_mean": a["demo_mean"],
            "demo_sd": a["demo_sd"],
        }
    )
    wins = aw["closes"] * aw["p_win"]
    agent_weeks = pd.DataFrame(
        {
            "agent_id": _take(agent_id, np.repeat(np.arange(n), W)),
            "week_start": _dates(np.tile(world.weeks, n)),
            "employed": aw["employed"].ravel(),
            "lead_factor": world.tw["lead"][a["terr"]].ravel(),
            "push": np.tile(aw["push"], n).astype(bool),
            "expected_created": aw["rate"].ravel(),
            "expected_closes": aw["closes"].ravel(),
            "p_negotiation_won": aw["p_neg"].ravel(),
            "p_win": aw["p_win"].ravel(),
            "expected_wins": wins.ravel(),
            "expected_bookings": (wins * a["mean_size"][:, None]).ravel(),
        }
    )
    logit = "logit of negotiation->won per SD"
    effects = pd.DataFrame(
        {
            "name": [
                "demo",
                "market_index",
                "quarter_end_push",
                "marketing_spend",
                "leads_web",
                "leads_referral",
                "leads_event",
            ],
            "level": ["agent", "company", "company", "company", "territory", "territory", "territory"],
            "lag_weeks": [p.demo_lag_weeks, p.market_lag_weeks, 0, 0, 0, 0, 0],
            "effect": [p.beta_demo, p.beta_market, p.push_logit, 0.0, 1.0, 1.0, 1.0],
            "scale": [
                f"{logit} of the agent's weekly demo count (standardised within agent), by close week",
                f"{logit} of market_index, by close week",
                f"logit of negotiation->won in the last {p.push_weeks} weeks of a calendar quarter",
                "placebo: no planted effect",
                *["elasticity of the opportunity creation rate to the territory lead intensity these leads count"] * 3,
            ],
        }
    ).astype({"name": "str", "level": "str", "scale": "str", "lag_weeks": "int64"})
    params = {
        "generator_version": GENERATOR_VERSION,
        "seed": world.seed,
        "n_agents": n,
        "n_territories": world.n_terr,
        "start": str(world.weeks[0]),
        "requested_start": str(start),
        "years": float(years),
        "weeks": W,
        "data_end": str(world.weeks[-1] + 6),
        **p.to_dict(),
    }
    return GroundTruth(params=params, agents=agents, agent_weeks=agent_weeks, indicator_effects=effects)
