"""The review's reports on a Dask cluster (spm_models.review.cluster).

Fast tests check the options and the batching. The cluster tests (marked slow: each starts
worker processes and report kernels, 30 to 60 s on two cores) run a five-agent review on a
two-worker LocalCluster and check that it makes the same pages as one machine (every page equal
once the random cell ids and the run folder's path are set aside, figures included), that
killing a worker midway loses no report, and that failure isolation and ``--only-failed`` hold
on the cluster.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spm_models.cli import main
from spm_models.data.validation import validate
from spm_models.exceptions import ConfigError
from spm_models.review.cluster import check_shared, plan_batches
from spm_models.review.outlook import data_last_day
from spm_models.review.pipeline import run_review
from spm_models.review.runner import ReportTask
from spm_models.review.settings import ReviewConfig, check_cluster, load_config
from spm_models.synthetic.generator import generate_organisation

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE.parents[1] / "notebooks" / "reports"
#: A quick model: these tests are about where reports run, not what the model says.
FAST = ReviewConfig(model="CalendarBaseline", recalibrate=False, n_draws=200)
CELL_ID = re.compile(r'id="cell-id=[0-9a-f]+"')


def _task(rid: str, kind: str) -> ReportTask:
    return ReportTask(rid, f"{kind}_report", {}, rid, kind, f"{rid}.html", f"{rid}.ipynb")


def test_cluster_option_names_local_or_a_scheduler_address():
    assert check_cluster(None) is None
    assert check_cluster("local") == "local"
    assert check_cluster("tcp://scheduler:8786") == "tcp://scheduler:8786"
    for bad in ("scheduler:8786", "http://x:1", "tcp://", "lokal", ""):
        with pytest.raises(ConfigError, match="cluster must be 'local'"):
            check_cluster(bad)
    with pytest.raises(ConfigError, match="invalid review settings: cluster must be"):
        ReviewConfig(cluster="somewhere")
    # where reports run is not what they show: it is no part of the run's identity
    assert ReviewConfig(cluster="local").key() == ReviewConfig().key()


def test_cluster_in_the_settings_file(tmp_path):
    f = tmp_path / "review.toml"
    f.write_text('cluster = "tcp://10.0.0.5:8786"\n', encoding="utf-8")
    assert load_config(f).cluster == "tcp://10.0.0.5:8786"
    assert load_config(f, cluster="local").cluster == "local"  # the command line wins


def test_a_bad_cluster_option_is_exit_2_before_anything_runs(tmp_path, capsys):
    code = main(["review", "--cluster", "scheduler:8786", "--db", str(tmp_path / "none.duckdb")])
    err = capsys.readouterr().err
    assert code == 2 and "cluster must be 'local'" in err and "Traceback" not in err


def test_batches_cover_every_report_once_monthly_first():
    tasks = [_task(f"agent:A{i:04d}", "agent") for i in range(50)] + [_task("monthly", "monthly")]
    batches = plan_batches(tasks, slots=2)
    flat = [t.report_id for b in batches for t in b]
    assert sorted(flat) == sorted(t.report_id for t in tasks) and len(flat) == len(set(flat))
    assert flat[0] == "monthly"
    assert len(batches) == 8 and max(map(len, batches)) == 7  # about four per slot
    assert max(len(b) for b in plan_batches(tasks * 40, slots=2)) == 16  # capped, so a lost worker costs little
    assert plan_batches([], slots=4) == []


class _Workers:
    """Stands in for a distributed.Client: ``run`` calls the function as each worker would."""

    def __init__(self, sees: dict[str, bool]):
        self.sees = sees

    def run(self, fn, path):
        return {w: fn(path) and sees for w, sees in self.sees.items()}


def test_a_worker_that_cannot_see_the_run_folder_is_one_clear_error(tmp_path):
    check_shared(_Workers({"tcp://a:1": True, "tcp://b:1": True}), tmp_path)
    with pytest.raises(ConfigError, match=r"1 Dask worker\(s\) \(tcp://b:1\) cannot see the review's run folder"):
        check_shared(_Workers({"tcp://a:1": True, "tcp://b:1": False}), tmp_path)
    assert list(tmp_path.iterdir()) == []  # the probe file is gone either way


# ---------------------------------------------------------------------------- on a cluster


@pytest.fixture(scope="module")
def org():
    return validate(generate_organisation(5, years=2, seed=3).dataset)


def _review(org, out: Path, **kw):
    return run_review(
        dataset=org,
        out=out,
        config=FAST,
        progress=False,
        log=open(out.parent / f"{out.name}.log", "w"),
        today=data_last_day(org) + pd.Timedelta(days=1),
        **kw,
    )


def _pages(res, root: Path) -> dict[str, str]:
    """Every report page of a run, with what differs between any two runs set aside."""
    pages = {}
    for r in res.manifest["reports"]:
        html = (res.run_folder / r["output"]).read_text(encoding="utf-8")
        pages[r["id"]] = CELL_ID.sub("", html).replace(str(root), "<root>")
    return pages


@pytest.fixture(scope="module")
def single(org, tmp_path_factory):
    root = tmp_path_factory.mktemp("single")
    (root / "reports").mkdir()
    return root, _review(org, root / "reports", workers=2)


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None, processes=True) as c:
        yield c


@pytest.mark.slow
def test_a_local_cluster_makes_the_same_pages_as_one_machine(org, single, tmp_path):
    root0, one = single
    (tmp_path / "reports").mkdir()
    res = _review(org, tmp_path / "reports", workers=2, cluster="local")
    assert one.exit_code == 0 and res.exit_code == 0
    assert res.timings["batches"] >= 2 and res.timings["worker_cpu_s"] > 0
    expected, got = _pages(one, root0), _pages(res, tmp_path)
    assert (
        sorted(got) == sorted(expected) and len(got) == 7
    )  # 4 agents (one has left), 2 territories, the monthly review
    for rid in expected:
        assert got[rid] == expected[rid], f"{rid} differs between the cluster and one machine"
    heads = {r["id"]: r["headline"] for r in one.manifest["reports"]}
    assert {r["id"]: r["headline"] for r in res.manifest["reports"]} == heads
    assert (res.run_folder / "index.html").is_file()


@pytest.mark.slow
def test_killing_a_worker_midway_loses_no_report(org, single, cluster, tmp_path):
    from distributed import Client

    root0, one = single
    out = tmp_path / "reports"
    out.mkdir()
    journal = out / ".spm" / f"{one.month}.staging" / "progress.jsonl"
    killed: dict = {}

    def kill_one_busy_worker() -> None:
        with Client(cluster.scheduler_address) as c:
            pids = c.run(os.getpid)
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline:
                busy = [w for w, keys in c.processing().items() if keys]
                # midway: a report is done, and a worker is in the middle of another batch
                if journal.is_file() and journal.read_text().strip() and busy:
                    killed["worker"], killed["pid"] = busy[0], pids[busy[0]]
                    os.kill(pids[busy[0]], signal.SIGKILL)
                    return
                time.sleep(0.2)

    killer = threading.Thread(target=kill_one_busy_worker)
    killer.start()
    res = _review(org, out, cluster=cluster.scheduler_address)
    killer.join()
    assert killed, "no worker was killed: the review ended before one was busy"
    assert res.exit_code == 0 and res.manifest["summary"] == one.manifest["summary"]
    assert _pages(res, tmp_path) == _pages(one, root0)
    with Client(cluster.scheduler_address) as c:
        c.wait_for_workers(2, timeout=60)  # the nanny restarted it
        assert killed["pid"] not in c.run(os.getpid).values()


@pytest.mark.slow
def test_failure_isolation_and_only_failed_on_the_cluster(cluster, tmp_path):
    org = validate(generate_organisation(6, years=2, seed=5).dataset)  # A0001 to A0003 all work here
    templates = tmp_path / "templates"
    shutil.copytree(TEMPLATES, templates)
    shutil.copy(HERE / "broken_report.ipynb", templates / "agent_report.ipynb")
    out = tmp_path / "reports"
    out.mkdir()
    subset = dict(agents=["A0001", "A0002", "A0003"], cluster=cluster.scheduler_address)
    res = _review(org, out, timeout=5, templates_dir=templates, **subset)
    by_id = {r["id"]: r for r in res.manifest["reports"]}
    assert res.exit_code == 1 and by_id["agent:A0001"]["status"] == "ok"
    assert "deliberately broken report for A0002" in by_id["agent:A0002"]["error"]
    assert "timed out after 5 s" in by_id["agent:A0003"]["error"]
    published = json.loads((res.run_folder / "manifest.json").read_text())
    assert published["summary"]["failed"] == 2

    fixed = _review(org, out, only_failed=True, templates_dir=TEMPLATES, **subset)
    assert sorted(r.report_id for r in fixed.executed) == ["agent:A0002", "agent:A0003"]
    assert fixed.exit_code == 0 and fixed.manifest["summary"]["reused"] == 1


# ---------------------------------------------------------------------------- model work as tasks


class _CountingPool:
    """A ClusterPool that counts the tasks it submits, by function."""

    def __init__(self, client):
        from spm_models.review.cluster import ClusterPool

        self.pool, self.calls = ClusterPool(client), {}

    def submit(self, fn, *args, **kwargs):
        self.calls[fn.__name__] = self.calls.get(fn.__name__, 0) + 1
        return self.pool.submit(fn, *args, **kwargs)


def _forecast_inputs(n_agents: int = 12):
    from spm_models.review import outlook as ol
    from spm_models.review.freshness import choose_month

    data = validate(generate_organisation(n_agents, years=2, seed=3).dataset)
    month, _ = choose_month(data)
    cal = ol.review_calendar(month, data_end=ol.data_last_day(data), calendar=data.fiscal_calendar)
    asof = ol.as_of_dataset(data, cal.as_of)
    agents = ol.review_agents(asof["agents"], cal.as_of)
    agents = agents.assign(agent_id=agents["agent_id"].astype(str), territory_id=agents["territory_id"].astype(str))
    return asof, agents, cal


@pytest.mark.slow
def test_the_model_choice_backtests_run_as_tasks_with_the_choice_of_one_machine(cluster):
    from distributed import Client

    from spm_models.review.forecasting import candidate_models, review_forecast

    asof, agents, cal = _forecast_inputs()
    config = ReviewConfig(recalibrate=False, n_draws=200, auto_budget_seconds=600)  # auto: every candidate
    here = review_forecast(asof, agents, cal, config, learn_calibration=False)
    with Client(cluster.scheduler_address) as client:
        pool = _CountingPool(client)
        there = review_forecast(asof, agents, cal, config, learn_calibration=False, executor=pool)
    n_candidates = len(candidate_models(config, cal.calendar, agents, asof))
    assert pool.calls == {"_score_origin": n_candidates * len(here.choice.origins)} and n_candidates >= 4
    assert there.picks == here.picks and there.choice.reasons == here.choice.reasons
    assert (here.choice.scores["status"] != "").all()  # every candidate scored or left out with a reason
    pd.testing.assert_frame_equal(
        there.choice.scores.drop(columns="seconds"), here.choice.scores.drop(columns="seconds")
    )
    for level in ("agent", "territory", "company"):
        np.testing.assert_array_equal(there.forecasts[level].draws, here.forecasts[level].draws)


@pytest.mark.slow
def test_the_hierarchical_model_in_parts_as_tasks_is_coherent_and_keeps_the_common_factor(cluster, monkeypatch):
    """Two parts fitted on the cluster give the draws of the same parts fitted here; territory
    and company draw k are sums of the agents' draw k; the recalibration's common factor F_k
    multiplies draw k of every agent of both parts alike, as after a joint fit."""
    from distributed import Client

    from spm_models.evaluation.quota.calibration import QuotaCalibration
    from spm_models.review import forecasting
    from spm_models.review.recalibration import QuotaRecalibration

    factor = QuotaRecalibration(QuotaCalibration(0.0, 0.3, None, 200, 4), 50, ("2024-Q1",), 6, 100, 0.0)
    monkeypatch.setattr(forecasting, "learn_recalibration", lambda *a, **k: (factor, pd.DataFrame()))
    asof, agents, cal = _forecast_inputs()
    hb = dict(method="advi", draws=200, chains=1, advi_iterations=3000)
    config = ReviewConfig(model="HierarchicalBayes", model_params=hb, n_draws=300, fit_partitions=2)
    here = forecasting.review_forecast(asof, agents, cal, config)
    with Client(cluster.scheduler_address) as client:
        pool = _CountingPool(client)
        there = forecasting.review_forecast(asof, agents, cal, config, executor=pool)
    assert pool.calls == {"fit_partition": 2} and len(there.partitions["HierarchicalBayes"]) == 2
    assert there.describe()["fit_partitions"] == {"HierarchicalBayes": 2}
    for level in ("agent", "territory", "company"):
        np.testing.assert_array_equal(there.forecasts[level].draws, here.forecasts[level].draws)
    fc = there.forecasts
    ids = list(fc["agent"].unique_ids.astype(str))
    assert ids == sorted(agents["agent_id"])
    parts = [set(m.unique_ids_) for m in there.partitions["HierarchicalBayes"]]
    territory_of = dict(zip(agents["agent_id"], agents["territory_id"]))
    for part in parts:  # whole territories in each part, and none in two
        others = set(ids) - part
        assert not {territory_of[a] for a in part} & {territory_of[a] for a in others}
    # coherent: every level's draw k is the sum of its agents' draw k (to float rounding)
    np.testing.assert_allclose(fc["company"].draws[0], fc["agent"].draws.sum(axis=0), rtol=1e-12)
    for i, t in enumerate(fc["territory"].unique_ids.astype(str)):
        rows = [k for k, a in enumerate(ids) if territory_of[a] == t]
        np.testing.assert_allclose(fc["territory"].draws[i], fc["agent"].draws[rows].sum(axis=0), rtol=1e-12)
    # one common factor per draw for every agent of both parts
    raw = there.raw["agent"].draws
    with np.errstate(invalid="ignore"):  # weeks without a booking: 0 / 0
        per_draw = np.nanmedian(fc["agent"].draws / raw, axis=(0, 1))
    assert per_draw.std() > 0.1  # the factor moves the draws (spread 0.3)
    np.testing.assert_allclose(fc["agent"].draws, raw * per_draw, rtol=1e-9)


@pytest.mark.slow
def test_spm_review_on_a_cluster_sends_the_model_choice_there_and_records_the_same_choice(org, cluster, tmp_path):
    """Through run_review: the backtests go to the cluster (its scheduler saw them) and the run
    records the model choice of one machine."""
    from distributed import Client

    config = ReviewConfig(auto_candidates=("MonthOfQuarterMean", "CalendarBaseline"), recalibrate=False, n_draws=200)
    runs = {}
    for where in ("here", "cluster"):
        out = tmp_path / where
        out.mkdir()
        runs[where] = run_review(
            dataset=org,
            out=out,
            config=config,
            agents=["A0001"],
            progress=False,
            log=open(tmp_path / f"{where}.log", "w"),
            today=data_last_day(org) + pd.Timedelta(days=1),
            **({"cluster": cluster.scheduler_address} if where == "cluster" else {"workers": 1}),
        )
    with Client(cluster.scheduler_address) as c:
        seen = c.run_on_scheduler(lambda dask_scheduler: sorted(dask_scheduler.task_prefixes))
    assert "score_origin" in seen and "spm-reports" in seen  # the backtests and the reports
    here, there = (runs[w].manifest["model_choice"] for w in ("here", "cluster"))
    assert there["picks"] == here["picks"] and there["reasons"] == here["reasons"]
    strip = [{k: v for k, v in row.items() if k != "seconds"} for row in here["scores"]]
    assert [{k: v for k, v in row.items() if k != "seconds"} for row in there["scores"]] == strip
    assert runs["here"].exit_code == 0 and runs["cluster"].exit_code == 0
