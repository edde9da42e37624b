"""`make lab`: the target's recipe, and JupyterLab starting headless and answering on /api."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _recipe(target: str) -> str:
    out = subprocess.run(["make", "-n", "-B", target, "STAMP=/dev/null"], cwd=ROOT, capture_output=True, text=True)
    return out.stdout + out.stderr


def test_lab_target_registers_the_kernel_makes_data_and_starts_lab():
    text = _recipe("lab")
    assert '-m ipykernel install --sys-prefix --name spm-workbench --display-name "SPM Workbench"' in text
    assert "test -f data/warehouse.duckdb || .venv/bin/spm demo" in text
    assert "jupyter lab --notebook-dir notebooks" in text


def test_lab_args_are_passed_through():
    out = subprocess.run(
        ["make", "-n", "-B", "lab", "STAMP=/dev/null", "LAB_ARGS=--no-browser --port 9999"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert "jupyter lab --notebook-dir notebooks --no-browser --port 9999" in out.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not (BIN / "jupyter").exists(), reason="jupyter is not installed in this environment")
def test_jupyterlab_starts_headless_and_answers(tmp_path):
    port = _free_port()
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt"), "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg")}
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
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline, body = time.monotonic() + 60, None
        while time.monotonic() < deadline and body is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api", timeout=2) as r:
                    body = json.loads(r.read())
            except OSError:
                time.sleep(0.5)
        assert body is not None and "version" in body, "JupyterLab did not answer on /api within 60 s"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents", timeout=5) as r:
            names = {c["name"] for c in json.loads(r.read())["content"]}
        assert {"explorer.ipynb", "quota_planning.ipynb"} <= names
    finally:
        proc.terminate()
        proc.wait(timeout=20)
