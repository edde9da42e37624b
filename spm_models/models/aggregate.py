"""Coherent hierarchy forecasts: a parent's draws are the sums of its children's draws."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from spm_models.exceptions import DataError
from spm_models.models.forecast import Forecast

__all__ = ["aggregate_draws"]


def aggregate_draws(
    forecast: Forecast,
    mapping: Mapping[str, str] | pd.Series,
    *,
    quantiles: Iterable[float] | None = None,
) -> Forecast:
    """Forecast of parent series as the sum of their children's draws.

    Draw ``j`` of a parent is the sum of draw ``j`` of its children, so the parent's
    mean is the sum of the children's means and its quantiles are quantiles of the summed
    draws (not sums of quantiles), which keeps a hierarchy coherent: agent -> territory ->
    company by calling this once per level. The sum inherits the dependence between
    children that the model put into its draws: the baselines resample the same past week
    for every series (``joint_bootstrap``), so sums keep the co-movement left in their
    residuals; with ``joint_bootstrap=False`` (or any model that draws series independently)
    parent intervals are too narrow when children move together.

    Parameters
    ----------
    forecast : Forecast
        Child forecast (e.g. agents).
    mapping : mapping or Series
        ``child unique_id -> parent unique_id``. Entries for children not in ``forecast``
        are ignored.
    quantiles : iterable of float, optional
        Levels of the parent quantiles; those of ``forecast`` by default.

    Returns
    -------
    Forecast
        One series per parent, sorted by id; a parent is flagged ``fallback`` when any of its
        children fell back.

    Raises
    ------
    DataError
        A child has no parent, or the children of a parent forecast different periods
        (their histories end on different dates).
    """
    mp = mapping if isinstance(mapping, pd.Series) else pd.Series(dict(mapping), dtype=object)
    uids = pd.Index(forecast.unique_ids, dtype="str")
    parents = pd.Series(mp.to_numpy(), index=pd.Index(mp.index.astype(str), dtype="str")).reindex(uids)
    if parents.isna().any():
        orphans = uids[parents.isna().to_numpy()]
        raise DataError(f"{len(orphans)} series have no parent in the mapping: {', '.join(orphans[:5])}")
    codes, names = pd.factorize(parents.astype("str"), sort=True)
    order = np.argsort(codes, kind="stable")
    counts = np.bincount(codes, minlength=len(names))
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    ds_sorted = forecast.ds[order]
    first = np.repeat(ds_sorted[starts], counts, axis=0)
    misaligned = (ds_sorted != first).any(axis=1)
    if misaligned.any():
        bad = pd.unique(np.asarray(names)[codes[order][misaligned]])
        raise DataError(
            f"children of {', '.join(map(str, bad[:5]))} forecast different periods (their histories end on "
            "different dates); forecast them from a common last date before summing"
        )
    draws = np.add.reduceat(forecast.draws[order], starts, axis=0)
    fb = forecast.fallback["fallback"].to_numpy()[order]
    n_fb = np.add.reduceat(fb.astype(np.int64), starts)
    child_ids = forecast.unique_ids[order]
    reason = np.array(
        [
            f"{k} of {m} child series fell back: {', '.join(map(str, child_ids[s : s + m][fb[s : s + m]][:5]))}"
            if k
            else ""
            for k, m, s in zip(n_fb, counts, starts)
        ],
        dtype=object,
    )
    return Forecast.from_draws(
        draws,
        unique_ids=np.asarray(names, dtype=object),
        ds=ds_sorted[starts],
        model=forecast.model,
        freq=forecast.freq,
        quantiles=forecast.quantile_levels if quantiles is None else quantiles,
        reason=reason,
    )
