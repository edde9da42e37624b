"""Screenshot of ``notebooks/explorer.ipynb`` running live in JupyterLab (README, "For analysts").

What it does, in order:

1. builds the example warehouse (``spm demo``: 50 agents, seed 7, no review) in a temporary
   project folder, unless ``--warehouse`` names one;
2. registers the project's kernel ``spm-workbench`` in a temporary Jupyter data folder and starts
   JupyterLab headless on a free port, on a temporary copy of the notebook (so the checkout's
   notebook never gets outputs), with fresh settings and workspace, as ``make lab`` does;
3. opens the notebook with Playwright driving the system Chromium (no browser is downloaded),
   runs all cells, waits until every cell has run and the explorer shows its KPI chart, its
   forecast fan and the P(hit quota) table;
4. scrolls the explorer to the top of the notebook and saves the JupyterLab window from the menu
   bar to the end of the explorer's output as a PNG (reduced to 256 colours when larger than
   ``--max-kb``);
5. stops the server (and with it the kernel) and removes the temporary folders.

Run it with ``make screenshots`` or ``.venv/bin/python tools/screenshot_explorer.py [--out PATH]``.
Needs the ``docs`` extra (``pip install -e '.[docs]'``: Playwright for Python) and Chromium at
``--chromium`` (default ``/usr/bin/chromium``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "explorer.ipynb"
KERNEL = "spm-workbench"
# Quiet, reproducible JupyterLab: no news or update toasts, light theme.
SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/apputils-extension/themes.jupyterlab-settings": {"theme": "JupyterLab Light"},
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "explorer.png", help="PNG to write")
    p.add_argument("--chromium", default="/usr/bin/chromium", help="Chromium executable Playwright drives")
    p.add_argument("--warehouse", type=Path, default=None, help="warehouse to show (default: a fresh example one)")
    p.add_argument("--width", type=int, default=1500, help="window width in pixels (1400-1600 reads well)")
    p.add_argument("--max-kb", type=int, default=400, help="reduce to 256 colours above this size")
    p.add_argument("--timeout", type=float, default=600, help="seconds to wait for the notebook to run")
    return p.parse_args(argv)


def example_warehouse(folder: Path) -> Path:
    """The example warehouse of ``spm demo`` (50 agents, seed 7), built under ``folder``."""
    from spm_models.config import ProjectPaths
    from spm_models.demo import run_demo

    return run_demo(ProjectPaths.from_root(folder), n_agents=50, seed=7, review=False).warehouse


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_settings(folder: Path) -> None:
    for name, values in SETTINGS.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values), encoding="utf-8")


@contextmanager
def jupyterlab(tmp: Path, warehouse: Path) -> Iterator[str]:
    """JupyterLab on a copy of the explorer notebook; yields its URL and stops it on exit."""
    notebooks, prefix = tmp / "notebooks", tmp / "jupyter-prefix"
    notebooks.mkdir()
    shutil.copy2(NOTEBOOK, notebooks / NOTEBOOK.name)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "ipykernel",
            "install",
            "--prefix",
            str(prefix),
            "--name",
            KERNEL,
            "--display-name",
            "SPM Workbench",
        ],
        check=True,
        capture_output=True,
    )
    _write_settings(tmp / "settings")
    port = free_port()
    env = {
        **os.environ,
        "SPM_WAREHOUSE": str(warehouse),
        "JUPYTER_PATH": str(prefix / "share" / "jupyter"),
        "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
        "JUPYTER_CONFIG_DIR": str(tmp / "config"),
    }
    cmd = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--notebook-dir",
        str(notebooks),
        "--no-browser",
        "--port",
        str(port),
        "--ip",
        "127.0.0.1",
        "--IdentityProvider.token=",
        "--ServerApp.password=",
        "--LabApp.expose_app_in_browser=True",
        f"--LabApp.user_settings_dir={tmp / 'settings'}",
        f"--LabApp.workspaces_dir={tmp / 'workspaces'}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    log = open(tmp / "jupyterlab.log", "wb")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for_api(url, proc, tmp / "jupyterlab.log")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _wait_for_api(url: str, proc: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(
                f"JupyterLab exited with code {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}"
            )
        try:
            with urllib.request.urlopen(f"{url}/api", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"JupyterLab did not answer on {url}/api within {timeout:.0f} s")


# Every code cell has run (a number in its prompt) and the explorer shows two figures and a table.
_DONE = """() => {
  const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')].map(p => p.textContent.trim());
  const ran = prompts.length > 0 && prompts.every(t => /^\\[\\d+\\]:$/.test(t));
  const box = document.querySelector('.jp-OutputArea-output .widget-vbox');
  if (!ran || !box) return false;
  return box.querySelectorAll('img').length >= 2 && box.querySelector('table') !== null;
}"""


def run_explorer(page, url: str, timeout: float) -> None:
    """Open the notebook, run all cells and wait until the explorer has drawn."""
    page.goto(f"{url}/lab/tree/{NOTEBOOK.name}")
    page.wait_for_function(
        "() => window.jupyterapp && window.jupyterapp.shell && window.jupyterapp.shell.currentWidget"
        " && window.jupyterapp.shell.currentWidget.sessionContext",
        timeout=120_000,
    )
    page.wait_for_function(
        "() => window.jupyterapp.shell.currentWidget.sessionContext.session?.kernel?.status === 'idle'", timeout=120_000
    )
    page.evaluate(
        "() => { const app = window.jupyterapp; app.shell.collapseLeft(); app.shell.collapseRight();"
        " return app.commands.execute('notebook:run-all-cells'); }"
    )
    page.wait_for_function(_DONE, timeout=timeout * 1000, polling=1000)
    page.wait_for_timeout(1500)  # let the last output settle and the layout reflow


def capture(page, out: Path) -> None:
    """The JupyterLab window from the top to the end of the explorer, the explorer scrolled up."""
    page.evaluate(
        "() => { const cell = document.querySelector('.widget-vbox').closest('.jp-Cell');"
        " cell.scrollIntoView({block: 'start'}); }"
    )
    page.wait_for_timeout(800)
    bottom = page.evaluate("() => document.querySelector('.widget-vbox').getBoundingClientRect().bottom")
    size = page.viewport_size
    height = int(min(size["height"], bottom + 16))
    page.screenshot(path=str(out), clip={"x": 0, "y": 0, "width": size["width"], "height": height})


def shrink(path: Path, max_kb: int) -> None:
    """Re-save ``path`` optimised; reduce it to 256 colours when still above ``max_kb``."""
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
    im.save(path, optimize=True)
    if path.stat().st_size > max_kb * 1024:
        im.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(path, optimize=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="spm-screenshot-") as name:
        tmp = Path(name)
        warehouse = args.warehouse.resolve() if args.warehouse else example_warehouse(tmp / "project")
        with jupyterlab(tmp, warehouse) as url, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
            try:
                page = browser.new_page(viewport={"width": args.width, "height": 1800})
                run_explorer(page, url, args.timeout)
                args.out.parent.mkdir(parents=True, exist_ok=True)
                capture(page, args.out)
            finally:
                browser.close()
    shrink(args.out, args.max_kb)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
