"""Forward selection of leading indicators: test, keep what is found, take it out of bookings, test again.

Two things go wrong when every candidate is tested only on its own (marginally):

- a candidate that merely moves *with* a true driver looks like a driver itself (an agent's calls
  rise in the weeks its demos rise; demos act on bookings, calls do not);
- a weak effect is tested against bookings that still hold every stronger effect as noise (the
  deals created a few weeks earlier, the demos), so it needs more data to stand out.

:func:`select_indicators` therefore works in rounds. Round 0 tests every candidate with the
step-down maxT of :func:`~spm_models.indicators.significance.max_t_pvalues`. The candidates
found (adjusted p below ``alpha`` at a lag of 1 or more) are *accepted*; then

1. **prune**: from the weakest up, each accepted candidate is tested again on bookings with the
   other accepted candidates taken out (:func:`residualise`), by the maxT over its own lags and
   both statistics at ``alpha`` (the search over its lags is paid for again; the other
   candidates are not). One that no longer holds is *explained by* the accepted candidate it is
   most correlated with, and leaves the set;
2. **expand**: the candidates not yet decided are tested again, with the same step-down maxT
   among themselves, on bookings with every accepted candidate taken out.

Rounds stop when nothing changes (at most ``max_rounds``). A candidate's evidence is that of the
round that decided it, and ``given`` names what had been taken out of bookings then.

Taking a candidate out (:func:`residualise`) is a pooled distributed-lag regression of every
entity's standardised bookings on the candidate's detrended, standardised series at lags
``1..max_lag``, one slope per candidate and lag shared by all entities; the residual is the new
target. The permutation null of a candidate tested on that residual is still its own
innovations reordered in time, so each round's test keeps its level; the procedure as a whole
is a forward selection, whose false-positive rate ``bench/indicators.py`` measures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from spm_models.indicators.arrays import correlation, detrend, standardise
from spm_models.indicators.significance import Evidence, candidate_evidence, candidate_side, max_t_pvalues

__all__ = ["Finding", "residualise", "select_indicators"]


@dataclass(frozen=True)
class Finding:
    """How one candidate was decided.

    Attributes
    ----------
    evidence : Evidence
        Its statistics in the deciding round.
    p : ndarray (K, L+1)
        Step-down adjusted p-values of that round.
    studentised : ndarray (K, L+1)
    band : float
        The studentised value its statistics had to exceed.
    round : int
    given : tuple of str
        Candidates taken out of bookings in that round.
    accepted : bool
        Selected (and not explained by another).
    p_conditional : float
        For a candidate pruned, its p-value with the others taken out (NaN otherwise).
    explained_by : str
        For a candidate pruned, the accepted candidate it moves with ("" otherwise).
    """

    evidence: Evidence
    p: np.ndarray
    studentised: np.ndarray
    band: float
    round: int
    given: tuple[str, ...]
    accepted: bool = False
    p_conditional: float = float("nan")
    explained_by: str = ""

    @property
    def best(self) -> tuple[int, int]:
        """``(statistic index, lag)`` of the strongest studentised statistic."""
        t = np.where(np.isfinite(self.studentised), self.studentised, -np.inf)
        k, lag = np.unravel_index(int(np.argmax(t)), t.shape)
        return int(k), int(lag)

    @property
    def p_best(self) -> float:
        k, lag = self.best
        return float(self.p[k, lag])


def _shifted(values: np.ndarray, lag: int) -> np.ndarray:
    out = np.zeros_like(values)
    out[:, lag:] = values[:, : values.shape[1] - lag]
    return out


class _Residualiser:
    """:func:`residualise` for many subsets of candidates, each candidate's lag columns built once.

    The least-squares fit uses the normal equations; the cross-products of two candidates' lag
    columns are computed once and kept.
    """

    def __init__(self, y_std: np.ndarray, xs: dict[str, np.ndarray], *, design: np.ndarray, max_lag: int):
        self.y_std, self.xs, self.design, self.max_lag = y_std, xs, design, max_lag
        self.seen = ~np.isnan(y_std)
        self.y = y_std[self.seen]
        self._cols: dict[str, np.ndarray] = {}
        self._cross: dict[tuple[str, str], np.ndarray] = {}

    def _columns(self, name: str) -> np.ndarray:
        if name not in self._cols:
            z = standardise(detrend(self.xs[name], self.design))
            self._cols[name] = np.column_stack([_shifted(z, lag)[self.seen] for lag in range(1, self.max_lag + 1)])
        return self._cols[name]

    def _gram(self, a: str, b: str) -> np.ndarray:
        key = (a, b) if a <= b else (b, a)
        if key not in self._cross:
            self._cross[key] = self._columns(key[0]).T @ self._columns(key[1])
        return self._cross[key] if key == (a, b) else self._cross[key].T

    def residual(self, names: list[str]) -> np.ndarray:
        if not names:
            return self.y_std
        gram = np.block([[self._gram(a, b) for b in names] for a in names])
        rhs = np.concatenate([self._columns(a).T @ self.y for a in names])
        ridge = 1e-9 * max(float(np.trace(gram)) / len(gram), 1e-12)
        coef = np.linalg.solve(gram + ridge * np.eye(len(gram)), rhs)
        fitted = np.concatenate([self._columns(a) for a in names], axis=1) @ coef
        out = np.full_like(self.y_std, np.nan)
        out[self.seen] = self.y - fitted
        return out


def residualise(
    y_std: np.ndarray, xs: dict[str, np.ndarray], names: list[str], *, design: np.ndarray, max_lag: int
) -> np.ndarray:
    """Bookings with the candidates ``names`` taken out (module docstring).

    ``r[e, t] = y[e, t] - sum_{c, l} b_{c,l} z_c[e, t - l]``, ``l = 1..max_lag``, with ``z_c``
    the candidate detrended and standardised per entity (0 where missing) and ``b`` fitted by
    least squares over every observed cell. NaN where ``y_std`` is.
    """
    return _Residualiser(y_std, xs, design=design, max_lag=max_lag).residual(list(names))


def _test_round(target, xs, names, *, alpha, kwargs) -> dict[str, tuple[Evidence, np.ndarray, np.ndarray, float]]:
    evidence = {}
    cache: dict = {}  # the target's filtered sums, shared by candidates with the same units
    for name in names:
        ev = candidate_evidence(xs[name], target, side=kwargs["sides"][name], cache=cache, **kwargs["test"])
        if ev is not None:
            evidence[name] = ev
    if not evidence:
        return {}
    z = np.stack([ev.z for ev in evidence.values()])
    null = np.stack([ev.null for ev in evidence.values()], axis=1)
    p, t, band = max_t_pvalues(z, null, alpha=alpha)
    return {name: (ev, p[i], t[i], float(band[i])) for i, (name, ev) in enumerate(evidence.items())}


def _own_family_p(ev: Evidence) -> float:
    """maxT p-value of one candidate over its own lags and statistics (studentised as in the round)."""
    p, _, _ = max_t_pvalues(ev.z[None], ev.null[:, None], alpha=0.05)
    finite = p[np.isfinite(p)]
    return float(finite.min()) if len(finite) else float("nan")


def _most_correlated(xs: dict[str, np.ndarray], name: str, others: list[str], design: np.ndarray) -> str:
    z = standardise(detrend(xs[name], design))
    best, best_r = others[0], -1.0
    for other in others:
        w = standardise(detrend(xs[other], design))
        r = abs(float(correlation((z * w).sum(), (z * z).sum(), (w * w).sum())))
        if np.isfinite(r) and r > best_r:
            best, best_r = other, r
    return best


def select_indicators(
    y_std: np.ndarray,
    xs: dict[str, np.ndarray],
    *,
    design: np.ndarray,
    selector: sparse.csr_matrix,
    n_permutations: int,
    max_lag: int,
    max_ar_order: int = 4,
    alpha: float = 0.05,
    max_rounds: int = 3,
) -> dict[str, Finding]:
    """Decide every candidate by forward selection (module docstring).

    Parameters
    ----------
    y_std : ndarray (E, T)
        Bookings per entity: scaled, detrended and standardised, NaN where missing.
    xs : dict of str to ndarray (E, T)
        The candidates.
    design, selector, n_permutations, max_lag, max_ar_order
        As for :func:`~spm_models.indicators.significance.candidate_evidence`.
    alpha : float
        Level of every test.
    max_rounds : int
        Most rounds of expansion.

    Returns
    -------
    dict of str to Finding
        Candidates with a usable series, in the order of ``xs``.
    """
    test = dict(
        design=design, selector=selector, n_permutations=n_permutations, max_lag=max_lag, max_ar_order=max_ar_order
    )
    # the candidate side of every statistic does not change from round to round: computed once
    sides = {name: candidate_side(values, design=design, max_ar_order=max_ar_order) for name, values in xs.items()}
    kwargs = {"test": test, "sides": sides}
    findings: dict[str, Finding] = {}
    accepted: list[str] = []
    remaining = list(xs)
    residuals = _Residualiser(y_std, xs, design=design, max_lag=max_lag)
    for rnd in range(max_rounds):
        target = residuals.residual(accepted)
        tested = _test_round(target, xs, remaining, alpha=alpha, kwargs=kwargs)
        new = []
        for name, (ev, p, t, band) in tested.items():
            found = Finding(ev, p, t, band, rnd, tuple(accepted))
            if found.p_best < alpha and found.best[1] >= 1:
                new.append(name)
                found = Finding(ev, p, t, band, rnd, tuple(accepted), accepted=True)
            findings[name] = found
        if not new:
            break
        accepted += new
        remaining = [c for c in remaining if c not in new and c in tested]
        accepted = _prune(residuals, accepted, findings, kwargs=kwargs, alpha=alpha)
    return {name: findings[name] for name in xs if name in findings}


def _prune(
    residuals: _Residualiser, accepted: list[str], findings: dict[str, Finding], *, kwargs, alpha: float
) -> list[str]:
    """Drop, weakest first, the accepted candidates the others explain."""
    if len(accepted) < 2:
        return accepted
    keep = list(accepted)
    strength = {c: float(np.nanmax(findings[c].studentised)) for c in accepted}
    for name in sorted(accepted, key=strength.get):
        others = [c for c in keep if c != name]
        if not others:
            break
        target = residuals.residual(others)
        ev = candidate_evidence(residuals.xs[name], target, side=kwargs["sides"][name], **kwargs["test"])
        p = _own_family_p(ev) if ev is not None else float("nan")
        if not p < alpha:
            keep.remove(name)
            old = findings[name]
            findings[name] = Finding(
                old.evidence,
                old.p,
                old.studentised,
                old.band,
                old.round,
                old.given,
                accepted=False,
                p_conditional=p,
                explained_by=_most_correlated(residuals.xs, name, others, kwargs["test"]["design"]),
            )
        else:
            old = findings[name]
            findings[name] = Finding(
                old.evidence, old.p, old.studentised, old.band, old.round, old.given, accepted=True, p_conditional=p
            )
    return keep
