"""A synthetic sales organisation whose expected bookings are known in closed form.

:func:`generate_organisation` returns every canonical table (as typed frames) plus the
:class:`~spm_models.synthetic.truth.GroundTruth` that produced them. Weeks run
Monday to Sunday from the Monday on or before ``start``; ``weeks = round(52 * years)``.
Constants are in :class:`~spm_models.synthetic.truth.SyntheticParams` (defaults below).

Organisation
    ``round(n/7)`` territories, at least 2 and at most 60 (a 5,000-agent organisation has 60
    territories of about 83 agents), named after cities. Agents have distinct names and a
    manager per team of 7 within the territory. Log-skill = territory effect (sd 0.15) +
    agent effect (sd 0.30). 15% of agents are hired after the start (hire date = a Monday;
    activity and pipeline ramp linearly over 12 weeks), 10% of agents leave before the end
    (leave date = a Friday; they stop creating opportunities 8 weeks before, deals already
    created still close and stay credited to them). Each leaver is replaced within 0-4
    weeks by a new hire in the same territory; the other hires are growth hires.
Seasonality
    ``season_w = exp(0.15 cos(2 pi (day_of_year - 288) / 365.25))`` at the week's Thursday
    (peak mid-October), halved in the two holiday weeks (Monday from 19 December to 1 January).
Activities (weekly, dated the Monday)
    call, email, meeting, demo ~ negative binomial (gamma-Poisson, shape 10) with mean
    ``rate_k * exp(0.3 skill) * season_w * ramp * exp(a_iw)``; ``a`` is an agent AR(1)
    (phi 0.85, sd 0.25). Rows only for weeks the agent is employed (zero counts included).
Indicators (weekly)
    ``leads_web``, ``leads_referral``, ``leads_event`` per territory: Poisson of
    ``rate * headcount * season * L_tw`` (events spike 6x in 8% of weeks), where ``L_tw`` is
    the territory lead intensity (log AR(1), phi 0.9, sd 0.15, mean one). Company-level
    ``market_index`` (100 + 2 points a year + AR(1) phi 0.95 sd 4) and ``marketing_spend``
    (a placebo with no planted effect).
Opportunities
    ``N_ic ~ Poisson(r_ic)``, ``r_ic = 1.5 exp(skill_i) * season_c * ramp_ic * L_{t(i)c}``
    (zero outside the creation window); created on a uniform weekday of week ``c``; account
    from a Zipf-like pool of the territory (repeat customers); product from a 7-item catalogue.
    Cycle ``d`` weeks ~ ``f_i`` = ceil of a gamma (shape 3, agent mean 4-12 weeks), truncated
    at 52; close week ``w = c + d`` whatever the outcome; close date a uniform weekday of week
    ``w``. Deals with ``w`` after the data end are open: their stage is the furthest reached
    when stages are spread evenly over the planned cycle, close date empty.
Pipeline at the start
    Agents employed at the start (all hired at least 56 weeks earlier) also create deals in
    the 52 weeks before it, by the same law; those still open at the start (close week >= 0)
    are in the data with their earlier created date, so closes do not start from zero.
Outcome
    The deal passes stage conversions ``c_i1 .. c_i4`` (prospecting->qualification->
    needs_assessment->proposal->negotiation) and then negotiation->won with
    ``sigmoid(theta_i + 0.35 z_demo[i, w-3] + 0.4 z_mkt[w-8] + 0.5 push_w)``:
    ``z_demo`` is the agent's weekly demo count standardised over the agent's employed weeks
    (population sd; 0 outside employment), ``z_mkt`` is ``market_index`` standardised over
    the published weeks (0 before the first week), ``push_w`` = 1 in the last two weeks of a
    calendar quarter (weeks whose Monday is within 14 days of the quarter end). So
    ``p_iw = prod_k c_ik * sigmoid(...)``. A lost deal keeps the stage where it failed; a won
    deal has stage negotiation. Stage history: the stages reached, entered on dates spread
    evenly between created and close date (planned close for open deals).
Deal size
    ``amount ~ lognormal(mu_i, sigma_i)`` rounded to whole units, ``mu_i = 8.5 + 0.3 skill +
    N(0, 0.15)``, ``sigma_i ~ U(0.9, 1.0)``; ``mean_deal_size_i = exp(mu_i + sigma_i^2 / 2)``.
Quotas
    Per agent and calendar quarter while employed: ``round(plan * E[bookings in the quarter
    while employed], -3)``, at least 1,000, with ``plan ~ U(0.95, 1.25)``. A company sets a
    quarter's quota before it starts, from the whole quarter's plan, so agents employed at the
    end of the data have a quota for the whole quarter holding the last data day and for the
    next quarter (``quota_quarters_ahead = 1``), which is where a forecast from the data end
    runs. Their expected bookings in the weeks after the data carry the closed form below past
    the data end, with the undrawn drivers at their means (lead intensity 1, ``z_demo`` and
    ``z_mkt`` 0; deals already in the pipeline included); a quarter wholly after the data
    draws its plan factor from a separate stream, so no other draw changes.

Identifiers
    Territories ``T01``, agents ``A0001``, accounts ``C`` + pool position, products ``P01``,
    opportunities ``O000001`` numbered in created order. Every table's ``SourceRef`` file
    is ``"<synthetic>"``.
Scale
    Vectorised numpy; the only loops are over weeks and cycle lengths. 5,000 agents x 3 years
    (about 1.1 million opportunities, 3.9 million stage rows, 2.7 million activity rows)
    generate in about 3 s with about 1 GiB peak resident memory.

Closed form (ground truth)
    ``expected_closes_iw = sum_{c = w-52}^{w-1} r_ic f_i(w - c)`` (pre-start cohorts
    included), ``expected_wins_iw = expected_closes_iw * p_iw`` and
    ``expected_bookings_iw = expected_wins_iw * mean_deal_size_i``. Given the
    latent series (lead intensity, demo counts, market index), creations are independent
    Poisson counts and every deal is routed independently to a close week and an outcome,
    so by Poisson thinning the number of won deals closing in agent-week ``(i, w)`` is
    exactly ``Poisson(expected_wins_iw)``, independently across agent-weeks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from spm_models.calendar import DEFAULT_CALENDAR
from spm_models.data.dataset import Dataset, SourceRef
from spm_models.data.sources.canonical import write_canonical_folder
from spm_models.exceptions import ConfigError
from spm_models.synthetic.frames import build_tables, build_truth
from spm_models.synthetic.names import PRODUCTS, SECTORS, person_names
from spm_models.synthetic.truth import GroundTruth, SyntheticParams, cycle_pmf, period_weights
from spm_models.synthetic.world import World

__all__ = ["generate_organisation", "SyntheticOrg", "GroundTruth", "SyntheticParams"]

MIN_AGENTS, MAX_AGENTS = 5, 10_000
_DATE = "datetime64[us]"


@dataclass
class SyntheticOrg:
    """A generated organisation: canonical tables and the truth behind them."""

    dataset: Dataset
    truth: GroundTruth

    def write(self, folder: str | Path) -> list[Path]:
        """Write ``folder/<table>.csv`` (canonical layout) and ``folder/ground_truth/``.

        Returns the paths written.
        """
        folder = Path(folder)
        written = write_canonical_folder(self.dataset, folder)
        return written + self.truth.save(folder / "ground_truth")


def generate_organisation(
    n_agents: int = 50,
    *,
    years: float = 3,
    start: str = "2023-01-02",
    seed: int = 0,
    params: SyntheticParams | None = None,
) -> SyntheticOrg:
    """Generate a synthetic sales organisation with known ground truth.

    The generative model and the closed-form expectations are described in the module
    docstring. The same arguments always give identical frames.

    Parameters
    ----------
    n_agents : int
        Agents who ever work in the data (5 to 10,000), including later hires and leavers.
    years : float
        Length of the history, 0.5 to 10 years (``round(52 * years)`` weeks).
    start : str
        First day; the data start on the Monday on or before it.
    seed : int
        Non-negative random seed.
    params : SyntheticParams, optional
        Planted constants; defaults to ``SyntheticParams()``.

    Returns
    -------
    SyntheticOrg
        ``.dataset`` with all nine canonical tables, ``.truth`` the ground truth.

    Raises
    ------
    ConfigError
        An argument is out of range or ``start`` is not a date.
    """
    p = params or SyntheticParams()
    if not isinstance(p.quota_quarters_ahead, (int, np.integer)) or p.quota_quarters_ahead < 0:
        raise ConfigError(f"quota_quarters_ahead must be a whole number, zero or more (got {p.quota_quarters_ahead!r})")
    weeks = _calendar(n_agents, years=years, start=start, seed=seed)
    world = World(p=p, seed=int(seed), weeks=weeks, n=int(n_agents))
    _staff(world)
    _territory_series(world)
    _activities(world)
    _win_probability(world)
    _opportunities(world)
    _quotas(world)
    tables = build_tables(world)
    source = f"synthetic seed={seed} agents={n_agents} years={years:g}"
    refs = {name: SourceRef(file="<synthetic>") for name in tables}
    truth = build_truth(world, start=start, years=years)
    return SyntheticOrg(Dataset(tables=tables, refs=refs, source=source), truth)


# --------------------------------------------------------------------------- the world


def _calendar(n_agents: int, *, years: float, start: str, seed: int) -> np.ndarray:
    problems = []
    if not isinstance(n_agents, (int, np.integer)) or not MIN_AGENTS <= n_agents <= MAX_AGENTS:
        problems.append(
            f"the number of agents must be a whole number from {MIN_AGENTS} to {MAX_AGENTS:,} (got {n_agents!r})"
        )
    if not isinstance(years, (int, float, np.number)) or not 0.5 <= float(years) <= 10:
        problems.append(f"years must be a number between 0.5 and 10 (got {years!r})")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        problems.append(f"the seed must be a whole number, zero or more (got {seed!r})")
    try:
        day = pd.Timestamp(start)
        if pd.isna(day):
            raise ValueError
    except (ValueError, TypeError):
        problems.append(f"start must be a date like 2023-01-02 (got {start!r})")
        day = None
    if problems:
        raise ConfigError("; ".join(problems))
    monday = np.datetime64(day.date(), "D") - day.weekday()
    return monday + 7 * np.arange(int(round(52 * float(years))))


def _ar1(rng: np.random.Generator, shape: tuple[int, int], *, phi: float, sd: float) -> np.ndarray:
    """Stationary AR(1) along the last axis, marginal sd ``sd`` (a loop over weeks only)."""
    eps = rng.standard_normal(shape)
    out = np.empty(shape)
    out[:, 0] = sd * eps[:, 0]
    innov = sd * np.sqrt(1 - phi**2)
    for w in range(1, shape[1]):
        out[:, w] = phi * out[:, w - 1] + innov * eps[:, w]
    return out


def _season(mondays: np.ndarray, p: SyntheticParams) -> np.ndarray:
    """``season_w`` of the weeks starting on ``mondays`` (module docstring, Seasonality)."""
    mid = pd.DatetimeIndex((mondays + 3).astype(_DATE))
    phase = 2 * np.pi * (mid.day_of_year.to_numpy() - p.season_peak_day) / 365.25
    season = np.exp(p.season_amplitude * np.cos(phase))
    mon = pd.DatetimeIndex(mondays.astype(_DATE))
    holiday = ((mon.month == 12) & (mon.day >= 19)) | ((mon.month == 1) & (mon.day == 1))
    return season * np.where(holiday, p.holiday_factor, 1.0)


def _push(mondays: np.ndarray, p: SyntheticParams) -> np.ndarray:
    """``push_w``: 1.0 for a week whose Monday is within ``7 * push_weeks`` days of its quarter's end."""
    mon = pd.DatetimeIndex(mondays.astype(_DATE))
    quarter_end = DEFAULT_CALENDAR.period_end(mon, "quarter")
    return np.asarray((quarter_end - mon).days < 7 * p.push_weeks, dtype=float)


def _round_half_up(x: float) -> int:
    return int(np.floor(x + 0.5))


def _staff(world: World) -> None:
    """Territories, agents, hires, leavers, managers, skill; employment and creation windows."""
    p, n, W = world.p, world.n, world.W
    rng = world.rng("staff")
    n_terr = int(np.clip(_round_half_up(n / p.agents_per_territory), 2, p.max_territories))
    n_hire = _round_half_up(p.hire_fraction * n)
    n_leave = min(_round_half_up(p.leave_fraction * n), n_hire)
    n_init = n - n_hire
    init_terr = rng.permutation(np.arange(n_init) % n_terr)
    leavers = rng.choice(n_init, size=n_leave, replace=False)
    last = np.full(n_init, W - 1)
    last[leavers] = rng.integers(8, W - 9, size=n_leave)
    repl_first = last[leavers] + 1 + rng.integers(0, p.replacement_gap_weeks + 1, size=n_leave)
    n_growth = n_hire - n_leave
    hire_first = np.concatenate([repl_first, rng.integers(4, W - 12, size=n_growth)])
    hire_terr = np.concatenate([init_terr[leavers], rng.integers(0, n_terr, size=n_growth)])
    order = np.argsort(hire_first, kind="stable")  # agent numbers follow hiring order
    first = np.concatenate([np.zeros(n_init, dtype=np.int64), hire_first[order]])
    terr = np.concatenate([init_terr, hire_terr[order]])
    last = np.concatenate([last, np.full(n_hire, W - 1)])
    leaves = last < W - 1

    weeks = world.weeks
    # agents employed at the start joined before the pre-start pipeline window opened
    low = world.B + 4
    tenure_weeks = rng.integers(low, max(low + 1, 417), size=n)
    hire_date = np.where(first > 0, weeks[first], weeks[0] - 7 * tenure_weeks)
    leave_date = np.where(leaves, weeks[last] + 4, np.datetime64("NaT"))

    # teams of ``team_size`` within each territory, in agent order
    by_terr = np.lexsort((np.arange(n), terr))
    starts = np.searchsorted(terr[by_terr], np.arange(n_terr))
    rank = np.empty(n, dtype=np.int64)
    rank[by_terr] = np.arange(n) - starts[terr[by_terr]]
    team_key = terr * (n + 1) + rank // p.team_size
    _, team = np.unique(team_key, return_inverse=True)
    names = person_names(world.rng("names"), n + int(team.max()) + 1)

    srng = world.rng("skill")
    terr_effect = srng.normal(0, p.territory_effect_sd, size=n_terr)
    agent_effect = srng.normal(0, p.agent_effect_sd, size=n)
    w = np.arange(W)[None, :]
    employed = (w >= first[:, None]) & (w <= last[:, None])
    create_last = np.where(leaves, last - p.stop_before_leave_weeks, W - 1)
    creating = (w >= first[:, None]) & (w <= create_last[:, None])
    ramp = np.where(first[:, None] > 0, np.clip((w - first[:, None] + 1) / p.ramp_weeks, 0, 1), 1.0) * employed

    world.n_terr = n_terr
    world.tw["terr_effect"] = terr_effect
    world.a.update(
        terr=terr,
        first=first,
        last=last,
        leaves=leaves,
        hire_date=hire_date,
        leave_date=leave_date,
        name=names[:n],
        manager=names[n:][team],
        skill=terr_effect[terr] + agent_effect,
        hired_after_start=first > 0,
    )
    world.aw.update(employed=employed, creating=creating, ramp=ramp)


def _territory_series(world: World) -> None:
    """Seasonality, lead intensity, leads by channel, market index, marketing spend.

    Seasonality and lead intensity also cover the ``B`` pre-start weeks (suffix ``_all``).
    """
    p, W, B, n_terr = world.p, world.W, world.B, world.n_terr
    season_all = _season(world.weeks[0] + 7 * np.arange(-B, W), p)
    season = season_all[B:]

    rng = world.rng("leads")
    lead_all = np.exp(_ar1(rng, (n_terr, B + W), phi=p.lead_ar_phi, sd=p.lead_ar_sd) - p.lead_ar_sd**2 / 2)
    lead = lead_all[:, B:]
    onehot = np.zeros((n_terr, world.n))
    onehot[world.a["terr"], np.arange(world.n)] = 1.0
    heads = onehot @ world.aw["employed"].astype(float)
    leads = {}
    for channel, rate in p.leads_per_agent:
        spike = 1.0
        if channel == "event":
            spike = np.where(rng.random((n_terr, W)) < p.event_week_prob, p.event_multiplier, 1.0)
        leads[f"leads_{channel}"] = rng.poisson(rate * heads * season[None, :] * lead * spike).astype(float)

    mrng = world.rng("market")
    trend = p.market_level + p.market_trend_per_year * np.arange(W) / 52
    market = np.round(trend + _ar1(mrng, (1, W), phi=p.market_ar_phi, sd=p.market_ar_sd)[0], 2)
    noise = np.exp(mrng.normal(-(p.marketing_spend_noise_sd**2) / 2, p.marketing_spend_noise_sd, size=W))
    spend = np.round(p.marketing_spend_per_agent * heads.sum(axis=0) * season * noise, 2)
    world.tw.update(
        season=season,
        lead=lead,
        season_all=season_all,
        lead_all=lead_all,
        leads=leads,
        market_index=market,
        marketing_spend=spend,
    )


def _activities(world: World) -> None:
    """Weekly activity counts per agent and type (zero outside employment)."""
    p, n, W = world.p, world.n, world.W
    rng = world.rng("activities")
    factor = np.exp(_ar1(rng, (n, W), phi=p.activity_ar_phi, sd=p.activity_ar_sd) - p.activity_ar_sd**2 / 2)
    base = np.exp(p.activity_skill_elasticity * world.a["skill"])[:, None] * world.tw["season"][None, :]
    level = base * world.aw["ramp"] * factor
    counts = {}
    for kind, rate in p.activity_rates:
        mean = rate * level
        counts[kind] = rng.poisson(rng.gamma(p.activity_dispersion, mean / p.activity_dispersion))
    world.aw["activity"] = counts


def _lag(x: np.ndarray, k: int) -> np.ndarray:
    """``x`` shifted ``k`` weeks later along the last axis, zero-filled."""
    out = np.zeros_like(x, dtype=float)
    if k < x.shape[-1]:
        out[..., k:] = x[..., : x.shape[-1] - k]
    return out


def _win_probability(world: World) -> None:
    """Agent parameters and p_win per agent and close week; expected creations and closes."""
    p, n, W = world.p, world.n, world.W
    a, aw = world.a, world.aw
    rng = world.rng("agent_params")
    logit_c = np.log(np.array(p.stage_conversion) / (1 - np.array(p.stage_conversion)))
    conv = 1 / (1 + np.exp(-(logit_c[None, :] + rng.normal(0, p.stage_conversion_sd, size=(n, len(logit_c))))))
    theta = p.theta_mean + p.theta_skill * a["skill"] + rng.normal(0, p.theta_sd, size=n)
    cycle_target = rng.uniform(p.cycle_mean_min, p.cycle_mean_max, size=n)
    pmf = cycle_pmf(cycle_target - 0.5, shape=p.cycle_shape, max_weeks=p.cycle_max_weeks)
    size_mu = p.size_mu + p.size_skill * a["skill"] + rng.normal(0, p.size_mu_sd, size=n)
    size_sigma = rng.uniform(p.size_sigma_min, p.size_sigma_max, size=n)

    demo = aw["activity"]["demo"].astype(float)
    emp = aw["employed"]
    n_emp = emp.sum(axis=1)
    demo_mean = (demo * emp).sum(axis=1) / n_emp
    demo_sd = np.sqrt((((demo - demo_mean[:, None]) ** 2) * emp).sum(axis=1) / n_emp)
    safe_sd = np.where(demo_sd > 0, demo_sd, 1.0)
    z_demo = np.where(emp & (demo_sd[:, None] > 0), (demo - demo_mean[:, None]) / safe_sd[:, None], 0.0)
    market = world.tw["market_index"]
    z_mkt = (market - market.mean()) / market.std()
    push = _push(world.weeks, p)
    logit = (
        theta[:, None]
        + p.beta_demo * _lag(z_demo, p.demo_lag_weeks)
        + p.beta_market * _lag(z_mkt, p.market_lag_weeks)[None, :]
        + p.push_logit * push[None, :]
    )
    p_neg = 1 / (1 + np.exp(-logit))
    p_win = conv.prod(axis=1)[:, None] * p_neg

    # creation rate over the B pre-start weeks too: agents employed at the start already have
    # a pipeline, so closes do not start from zero (columns 0..B-1 are weeks -B..-1)
    B = world.B
    pre = np.repeat((a["first"] == 0)[:, None], B, axis=1).astype(float)
    window = np.concatenate([pre, aw["ramp"] * aw["creating"]], axis=1)
    rate_all = (p.opps_per_week * np.exp(a["skill"]))[:, None] * world.tw["season_all"][None, :]
    rate_all = rate_all * world.tw["lead_all"][a["terr"]] * window
    closes = np.zeros((n, W))
    for d in range(1, p.cycle_max_weeks + 1):
        # cohort c = w - d, column B + w - d of rate_all, for every data week w
        closes += rate_all[:, B - d : B - d + W] * pmf[:, d - 1 : d]
    rate = rate_all[:, B:]
    a.update(
        conv=conv,
        theta=theta,
        pmf=pmf,
        size_mu=size_mu,
        size_sigma=size_sigma,
        mean_size=np.exp(size_mu + size_sigma**2 / 2),
        demo_mean=demo_mean,
        demo_sd=demo_sd,
        cycle_gamma_mean=cycle_target - 0.5,
    )
    aw.update(rate=rate, rate_all=rate_all, closes=closes, p_neg=p_neg, p_win=p_win, push=push, z_demo=z_demo)
    world.tw["z_mkt"] = z_mkt


def _opportunities(world: World) -> None:
    """Draw every opportunity: creation, cycle, outcome, stage, size, account, product."""
    p, n, W = world.p, world.n, world.W
    a, aw = world.a, world.aw
    rng = world.rng("opps")
    B = world.B
    counts = rng.poisson(aw["rate_all"])
    cells = np.flatnonzero(counts)
    cell = np.repeat(cells, counts.ravel()[cells])
    agent, cweek = cell // (B + W), cell % (B + W) - B
    created_wd = rng.integers(0, 5, size=len(cell))
    order = np.lexsort((agent, created_wd, cweek))  # chronological ids, as a CRM numbers them
    agent, cweek, created_wd = agent[order], cweek[order], created_wd[order]
    m = len(agent)
    created = world.weeks[0] + 7 * cweek + created_wd

    # cycle: inverse CDF per agent, all agents in one search over offset cumulative rows
    cdf = np.cumsum(a["pmf"], axis=1)
    cdf[:, -1] = 1.0
    flat = (cdf + np.arange(n)[:, None]).ravel()
    pos = np.searchsorted(flat, agent + rng.random(m), side="right")
    cycle = pos - agent * p.cycle_max_weeks + 1
    close_week = cweek + cycle
    planned_close = world.weeks[0] + 7 * close_week + rng.integers(0, 5, size=m)
    # pre-start deals that closed before the start are outside the data window
    keep = close_week >= 0
    agent, created, cweek, close_week, planned_close = (
        x[keep] for x in (agent, created, cweek, close_week, planned_close)
    )
    m = len(agent)
    closed = close_week < W

    orng = world.rng("outcomes")
    u = orng.random((m, 5))
    cw = np.minimum(close_week, W - 1)
    passed = np.concatenate([u[:, :4] < a["conv"][agent], (u[:, 4] < aw["p_neg"][agent, cw])[:, None]], axis=1)
    reached = np.cumprod(passed, axis=1).sum(axis=1)
    outcome = np.where(~closed, 0, np.where(reached == 5, 1, 2))  # open, won, lost
    span = (planned_close - created).astype(np.int64)
    data_end = world.weeks[-1] + 6
    elapsed = (data_end - created).astype(np.int64) / span
    open_stage = np.minimum(4, np.floor(5 * elapsed).astype(np.int64))
    stage = np.where(closed, np.minimum(reached, 4), open_stage)
    n_hist = stage + 1
    denom = np.where(closed, n_hist, 5)

    srng = world.rng("sizes")
    log_amount = a["size_mu"][agent] + a["size_sigma"][agent] * srng.standard_normal(m)
    amount = np.maximum(1.0, np.round(np.exp(log_amount)))

    arng = world.rng("accounts")
    pool = int(np.ceil(p.accounts_per_agent * n / world.n_terr))
    pop = (np.arange(pool) + p.account_zipf_offset) ** -p.account_zipf_exponent
    acdf = np.cumsum(pop / pop.sum())
    rank = np.minimum(np.searchsorted(acdf, arng.random(m), side="right"), pool - 1)
    account = a["terr"][agent] * pool + rank
    shares = np.array([prod[4] for prod in PRODUCTS])
    product = arng.choice(len(PRODUCTS), size=m, p=shares / shares.sum())
    sector = arng.integers(0, len(SECTORS), size=pool * world.n_terr)

    world.opp.update(
        agent=agent,
        created=created,
        close=np.where(closed, planned_close, np.datetime64("NaT")),
        outcome=outcome,
        stage=stage,
        n_hist=n_hist,
        denom=denom,
        span=span,
        amount=amount,
        account=account,
        product=product,
        sector=sector,
        pool_size=pool * world.n_terr,
    )


def _quotas(world: World) -> None:
    """Quota per agent and calendar quarter touched while employed, plus the planned quarters.

    Quarters inside the data: ``round(plan * E[bookings while employed])``. The quarter holding
    the last data day and the ``quota_quarters_ahead`` after it are then re-planned, for the
    agents employed at the end, on the whole quarter (:func:`_plan_ahead`).
    """
    p, a, aw = world.p, world.a, world.aw
    weights, periods = period_weights(world.weeks, freq="quarter")
    bookings = aw["closes"] * aw["p_win"] * a["mean_size"][:, None] * aw["employed"]
    expected = bookings @ weights
    active = (aw["employed"].astype(float) @ weights) > 0
    plan = world.rng("quotas").uniform(p.plan_factor_min, p.plan_factor_max, size=expected.shape)
    world.quota.update(quota=_rounded_quota(plan * expected, p), active=active, periods=periods)
    _plan_ahead(world, bookings, plan)


def _rounded_quota(amount: np.ndarray, p: SyntheticParams) -> np.ndarray:
    """``amount`` rounded to ``quota_rounding``, at least ``quota_floor``."""
    return np.maximum(p.quota_floor, np.round(amount / p.quota_rounding) * p.quota_rounding)


def _plan_ahead(world: World, bookings: np.ndarray, plan: np.ndarray) -> None:
    """Whole-quarter quotas, set before the quarter starts, for the agents employed at the end.

    The planned quarters are the one holding the last data day and the ``quota_quarters_ahead``
    quarters after it. For an agent employed on the last data day (as if the agent stays),
    ``quota = round(plan * (E[bookings in the quarter's data weeks while employed] +
    E[bookings in its weeks after the data]))``, the weeks after the data from
    :func:`_expected_bookings_ahead`. A quarter already in the data keeps its plan factor from
    the ``quotas`` stream; a quarter wholly after the data draws its factor from its own
    stream, so every other draw of the generator is unchanged. Other agents keep their quota
    of the data weeks.
    """
    p, W = world.p, world.W
    periods = world.quota["periods"]
    data_end = world.weeks[-1] + 6
    cal = DEFAULT_CALENDAR
    last_quarter = cal.shift_periods(cal.quarter_start(data_end), p.quota_quarters_ahead, "quarter")
    plan_end = np.datetime64(cal.period_end(last_quarter, "quarter").date(), "D")
    n_ahead = int(-(-(plan_end - data_end).astype(int) // 7))  # weeks after the data up to plan_end
    ahead_weeks = world.weeks[-1] + 7 * np.arange(1, n_ahead + 1)
    weights, all_periods = period_weights(np.concatenate([world.weeks, ahead_weeks]), freq="quarter")
    stay = world.a["last"] == W - 1
    ahead = _expected_bookings_ahead(world, ahead_weeks) * stay[:, None]
    expected = bookings @ weights[:W] + ahead @ weights[W:]
    ends = all_periods["period_end"].to_numpy().astype("datetime64[D]")
    starts = all_periods["period_start"].to_numpy().astype("datetime64[D]")
    planned = np.flatnonzero((ends >= data_end) & (starts <= plan_end))
    n_old = len(periods)
    n_new = int(planned.max()) + 1 - n_old
    new_plan = world.rng("quota_plans_ahead").uniform(p.plan_factor_min, p.plan_factor_max, size=(world.n, n_new))
    plan = np.concatenate([plan, new_plan], axis=1)
    quota = np.concatenate([world.quota["quota"], np.zeros((world.n, n_new))], axis=1)
    active = np.concatenate([world.quota["active"], np.zeros((world.n, n_new), dtype=bool)], axis=1)
    rows = np.flatnonzero(stay)
    quota[np.ix_(rows, planned)] = _rounded_quota(plan[np.ix_(rows, planned)] * expected[np.ix_(rows, planned)], p)
    active[np.ix_(rows, planned)] = True
    world.quota.update(quota=quota, active=active, periods=all_periods.iloc[: n_old + n_new].reset_index(drop=True))


def _expected_bookings_ahead(world: World, mondays: np.ndarray) -> np.ndarray:
    """Expected weekly bookings of every agent in the weeks after the data, as if the agent stays.

    The generator's closed form carried past the data end, with the drivers that are not
    drawn there at their means: for week ``w`` after the data,
    ``E[bookings_iw] = sum_{d=1}^{52} r_{i,w-d} f_i(d) * p_iw * mean_deal_size_i``, where the
    creation rate ``r_ic`` is the drawn one for weeks in the data (deals already in the
    pipeline) and ``1.5 exp(skill_i) * season_c * ramp_ic`` after it (lead intensity at its mean,
    1), and ``p_iw = prod_k c_ik * sigmoid(theta_i + 0.35 z_demo[i, w-3] + 0.4 z_mkt[w-8] +
    0.5 push_w)`` with ``z_demo`` and ``z_mkt`` 0 (their means) for weeks after the data.

    Returns
    -------
    ndarray, shape (n_agents, len(mondays))
    """
    p, a, aw, W, B = world.p, world.a, world.aw, world.W, world.B
    k = len(mondays)
    w = W + np.arange(k)[None, :]
    first = a["first"][:, None]
    ramp = np.where(first > 0, np.clip((w - first + 1) / p.ramp_weeks, 0, 1), 1.0)
    rate = (p.opps_per_week * np.exp(a["skill"]))[:, None] * _season(mondays, p)[None, :] * ramp
    rate_all = np.concatenate([aw["rate_all"], rate], axis=1)  # weeks -B .. W + k - 1
    closes = np.zeros((world.n, k))
    for d in range(1, p.cycle_max_weeks + 1):
        closes += rate_all[:, B + W - d : B + W - d + k] * a["pmf"][:, d - 1 : d]
    z_demo = np.concatenate([aw["z_demo"], np.zeros((world.n, k))], axis=1)
    z_mkt = np.concatenate([world.tw["z_mkt"], np.zeros(k)])
    logit = (
        a["theta"][:, None]
        + p.beta_demo * _lag(z_demo, p.demo_lag_weeks)[:, W:]
        + p.beta_market * _lag(z_mkt, p.market_lag_weeks)[None, W:]
        + p.push_logit * _push(mondays, p)[None, :]
    )
    p_win = a["conv"].prod(axis=1)[:, None] / (1 + np.exp(-logit))
    return closes * p_win * a["mean_size"][:, None]
