"""Execute report notebooks in parallel with papermill, each in its own fresh kernel.

Each report is one papermill run (parameters injected into the template's ``parameters``
cell, cells executed by nbclient) followed by the HTML export. The heavy work happens in the
kernels, which are separate processes, so threads are enough to drive them. ``workers``
reports execute cells at the same time (a gate taken at a report's first cell and given
back after its last); twice as many threads run, so the next reports' kernels start and
shake hands with nbclient while the current ones compute: a kernel's start-up is mostly
waiting, and this hides it instead of leaving a core idle.

Kernels come from a fork server (:mod:`spm_models.review.kernels.server`) with everything
imported and the run's artifacts loaded: a kernel starts in a fraction of a second and
starts clean (see that module for why no state can leak between reports). ``kernel="plain"``
uses jupyter's ordinary launcher instead (one new Python process per report); ``"auto"``
(the default) forks where the platform allows it and falls back to plain kernels elsewhere
(:mod:`spm_models.review.kernels.mode`).

Failure isolation: anything that goes wrong in one report (an exception in a cell, a
kernel that dies, a timeout, an export error) is caught and recorded in that report's
result with its message; its executed notebook (with the error) is kept; the others go on.
A report that runs longer than ``timeout`` seconds has its kernel killed.

Start-up failures are retried once: a kernel that dies before the report's first cell ran
nothing of it, so a second kernel is started. The cause seen in practice ("Kernel died before
replying to kernel_info") is a port race: the kernel manager picks free ports by binding and
releasing them, and before the kernel binds them, another connection (one of the many the
runner's clients open to other kernels) may take one; the kernel then cannot bind and exits.

Stopping the whole run: when a report finds the disk full, no further report starts, running
kernels are killed and :class:`~spm_models.exceptions.DiskFullError` is raised once, instead
of every later report failing on its own. Ctrl-C (or SIGTERM through the CLI) does the same and
the interruption goes on up to the caller, which keeps what finished. No temporary notebook is
left on any of these paths.
"""

from __future__ import annotations

import copy
import functools
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from spm_models.exceptions import DiskFullError, ReportError, is_disk_full
from spm_models.review.export import to_html, write_atomic
from spm_models.review.naming import inside
from spm_models.review.params import check_parameters, template_path

__all__ = ["ReportTask", "ReportResult", "execute_reports"]


@dataclass(frozen=True)
class ReportTask:
    """One report to produce.

    Attributes
    ----------
    report_id : str
        ``agent:<id>``, ``territory:<id>`` or ``monthly``.
    template : str
        Template name (see :data:`spm_models.review.params.TEMPLATES`).
    parameters : dict
        Checked parameters.
    subject : str
        Display name (the page title).
    html : str
        Output page, relative to the run folder.
    notebook : str
        Executed notebook, relative to the run folder.
    """

    report_id: str
    template: str
    parameters: dict
    subject: str
    kind: str
    html: str
    notebook: str


@dataclass
class ReportResult:
    """What happened to one report."""

    report_id: str
    status: str  # "ok" or "failed"
    duration_s: float
    output: str | None
    notebook: str | None
    error: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    kernel_starts: int = 1  # 2 when the first kernel died before the report's first cell


_slot = threading.local()


def _record_pid(pid: int) -> None:
    box = getattr(_slot, "box", None)
    if box is not None:
        box["pid"] = pid


class _Gate:
    """At most ``workers`` reports executing cells at once; held from the first cell to the last."""

    def __init__(self, workers: int, abort: _Abort | None = None):
        self._sem = threading.Semaphore(max(1, int(workers)))
        self._abort = abort

    def hooks(
        self, n_cells: int, on_acquire: Callable[[], None]
    ) -> tuple[dict[str, Callable], Callable[[], None], dict]:
        """nbclient hooks for one report, a ``release`` to call when it ends (idempotent), and
        the report's state (``ready_at``: kernel ready; ``acquired_at``: its turn came).

        The hooks run in the report's own thread (nbclient's event loop), so a report waiting
        for the gate only blocks itself; ``on_acquire`` is called once it holds the gate.
        """
        state = {"started": False, "held": False}

        def release() -> None:
            if state["held"]:
                state["held"] = False
                self._sem.release()

        def on_start(cell=None, cell_index=0, **_):
            if not state["started"]:
                state["started"] = True
                state["ready_at"] = time.perf_counter()
                self._sem.acquire()
                state["held"] = True
                state["acquired_at"] = time.perf_counter()
                if self._abort is not None and self._abort.event.is_set():
                    raise RuntimeError(f"not run: {self._abort.reason}")  # the run is stopping
                on_acquire()

        def on_executed(cell=None, cell_index=0, **_):
            if cell_index >= n_cells - 1:
                release()

        return {"on_cell_start": on_start, "on_cell_executed": on_executed}, release, state


def _kill(pid: int | None) -> None:
    """SIGKILL a kernel's process group (kernels lead their own group), or the kernel alone."""
    if not pid:
        return
    import signal

    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


class _Abort:
    """Stops a whole run: no report starts once it is set, and running kernels are killed.

    Set by the first report that finds the disk full (one clear error instead of every later
    report failing on its own) and by an interruption (Ctrl-C, SIGTERM).
    """

    def __init__(self) -> None:
        self.event = threading.Event()
        self.reason: str | None = None
        self.disk_full: BaseException | None = None
        self._boxes: list[dict] = []
        self._lock = threading.Lock()

    def watch(self, box: dict) -> None:
        with self._lock:
            self._boxes.append(box)

    def unwatch(self, box: dict) -> None:
        with self._lock:
            if box in self._boxes:
                self._boxes.remove(box)

    def trigger(self, reason: str, *, disk_full: BaseException | None = None) -> None:
        with self._lock:
            if self.reason is None:
                self.reason, self.disk_full = reason, disk_full
            boxes = list(self._boxes)
        self.event.set()
        for box in boxes:
            _kill(box.get("pid"))


class _Watchdog:
    """Kills the report's kernel when it overruns its time, counted from when it starts computing."""

    def __init__(self, timeout: float):
        self.box: dict[str, Any] = {}
        self.fired = False
        self._timer = threading.Timer(timeout, self._fire)
        self._timer.daemon = True

    def _fire(self) -> None:
        self.fired = True
        _kill(self.box.get("pid"))

    def arm(self) -> None:
        """Start the clock (called when the report gets its turn to execute)."""
        if not self._timer.is_alive():
            self._timer.start()

    def __enter__(self) -> _Watchdog:
        _slot.box = self.box
        return self

    def __exit__(self, *exc) -> None:
        self._timer.cancel()
        _slot.box = None


def _error_text(exc: BaseException) -> str:
    name = type(exc).__name__
    ename = getattr(exc, "ename", None)
    if ename:  # papermill's execution error: the cell's own exception
        return f"{ename}: {getattr(exc, 'evalue', '')} (in cell {getattr(exc, 'exec_count', '?')})"
    return f"{name}: {exc}".strip()


@functools.cache
def _engine() -> str:
    """papermill's nbclient engine, writing the executed notebook when the run ends, not around
    every cell.

    papermill writes the whole notebook (serialised and schema-validated) when a run starts,
    before and after every cell (markdown cells included) and when the run ends: about 60
    writes of a growing notebook per report, about 12 ms of the runner's CPU. A report's notebook
    is read only once its run has ended, and papermill's end-of-run write happens on every path
    (a failed cell, a dead or stopped kernel: it is in a ``finally``), so this engine keeps the
    first and the last write. Registered through papermill's engine registry, its extension
    point for this.
    """
    from papermill.engines import NBClientEngine, papermill_engines

    class SaveAtEnd(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, **kwargs):
            path, nb_man.output_path = nb_man.output_path, None  # no writes while cells run
            try:
                return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)
            finally:
                nb_man.output_path = path  # papermill's end-of-run write follows

    papermill_engines.register("spm-save-at-end", SaveAtEnd)
    return "spm-save-at-end"


def _attempt(
    task: ReportTask, template: Any, tmp_nb: Path, *, km_class: type | None, timeout: float, gate: _Gate, abort: _Abort
) -> tuple[Any, BaseException | None, bool, dict[str, float]]:
    """One papermill run: (notebook or None, the exception, whether the first cell had started, timings)."""
    import papermill

    t0 = time.perf_counter()
    extra = {"kernel_manager_class": km_class} if km_class is not None else {}
    nb, error = None, None
    with _Watchdog(timeout) as dog:
        abort.watch(dog.box)
        hooks, release, state = gate.hooks(len(template.cells) + 1, dog.arm)  # + the injected parameters cell
        try:
            nb = papermill.execute_notebook(
                copy.deepcopy(template),
                str(tmp_nb),
                engine_name=_engine(),
                parameters=task.parameters,
                progress_bar=False,
                request_save_on_cell_execute=False,
                log_output=False,
                execution_timeout=int(timeout),
                start_timeout=60,
                shutdown_kernel="immediate",
                cwd=None,
                **hooks,
                **extra,
            )
        except Exception as exc:  # one report's failure is recorded, never raised
            error = exc
            if dog.fired:
                error = TimeoutError(f"timed out after {timeout:.0f} s (the kernel was stopped)")
        finally:
            release()
            abort.unwatch(dog.box)
    t_end = time.perf_counter()
    ready, acquired = state.get("ready_at", t_end), state.get("acquired_at", t_end)
    timings = {
        "kernel_start": ready - t0,  # launch, handshake, parameters
        "queued": acquired - ready,  # waiting for a free worker
        "execute": t_end - acquired,  # cells and shutdown
    }
    return nb, error, bool(state["started"]), timings


def _keep_notebook(tmp_nb: Path, nb_path: Path, nb: Any, error: str | None, template: Any) -> Any:
    """Move the executed notebook into place (or write a record of the failure); the notebook."""
    import nbformat

    if tmp_nb.exists():
        if nb is None:
            try:
                nb = nbformat.read(tmp_nb, as_version=4)
            except Exception:  # half-written (the kernel died, the disk filled): not a notebook
                nb = None
        if nb is not None:
            os.replace(tmp_nb, nb_path)
            return nb
        tmp_nb.unlink()
    # nothing usable was written (the kernel died before papermill could save): keep a record
    failed = copy.deepcopy(template)
    failed.cells.insert(0, nbformat.v4.new_markdown_cell(f"**This report failed:** {error}"))
    write_atomic(nb_path, nbformat.writes(failed))
    return None


def _run_one(
    task: ReportTask,
    *,
    run_folder: Path,
    templates: dict[str, Any],
    km_class: type | None,
    timeout: float,
    gate: _Gate,
    abort: _Abort,
) -> ReportResult:
    import nbformat

    t0 = time.perf_counter()
    if abort.event.is_set():
        return ReportResult(task.report_id, "skipped", 0.0, None, None, f"not run: {abort.reason}")
    html_path = inside(run_folder, task.html)
    nb_path = inside(run_folder, task.notebook)
    nb_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_nb = nb_path.with_name(f".tmp-{threading.get_ident()}-{nb_path.name}")
    template = templates[task.template]
    timings: dict[str, float] = {}
    first_error = None
    try:
        for attempt in (1, 2):
            nb, exc, started, timings = _attempt(
                task, template, tmp_nb, km_class=km_class, timeout=timeout, gate=gate, abort=abort
            )
            # A kernel that dies before its first cell (a port taken between the kernel manager
            # choosing it and the kernel binding it, see docs/review.md) ran none of the report:
            # starting another is safe, once.
            if exc is None or started or attempt == 2 or abort.event.is_set() or is_disk_full(exc):
                break
            first_error = _error_text(exc)
            tmp_nb.unlink(missing_ok=True)
        error = None if exc is None else _error_text(exc)
        if exc is not None and is_disk_full(exc):
            abort.trigger("the disk is full", disk_full=exc)
        if is_disk_full(exc) or abort.event.is_set() and exc is not None:
            tmp_nb.unlink(missing_ok=True)  # a half-written notebook is no record
            return ReportResult(task.report_id, "skipped", 0.0, None, None, f"stopped: {abort.reason}")
        nb = _keep_notebook(tmp_nb, nb_path, nb, error, template)
        if error is None:
            t1 = time.perf_counter()
            try:
                write_atomic(
                    html_path, to_html(nb if nb is not None else nbformat.read(nb_path, 4), title=task.subject)
                )
            except Exception as exc:  # recorded as this report's failure
                if is_disk_full(exc):
                    abort.trigger("the disk is full", disk_full=exc)
                error = f"HTML export failed: {_error_text(exc)}"
            timings["export"] = time.perf_counter() - t1
        if error is not None and html_path.exists():
            html_path.unlink()  # never leave an earlier run's page looking current
    finally:
        tmp_nb.unlink(missing_ok=True)
    if error is not None and first_error is not None:
        error += f" (the kernel was started twice; the first start failed with {first_error})"
    return ReportResult(
        report_id=task.report_id,
        status="ok" if error is None else "failed",
        duration_s=round(time.perf_counter() - t0, 3),
        output=task.html if error is None else None,
        notebook=task.notebook,
        error=error,
        timings={k: round(v, 3) for k, v in timings.items()},
        kernel_starts=1 if first_error is None else 2,
    )


def _plain_kernel_manager_class() -> type:
    """jupyter's own kernel manager, telling the runner each kernel's pid (to stop it on abort)."""
    from jupyter_client import AsyncKernelManager

    class PlainKernelManager(AsyncKernelManager):
        async def _async_post_start_kernel(self, **kw: Any) -> None:
            await super()._async_post_start_kernel(**kw)
            pid = getattr(self.provisioner, "pid", None)
            if pid:
                _record_pid(pid)

    return PlainKernelManager


def _run_all(
    tasks: Sequence[ReportTask],
    results: dict[str, ReportResult],
    abort: _Abort,
    *,
    workers: int,
    on_result: Callable[[ReportResult], None] | None,
    run: dict[str, Any],
) -> None:
    """Run ``tasks`` on a thread pool, filling ``results``; stop everything on abort or interrupt.

    Ctrl-C (or SIGTERM, turned into :class:`~spm_models.exceptions.Interrupted` by the CLI)
    reaches the main thread here: reports not started are cancelled, running kernels are
    killed, their threads finish, and the interruption goes on up, so the caller can keep what
    finished.
    """
    gate = _Gate(workers, abort)
    pool = ThreadPoolExecutor(max_workers=2 * max(1, int(workers)), thread_name_prefix="spm-report")
    try:
        futures = {pool.submit(_run_one, t, gate=gate, abort=abort, **run): t for t in tasks}
        for fut in as_completed(futures):
            t = futures[fut]
            try:
                res = fut.result()
            except Exception as exc:  # a bug outside the kernel: still only this report fails
                if is_disk_full(exc):
                    abort.trigger("the disk is full", disk_full=exc)
                res = ReportResult(
                    t.report_id, "failed", 0.0, None, t.notebook, f"{_error_text(exc)}\n{traceback.format_exc(limit=3)}"
                )
            results[t.report_id] = res
            # after the disk filled up, one message says so (not one failure per report)
            if on_result is not None and not abort.event.is_set():
                on_result(res)
    except BaseException:
        abort.trigger("interrupted")
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def execute_reports(
    tasks: Sequence[ReportTask],
    *,
    run_folder: str | Path,
    artifacts_dir: str | Path,
    workers: int = 1,
    timeout: float = 300.0,
    kernel: str = "auto",
    templates_dir: str | Path | None = None,
    on_result: Callable[[ReportResult], None] | None = None,
    log: TextIO | None = None,
    server: Any = None,
) -> tuple[list[ReportResult], dict[str, float]]:
    """Run every task; return the results (in task order) and the set-up timings.

    Parameters
    ----------
    tasks : sequence of ReportTask
        Parameters are checked again here, all before any kernel starts.
    run_folder : path-like
        Where outputs go (task paths are relative to it and must stay inside it).
    artifacts_dir : path-like
        The run's artifacts, loaded once by the fork server.
    workers : int
        Reports executing cells at the same time (kernels of the next ones start meanwhile).
    timeout : float
        Seconds one report may take.
    kernel : {"auto", "fork", "plain"}
        Fork-server kernels, one ordinary kernel process per report, or (default) fork-server
        kernels where the platform can fork and plain ones elsewhere
        (:func:`spm_models.review.kernels.mode.resolve_kernel_mode`).
    on_result : callable, optional
        Called with each result as it completes (progress display).
    log : text stream, optional
        Where the one-line warning goes when ``"auto"`` falls back to plain kernels
        (default stderr).
    server : ForkServer, optional
        A running fork server of these artifacts to use (with ``kernel`` resolving to
        ``"fork"``) instead of starting one; it is left running. A cluster worker keeps one for
        every batch of reports it runs (:mod:`spm_models.review.cluster`).

    Raises
    ------
    ConfigError
        A task's parameters do not fit its template, or ``kernel`` is not a mode or is
        ``"fork"`` where forking is not available (nothing has run).
    ReportError
        The kernel server cannot start.
    """
    import nbformat

    from spm_models.review.kernels.mode import resolve_kernel_mode
    from spm_models.review.params import check_template

    kernel, fallback = resolve_kernel_mode(kernel)
    run_folder = Path(run_folder)
    for t in tasks:
        check_parameters(t.template, t.parameters)
        inside(run_folder, t.html)
        inside(run_folder, t.notebook)
    templates = {}
    for name in sorted({t.template for t in tasks}):
        nb = nbformat.read(template_path(name, folder=templates_dir), as_version=4)
        check_template(name, nb)
        templates[name] = nb
    setup: dict[str, float] = {}
    own_server = server is None
    km_class = None
    if tasks and fallback:
        (log or sys.stderr).write(f"warning: {fallback}\n")
    if tasks and kernel == "fork":
        from spm_models.review.kernels.client import ForkServer
        from spm_models.review.kernels.provisioner import fork_kernel_manager_class

        if own_server:
            server = ForkServer(run_dir=artifacts_dir).start()
            setup["kernel_server_start"] = round(server.startup_seconds or 0.0, 3)
        km_class = fork_kernel_manager_class(server, on_launch=_record_pid)
    else:
        server = None
        km_class = _plain_kernel_manager_class() if tasks else None
    results: dict[str, ReportResult] = {}
    abort = _Abort()
    try:
        _run_all(
            tasks,
            results,
            abort,
            workers=workers,
            on_result=on_result,
            run=dict(run_folder=run_folder, templates=templates, km_class=km_class, timeout=timeout),
        )
    finally:
        if server is not None and own_server:
            try:
                st = server.stats()
                setup["kernels"] = st.get("kernels", 0)
                setup["kernel_cpu_s"] = round(st.get("cpu_user", 0.0) + st.get("cpu_system", 0.0), 3)
            except (OSError, ValueError, ReportError):
                pass
            server.close()
    if abort.disk_full is not None:
        done = [r for r in results.values() if r.status != "skipped"]
        error = DiskFullError(f"{abort.reason} ({_error_text(abort.disk_full)})")
        error.results = done
        raise error from abort.disk_full
    return [results[t.report_id] for t in tasks], setup
