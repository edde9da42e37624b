"""Expected bookings from the open pipeline: which open deals close, when, and as wins.

A weekly bookings model forecasts from past totals; the open pipeline already names most
of the deals that will book in the next few weeks. This module turns the deals open at an
``as_of`` date into expected bookings per agent and future period, and into draws that can
be added to the draws of a model of deals not created yet.

Method (landmark life tables)
-----------------------------
Time runs on a period grid (weeks starting Monday, or calendar months). ``as_of`` is moved
back to the end of the last complete period on or before it (:attr:`PipelineModel.as_of`),
so a forecast starts at a period boundary. Only what was known then is used: deals created
by ``as_of``; a deal's outcome only if it closed by ``as_of`` (a deal that closed later is
open, i.e. censored, at ``as_of``); stage-history entries dated by ``as_of``.

*Landmarks.* Every past period end ``m`` before ``as_of`` is a landmark. Each deal open at
``m`` gives one record: its state at ``m`` -- the stage it was in (the latest stage-history
entry dated by the end of ``m``; "unknown" without a stage history), its age ``m - created``
and the periods since it entered that stage (age buckets :data:`DEFAULT_AGE_EDGES`,
:data:`DEFAULT_STAGE_AGE_EDGES`) -- and what happened next: won or lost ``j`` periods
after ``m``, or still open at ``as_of`` (censored after ``as_of - m`` periods). An extract
misses the deals that closed before it starts, so landmarks begin the period before the
first close in the data (earlier ones would see only long-running deals). With
``half_life``, a record of landmark ``m`` weighs ``0.5 ** ((as_of - m) / half_life)``; in a
cell this equals weighting each risk period by its calendar recency, so hazards follow a
drifting win rate.

*Life tables.* Per state cell and ``j = 1 .. max_periods`` (a discrete-time, competing-risks
Kaplan-Meier):

.. math::

    h^{win}_j = \\frac{\\text{won at } j}{\\text{at risk at } j},\\quad
    h^{loss}_j = \\frac{\\text{lost at } j}{\\text{at risk at } j},\\quad
    S_j = \\prod_{i \\le j} (1 - h^{win}_i - h^{loss}_i),\\quad
    P(\\text{won in period } j) = S_{j-1} h^{win}_j .

Censoring at ``as_of`` is administrative, so the estimate is unbiased for deals that are
still open. Sparse cells borrow from coarser ones (empirical-Bayes shrinkage with a fixed
prior strength ``kappa = prior_strength`` pseudo-deals, applied per ``j`` down the chain
all -> stage -> stage x age -> stage x age x time in stage):

.. math:: h_{cell,j} = \\frac{\\text{events}_{cell,j} + \\kappa\\, h_{parent,j}}{\\text{at risk}_{cell,j} + \\kappa}.

*Win ratios (optional).* Each deal closed by ``as_of`` has a pooled expectation ``q_d``:
the share ``h^{win}/(h^{win}+h^{loss})`` of its cell at the close, averaged over its records.
Comparing wins ``O`` with ``E = sum q_d`` over groups of deals gives two corrections of the
win share of closes. *Calendar*: deals closing in the last weeks of a quarter win more
often (the quarter-end push); the groups are the periods left in the quarter at the close
(:meth:`~spm_models.calendar.Calendar.periods_left_in_quarter`, fiscal quarters). *Per agent*: agents differ beyond
what their deals' states show; the groups are agents, with ``q_d`` already scaled by the
calendar ratio. With a gamma prior (mean 1, variance ``tau^2``) on a group's ratio, the
posterior mean is

.. math:: \\rho_a = \\frac{O_a + 1/\\tau^2}{E_a + 1/\\tau^2},\\qquad
          \\hat\\tau^2 = \\max\\Big(0, \\frac{\\sum_a (O_a - E_a)^2 - \\sum_a V_a}{\\sum_a E_a^2}\\Big)

(method of moments; ``V_a`` = binomial variance of ``O_a``), so an agent with few closed
deals keeps the pooled rate. ``P_d(won in k) = P_d(close in k) * min(1, rho_a c_k s_k)``
with ``s_k`` the cell's win share and ``c_k`` the calendar ratio of period ``k``; the
timing of closes is unchanged.

*Expected bookings.* For an open deal ``d`` of agent ``a`` with amount ``x_d``:
``E[bookings_{a,k}] = sum_d x_d P_d(won in period k)``. An open deal without an amount
counts at the agent's mean won amount before ``as_of`` (the pooled mean when the agent won
fewer than 5 deals).

*Draws.* Each deal independently closes as a win in period ``k = 1..h`` with probability
``P_d(won in k)``, or books nothing in the horizon; a win books exactly ``x_d``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from spm_models.calendar import DEFAULT_CALENDAR, Calendar
from spm_models.data.schemas import PIPELINE_STAGES
from spm_models.exceptions import ConfigError, DataError
from spm_models.models.forecast import DEFAULT_QUANTILES, Forecast
from spm_models.models.pipeline.history import (
    FREQ_UNITS,
    LOST,
    UNKNOWN_STAGE,
    WON,
    Deals,
    check_freq,
    open_at,
    period_number,
    read_deals,
    read_history,
    stage_at,
)

__all__ = [
    "PipelineModel",
    "fit_pipeline_model",
    "open_at",
    "DEFAULT_AGE_EDGES",
    "DEFAULT_STAGE_AGE_EDGES",
]

#: Lower edges (in periods) of the age-since-creation buckets of the state cells.
DEFAULT_AGE_EDGES: tuple[int, ...] = (0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 36)
#: Lower edges (in periods) of the time-in-current-stage buckets.
DEFAULT_STAGE_AGE_EDGES: tuple[int, ...] = (0, 1, 2, 3, 5, 8, 13)
_STAGE_NAMES = np.array(list(PIPELINE_STAGES) + ["unknown"], dtype=object)
_MIN_WINS_OWN_MEAN = 5
_CHUNK = 4_000_000  # deals x draws per block when sampling


def _buckets(values: np.ndarray, edges: Sequence[int]) -> np.ndarray:
    return np.clip(np.searchsorted(np.asarray(edges), values, side="right") - 1, 0, len(edges) - 1)


def _check_edges(edges: Iterable[int], name: str) -> tuple[int, ...]:
    out = tuple(int(e) for e in edges)
    if not out or out[0] != 0 or any(b <= a for a, b in zip(out, out[1:])):
        raise ConfigError(f"{name} must be increasing whole numbers starting at 0, got {edges!r}")
    return out


# --------------------------------------------------------------------------- the model


@dataclass(frozen=True, eq=False)
class PipelineModel:
    """Close-timing and win probabilities of open deals, estimated at one ``as_of`` date.

    Made by :func:`fit_pipeline_model` (method in the module docstring).

    Attributes
    ----------
    as_of : Timestamp
        End (last day) of the last complete period on or before the requested date; the
        forecast covers the periods after it.
    freq : str
        ``"W-MON"`` or ``"MS"``.
    cif_win, cif_loss : ndarray, shape (stages + 1, age buckets, stage-age buckets, max_periods)
        ``P(won / lost in period j after as_of)`` per state cell (last stage: unknown).
    tail : ndarray, shape (stages + 1, age buckets, stage-age buckets)
        ``P(still open after max_periods)``; such deals win at ``tail_win_share``, the
        share of wins among the deals closed by ``as_of``.
    agent_ratio : Series
        ``rho`` per agent (1 for agents not listed; all 1 when ``per_agent=False``).
    tau2 : float
        Estimated variance of the agent ratios (0 when pooled).
    calendar_ratio : ndarray
        Win-share ratio by periods left in the quarter at the close (all 1 when
        ``calendar=False``).
    stage_at_as_of : DataFrame
        Index ``opportunity_id``: ``stage_code`` and ``stage_entered`` (period) of every deal
        open at ``as_of``, from the stage history (code 5 = unknown).
    n_records : int
        Landmark records (deal x landmark) behind the life tables.
    """

    as_of: pd.Timestamp
    freq: str
    age_edges: tuple[int, ...]
    stage_age_edges: tuple[int, ...]
    cif_win: np.ndarray
    cif_loss: np.ndarray
    tail: np.ndarray
    tail_win_share: float
    agent_ratio: pd.Series
    tau2: float
    calendar_ratio: np.ndarray
    stage_at_as_of: pd.DataFrame
    agent_mean_amount: pd.Series
    pooled_mean_amount: float
    n_records: int
    _period: int
    fiscal_year_start: int = 1

    @property
    def _unit(self) -> str:
        return FREQ_UNITS[self.freq]

    @property
    def max_periods(self) -> int:
        return self.cif_win.shape[-1]

    def future_ds(self, h: int) -> np.ndarray:
        """Start dates of the ``h`` periods after :attr:`as_of` (``datetime64[us]``)."""
        return DEFAULT_CALENDAR.period_of_number(self._period + np.arange(1, h + 1), self._unit).astype(
            "datetime64[us]"
        )

    # ------------------------------------------------------------------ per deal
    def _win_probs(self, open_opps: pd.DataFrame, h: int) -> tuple[pd.DataFrame, np.ndarray]:
        h = _positive(h, "h")
        deals = read_deals(
            open_opps, as_of_day=np.datetime64(self.as_of.date(), "D"), unit=self._unit, table="opportunities"
        )
        keep = ~deals.closed
        ids, agent, created, amount = deals.ids[keep], deals.agent[keep], deals.created[keep], deals.amount[keep]
        state = self.stage_at_as_of.reindex(pd.Index(ids, dtype="str"))
        stage = state["stage_code"].fillna(UNKNOWN_STAGE).to_numpy(dtype=np.int64)
        entered = state["stage_entered"].fillna(-1).to_numpy(dtype=np.int64)
        age = self._period - created
        in_stage = np.where(stage == UNKNOWN_STAGE, age, self._period - entered)
        a_b = _buckets(age, self.age_edges)
        t_b = _buckets(in_stage, self.stage_age_edges)
        J = self.max_periods
        cw, cl = self.cif_win[stage, a_b, t_b], self.cif_loss[stage, a_b, t_b]
        tail = self.tail[stage, a_b, t_b]
        rho = self.agent_ratio.reindex(pd.Index(agent, dtype="str")).fillna(1.0).to_numpy(dtype=float)
        close = cw + cl
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(close > 0, cw / close, 0.0)
        cal = self.calendar_ratio[_periods_left(self._period + np.arange(1, J + 1), self._unit, self.fiscal_year_start)]
        win = np.minimum(1.0, rho[:, None] * cal[None, :] * share) * close
        p_win = win.sum(axis=1) + tail * np.minimum(1.0, rho * self.tail_win_share)
        if h > J:
            win = np.concatenate([win, np.zeros((len(win), h - J))], axis=1)
            close = np.concatenate([close, np.zeros((len(close), h - J))], axis=1)
        win, close = win[:, :h], close[:, :h]
        fill = self.agent_mean_amount.reindex(pd.Index(agent, dtype="str")).fillna(self.pooled_mean_amount)
        x = np.where(np.isnan(amount), fill.to_numpy(dtype=float), amount)
        frame = pd.DataFrame(
            {
                "opportunity_id": pd.array(ids, dtype="str"),
                "agent_id": pd.array(agent, dtype="str"),
                "stage": pd.Series(_STAGE_NAMES[stage], dtype="str").where(stage != UNKNOWN_STAGE).array,
                "age_periods": age,
                "periods_in_stage": np.where(stage == UNKNOWN_STAGE, -1, in_stage),
                "amount": x,
                "amount_imputed": np.isnan(amount),
                "p_win": p_win,
                "p_close_within_h": close.sum(axis=1),
                "p_win_within_h": win.sum(axis=1),
                "expected_bookings_within_h": x * win.sum(axis=1),
            }
        )
        return frame, win

    def deal_probabilities(self, open_opps: pd.DataFrame, *, h: int) -> pd.DataFrame:
        """Per open deal: state at :attr:`as_of` and its win and close probabilities.

        Parameters
        ----------
        open_opps : DataFrame
            Opportunities (canonical columns); rows not open at :attr:`as_of` are ignored,
            so the full table can be passed. Outcomes and close dates after ``as_of`` are
            not read.
        h : int
            Horizon in periods.

        Returns
        -------
        DataFrame
            ``opportunity_id, agent_id, stage`` (at ``as_of``; missing when unknown),
            ``age_periods, periods_in_stage`` (-1 when the stage is unknown), ``amount``
            (imputed where missing, flagged in ``amount_imputed``), ``p_win`` (won at any
            time), ``p_close_within_h``, ``p_win_within_h`` and
            ``expected_bookings_within_h = amount * p_win_within_h``.
        """
        return self._win_probs(open_opps, h)[0]

    def deal_timing(self, open_opps: pd.DataFrame, *, h: int, until: Any = None) -> pd.DataFrame:
        """Per open deal: :meth:`deal_probabilities`, when a win is expected and the chance of it by ``until``.

        ``expected_close`` is the start of the period by which, if the deal is won within the
        ``h`` periods, it is more likely than not to have been won: the first ``k`` with
        ``sum_{i<=k} P(won in i) >= 0.5 * sum_{i<=h} P(won in i)`` (the median of the win's
        timing); missing when the deal cannot be won within ``h``. ``p_win_by`` is
        ``sum P(won in k)`` over the periods that start by ``until`` (all ``h`` periods when
        ``until`` is None).

        Parameters
        ----------
        open_opps : DataFrame
            Opportunities; rows not open at :attr:`as_of` are ignored.
        h : int
            Horizon in periods.
        until : date-like, optional
            Last day counted in ``p_win_by`` (e.g. the end of the quarter).

        Returns
        -------
        DataFrame
            The columns of :meth:`deal_probabilities` plus ``expected_close`` (datetime) and
            ``p_win_by``.
        """
        frame, win = self._win_probs(open_opps, h)
        ds = self.future_ds(win.shape[1])
        total = win.sum(axis=1)
        cum = np.cumsum(win, axis=1)
        k = (cum >= 0.5 * total[:, None] - 1e-12).argmax(axis=1) if win.shape[1] else np.zeros(len(win), dtype=int)
        close = pd.Series(ds[k] if len(ds) else np.full(len(win), np.datetime64("NaT")), dtype="datetime64[us]")
        frame["expected_close"] = close.where(total > 0).to_numpy()
        upto = len(ds) if until is None else int((ds <= np.datetime64(pd.Timestamp(until), "us")).sum())
        frame["p_win_by"] = win[:, :upto].sum(axis=1)
        return frame

    def expected(self, open_opps: pd.DataFrame, *, h: int, unique_ids: Sequence[str] | None = None) -> pd.DataFrame:
        """Expected bookings of the open pipeline per agent and future period.

        ``E[bookings_{a,k}] = sum over open deals d of agent a of amount_d * P_d(won in period k)``.

        Parameters
        ----------
        open_opps : DataFrame
            Opportunities; rows not open at :attr:`as_of` are ignored.
        h : int
            Number of future periods.
        unique_ids : sequence of str, optional
            Agents to report (zeros for those without open deals); by default every agent
            with an open deal, sorted.

        Returns
        -------
        DataFrame
            ``agent_id, ds, expected_bookings``, one row per agent and period, ``ds`` the
            period start.

        Raises
        ------
        DataError
            An open deal belongs to an agent missing from ``unique_ids``.
        """
        frame, win = self._win_probs(open_opps, h)
        uids, code = _agent_codes(frame["agent_id"].to_numpy(dtype=object), unique_ids)
        h = win.shape[1]
        total = np.zeros((len(uids), h))
        np.add.at(total, code, frame["amount"].to_numpy()[:, None] * win)
        return pd.DataFrame(
            {
                "agent_id": pd.array(np.repeat(uids, h), dtype="str"),
                "ds": np.tile(self.future_ds(h), len(uids)),
                "expected_bookings": total.reshape(-1),
            }
        )

    def draws(
        self,
        open_opps: pd.DataFrame,
        *,
        h: int,
        n_draws: int = 1000,
        seed: int = 0,
        unique_ids: Sequence[str] | None = None,
        quantiles: Iterable[float] = DEFAULT_QUANTILES,
    ) -> Forecast:
        """Joint draws of the bookings of the open pipeline per agent and future period.

        Each deal independently books its amount in period ``k`` with probability
        ``P_d(won in k)`` or nothing in the horizon; draws of one agent sum its deals, so
        draw ``j`` can be added to draw ``j`` of a forecast of deals not created yet.

        Parameters
        ----------
        open_opps : DataFrame
            Opportunities; rows not open at :attr:`as_of` are ignored.
        h, n_draws : int
            Horizon and number of draws.
        seed : int
            Seed of the generator; the same seed gives the same draws.
        unique_ids : sequence of str, optional
            Series order of the result (agents without open deals get zeros).
        quantiles : iterable of float
            Levels of the quantile frame.

        Returns
        -------
        Forecast
            Model name ``"OpenPipeline"``, ``ds`` the :meth:`future_ds` for every series.
        """
        n_draws = _positive(n_draws, "n_draws")
        frame, win = self._win_probs(open_opps, h)
        uids, code = _agent_codes(frame["agent_id"].to_numpy(dtype=object), unique_ids)
        h = win.shape[1]
        amount = frame["amount"].to_numpy()
        out = np.zeros(len(uids) * h * n_draws)
        rng = np.random.default_rng(seed)
        cdf = np.minimum(np.cumsum(win, axis=1), 1.0)
        step = max(1, _CHUNK // n_draws)
        for start in range(0, len(win), step):  # blocks of deals bound memory, not a loop over agents
            stop = min(start + step, len(win))
            rows = np.arange(stop - start)
            flat = (cdf[start:stop] + rows[:, None]).ravel()
            u = rng.random((stop - start, n_draws))
            k = np.searchsorted(flat, (rows[:, None] + u).ravel(), side="right").reshape(u.shape) - (rows * h)[:, None]
            hit = k < h
            r, j = np.nonzero(hit)
            idx = (code[start:stop][r] * h + k[r, j]) * n_draws + j
            out += np.bincount(idx, weights=amount[start:stop][r], minlength=out.size)
        return Forecast.from_draws(
            out.reshape(len(uids), h, n_draws),
            unique_ids=uids,
            ds=np.tile(self.future_ds(h), (len(uids), 1)),
            model="OpenPipeline",
            freq=self.freq,
            quantiles=quantiles,
        )


def _agent_codes(agent: np.ndarray, unique_ids: Sequence[str] | None) -> tuple[np.ndarray, np.ndarray]:
    if unique_ids is None:
        uids = np.asarray(sorted(set(agent)), dtype=object)
    else:
        uids = np.asarray([str(u) for u in unique_ids], dtype=object)
    code = pd.Index(uids, dtype="str").get_indexer(pd.Index(agent, dtype="str"))
    if (code < 0).any():
        missing = sorted(set(agent[code < 0]))
        raise DataError(
            f"{len(missing)} agents with open deals are not among the requested series: {', '.join(missing[:5])}; "
            "add them to unique_ids or drop their deals"
        )
    return uids, code


def _positive(value: Any, name: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{name} must be a positive whole number, got {value!r}")
    return int(value)


def _shrink(events: np.ndarray, at_risk: np.ndarray, parent: np.ndarray, kappa: float) -> np.ndarray:
    """``(events + kappa * parent) / (at_risk + kappa)``; the parent where nothing is at risk."""
    den = at_risk + kappa
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (events + kappa * parent) / np.where(den > 0, den, 1.0), parent)


def fit_pipeline_model(
    opportunities: pd.DataFrame,
    stage_history: pd.DataFrame | None = None,
    *,
    as_of: Any,
    freq: str = "W-MON",
    max_periods: int = 104,
    prior_strength: float = 20.0,
    per_agent: bool = True,
    calendar: bool = True,
    fiscal_year_start: int = 1,
    lookback: int | None = None,
    half_life: float | None = None,
    age_edges: Iterable[int] = DEFAULT_AGE_EDGES,
    stage_age_edges: Iterable[int] = DEFAULT_STAGE_AGE_EDGES,
) -> PipelineModel:
    """Estimate win and close-timing probabilities of open deals from deals known at ``as_of``.

    Parameters
    ----------
    opportunities : DataFrame
        Canonical opportunities (``opportunity_id, agent_id, created_date, outcome,
        close_date, amount``). Deals created after ``as_of`` are ignored; deals closed after
        ``as_of`` count as open (their outcome is not read).
    stage_history : DataFrame, optional
        Canonical stage history; entries dated after ``as_of`` are ignored. Without it,
        deals are told apart by age only.
    as_of : date-like
        Forecast date; moved back to the end of its period unless it is the last day of one.
    freq : {"W-MON", "MS"}
        Period grid: weeks starting Monday or calendar months.
    max_periods : int
        Periods after a landmark covered by the life tables; deals still open after that
        count as won with the overall win share, at an unknown time.
    prior_strength : float
        ``kappa``: pseudo-deals with which a cell's hazard is shrunk to its parent's.
    per_agent : bool
        Adjust each agent's win share by its shrunk observed/expected ratio.
    calendar : bool
        Adjust the win share by the position of the close in its quarter.
    fiscal_year_start : int
        Month (1-12) the fiscal year starts in, which sets the quarters
        (:class:`~spm_models.calendar.Calendar`).
    lookback : int, optional
        Use only landmarks within this many periods before ``as_of`` (all by default).
    half_life : float, optional
        Weigh landmarks down by age with this half-life in periods (equal weights by default).
    age_edges, stage_age_edges : iterable of int
        Lower bucket edges of the age since creation and of the time in the current stage.

    Returns
    -------
    PipelineModel

    Raises
    ------
    DataError
        Missing columns, unreadable values, or no deal closed by ``as_of``.
    ConfigError
        An option is out of range.
    """
    unit = check_freq(freq)
    J = _positive(max_periods, "max_periods")
    if lookback is not None:
        lookback = _positive(lookback, "lookback")
    if half_life is not None and not (np.isfinite(half_life) and half_life > 0):
        raise ConfigError(f"half_life must be a positive number of periods or None, got {half_life!r}")
    if not np.isfinite(prior_strength) or prior_strength < 0:
        raise ConfigError(f"prior_strength must be zero or more, got {prior_strength!r}")
    a_edges = _check_edges(age_edges, "age_edges")
    t_edges = _check_edges(stage_age_edges, "stage_age_edges")
    try:
        requested = pd.Timestamp(as_of)
        if pd.isna(requested):
            raise ValueError
    except (TypeError, ValueError):
        raise ConfigError(f"as_of must be a date like 2024-06-30, got {as_of!r}") from None
    day = np.datetime64(requested.date(), "D")
    P = int(period_number(np.array([day + 1]), unit)[0]) - 1  # last period ending on or before as_of
    as_of_day = DEFAULT_CALENDAR.period_of_number(np.array([P + 1]), unit)[0] - np.timedelta64(1, "D")

    d = read_deals(opportunities, as_of_day=as_of_day, unit=unit, table="opportunities")
    if not d.closed.any():
        raise DataError(
            f"no opportunity was won or lost by {pd.Timestamp(as_of_day).date()}; the pipeline model learns "
            "from closed deals, so pick a later as_of date"
        )
    history = None
    if stage_history is not None:
        history = read_history(stage_history, d.ids, as_of_day=as_of_day, unit=unit)

    rec = _landmarks(d, history, P=P, J=J, lookback=lookback, a_edges=a_edges, t_edges=t_edges)
    weight = None if half_life is None else 0.5 ** ((P - rec["m"]) / half_life)
    hw3, hl3 = _life_tables(rec, J=J, kappa=float(prior_strength), weight=weight)
    total = np.minimum(hw3 + hl3, 1.0)
    surv = np.cumprod(1.0 - total, axis=-1)
    before = np.concatenate([np.ones(surv.shape[:-1] + (1,)), surv[..., :-1]], axis=-1)
    cif_win, cif_loss = before * hw3, before * hl3
    tail_share = int((d.outcome == WON).sum()) / int(d.closed.sum())

    fiscal_year_start = Calendar(fiscal_year_start).fiscal_year_start  # checked: 1-12 or a month name
    ratio, tau2, cal = _win_ratios(
        d, rec, hw3, hl3, unit=unit, per_agent=per_agent, calendar=calendar, fiscal_year_start=fiscal_year_start
    )
    o_idx = np.flatnonzero(~d.closed)
    o_stage, o_entry = stage_at(history, o_idx, np.full(len(o_idx), P))
    won = d.outcome == WON
    won_amount = pd.DataFrame({"agent": d.agent[won], "amount": d.amount[won]}).dropna()
    g = won_amount.groupby("agent")["amount"].agg(["mean", "size"])
    own = g.loc[g["size"] >= _MIN_WINS_OWN_MEAN, "mean"]
    return PipelineModel(
        as_of=pd.Timestamp(as_of_day),
        freq=freq,
        age_edges=a_edges,
        stage_age_edges=t_edges,
        cif_win=cif_win,
        cif_loss=cif_loss,
        tail=surv[..., -1],
        tail_win_share=tail_share,
        agent_ratio=ratio,
        tau2=tau2,
        calendar_ratio=cal,
        stage_at_as_of=pd.DataFrame(
            {"stage_code": o_stage, "stage_entered": o_entry},
            index=pd.Index(d.ids[o_idx], dtype="str", name="opportunity_id"),
        ),
        agent_mean_amount=pd.Series(own.to_numpy(dtype=float), index=pd.Index(own.index, dtype="str")),
        pooled_mean_amount=float(won_amount["amount"].mean()) if len(won_amount) else 0.0,
        n_records=int(len(rec["m"])),
        _period=P,
        fiscal_year_start=fiscal_year_start,
    )


def _landmarks(d: Deals, history, *, P: int, J: int, lookback: int | None, a_edges, t_edges) -> dict[str, np.ndarray]:
    """One record per deal and landmark period ``m`` at whose end it was open (module docstring).

    ``exit`` is the number of periods after ``m`` until the close (``event`` 1 won, 2 lost)
    or until ``as_of`` or ``J`` (``event`` 0, censored); ``cell`` is the flat state cell.
    """
    # an extract misses the deals that closed before it starts, so early landmarks would see
    # only the long-running deals (left truncation); a deal open at the end of m closes at
    # m + 1 or later, so from the period before the first close on every such deal is there
    first = int(d.close[d.closed].min()) - 1
    lo = np.maximum(d.created, first if lookback is None else max(first, P - lookback))
    hi = np.where(d.closed, np.minimum(d.close - 1, P - 1), P - 1)
    count = np.maximum(hi - lo + 1, 0)
    deal = np.repeat(np.arange(len(count)), count)
    m = lo[deal] + np.arange(len(deal)) - np.repeat(np.cumsum(count) - count, count)
    exit_j = np.where(d.closed[deal], d.close[deal] - m, P - m)
    event = np.where(d.closed[deal] & (exit_j <= J), d.outcome[deal], 0)
    stage, entry = stage_at(history, deal, m)
    age = m - d.created[deal]
    t_b = _buckets(np.where(stage == UNKNOWN_STAGE, age, m - entry), t_edges)
    shape = (UNKNOWN_STAGE + 1, len(a_edges), len(t_edges))
    cell = np.ravel_multi_index((stage, _buckets(age, a_edges), t_b), shape)
    return {"deal": deal, "m": m, "exit": np.minimum(exit_j, J), "event": event, "cell": cell, "shape": np.array(shape)}


def _life_tables(
    rec: dict[str, np.ndarray], *, J: int, kappa: float, weight: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Shrunk win and loss hazards per state cell and period after the landmark, ``(*shape, J)``."""
    shape = tuple(int(x) for x in rec["shape"])
    full = shape + (J + 1,)
    flat = rec["cell"] * (J + 1) + rec["exit"]
    w = np.ones(len(flat)) if weight is None else weight
    count = lambda v: np.bincount(flat, weights=v, minlength=int(np.prod(full))).reshape(full)  # noqa: E731
    at_risk = np.cumsum(count(w)[..., ::-1], axis=-1)[..., ::-1][..., 1:]
    wins, losses = count(w * (rec["event"] == WON))[..., 1:], count(w * (rec["event"] == LOST))[..., 1:]
    out = []
    for events in (wins, losses):
        # shrink down the chain: all -> stage -> stage x age -> cell
        h0 = _shrink(events.sum(axis=(0, 1, 2)), at_risk.sum(axis=(0, 1, 2)), np.zeros(J), 0.0)
        h1 = _shrink(events.sum(axis=(1, 2)), at_risk.sum(axis=(1, 2)), h0[None, :], kappa)
        h2 = _shrink(events.sum(axis=2), at_risk.sum(axis=2), h1[:, None, :], kappa)
        out.append(_shrink(events, at_risk, h2[:, :, None, :], kappa))
    return out[0], out[1]


def _eb_ratio(O: np.ndarray, E: np.ndarray, V: np.ndarray) -> tuple[np.ndarray, float]:  # noqa: E741 (the docstring's O)
    """Posterior mean ``(O + 1/tau2) / (E + 1/tau2)`` with ``tau2`` by moments (module docstring)."""
    if not len(E) or (E**2).sum() == 0:
        return np.ones(len(E)), 0.0
    tau2 = max(0.0, float(((O - E) ** 2).sum() - V.sum()) / float((E**2).sum()))
    if tau2 == 0:
        return np.ones(len(E)), 0.0
    return (O + 1.0 / tau2) / (E + 1.0 / tau2), tau2


#: Number of distinct :func:`_periods_left` values per unit.
_N_QUARTER_POSITIONS = {"week": 14, "month": 3}


def _periods_left(index: np.ndarray, unit: str, fiscal_year_start: int) -> np.ndarray:
    """Periods left in the (fiscal) quarter after each numbered period: 0 for the quarter's last."""
    starts = DEFAULT_CALENDAR.period_of_number(index, unit)
    return Calendar(fiscal_year_start).periods_left_in_quarter(starts, unit)


def _win_ratios(
    d: Deals,
    rec: dict[str, np.ndarray],
    hw: np.ndarray,
    hl: np.ndarray,
    *,
    unit: str,
    per_agent: bool,
    calendar: bool,
    fiscal_year_start: int = 1,
) -> tuple[pd.Series, float, np.ndarray]:
    """Calendar ratio per quarter position, then agent ratio given it (module docstring)."""
    n_pos = _N_QUARTER_POSITIONS[unit]
    no_agents = pd.Series(dtype=float, index=pd.Index([], dtype="str"))
    deal, event, exit_j, cell = rec["deal"], rec["event"], rec["exit"], rec["cell"]
    # every record of a deal closed by as_of; a deal's expectation is the mean over its records
    pick = event > 0
    J = hw.shape[-1]
    w = hw.reshape(-1, J)[cell[pick], exit_j[pick] - 1]
    total = w + hl.reshape(-1, J)[cell[pick], exit_j[pick] - 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        q = np.where(total > 0, w / total, np.nan)
    ok = ~np.isnan(q)
    dcode, dids = pd.factorize(deal[pick][ok])
    if not len(dids):
        return no_agents, 0.0, np.ones(n_pos)
    qbar = np.bincount(dcode, weights=q[ok]) / np.bincount(dcode)
    won = (d.outcome[dids] == WON).astype(float)
    cal = np.ones(n_pos)
    if calendar:
        pos = _periods_left(d.close[dids], unit, fiscal_year_start)
        sums = [np.bincount(pos, weights=v, minlength=n_pos) for v in (won, qbar, qbar * (1 - qbar))]
        cal = _eb_ratio(*sums)[0]
        qbar = np.minimum(1.0, qbar * cal[pos])
    if not per_agent:
        return no_agents, 0.0, cal
    codes, agents = pd.factorize(pd.Index(d.agent[dids], dtype="str"), sort=True)
    sums = [np.bincount(codes, weights=v, minlength=len(agents)) for v in (won, qbar, qbar * (1 - qbar))]
    ratio, tau2 = _eb_ratio(*sums)
    return pd.Series(ratio, index=pd.Index(agents, dtype="str")), tau2, cal
