"""The review's reports on a Dask cluster: ``spm review --cluster local|tcp://host:port``.

The client (the ``spm review`` process) does everything it does on one machine except run
the report kernels: it fits the model once and writes the artifacts into the run's staging
folder, plans the reports, and hands them to the cluster as Dask tasks of a few reports each
(:func:`plan_batches`). A worker runs a batch with the ordinary runner
(:func:`~spm_models.review.runner.execute_reports`, one report at a time per worker thread) and
keeps one fork server per run and process (:func:`run_batch`), so the imports and the artifacts
are loaded once per worker, not once per batch. A batch returns its reports' results; the
client records each in the publication's journal as it arrives and, at the end, writes the
manifest and index and publishes the month exactly as on one machine
(:mod:`spm_models.review.publish`): the lock, resume and ``--only-failed`` work the same.

What a worker needs: the same package version, and the reports root on a path it can read and
write under the same name as the client (a local folder for ``local``; a shared file system,
or object storage mounted through fsspec's FUSE or a CSI driver, on a real cluster; see
docs/scale.md). :func:`check_shared` checks this before any report starts, so a worker that
cannot see the run folder is one clear error, not hundreds of failed reports.

Failures: a report that fails is recorded as failed (the runner's isolation holds inside a
batch). A worker that dies takes its running batch with it; the scheduler runs that batch again
on another worker (Dask's ``allowed-failures``, 3 by default), so no report is lost. A batch
that still cannot run (a worker that keeps dying, a kernel server that cannot start) records
each of its reports as failed with the reason, and the other batches go on.
"""

from __future__ import annotations

import math
import os
import resource
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from spm_models.exceptions import ConfigError, DiskFullError, ReportError
from spm_models.review.runner import ReportResult, ReportTask
from spm_models.review.settings import LOCAL, check_cluster

__all__ = ["open_cluster", "plan_batches", "run_batch", "execute_on_cluster", "ClusterPool", "ReviewCluster"]

#: Reports per batch at most: small enough that a lost worker costs little, big enough that a
#: task's round trip (milliseconds) is nothing beside the reports (about a second each).
MAX_BATCH = 16


@contextmanager
def open_cluster(spec: str, *, workers: int | None = None) -> Iterator[Any]:
    """A ``distributed.Client`` on ``spec``; a LocalCluster is started and stopped with it.

    Parameters
    ----------
    spec : str
        ``"local"`` or a scheduler address (:func:`check_cluster`).
    workers : int, optional
        Worker processes of a LocalCluster (default: the number of cores), one thread each;
        ignored for a scheduler address (the cluster has its own).

    Raises
    ------
    ConfigError
        The scheduler cannot be reached, or it has no workers within a minute.
    """
    from distributed import Client, LocalCluster

    spec = check_cluster(spec)
    if spec == LOCAL:
        n = workers or os.cpu_count() or 1
        # One thread per worker: a worker thread is one report slot (the runner overlaps the next
        # kernel's start with it). No dashboard: it needs bokeh and a port, and nothing reads it.
        with LocalCluster(n_workers=n, threads_per_worker=1, dashboard_address=None, processes=True) as cluster:
            with Client(cluster) as client:
                yield client
        return
    try:
        client = Client(spec, timeout="30s")
    except (OSError, TimeoutError) as exc:
        raise ConfigError(f"cannot reach the Dask scheduler at {spec}: {exc}") from None
    try:
        try:
            client.wait_for_workers(1, timeout=60)
        except TimeoutError:
            raise ConfigError(f"the Dask scheduler at {spec} has no workers (waited 60 s)") from None
        yield client
    finally:
        client.close()


class ClusterPool:
    """``submit(fn, *args, **kwargs) -> future`` on a Dask cluster, for the model work of the
    artifacts (the model choice's backtests, the fit's parts: ``executor`` of
    :func:`~spm_models.evaluation.selection.choose_models` and
    :func:`~spm_models.review.partitions.fit_in_partitions`).

    A data frame argument (the weekly history every backtest reads) is sent to the cluster once
    (``scatter``) and every task that names it reads that copy, instead of travelling inside each
    task. Tasks are not pure: each runs, none is taken from an earlier one by key.
    """

    def __init__(self, client: Any) -> None:
        self.client = client
        self._sent: dict[int, tuple[Any, Any]] = {}

    def submit(self, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        args = tuple(self._ship(a) for a in args)
        kwargs = {k: self._ship(v) for k, v in kwargs.items()}
        return self.client.submit(fn, *args, pure=False, **kwargs)

    def _ship(self, value: Any) -> Any:
        import pandas as pd

        if not isinstance(value, pd.DataFrame):
            return value
        held = self._sent.get(id(value))
        if held is None:  # the frame is kept with its future, so its id is not reused while held
            held = self._sent[id(value)] = (value, self.client.scatter(value, hash=False))
        return held[1]

    def close(self) -> None:
        """Let the cluster drop the frames sent."""
        futures = [f for _, f in self._sent.values()]
        self._sent.clear()
        if futures:
            self.client.cancel(futures)


class ReviewCluster:
    """The cluster of one review run, started on first use (:func:`open_cluster`) and stopped by
    :meth:`close`: the model work of the artifacts (:meth:`submit`, as a :class:`ClusterPool`) and
    the reports (:attr:`client`) share it, and a run with nothing to send never starts it.
    """

    def __init__(self, spec: str, *, workers: int | None = None) -> None:
        self.spec, self.workers = spec, workers
        self.start_seconds = 0.0
        self._stack: ExitStack | None = None
        self._pool: ClusterPool | None = None

    @property
    def client(self) -> Any:
        if self._pool is None:
            t = time.perf_counter()
            stack = ExitStack()
            client = stack.enter_context(open_cluster(self.spec, workers=self.workers))
            self._stack, self._pool = stack, ClusterPool(client)
            self.start_seconds = time.perf_counter() - t
        return self._pool.client

    def submit(self, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        self.client  # noqa: B018  (started on first use)
        return self._pool.submit(fn, *args, **kwargs)

    def release(self) -> None:
        """Let the cluster drop the data frames the model work sent (they are not needed by the reports)."""
        if self._pool is not None:
            self._pool.close()

    def close(self) -> None:
        if self._stack is not None:
            self._stack.close()
        self._stack, self._pool = None, None


def plan_batches(tasks: Sequence[ReportTask], *, slots: int, max_batch: int = MAX_BATCH) -> list[list[ReportTask]]:
    """Split ``tasks`` into batches: about four per worker slot, at most ``max_batch`` reports each.

    Several batches per slot keep every slot busy to the end (batches differ in length) and
    make a lost worker cost a few reports; the monthly review, the longest report, goes first.
    """
    ordered = sorted(tasks, key=lambda t: t.kind != "monthly")
    if not ordered:
        return []
    size = max(1, min(max_batch, math.ceil(len(ordered) / (4 * max(1, slots)))))
    return [ordered[i : i + size] for i in range(0, len(ordered), size)]


_servers: dict[str, Any] = {}
_servers_lock = threading.Lock()


def _worker_server(artifacts_dir: str, kernel: str) -> Any:
    """This process's fork server of ``artifacts_dir`` (started on first use), or None for plain kernels.

    The server outlives the batch, so every later batch of the run on this worker forks from it.
    It stops when this process ends (its stdin closes, and it kills its kernels).
    """
    from spm_models.review.kernels.client import ForkServer
    from spm_models.review.kernels.mode import resolve_kernel_mode

    if resolve_kernel_mode(kernel)[0] != "fork":
        return None
    with _servers_lock:
        server = _servers.get(artifacts_dir)
        if server is not None and (server.process is None or server.process.poll() is not None):
            server.close()
            server = None
        if server is None:
            for old in _servers.values():  # an earlier run's server: its artifacts are gone
                old.close()
            _servers.clear()
            server = _servers[artifacts_dir] = ForkServer(run_dir=artifacts_dir).start()
        return server


def close_servers() -> int:
    """Stop this process's fork servers (a worker's teardown); how many there were."""
    with _servers_lock:
        servers = list(_servers.values())
        _servers.clear()
    for server in servers:
        server.close()
    return len(servers)


def run_batch(
    tasks: Sequence[ReportTask],
    *,
    run_folder: str,
    artifacts_dir: str,
    timeout: float,
    kernel: str,
    templates_dir: str | None,
) -> dict[str, Any]:
    """Run one batch of reports on this worker (the Dask task); its results and timings.

    Returns
    -------
    dict
        ``results`` (a list of :class:`~spm_models.review.runner.ReportResult`), ``worker``
        (host and pid), ``cpu_s`` (CPU seconds of this process and its kernels' server during the
        batch) and ``seconds``.
    """
    from spm_models.review.runner import execute_reports

    t0, c0 = time.perf_counter(), time.process_time()
    started = _servers.get(artifacts_dir)
    server = _worker_server(artifacts_dir, kernel)
    server_start = 0.0 if server is None or server is started else float(server.startup_seconds or 0.0)
    k0 = _server_cpu(server)
    results, setup = execute_reports(
        tasks,
        run_folder=run_folder,
        artifacts_dir=artifacts_dir,
        workers=1,
        timeout=timeout,
        kernel=kernel,
        templates_dir=templates_dir,
        server=server,
    )
    return {
        "results": results,
        "worker": f"{os.uname().nodename}:{os.getpid()}",
        "cpu_s": round(time.process_time() - c0 + _server_cpu(server) - k0, 3),
        "seconds": round(time.perf_counter() - t0, 3),
        "setup": setup,
        # VmHWM, not ru_maxrss: a spawned worker's ru_maxrss starts at its parent's peak (Linux
        # keeps it across fork and exec), which would credit the client's memory to the worker
        "peak_mib": _peak_of(os.getpid()) or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "server_peak_mib": _peak_of(server.process.pid) if server is not None and server.process else 0.0,
        "server_start_s": server_start,
    }


def _peak_of(pid: int) -> float:
    """Peak resident memory of process ``pid`` in MiB (Linux ``VmHWM``; 0 where unknown)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0.0


def _server_cpu(server: Any) -> float:
    if server is None:
        return 0.0
    try:
        st = server.stats()
    except (OSError, ValueError, ReportError):
        return 0.0
    return float(st.get("cpu_user", 0.0) + st.get("cpu_system", 0.0))


def _probe(path: str) -> bool:
    return Path(path).is_file()


def check_shared(client: Any, run_folder: Path) -> None:
    """Every worker sees the run folder (a probe file the client writes), else ConfigError."""
    probe = run_folder / f".probe-{uuid.uuid4().hex}"
    probe.write_text("spm", encoding="utf-8")
    try:
        seen = client.run(_probe, str(probe))
    finally:
        probe.unlink(missing_ok=True)
    blind = sorted(w for w, ok in seen.items() if not ok)
    if blind:
        raise ConfigError(
            f"{len(blind)} Dask worker(s) ({', '.join(blind[:3])}) cannot see the review's run folder {run_folder}: "
            "put the reports folder (--out) on a file system every worker mounts at the same path "
            "(docs/scale.md)"
        )


def _batch_failed(batch: Sequence[ReportTask], reason: str) -> list[ReportResult]:
    return [ReportResult(t.report_id, "failed", 0.0, None, None, reason) for t in batch]


def execute_on_cluster(
    tasks: Sequence[ReportTask],
    *,
    client: Any,
    run_folder: str | Path,
    artifacts_dir: str | Path,
    timeout: float,
    kernel: str = "auto",
    templates_dir: str | Path | None = None,
    on_result: Callable[[ReportResult], None] | None = None,
) -> tuple[list[ReportResult], dict[str, float]]:
    """Run ``tasks`` as batches on the cluster of ``client``; the results in task order and timings.

    Parameters
    ----------
    tasks : sequence of ReportTask
        Checked already (:func:`~spm_models.review.pipeline.plan_reports`).
    client : distributed.Client
    run_folder, artifacts_dir : path-like
        On a file system every worker mounts at the same path (checked first).
    timeout : float
        Seconds one report may take (enforced on the worker, as on one machine).
    kernel : {"auto", "fork", "plain"}
    on_result : callable, optional
        Called on the client with each result as its batch comes back.

    Returns
    -------
    (list of ReportResult, dict)
        The timings hold ``batches``, ``workers`` (that ran a batch), ``worker_cpu_s`` (CPU
        seconds of the workers and their kernel servers on these reports), and the largest peak
        memory of a worker process and of a worker's kernel server (``worker_peak_mib``,
        ``kernel_server_peak_mib``; the server's is 0 where the platform does not tell), and the
        longest start of a worker's kernel server (``kernel_server_start_s``).

    Raises
    ------
    ConfigError
        A worker cannot see the run folder (nothing has run).
    DiskFullError
        A worker found the disk full; no further batch starts.
    """
    from distributed import as_completed

    run_folder, artifacts_dir = Path(run_folder), Path(artifacts_dir)
    check_shared(client, run_folder)
    slots = max(1, sum(client.nthreads().values()))
    batches = plan_batches(tasks, slots=slots)
    options = dict(
        run_folder=str(run_folder),
        artifacts_dir=str(artifacts_dir),
        timeout=float(timeout),
        kernel=kernel,
        templates_dir=None if templates_dir is None else str(templates_dir),
    )
    # pure=False: a batch is work with side effects (pages on disk), never shared by key.
    run_key = uuid.uuid4().hex[:8]
    futures = {
        client.submit(run_batch, b, pure=False, key=f"spm-reports-{run_key}-{i}", **options): b
        for i, b in enumerate(batches)
    }
    results: dict[str, ReportResult] = {}
    workers: set[str] = set()
    cpu, peak, server_peak, server_start = 0.0, 0.0, 0.0, 0.0
    try:
        for fut in as_completed(futures):
            batch = futures[fut]
            try:
                out = fut.result()
                done, cpu = out["results"], cpu + out["cpu_s"]
                peak, server_peak = max(peak, out["peak_mib"]), max(server_peak, out["server_peak_mib"])
                server_start = max(server_start, out["server_start_s"])
                workers.add(out["worker"])
            except DiskFullError:
                raise
            except Exception as exc:  # the batch could not run (a worker that kept dying, a server that failed)
                reason = f"{type(exc).__name__}: {exc}"
                done = _batch_failed(batch, f"the batch of reports could not run on the cluster: {reason}")
            for r in done:
                results[r.report_id] = r
                if on_result is not None:
                    on_result(r)
    except BaseException:
        client.cancel(list(futures))
        raise
    finally:
        try:  # the workers' kernel servers hold this run's artifacts in memory: let them go
            client.run(close_servers)
        except Exception:  # a worker gone by now has nothing left to close
            pass
    timings = {
        "batches": len(batches),
        "workers": len(workers),
        "worker_cpu_s": round(cpu, 3),
        "worker_peak_mib": round(peak, 1),
        "kernel_server_peak_mib": round(server_peak, 1),
        "kernel_server_start_s": round(server_start, 3),
    }
    return [results[t.report_id] for t in tasks], timings
