"""What `make lab` starts: JupyterLab, headless, answering on /api with the workbench notebooks.

JupyterLab is a dependency of the project, so this test fails (it does not skip) when the
``jupyter`` command is missing from the environment.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_jupyterlab_starts_headless_and_answers(tmp_path):
    port = _free_port()
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt"), "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg")}
    log = tmp_path / "lab.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [
                str(BIN / "jupyter"),
                "lab",
                "--notebook-dir",
                str(ROOT / "notebooks"),
                "--no-browser",
                "--port",
                str(port),
                "--ip",
                "127.0.0.1",
                "--allow-root",
                "--IdentityProvider.token=",
                "--ServerApp.password=",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline, body = time.monotonic() + 60, None
        while time.monotonic() < deadline and body is None and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api", timeout=2) as r:
                    body = json.loads(r.read())
            except OSError:
                time.sleep(0.5)
        assert body is not None and "version" in body, (
            f"JupyterLab did not answer on /api within 60 s (exit code {proc.poll()}):\n" + log.read_text()[-3000:]
        )
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents", timeout=5) as r:
            names = {c["name"] for c in json.loads(r.read())["content"]}
        served = {p.name for p in (ROOT / "notebooks").glob("*.ipynb")}
        assert served and served <= names, names
    finally:
        proc.terminate()
        proc.wait(timeout=20)
