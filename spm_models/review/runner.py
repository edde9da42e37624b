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
"""

from __future__ import annotations

import copy
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


_slot = threading.local()


def _record_pid(pid: int) -> None:
    box = getattr(_slot, "box", None)
    if box is not None:
        box["pid"] = pid


class _Gate:
    """At most ``workers`` reports executing cells at once; held from the first cell to the last."""

    def __init__(self, workers: int):
        self._sem = threading.Semaphore(max(1, int(workers)))

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
                on_acquire()

        def on_executed(cell=None, cell_index=0, **_):
            if cell_index >= n_cells - 1:
                release()

        return {"on_cell_start": on_start, "on_cell_executed": on_executed}, release, state


class _Watchdog:
    """Kills the report's kernel when it overruns its time, counted from when it starts computing."""

    def __init__(self, timeout: float):
        self.box: dict[str, Any] = {}
        self.fired = False
        self._timer = threading.Timer(timeout, self._fire)
        self._timer.daemon = True

    def _fire(self) -> None:
        pid = self.box.get("pid")
        self.fired = True
        if pid:
            import signal

            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass

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


def _run_one(
    task: ReportTask, *, run_folder: Path, templates: dict[str, Any], km_class: type | None, timeout: float, gate: _Gate
) -> ReportResult:
    import nbformat
    import papermill

    t0 = time.perf_counter()
    html_path = inside(run_folder, task.html)
    nb_path = inside(run_folder, task.notebook)
    nb_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_nb = nb_path.with_name(f".tmp-{threading.get_ident()}-{nb_path.name}")
    timings: dict[str, float] = {}
    extra = {"kernel_manager_class": km_class} if km_class is not None else {}
    error = None
    nb = None
    template = templates[task.template]
    with _Watchdog(timeout) as dog:
        hooks, release, state = gate.hooks(len(template.cells) + 1, dog.arm)  # + the injected parameters cell
        try:
            nb = papermill.execute_notebook(
                copy.deepcopy(template),
                str(tmp_nb),
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
            error = _error_text(exc)
            if dog.fired:
                error = f"timed out after {timeout:.0f} s (the kernel was stopped)"
        finally:
            release()
    t_end = time.perf_counter()
    ready, acquired = state.get("ready_at", t_end), state.get("acquired_at", t_end)
    timings["kernel_start"] = ready - t0  # launch, handshake, parameters
    timings["queued"] = acquired - ready  # waiting for a free worker
    timings["execute"] = t_end - acquired  # cells and shutdown
    if tmp_nb.exists():
        os.replace(tmp_nb, nb_path)
        if nb is None:
            nb = nbformat.read(nb_path, as_version=4)
    else:  # nothing was written (the kernel died before papermill could save): keep a record
        failed = copy.deepcopy(templates[task.template])
        failed.cells.insert(0, nbformat.v4.new_markdown_cell(f"**This report failed:** {error}"))
        write_atomic(nb_path, nbformat.writes(failed))
    if error is None:
        t1 = time.perf_counter()
        try:
            write_atomic(html_path, to_html(nb, title=task.subject))
        except Exception as exc:  # recorded as this report's failure
            error = f"HTML export failed: {_error_text(exc)}"
        timings["export"] = time.perf_counter() - t1
    if error is not None and html_path.exists():
        html_path.unlink()  # never leave an earlier run's page looking current
    return ReportResult(
        report_id=task.report_id,
        status="ok" if error is None else "failed",
        duration_s=round(time.perf_counter() - t0, 3),
        output=task.html if error is None else None,
        notebook=task.notebook,
        error=error,
        timings={k: round(v, 3) for k, v in timings.items()},
    )


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
    server = None
    km_class = None
    if tasks and fallback:
        (log or sys.stderr).write(f"warning: {fallback}\n")
    if tasks and kernel == "fork":
        from spm_models.review.kernels.client import ForkServer
        from spm_models.review.kernels.provisioner import fork_kernel_manager_class

        server = ForkServer(run_dir=artifacts_dir).start()
        setup["kernel_server_start"] = round(server.startup_seconds or 0.0, 3)
        km_class = fork_kernel_manager_class(server, on_launch=_record_pid)
    results: dict[str, ReportResult] = {}
    try:
        gate = _Gate(workers)
        with ThreadPoolExecutor(max_workers=2 * max(1, int(workers)), thread_name_prefix="spm-report") as pool:
            futures = {
                pool.submit(
                    _run_one,
                    t,
                    run_folder=run_folder,
                    templates=templates,
                    km_class=km_class,
                    timeout=timeout,
                    gate=gate,
                ): t
                for t in tasks
            }
            for fut in as_completed(futures):
                t = futures[fut]
                try:
                    res = fut.result()
                except Exception as exc:  # a bug outside the kernel: still only this report fails
                    res = ReportResult(
                        t.report_id,
                        "failed",
                        0.0,
                        None,
                        t.notebook,
                        f"{_error_text(exc)}\n{traceback.format_exc(limit=3)}",
                    )
                results[t.report_id] = res
                if on_result is not None:
                    on_result(res)
    finally:
        if server is not None:
            try:
                st = server.stats()
                setup["kernels"] = st.get("kernels", 0)
                setup["kernel_cpu_s"] = round(st.get("cpu_user", 0.0) + st.get("cpu_system", 0.0), 3)
            except (OSError, ValueError):
                pass
            server.close()
    return [results[t.report_id] for t in tasks], setup
