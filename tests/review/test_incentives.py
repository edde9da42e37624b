"""The review's incentive plans on artifacts: statements reconcile to the company's cost, the
payroll export holds the same amounts, the agent page reads only the person's own statement,
the plans' cost and contests reach the monthly review, and without a plan there is none.

One small synthetic organisation under the shipped example plan book (plans/example.toml), as
of the end of a quarter's first month (a quarter in progress) and at a quarter end (the quarter
that closed beside the quarter ahead).
"""

from __future__ import annotations

import pandas as pd
import pytest

from spm_models.data.validation import validate
from spm_models.insights.incentives import load_plan_book, reconcile
from spm_models.insights.incentives.planfile import example_plan_file
from spm_models.review import plan_views, render_plans
from spm_models.review.artifacts import build_artifacts
from spm_models.review.incentives import EXPORT_FILES, write_statement_exports
from spm_models.review.settings import ReviewConfig
from spm_models.synthetic.generator import generate_organisation


@pytest.fixture(scope="module")
def org():
    return validate(generate_organisation(8, years=2.5, seed=9).dataset)


def _build(org, tmp_path_factory, month: str, plans=True):
    out = tmp_path_factory.mktemp(f"plans-{month}") / "artifacts"
    book = load_plan_book(example_plan_file("example")) if plans else None
    config = ReviewConfig(model="CalendarBaseline", n_draws=100, recalibrate=False, plans=book)
    build_artifacts(org, month=month, out_dir=out, config=config)
    return out


@pytest.fixture(scope="module")
def in_progress(org, tmp_path_factory):
    return _build(org, tmp_path_factory, "2025-04")


@pytest.fixture(scope="module")
def quarter_end(org, tmp_path_factory):
    return _build(org, tmp_path_factory, "2025-03")


def _tables(art):
    return {n: pd.read_parquet(art / f"{n}.parquet") for n in ("statements", "statement_totals", "plan_cost")}


@pytest.mark.parametrize("which, status", [("in_progress", "in progress"), ("quarter_end", "ahead")])
def test_statements_reconcile_to_the_company_cost(which, status, request):
    t = _tables(request.getfixturevalue(which))
    assert len(t["statements"]) and len(t["plan_cost"]) >= 5  # 2024-Q1 .. the forecast quarter
    check = reconcile(t["statements"], t["statement_totals"], t["plan_cost"])
    assert check["ok"].all(), check
    ahead = t["plan_cost"].iloc[-1]
    assert ahead["status"] == status and ahead["q10"] <= ahead["expected"] <= ahead["q90"]
    final = t["plan_cost"][t["plan_cost"]["status"] == "final"]
    assert (final["expected"] == final["earned_to_date"]).all()


def test_the_payroll_export_holds_the_statement_amounts(in_progress, tmp_path):
    files = write_statement_exports(in_progress, tmp_path / "exports")
    assert sorted(p.name for p in files) == sorted(EXPORT_FILES)
    lines = pd.read_csv(tmp_path / "exports" / "statements.csv")
    company = pd.read_csv(tmp_path / "exports" / "plan_cost.csv").set_index("period")
    by_period = lines.groupby("period")["amount_to_date"].sum()
    pd.testing.assert_series_equal(by_period, company["earned_to_date"].reindex(by_period.index), check_names=False)
    again = pd.read_parquet(tmp_path / "exports" / "statements.parquet")
    assert len(again) == len(lines) and again["amount_expected"].sum() == pytest.approx(lines["amount_expected"].sum())


def test_the_agent_page_reads_only_the_persons_statement(in_progress):
    lines = pd.read_parquet(in_progress / "statements.parquet")
    aid = str(lines["agent_id"].iloc[0])
    s = plan_views.agent_statement(in_progress, aid)
    assert s.shown and not s.quarter_closed and len(s.ahead)
    assert set(s.ahead["agent_id"].astype(str)) == {aid} and set(s.history["agent_id"].astype(str)) == {aid}
    mine = lines[(lines["agent_id"].astype(str) == aid) & (lines["period"] == s.quarter)]
    assert s.totals_ahead["expected"].iloc[0] == pytest.approx(mine["amount_expected"].sum())
    html = render_plans.statement_section(s, "ahead")
    assert f"Expected pay {s.quarter} (mean)" in html and str(s.ahead["rule"].iloc[0]).split()[0] in html
    assert render_plans.statement_section(s, "closed") == ""


def test_a_quarter_end_shows_the_quarter_that_closed(quarter_end):
    lines = pd.read_parquet(quarter_end / "statements.parquet")
    aid = str(lines["agent_id"].iloc[0])
    s = plan_views.agent_statement(quarter_end, aid)
    assert s.quarter_closed and s.review_quarter != s.quarter
    assert (s.closed["status"] == "final").all() and len(s.ahead)
    assert f"Paid for {s.review_quarter} (final)" in render_plans.statement_section(s, "closed")


def test_the_monthly_review_has_the_plans_cost(in_progress):
    p = plan_views.plan_review(in_progress)
    outlook = pd.read_parquet(in_progress / "plan_outlook.parquet")
    assert len(outlook) == 1 and outlook["cost_q10"].iloc[0] <= outlook["expected_cost"].iloc[0]
    assert p.shown and len(p.tiers) and p.tiers["expected_people"].ge(0).all()


def test_without_a_plan_there_are_no_statements(org, tmp_path_factory, tmp_path):
    art = _build(org, tmp_path_factory, "2025-04", plans=False)
    assert all(len(f) == 0 for f in _tables(art).values())
    assert write_statement_exports(art, tmp_path / "exports") == []
    assert not plan_views.plan_review(art).shown
