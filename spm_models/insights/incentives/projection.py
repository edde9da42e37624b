"""Draws of every plan measure over the rest of a period: what a plan will pay, as a distribution.

The days after ``as_of`` up to ``horizon_end`` are cut at every boundary a plan or contest
window has (:meth:`Projection.prepare`); each measure is drawn once per piece ``k`` (``L_k``
days) and a window's draw is the sum of its pieces, so overlapping windows (a month inside the
quarter, a contest, a plan change) see one consistent set of scenarios ``j = 1..d``.

``bookings``
    The forecast's own draws (the review's calibrated agent forecast):
    ``R_ikj = sum_w s_ikw y_iwj``, ``s_ikw`` the share of week ``w``'s days inside piece ``k``
    (:func:`spm_models.evaluation.quota.probability.period_totals`).
``margin``
    ``m_i R_ikj``, ``m_i`` the agent's margin over bookings in the ``history_days`` before
    ``as_of`` (the company's where the agent has no bookings then).
``product_bookings:X``
    ``p_i R_ikj`` with ``p_i = (X_i + M p) / (B_i + M)``: the agent's share of bookings in line
    ``X`` over the history, shrunk towards the company's share ``p`` with a weight ``M`` of a
    quarter of the median agent's bookings.
counts (``new_accounts``, ``activities[:type]``, ``deals_decided``)
    ``N_ikj ~ Poisson(lambda_ij L_k)`` with a rate per scenario ``lambda_ij ~ Gamma(c_i + 1/2,
    T_i)``, ``c_i`` the agent's count over the ``T_i`` days employed in the history (the
    Jeffreys posterior of a Poisson rate, so the uncertainty of a short history is kept).
``deals_won``
    ``Binomial(N^decided_ikj, pi_ij)``, ``pi_ij ~ Beta(w_i + 1, l_i + 1)`` from the agent's wins
    and losses in the history, so wins never exceed decided deals.

Only bookings come from the forecasting model; the other measures are these run-rate
projections (stated in the statements' notes). People without a forecast series (no bookings
history) get zero bookings and margin.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from spm_models.evaluation.quota.probability import period_totals
from spm_models.exceptions import ConfigError
from spm_models.insights.incentives.credits import CreditLedger
from spm_models.models.forecast import Forecast

__all__ = ["Projection"]


def _day(value: Any) -> int:
    return int(np.datetime64(pd.Timestamp(value).date(), "D").astype(np.int64))


class Projection:
    """Draws of the plan measures for the days after ``as_of`` (module docstring).

    Parameters
    ----------
    forecast : Forecast
        Agent-level weekly bookings draws covering ``as_of + 1 .. horizon_end``.
    ledger : CreditLedger
        The history (:func:`~spm_models.insights.incentives.credits.credit_ledger`) with every
        measure projected, ``bookings`` included.
    agents : DataFrame
        Canonical agents (hire and leave dates bound the history of each rate).
    as_of, horizon_end : date-like
    history_days : int
        Look-back of rates, margins and shares.
    seed : int
    """

    def __init__(
        self,
        forecast: Forecast,
        ledger: CreditLedger,
        agents: pd.DataFrame,
        *,
        as_of: Any,
        horizon_end: Any,
        history_days: int = 182,
        seed: int = 0,
    ) -> None:
        self.forecast = forecast
        self.ledger = ledger
        self.as_of, self.horizon_end = _day(as_of), _day(horizon_end)
        self.n_draws = int(forecast.draws.shape[2])
        self.seed = int(seed)
        self.history_days = int(history_days)
        self.ids = pd.Index(forecast.unique_ids.astype(str))
        a = agents.assign(agent_id=agents["agent_id"].astype("str")).drop_duplicates("agent_id").set_index("agent_id")
        self._hire = pd.to_datetime(a["hire_date"]) if "hire_date" in a else pd.Series(pd.NaT, index=a.index)
        self.breaks = np.array([self.as_of + 1, self.horizon_end + 1], dtype=np.int64)
        self._cache: dict[str, np.ndarray] = {}

    # -------------------------------------------------------------- pieces
    def prepare(self, days: Sequence[Any]) -> None:
        """Cut the horizon at these first days of windows (and the day after each window's end)."""
        extra = np.array([_day(d) for d in days], dtype=np.int64) if len(days) else np.zeros(0, np.int64)
        extra = extra[(extra > self.as_of + 1) & (extra <= self.horizon_end)]
        breaks = np.unique(np.concatenate([self.breaks, extra]))
        if not np.array_equal(breaks, self.breaks):
            self.breaks = breaks
            self._cache.clear()

    @property
    def _lengths(self) -> np.ndarray:
        return np.diff(self.breaks).astype(float)

    def _history(self, key: str, agent_ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Count of ``key`` over the history and the days employed in it, per agent."""
        lo = self.as_of - self.history_days + 1
        hire = self._hire.reindex(pd.Index(agent_ids)).to_numpy()
        first = np.array([max(lo, _day(h)) if not pd.isna(h) else lo for h in hire], dtype=np.int64)
        first = np.minimum(first, self.as_of)
        days = (self.as_of - first + 1).astype(float)
        starts = first.astype("datetime64[D]")
        ends = np.full(len(agent_ids), self.as_of).astype("datetime64[D]")
        return self.ledger.window(key, agent_ids, starts, ends), days

    def _rng(self, key: str) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence([self.seed, zlib.crc32(key.encode())]))

    def _bookings(self) -> np.ndarray:
        """``(n_series, pieces, d)`` bookings draws of the forecast's series."""
        if "bookings" not in self._cache:
            parts = [
                period_totals(
                    self.forecast,
                    period_start=pd.Timestamp(np.datetime64(int(a), "D")),
                    period_end=pd.Timestamp(np.datetime64(int(b) - 1, "D")),
                )
                for a, b in zip(self.breaks[:-1], self.breaks[1:])
            ]
            self._cache["bookings"] = np.stack(parts, axis=1)
        return self._cache["bookings"]

    def _counts(self, key: str) -> np.ndarray:
        """``(n_series, pieces, d)`` count draws of the forecast's series."""
        if key in self._cache:
            return self._cache[key]
        ids = list(self.ids)
        if key == "deals_won":
            decided = self._counts("deals_decided")
            won, days = self._history("deals_won", ids)
            dec, _ = self._history("deals_decided", ids)
            rng = self._rng(key)
            p = rng.beta(won[:, None] + 1.0, np.maximum(dec - won, 0.0)[:, None] + 1.0, size=(len(ids), self.n_draws))
            out = rng.binomial(decided.astype(np.int64), p[:, None, :]).astype(float)
        else:
            count, days = self._history(key, ids)
            rng = self._rng(key)
            lam = rng.gamma(count[:, None] + 0.5, 1.0 / days[:, None], size=(len(ids), self.n_draws))
            out = rng.poisson(lam[:, None, :] * self._lengths[None, :, None]).astype(float)
        self._cache[key] = out
        return out

    def _scaled(self, key: str) -> np.ndarray:
        """``(n_series, pieces, d)`` bookings draws times each agent's margin ratio or product share."""
        if key in self._cache:
            return self._cache[key]
        ids = list(self.ids)
        booked, _ = self._history("bookings", ids)
        part, _ = self._history(key, ids)
        total = booked.sum()
        company = part.sum() / total if total > 0 else 0.0
        if key == "margin":
            ratio = np.where(booked > 0, part / np.where(booked > 0, booked, 1.0), company)
        else:
            m = 0.25 * float(np.median(booked)) if len(booked) else 0.0
            ratio = (part + m * company) / np.maximum(booked + m, 1e-12)
        out = self._bookings() * ratio[:, None, None]
        self._cache[key] = out
        return out

    def series(self, key: str) -> np.ndarray:
        """Draws of ``key`` per forecast series and piece, ``(n_series, pieces, d)``."""
        measure = key.partition(":")[0]
        if measure == "bookings":
            return self._bookings()
        if measure in ("margin", "product_bookings"):
            return self._scaled(key)
        if measure in ("deals_won", "deals_decided", "new_accounts", "activities"):
            return self._counts(key)
        raise ConfigError(f"no projection for measure {key!r}")

    def values(self, key: str, agent_ids: Sequence[str], starts: Any, ends: Any) -> np.ndarray:
        """Draws ``(rows, d)`` of ``key`` over each row's days after ``as_of`` inside its window.

        Raises
        ------
        ConfigError
            A window edge that is not a piece boundary (call :meth:`prepare` with it first).
        """
        s = pd.to_datetime(pd.Series(starts)).to_numpy().astype("datetime64[D]").astype(np.int64)
        e = pd.to_datetime(pd.Series(ends)).to_numpy().astype("datetime64[D]").astype(np.int64)
        s = np.maximum(s, self.as_of + 1)
        e = np.minimum(e, self.horizon_end)
        empty = e < s
        lo = np.searchsorted(self.breaks, s)
        hi = np.searchsorted(self.breaks, e + 1)
        last = len(self.breaks) - 1
        ok = empty | ((self.breaks[np.minimum(lo, last)] == s) & (self.breaks[np.minimum(hi, last)] == e + 1))
        if not ok.all():
            raise ConfigError("a window does not start and end on the projection's pieces; prepare() it first")
        draws = self.series(key)
        cum = np.concatenate([np.zeros((draws.shape[0], 1, self.n_draws)), np.cumsum(draws, axis=1)], axis=1)
        row = self.ids.get_indexer(pd.Index([str(a) for a in agent_ids]))
        out = np.zeros((len(row), self.n_draws))
        has = (row >= 0) & ~empty
        r = row[has]
        out[has] = cum[r, hi[has], :] - cum[r, lo[has], :]
        return out
