"""Forecast snapshots with provenance, scored later against what actually happened.

A forecast is only worth trusting if its past forecasts can be checked. Each forecast run
is saved as one snapshot folder ``<folder>/<snapshot_id>/``:

``quantiles.parquet``
    The forecast's long quantile frame (``unique_id, ds, model, mean, q...``), plus a
    ``level`` column when a level map was given.
``draws.npz``
    Compressed numpy arrays: ``draws`` (float32, ``[n_series, h, n_draws]``),
    ``unique_ids``, ``ds`` (``datetime64[us]``), ``series_model`` and ``reason`` (the
    fallback record). Read without pickle.
``provenance.json``
    ``snapshot_id, created_utc, spm_version``, ``model`` (name and parameters),
    ``config``, ``seed``, ``data_range`` (start, end), ``data_fingerprint``, the forecast's
    shape, frequency and quantile levels, ``level_of``, and the SHA-256 of the two data files.

The folder is written under a temporary name and renamed into place, so a snapshot is either
complete or absent. Snapshot ids are ``<UTC time>-<model>-<random>``, so they sort by time.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from spm_models import __version__
from spm_models.calendar import to_day
from spm_models.evaluation.metrics import SCORE_COLUMNS, clean_actuals, crps_draws, score
from spm_models.exceptions import ConfigError, DataError
from spm_models.models.base import ForecastModel
from spm_models.models.forecast import Forecast, quantile_column
from spm_models.models.panel import DT_DTYPE

__all__ = ["Snapshot", "save_snapshot", "load_snapshot", "list_snapshots", "score_snapshot", "SNAPSHOT_FORMAT"]

SNAPSHOT_FORMAT = "spm_models.forecast_snapshot"
_FORMAT_VERSION = 1
_FILES = ("quantiles.parquet", "draws.npz", "provenance.json")


@dataclass(frozen=True, eq=False)
class Snapshot:
    """A saved forecast and where it came from.

    Attributes
    ----------
    path : Path
        The snapshot folder.
    snapshot_id : str
    provenance : dict
        The contents of ``provenance.json``.
    forecast : Forecast
        Draws as saved (float32 precision, held as float64) and the quantile frame as
        computed at save time.
    level_of : dict or None
        ``unique_id -> level`` (e.g. ``"agent"``, ``"territory"``, ``"company"``).
    """

    path: Path
    snapshot_id: str
    provenance: dict
    forecast: Forecast
    level_of: dict[str, str] | None

    @property
    def created_utc(self) -> pd.Timestamp:
        return pd.Timestamp(self.provenance["created_utc"])


def _jsonable(value: Any) -> Any:
    """Plain JSON types: numpy scalars and arrays, timestamps and paths become numbers or text."""
    return json.loads(
        json.dumps(
            value,
            default=lambda v: (
                v.item() if isinstance(v, np.generic) else (v.tolist() if isinstance(v, np.ndarray) else str(v))
            ),
        )
    )


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _date_text(value: Any, name: str) -> str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return to_day(value, f"data_range {name}").date().isoformat()


def save_snapshot(
    forecast: Forecast,
    *,
    folder: str | os.PathLike,
    model: ForecastModel | str,
    config: Mapping[str, Any],
    seed: int | None,
    data_range: tuple[Any, Any],
    data_fingerprint: str,
    level_of: Mapping[str, str] | None = None,
) -> Path:
    """Write a forecast snapshot folder (see the module docstring) and return its path.

    Parameters
    ----------
    forecast : Forecast
    folder : path-like
        Parent folder of the snapshots (created if needed).
    model : ForecastModel or str
        The model that made the forecast (its name and ``get_params()`` are recorded), or
        just a name.
    config : mapping
        Run settings to record (horizon, levels, anything needed to reproduce the run);
        values are stored as JSON (other objects as their text).
    seed : int or None
        Random seed of the run.
    data_range : (start, end)
        First and last date of the training data.
    data_fingerprint : str
        Fingerprint of the data the model saw (e.g. :func:`spm_models.data.warehouse.fingerprint`).
    level_of : mapping, optional
        ``unique_id -> level`` name, stored in the quantile frame and the provenance.

    Returns
    -------
    Path
        ``<folder>/<snapshot_id>``.

    Raises
    ------
    ConfigError
        ``data_range`` is not a pair of dates, or ``level_of`` misses a series.
    """
    if not isinstance(data_range, (tuple, list)) or len(data_range) != 2:
        raise ConfigError(f"data_range must be a (start, end) pair, got {data_range!r}")
    uids = np.asarray(forecast.unique_ids).astype(str)
    levels = None
    if level_of is not None:
        levels = {str(k): str(v) for k, v in dict(level_of).items()}
        missing = [u for u in uids if u not in levels]
        if missing:
            raise ConfigError(f"level_of has no level for {len(missing)} series: {', '.join(missing[:5])}")
    if isinstance(model, ForecastModel):
        name, params = model.model_name(), model.get_params()
    else:
        name, params = str(model), {}
    created = datetime.now(UTC)
    safe = re.sub(r"[^A-Za-z0-9_.]+", "_", name)[:40] or "model"
    snapshot_id = f"{created.strftime('%Y%m%dT%H%M%S%fZ')}-{safe}-{uuid.uuid4().hex[:8]}"
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".tmp-{snapshot_id}"
    tmp.mkdir()
    try:
        q = forecast.quantiles.copy()
        if levels is not None:
            q["level"] = pd.array([levels[u] for u in q["unique_id"].astype(str)], dtype="str")
        q.to_parquet(tmp / "quantiles.parquet", index=False)
        fb = forecast.fallback
        np.savez_compressed(
            tmp / "draws.npz",
            draws=forecast.draws.astype(np.float32),
            unique_ids=uids,
            ds=np.asarray(forecast.ds).astype(DT_DTYPE),
            series_model=fb["model"].to_numpy().astype(str),
            reason=fb["reason"].to_numpy().astype(str),
        )
        provenance = {
            "format": SNAPSHOT_FORMAT,
            "format_version": _FORMAT_VERSION,
            "snapshot_id": snapshot_id,
            "created_utc": created.isoformat(),
            "spm_version": __version__,
            "model": {"name": name, "params": _jsonable(params)},
            "forecast_model": forecast.model,
            "config": _jsonable(dict(config)),
            "seed": None if seed is None else int(seed),
            "data_range": {"start": _date_text(data_range[0], "start"), "end": _date_text(data_range[1], "end")},
            "data_fingerprint": str(data_fingerprint),
            "freq": forecast.freq,
            "h": forecast.h,
            "n_series": forecast.n_series,
            "n_draws": forecast.n_draws,
            "quantile_levels": list(forecast.quantile_levels),
            "level_of": levels,
            "sha256": {f: _sha256(tmp / f) for f in ("quantiles.parquet", "draws.npz")},
        }
        (tmp / "provenance.json").write_text(json.dumps(provenance, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        final = root / snapshot_id
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def load_snapshot(path: str | os.PathLike) -> Snapshot:
    """Read a snapshot folder written by :func:`save_snapshot`.

    Raises
    ------
    DataError
        The folder is missing, incomplete, not a snapshot, or a file does not match the
        checksum recorded when it was saved.
    """
    path = Path(path)
    missing = [f for f in _FILES if not (path / f).is_file()]
    if missing:
        raise DataError(f"{path} is not a complete forecast snapshot (missing {', '.join(missing)})")
    try:
        prov = json.loads((path / "provenance.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {path / 'provenance.json'}: {exc}") from exc
    if prov.get("format") != SNAPSHOT_FORMAT or prov.get("format_version") != _FORMAT_VERSION:
        raise DataError(f"{path} is not a forecast snapshot this version can read")
    for f, digest in prov.get("sha256", {}).items():
        if _sha256(path / f) != digest:
            raise DataError(f"{path / f} was changed after the snapshot was saved (checksum mismatch)")
    quantiles = pd.read_parquet(path / "quantiles.parquet")
    level_of = prov.get("level_of")
    if "level" in quantiles.columns:
        quantiles = quantiles.drop(columns="level")
    with np.load(path / "draws.npz", allow_pickle=False) as z:
        draws = z["draws"].astype(float)
        uids = z["unique_ids"].astype(object)
        ds = z["ds"].astype(DT_DTYPE)
        series_model, reason = z["series_model"].astype(object), z["reason"].astype(object)
    fallback = pd.DataFrame(
        {
            "unique_id": pd.array(uids, dtype="str"),
            "model": pd.array(series_model, dtype="str"),
            "fallback": (series_model != prov["forecast_model"]) | (reason != ""),
            "reason": pd.array(reason, dtype="str"),
        }
    )
    fc = Forecast(
        quantiles, draws, uids, ds, fallback, prov["forecast_model"], prov["freq"], tuple(prov["quantile_levels"])
    )
    return Snapshot(path=path, snapshot_id=prov["snapshot_id"], provenance=prov, forecast=fc, level_of=level_of)


def list_snapshots(folder: str | os.PathLike) -> pd.DataFrame:
    """The snapshots in ``folder``, oldest first.

    Returns
    -------
    DataFrame
        ``snapshot_id, created_utc, model, seed, data_start, data_end, data_fingerprint,
        freq, h, n_series, path``; folders that are not complete snapshots (including
        unfinished temporary ones) are skipped.
    """
    rows = []
    root = Path(folder)
    for p in sorted(root.iterdir()) if root.is_dir() else []:
        if not p.is_dir() or p.name.startswith(".") or not all((p / f).is_file() for f in _FILES):
            continue
        try:
            prov = json.loads((p / "provenance.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if prov.get("format") != SNAPSHOT_FORMAT:
            continue
        rows.append(
            {
                "snapshot_id": prov["snapshot_id"],
                "created_utc": pd.Timestamp(prov["created_utc"]),
                "model": prov["model"]["name"],
                "seed": prov.get("seed"),
                "data_start": pd.Timestamp(prov["data_range"]["start"]) if prov["data_range"]["start"] else pd.NaT,
                "data_end": pd.Timestamp(prov["data_range"]["end"]) if prov["data_range"]["end"] else pd.NaT,
                "data_fingerprint": prov["data_fingerprint"],
                "freq": prov["freq"],
                "h": prov["h"],
                "n_series": prov["n_series"],
                "path": str(p),
            }
        )
    cols = [
        "snapshot_id",
        "created_utc",
        "model",
        "seed",
        "data_start",
        "data_end",
        "data_fingerprint",
        "freq",
        "h",
        "n_series",
        "path",
    ]
    out = pd.DataFrame(rows, columns=cols)
    return out.sort_values(["created_utc", "snapshot_id"], kind="stable").reset_index(drop=True)


def _observed_actuals(fc: Forecast, actuals: pd.DataFrame, observed_until: Any) -> np.ndarray:
    """Actual per forecast cell (series-major like the quantile frame); NaN where pending."""
    act = clean_actuals(actuals)
    keys = pd.DataFrame(
        {"unique_id": pd.array(np.repeat(fc.unique_ids.astype(str), fc.h), dtype="str"), "ds": fc.ds.reshape(-1)}
    )
    y = keys.merge(act, on=["unique_id", "ds"], how="left")["y"].to_numpy(dtype=float)
    if observed_until is not None:
        until = np.datetime64(pd.Timestamp(observed_until).date(), "D")
        ends = (pd.DatetimeIndex(keys["ds"]) + pd.tseries.frequencies.to_offset(fc.freq)).to_numpy().astype(
            "datetime64[D]"
        ) - 1
        done = ends <= until
        y = np.where(done, np.where(np.isnan(y), 0.0, y), np.nan)
    return y


def _bounds(fc: Forecast, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """Interval bounds per cell from the quantile frame when it has them, else from the draws."""
    cols = [quantile_column(lo), quantile_column(hi)]
    if all(c in fc.quantiles.columns for c in cols):
        return fc.quantiles[cols[0]].to_numpy(dtype=float), fc.quantiles[cols[1]].to_numpy(dtype=float)
    b = np.quantile(fc.draws.reshape(fc.n_series * fc.h, -1), [lo, hi], axis=1)
    return b[0], b[1]


def score_snapshot(
    snapshot: Snapshot,
    actuals_frame: pd.DataFrame,
    *,
    train: pd.DataFrame | None = None,
    observed_until: Any = None,
    by: str = "series",
    season: int = 1,
) -> pd.DataFrame:
    """Score a saved forecast against the actuals known now; the rest is pending.

    A forecast period is *observed* when ``actuals_frame`` has a value for it (or, with
    ``observed_until``, when the period ended on or before that date; an observed period
    missing from the actuals counts as 0). Observed periods are scored with
    :func:`spm_models.evaluation.metrics.score`; the others are *pending*.

    Parameters
    ----------
    snapshot : Snapshot
    actuals_frame : DataFrame
        ``unique_id, ds, y``.
    train : DataFrame, optional
        The training data, for the MASE scale (``mase`` and ``scaled_crps`` are NaN without it).
    observed_until : date-like, optional
        Last day with complete actuals.
    by : {"series", "period"}
        One row per series (scores over its observed periods), or one row per series and
        period (the actual, the forecast mean, absolute error, CRPS and 80%/95% interval
        hits; NaN where pending).
    season : int
        Seasonal lag of the MASE scale.

    Returns
    -------
    DataFrame
        ``by="series"``: ``snapshot_id``, ``level`` (when known), the
        :data:`~spm_models.evaluation.metrics.SCORE_COLUMNS`, ``n_pending``, ``first_pending`` (ds of
        the first pending period, NaT when none) and ``status`` (``"complete"``,
        ``"partial"`` or ``"pending"``). ``by="period"``: ``snapshot_id, unique_id, ds,
        step, status`` (``"observed"``/``"pending"``), ``y, mean, abs_error, crps, in_80,
        in_95``.

    Raises
    ------
    DataError
        The actuals are malformed.
    ConfigError
        ``by`` is not one of the choices.
    """
    if by not in ("series", "period"):
        raise ConfigError(f"by must be 'series' or 'period', got {by!r}")
    fc = snapshot.forecast
    y = _observed_actuals(fc, actuals_frame, observed_until)
    pending = np.isnan(y)
    if by == "period":
        q = fc.quantiles
        flat = fc.draws.reshape(fc.n_series * fc.h, -1)
        (lo80, hi80), (lo95, hi95) = _bounds(fc, 0.1, 0.9), _bounds(fc, 0.025, 0.975)
        with np.errstate(invalid="ignore"):
            return pd.DataFrame(
                {
                    "snapshot_id": snapshot.snapshot_id,
                    "unique_id": q["unique_id"].to_numpy(),
                    "ds": q["ds"].to_numpy(),
                    "step": np.tile(np.arange(1, fc.h + 1), fc.n_series),
                    "status": np.where(pending, "pending", "observed"),
                    "y": y,
                    "mean": q["mean"].to_numpy(),
                    "abs_error": np.abs(q["mean"].to_numpy() - y),
                    "crps": crps_draws(flat, y),
                    "in_80": np.where(pending, np.nan, (lo80 <= y) & (y <= hi80)),
                    "in_95": np.where(pending, np.nan, (lo95 <= y) & (y <= hi95)),
                }
            )
    keys = fc.quantiles[["unique_id", "ds"]]
    actual = keys.assign(y=y)
    if train is None:
        train = pd.DataFrame(
            {
                "unique_id": pd.array([], dtype="str"),
                "ds": pd.Series([], dtype=DT_DTYPE),
                "y": pd.Series([], dtype=float),
            }
        )
    scores = score(fc, actual, train=train, season=season)
    per = pending.reshape(fc.n_series, fc.h)
    n_pending = per.sum(axis=1)
    first = np.where(per.any(axis=1), fc.ds[np.arange(fc.n_series), per.argmax(axis=1)], np.datetime64("NaT"))
    out = scores.assign(
        n_pending=n_pending.astype(np.int64),
        first_pending=first.astype(DT_DTYPE),
        status=np.where(n_pending == 0, "complete", np.where(n_pending == fc.h, "pending", "partial")),
    )
    out.insert(0, "snapshot_id", snapshot.snapshot_id)
    if snapshot.level_of:
        out.insert(1, "level", out["unique_id"].map(snapshot.level_of).astype("str"))
    return out[
        [
            "snapshot_id",
            *(["level"] if snapshot.level_of else []),
            *SCORE_COLUMNS,
            "n_pending",
            "first_pending",
            "status",
        ]
    ]
