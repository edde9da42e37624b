"""The monthly review of a raw funnel export adapts to what its data hold (tests on the HTML).

The export (leads and won deals, no amounts, no loss dates, no quotas, no stages, a catch-all
owner) is the synthetic organisation's, loaded from its mapping file alone. Its review must
count deals, never money; show no commission or quota section; show conversion by lead channel;
give the catch-all owner no page; and show no win rate, which with undated losses reads 100%.
"""

from __future__ import annotations

import html
import re

import pandas as pd
import pytest

from spm_models.data.ingest import ingest_paths
from spm_models.data.warehouse import Warehouse
from spm_models.kpi.leads import channel_summary
from spm_models.review import run_review
from spm_models.review.settings import ReviewConfig
from spm_models.synthetic.funnel import CATCH_ALL, funnel_export
from spm_models.synthetic.generator import generate_organisation

DATA_URI = re.compile(r"data:image/[a-z+]+;base64,[A-Za-z0-9+/=]+")


def _text(page: str) -> str:
    page = re.sub(r"<style.*?</style>", " ", DATA_URI.sub("data:", page), flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


@pytest.fixture(scope="module")
def review(tmp_path_factory):
    root = tmp_path_factory.mktemp("funnel-review")
    funnel_export(generate_organisation(8, years=2, seed=5), seed=5).write(root / "export")
    ingest_paths([root / "export" / "mapping.toml"], db=root / "w.duckdb")
    ds = Warehouse(root / "w.duckdb").load()
    result = run_review(
        dataset=ds,
        out=root / "reports",
        workers=2,
        progress=False,
        log=open(root / "log.txt", "w"),
        config=ReviewConfig(n_draws=200, recalibrate=False),
    )
    pages = {e["id"]: (result.run_folder / e["output"]).read_text(encoding="utf-8") for e in result.manifest["reports"]}
    pages["index"] = (result.run_folder / "index.html").read_text(encoding="utf-8")
    return ds, result, pages


def test_every_report_is_ok_and_the_catch_all_has_no_page(review):
    ds, result, pages = review
    assert result.exit_code == 0, result.manifest["summary"]
    people = ds["agents"][ds["agents"]["is_person"]]["agent_id"]
    agent_pages = {e["id"] for e in result.manifest["reports"] if e["kind"] == "agent"}
    assert agent_pages == {f"agent:{a}" for a in people}
    assert f"agent:{CATCH_ALL}" not in pages and CATCH_ALL in set(ds["agents"]["agent_id"])
    assert f">{CATCH_ALL}<" not in pages["index"]
    monthly = _text(pages["monthly"])
    leaderboard = re.search(r"Leaderboard and recognition(.*?)Conversion by month", monthly).group(1)
    assert CATCH_ALL not in leaderboard  # nor in the leaderboard or the awards


def test_counts_are_deals_and_no_currency_appears_anywhere(review):
    _, _, pages = review
    for rid, page in pages.items():
        text = _text(page)
        assert "USD" not in text and "EUR" not in text, rid
        assert not re.search(r"\$\s?\d", text), rid
    monthly = _text(pages["monthly"])
    assert re.search(r"\d+ deals Bookings 2024-11", monthly)
    assert re.search(r"Booked in \S+ so far", _text(pages["index"])) and " deals " in _text(pages["index"])


def test_no_commission_or_quota_sections(review):
    _, _, pages = review
    for rid, page in pages.items():
        text = _text(page)
        for gone in ("Chance of reaching", "P(quota", "Attainment", "Expected payout", "Quota "):
            assert gone not in text, (rid, gone)
        if rid != "index":
            assert "Not shown: attainment and the chance of reaching quota, because the data hold no quotas" in text
        if rid.startswith("agent:"):
            assert "<h2>Commission estimate</h2>" not in page
            assert "Not shown: commission estimate, because no commission plan is configured" in text
            assert "Not shown: funnel, because the data hold no pipeline stages" in text


def test_conversion_by_channel_matches_the_leads(review):
    ds, result, pages = review
    monthly = _text(pages["monthly"])
    assert "Leads by channel" in monthly
    as_of = pd.Timestamp(result.manifest["calendar"]["as_of"])
    start = as_of.to_period("M").to_timestamp() - pd.DateOffset(months=11)
    won_by_then = ds["opportunities"][ds["opportunities"]["close_date"] <= as_of]  # the review looks back from as_of
    expected = channel_summary(ds["leads"], won_by_then, created_from=start, created_to=as_of)
    table = re.search(r"Leads by channel.*?<table.*?</table>", pages["monthly"], re.S).group(0)
    rows = re.findall(
        r"<tr><td class=\"t\">([^<]*)</td><td class=\"n\">([^<]*)</td><td class=\"n\">([^<]*)</td>"
        r"<td class=\"n\">([^<]*)</td>",
        table,
    )
    got = {name: (leads, won, conv) for name, leads, won, conv in rows}
    for r in expected.itertuples():
        name = r.channel or "All channels"
        assert got[name] == (f"{r.leads_created:,}", f"{r.won:,}", f"{r.lead_to_win:.0%}"), name
    rates = expected[expected["channel"] != ""]["lead_to_win"]
    assert rates.max() > 2 * rates.min()  # the channels' conversion differs, and the table shows it


def test_no_win_rate_from_missing_loss_dates(review):
    _, _, pages = review
    for rid, page in pages.items():
        assert "Win rate" not in _text(page), rid
    monthly = _text(pages["monthly"])
    assert "These data record no lost deals" in monthly  # says why, and what it uses instead
    card = re.search(r"(\d+)% Won by now, of the leads created in the last 12 months", monthly)
    assert card and 3 <= int(card.group(1)) <= 20  # about one lead in ten, not 100%
