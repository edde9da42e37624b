"""Monthly review cost: the fork-server review against a naive papermill baseline.

Usage::

    .venv/bin/python bench/review.py                       # Maven (39 reports) and 200 synthetic agents
    .venv/bin/python bench/review.py --agents 200 --skip-maven --naive-sample 6
    .venv/bin/python bench/review.py --workers 2 --out bench/results/review.json

For each data set the review runs in stages, each timed (wall) and its CPU counted (this
process, plus the kernel server and its kernels, which the kernel server reaps with
``wait4``):

* ``fit``: :func:`spm_models.review.artifacts.build_artifacts` (the one model fit, all
  tables);
* ``kernel server``: the fork server's start (imports, artifacts loaded into memory), once;
* ``reports``: every report notebook executed (papermill, fork-server kernels) and exported
  to HTML, ``--workers`` at a time; per report the mean ``kernel start`` (fork, handshake,
  parameters: overlapped with other reports' execution), ``execute`` (cells and shutdown)
  and ``export`` time;
* ``site``: index and manifest.

*Marginal cost per report* = CPU seconds of the reports stage (all processes, the kernel
server's start excluded) / reports: what one more report costs, whatever the core count.

``plain kernels`` runs a sample of the same reports (artifacts fitted once) with ordinary
kernels, one new Python process per report, to separate what the fork server saves from
what fitting once saves.

The naive baseline is what a first implementation does: one plain ``papermill`` run per
report in a fresh kernel process (``python -m ipykernel_launcher``) whose notebook loads the
warehouse and fits the model itself (``build_artifacts`` inside the kernel) before the same
report cells; then the same HTML export. It runs on ``--naive-sample`` reports (agents, one
territory, the monthly review) with the same number of workers, and its total is
extrapolated to all reports (wall per report x reports), stated as an estimate.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import resource
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _cpu(who: int) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


class Meter:
    """Wall and CPU (this process and waited-for children) of a block."""

    def __enter__(self):
        self.w, self.s, self.c = time.perf_counter(), _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN)
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.w
        self.cpu_self = _cpu(resource.RUSAGE_SELF) - self.s
        self.cpu_children = _cpu(resource.RUSAGE_CHILDREN) - self.c


def _dataset(name: str, agents: int, tmp: Path):
    from spm_models.data.sources.maven import load_maven
    from spm_models.data.validation import validate
    from spm_models.data.warehouse import Warehouse
    from spm_models.synthetic.generator import generate_organisation

    ds = (
        validate(load_maven(ROOT / "data" / "examples" / "maven_crm"))
        if name == "maven"
        else validate(generate_organisation(agents, years=3, seed=1).dataset)
    )
    db = tmp / f"{name}.duckdb"
    Warehouse(db).ingest(ds)
    return Warehouse(db).load(), db


def optimized(ds, tmp: Path, *, workers: int) -> dict:
    from spm_models.review.artifacts import build_artifacts
    from spm_models.review.outlook import default_month
    from spm_models.review.pipeline import plan_reports
    from spm_models.review.runner import execute_reports
    from spm_models.review.site import headlines
    from spm_models.review.views import load_run

    month = default_month(ds)
    run_folder = tmp / "optimized" / month
    art = run_folder / "artifacts"
    with Meter() as fit:
        build_artifacts(ds, month=month, out_dir=art, runs_root=tmp / "optimized", force=True)
    run = load_run(art)
    tasks = plan_reports(run.tables, art)
    with Meter() as rep:
        results, setup = execute_reports(tasks, run_folder=run_folder, artifacts_dir=art, workers=workers, timeout=600)
    with Meter() as site:
        headlines(run.tables)
    failed = [r.report_id for r in results if r.status != "ok"]
    n = len(results)
    # children of this process during the reports stage = the kernel server (imports) + its kernels
    server_start_cpu = rep.cpu_children - setup.get("kernel_cpu_s", 0.0)
    reports_cpu = rep.cpu_self + setup.get("kernel_cpu_s", 0.0)
    mean = lambda key: sum(r.timings.get(key, 0.0) for r in results) / max(n, 1)  # noqa: E731
    return {
        "month": month,
        "reports": n,
        "failed": failed,
        "workers": workers,
        "fit_s": round(fit.wall, 2),
        "kernel_server_start_s": setup.get("kernel_server_start"),
        "kernel_server_start_cpu_s": round(server_start_cpu, 2),
        "reports_wall_s": round(rep.wall, 2),
        "kernel_start_mean_s": round(mean("kernel_start"), 3),
        "queued_mean_s": round(mean("queued"), 3),
        "execute_mean_s": round(mean("execute"), 3),
        "export_mean_s": round(mean("export"), 3),
        "marginal_cpu_per_report_s": round(reports_cpu / max(n, 1), 3),
        "kernel_cpu_per_report_s": round(setup.get("kernel_cpu_s", 0.0) / max(n, 1), 3),
        "orchestrator_cpu_per_report_s": round(rep.cpu_self / max(n, 1), 3),
        "total_wall_s": round(fit.wall + rep.wall + site.wall, 2),
    }


def plain_kernels(ds, tmp: Path, *, workers: int, sample: int) -> dict:
    """The same pipeline (artifacts fitted once) with ordinary kernels: one new process per report.

    Isolates what the fork server saves from what fitting once saves.
    """
    from spm_models.review.outlook import default_month
    from spm_models.review.pipeline import plan_reports
    from spm_models.review.runner import execute_reports
    from spm_models.review.views import load_run

    run_folder = tmp / "optimized" / default_month(ds)
    art = run_folder / "artifacts"
    tasks = plan_reports(load_run(art).tables, art)
    tasks = tasks[: max(1, sample - 2)] + [t for t in tasks if t.kind != "agent"][:1] + tasks[-1:]
    with Meter() as m:
        results, _ = execute_reports(
            tasks, run_folder=tmp / "plain", artifacts_dir=art, workers=workers, timeout=600, kernel="plain"
        )
    n = len(results)
    return {
        "sample": n,
        "failed": [r.report_id for r in results if r.status != "ok"],
        "kernel_start_mean_s": round(sum(r.timings.get("kernel_start", 0.0) for r in results) / n, 3),
        "execute_mean_s": round(sum(r.timings.get("execute", 0.0) for r in results) / n, 3),
        "cpu_per_report_s": round((m.cpu_self + m.cpu_children) / n, 2),
        "wall_per_report_s": round(m.wall / n, 2),
    }


NAIVE_FIT = (
    "import tempfile\n"
    "from spm_models.review.artifacts import build_artifacts\n"
    "from spm_models.data.warehouse import Warehouse\n"
    "run_dir = tempfile.mkdtemp() + '/artifacts'\n"
    "build_artifacts(Warehouse(naive_db).load(), month=naive_month, out_dir=run_dir)"
)


def naive(db: Path, ds, tmp: Path, *, workers: int, sample: int, total_reports: int) -> dict:
    import nbformat
    import papermill
    from nbformat.v4 import new_code_cell

    from spm_models.review.export import to_html, write_atomic
    from spm_models.review.outlook import default_month
    from spm_models.review.params import template_path

    month = default_month(ds)
    agents = ds["agents"]["agent_id"].astype(str).tolist()
    terr = ds["agents"]["territory_id"].astype(str).iloc[0]
    jobs = [("agent_report", {"agent_id": a}) for a in agents[: max(1, sample - 2)]] + [
        ("territory_report", {"territory_id": terr}),
        ("monthly_review", {}),
    ]
    templates = {}
    for name in {j[0] for j in jobs}:
        nb = nbformat.read(template_path(name), as_version=4)
        nb.cells.insert(1, new_code_cell(NAIVE_FIT))
        templates[name] = nb
    out = tmp / "naive"
    out.mkdir(parents=True, exist_ok=True)

    def one(i_job):
        i, (name, params) = i_job
        t = time.perf_counter()
        nb = papermill.execute_notebook(
            copy.deepcopy(templates[name]),
            str(out / f"{i}.ipynb"),
            parameters={"run_dir": "", **params, "naive_db": str(db), "naive_month": month},
            progress_bar=False,
            request_save_on_cell_execute=False,
            kernel_name="python3",
        )
        write_atomic(out / f"{i}.html", to_html(nb, title=name))
        return time.perf_counter() - t

    with Meter() as m:
        with ThreadPoolExecutor(workers) as pool:
            walls = list(pool.map(one, enumerate(jobs)))
    per_report_wall = m.wall / len(jobs) * workers  # one report's wall time on one worker
    return {
        "sample": len(jobs),
        "workers": workers,
        "sample_wall_s": round(m.wall, 2),
        "report_wall_mean_s": round(sum(walls) / len(walls), 2),
        "cpu_per_report_s": round((m.cpu_self + m.cpu_children) / len(jobs), 2),
        "estimated_total_wall_s": round(per_report_wall * total_reports / workers, 1),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, default=200, help="agents of the synthetic organisation")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument(
        "--naive-sample", type=int, default=6, help="reports run by the naive baseline (its total is extrapolated)"
    )
    ap.add_argument("--skip-maven", action="store_true")
    ap.add_argument("--skip-synthetic", action="store_true")
    ap.add_argument("--skip-naive", action="store_true")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "review.json")
    args = ap.parse_args(argv)
    results = {
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(), "load_avg_at_start": os.getloadavg()},
        "runs": [],
    }
    sets = ([] if args.skip_maven else [("maven", 0)]) + ([] if args.skip_synthetic else [("synthetic", args.agents)])
    for name, n in sets:
        with tempfile.TemporaryDirectory(prefix="spmrev-") as tmp:
            tmp = Path(tmp)
            ds, db = _dataset(name, n, tmp)
            print(f"[{name}] data ready ({len(ds['agents'])} agents); optimized review ...", file=sys.stderr)
            row = {
                "dataset": name if name == "maven" else f"synthetic {n} agents",
                "optimized": optimized(ds, tmp, workers=args.workers),
            }
            print(json.dumps(row, indent=2), file=sys.stderr)
            if not args.skip_naive:
                print(f"[{name}] plain kernels on {args.naive_sample} reports ...", file=sys.stderr)
                row["plain_kernels"] = plain_kernels(ds, tmp, workers=args.workers, sample=args.naive_sample)
                print(f"[{name}] naive baseline on {args.naive_sample} reports ...", file=sys.stderr)
                row["naive"] = naive(
                    db,
                    ds,
                    tmp,
                    workers=args.workers,
                    sample=args.naive_sample,
                    total_reports=row["optimized"]["reports"],
                )
                row["speedup_total_wall"] = round(
                    row["naive"]["estimated_total_wall_s"] / row["optimized"]["total_wall_s"], 1
                )
                row["speedup_cpu_per_report"] = round(
                    row["naive"]["cpu_per_report_s"] / row["optimized"]["marginal_cpu_per_report_s"], 1
                )
            results["runs"].append(row)
            print(json.dumps(row, indent=2), file=sys.stderr)
    results["machine"]["load_avg_at_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(_table(results))
    return 0


def _table(results: dict) -> str:
    lines = [
        "| data | reports | workers | total wall (s) | fit (s) | kernel server start (s) | kernel start / report (s) "
        "| execute / report (s) | export / report (s) | CPU / report (s) | naive CPU / report (s) "
        "| naive total, est. (s) | speed-up (wall) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results["runs"]:
        o, nv = r["optimized"], r.get("naive", {})
        lines.append(
            f"| {r['dataset']} | {o['reports']} | {o['workers']} | {o['total_wall_s']} | {o['fit_s']} | "
            f"{o['kernel_server_start_s']} | {o.get('kernel_start_mean_s', '-')} | "
            f"{o['execute_mean_s']} | {o['export_mean_s']} | {o['marginal_cpu_per_report_s']} | "
            f"{nv.get('cpu_per_report_s', '-')} | "
            f"{nv.get('estimated_total_wall_s', '-')} | {r.get('speedup_total_wall', '-')} |"
        )
    lines += [
        "",
        "| data | plain kernels: kernel start / report (s) | CPU / report (s) | fork server: kernel start / report "
        "(s) | CPU / report (s) |",
        "|---|---|---|---|---|",
    ]
    for r in results["runs"]:
        if "plain_kernels" in r:
            p, o = r["plain_kernels"], r["optimized"]
            lines.append(
                f"| {r['dataset']} | {p['kernel_start_mean_s']} | {p['cpu_per_report_s']} | "
                f"{o['kernel_start_mean_s']} | {o['marginal_cpu_per_report_s']} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
