"""Scale: ingest, KPIs and the monthly review for 1,000, 5,000 and 10,000 agents over three years.

Usage::

    .venv/bin/python bench/scale.py                                 # 1000 5000 10000 agents
    .venv/bin/python bench/scale.py --sizes 1000 --reports 16 --workers 1 2
    .venv/bin/python bench/scale.py --cache /tmp/scale              # reuse warehouses built earlier

Per size, each stage runs in its own process, so the peak memory (maximum resident set size) of
a stage is that stage's alone:

* ``ingest``: a synthetic organisation (three years, seed 1) written as CSV and ingested
  (read, validate, one DuckDB transaction). The warehouse is kept in ``--cache``; a later run
  reuses it and prints the ingest time it measured then, marked ``(cached)``.
* ``KPI``: what ``spm kpis`` does: the columns the KPIs read loaded from the warehouse, ids
  dictionary-encoded by DuckDB (``Warehouse.load(columns=kpi_columns(), dictionary=True)``),
  then every KPI at every level, weekly grain (the largest frame), into one long frame held in
  memory: wall time, rows and the process's peak memory (maximum resident set size), and the
  peak of the load alone.
* ``review``: the artifacts built once (model ``CalendarBaseline``, 200 draws, no recalibration:
  this bench measures the reports' scale-out, not the model; ``spm review`` chooses its model by
  a backtest), then a **sample** of ``--reports`` agent reports run on a LocalCluster of 1 and of
  2 workers (:func:`spm_models.review.cluster.execute_on_cluster`). Printed per worker count:
  the sample's wall time, CPU seconds per report (worker processes and their kernel servers),
  the client's peak memory and each worker's (the worker process and its kernel server), and
  the whole review's wall time **extrapolated** from the sample (the artifacts, one kernel
  server start, then every report of the month at the sample's pace without that start), stated
  as such. The artifacts are kept in ``--cache`` too and reused (time marked ``(cached)``).

The machine is shared and has 2 cores: throughput numbers move with whatever else runs. The
header prints the load average at the start.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZES = (1000, 5000, 10000)
HERE = Path(__file__).resolve().parent


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def stage_ingest(n: int, folder: Path) -> dict:
    from spm_models.data.ingest import ingest_paths
    from spm_models.synthetic.generator import generate_organisation

    t = time.perf_counter()
    org = generate_organisation(n, years=3, seed=1)
    generate = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as tmp:
        org.write(Path(tmp) / "csv")
        del org
        t = time.perf_counter()
        ingest_paths([Path(tmp) / "csv"], db=folder / "w.duckdb", source="canonical")
        ingest = time.perf_counter() - t
    return {"generate_s": generate, "ingest_s": ingest, "ingest_peak_mib": _peak_mib()}


def stage_kpi(n: int, folder: Path) -> dict:
    from spm_models.data.warehouse import Warehouse
    from spm_models.kpi import compute_kpis, kpi_columns

    t = time.perf_counter()
    ds = Warehouse(folder / "w.duckdb").load(columns=kpi_columns(), dictionary=True)
    load, load_peak = time.perf_counter() - t, _peak_mib()
    t = time.perf_counter()
    frame = compute_kpis(ds, grain="week")
    return {
        "load_s": load,
        "load_peak_mib": load_peak,
        "kpi_s": time.perf_counter() - t,
        "kpi_rows": len(frame),
        "kpi_frame_mib": frame.memory_usage(deep=True).sum() / 2**20,
        "kpi_peak_mib": _peak_mib(),
    }


def stage_review(n: int, folder: Path, *, sample: int, workers: list[int]) -> dict:
    from distributed import Client, LocalCluster

    from spm_models.data.warehouse import Warehouse
    from spm_models.review.artifacts import build_artifacts
    from spm_models.review.cluster import execute_on_cluster
    from spm_models.review.freshness import choose_month
    from spm_models.review.pipeline import plan_reports
    from spm_models.review.settings import ReviewConfig
    from spm_models.review.views import load_run

    ds = Warehouse(folder / "w.duckdb").load()
    month, _ = choose_month(ds)
    config = ReviewConfig(model="CalendarBaseline", n_draws=200, recalibrate=False)
    run_folder = folder / "run"
    meta = folder / "artifacts.json"
    t = time.perf_counter()
    info = build_artifacts(ds, month=month, out_dir=run_folder / "artifacts", config=config)
    took = time.perf_counter() - t
    if info.get("reused") and meta.is_file():  # built by an earlier run of the bench: its time then
        out: dict = {"month": month, **json.loads(meta.read_text()), "artifacts_cached": True}
    else:
        out = {"month": month, "artifacts_s": took, "artifacts_cached": False}
        meta.write_text(json.dumps({"artifacts_s": took}))
    del ds
    run = load_run(run_folder / "artifacts")
    tasks = plan_reports(run.tables, run_folder / "artifacts")
    del run
    agents = [t for t in tasks if t.kind == "agent"]
    step = max(1, len(agents) // sample)
    chosen = agents[::step][:sample]
    out.update(reports_total=len(tasks), reports_sampled=len(chosen), runs={})
    for w in workers:
        with LocalCluster(n_workers=w, threads_per_worker=1, dashboard_address=None) as lc, Client(lc) as client:
            client.run(lambda: None)  # workers up before the clock starts
            t = time.perf_counter()
            results, timings = execute_on_cluster(
                chosen, client=client, run_folder=run_folder, artifacts_dir=run_folder / "artifacts", timeout=600
            )
            wall = time.perf_counter() - t
        ok = sum(r.status == "ok" for r in results)
        out["runs"][w] = {
            "wall_s": wall,
            "ok": ok,
            "cpu_per_report_s": timings["worker_cpu_s"] / max(ok, 1),
            "reports_per_s": ok / wall,
            "worker_peak_mib": timings["worker_peak_mib"],  # the largest of the workers
            "server_peak_mib": timings["kernel_server_peak_mib"],
            "server_start_s": timings["kernel_server_start_s"],
        }
    out["client_peak_mib"] = _peak_mib()
    return out


def _child(stage: str, n: int, folder: Path, extra: dict) -> dict:
    cmd = [sys.executable, __file__, "--stage", stage, "--size", str(n), "--folder", str(folder)]
    cmd += ["--stage-args", json.dumps(extra)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"stage {stage} at {n} agents failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1])


def measure(n: int, cache: Path, *, sample: int, workers: list[int], review: bool = True) -> dict:
    folder = cache / str(n)
    folder.mkdir(parents=True, exist_ok=True)
    meta = folder / "ingest.json"
    if (folder / "w.duckdb").is_file() and meta.is_file():
        row = {**json.loads(meta.read_text()), "cached": True}
    else:
        row = _child("ingest", n, folder, {})
        meta.write_text(json.dumps(row))
        row["cached"] = False
    row.update(_child("kpi", n, folder, {}))
    if review:
        row.update(_child("review", n, folder, {"sample": sample, "workers": workers}))
    row["agents"] = n
    return row


def table(rows: list[dict], workers: list[int]) -> str:
    out = [
        "| agents | ingest s | load s (peak MiB) | KPI week s | KPI rows | KPI peak MiB | artifacts s | "
        "reports (sampled) | workers | sample wall s | CPU s/report | reports/s | client peak MiB | "
        "worker peak MiB (largest) | kernel server peak MiB (largest) | review wall s (extrapolated) |",
        "|" + "---|" * 16,
    ]
    for r in rows:
        if "runs" not in r:
            out.append(
                f"| {r['agents']:,} | {r['ingest_s']:.0f}{' (cached)' if r['cached'] else ''} | "
                f"{r['load_s']:.0f} ({r['load_peak_mib']:,.0f}) | {r['kpi_s']:.0f} | {r['kpi_rows']:,} | "
                f"{r['kpi_peak_mib']:,.0f} | review not run (--review-sizes) |" + " |" * 9
            )
            continue
        for w in workers:
            run = r["runs"][str(w)] if str(w) in r["runs"] else r["runs"][w]
            # once: the artifacts and a worker's kernel server start; then every report at the
            # sample's pace without that start
            pace = max(run["wall_s"] - run["server_start_s"], 0.0) / max(run["ok"], 1)
            est = r["artifacts_s"] + run["server_start_s"] + r["reports_total"] * pace
            out.append(
                f"| {r['agents']:,} | {r['ingest_s']:.0f}{' (cached)' if r['cached'] else ''} | "
                f"{r['load_s']:.0f} ({r['load_peak_mib']:,.0f}) | {r['kpi_s']:.0f} | {r['kpi_rows']:,} | "
                f"{r['kpi_peak_mib']:,.0f} | {r['artifacts_s']:.0f}{' (cached)' if r['artifacts_cached'] else ''} | "
                f"{r['reports_total']:,} ({run['ok']}) | {w} | "
                f"{run['wall_s']:.1f} | {run['cpu_per_report_s']:.2f} | {run['reports_per_s']:.2f} | "
                f"{r['client_peak_mib']:,.0f} | {run['worker_peak_mib']:,.0f} | {run['server_peak_mib']:,.0f} | "
                f"{est:,.0f} |"
            )
        if len(workers) == 2:
            a, b = (r["runs"].get(str(w)) or r["runs"][w] for w in workers)
            ratio = b["reports_per_s"] / a["reports_per_s"]
            out.append(f"|  | {workers[1]} / {workers[0]} workers, throughput ({r['agents']:,} agents): {ratio:.2f}x |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    ap.add_argument("--reports", type=int, default=16, help="agent reports sampled per size and worker count")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--review-sizes", type=int, nargs="*", help="sizes whose review is measured (default: every size)")
    ap.add_argument("--cache", type=Path, default=HERE / "results" / "scale", help="warehouses kept between runs")
    ap.add_argument("--out", type=Path, help="also write the rows as JSON")
    ap.add_argument("--stage", help=argparse.SUPPRESS)
    ap.add_argument("--size", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--stage-args", default="{}", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.stage:
        fn = {"ingest": stage_ingest, "kpi": stage_kpi, "review": stage_review}[args.stage]
        print(json.dumps(fn(args.size, args.folder, **json.loads(args.stage_args))))
        return
    print(f"# cores {os.cpu_count()}, load average at start {os.getloadavg()[0]:.1f} (a shared machine: noisy)")
    rows = []
    for n in args.sizes:
        review = args.review_sizes is None or n in args.review_sizes
        rows.append(measure(n, args.cache, sample=args.reports, workers=args.workers, review=review))
        print(f"# {n:,} agents done", flush=True)
    print(table(rows, args.workers))
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
