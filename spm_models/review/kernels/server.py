"""A fork server for report kernels: pay the imports once, start every kernel from a clean copy.

Starting a Jupyter kernel the usual way costs a new Python process, then importing pandas,
matplotlib, seaborn and this package inside it: seconds of CPU per report, more than the
report itself. The fork server is one Python process that imports all of that once (and,
optionally, loads the run's artifacts into memory), then waits. For each report the
runner asks it for a kernel; it ``fork()``s, and the child becomes an ordinary IPython kernel
(``ipykernel``) listening on the ports of the connection file the kernel manager wrote.
nbclient (through papermill) talks to it exactly as to a kernel it launched itself.

Why this does not leak state between reports: every kernel is a fresh child forked from the
same pristine parent, which never runs report code. Whatever one report does (globals,
``rcParams``, caches, monkey-patching, ``sys.modules``) dies with its process; the next kernel
starts again from the parent's untouched memory (copy-on-write). The parent runs no
Python threads; BLAS/OpenMP pools are limited to the calling thread and pyarrow's jemalloc
background thread is off, so the only native threads it may hold when it forks are Arrow's
I/O and CPU pools from reading the artifacts, which Arrow re-creates in a forked child.
The ready line reports the parent's thread count (``ForkServer.os_threads``).

Protocol: the server listens on a Unix socket. A client connects, sends one JSON line
``{"connection_file": ..., "cwd": ..., "log": ...}`` and reads one JSON line
``{"pid": <kernel pid>}`` once the child has made itself a process-group leader, moved to
``cwd`` and opened its log, or ``{"error": ...}`` when it could not (the child reports
through a pipe; the server never names a pid that did not start). Whatever happens, a child
ends in ``os._exit``: it never unwinds into the server code it was copied from, whose clean-up
would kill its sibling kernels. ``{"stats": true}`` answers the number of
kernels that ended and their total CPU seconds (``os.wait4`` resource usage), which the
benchmark reports. The server reaps each kernel as it exits (``SIGCHLD``), so a kernel's
liveness is ``kill(pid, 0)``. A connection that sends no complete request within
``request_timeout`` seconds is dropped. The server's stderr goes to a log file, never to a pipe nobody
reads (a full pipe would block the server); its last lines are quoted when the server fails.
On ``SIGTERM`` (or when its stdin closes) the server kills its kernels and exits.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from spm_models.exceptions import ReportError

__all__ = ["ForkServer", "KERNEL_PRELOAD", "serve"]

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
    "ipykernel.ipkernel",
    "ipykernel.zmqshell",
    "ipykernel.debugger",  # pulls in debugpy: 0.1 s per kernel if left to the child
    "ipykernel.comm",
    "tornado.ioloop",
    "pdb",
    "matplotlib_inline.backend_inline",
    "spm_models.present.plots",
    "spm_models.review.render",
    "spm_models.review.views",
)
_READY = "spm-forkserver-ready"
#: Longest error text a child sends back, and the tail of the server log quoted in errors.
_ERROR_CHARS = 4000
_MAX_REQUEST = 1 << 20


class ForkServer:
    """Handle on a running fork server (a child process of the caller).

    Parameters
    ----------
    preload : sequence of str
        Modules the server imports before it forks any kernel.
    run_dir : path-like, optional
        Artifacts folder to load into memory before forking
        (:func:`spm_models.review.views.preload`), so each report reads them for free.
    startup_timeout : float
        Seconds to wait for the server to finish its imports.
    request_timeout : float
        Seconds the server waits for a connected client's request before dropping it.
    """

    def __init__(
        self,
        *,
        preload: Sequence[str] = KERNEL_PRELOAD,
        run_dir: str | os.PathLike | None = None,
        startup_timeout: float = 120.0,
        request_timeout: float = 10.0,
    ):
        self.preload = tuple(preload)
        self.run_dir = None if run_dir is None else str(run_dir)
        self.startup_timeout = startup_timeout
        self.request_timeout = request_timeout
        self._tmp = tempfile.TemporaryDirectory(prefix="spm-forkserver-")
        self.address = str(Path(self._tmp.name) / "server.sock")
        #: The server's stderr (what it, or a kernel before its own log is open, writes there).
        self.log_path = Path(self._tmp.name) / "server.log"
        self.process: subprocess.Popen | None = None
        self.startup_seconds: float | None = None
        #: Native threads of the server process when it was ready to fork (1 on Linux).
        self.os_threads: int | None = None

    def start(self) -> ForkServer:
        """Start the server process and wait until it has imported everything.

        Raises
        ------
        ReportError
            The server failed or did not finish its imports within ``startup_timeout``
            (the message quotes the end of its stderr).
        """
        t0 = time.perf_counter()
        env = dict(os.environ)
        # The inline backend for every kernel; set before matplotlib is imported.
        env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
        env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
        # No native thread pools in the parent, so it is single threaded when it forks (and
        # kernels running side by side do not oversubscribe the cores): BLAS and OpenMP pools
        # of one thread, and no jemalloc background thread in pyarrow.
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env.setdefault(var, "1")
        env.setdefault("JE_ARROW_MALLOC_CONF", "background_thread:false")
        options = {
            "address": self.address,
            "preload": list(self.preload),
            "run_dir": self.run_dir,
            "request_timeout": self.request_timeout,
        }
        cmd = [sys.executable, "-m", "spm_models.review.kernels.server", json.dumps(options)]
        with open(self.log_path, "ab") as log:  # the server keeps its own descriptor
            self.process = subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=env, text=True
            )
        deadline = time.monotonic() + self.startup_timeout
        assert self.process.stdout is not None
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                tail = self.log_tail()
                self.close()
                raise ReportError(f"the report kernel server did not start within {self.startup_timeout:.0f} s: {tail}")
            ready, _, _ = select.select([self.process.stdout], [], [], remaining)
            if not ready:
                continue
            line = self.process.stdout.readline()
            if line.startswith(_READY):
                self.os_threads = int(line.split("threads=", 1)[1]) if "threads=" in line else None
                break
            if line == "":
                self.process.wait()
                tail = self.log_tail()
                self.close()
                raise ReportError(f"the report kernel server failed to start: {tail}")
        self.process.stdout.close()  # the server writes nothing more there
        self.startup_seconds = time.perf_counter() - t0
        return self

    def fork_kernel(self, connection_file: str, *, cwd: str | os.PathLike, log: str | os.PathLike | None = None) -> int:
        """Fork a kernel serving ``connection_file``; return its pid."""
        if self.process is None or self.process.poll() is not None:
            raise ReportError(f"the report kernel server is not running: {self.log_tail()}")
        request = {"connection_file": str(connection_file), "cwd": str(cwd), "log": None if log is None else str(log)}
        reply = self._ask(request, timeout=60)
        if "pid" not in reply:
            raise ReportError(f"the report kernel server could not start a kernel: {reply.get('error', 'no reply')}")
        return int(reply["pid"])

    def log_tail(self, chars: int = _ERROR_CHARS) -> str:
        """The last ``chars`` characters of the server's stderr (``""`` if it wrote none)."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(max(0, f.seek(0, os.SEEK_END) - chars))
                return f.read().decode(errors="replace").strip()
        except OSError:
            return ""

    def stats(self) -> dict:
        """``{"kernels": n, "cpu_user": s, "cpu_system": s}`` over the kernels that have ended."""
        return self._ask({"stats": True}, timeout=30)

    def _ask(self, request: dict, *, timeout: float) -> dict:
        """Send one JSON line to the server and return its one-line JSON reply (``{}`` if none)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(self.address)
            s.sendall((json.dumps(request) + "\n").encode())
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        return json.loads(data.decode() or "{}")

    def close(self) -> None:
        """Stop the server; it kills the kernels it still has."""
        p = self.process
        if p is not None and p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for stream in (p.stdin, p.stdout) if p is not None else ():
            if stream:
                stream.close()
        self.process = None
        self._tmp.cleanup()

    def __enter__(self) -> ForkServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


# --------------------------------------------------------------------------- server side


def _run_kernel(connection_file: str, parent: int) -> int:
    """Be an IPython kernel until it shuts down; return the exit code."""
    from ipykernel.kernelapp import IPKernelApp

    app = IPKernelApp.instance()
    app.initialize(
        [
            "-f",
            connection_file,
            f"--IPKernelApp.parent_handle={parent}",
            "--HistoryManager.enabled=False",
            "--IPKernelApp.quiet=True",
        ]
    )
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
                os.write(status_fd, f"{type(exc).__name__}: {exc}".encode(errors="replace")[:_ERROR_CHARS])
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


def _read_status(fd: int, timeout: float) -> bytes | None:
    """What a child wrote before closing its end of the pipe; ``None`` if it took too long."""
    deadline = time.monotonic() + timeout
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


def _fork(request: dict, *, parent: int, listener: socket.socket, conn: socket.socket, timeout: float = 30.0) -> dict:
    """Fork a kernel; answer ``{"pid": ...}`` only once it reports that it started."""
    for name in ("connection_file", "cwd"):
        if not isinstance(request.get(name), str):
            raise ValueError(f"a fork request needs {name!r}")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        _child(request, w, parent, sockets=(listener, conn), fds=(r,))
    os.close(w)
    try:
        status = _read_status(r, timeout)
    finally:
        os.close(r)
    if status == b"ok":
        return {"pid": pid}
    if status is None:  # no word within the timeout: it will not become a kernel
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
        return {"error": f"the kernel process did not start within {timeout:.0f} s"}
    return {"error": status.decode(errors="replace") or "the kernel process ended before it started"}


def serve(address: str, preload: Sequence[str], run_dir: str | None, *, request_timeout: float = 10.0) -> None:
    """Run the fork server (the body of ``python -m spm_models.review.kernels.server``)."""
    import importlib

    # Ctrl-C reaches the whole foreground group; the server stops when its parent closes its
    # stdin or terminates it, and no KeyboardInterrupt can surface in a child before it is set up.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for name in preload:
        importlib.import_module(name)
    if run_dir:
        from spm_models.review import views

        views.preload(run_dir)
    if "spm_models.present.plots" in preload:
        from spm_models.present import plots

        plots.warm_up()  # fonts, the Agg renderer and PNG encoder loaded once, in the parent
    usage = {"kernels": 0, "cpu_user": 0.0, "cpu_system": 0.0}

    def reap(*_):
        while True:
            try:
                pid, _status, ru = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            usage["kernels"] += 1
            usage["cpu_user"] += ru.ru_utime
            usage["cpu_system"] += ru.ru_stime

    signal.signal(signal.SIGCHLD, reap)
    children: list[int] = []
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(address)
    listener.listen(64)
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    try:
        n_threads = len(os.listdir(f"/proc/{os.getpid()}/task"))
    except OSError:  # not Linux
        n_threads = 0
    sys.stdout.write(f"{_READY} threads={n_threads}\n")
    sys.stdout.flush()
    os.dup2(2, 1)  # nothing more goes to the ready pipe, which the client stops reading
    me = os.getpid()
    try:
        while not stopping:
            try:
                ready, _, _ = select.select([listener, sys.stdin], [], [], 1.0)
            except InterruptedError:
                continue
            if sys.stdin in ready and not sys.stdin.readline():
                break  # our parent went away
            if listener not in ready:
                continue
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(request_timeout)
                data = b""
                try:
                    while not data.endswith(b"\n") and len(data) < _MAX_REQUEST:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                except OSError:  # timed out or reset: drop this client, serve the next
                    continue
                try:
                    req = json.loads(data.decode())
                    if req.get("stats"):
                        reap()
                        reply = dict(usage)
                    else:
                        reply = _fork(req, parent=me, listener=listener, conn=conn)
                except Exception as exc:  # bad request: answer it, keep serving
                    reply = {"error": f"{type(exc).__name__}: {exc}"}
                if "pid" in reply:
                    children.append(reply["pid"])
                try:
                    conn.sendall((json.dumps(reply) + "\n").encode())
                except OSError:
                    pass
            children = [c for c in children if _alive(c)]
    finally:
        for c in children:
            try:
                os.killpg(c, signal.SIGKILL)
            except OSError:
                pass
        listener.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


if __name__ == "__main__":  # pragma: no cover - the server process entry point
    _options = json.loads(sys.argv[1])
    serve(
        _options["address"],
        _options["preload"],
        _options["run_dir"],
        request_timeout=float(_options["request_timeout"]),
    )
