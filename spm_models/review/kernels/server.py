"""A fork server for report kernels: pay the imports once, start every kernel from a clean copy.

Starting a Jupyter kernel the usual way costs a new Python process, then importing pandas,
matplotlib, seaborn and this package inside it: seconds of CPU per report, more than the
report itself. The fork server is one Python process that imports all of that once (and,
optionally, loads the run's artifacts into memory and indexes their rows by id), builds a few
blank figures (:func:`spm_models.present.figures.stock`), then waits. For each report the
runner asks it for a kernel; it ``fork()``s, and the child becomes an ordinary IPython kernel
(``ipykernel``) listening on the ports of the connection file the kernel manager wrote.
nbclient (through papermill) talks to it exactly as to a kernel it launched itself; the
kernel manager finds the server through the kernel spec its handle writes
(:class:`~spm_models.review.kernels.client.ForkServer`, which starts and stops this process),
whose provisioner is :class:`~spm_models.review.kernels.provisioner.ForkProvisioner`.

Why this does not leak state between reports: every kernel is a fresh child forked from the
same pristine parent, which never runs report code. Whatever one report does (globals,
``rcParams``, caches, monkey-patching, ``sys.modules``) dies with its process; the next kernel
starts again from the parent's untouched memory (copy-on-write). Before it serves, the parent
freezes its objects (``gc.freeze``), so a kernel's garbage collections skip them. The parent runs no
Python threads; BLAS/OpenMP pools are limited to the calling thread and pyarrow's jemalloc
background thread is off, so the only native threads it may hold when it forks are Arrow's
I/O and CPU pools from reading the artifacts, which Arrow re-creates in a forked child.
The ready line reports the parent's thread counts (``ForkServer.os_threads`` and
``ForkServer.python_threads``).

Protocol: the server listens on a Unix socket. A client connects, sends one JSON line and
reads one JSON line back:

* ``{"op": "fork", "connection_file": ..., "cwd": ..., "log": ...}`` answers
  ``{"kernel": <key>, "pid": <pid>}`` once the child has made itself a process-group leader,
  moved to ``cwd`` and opened its log, or ``{"error": ...}`` when it could not (the child
  reports through a pipe; the server never names a pid that did not start);
* ``{"op": "status", "kernel": <key>}`` answers ``{"returncode": null}`` while the kernel runs,
  then its exit status as :mod:`subprocess` gives it (the exit code, or ``-N`` for signal N);
* ``{"op": "signal", "kernel": <key>, "signum": N}`` signals the kernel's process group if the
  kernel is still running, answering ``{"sent": true}``, else ``{"sent": false}``;
* ``{"op": "stats"}`` answers the number of kernels that ended and their total CPU seconds
  (``os.wait4`` resource usage), which the benchmark reports.

The server is the kernels' parent and their only reaper, and it reaps only in its own loop,
between requests. A pid it has not reaped cannot have been reused, so its answers about a
kernel cannot be fooled by pid reuse; clients never probe pids themselves. Kernels are named
by a key the server never reuses. A connection that sends no complete request within
``request_timeout`` seconds is dropped. The server's stderr goes to a log file, never to a
pipe nobody reads; its last lines are quoted when the server fails. On ``SIGTERM`` (or when its
stdin closes) the server kills its kernels and exits.
"""

from __future__ import annotations

import gc
import json
import os
import select
import signal
import socket
import sys
import time
from collections.abc import Sequence
from typing import NoReturn

__all__ = ["KERNEL_PRELOAD", "serve"]

#: Modules a report kernel needs, imported once by the fork server.
KERNEL_PRELOAD: tuple[str, ...] = (
    "numpy",
    "pandas",
    "pyarrow",
    "pyarrow.parquet",
    "matplotlib",
    "matplotlib.figure",
    "matplotlib.backends.backend_agg",
    "seaborn",
    "IPython",
    "ipykernel.kernelapp",
    # what ipykernel imports while a kernel starts (found by comparing sys.modules in a child)
    "IPython.core.completerlib",
    "IPython.core.debugger",
    "IPython.core.oinspect",
    "IPython.extensions.storemagic",
    "IPython.utils.wildcard",
    "faulthandler",
    "resource",
    "tornado.platform.asyncio",
    "ipykernel.ipkernel",
    "ipykernel.zmqshell",
    "ipykernel.debugger",  # pulls in debugpy: 0.1 s per kernel if left to the child
    "ipykernel.comm",
    "tornado.ioloop",
    "pdb",
    "matplotlib_inline.backend_inline",
    "spm_models.present.plots",
    "spm_models.review.render",
    "spm_models.review.page",
    "spm_models.review.company",
    "spm_models.review.views",
    "spm_models.review.monthly",
    "spm_models.review.plan_views",
    "spm_models.review.render_plans",
)
#: First line the server prints on stdout once it is ready to fork (then its thread counts).
READY = "spm-forkserver-ready"
#: Longest error text a child sends back, and the tail of the server log quoted in errors.
LOG_TAIL = 4000
_MAX_REQUEST = 1 << 20


def _run_kernel(connection_file: str, parent: int) -> int:
    """Be an IPython kernel until it shuts down; return the exit code.

    The kernel's settings are given as a configuration, the form its command line is parsed
    into, not as a command line: to parse one, traitlets builds an argparse parser of every
    option of every configurable class. They still override the user's IPython configuration
    files, as command-line options do. (This and the addresses listed once in :func:`serve`:
    0.124 -> 0.113 kernel CPU s for a report of only its parameters and view, ``bench/README.md``.)
    """
    from ipykernel.kernelapp import IPKernelApp
    from traitlets.config import Config

    class ForkedKernelApp(IPKernelApp):
        def parse_command_line(self, argv=None) -> None:
            self.argv, self.extra_args = [], []
            self.update_config(self.cli_config)

    app = ForkedKernelApp.instance()
    app.cli_config = Config(
        {
            "IPKernelApp": {"connection_file": connection_file, "parent_handle": parent, "quiet": True},
            "HistoryManager": {"enabled": False},
        }
    )
    app.initialize([])
    app.start()
    return 0


def _child(
    request: dict, status_fd: int, parent: int, *, sockets: Sequence[socket.socket], fds: Sequence[int]
) -> NoReturn:
    """Body of a forked child: set up, report on ``status_fd``, become a kernel, never return.

    Whatever happens, the child ends in ``os._exit``: it never unwinds into the server's code
    it was copied from (whose clean-up would kill the sibling kernels). A failure before the
    kernel starts goes back to the server through ``status_fd``; after that, into the log.
    """
    code = 1
    try:
        for sock in sockets:  # the server's listener and this request's connection
            sock.close()
        for fd in fds:
            os.close(fd)
        os.setpgid(0, 0)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.chdir(request["cwd"])
        log = os.open(request.get("log") or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(null)
        os.close(log)
        os.write(status_fd, b"ok")
        os.close(status_fd)
        status_fd = -1
        code = _run_kernel(request["connection_file"], parent)
    except BaseException as exc:
        try:
            if status_fd >= 0:
                os.write(status_fd, f"{type(exc).__name__}: {exc}".encode(errors="replace")[:LOG_TAIL])
            else:
                import traceback

                traceback.print_exc()
        except BaseException:
            pass
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


class _Server:
    """The server process's state: its kernels, their exit statuses and CPU, the listener."""

    def __init__(self, address: str, *, request_timeout: float, start_timeout: float = 30.0):
        self.request_timeout = request_timeout
        self.start_timeout = start_timeout
        self.usage = {"kernels": 0, "cpu_user": 0.0, "cpu_system": 0.0}
        self.returncodes: dict[int, int | None] = {}  # key -> None while running, then exit status
        self.running: dict[int, int] = {}  # pid -> key, for kernels not yet reaped
        self.next_key = 1
        self.stopping = False
        self.me = os.getpid()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(address)
        self.listener.listen(64)

    def loop(self) -> None:
        """Serve until SIGTERM or until stdin closes, then kill the remaining kernels."""
        try:
            while not self.stopping:
                self.reap()
                try:
                    ready, _, _ = select.select([self.listener, 0], [], [], 1.0)
                except InterruptedError:
                    continue
                if 0 in ready and not os.read(0, 4096):
                    break  # our parent went away
                if self.listener in ready:
                    conn, _ = self.listener.accept()
                    with conn:
                        self.serve_connection(conn)
        finally:
            self.reap()
            for pid in self.running:  # not reaped, so these pids are still our kernels
                try:
                    os.killpg(pid, signal.SIGKILL)
                except OSError:
                    pass
            self.listener.close()

    def serve_connection(self, conn: socket.socket) -> None:
        """Read one request (within ``request_timeout``) and answer it."""
        conn.settimeout(self.request_timeout)
        data = b""
        try:
            while not data.endswith(b"\n") and len(data) < _MAX_REQUEST:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
        except OSError:  # timed out or reset: drop this client, serve the next
            return
        try:
            reply = self.answer(json.loads(data.decode()), conn)
        except Exception as exc:  # a bad request: answer it, keep serving
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        try:
            conn.sendall((json.dumps(reply) + "\n").encode())
        except OSError:
            pass

    def answer(self, request: dict, conn: socket.socket) -> dict:
        op = request.get("op")
        self.reap()
        if op == "stats":
            return dict(self.usage)
        if op == "fork":
            return self.fork(request, conn)
        if op in ("status", "signal"):
            key = int(request["kernel"])
            if key not in self.returncodes:
                raise KeyError(f"no kernel {key} was started by this server")
            if op == "status":
                return {"returncode": self.returncodes[key]}
            pid = next((p for p, k in self.running.items() if k == key), None)
            if pid is None:
                return {"sent": False}
            try:
                os.killpg(pid, int(request["signum"]))
            except OSError:
                try:
                    os.kill(pid, int(request["signum"]))
                except OSError:
                    return {"sent": False}
            return {"sent": True}
        raise ValueError(f"unknown request {op!r}")

    def fork(self, request: dict, conn: socket.socket) -> dict:
        """Fork a kernel; reply with its key and pid only once it reports that it started."""
        for name in ("connection_file", "cwd"):
            if not isinstance(request.get(name), str):
                raise ValueError(f"a fork request needs {name!r}")
        r, w = os.pipe()
        try:
            pid = os.fork()
        except OSError:  # out of processes or memory: answered as an error, the server goes on
            os.close(r)
            os.close(w)
            raise
        if pid == 0:
            _child(request, w, self.me, sockets=(self.listener, conn), fds=(r,))
        os.close(w)
        try:
            status = self._read_status(r)
        finally:
            os.close(r)
        if status == b"ok":
            key, self.next_key = self.next_key, self.next_key + 1
            self.running[pid] = key
            self.returncodes[key] = None
            return {"kernel": key, "pid": pid}
        if status is None:  # no word within start_timeout: it will not become a kernel
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
            return {"error": f"the kernel process did not start within {self.start_timeout:.0f} s"}
        return {"error": status.decode(errors="replace") or "the kernel process ended before it started"}

    def _read_status(self, fd: int) -> bytes | None:
        """What the child wrote before closing its end of the pipe; ``None`` if it took too long."""
        deadline = time.monotonic() + self.start_timeout
        data = b""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], remaining)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    return data
                data += chunk

    def reap(self) -> None:
        """Collect every ended child: its exit status and CPU time."""
        while True:
            try:
                pid, status, ru = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            key = self.running.pop(pid, None)
            if key is None:  # a child that never became a kernel
                continue
            self.returncodes[key] = os.waitstatus_to_exitcode(status)
            self.usage["kernels"] += 1
            self.usage["cpu_user"] += ru.ru_utime
            self.usage["cpu_system"] += ru.ru_stime


def _count_threads() -> int:
    try:
        return len(os.listdir(f"/proc/{os.getpid()}/task"))
    except OSError:  # not Linux
        return 0


def serve(address: str, preload: Sequence[str], run_dir: str | None, *, request_timeout: float = 10.0) -> None:
    """Run the fork server (the body of ``python -m spm_models.review.kernels.server``)."""
    import importlib
    import threading

    # Ctrl-C reaches the whole foreground group; the server stops when its parent closes its
    # stdin or terminates it, and no KeyboardInterrupt can surface in a child before it is set up.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # children stay until the loop reaps them
    for name in preload:
        importlib.import_module(name)
    if "ipykernel.kernelapp" in preload:
        from jupyter_client import localinterfaces

        # the machine's addresses, which every kernel's connection settings ask for (psutil
        # imported and the interfaces listed, in every kernel otherwise), found once
        localinterfaces.local_ips()
    if run_dir:
        from spm_models.review import views

        views.preload(run_dir)
    if "spm_models.present.plots" in preload:
        from spm_models.present import figures, plots

        plots.warm_up()  # fonts and the SVG writer loaded once, in the parent
        figures.stock()  # each kernel's first figures, axes and ticks built (a third of a chart's CPU)
    # Every object made so far moves to the permanent generation: a kernel's collections then
    # walk only what the kernel made, not the parent's millions of objects, and do not copy
    # the parent's pages by touching their headers (fork-server practice, gc.freeze docs).
    gc.collect()
    gc.freeze()
    server = _Server(address, request_timeout=request_timeout)

    def stop(*_):
        server.stopping = True

    signal.signal(signal.SIGTERM, stop)
    sys.stdout.write(f"{READY} threads={_count_threads()} python_threads={threading.active_count()}\n")
    sys.stdout.flush()
    os.dup2(2, 1)  # nothing more goes to the ready pipe, which the client stops reading
    server.loop()


if __name__ == "__main__":  # pragma: no cover - the server process entry point
    _options = json.loads(sys.argv[1])
    serve(
        _options["address"],
        _options["preload"],
        _options["run_dir"],
        request_timeout=float(_options["request_timeout"]),
    )
