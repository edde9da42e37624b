"""The review's pages in a real browser: headless Chromium at 1,300 and 400 px.

The index, the monthly review, a territory page and two agent pages of the shared end-to-end
review (``review_run`` in :mod:`tests.conftest`) are opened with Playwright driving the system Chromium (no
browser is downloaded). Each must: not overflow the page sideways at 400 px (a wide table
scrolls inside itself), log no console error, link only to files that exist, and give every
image a real alternative text. Full-page screenshots are kept as test artifacts in
``<pytest tmp>/browser/`` (``SPM_SCREENSHOTS=folder`` keeps them there instead).

Skips with its reason only where Chromium or Playwright is absent (``make test`` installs
Playwright; CI installs Debian's Chromium).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

WIDTHS = (1300, 400)
DEFAULT_ALT = "No description has been provided for this image"


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.fixture(scope="module")
def browser():
    exe = _chromium()
    if exe is None:
        pytest.skip("headless Chromium is not installed: `apt-get install chromium` (Debian) to run the browser test")
    sync = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed: pip install -e '.[test]'")
    with sync.sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


def _pages(result) -> dict[str, Path]:
    run = result.run_folder
    reports = result.manifest["reports"]
    agents = [e for e in reports if e["kind"] == "agent"][:2]
    territory = next(e for e in reports if e["kind"] == "territory")
    monthly = next(e for e in reports if e["kind"] == "monthly")
    out = {"index": run / "index.html", "monthly": run / monthly["output"], "territory": run / territory["output"]}
    out |= {f"agent-{i + 1}": run / e["output"] for i, e in enumerate(agents)}
    return out


def _shots(tmp_path_factory) -> Path:
    folder = os.environ.get("SPM_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("browser")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.mark.parametrize("width", WIDTHS)
def test_pages_work_at_desktop_and_phone_width(review_run, browser, width, tmp_path_factory):
    result = review_run
    shots = _shots(tmp_path_factory)
    # the console check must be able to fail: a page that logs an error is caught
    probe = shots / "probe.html"
    probe.write_text('<html><body><script>console.error("probe")</script></body></html>', encoding="utf-8")
    for name, path in {"probe": probe, **_pages(result)}.items():
        page = browser.new_page(viewport={"width": width, "height": 900})
        errors: list[str] = []
        page.on("console", lambda m, errors=errors: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
        page.goto(path.resolve().as_uri())
        page.wait_for_load_state("load")
        if name == "probe":
            assert errors == ["probe"], errors
            page.close()
            continue
        assert errors == [], (name, width, errors)
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{name} at {width} px is {overflow} px wider than the window"
        images = page.evaluate("Array.from(document.images).map(i => [i.getAttribute('alt') || '', i.naturalWidth])")
        for alt, natural in images:
            assert natural > 0, (name, "an image does not load")
            assert len(alt) > 20 and alt != DEFAULT_ALT, (name, alt)
        links = page.evaluate("Array.from(document.querySelectorAll('a[href]')).map(a => a.href)")
        assert links, f"{name} links nowhere"
        for href in links:
            url = urlparse(href)
            assert url.scheme == "file", (name, href)
            assert Path(unquote(url.path)).is_file(), (name, href)
        page.screenshot(path=str(shots / f"{name}-{width}.png"), full_page=True)
        page.close()
    assert len(list(shots.glob(f"*-{width}.png"))) == 5


def test_the_agent_page_leads_with_its_headline(review_run, browser):
    """The first section after the title and the navigation is the headline cards."""
    result = review_run
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    page.goto(_pages(result)["agent-1"].resolve().as_uri())
    first = page.evaluate("document.querySelector('h2').textContent")
    top = page.evaluate("document.querySelector('.spm-headline').getBoundingClientRect().top")
    page.close()
    assert first.startswith("Headline") and top < 900, (first, top)
