"""The review's side of the fork server: start it (:class:`ForkServer`) and ask it for kernels.

:class:`ForkServer` starts the server process (:mod:`spm_models.review.kernels.server`, which
describes how it works and its protocol), waits until it is ready, writes the kernel spec that
points jupyter_client at it, and stops it. :class:`ForkServerClient` makes the requests; it
needs only the server's address, which is all a kernel provisioner gets from the spec.
"""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from spm_models.exceptions import ReportError
from spm_models.review.kernels.server import KERNEL_PRELOAD, LOG_TAIL, READY

__all__ = ["FORK_KERNEL_NAME", "FORK_PROVISIONER_NAME", "ForkServer", "ForkServerClient", "KernelRef"]

#: Name of the kernel spec a running server writes (in :attr:`ForkServer.kernel_dir`).
FORK_KERNEL_NAME = "spm-fork"
#: Entry point (group ``jupyter_client.kernel_provisioners``) of the fork-server provisioner.
FORK_PROVISIONER_NAME = "spm-fork-provisioner"


class KernelRef(NamedTuple):
    """A kernel the server forked: its key (never reused by that server) and its pid."""

    key: int
    pid: int


class ForkServerClient:
    """Requests to a running fork server; all a kernel provisioner needs is the address.

    Parameters
    ----------
    address : str
        The server's Unix socket (:attr:`ForkServer.address`).
    """

    def __init__(self, address: str):
        self.address = address

    def fork_kernel(
        self, connection_file: str | os.PathLike, *, cwd: str | os.PathLike, log: str | os.PathLike | None = None
    ) -> KernelRef:
        """Fork a kernel serving ``connection_file``, working in ``cwd``.

        Parameters
        ----------
        connection_file : path-like
            Written by the kernel manager; the kernel binds the ports it names.
        cwd : path-like
            The kernel's working directory.
        log : path-like, optional
            File for the kernel's stdout and stderr (default: discarded).

        Returns
        -------
        KernelRef
            Once the child has started (working directory and log set up).

        Raises
        ------
        ReportError
            The server is not running, or the child could not start (the message says why).
        """
        request = {
            "op": "fork",
            "connection_file": str(connection_file),
            "cwd": str(cwd),
            "log": None if log is None else str(log),
        }
        reply = self._ask(request, timeout=90)
        if "pid" not in reply:
            raise ReportError(f"the report kernel server could not start a kernel: {reply.get('error', 'no reply')}")
        return KernelRef(int(reply["kernel"]), int(reply["pid"]))

    def returncode(self, key: int) -> int | None:
        """``None`` while kernel ``key`` runs, then its exit code (``-N`` when signal N ended it).

        Raises
        ------
        ReportError
            The server is not running (it killed its kernels when it stopped).
        """
        return self._ask({"op": "status", "kernel": key}, timeout=30)["returncode"]

    def send_signal(self, key: int, signum: int) -> bool:
        """Send ``signum`` to kernel ``key``'s process group; ``False`` if the kernel has ended."""
        return bool(self._ask({"op": "signal", "kernel": key, "signum": int(signum)}, timeout=30).get("sent"))

    def stats(self) -> dict:
        """``{"kernels": n, "cpu_user": s, "cpu_system": s}`` over the kernels that have ended."""
        return self._ask({"op": "stats"}, timeout=30)

    def _ask(self, request: dict, *, timeout: float) -> dict:
        """Send one JSON line to the server and return its one-line JSON reply."""
        try:
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
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise ReportError(f"the report kernel server is not running ({exc})") from exc
        reply = json.loads(data.decode() or "{}")
        if "error" in reply and request.get("op") != "fork":
            raise ReportError(f"the report kernel server refused {request.get('op')!r}: {reply['error']}")
        return reply


class ForkServer(ForkServerClient):
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
        super().__init__(str(Path(self._tmp.name) / "server.sock"))
        #: Folder holding the kernel spec :data:`FORK_KERNEL_NAME` (give it to a ``KernelSpecManager``).
        self.kernel_dir = str(Path(self._tmp.name) / "kernels")
        #: The server's stderr (what it, or a kernel before its own log is open, writes there).
        self.log_path = Path(self._tmp.name) / "server.log"
        self.process: subprocess.Popen | None = None
        self.startup_seconds: float | None = None
        #: Native threads of the server process when it was ready to fork (1 on Linux without artifacts).
        self.os_threads: int | None = None
        #: Python threads of the server process when it was ready to fork (must be 1).
        self.python_threads: int | None = None

    def start(self) -> ForkServer:
        """Start the server process, wait until it has imported everything, write its kernel spec.

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
            if line.startswith(READY):
                fields = dict(f.split("=", 1) for f in line.split()[1:] if "=" in f)
                self.os_threads = int(fields["threads"]) if "threads" in fields else None
                self.python_threads = int(fields["python_threads"]) if "python_threads" in fields else None
                break
            if line == "":
                self.process.wait()
                tail = self.log_tail()
                self.close()
                raise ReportError(f"the report kernel server failed to start: {tail}")
        self.process.stdout.close()  # the server writes nothing more there
        self._write_kernel_spec()
        self.startup_seconds = time.perf_counter() - t0
        return self

    def _write_kernel_spec(self) -> None:
        folder = Path(self.kernel_dir) / FORK_KERNEL_NAME
        folder.mkdir(parents=True, exist_ok=True)
        spec = {
            # what a fork amounts to; the provisioner forks instead of running it
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "SPM report kernel (fork server)",
            "language": "python",
            "interrupt_mode": "signal",
            "metadata": {
                "kernel_provisioner": {
                    "provisioner_name": FORK_PROVISIONER_NAME,
                    "config": {"server_address": self.address},
                }
            },
        }
        (folder / "kernel.json").write_text(json.dumps(spec, indent=1), encoding="utf-8")

    def log_tail(self, chars: int = LOG_TAIL) -> str:
        """The last ``chars`` characters of the server's stderr (``""`` if it wrote none)."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(max(0, f.seek(0, os.SEEK_END) - chars))
                return f.read().decode(errors="replace").strip()
        except OSError:
            return ""

    def _ask(self, request: dict, *, timeout: float) -> dict:
        if self.process is None or self.process.poll() is not None:
            raise ReportError(f"the report kernel server is not running: {self.log_tail()}")
        return super()._ask(request, timeout=timeout)

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
