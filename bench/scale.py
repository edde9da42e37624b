"""Scale: ingest, KPIs and the monthly review for 1,000, 5,000 and 10,000 agents over three years.

Usage::

    .venv/bin/python bench/scale.py                                 # 1000 5000 10000 agents
    .venv/bin/python bench/scale.py --sizes 1000 --reports 16 --workers 1 2
    .venv/bin/python bench/scale.py --cache /tmp/scale              # reuse warehouses built earlier
    .venv/bin/python bench/scale.py --sizes 1000 --reports 32 --pin --warm --repeat 3   # 1 vs 2 workers

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

A second table says where the sample's CPU went, per process: each worker's own (the runner:
papermill, nbclient, writing pages), its kernel server and kernels, and the client process (the
client, and the LocalCluster's scheduler and nannies, which are threads of it), and the share of
its core each worker got (its CPU over the wall time).

Fair 1-versus-2-worker throughput:

* ``--pin``: worker ``i`` (every thread of it) is pinned to core ``i`` before the clock starts,
  and its kernel server and kernels inherit that, so 1 worker has 1 core and 2 workers have 2,
  as on a cluster where each worker has its own cores; one thread per worker. The client and
  the scheduler are not pinned (stated in the output).
* ``--warm``: one report per worker runs before the clock (not counted), so the sample measures
  the pace of a long run, not each worker's one-off start (imports, kernel server: several CPU
  seconds, once per worker per run).

The throughput ratio is wall time, measured. A second ratio, labelled as derived, divides the
reports by the busiest worker's CPU seconds: the throughput had every worker had its core to
itself. The two differ when other processes take the cores.

The machine is shared and has 2 cores: throughput numbers move with whatever else runs. The
header prints the load average at the start and the end.
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


def _pin_process(cpus: list[int]) -> list[int]:
    """Pin every thread of this process to ``cpus`` (run on a worker by ``client.run``).

    Linux's ``sched_setaffinity(0, ...)`` pins the calling thread only, so each thread of the
    worker is pinned by its id; threads and processes started later (the kernel server and the
    kernels it forks) inherit the affinity of the thread that starts them.
    """
    for tid in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(tid), cpus)
        except OSError:  # a thread that ended meanwhile
            pass
    return sorted(os.sched_getaffinity(0))


def _warm(client, chosen: list, run_folder: Path) -> float:
    """Run one report of the sample on each worker before the clock (the batch function of the
    review, on that worker, whose kernel server it leaves running): the imports, the kernel
    server's start and the first fork are then paid, as they are once per worker in a long run.
    Returns the wall seconds it took."""
    from spm_models.review.cluster import run_batch

    options = dict(run_folder=str(run_folder), artifacts_dir=str(run_folder / "artifacts"), timeout=600.0)
    t = time.perf_counter()
    futures = [
        client.submit(
            run_batch, [chosen[i % len(chosen)]], kernel="auto", templates_dir=None, workers=[a], pure=False, **options
        )
        for i, a in enumerate(sorted(client.scheduler_info()["workers"]))
    ]
    client.gather(futures)
    return time.perf_counter() - t


def _cpu_of(proc) -> float:
    """CPU seconds of a process, of the children it has reaped (psutil's ``children_*`` times) and
    of its live descendants: a worker with its kernel server and kernels, alive or ended."""
    import psutil

    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            t = p.cpu_times()
        except psutil.Error:  # ended meanwhile: its time is in its parent's children times
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


def _sample_run(client, chosen: list, run_folder: Path, pins: dict[str, list[int]] | None, warm: bool) -> dict:
    """One timed run of the sample on ``client``'s cluster, with CPU per process; ``warm``: each
    worker's one-off start (imports, kernel server) before the clock, timed apart."""
    import psutil

    from spm_models.review.cluster import execute_on_cluster

    pids = client.run(os.getpid)  # worker address -> pid (children of this process)
    if pins:
        for addr, cpus in pins.items():
            client.run(_pin_process, cpus, workers=[addr])
    warm_s = _warm(client, chosen, run_folder) if warm else 0.0
    me = psutil.Process()
    procs = {addr: psutil.Process(pid) for addr, pid in pids.items()}
    # the client process alone (the scheduler and the nannies are threads of it; the workers are
    # its children and counted apart)
    c0, w0 = sum(me.cpu_times()[:2]), {a: _cpu_of(p) for a, p in procs.items()}
    # the workers' own CPU now, to split their CPU at the end into own and children (server, kernels)
    own0 = {a: sum(p.cpu_times()[:2]) for a, p in procs.items()}
    t = time.perf_counter()
    results, timings = execute_on_cluster(
        chosen, client=client, run_folder=run_folder, artifacts_dir=run_folder / "artifacts", timeout=600
    )
    wall = time.perf_counter() - t
    # execute_on_cluster stopped the kernel servers: their CPU (and their kernels') is now in the
    # workers' children times; a warmed server's start is in the snapshot taken before the clock
    time.sleep(0.5)
    client_cpu = sum(me.cpu_times()[:2]) - c0
    worker_cpu = {a: _cpu_of(p) - w0[a] for a, p in procs.items()}
    worker_own = {a: sum(p.cpu_times()[:2]) - own0[a] for a, p in procs.items()}
    ok = sum(r.status == "ok" for r in results)
    busy = wall - timings["kernel_server_start_s"]
    return {
        "wall_s": wall,
        "ok": ok,
        "cpu_per_report_s": timings["worker_cpu_s"] / max(ok, 1),
        "reports_per_s": ok / wall,
        "steady_reports_per_s": ok / max(busy, 1e-9),
        "worker_peak_mib": timings["worker_peak_mib"],  # the largest of the workers
        "server_peak_mib": timings["kernel_server_peak_mib"],
        "server_start_s": timings["kernel_server_start_s"],
        "pinned": {str(pids[a]): c for a, c in (pins or {}).items()},
        "warm_s": warm_s,  # the workers' start before the clock (0: not warmed, it is in the sample)
        # per process, over the whole sample (kernel server starts included)
        "client_cpu_s": client_cpu,
        "worker_own_cpu_s": sum(worker_own.values()),
        "worker_children_cpu_s": sum(worker_cpu.values()) - sum(worker_own.values()),
        "per_worker_cpu_s": sorted(round(v, 2) for v in worker_cpu.values()),
    }


def stage_review(
    n: int, folder: Path, *, sample: int, workers: list[int], pin: bool = False, warm: bool = False, repeat: int = 1
) -> dict:
    from distributed import Client, LocalCluster

    from spm_models.data.warehouse import Warehouse
    from spm_models.review.artifacts import build_artifacts
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
    cores = sorted(os.sched_getaffinity(0))
    rounds: list[dict] = []
    for k in range(repeat):
        # alternate the order, so a load that rises or falls during the bench favours neither count
        rounds.append({})
        for w in workers if k % 2 == 0 else workers[::-1]:
            with LocalCluster(n_workers=w, threads_per_worker=1, dashboard_address=None) as lc, Client(lc) as client:
                client.run(lambda: None)  # workers up before the clock starts
                # --pin: worker i and everything it starts on core i, so 1 worker has 1 core and 2 have 2
                addrs = sorted(client.scheduler_info()["workers"])
                pins = {a: [cores[i % len(cores)]] for i, a in enumerate(addrs)} if pin else None
                rounds[-1][w] = _sample_run(client, chosen, run_folder, pins, warm)
    for w in workers:  # the table shows each count's run of median wall time; every round is kept
        ranked = sorted(rounds, key=lambda r: r[w]["wall_s"])
        out["runs"][w] = ranked[len(ranked) // 2][w]
    out["rounds"] = [{w: {"wall_s": r[w]["wall_s"], "ok": r[w]["ok"]} for w in workers} for r in rounds]
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


def measure(n: int, cache: Path, *, sample: int, workers: list[int], review: bool = True, **how) -> dict:
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
        row.update(_child("review", n, folder, {"sample": sample, "workers": workers, **how}))
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
            steady = b["steady_reports_per_s"] / a["steady_reports_per_s"]
            out.append(
                f"|  | {workers[1]} / {workers[0]} workers, throughput ({r['agents']:,} agents): {ratio:.2f}x; "
                f"without the kernel server start: {steady:.2f}x |"
            )
            if len(r.get("rounds", [])) > 1:
                each = [
                    (x[str(workers[1])]["ok"] / x[str(workers[1])]["wall_s"])
                    / (x[str(workers[0])]["ok"] / x[str(workers[0])]["wall_s"])
                    for x in r["rounds"]
                ]
                out.append(f"|  | throughput ratio in each round: {', '.join(f'{e:.2f}x' for e in each)} |")
            if "per_worker_cpu_s" in a and "per_worker_cpu_s" in b:
                # not a wall-clock measurement: what the throughput would have been had each worker
                # had its core to itself (the busiest worker's CPU seconds as the wall time)
                cap = (b["ok"] / max(b["per_worker_cpu_s"])) / (a["ok"] / max(a["per_worker_cpu_s"]))
                out.append(
                    f"|  | {workers[1]} / {workers[0]} workers, reports per CPU second of the busiest worker "
                    f"(the throughput with a free core per worker; derived from CPU, not wall time): {cap:.2f}x |"
                )
    return "\n".join(out)


def cpu_table(rows: list[dict], workers: list[int]) -> str:
    """Where the CPU of each sample went, per process, and what was pinned."""
    out = [
        "| agents | workers | pinned (worker pid: CPUs) | wall s | reports | worker CPU s, own | "
        "kernel server + kernels CPU s | client CPU s (scheduler, nannies, client) | CPU s per worker | "
        "share of its core each worker used | CPU s/report, all processes |",
        "|" + "---|" * 11,
    ]
    for r in rows:
        for w in workers:
            run = (r.get("runs") or {}).get(str(w)) or (r.get("runs") or {}).get(w)
            if not run or "client_cpu_s" not in run:
                continue
            pins = ", ".join(f"{p}: {c}" for p, c in run["pinned"].items()) or "not pinned"
            total = run["worker_own_cpu_s"] + run["worker_children_cpu_s"] + run["client_cpu_s"]
            shares = ", ".join(f"{c / run['wall_s']:.0%}" for c in run["per_worker_cpu_s"])
            out.append(
                f"| {r['agents']:,} | {w} | {pins} | {run['wall_s']:.1f} | {run['ok']} | "
                f"{run['worker_own_cpu_s']:.1f} | {run['worker_children_cpu_s']:.1f} | {run['client_cpu_s']:.1f} | "
                f"{run['per_worker_cpu_s']} | {shares} | "
                f"{total / max(run['ok'], 1):.2f} |"
            )
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    ap.add_argument("--reports", type=int, default=16, help="agent reports sampled per size and worker count")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--review-sizes", type=int, nargs="*", help="sizes whose review is measured (default: every size)")
    ap.add_argument("--cache", type=Path, default=HERE / "results" / "scale", help="warehouses kept between runs")
    ap.add_argument("--out", type=Path, help="also write the rows as JSON")
    ap.add_argument(
        "--warm",
        action="store_true",
        help="run one report on each worker before the clock (imports, kernel server): the pace of a long run",
    )
    ap.add_argument("--repeat", type=int, default=1, help="rounds of 1 and 2 workers, alternating order")
    ap.add_argument(
        "--pin",
        action="store_true",
        help="pin worker i (its threads, kernel server and kernels) to core i: 1 worker = 1 core, 2 = 2",
    )
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
    if args.warm:
        print("# warm: one report per worker before the clock (its imports and kernel server start), not counted")
    if args.pin:
        print(
            "# pinned: worker i, its kernel server and its kernels on core i (one thread per worker); "
            "the client and scheduler not pinned"
        )
    rows = []
    for n in args.sizes:
        review = args.review_sizes is None or n in args.review_sizes
        rows.append(
            measure(
                n,
                args.cache,
                sample=args.reports,
                workers=args.workers,
                review=review,
                pin=args.pin,
                warm=args.warm,
                repeat=args.repeat,
            )
        )
        print(f"# {n:,} agents done", flush=True)
    print(table(rows, args.workers))
    print()
    print(cpu_table(rows, args.workers))
    print(f"# load average at the end {os.getloadavg()[0]:.1f}")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
