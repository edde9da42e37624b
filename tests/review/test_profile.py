"""What the data hold decides what the reports show (spm_models.review.profile), on artifacts.

A small synthetic organisation, once as it is (every section), and once with the close dates of
its lost deals removed (an export that records only wins' dates): then no close-period win rate,
and cohort conversion of opportunities instead, checked against the deals themselves.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spm_models.data.dataset import Dataset
from spm_models.data.validation import validate
from spm_models.insights.commission import DEFAULT_PLAN
from spm_models.review import monthly, views
from spm_models.review.artifacts import build_artifacts
from spm_models.review.profile import DataProfile, data_profile, sections
from spm_models.review.settings import ReviewConfig
from spm_models.synthetic.generator import generate_organisation

MONTH = "2024-11"


@pytest.fixture(scope="module")
def org():
    return validate(generate_organisation(8, years=2, seed=9).dataset)


def _undated(ds: Dataset) -> Dataset:
    t = dict(ds.tables)
    o = t["opportunities"].copy()
    o.loc[o["outcome"] == "lost", "close_date"] = pd.NaT
    t["opportunities"] = o
    return validate(Dataset(tables=t, source="lost deals undated"))


def test_a_complete_organisation_shows_every_section(org):
    p = data_profile(org, currency="EUR", has_quota=True, has_commission_plan=True)
    assert (p.loss_dates, p.win_rate_basis, p.bookings_label) == ("complete", "close", "EUR")
    s = sections(p)
    assert all(getattr(s, n).shown for n in ("quota", "commission", "funnel", "accounts", "activity"))
    assert not s.conversion.shown and not s.conversion.reason  # close-period rates: nothing to add
    assert not s.channels.shown and not s.channels.reason  # no leads: nothing to say


def test_without_a_plan_or_quota_the_sections_say_why(org):
    p = data_profile(org, currency="USD", has_quota=False, has_commission_plan=False)
    s = sections(p)
    assert not s.quota.shown and "no quotas" in s.quota.reason
    assert not s.commission.shown and "[commission]" in s.commission.reason


def test_undated_losses_give_cohort_rates_not_close_period_rates(org, tmp_path):
    ds = _undated(org)
    p = data_profile(ds, currency="USD", has_quota=True, has_commission_plan=False)
    assert (p.loss_dates, p.win_rate_basis) == ("undated", "cohort") and "cohort rates" in p.rate_note
    out = tmp_path / "artifacts"
    info = build_artifacts(
        ds, month=MONTH, out_dir=out, config=ReviewConfig(model="CalendarBaseline", n_draws=100, recalibrate=False)
    )
    assert info["data"]["win_rate_basis"] == "cohort"
    metrics = pd.read_parquet(out / "metrics.parquet")
    assert metrics["win_rate_qtd"].isna().all()  # a close-period rate would count only wins
    cohorts = pd.read_parquet(out / "cohorts.parquet")
    assert len(cohorts) == 12
    # recompute one cohort from the deals as they stood at the review date
    as_of = pd.Timestamp(info["calendar"]["as_of"])
    o = ds["opportunities"]
    o = o[o["created_date"] <= as_of]
    won = (o["outcome"] == "won") & (o["close_date"] <= as_of)
    undecided = (o["outcome"] == "open") | ((o["outcome"] == "won") & (o["close_date"] > as_of))
    month = o["created_date"].dt.to_period("M").dt.to_timestamp()
    for row in cohorts.itertuples():
        mine = (month == row.period).to_numpy()
        assert row.created == mine.sum() and row.won == (won.to_numpy() & mine).sum()
        assert row.undecided == (undecided.to_numpy() & mine).sum()
        assert row.conversion == pytest.approx(row.won / row.created)
    view = monthly.monthly_view(out)
    assert view.conversion[0].startswith("Won by now, of the opportunities") and np.isfinite(view.conversion[1])
    assert view.sections.conversion.shown and view.cohorts is not None


def test_an_older_run_without_a_profile_shows_every_section():
    p = DataProfile.from_dict(None)
    assert p.win_rate_basis == "close" and p.bookings_measure == "money"


def test_the_configured_plan_is_shown(org, tmp_path):
    out = tmp_path / "artifacts"
    build_artifacts(
        org,
        month=MONTH,
        out_dir=out,
        config=ReviewConfig(model="CalendarBaseline", n_draws=100, recalibrate=False, commission=DEFAULT_PLAN),
    )
    agents = pd.read_parquet(out / "agents.parquet")
    v = views.agent_view(out, agents["agent_id"].iloc[0])
    assert v.sections.commission.shown and len(v.commission) == 1 and v.plan_name == DEFAULT_PLAN.name
