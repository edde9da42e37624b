"""The raw funnel export of the synthetic organisation: loaded from its mapping file alone, its
KPIs equal the generator's truth, and plain pandas on the raw files agrees with both.

The export is read as a new user would read it: ``spm ingest <folder>/mapping.toml`` (the CLI, no
code), then the KPIs are computed from the warehouse. Independently, each number is recomputed
from ``leads.csv`` and ``won_deals.csv`` with pandas alone (their own date formats parsed by
pandas, not by the workbench).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spm_models.cli import main
from spm_models.data.validation import validate
from spm_models.data.warehouse import Warehouse, fingerprint
from spm_models.kpi import compute_kpis
from spm_models.kpi.leads import channel_summary, lead_kpis
from spm_models.synthetic.funnel import CATCH_ALL, CHANNELS, funnel_export
from spm_models.synthetic.generator import generate_organisation


@pytest.fixture(scope="module")
def funnel(tmp_path_factory):
    root = tmp_path_factory.mktemp("funnel")
    fx = funnel_export(generate_organisation(20, years=2, seed=3), seed=3)
    fx.write(root / "export")
    db = root / "w.duckdb"
    assert main(["ingest", str(root / "export" / "mapping.toml"), "--db", str(db), "--project-dir", str(root)]) == 0
    raw_leads = pd.read_csv(root / "export" / "leads.csv", dtype=str)
    raw_won = pd.read_csv(root / "export" / "won_deals.csv", dtype=str)
    return fx, Warehouse(db).load(), raw_leads, raw_won


def test_the_export_looks_like_a_real_funnel_export(funnel):
    fx, ds, leads, won = funnel
    assert list(leads.columns) == ["lead id", "first contact", "channel"]
    assert list(won.columns) == ["lead id", "rep id", "won at", "segment"]  # no amount, no loss date
    assert leads["first contact"].str.fullmatch(r"\d\d-\d\d-\d{4}").all()
    assert won["won at"].str.fullmatch(r"\d\d-\d\d-\d{4} \d\d:\d\d").all()
    assert (won["rep id"] == CATCH_ALL).any()
    share_won = len(won) / len(leads)
    assert 0.07 < share_won < 0.14  # about one lead in ten
    rate = fx.truth.leads.groupby("channel")["won"].mean()
    assert rate.max() / rate.min() > 3.5  # channels convert differently (referral vs paid search/e-mail)
    assert set(rate.index) == {c[0] for c in CHANNELS}


def test_loads_from_its_mapping_with_deals_as_the_measure_and_the_catch_all_flagged(funnel):
    _, ds, leads, won = funnel
    assert ds.bookings_measure == "deals"
    assert len(ds["leads"]) == len(leads) and len(ds["opportunities"]) == len(won)
    agents = ds["agents"].set_index("agent_id")
    assert not agents.loc[CATCH_ALL, "is_person"] and agents.drop(index=CATCH_ALL)["is_person"].all()
    assert (ds["opportunities"]["outcome"] == "won").all() and (ds["opportunities"]["amount"] == 1.0).all()


def test_leads_per_channel_equal_the_truth_and_the_raw_file(funnel):
    fx, ds, leads, _ = funnel
    k = lead_kpis(ds["leads"], ds["opportunities"])
    per_channel = k[(k["kpi"] == "leads_created") & (k["segment"] != "")].groupby("segment")["value"].sum()
    assert per_channel.astype(int).to_dict() == fx.truth.leads_per_channel.to_dict()
    assert per_channel.astype(int).to_dict() == leads["channel"].value_counts().to_dict()


def test_conversion_per_channel_and_cohort_equals_the_truth_and_the_raw_files(funnel):
    fx, ds, leads, won = funnel
    k = lead_kpis(ds["leads"], ds["opportunities"])
    rates = k[(k["kpi"] == "lead_to_win") & (k["segment"] != "")]
    got = rates.set_index(["period", "segment"])["value"].dropna()
    truth = fx.truth.conversion["conversion"]
    truth.index = truth.index.set_names(["period", "segment"])
    pd.testing.assert_series_equal(got.sort_index(), truth.sort_index(), check_names=False)
    # plain pandas on the raw files
    month = pd.to_datetime(leads["first contact"], format="%d-%m-%Y").dt.to_period("M").dt.to_timestamp()
    was_won = leads["lead id"].isin(won["lead id"])
    by_hand = was_won.groupby([month, leads["channel"]]).mean()
    by_hand.index = by_hand.index.set_names(["period", "segment"])
    pd.testing.assert_series_equal(got.sort_index(), by_hand.sort_index(), check_names=False)


def test_deals_won_per_rep_and_month_equal_the_truth_and_the_raw_file(funnel):
    fx, ds, _, won = funnel
    k = compute_kpis(ds, grain="month", levels=("agent",), kpis=["deals_won"])
    got = k[k["value"] > 0].set_index(["entity_id", "period"])["value"].astype(int)
    truth = fx.truth.deals_won
    assert got.sort_index().to_dict() == truth.sort_index().to_dict()
    month = pd.to_datetime(won["won at"], format="%d-%m-%Y %H:%M").dt.to_period("M").dt.to_timestamp()
    by_hand = won.groupby([won["rep id"], month]).size()
    assert got.sort_index().to_dict() == by_hand.sort_index().to_dict()
    assert sum(v for (rep, _), v in got.items() if rep == CATCH_ALL) > 0  # the catch-all's deals still count


def test_median_days_to_convert_equals_the_truth_and_the_raw_files(funnel):
    fx, ds, leads, won = funnel
    everything = channel_summary(ds["leads"], ds["opportunities"]).set_index("channel")
    merged = won.merge(leads, on="lead id")
    days = (
        pd.to_datetime(merged["won at"], format="%d-%m-%Y %H:%M").dt.normalize()
        - pd.to_datetime(merged["first contact"], format="%d-%m-%Y")
    ).dt.days
    assert everything.loc["", "days_to_win"] == fx.truth.days_to_convert.median() == days.median()
    per_channel = days.groupby(merged["channel"]).median()
    for channel, median in per_channel.items():
        assert everything.loc[channel, "days_to_win"] == median


def test_the_export_leaves_the_organisation_and_its_fingerprint_unchanged():
    org = generate_organisation(50, years=3, seed=7)
    before = fingerprint(validate(org.dataset))
    funnel_export(org, seed=7)
    assert fingerprint(validate(org.dataset)) == before
    assert before == "cb42c94de3397e45007bb33f441f80536303b7be31d3c3c9558186bb2c5d45bb"


def test_same_seed_same_files_other_seed_other_channels():
    org = generate_organisation(8, years=1, seed=2)
    a, b, c = funnel_export(org, seed=1), funnel_export(org, seed=1), funnel_export(org, seed=2)
    pd.testing.assert_frame_equal(a.leads, b.leads)
    pd.testing.assert_frame_equal(a.won_deals, b.won_deals)
    assert not np.array_equal(a.leads["channel"].to_numpy(), c.leads["channel"].to_numpy())


def test_the_documented_funnel_mapping_is_the_bundled_one():
    import re
    import tomllib
    from importlib import resources
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "your-own-data.md").read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"```toml\n(.*?)```", doc, flags=re.S) if "won_deals.csv" in b]
    assert len(blocks) == 1
    bundled = (resources.files("spm_models.data.mappings") / "funnel.toml").read_text(encoding="utf-8")
    assert tomllib.loads(blocks[0]) == tomllib.loads(bundled)


def test_the_export_folder_alone_is_enough_to_ingest(tmp_path):
    """`spm ingest my_export` finds the mapping.toml in the folder."""
    funnel_export(generate_organisation(6, years=1, seed=1), seed=1).write(tmp_path / "my_export")
    db = tmp_path / "w.duckdb"
    assert main(["ingest", str(tmp_path / "my_export"), "--db", str(db), "--project-dir", str(tmp_path)]) == 0
    assert Warehouse(db).load().bookings_measure == "deals"
