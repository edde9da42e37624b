"""Jupyter kernel manager whose kernels come from a :class:`~.forkserver.ForkServer`.

nbclient (and papermill on top of it) starts kernels through a ``KernelManager`` class;
:func:`fork_kernel_manager_class` returns one bound to a running fork server. Everything
except the launch is jupyter_client's own code: the manager writes the connection file,
the server forks a kernel that serves it, and the provisioner below tracks that process by
pid (poll, signal, kill), as the stock ``LocalProvisioner`` does for a ``Popen``.
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

from spm_models.review.kernels.server import ForkServer

__all__ = ["fork_kernel_manager_class", "ForkedProcess", "ForkProvisioner"]


class ForkedProcess:
    """The ``Popen``-like view of a forked kernel that ``LocalProvisioner`` expects."""

    stdin = stdout = stderr = None

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                self.returncode = 0  # reaped by the server; its exit status is not ours to read
            except PermissionError:
                pass
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"kernel {self.pid} still running")
            time.sleep(0.02)
        return self.returncode  # type: ignore[return-value]

    def send_signal(self, signum: int) -> None:
        try:
            os.kill(self.pid, signum)
        except ProcessLookupError:
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
        pid = self.server.fork_kernel(km.connection_file, cwd=cwd, log=os.environ.get("SPM_KERNEL_LOG"))
        self.process = ForkedProcess(pid)
        if type(self).on_launch is not None:
            type(self).on_launch(pid)
        self.pid = pid
        self.pgid = pid  # the kernel made itself a process-group leader
        self.cwd = cwd
        return self.connection_info


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
