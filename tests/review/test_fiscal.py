"""A review on a fiscal year that starts in February: its quarters, labels, model and plan.

The calendar of the data (stored at ingest from the project or mapping settings, or set for
one review with ``fiscal_year_start``) decides the review's quarter and the forecast quarter,
the labels reports show (``FY2025-Q4``), the model's quarter-end effects and the plan's year
to date.
"""

from __future__ import annotations

import io
import json
from dataclasses import replace

import pandas as pd
import pytest

from spm_models.calendar import Calendar
from spm_models.review import outlook as ol
from spm_models.review import run_review
from spm_models.review.settings import ReviewConfig
from spm_models.synthetic.generator import generate_organisation

T = pd.Timestamp
FEB = Calendar(fiscal_year_start=2)


def test_the_review_calendar_follows_the_fiscal_quarters():
    end = ol.review_calendar("2025-04", data_end="2025-06-30", calendar=FEB)  # April ends FY2026-Q1
    assert end.quarter == T("2025-02-01") and end.review_quarter_label == "FY2026-Q1"
    assert (end.forecast_quarter, end.forecast_quarter_end) == (T("2025-05-01"), T("2025-07-31"))
    assert end.quarter_label == "FY2026-Q2" and end.h == 14  # weeks from Mon 28 Apr to 31 Jul
    mid = ol.review_calendar("2025-03", data_end="2025-06-30", calendar=FEB)
    assert mid.forecast_quarter == mid.quarter == T("2025-02-01") and mid.forecast_quarter_end == T("2025-04-30")
    plain = ol.review_calendar("2025-03", data_end="2025-06-30")
    assert plain.quarter_label == "2025-Q2" and plain.forecast_quarter == T("2025-04-01")  # March ends Q1


@pytest.fixture(scope="module")
def fiscal_run(tmp_path_factory):
    org = generate_organisation(6, years=2, seed=5)
    data = replace(org.dataset, calendar=FEB)
    agent = str(data.tables["agents"]["agent_id"].iloc[0])
    out = tmp_path_factory.mktemp("fiscal")
    config = ReviewConfig(recalibrate=False, n_draws=200)
    result = run_review(
        dataset=data, month="2024-10", out=out, config=config, agents=[agent], progress=False, log=io.StringIO()
    )
    return result, agent


def test_a_fiscal_review_labels_and_models_its_fiscal_quarters(fiscal_run):
    result, agent = fiscal_run
    assert result.exit_code == 0, result.summary()
    m = result.manifest
    # October 2024 closes FY2025-Q3 (August to October); the forecast covers FY2025-Q4
    assert m["review_quarter"] == "FY2025-Q3" and m["forecast_quarter"] == "FY2025-Q4"
    info = json.loads((result.run_folder / "artifacts" / "run.json").read_text())
    assert (
        info["calendar"]["forecast_quarter"] == "2024-11-01"
        and info["calendar"]["forecast_quarter_end"] == "2025-01-31"
    )
    assert info["model"]["params"]["fiscal_year_start"] == 2
    page = (result.run_folder / m["reports"][0]["output"]).read_text(encoding="utf-8")
    assert "FY2025-Q4" in page and "2024-Q4" not in page


def test_the_plans_year_to_date_restarts_in_february(fiscal_run):
    result, _ = fiscal_run
    plan = pd.read_parquet(result.run_folder / "artifacts" / "plan.parquet")
    company = plan[plan["level"] == "company"].set_index("period").sort_index()
    feb = company.loc[T("2024-02-01")]
    assert feb["ytd_bookings"] == pytest.approx(feb["bookings"])  # a new fiscal year
    jan = company.loc[T("2024-01-01")]
    assert jan["ytd_bookings"] > jan["bookings"]  # the last month of FY2024
