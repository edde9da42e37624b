"""The monthly review end to end on a small synthetic organisation with hostile names.

The shared review run (``review_run`` in ``tests/conftest.py``: the small organisation with
the agent names ``<script>alert(1)</script>``, ``../../etc/passwd``, ``$$ Money $ Maker $``,
``Zoë 🚀 Ünïcode``, agent id ``A0006`` renamed ``../x/<b>6</b>`` and territory ``T01`` named
``<i>North</i> & "South"``; the default settings plus a commission plan, since a plan is
shown only when configured) is checked for: every report ok, code-free self-contained HTML
that names its subject and embeds its figures, every section of an agent's report and the
monthly review's leading indicators, safe file names, escaped names,
confidentiality between agents, an index whose links all resolve, a complete manifest, an
idempotent re-run, and (when Chromium is installed) pages that open without console errors.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html import escape
from pathlib import Path

import pandas as pd
import pytest

DATA_URI = re.compile(r"data:image/[a-z+]+;base64,[A-Za-z0-9+/=]+")


def _text(html: str) -> str:
    return DATA_URI.sub("data:", html)


def test_every_report_is_ok(review_run):
    assert review_run.exit_code == 0, review_run.manifest["summary"]
    s = review_run.manifest["summary"]
    n_agents = len(pd.read_parquet(review_run.artifacts / "agents.parquet"))
    assert s["total"] == n_agents + 2 + 1 and s["ok"] == s["total"] and s["failed"] == 0
    lines = (review_run.root / "progress.log").read_text().splitlines()
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ "
    stages = [ln for ln in lines if re.match(stamp + "stage=", ln)]
    reports = [ln for ln in lines if ln not in stages]
    assert len(stages) == 2 and "fitting" in stages[0] and f"running {s['total']} of" in stages[1], stages
    assert len(reports) == s["total"] and all(
        re.match(stamp + r"report='[^']*' status=ok seconds=\d+\.\d\d output=\S+", ln) for ln in reports
    )


def test_html_is_code_free_self_contained_and_names_its_subject(review_run):
    manifest = review_run.manifest
    for entry in manifest["reports"]:
        page = (review_run.run_folder / entry["output"]).read_text(encoding="utf-8")
        text = _text(page)
        assert "<script" not in text.lower(), entry["id"]
        assert "jp-InputArea" not in text and "input_area" not in text and 'class="highlight' not in text
        for code in ("views.agent_view", "import ", "render.", "plots.", "run_dir ="):
            assert code not in text, (entry["id"], code)
        assert not re.search(r'(src|href)="(https?:)?//', text), "pages must not load anything from the network"
        assert len(re.findall(r'<div class="spm-figure">(<ul class="spm-legend".*?</ul>)?<img alt="', page)) >= 3, (
            f"{entry['id']} should embed its figures"
        )
        assert f"<title>{escape(entry['subject'])}</title>" in page
        assert f"<h1>{escape(entry['subject'])}</h1>" in page  # the kernel's escaped HTML, as written
        for must in (
            "Provenance",
            manifest["run_id"],
            manifest["data_fingerprint"],
            manifest["package_version"],
        ):
            assert must in text, (entry["id"], must)


def test_agent_reports_have_every_section(review_run):
    for entry in (e for e in review_run.manifest["reports"] if e["kind"] == "agent"):
        text = _text((review_run.run_folder / entry["output"]).read_text(encoding="utf-8"))
        for section in (
            "Scorecard",
            "Bookings and activity trends",
            "Funnel",
            "Leading indicators",
            "Forecast of the quarter",
            f"Chance of reaching the {review_run.manifest['forecast_quarter']} quota",
            "Last month",
            "Commission estimate",
            "Statement",
            f"Expected pay {review_run.manifest['forecast_quarter']} (mean)",
            "Coaching points",
        ):
            assert section in text, (entry["id"], section)
        assert re.search(
            r"(Chances of reaching quota are checked against past quarters|These chances are the model(&#x27;|')s own)",
            text,
        ), entry["id"]
        assert "Not shown:" not in text  # this organisation has quotas, stages, accounts and a plan
        coaching = re.search(r"Coaching points.*?<ol class=\"spm-list\">(.*?)</ol>", text, re.S)
        assert coaching and 2 <= coaching.group(1).count("<li>") <= 4
        assert "USD" in text
        assert "Leads bookings by" in text  # the lag of each indicator, or "not found to lead"


def _h2(html: str) -> list[str]:
    heads = re.findall(r"<h2[^>]*>(.*?)</h2>", html, re.S)
    return [re.sub(r"<[^>]+>", "", h).replace("¶", "").strip() for h in heads]


def test_agent_pages_lead_with_the_headline_cards_then_coaching_and_deals(review_run):
    for entry in (e for e in review_run.manifest["reports"] if e["kind"] in ("agent", "territory")):
        text = _text((review_run.run_folder / entry["output"]).read_text(encoding="utf-8"))
        heads = _h2(text)
        assert heads[0].startswith("Headline"), (entry["id"], heads[:3])
        first = text.index("<h2")
        assert text.index('class="spm-cards spm-headline"') < text.index("<h2", first + 1), entry["id"]
        if entry["kind"] == "agent":
            assert heads[1:3] == ["Coaching points", "Your deals"], heads[:4]
            for label in ("Attainment ", "Gap to the ", "Chance of reaching the ", "Expected payout "):
                assert label in text, (entry["id"], label)
        assert re.search(r"(up|down) [^<]* since \d{4}-\d{2}|no change since", text), entry["id"]


def test_no_card_is_shown_twice_on_a_page(review_run):
    """The headline cards are not repeated further down (the forecast, commission and quarter cards)."""
    for entry in (e for e in review_run.manifest["reports"] if e["status"] == "ok"):
        labels = re.findall(r'class="spm-card-label">([^<]*)<', (review_run.run_folder / entry["output"]).read_text())
        assert labels and len(labels) == len(set(labels)), (entry["id"], sorted(labels))


def test_open_deals_listed_match_the_warehouse(review_run):
    """Each agent page lists the agent's open deals at the month end, the most valuable first, and
    only theirs: the accounts and amounts of the warehouse's open opportunities."""
    from spm_models.models.pipeline.history import open_at
    from spm_models.present.format import format_value

    ds = review_run.dataset
    run = json.loads((review_run.run_folder / "artifacts" / "run.json").read_text())
    as_of = pd.Timestamp(run["calendar"]["as_of"])
    opp = ds["opportunities"]
    opp = opp[(pd.to_datetime(opp["created_date"]) <= as_of)]
    is_open = open_at(opp, as_of)
    accounts = ds["accounts"].set_index("account_id")["account_name"]
    listed = pd.read_parquet(review_run.run_folder / "artifacts" / "deals_open.parquet")
    expected_ids = set(opp.loc[is_open.to_numpy(), "opportunity_id"].astype(str))
    assert set(listed["opportunity_id"]) == expected_ids and len(expected_ids) > 0
    for entry in (e for e in review_run.manifest["reports"] if e["kind"] == "agent"):
        aid = entry["id"].split(":", 1)[1]
        page = (review_run.run_folder / entry["output"]).read_text(encoding="utf-8")
        section = page[page.index("Open deals") : page.index("Won this month")]
        mine = opp[is_open.to_numpy() & (opp["agent_id"].astype(str) == aid).to_numpy()]
        rows = re.findall(r"<tr><td class=\"t\">(.*?)</td>", section)
        assert len(rows) == min(len(mine), 5), (aid, rows)
        if not len(mine):
            continue
        names = set(mine["account_id"].map(accounts).fillna(mine["account_id"]).astype(str).map(escape))
        assert set(rows) <= names, (aid, set(rows) - names)
        mine_listed = listed[listed["agent_id"] == aid].sort_values("rank_agent")
        assert (mine_listed["expected_value"].diff().dropna() <= 1e-9).all()  # the most valuable first
        top = mine_listed.iloc[0]
        assert escape(format_value(top["amount"], "currency")) in section


def test_the_monthly_review_has_a_leading_indicators_section(review_run):
    entry = next(e for e in review_run.manifest["reports"] if e["kind"] == "monthly")
    text = _text((review_run.run_folder / entry["output"]).read_text(encoding="utf-8"))
    section = text[text.index("Leading indicators") : text.index("Provenance")]
    # the indicators found, or the plain statement that none passed, then why each other candidate is not listed
    assert "What that implies for the next weeks" in section or "No leading indicator of bookings passed" in section
    assert "Also tested" in section and section.count("<li>") >= 3


def test_hostile_names_are_escaped_and_files_stay_inside(review_run):
    root = review_run.root
    run = review_run.run_folder.resolve()
    for path in root.rglob("*"):
        assert path.resolve().is_relative_to(root.resolve())
    assert not (root / "etc").exists() and not (run / "etc").exists() and not (run.parent / "x").exists()
    for p in run.rglob("*"):
        if p.is_file() and p.suffix in (".html", ".ipynb"):
            assert p.resolve().is_relative_to(run)
            assert re.fullmatch(r"[a-z0-9][a-z0-9.\-_]*", p.name), p.name
    pages = {e["id"]: (run / e["output"]).read_text(encoding="utf-8") for e in review_run.manifest["reports"]}
    for page in pages.values():
        assert "<script>alert(1)</script>" not in page and "<b>6</b>" not in page and "<i>North</i>" not in page
    # every hostile name is on an agent in the review, so each one names a page and a file
    assert {"agent:A0001", "agent:A0002", "agent:A0003", "agent:A0004", "agent:../x/<b>6</b>"} <= set(pages)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages["agent:A0001"]
    assert "../../etc/passwd" in pages["agent:A0002"]
    assert escape("$$ Money $ Maker $") in pages["agent:A0003"]
    assert "Zoë 🚀 Ünïcode" in pages["agent:A0004"]
    assert escape("../x/<b>6</b>") in pages["agent:../x/<b>6</b>"]
    index = (run / "index.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in index and "<script>" not in index
    # what the index's P(quota) column means
    assert re.search(r"(Chances of reaching quota are checked|These chances are the model(&#x27;|')s own)", index)
    assert escape('<i>North</i> & "South"') in index


def test_agent_reports_never_show_another_agent(review_run):
    agents = pd.read_parquet(review_run.artifacts / "agents.parquet")
    everyone = review_run.dataset["agents"]
    for entry in (e for e in review_run.manifest["reports"] if e["kind"] == "agent"):
        me = entry["id"].split(":", 1)[1]
        text = _text((review_run.run_folder / entry["output"]).read_text(encoding="utf-8"))
        others = everyone[everyone["agent_id"] != me]
        for oid, oname in zip(others["agent_id"], others["agent_name"]):
            for token in {oid, oname, escape(oid), escape(oname)}:
                assert token not in text, f"{entry['id']} shows {token!r}"
    assert len(agents) >= 5


def test_index_links_all_resolve_and_manifest_is_complete(review_run):
    run = review_run.run_folder
    index = (run / "index.html").read_text(encoding="utf-8")
    links = re.findall(r'href="([^"]+)"', index)
    assert len(links) == review_run.manifest["summary"]["total"]
    for link in links:
        assert not link.startswith(("http", "/", "..")) and (run / link).is_file(), link
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    for e in manifest["reports"]:
        assert e["status"] == "ok" and e["duration_s"] > 0 and e["output"] and (run / e["notebook"]).is_file()
        assert set(e["provenance"]) >= {"run_id", "package_version", "data_fingerprint", "template_sha256"}
        assert e["parameters"]["run_dir"] == str(run / "artifacts")
    for entry in review_run.manifest["reports"]:  # provenance shows the run's own folder, never an absolute path
        page = (run / entry["output"]).read_text(encoding="utf-8")
        assert str(run) not in page and str(run.parent) not in page, entry["id"]
    assert {"load", "artifacts", "reports", "total"} <= set(manifest["timings"])


def test_rerun_is_idempotent(review_run):
    """A second run of the same month executes nothing and rewrites only manifest.json and
    index.html (and the month's lock file, where each run writes who holds it). The shared run
    is read-only, so its fixture makes that second run right after the first and records it
    (``ReviewRun.rerun``)."""
    rerun = review_run.rerun
    assert rerun["exit_code"] == 0 and rerun["executed"] == [] and rerun["artifacts_reused"]
    assert rerun["summary"]["reused"] == rerun["summary"]["total"] == review_run.manifest["summary"]["total"]
    assert not rerun["temporary"], "temporary files left behind"
    month = review_run.run_folder.relative_to(review_run.root)
    lock = month.parent / ".spm" / f"{month.name}.lock"
    rewritten = {str(month / "manifest.json"), str(month / "index.html"), str(lock)}
    assert set(rerun["changed"]) <= rewritten, rerun["changed"]


def test_the_payroll_export_is_published_and_reconciles(review_run):
    exports = review_run.run_folder / "exports"
    lines = pd.read_csv(exports / "statements.csv")
    company = pd.read_csv(exports / "plan_cost.csv").set_index("period")
    people = pd.read_csv(exports / "statement_totals.csv")
    for col, total in (("amount_to_date", "earned_to_date"), ("amount_expected", "expected")):
        sums = lines.groupby("period")[col].sum(min_count=1)
        assert (sums - company[total].reindex(sums.index)).abs().max() < 0.01, col
    assert (people.groupby("period")["earned_to_date"].sum() - company["earned_to_date"]).abs().max() < 0.01


# ---------------------------------------------------------------------------- the browser


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def _open(browser: str, page: Path, shot: Path) -> str:
    proc = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1000,2400",
            f"--screenshot={shot}",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shot.is_file() and shot.stat().st_size > 10_000, proc.stderr[-2000:]
    return "\n".join(ln for ln in proc.stderr.splitlines() if ":CONSOLE" in ln)


def test_pages_open_in_a_browser_without_console_errors(review_run, tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("headless Chromium is not installed: `apt-get install chromium` (Debian) to run the browser test")
    sentinel = tmp_path / "sentinel.html"
    sentinel.write_text('<html><body><p>x</p><script>console.error("sentinel")</script></body></html>')
    assert "sentinel" in _open(browser, sentinel, tmp_path / "sentinel.png"), "console errors must be detectable"
    agent = next(e for e in review_run.manifest["reports"] if e["id"] == "agent:A0001")
    for page in (review_run.run_folder / "index.html", review_run.run_folder / agent["output"]):
        console = _open(browser, page, tmp_path / f"{page.stem}.png")
        assert console == "", f"{page.name}: {console}"
