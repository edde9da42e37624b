"""A plain kernel (one new process) that dies before its first cell is started again, once.

The fork-server kernel is tested the same way in the default suite (tests/review/test_runner.py);
this one pays a full Python start-up per kernel, so it lives here.
"""

from __future__ import annotations

import io
import socket

from jupyter_client.provisioning import local_provisioner

from spm_models.review.pipeline import run_review


def test_a_plain_kernel_that_cannot_bind_its_port_is_started_again(kit, warehouses, tmp_path, monkeypatch):
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen()
    real = local_provisioner.LocalPortCache.find_available_port
    calls = []

    def first_one_taken(self, ip):
        calls.append(ip)
        return held.getsockname()[1] if len(calls) == 1 else real(self, ip)

    monkeypatch.setattr(local_provisioner.LocalPortCache, "find_available_port", first_one_taken)
    try:
        res = run_review(
            db=warehouses[0],
            month=kit.MONTH,
            out=tmp_path,
            agents=["A0001"],
            workers=1,
            kernel="plain",
            log=io.StringIO(),
        )
    finally:
        held.close()
    (entry,) = res.manifest["reports"]
    assert entry["status"] == "ok" and entry["kernel_starts"] == 2, entry
