"""statsforecast side-car of ``bench/accuracy.py``: AutoETS and AutoARIMA at rolling origins.

Runs only in the benchmark environment ``.venv-bench`` (statsforecast 2.1.1 needs pandas<3,
the project runs on pandas 3), so it must not import ``spm_models``. ``bench/accuracy.py``
writes the series to parquet, calls this script with that environment's Python and reads the
forecasts back::

    .venv-bench/bin/python bench/statsforecast_runner.py \\
        --input series.parquet --plan plan.json --output forecasts.parquet --timings timings.parquet

Input
    Parquet with ``dataset``, ``level``, ``unique_id`` (text), ``ds`` (weekly dates) and ``y``;
    a JSON plan ``{"models": ["AutoETS", "AutoARIMA"], "season_length": 13, "n_jobs": 2,
    "tasks": [{"dataset": "maven", "h": 4, "origins": ["2017-08-07", ...]}, ...]}``.
At each origin
    For every dataset, horizon and level, the series *active* at the origin (first date <= origin <= last date)
    are fitted on their rows with ``ds <= origin``, one model at a time, and forecast
    ``h`` weeks with 80% and 95% prediction intervals (statsforecast's own, Gaussian).
    A series a model cannot fit (fewer than about ten points for AutoETS, an error, or a
    non-finite forecast) is forecast by statsforecast's ``Naive`` instead and the row says
    so in ``fallback``.
Outputs
    ``--output``: ``dataset, h, level, origin, unique_id, ds, step, model, mean, lo-80, hi-80,
    lo-95, hi-95, fallback`` (the reason, empty when the model itself produced the row).
    ``--timings``: ``dataset, h, level, origin, model, n_series, seconds, cpu_seconds`` (wall
    and CPU time of fitting and forecasting all series of that level at that origin, in one
    process).
    The (dataset, h, level, origin, model) tasks run in ``n_jobs`` worker processes.

Season length
    13 weeks (the quarter) by default: the strongest weekly pattern of quota-driven sales is
    the quarter-end push, which repeats every 13 weeks. 52 would need two full years before
    the first origin (the Maven export has 44 weeks) and statsforecast's ETS ignores seasons
    longer than 24 periods, as R's ``forecast::ets`` does, so AutoETS would silently lose
    its season.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings

import numpy as np
import pandas as pd

LEVELS = (80, 95)
OUTPUT_COLUMNS = (
    "level",
    "origin",
    "unique_id",
    "ds",
    "step",
    "model",
    "mean",
    "lo-80",
    "hi-80",
    "lo-95",
    "hi-95",
    "fallback",
)
_BOUNDS = tuple(f"{side}-{lev}" for lev in LEVELS for side in ("lo", "hi"))


def make_models(names: list[str], season_length: int) -> dict:
    """The statsforecast models by name (imported here: this module loads no library at import)."""
    from statsforecast.models import AutoARIMA, AutoETS

    known = {
        "AutoETS": lambda: AutoETS(season_length=season_length),
        "AutoARIMA": lambda: AutoARIMA(season_length=season_length),
    }
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    return {n: known[n]() for n in names}


def _forecast_one(model, y: np.ndarray, h: int) -> dict[str, np.ndarray]:
    """``mean`` and interval bounds of one series; raises when the output is not finite."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsforecast warns on near-constant series; recorded as fallback
        out = model.forecast(y=y.astype(float), h=h, level=list(LEVELS))
    res = {k: np.asarray(out[k], dtype=float) for k in ("mean", *_BOUNDS)}
    if not all(np.isfinite(v).all() and v.shape == (h,) for v in res.values()):
        raise FloatingPointError("non-finite forecast or interval")
    return res


def forecast_origin(frame: pd.DataFrame, *, origin: pd.Timestamp, h: int, name: str, model, fallback) -> pd.DataFrame:
    """Forecast every series of ``frame`` active at ``origin`` with ``model`` (``fallback`` on failure)."""
    span = frame.groupby("unique_id", sort=True)["ds"].agg(["min", "max"])
    active = span.index[(span["min"] <= origin) & (span["max"] >= origin)]
    train = frame[frame["unique_id"].isin(active) & (frame["ds"] <= origin)].sort_values(["unique_id", "ds"])
    parts = []
    for uid, g in train.groupby("unique_id", sort=True):  # statsforecast itself fits series one by one
        y = g["y"].to_numpy(dtype=float)
        reason = ""
        try:
            res = _forecast_one(model, y, h)
        except Exception as exc:  # recorded in the output, never fatal
            reason = f"{name} failed ({type(exc).__name__}: {str(exc)[:80]}); Naive used"
            res = _forecast_one(fallback, y, h)
        parts.append(
            pd.DataFrame(
                {
                    "unique_id": uid,
                    "ds": pd.date_range(origin, periods=h + 1, freq="7D")[1:],
                    "step": np.arange(1, h + 1),
                    **res,
                    "fallback": reason,
                }
            )
        )
    if not parts:
        return pd.DataFrame(columns=[c for c in OUTPUT_COLUMNS if c not in ("level", "origin", "model")])
    return pd.concat(parts, ignore_index=True)


def _task(args: tuple) -> tuple[pd.DataFrame, dict]:
    """One (dataset, h, level, origin, model) task; runs in a worker process."""
    frame, meta, season_length = args
    from statsforecast.models import Naive

    model = make_models([meta["model"]], season_length)[meta["model"]]
    t0, c0 = time.perf_counter(), time.process_time()
    fc = forecast_origin(frame, origin=meta["origin"], h=meta["h"], name=meta["model"], model=model, fallback=Naive())
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    return fc.assign(**meta), dict(meta, n_series=fc["unique_id"].nunique(), seconds=seconds, cpu_seconds=cpu)


def run(series: pd.DataFrame, plan: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Forecasts and timings of every task of ``plan`` (see the module docstring)."""
    from concurrent.futures import ProcessPoolExecutor

    series = series.assign(
        ds=pd.to_datetime(series["ds"]),
        unique_id=series["unique_id"].astype(str),
        level=series["level"].astype(str),
        dataset=series["dataset"].astype(str),
    )
    models = list(plan.get("models", ["AutoETS", "AutoARIMA"]))
    season_length = int(plan.get("season_length", 13))
    make_models(models, season_length)  # unknown names fail before any work
    frames = {k: g[["unique_id", "ds", "y"]] for k, g in series.groupby(["dataset", "level"], sort=True)}
    tasks = []
    for t in plan["tasks"]:
        for (dataset, level), frame in frames.items():
            if dataset != t["dataset"]:
                continue
            for origin in t["origins"]:
                for name in models:
                    meta = {
                        "dataset": dataset,
                        "h": int(t["h"]),
                        "level": level,
                        "origin": pd.Timestamp(origin),
                        "model": name,
                    }
                    tasks.append((frame, meta, season_length))
    # the slowest tasks (AutoARIMA on the many agent series) first, so the workers finish together
    tasks.sort(key=lambda a: (a[1]["model"] != "AutoARIMA", -a[0]["unique_id"].nunique()))
    out, timing = [], []
    with ProcessPoolExecutor(max_workers=max(1, int(plan.get("n_jobs", 1)))) as pool:
        for fc, tm in pool.map(_task, tasks):
            out.append(fc)
            timing.append(tm)
            print(
                f"[statsforecast] {tm['dataset']} h={tm['h']} {tm['level']} origin {tm['origin'].date()} "
                f"{tm['model']}: {tm['n_series']} series, {tm['seconds']:.1f}s ({tm['cpu_seconds']:.1f} CPU s)",
                file=sys.stderr,
                flush=True,
            )
    forecasts = pd.concat(out, ignore_index=True)[["dataset", "h", *OUTPUT_COLUMNS]]
    return forecasts, pd.DataFrame(timing)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--input", required=True, help="parquet: dataset, level, unique_id, ds, y")
    p.add_argument("--plan", required=True, help="JSON: models, season_length, n_jobs, tasks")
    p.add_argument("--output", required=True)
    p.add_argument("--timings", required=True)
    a = p.parse_args(argv)
    with open(a.plan) as fh:
        plan = json.load(fh)
    forecasts, timings = run(pd.read_parquet(a.input), plan)
    forecasts.to_parquet(a.output, index=False)
    timings.to_parquet(a.timings, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
