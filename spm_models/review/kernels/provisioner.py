"""Jupyter kernel manager whose kernels come from a :class:`~spm_models.review.kernels.client.ForkServer`.

nbclient (and papermill on top of it) starts kernels through a ``KernelManager`` class;
:func:`fork_kernel_manager_class` returns one bound to a running fork server. Everything
except the launch is jupyter_client's own code: the manager writes the connection file,
the server forks a kernel that serves it, and the provisioner below tracks that process
(poll, signal, kill) through :class:`ForkedProcess`, as the stock ``LocalProvisioner`` does
for a ``Popen``. The server is the kernel's parent, so only it knows whether the kernel still
runs and how it ended: :class:`ForkedProcess` asks it, and signals go through it too, so a
pid that the system has since given to another process is never probed or signalled.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any

from jupyter_client import AsyncKernelManager
from jupyter_client.kernelspec import KernelSpec
from jupyter_client.provisioning import LocalProvisioner

from spm_models.exceptions import ReportError
from spm_models.review.kernels.client import ForkServer, ForkServerClient, KernelRef

__all__ = ["fork_kernel_manager_class", "ForkedProcess", "ForkProvisioner"]


class ForkedProcess:
    """The ``Popen``-like view of a forked kernel that ``LocalProvisioner`` expects.

    Parameters
    ----------
    client : ForkServerClient
        The server that forked the kernel (its parent and reaper).
    kernel : KernelRef
        The kernel's key on that server, and its pid.
    """

    stdin = stdout = stderr = None

    def __init__(self, client: ForkServerClient, kernel: KernelRef):
        self.client = client
        self.key = kernel.key
        self.pid = kernel.pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        """``None`` while the kernel runs, then its exit status (``-N`` when signal N ended it).

        The server answers; when it has stopped, it has killed its kernels, so the kernel reads
        as killed (``-SIGKILL``).
        """
        if self.returncode is None:
            try:
                self.returncode = self.client.returncode(self.key)
            except ReportError:
                self.returncode = -signal.SIGKILL
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the kernel to end and return :meth:`poll`'s status.

        Raises
        ------
        TimeoutError
            The kernel still runs after ``timeout`` seconds.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"kernel {self.pid} still running")
            time.sleep(0.02)
        return self.returncode  # type: ignore[return-value]

    def send_signal(self, signum: int) -> None:
        """Signal the kernel's process group, if the kernel still runs (the server checks; else nothing)."""
        if self.returncode is None:
            try:
                self.client.send_signal(self.key, signum)
            except ReportError:  # the server has stopped, and its kernels with it
                pass

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


class ForkProvisioner(LocalProvisioner):
    """Launch by asking the fork server instead of ``Popen``; the rest is ``LocalProvisioner``."""

    server: ForkServer | None = None  # set on the subclass made per manager class
    #: Called with each new kernel's pid in the launching thread (the runner's watchdog).
    on_launch = None

    async def launch_kernel(self, cmd: list[str], **kwargs: Any):
        km = self.parent
        cwd = kwargs.get("cwd") or os.getcwd()
        kernel = self.server.fork_kernel(km.connection_file, cwd=cwd, log=os.environ.get("SPM_KERNEL_LOG"))
        self.process = ForkedProcess(self.server, kernel)
        if type(self).on_launch is not None:
            type(self).on_launch(kernel.pid)
        self.pid = kernel.pid
        self.pgid = kernel.pid  # the kernel made itself a process-group leader
        self.cwd = cwd
        return self.connection_info

    async def send_signal(self, signum: int) -> None:
        """Signal the kernel's process group through the server (see :class:`ForkedProcess`)."""
        if self.process:
            self.process.send_signal(signum)


def fork_kernel_manager_class(server: ForkServer, *, on_launch=None) -> type[AsyncKernelManager]:
    """An ``AsyncKernelManager`` subclass whose kernels are forked by ``server``.

    Pass it to nbclient or papermill as ``kernel_manager_class``. ``on_launch(pid)``, when
    given, is called with each kernel's pid as it starts.
    """
    provisioner = type(
        "BoundForkProvisioner",
        (ForkProvisioner,),
        {"server": server, "on_launch": None if on_launch is None else staticmethod(on_launch)},
    )

    class ForkKernelManager(AsyncKernelManager):
        @property
        def kernel_spec(self) -> KernelSpec:  # no kernelspec lookup: the server is the kernel
            return KernelSpec(
                argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                display_name="spm report kernel",
                language="python",
                name=self.kernel_name or "python3",
            )

        async def _async_pre_start_kernel(self, **kw: Any):
            if self.provisioner is None:
                self.provisioner = provisioner(
                    kernel_id=self.kernel_id or "", kernel_spec=self.kernel_spec, parent=self
                )
            return await super()._async_pre_start_kernel(**kw)

    return ForkKernelManager
