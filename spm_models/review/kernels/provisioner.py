"""The kernel provisioner that gets kernels from a :class:`~spm_models.review.kernels.client.ForkServer`.

jupyter_client chooses how a kernel starts by its kernel spec: ``metadata.kernel_provisioner``
names a provisioner registered in the ``jupyter_client.kernel_provisioners`` entry-point group
(this package registers :class:`ForkProvisioner` as ``spm-fork-provisioner``) and gives its
configuration. A running fork server writes such a spec (``spm-fork``, in
:attr:`ForkServer.kernel_dir <spm_models.review.kernels.client.ForkServer.kernel_dir>`) whose
configuration is the server's socket address, so any ``KernelManager`` whose
``KernelSpecManager`` looks in that folder starts its kernels from the server, through
jupyter_client's own ``KernelProvisionerFactory``. :func:`fork_kernel_manager_class` is that
manager, ready to give nbclient or papermill as ``kernel_manager_class``.

Everything except the launch is ``LocalProvisioner``'s code, working on :class:`ForkedProcess`,
the ``Popen``-like view of a forked kernel. The server is the kernel's parent, so only it
knows whether the kernel still runs and how it ended: :class:`ForkedProcess` asks it, and
signals go through it too, so a pid that the system has since given to another process is
never probed or signalled.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from typing import Any

from jupyter_client import AsyncKernelManager
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.provisioning import LocalProvisioner
from traitlets import Unicode, default, validate

from spm_models.exceptions import ReportError
from spm_models.review.kernels.client import FORK_KERNEL_NAME, ForkServer, ForkServerClient, KernelRef

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
    """Launch by asking the fork server at ``server_address`` instead of ``Popen``.

    Registered as the ``spm-fork-provisioner`` entry point; jupyter_client creates it for a
    kernel spec whose ``metadata.kernel_provisioner`` names it, passing the spec's
    ``config`` (``{"server_address": ...}``) as traits. A kernel manager that has an
    ``on_launch`` attribute gets it called with each new kernel's pid, in the launching thread.
    """

    server_address = Unicode(
        "", config=True, help="Unix socket of the ForkServer that forks the kernels (written in its kernel spec)."
    )

    async def launch_kernel(self, cmd: list[str], **kwargs: Any):
        if not self.server_address:
            raise ReportError("the fork-server kernel spec names no server (metadata.kernel_provisioner.config)")
        km = self.parent
        cwd = kwargs.get("cwd") or os.getcwd()
        client = ForkServerClient(self.server_address)
        kernel = client.fork_kernel(km.connection_file, cwd=cwd, log=os.environ.get("SPM_KERNEL_LOG"))
        self.process = ForkedProcess(client, kernel)
        on_launch = getattr(km, "on_launch", None)
        if on_launch is not None:
            on_launch(kernel.pid)
        self.pid = kernel.pid
        self.pgid = kernel.pid  # the kernel made itself a process-group leader
        self.cwd = cwd
        return self.connection_info

    async def send_signal(self, signum: int) -> None:
        """Signal the kernel's process group through the server (see :class:`ForkedProcess`)."""
        if self.process:
            self.process.send_signal(signum)


def fork_kernel_manager_class(
    server: ForkServer, *, on_launch: Callable[[int], None] | None = None
) -> type[AsyncKernelManager]:
    """An ``AsyncKernelManager`` subclass whose kernels are forked by ``server``.

    Its only change is where it looks for kernel specs (the server's :attr:`kernel_dir`) and
    which it starts (:data:`FORK_KERNEL_NAME`, whatever name the notebook's metadata gives, as
    nbclient passes that); jupyter_client then selects :class:`ForkProvisioner` from the spec.
    Pass it to nbclient or papermill as ``kernel_manager_class``. ``on_launch(pid)``, when
    given, is called with each kernel's pid as it starts.
    """
    kernel_dirs = [server.kernel_dir]
    hook = None if on_launch is None else staticmethod(on_launch)

    class ForkKernelManager(AsyncKernelManager):
        on_launch = hook
        kernel_name = Unicode(FORK_KERNEL_NAME)

        @default("kernel_spec_manager")
        def _server_kernel_specs(self) -> KernelSpecManager:
            return KernelSpecManager(kernel_dirs=kernel_dirs, parent=self)

        @validate("kernel_name")
        def _the_server_kernel(self, proposal) -> str:
            return FORK_KERNEL_NAME

    return ForkKernelManager
