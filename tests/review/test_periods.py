"""A quarter-end review never mixes quarters, and an agent past quota reads "reached (100%)".

One review of a quarter-end month (September 2024: the review settles 2024-Q3 and forecasts
2024-Q4) with every report rendered; each HTML table and each group of headline cards is
parsed, and the quarter labels it names are counted.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pandas as pd
import pytest

from spm_models.data.validation import validate
from spm_models.insights.commission import DEFAULT_PLAN
from spm_models.review import run_review
from spm_models.review.settings import ReviewConfig
from spm_models.synthetic.generator import generate_organisation

QUARTER = re.compile(r"\b(?:FY)?\d{4}-Q[1-4]\b")
MONTH = "2024-09"


class _Blocks(HTMLParser):
    """Text of every table header row and every card group's labels, in page order."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[str]] = []  # header cells per table
        self.card_groups: list[list[str]] = []  # card labels per group
        self.rows: list[list[str]] = []  # body cells, per row, of every table
        self._where: list[str] = []
        self._text = ""

    def handle_starttag(self, tag, attrs):
        cls = dict(attrs).get("class") or ""
        if tag == "table" and "spm-table" in cls:
            self.tables.append([])
        elif tag == "div" and cls == "spm-cards":
            self.card_groups.append([])
        if tag in ("th", "td") or (tag == "div" and cls == "spm-card-label"):
            self._where.append(tag if tag != "div" else "card")
            self._text = ""
        if tag == "tr" and self.tables:
            self.rows.append([])

    def handle_endtag(self, tag):
        if self._where and (
            tag in ("th", "td") and self._where[-1] == tag or tag == "div" and self._where[-1] == "card"
        ):
            kind = self._where.pop()
            text = self._text.strip()
            if kind == "th" and self.tables:
                self.tables[-1].append(text)
            elif kind == "td" and self.rows:
                self.rows[-1].append(text)
            elif kind == "card" and self.card_groups:
                self.card_groups[-1].append(text)

    def handle_data(self, data):
        if self._where:
            self._text += data


@pytest.fixture(scope="module")
def quarter_end(tmp_path_factory):
    root = tmp_path_factory.mktemp("quarter-end")
    ds = validate(generate_organisation(8, years=2, seed=5).dataset)
    result = run_review(
        month=MONTH,
        dataset=ds,
        out=root / "reports",
        config=ReviewConfig(model="CalendarBaseline", commission=DEFAULT_PLAN),
        workers=2,
        progress=False,
        log=open(root / "progress.log", "w"),
    )
    return result


def _pages(result) -> dict[str, str]:
    run = result.run_folder
    pages = {e["id"]: (run / e["output"]).read_text(encoding="utf-8") for e in result.manifest["reports"]}
    pages["index"] = (run / "index.html").read_text(encoding="utf-8")
    return pages


def test_the_review_settles_one_quarter_and_forecasts_the_next(quarter_end):
    assert quarter_end.exit_code == 0, quarter_end.summary()
    m = quarter_end.manifest
    assert m["review_quarter"] == "2024-Q3" and m["forecast_quarter"] == "2024-Q4"
    info = json.loads((quarter_end.run_folder / "artifacts" / "run.json").read_text())
    assert info["quarter_closed"] is True


def test_every_table_and_card_group_names_exactly_one_quarter(quarter_end):
    seen = set()
    for rid, page in _pages(quarter_end).items():
        blocks = _Blocks()
        blocks.feed(page)
        assert blocks.tables, rid
        for header in blocks.tables:
            named = set(QUARTER.findall(" ".join(header)))
            assert len(named) <= 1, (rid, header)
            seen |= named
            # a column of a quarter's numbers says which quarter
            for cell in header:
                if re.search(r"Booked|Attainment|Quota|Expected|Chance|P\(quota|[Pp]ayout", cell):
                    assert QUARTER.search(cell), (rid, cell)
        for labels in blocks.card_groups:
            named = set(QUARTER.findall(" ".join(labels)))
            assert len(named) <= 1, (rid, labels)
            seen |= named
            for cell in labels:
                if re.search(r"Booked|Attainment|Quota|Expected|Chance|[Pp]ayout|Win rate", cell):
                    assert QUARTER.search(cell), (rid, cell)
        # both quarters are shown, each in its own labelled section
        if rid != "index":
            assert "2024-Q3: the quarter that closed" in page and "2024-Q4: the quarter ahead" in page, rid
    assert seen == {"2024-Q3", "2024-Q4"}


def test_a_quarter_end_page_shows_no_card_twice(quarter_end):
    for rid, page in _pages(quarter_end).items():
        labels = re.findall(r'class="spm-card-label">([^<]*)<', page)
        assert len(labels) == len(set(labels)), (rid, sorted(labels))


def test_the_closed_quarter_shows_final_numbers_and_payout(quarter_end):
    art = quarter_end.run_folder / "artifacts"
    metrics = pd.read_parquet(art / "metrics.parquet")
    comm = pd.read_parquet(art / "commission.parquet")
    assert comm["closed_quarter_payout"].notna().all()
    agent = comm["unique_id"].iloc[0]
    page = _pages(quarter_end)[f"agent:{agent}"]
    final = metrics[(metrics["level"] == "agent") & (metrics["entity_id"] == agent)].iloc[0]
    from spm_models.present.format import format_value

    assert (
        f'{format_value(final["bookings_qtd"], "currency")}</div><div class="spm-card-label">Booked in 2024-Q3 (final)'
        in page
    )
    pay = comm.loc[comm["unique_id"] == agent, "closed_quarter_payout"].iloc[0]
    assert f'{format_value(pay, "currency")}</div><div class="spm-card-label">Payout 2024-Q3 (final)' in page


def test_the_outlook_card_is_the_median_the_fan_chart_draws(quarter_end):
    art = quarter_end.run_folder / "artifacts"
    out = pd.read_parquet(art / "outlook.parquet")
    fan = pd.read_parquet(art / "fan.parquet")
    for level, uid in (("company", "company"), ("agent", out.loc[out["level"] == "agent", "unique_id"].iloc[0])):
        o = out[(out["level"] == level) & (out["unique_id"] == uid)].iloc[0]
        last = fan[(fan["level"] == level) & (fan["unique_id"] == uid)].sort_values("date").iloc[-1]
        assert o["median_bookings"] == pytest.approx(last["q0.5"], rel=1e-9)


def test_an_agent_past_quota_reads_reached(review_run):
    """Mid-quarter, with the recalibration on, an agent already past the quarter's quota shows
    "reached (100%)" on their page and in the index, never a figure below 100%. The shared run
    (2024-11) has one: the agent whose id is a path with markup."""
    result = review_run
    info = json.loads((result.run_folder / "artifacts" / "run.json").read_text())
    assert info["quota_recalibration"]["applied"]  # the adjustment is on, and still leaves them at 100%
    out = pd.read_parquet(result.run_folder / "artifacts" / "outlook.parquet")
    agents = out[out["level"] == "agent"]
    past = agents[agents["closed_to_date"] >= agents["quota"]]
    assert len(past), "the example needs an agent past quota"
    assert (past["p_quota"] == 1.0).all() and past["reached"].all()
    assert (agents.loc[agents["closed_to_date"] < agents["quota"], "p_quota"] < 1.0).all()
    pages = _pages(result)
    for uid in past["unique_id"]:
        assert (
            'reached (100%)</div><div class="spm-card-label">Chance of reaching the 2024-Q4 quota'
            in pages[f"agent:{uid}"]
        )
    index_rows = _Blocks()
    index_rows.feed(pages["index"])
    names = pd.read_parquet(result.run_folder / "artifacts" / "agents.parquet").set_index("agent_id")["agent_name"]
    for uid in past["unique_id"]:
        row = next(r for r in index_rows.rows if r and r[0] == names[uid])
        assert "reached (100%)" in row, row
