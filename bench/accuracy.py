"""Forecast accuracy benchmark: every model, rolling origins, agent / territory / company.

Usage::

    .venv/bin/python bench/accuracy.py                      # the full run (see bench/README.md)
    .venv/bin/python bench/accuracy.py --quick              # 2 origins, 12 agents, h=4: a minute
    .venv/bin/python bench/accuracy.py --datasets maven --horizons 4 --models seasonal_naive,hb
    .venv/bin/python bench/accuracy.py --nuts               # HierarchicalBayes by NUTS, not ADVI

Datasets: ``synthetic`` (a generated organisation with known truth, so an ``oracle`` that knows
every agent's expected wins and deal-size distribution can be scored) and ``maven`` (the
shipped Maven CRM export). Weekly bookings per agent, territory and company come from
:func:`spm_models.indicators.series.bookings_series`; a series runs from its first to its last
week (gaps filled with 0).

Origins: the last is ``h`` weeks before the last week of the data, the others every ``--step``
weeks before it (4 by default, so the h=4 windows do not overlap and the h=13 ones do); an
origin needs ``--min-train`` weeks of history behind it, so short data get fewer origins (the
table says how many). At each origin every model is fitted afresh on the series *active* at the
origin (first week <= origin <= last week), on the weeks up to the origin, and forecasts ``h``
weeks. Territory and company are forecast twice for the project's models: ``direct`` (fitted
on the aggregated series) and ``bottom-up`` (sums of the agent draws,
:func:`spm_models.models.aggregate.aggregate_draws`).

Scores (:func:`spm_models.evaluation.metrics.score`, pooled by :func:`spm_models.evaluation.metrics.summarize`):
MASE of the mean forecast with the naive (lag-1) in-sample MAE of each series as scale, CRPS
divided by the same scale (so levels are comparable), coverage of the central 80% and 95%
intervals, bias % of the summed forecast. statsforecast's AutoETS and AutoARIMA run in the
side environment ``.venv-bench`` (``bench/statsforecast_runner.py``); their Gaussian intervals
become draws on a quantile grid, clipped at 0 (bookings are not negative), for the CRPS.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from spm_models.evaluation.metrics import score, summarize
from spm_models.exceptions import ConfigError, SpmError
from spm_models.indicators.series import build_series
from spm_models.kpi.grid import COMPANY
from spm_models.models import Forecast, ForecastModel, clone
from spm_models.models import make_model as registry_make_model
from spm_models.models.aggregate import aggregate_draws
from spm_models.models.forecast import quantile_column

ROOT = Path(__file__).resolve().parents[1]
RUNNER = Path(__file__).resolve().parent / "statsforecast_runner.py"
LEVELS = ("agent", "territory", "company")
PROJECT_MODELS = ("seasonal_naive", "moq", "calendar", "calendar_pipeline", "prophet", "prophet_pe", "hb")
SF_MODELS = {"autoets": "AutoETS", "autoarima": "AutoARIMA"}
#: ``auto``: what the review ships with ``model = "auto"``: at every origin the review's model
#: choice (:func:`spm_models.evaluation.selection.choose_models` over the review's candidates,
#: on the training weeks only), then per level the sum of the agent draws of that level's pick.
ALL_MODELS = ("oracle", "auto", *PROJECT_MODELS, *SF_MODELS)
LABELS = {
    "oracle": "Oracle",
    "auto": "Auto (review)",
    "seasonal_naive": "SeasonalNaive",
    "moq": "MonthOfQuarterMean",
    "calendar": "CalendarBaseline",
    "calendar_pipeline": "Pipeline+Calendar",
    "prophet": "Prophet",
    "prophet_pe": "Prophet+PE",
    "hb": "HierBayes",
    **SF_MODELS,
}
#: Leading indicators each dataset offers as regressors: candidate -> lag in weeks. Only those
#: with lag >= h are used (a lagged value is known h weeks ahead only when lag >= h). The
#: synthetic generator plants market_index at lag 8; on Maven no candidate holds up.
INDICATORS = {"synthetic": {"indicator:market_index": 8}, "maven": {}}
MASE_SEASON = 1
_BLAS_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
WEEK = np.timedelta64(7, "D")


def cpu_seconds() -> float:
    """CPU seconds used so far by this process and its finished children (Prophet's Stan runs
    in a child process): unlike wall time, not inflated by other jobs on a shared machine."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class BenchConfig:
    """Settings of one benchmark run (defaults = the full run of bench/README.md)."""

    datasets: tuple[str, ...] = ("synthetic", "maven")
    horizons: tuple[int, ...] = (4, 13)
    models: tuple[str, ...] = ALL_MODELS
    n_origins: int = 6
    step: int = 4
    min_train: int = 18
    n_agents: int = 40
    years: float = 3.0
    seed: int = 7
    n_draws: int = 500
    hb_method: str = "advi"
    hb_seed: int = 0  # HierarchicalBayes' random_state (its default)
    sf_python: Path | None = ROOT / ".venv-bench" / "bin" / "python"
    sf_season_length: int = 13
    sf_jobs: int = 1  # one runner process + this one = the 2 cores, so fit times are not inflated
    maven_folder: Path = ROOT / "data" / "examples" / "maven_crm"

    @classmethod
    def quick(cls, **overrides) -> BenchConfig:
        """Two origins, 12 agents over two years, h=4, 200 draws."""
        base = dict(n_origins=2, n_agents=12, years=2.0, horizons=(4,), n_draws=200)
        return cls(**{**base, **overrides})


@dataclass
class BenchData:
    """One dataset's weekly bookings per level, ready for the models."""

    name: str
    frames: dict[str, pd.DataFrame]  # level -> unique_id, ds, y (+ indicator columns)
    parents: dict[str, dict[str, str]]  # territory/company -> {agent: parent}
    regressors: dict[str, int]  # indicator column -> lag
    org: object | None = None  # the SyntheticOrg (its truth feeds the oracle)
    opportunities: pd.DataFrame | None = None  # for the pipeline-aware model
    stage_history: pd.DataFrame | None = None
    spans: dict[str, pd.DataFrame] = field(default_factory=dict)  # level -> first/last week per series
    weeks_note: str = ""  # which weeks are scored (full weeks only)

    @property
    def grid(self) -> np.ndarray:
        return np.sort(self.frames["company"]["ds"].unique())


# --------------------------------------------------------------------------- data


def _complete(long: pd.DataFrame) -> pd.DataFrame:
    """``entity_id, period, value`` -> ``unique_id, ds, y`` with every week from first to last (0 = no sale)."""
    span = long.groupby("entity_id", sort=True)["period"].agg(["min", "max"])
    n = ((span["max"] - span["min"]).dt.days // 7 + 1).to_numpy()
    starts = np.repeat(span["min"].to_numpy().astype("datetime64[us]"), n)
    offset = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    full = pd.DataFrame(
        {"unique_id": pd.array(np.repeat(span.index.astype(str), n), dtype="str"), "ds": starts + offset * WEEK}
    )
    y = long.rename(columns={"entity_id": "unique_id", "period": "ds", "value": "y"})
    y = y.assign(unique_id=y["unique_id"].astype("str"), ds=y["ds"].astype("datetime64[us]"))
    return full.merge(y, on=["unique_id", "ds"], how="left").fillna({"y": 0.0})


def load_data(name: str, cfg: BenchConfig) -> BenchData:
    """Weekly bookings (and indicator columns) per level of dataset ``name``."""
    org = None
    if name == "synthetic":
        from spm_models.synthetic.generator import generate_organisation

        org = generate_organisation(cfg.n_agents, years=cfg.years, seed=cfg.seed)
        dataset = org.dataset
    elif name == "maven":
        from spm_models.data.sources.maven import load_maven
        from spm_models.data.validation import validate

        dataset = validate(load_maven(cfg.maven_folder))
    else:
        raise ConfigError(f"unknown dataset {name!r}; choose synthetic or maven")
    indicators = INDICATORS[name]
    frames = {}
    weeks, note = full_weeks(dataset)
    for level in LEVELS:
        target, cand = build_series(dataset, level=level, grain="week")
        frame = _complete(target)
        frame = frame[frame["ds"].between(weeks[0], weeks[1])].reset_index(drop=True)
        for cand_name in indicators:
            col = cand_name.split(":", 1)[-1]
            c = cand.loc[cand["candidate"] == cand_name, ["entity_id", "period", "value"]]
            c = c.rename(columns={"entity_id": "unique_id", "period": "ds", "value": col})
            c = c.assign(unique_id=c["unique_id"].astype("str"), ds=c["ds"].astype("datetime64[us]"))
            frame = frame.merge(c, on=["unique_id", "ds"], how="left")
            frame[col] = frame.groupby("unique_id")[col].ffill()
            frame[col] = frame.groupby("unique_id")[col].bfill().fillna(0.0)
        frames[level] = frame
    agents = dataset["agents"]
    territory = dict(zip(agents["agent_id"].astype(str), agents["territory_id"].astype(str)))
    data = BenchData(
        name,
        frames,
        {"territory": territory, "company": {a: COMPANY for a in territory}},
        {k.split(":", 1)[-1]: v for k, v in indicators.items()},
        org,
        dataset["opportunities"],
        dataset.tables.get("stage_history") if hasattr(dataset, "tables") else None,
    )
    data.spans = {lv: f.groupby("unique_id")["ds"].agg(["min", "max"]) for lv, f in frames.items()}
    data.weeks_note = note
    return data


def full_weeks(dataset) -> tuple[tuple[pd.Timestamp, pd.Timestamp], str]:
    """First and last Monday of the weeks wholly inside the days the data cover (from the first to
    the last close date of any opportunity), and a sentence saying what was left out.

    A week the data cover only in part (Maven's first, 2017-02-27, has closes from Wednesday 1
    March on) looks like a slump to every model, and scoring it flatters whichever model
    happens to forecast one."""
    close = pd.to_datetime(dataset["opportunities"]["close_date"]).dropna()
    first_day, last_day = close.min().normalize(), close.max().normalize()
    monday = first_day - pd.Timedelta(days=first_day.weekday())
    first = monday if monday == first_day else monday + pd.Timedelta(weeks=1)
    sunday = last_day + pd.Timedelta(days=6 - last_day.weekday())
    last = (sunday if sunday == last_day else sunday - pd.Timedelta(weeks=1)) - pd.Timedelta(days=6)
    dropped = []
    if first != monday:
        dropped.append(f"the partial first week {monday.date()} (closes start {first_day.date()})")
    if last != sunday - pd.Timedelta(days=6):
        dropped.append(f"the partial last week {(sunday - pd.Timedelta(days=6)).date()} (closes end {last_day.date()})")
    n = (last - first).days // 7 + 1
    note = f"{n} full weeks {first.date()}..{last.date()}" + (f"; left out {' and '.join(dropped)}" if dropped else "")
    return (first, last), note


def choose_origins(grid: np.ndarray, *, h: int, n_origins: int, step: int, min_train: int) -> np.ndarray:
    """Up to ``n_origins`` origins ``step`` weeks apart, the last ``h`` weeks before the end,
    each with at least ``min_train`` weeks of data up to and including it."""
    idx = len(grid) - 1 - h - step * np.arange(n_origins)[::-1]
    return np.asarray(grid)[idx[idx >= min_train - 1]]


def split(data: BenchData, level: str, origin: np.datetime64, h: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training rows of the series active at ``origin``, and the actuals of the next ``h`` weeks."""
    frame, span = data.frames[level], data.spans[level]
    active = span.index[(span["min"] <= origin) & (span["max"] >= origin)]
    ds = frame["ds"].to_numpy()
    train = frame[frame["unique_id"].isin(active) & (ds <= origin)]
    actual = frame[(ds > origin) & (ds <= origin + h * WEEK)]
    return train, actual


# --------------------------------------------------------------------------- models


#: Benchmark key -> registered model (spm_models.models.registry) and its fixed parameters.
SPECS: dict[str, tuple[str, dict]] = {
    "seasonal_naive": ("SeasonalNaive", {}),
    "moq": ("MonthOfQuarterMean", {}),
    "calendar": ("CalendarBaseline", {}),
    "calendar_pipeline": ("PipelineAware", {"model": "CalendarBaseline"}),
    "prophet": ("ProphetForecaster", {"period_end": False}),
    "prophet_pe": ("ProphetForecaster", {"period_end": True}),
    "hb": ("HierarchicalBayes", {}),
}


def make_model(
    key: str, *, level: str, h: int, data: BenchData, cfg: BenchConfig
) -> tuple[ForecastModel, dict, dict[str, pd.DataFrame]]:
    """The project model ``key`` for one level and horizon, the regressors it uses and the
    tables it reads at fit."""
    if key not in SPECS:
        raise ConfigError(f"unknown model {key!r}; choose from {', '.join(ALL_MODELS)}")
    name, params = SPECS[key]
    params = dict(params)
    regs = {}
    if key in ("prophet_pe", "hb"):
        regs = {c: lag for c, lag in data.regressors.items() if lag >= h}
        if regs:
            params["regressors"] = regs
    if key == "hb":
        params.update(
            method=cfg.hb_method,
            random_state=cfg.hb_seed,
            groups=data.parents["territory"] if level == "agent" else None,
        )
    model = registry_make_model(name, **params)
    tables: dict[str, pd.DataFrame] = {}
    if "opportunities" in model.fit_tables:
        # the deals open at the origin, credited to the level's series (agent, territory or company)
        opps = data.opportunities
        if level != "agent":
            opps = opps.assign(agent_id=opps["agent_id"].astype(str).map(data.parents[level]))
        tables = {"opportunities": opps, "stage_history": data.stage_history}
    return model, regs, tables


def label(key: str, regs: dict, cfg: BenchConfig) -> str:
    name = LABELS[key] + (f"-{cfg.hb_method.upper()}" if key == "hb" else "")
    return name + ("+X" if regs else "")


def _score(fc: Forecast, actual: pd.DataFrame, train: pd.DataFrame, **meta) -> pd.DataFrame:
    s = score(fc, actual, train=train, season=MASE_SEASON)
    return s.assign(**meta)


def _bottom_up(fc: Forecast, data: BenchData, parent_level: str) -> Forecast:
    mapping = {u: data.parents[parent_level][u] for u in fc.unique_ids}
    return aggregate_draws(fc, mapping)


def oracle_at(data: BenchData, origin: np.datetime64, h: int, cfg: BenchConfig) -> dict[str, Forecast]:
    """The oracle's agent, territory and company forecasts (exact sums of every agent's draws)."""
    from spm_models.synthetic.oracle import oracle_forecast

    agents = oracle_forecast(data.org, start=pd.Timestamp(origin + WEEK), h=h, n_draws=cfg.n_draws, seed=cfg.seed)
    return {"agent": agents, **{lv: _bottom_up(agents, data, lv) for lv in ("territory", "company")}}


def auto_at(data: BenchData, train: pd.DataFrame, h: int, cfg: BenchConfig):
    """What ``model = "auto"`` ships from the agents' training weeks: the review's candidates
    (built as :func:`spm_models.review.forecasting.candidate_models` builds them), its choice on
    those weeks, each pick fitted once, and per level the sum of the agent draws of its pick.

    The review also scales the draws by the common factor of its quota calibration
    (:mod:`spm_models.review.recalibration`); that needs quotas and past quarters, so it is not
    part of this benchmark (Maven has no quotas: there the review ships exactly this).

    Returns
    -------
    (dict of level -> Forecast, ModelChoice)
    """
    from spm_models.calendar import Calendar
    from spm_models.evaluation.selection import choose_models
    from spm_models.review.forecasting import build_model
    from spm_models.review.settings import ReviewConfig

    config = ReviewConfig()  # the review's defaults: what `spm review` ships
    agents = pd.DataFrame(
        {"agent_id": list(data.parents["territory"]), "territory_id": list(data.parents["territory"].values())}
    )
    calendar = Calendar()
    tables = {"opportunities": data.opportunities, "stage_history": data.stage_history}

    def build(name: str) -> ForecastModel:
        return build_model(name, {}, config=config, calendar=calendar, agents=agents, fast=True)

    train = train[["unique_id", "ds", "y"]]
    candidates = {n: build(n) for n in config.auto_candidates}
    choice = choose_models(
        train,
        candidates,
        parents=data.parents,
        h=h,
        n_origins=config.auto_origins,
        tables=tables,
        budget_seconds=config.auto_budget_seconds,
    )
    fitted = {}
    for name in dict.fromkeys(choice.picks.values()):
        model = build(name)
        fitted[name] = model.fit(train, **(tables if model.fit_tables else {})).predict(h, n_draws=cfg.n_draws)
    agent = fitted[choice.picks["agent"]]
    out = {"agent": agent}
    for lv in ("territory", "company"):
        out[lv] = _bottom_up(fitted[choice.picks.get(lv, choice.picks["agent"])], data, lv)
    return out, choice


def run_origin(
    data: BenchData, origin: np.datetime64, h: int, cfg: BenchConfig, progress: Callable[[str], None]
) -> tuple[list[pd.DataFrame], list[dict]]:
    """Fit, forecast and score every project model (and the oracle, and auto) at one origin."""
    scores, times = [], []
    splits = {lv: split(data, lv, origin, h) for lv in LEVELS}
    base = {"dataset": data.name, "h": h, "origin": origin}
    if "auto" in cfg.models:
        t0, c0 = time.perf_counter(), cpu_seconds()
        fcs, choice = auto_at(data, splits["agent"][0], h, cfg)
        seconds, cpu = time.perf_counter() - t0, cpu_seconds() - c0
        picks = ", ".join(f"{lv} {m}" for lv, m in choice.picks.items())
        for lv, fc in fcs.items():
            meta = dict(base, level=lv, model=LABELS["auto"], regressors="", pick=choice.picks.get(lv, ""))
            approach = "direct" if lv == "agent" else "bottom-up"
            scores.append(_score(fc, splits[lv][1], splits[lv][0], **meta, approach=approach))
            times.append(dict(meta, approach=approach, seconds=seconds, cpu_seconds=cpu))
        progress(f"  {LABELS['auto']:<22} picks {picks} {seconds:6.1f}s ({cpu:.1f} CPU s)")
    if "oracle" in cfg.models and data.org is not None:
        fcs = oracle_at(data, origin, h, cfg)
        active = set(splits["agent"][0]["unique_id"])
        fcs["agent"] = fcs["agent"].select([u for u in fcs["agent"].unique_ids if u in active])
        for lv, fc in fcs.items():
            meta = dict(base, level=lv, model="Oracle", approach="truth", regressors="")
            scores.append(_score(fc, splits[lv][1], splits[lv][0], **meta))
            times.append(dict(meta, seconds=np.nan, cpu_seconds=np.nan))  # the oracle is not fitted
    for key in [k for k in PROJECT_MODELS if k in cfg.models]:
        for lv in LEVELS:
            model, regs, tables = make_model(key, level=lv, h=h, data=data, cfg=cfg)
            name = label(key, regs, cfg)
            meta = dict(base, level=lv, model=name, regressors=",".join(f"{c}@{g}" for c, g in regs.items()))
            train, actual = splits[lv]
            t0, c0 = time.perf_counter(), cpu_seconds()
            fc = clone(model).fit(train, **tables).predict(h, n_draws=cfg.n_draws)
            seconds, cpu = time.perf_counter() - t0, cpu_seconds() - c0
            scores.append(_score(fc, actual, train, **meta, approach="direct"))
            times.append(dict(meta, approach="direct", seconds=seconds, cpu_seconds=cpu))
            if lv == "agent":
                for parent in ("territory", "company"):
                    bu = _bottom_up(fc, data, parent)
                    pm = dict(meta, level=parent, approach="bottom-up")
                    scores.append(_score(bu, splits[parent][1], splits[parent][0], **pm))
                    times.append(dict(pm, seconds=seconds, cpu_seconds=cpu))
            progress(f"  {name:<22} {lv:<9} {seconds:6.1f}s ({cpu:.1f} CPU s)")
    return scores, times


# --------------------------------------------------------------------------- statsforecast


def forecast_from_intervals(rows: pd.DataFrame, *, model: str, n_draws: int) -> Forecast:
    """A Forecast from statsforecast's mean and Gaussian 80%/95% intervals.

    The standard deviation is ``(hi95 - lo95) / (2 * 1.95996)``; draws are the normal
    quantiles at ``(j + 0.5) / n_draws``, clipped at 0 for the CRPS. The quantile frame keeps
    statsforecast's own mean and interval bounds (coverage is unaffected by the clipping,
    as actuals are never negative).
    """
    from scipy.stats import norm

    rows = rows.sort_values(["unique_id", "step"])
    uids = rows["unique_id"].astype(str).unique()
    h = int(rows["step"].max())
    shape = (len(uids), h)
    mean = rows["mean"].to_numpy(float).reshape(shape)
    sd = np.maximum((rows["hi-95"] - rows["lo-95"]).to_numpy(float).reshape(shape) / (2 * norm.ppf(0.975)), 0.0)
    z = norm.ppf((np.arange(n_draws) + 0.5) / n_draws)
    draws = np.maximum(mean[..., None] + sd[..., None] * z, 0.0)
    reason = rows.groupby("unique_id", sort=True)["fallback"].first().reindex(uids).fillna("").astype(str)
    fc = Forecast.from_draws(
        draws,
        unique_ids=uids,
        ds=rows["ds"].to_numpy().astype("datetime64[us]").reshape(shape),
        model=model,
        freq="W-MON",
        series_model=np.where(reason != "", "Naive", model),
        reason=reason.to_numpy(),
    )
    q = fc.quantiles.copy()
    q["mean"] = rows["mean"].to_numpy(float)
    for col, lev in (("lo-95", 0.025), ("lo-80", 0.1), ("mean", 0.5), ("hi-80", 0.9), ("hi-95", 0.975)):
        if quantile_column(lev) in q:
            q[quantile_column(lev)] = rows[col].to_numpy(float)
    return dataclasses.replace(fc, quantiles=q)


@dataclass
class _SfJob:
    """The statsforecast runner working in the background, and the folder it writes to."""

    proc: subprocess.Popen
    folder: Path
    names: list[str]


def start_statsforecast(
    datas: dict[str, BenchData],
    plans: dict[tuple[str, int], np.ndarray],
    cfg: BenchConfig,
    progress: Callable[[str], None],
) -> _SfJob | None:
    """Start AutoETS / AutoARIMA in ``.venv-bench`` on every dataset, horizon, origin and level, in
    the background (the project's models fit meanwhile); ``None`` with a message when that
    environment is missing."""
    names = [SF_MODELS[k] for k in SF_MODELS if k in cfg.models]
    if not names or not plans:
        return None
    py = cfg.sf_python
    if py is None or not Path(py).exists():
        progress(
            f"statsforecast skipped: no benchmark environment at {py}; create it with `make bench-accuracy` "
            "(or python3.11 -m venv .venv-bench && .venv-bench/bin/pip install -r bench/requirements-statsforecast.txt)"
        )
        return None
    folder = Path(tempfile.mkdtemp(prefix="spm-accuracy-statsforecast-"))
    series = pd.concat(
        [
            f[["unique_id", "ds", "y"]].assign(dataset=d.name, level=lv)
            for d in datas.values()
            for lv, f in d.frames.items()
        ]
    )
    series.to_parquet(folder / "series.parquet", index=False)
    plan = {
        "models": names,
        "season_length": cfg.sf_season_length,
        "n_jobs": cfg.sf_jobs,
        "tasks": [
            {"dataset": name, "h": h, "origins": [str(pd.Timestamp(o).date()) for o in origins]}
            for (name, h), origins in plans.items()
        ],
    }
    (folder / "plan.json").write_text(json.dumps(plan))
    cmd = [
        str(py),
        str(RUNNER),
        "--input",
        str(folder / "series.parquet"),
        "--plan",
        str(folder / "plan.json"),
        "--output",
        str(folder / "fc.parquet"),
        "--timings",
        str(folder / "t.parquet"),
    ]
    env = {**os.environ, **{v: "1" for v in _BLAS_THREAD_VARS}}  # one thread per process: no oversubscription
    with open(folder / "stderr.txt", "w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env)
    progress(
        f"statsforecast {', '.join(names)} started in the background ({cfg.sf_jobs} processes; "
        f"log {folder / 'stderr.txt'})"
    )
    return _SfJob(proc, folder, names)


def finish_statsforecast(
    job: _SfJob | None, datas: dict[str, BenchData], cfg: BenchConfig, progress: Callable[[str], None]
) -> tuple[list[pd.DataFrame], list[dict]]:
    """Wait for the runner and score its forecasts (nothing, with a message, when it failed)."""
    if job is None:
        return [], []
    try:
        if job.proc.poll() is None:
            progress("waiting for statsforecast")
        if job.proc.wait() != 0:
            progress(f"statsforecast skipped: the runner failed:\n{(job.folder / 'stderr.txt').read_text()[-2000:]}")
            return [], []
        fc_rows, t_rows = pd.read_parquet(job.folder / "fc.parquet"), pd.read_parquet(job.folder / "t.parquet")
    finally:
        shutil.rmtree(job.folder, ignore_errors=True)
    scores, times = [], []
    for frame in (fc_rows, t_rows):
        frame["origin"] = frame["origin"].to_numpy().astype("datetime64[us]")
    for (name, h, lv, origin, model), rows in fc_rows.groupby(["dataset", "h", "level", "origin", "model"], sort=True):
        train, actual = split(datas[name], lv, origin, int(h))
        fc = forecast_from_intervals(rows, model=model, n_draws=cfg.n_draws)
        meta = dict(dataset=name, h=int(h), origin=origin, level=lv, model=model, approach="direct", regressors="")
        scores.append(_score(fc, actual, train, **meta))
    times = [
        dict(r, approach="direct", regressors="")
        for r in t_rows[["dataset", "h", "origin", "level", "model", "seconds", "cpu_seconds"]].to_dict("records")
    ]
    progress(f"statsforecast {', '.join(job.names)}: {t_rows['cpu_seconds'].sum():.0f} CPU s of fitting in all")
    return scores, times


# --------------------------------------------------------------------------- the run


def run_benchmark(
    cfg: BenchConfig, *, progress: Callable[[str], None] = _stderr, while_waiting: Callable[[], None] | None = None
) -> pd.DataFrame:
    """Run every dataset x horizon x origin and return the summary table (one row per
    dataset, horizon, level, model and approach; columns in bench/README.md).

    ``while_waiting`` is called after the project's models are done and before waiting for
    statsforecast (the HierarchicalBayes timing table runs there, on the core left free)."""
    unknown = sorted(set(cfg.models) - set(ALL_MODELS))
    if unknown:
        raise ConfigError(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(ALL_MODELS)}")
    datas, plans = {}, {}
    for name in cfg.datasets:
        t0 = time.perf_counter()
        data = datas[name] = load_data(name, cfg)
        progress(
            f"{name}: {data.weeks_note}, {data.frames['agent']['unique_id'].nunique()} agents "
            f"({time.perf_counter() - t0:.1f}s to load)"
        )
        for h in cfg.horizons:
            origins = choose_origins(data.grid, h=h, n_origins=cfg.n_origins, step=cfg.step, min_train=cfg.min_train)
            if len(origins) < cfg.n_origins:
                progress(
                    f"{name} h={h}: only {len(origins)} of {cfg.n_origins} origins have {cfg.min_train} weeks "
                    f"of history in {len(data.grid)} weeks"
                )
            if len(origins):
                plans[(name, h)] = origins
    scores, times = [], []
    job = start_statsforecast(datas, plans, cfg, progress)
    try:
        for (name, h), origins in plans.items():
            for i, origin in enumerate(origins, 1):
                progress(f"{name} h={h} origin {i}/{len(origins)} ({pd.Timestamp(origin).date()})")
                s, t = run_origin(datas[name], origin, h, cfg, progress)
                scores += s
                times += t
        if while_waiting is not None:
            while_waiting()
    except BaseException:
        if job is not None:  # do not leave the runner behind
            job.proc.kill()
            job.proc.wait()
            shutil.rmtree(job.folder, ignore_errors=True)
        raise
    s, t = finish_statsforecast(job, datas, cfg, progress)
    scores += s
    times += t
    if not scores:
        raise ConfigError("nothing was scored: check --datasets, --horizons and --models")
    return summary_table(pd.concat(scores, ignore_index=True), pd.DataFrame(times))


KEYS = ["dataset", "h", "level", "model", "approach"]


def summary_table(scores: pd.DataFrame, times: pd.DataFrame) -> pd.DataFrame:
    """Pool per-series scores and per-origin fit times into the benchmark table."""
    rows = []
    for key, g in scores.groupby(KEYS, sort=False):
        s = summarize(g).iloc[0]
        scored = int((g["n"] > 0).sum())
        rows.append(
            dict(
                zip(KEYS, key),
                mase=s["mase"],
                scaled_crps=s["scaled_crps"],
                coverage_80=s["coverage_80"],
                pit_coverage_80=s["pit_coverage_80"],
                coverage_95=s["coverage_95"],
                bias_pct=s["bias_pct"],
                n_series=int(s["n_series"]),
                n_origins=g["origin"].nunique(),
                fallback_pct=100.0 * s["n_fallback"] / scored if scored else np.nan,
                regressors=g["regressors"].iloc[0],
                picks=_picks(g),
            )
        )
    table = pd.DataFrame(rows)
    # a bottom-up parent "falls back" when any child does; report the agents' share instead
    agent = table[table["level"] == "agent"].set_index(["dataset", "h", "model"])["fallback_pct"]
    bu = table["approach"] == "bottom-up"
    table.loc[bu, "fallback_pct"] = agent.reindex(
        pd.MultiIndex.from_frame(table.loc[bu, ["dataset", "h", "model"]])
    ).to_numpy()
    fit = times.groupby(KEYS, sort=False)[["cpu_seconds", "seconds"]].mean()
    fit = fit.rename(columns={"cpu_seconds": "fit_s_per_origin", "seconds": "wall_s_per_origin"}).reset_index()
    table = table.merge(fit, on=KEYS, how="left")
    order = {m: i for i, m in enumerate(LABELS.values())}
    table["_l"] = table["level"].map({lv: i for i, lv in enumerate(LEVELS)})
    table["_m"] = table["model"].map(lambda m: order.get(m.split("-")[0].split("+")[0], 99))
    table["_a"] = table["approach"].map({"truth": 0, "direct": 1, "bottom-up": 2})
    return table.sort_values(["dataset", "h", "_l", "_m", "_a"]).drop(columns=["_l", "_m", "_a"]).reset_index(drop=True)


def _picks(g: pd.DataFrame) -> str:
    """How often each model was picked over the origins (``auto`` rows only; "" otherwise)."""
    if "pick" not in g or g["pick"].isna().all():
        return ""
    per_origin = g.dropna(subset=["pick"]).groupby("origin")["pick"].first()
    counts = per_origin.value_counts()
    return ", ".join(f"{m} x{n}" for m, n in counts.items())


COLUMNS = [
    ("dataset", "dataset", "{}"),
    ("h", "h", "{}"),
    ("level", "level", "{}"),
    ("model", "model", "{}"),
    ("approach", "approach", "{}"),
    ("mase", "MASE", "{:.3f}"),
    ("scaled_crps", "sCRPS", "{:.3f}"),
    ("coverage_80", "cov80", "{:.2f}"),
    ("pit_coverage_80", "PIT80", "{:.2f}"),
    ("coverage_95", "cov95", "{:.2f}"),
    ("bias_pct", "bias %", "{:+.1f}"),
    ("fit_s_per_origin", "fit CPU s/origin", "{:.2f}"),
    ("n_series", "series", "{}"),
    ("n_origins", "origins", "{}"),
    ("fallback_pct", "fallback %", "{:.0f}"),
    ("picks", "auto's picks (origins)", "{}"),
]


def to_markdown(table: pd.DataFrame, columns=COLUMNS) -> str:
    """The table as GitHub markdown (NaN shown as a dash)."""

    def cell(v, fmt):
        return "-" if isinstance(v, float) and np.isnan(v) else fmt.format(v)

    lines = ["| " + " | ".join(c[1] for c in columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for r in table.to_dict("records"):
        lines.append("| " + " | ".join(cell(r[k], fmt) for k, _, fmt in columns) + " |")
    return "\n".join(lines)


COMPETITORS = ("SeasonalNaive", "Prophet", "AutoETS", "AutoARIMA")


def verdicts(table: pd.DataFrame) -> str:
    """Per dataset, horizon and level: the best model on MASE and on sCRPS (the oracle left
    out), and whether the best of the project's own models (CalendarBaseline, Prophet+PE,
    HierBayes; direct or bottom-up) beats each competitor (SeasonalNaive, plain Prophet,
    AutoETS, AutoARIMA, fitted directly) on both."""
    lines = []
    for (ds, h, lv), g in table[table["model"] != "Oracle"].groupby(["dataset", "h", "level"], sort=False):
        name = lambda r: f"{r['model']} ({r['approach']})" if r["approach"] == "bottom-up" else r["model"]  # noqa: E731
        own = g[~g["model"].isin(COMPETITORS)]
        rivals = g[g["model"].isin(COMPETITORS) & (g["approach"] == "direct")]
        parts = []
        for col, what in (("mase", "MASE"), ("scaled_crps", "sCRPS")):
            if g[col].notna().any() and own[col].notna().any():
                best, mine = g.loc[g[col].idxmin()], own.loc[own[col].idxmin()]
                beaten = [r["model"] for _, r in rivals.iterrows() if mine[col] < r[col]]
                lost = [r["model"] for _, r in rivals.iterrows() if not mine[col] < r[col]]
                verdict = f" beats {', '.join(beaten) or 'none'}" + (f", not {', '.join(lost)}" if lost else "")
                parts.append(
                    f"best {what} {name(best)} {best[col]:.3f}; best own {name(mine)} {mine[col]:.3f}"
                    + (verdict if len(rivals) else "")
                )
        if parts:
            lines.append(f"- {ds} h={h} {lv}: " + "; ".join(parts))
    return "\n".join(lines)


BASELINE = "MonthOfQuarterMean"


def _at_or_below(score: float, baseline: float) -> bool:
    """``score <= baseline`` up to floating-point summation order (relative 1e-9).

    When auto picks the baseline itself, its bottom-up sums add the same draws in another order
    and the two scores can differ in the 16th digit (measured: 1.1e-16 on Maven h=13); that is
    the same forecast, not a worse one."""
    return bool(score <= baseline + 1e-9 * max(abs(baseline), 1.0))


def auto_verdicts(table: pd.DataFrame) -> str:
    """Per dataset, horizon and level: does what the review ships (auto) score at or below the
    pooled month-of-quarter baseline on MASE and sCRPS, with 80% coverage in [0.75, 0.85]?"""
    lines = []
    for (ds, h, lv), g in table.groupby(["dataset", "h", "level"], sort=False):
        auto = g[g["model"] == LABELS["auto"]]
        base = g[(g["model"] == BASELINE) & (g["approach"] == "direct")]
        if auto.empty or base.empty:
            continue
        a, b = auto.iloc[0], base.iloc[0]
        checks = [
            ("MASE", _at_or_below(a["mase"], b["mase"]), f"{a['mase']:.3f} vs {b['mase']:.3f}"),
            (
                "sCRPS",
                _at_or_below(a["scaled_crps"], b["scaled_crps"]),
                f"{a['scaled_crps']:.3f} vs {b['scaled_crps']:.3f}",
            ),
            ("cov80", 0.75 <= a["coverage_80"] <= 0.85, f"{a['coverage_80']:.2f}"),
        ]
        ok = all(c[1] for c in checks)
        detail = "; ".join(f"{n} {v}{'' if good else ' (NO)'}" for n, good, v in checks)
        lines.append(f"- {ds} h={h} {lv}: {'ok' if ok else 'NOT MET'}: {detail}; picks {a['picks']}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- HierarchicalBayes scaling


def hb_scaling(
    sizes: tuple[int, ...],
    *,
    methods: dict[str, int],
    cfg: BenchConfig,
    recent_weeks: int = 60,
    progress: Callable[[str], None] = _stderr,
) -> pd.DataFrame:
    """Fit time of HierarchicalBayes on a synthetic organisation of each size.

    ``methods`` maps ``"advi"`` / ``"nuts"`` to the largest size it is run at. The smallest
    size is also fitted on its last ``recent_weeks`` weeks only. Neither method compiles a model
    per fit (:func:`spm_models.models.hierarchical.inference.sample_nuts`): the first fit of the
    run loads (or, once per machine, compiles) the cached density loop.
    """
    from spm_models.models import HierarchicalBayes

    rows = []
    for n in sizes:
        data = load_data("synthetic", dataclasses.replace(cfg, n_agents=n))
        full = data.frames["agent"][["unique_id", "ds", "y"]]
        weeks = np.sort(full["ds"].unique())
        windows = {"full history": None}
        if n == min(sizes):
            windows = {f"last {recent_weeks} weeks": recent_weeks, **windows}
        for history, w in windows.items():
            frame = full if w is None else full[full["ds"] > weeks[-w - 1]]
            for method, largest in methods.items():
                if n > largest:
                    continue
                model = HierarchicalBayes(method=method, groups=data.parents["territory"])
                t0, c0 = time.perf_counter(), cpu_seconds()
                model.fit(frame)
                seconds, cpu = time.perf_counter() - t0, cpu_seconds() - c0
                d = model.diagnostics_
                rows.append(
                    {
                        "agents": n,
                        "series": frame["unique_id"].nunique(),
                        "history": history,
                        "agent_weeks": len(frame),
                        "method": method,
                        "fit_s": cpu,
                        "wall_s": seconds,
                        "sampler": d.get("sampler"),
                        "check": (
                            f"converged={d.get('converged')}, {d.get('iterations')} iterations"
                            if method == "advi"
                            else f"divergences={d.get('divergences')}, max R-hat={d.get('max_rhat', float('nan')):.3f}"
                        ),
                    }
                )
                progress(f"HierBayes {method} at {n} agents, {history}: {seconds:.1f}s ({cpu:.1f} CPU s)")
    return pd.DataFrame(rows)


def _one_blas_thread():
    """One BLAS thread (threadpoolctl, when installed): this process and the statsforecast runner
    share two cores without oversubscribing them, and fit times are single-threaded on both sides."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def parse_args(argv: list[str] | None) -> tuple[BenchConfig, argparse.Namespace]:
    p = argparse.ArgumentParser(description="Forecast accuracy benchmark (see bench/README.md).")
    p.add_argument("--quick", action="store_true", help="2 origins, 12 agents over two years, h=4")
    p.add_argument("--datasets", help="comma-separated: synthetic,maven")
    p.add_argument("--horizons", help="comma-separated weeks, e.g. 4,13")
    p.add_argument("--models", help=f"comma-separated: {','.join(ALL_MODELS)}")
    p.add_argument("--nuts", action="store_true", help="HierarchicalBayes by NUTS instead of ADVI")
    p.add_argument("--hb-seed", type=int, help="HierarchicalBayes' random_state (default 0), to see its seed spread")
    p.add_argument("--agents", type=int, help="agents of the synthetic organisation")
    p.add_argument("--origins", type=int, help="rolling origins per horizon")
    p.add_argument("--sf-jobs", type=int, help="statsforecast worker processes (default 1: with this one, 2 cores)")
    p.add_argument("--no-scaling", action="store_true", help="skip the HierarchicalBayes fit-time table")
    p.add_argument("--scaling-only", action="store_true", help="only the HierarchicalBayes fit-time table")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="folder of the CSV and markdown")
    a = p.parse_args(argv)
    cfg = BenchConfig.quick() if a.quick else BenchConfig()
    over = {
        "datasets": a.datasets and tuple(a.datasets.split(",")),
        "horizons": a.horizons and tuple(int(x) for x in a.horizons.split(",")),
        "models": a.models and tuple(a.models.split(",")),
        "hb_method": "nuts" if a.nuts else None,
        "hb_seed": a.hb_seed,
        "n_agents": a.agents,
        "n_origins": a.origins,
        "sf_jobs": a.sf_jobs,
    }
    over = {k: v for k, v in over.items() if v}
    return dataclasses.replace(cfg, **over), a


def main(argv: list[str] | None = None) -> int:
    cfg, a = parse_args(argv)
    started = time.perf_counter()
    scaling = []
    methods = {"advi": 500, "nuts": 500 if a.nuts else 100}
    run_scaling = lambda: scaling.append(hb_scaling((35, 100, 500), methods=methods, cfg=cfg))  # noqa: E731
    a.out.mkdir(parents=True, exist_ok=True)
    md = ""
    if a.scaling_only:
        with _one_blas_thread():
            run_scaling()
    elif a.quick or a.no_scaling or "hb" not in cfg.models:
        run_scaling = None
    if not a.scaling_only:
        try:
            with _one_blas_thread():
                table = run_benchmark(cfg, while_waiting=run_scaling)
        except SpmError as exc:
            _stderr(f"error: {exc}")
            return 2
        table.to_csv(a.out / "accuracy.csv", index=False)
        md = to_markdown(table) + "\n\n" + verdicts(table) + "\n\n"
        checks = auto_verdicts(table)
        if checks:
            md += f"What the review ships (auto) against the pooled month-of-quarter baseline:\n\n{checks}\n\n"
    if scaling:
        scaling = scaling[0]
        scaling.to_csv(a.out / "hb_scaling.csv", index=False)
        md += "HierarchicalBayes fit time (synthetic, 3 years):\n\n" + to_markdown(
            scaling,
            [
                ("agents", "agents", "{}"),
                ("series", "series", "{}"),
                ("history", "history", "{}"),
                ("agent_weeks", "agent-weeks", "{:,}"),
                ("method", "method", "{}"),
                ("fit_s", "fit CPU s", "{:.1f}"),
                ("wall_s", "wall s", "{:.1f}"),
                ("check", "check", "{}"),
            ],
        )
    (a.out / ("hb_scaling.md" if a.scaling_only else "accuracy.md")).write_text(md + "\n")
    print(md)
    _stderr(f"done in {time.perf_counter() - started:.0f}s; wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
