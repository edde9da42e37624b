"""Screenshots of the monthly review for the README and docs (``docs/img``), from a fresh demo run.

What it does, in order:

1. runs ``spm demo`` (50 agents, seed 7, with its monthly review) in a temporary project folder,
   unless ``--reports`` names the month folder of a review already written (``--project``
   keeps the demo's project folder instead of a temporary one);
2. opens the review's ``index.html`` and one agent page with Playwright driving the system
   Chromium (no browser is downloaded), at ``--width`` pixels;
3. saves the top of each page (``--height`` pixels: the index's headline and table, the agent
   page's headline cards, coaching and the start of the deals) as ``review_index.png`` and
   ``agent_report.png`` in ``--out`` (reduced to 256 colours when larger than ``--max-kb``);
4. with ``--explorer``, also renews ``explorer.png`` from the same demo's warehouse
   (:mod:`screenshot_explorer`), so every picture in ``docs/img`` comes from one fresh run.

The agent shown is the first agent page of the review's manifest, so the same seed shows the same
person. Run it with ``make images`` (every picture, the explorer's included) or
``.venv/bin/python tools/screenshot_reports.py [--out FOLDER]``. Needs the ``docs`` extra
(Playwright for Python) and Chromium at ``--chromium`` (default ``/usr/bin/chromium``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import screenshot_explorer  # noqa: E402  (one way to keep a PNG small, and the explorer's picture)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "img", help="folder the PNGs are written to")
    p.add_argument("--chromium", default="/usr/bin/chromium", help="Chromium executable Playwright drives")
    p.add_argument("--reports", type=Path, default=None, help="a review's month folder (default: a fresh demo)")
    p.add_argument("--project", type=Path, default=None, help="project folder of the fresh demo (default: temporary)")
    p.add_argument("--explorer", action="store_true", help="also renew explorer.png from the same demo")
    p.add_argument("--width", type=int, default=1300, help="window width in pixels")
    p.add_argument("--height", type=int, default=1500, help="how much of the top of each page is kept")
    p.add_argument("--max-kb", type=int, default=400, help="reduce to 256 colours above this size")
    return p.parse_args(argv)


def fresh_review(folder: Path) -> tuple[Path, Path]:
    """The month folder of the example's review (``spm demo``: 50 agents, seed 7), built under
    ``folder``, and its warehouse."""
    from spm_models.config import ProjectPaths
    from spm_models.demo import run_demo

    t = time.perf_counter()
    result = run_demo(ProjectPaths.from_root(folder), n_agents=50, seed=7, review=True)
    print(f"demo run and review: {time.perf_counter() - t:.0f} s", flush=True)
    if result.review is None or result.review.exit_code:
        raise SystemExit("the demo's review did not finish cleanly; no pictures were taken")
    return result.review.run_folder, result.warehouse


def pages(month_folder: Path) -> dict[str, Path]:
    """The pages to picture: ``review_index.png`` and ``agent_report.png`` by file name."""
    manifest = json.loads((month_folder / "manifest.json").read_text(encoding="utf-8"))
    agent = next((e for e in manifest["reports"] if e["kind"] == "agent" and e["status"] == "ok"), None)
    if agent is None:
        raise SystemExit(f"{month_folder / 'manifest.json'} lists no agent page that rendered")
    return {"review_index.png": month_folder / "index.html", "agent_report.png": month_folder / agent["output"]}


def capture(browser, page_file: Path, out: Path, *, width: int, height: int) -> None:
    """The top ``height`` pixels of ``page_file`` at ``width`` pixels, as a PNG."""
    page = browser.new_page(viewport={"width": width, "height": height})
    try:
        page.goto(page_file.resolve().as_uri())
        page.wait_for_load_state("load")
        full = page.evaluate("() => document.documentElement.scrollHeight")
        page.screenshot(path=str(out), clip={"x": 0, "y": 0, "width": width, "height": min(height, full)})
    finally:
        page.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="spm-screenshot-") as name:
        if args.reports:
            month, warehouse = args.reports.resolve(), None
        else:
            month, warehouse = fresh_review((args.project or Path(name) / "project").resolve())
        args.out.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=args.chromium, args=["--no-sandbox", "--disable-gpu"])
            try:
                for file_name, page_file in pages(month).items():
                    out = args.out / file_name
                    capture(browser, page_file, out, width=args.width, height=args.height)
                    screenshot_explorer.shrink(out, args.max_kb)
                    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KB) from {page_file.relative_to(month)}")
            finally:
                browser.close()
        if args.explorer:
            explorer = ["--out", str(args.out / "explorer.png"), "--chromium", args.chromium]
            screenshot_explorer.main(explorer + (["--warehouse", str(warehouse)] if warehouse else []))
    return 0


if __name__ == "__main__":
    sys.exit(main())
