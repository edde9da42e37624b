"""compute_kpis: the whole catalog in one call, its options and its errors.

Fixture: tests/kpi/small_org (canonical CSVs; the same organisation as
tests/kpi/test_deals.py plus targets and activities). Hand-computed values::

    bookings, company       Jan 100   Feb 200 + 400 = 600   Mar 30 + 60 = 90
    quota a1                900 over 90 days: Jan 310, Feb 280, Mar 310
    quota S                 no S agent has a target -> S's 1800 over 90 days: 620, 560, 620
    open pipeline, 1 March  o4 70 (open) + o5 30 + o7 80 (closes on 1 March) + o8 60 = 240
    activity a1 January     call 3 + 4 = 7
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spm_models import kpi
from spm_models.data.dataset import Dataset
from spm_models.exceptions import ConfigError, DataError
from spm_models.kpi import KINDS, KPI_CATALOG, UNITS, compute_kpis

FIXTURES = Path(__file__).parent / "small_org"
JAN, FEB, MAR = pd.Timestamp("2017-01-01"), pd.Timestamp("2017-02-01"), pd.Timestamp("2017-03-01")
DATES = {"hire_date", "leave_date", "created_date", "close_date", "period_start", "period_end", "date"}
NUMBERS = {"amount", "quota", "count"}


def load_small_org() -> dict[str, pd.DataFrame]:
    tables = {}
    for path in sorted(FIXTURES.glob("*.csv")):
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
        for col in frame.columns:
            if col in DATES:
                frame[col] = pd.to_datetime(frame[col])
            elif col in NUMBERS:
                frame[col] = pd.to_numeric(frame[col])
        tables[path.stem] = frame
    return tables


def value(frame, kpi_name, level, entity, period, segment=""):
    rows = frame[
        (frame.kpi == kpi_name)
        & (frame.level == level)
        & (frame.entity_id == entity)
        & (frame.period == period)
        & (frame.segment == segment)
    ]
    assert len(rows) == 1, (kpi_name, level, entity, period, segment, len(rows))
    return float(rows.value.iloc[0])


@pytest.fixture(scope="module")
def tables():
    return load_small_org()


@pytest.fixture(scope="module")
def monthly(tables):
    return compute_kpis(tables)


def test_one_level_at_a_time_gives_the_rows_of_the_whole_frame(tables, monthly):
    # computing (or exporting) one level at a time bounds memory; it must not change a number
    for level in ("agent", "territory", "company"):
        alone = compute_kpis(tables, levels=[level])
        whole = monthly[monthly.level == level].reset_index(drop=True)
        assert len(alone) == len(whole) > 0
        pd.testing.assert_frame_equal(
            alone.astype({c: "str" for c in ("level", "entity_id", "grain", "kpi", "segment")}),
            whole.astype({c: "str" for c in ("level", "entity_id", "grain", "kpi", "segment")}),
        )


def test_output_layout_and_types(monthly):
    assert list(monthly.columns) == list(kpi.OUTPUT_COLUMNS)
    assert str(monthly.period.dtype) == "datetime64[us]"
    assert monthly.value.dtype == np.float64
    for col in ("level", "entity_id", "grain", "kpi", "segment"):
        dtype = monthly[col].dtype  # dictionary-encoded text: codes into a sorted vocabulary of str
        assert isinstance(dtype, pd.CategoricalDtype) and isinstance(dtype.categories.dtype, pd.StringDtype), col
        assert list(dtype.categories) == sorted(dtype.categories), col
    assert not monthly.segment.isna().any()
    assert set(monthly.level) == {"agent", "territory", "company"}
    assert set(monthly.grain) == {"month"}
    assert sorted(monthly.period.unique()) == [JAN, FEB, MAR]
    # Every catalog KPI is there when every table is (margin KPIs only for data that hold margin).
    assert list(monthly.kpi.unique()) == [n for n, spec in KPI_CATALOG.items() if spec.holds is None]
    # Unsplit KPIs have an empty segment.
    assert (monthly.loc[monthly.kpi == "bookings", "segment"] == "").all()
    assert not monthly.duplicated(["level", "entity_id", "period", "kpi", "segment"]).any()


def test_hand_computed_values(monthly):
    assert [value(monthly, "bookings", "company", "company", p) for p in (JAN, FEB, MAR)] == pytest.approx(
        [100, 600, 90]
    )
    assert value(monthly, "quota", "agent", "a1", FEB) == pytest.approx(280)
    assert value(monthly, "quota", "territory", "S", FEB) == pytest.approx(560)
    assert value(monthly, "quota", "company", "company", MAR) == pytest.approx(310 + 620)
    assert value(monthly, "attainment", "territory", "S", FEB) == pytest.approx(400 / 560)
    assert value(monthly, "attainment", "company", "company", FEB) == pytest.approx(600 / (280 + 560))
    assert value(monthly, "open_pipeline", "company", "company", MAR) == pytest.approx(240)
    assert value(monthly, "pipeline_coverage", "company", "company", MAR) == pytest.approx(240 / 930)
    assert value(monthly, "activity_volume", "agent", "a1", JAN, "call") == 7
    assert value(monthly, "activity_volume", "territory", "S", MAR, "email") == 4
    assert value(monthly, "win_rate", "company", "company", FEB) == pytest.approx(2 / 3)


def test_same_values_as_the_single_kpi_functions(tables, monthly):
    single = kpi.bookings(tables["opportunities"], tables["agents"], start="2017-01-01", end="2017-03-31")
    merged = single.merge(monthly, on=["level", "entity_id", "period", "kpi", "segment"], suffixes=("", "_all"))
    assert len(merged) == len(single)
    assert np.allclose(merged.value, merged.value_all)


def test_accepts_a_dataset_and_filters_kpis(tables):
    ds = Dataset(tables=dict(tables), source="small org")
    out = compute_kpis(ds, kpis=["win_rate", "bookings"], grain="quarter", levels=["territory", "company"])
    assert list(out.kpi.unique()) == ["win_rate", "bookings"]
    assert set(out.level) == {"territory", "company"}
    assert value(out, "bookings", "company", "company", JAN) == pytest.approx(100 + 600 + 90)
    # Q1: won o1 o2 o5 o6 o8, lost o3 o7 -> 5/7.
    assert value(out, "win_rate", "company", "company", JAN) == pytest.approx(5 / 7)


def test_kpis_without_their_tables_are_skipped_by_default(tables):
    out = compute_kpis({"agents": tables["agents"], "opportunities": tables["opportunities"]})
    names = set(out.kpi)
    assert {"quota", "attainment", "pipeline_coverage", "activity_volume"}.isdisjoint(names)
    assert "bookings" in names and "stage_conversion" in names


def test_rows_follow_employment(monthly):
    rows = monthly[monthly.level == "agent"]
    assert not ((rows.entity_id == "b1") & (rows.period == JAN)).any()  # hired 10 Feb
    a2_march = rows[(rows.entity_id == "a2") & (rows.period == MAR)]
    # a2 left on 15 Feb; only KPIs fed by o5 (won 10 Mar) have a March row.
    assert "bookings" in set(a2_march.kpi)
    assert "activity_volume" not in set(a2_march.kpi)


def test_default_span_starts_at_the_first_close_or_activity(tables):
    opps = tables["opportunities"].copy()
    stale = opps.iloc[[3]].assign(opportunity_id="stale", created_date=pd.Timestamp("2015-05-05"))
    with_stale = {**tables, "opportunities": pd.concat([opps, stale], ignore_index=True)}
    out = compute_kpis(with_stale, kpis=["open_pipeline", "opportunities_created"])
    # First close 20 Jan, first activity 5 Jan: January; the 2015 open deal adds no periods.
    assert sorted(out.period.unique()) == [JAN, FEB, MAR]
    assert value(out, "open_pipeline", "agent", "b1", FEB) == 70  # but it is open pipeline
    earlier = compute_kpis(with_stale, kpis=["opportunities_created"], start="2015-01-01", levels=["company"])
    assert earlier.period.min() == pd.Timestamp("2015-01-01")
    assert value(earlier, "opportunities_created", "company", "company", pd.Timestamp("2015-05-01")) == 1


def test_errors_are_actionable(tables):
    with pytest.raises(ConfigError, match="unknown KPI"):
        compute_kpis(tables, kpis=["bookingz"])
    with pytest.raises(ConfigError, match="grain"):
        compute_kpis(tables, grain="day")
    with pytest.raises(ConfigError, match="level"):
        compute_kpis(tables, levels=["region"])
    with pytest.raises(ConfigError, match="before its start"):
        compute_kpis(tables, start="2017-03-01", end="2017-01-01")
    with pytest.raises(DataError, match="agents"):
        compute_kpis({"opportunities": tables["opportunities"]})
    with pytest.raises(DataError, match="quota needs targets"):
        compute_kpis({"agents": tables["agents"], "opportunities": tables["opportunities"]}, kpis=["quota"])


def test_catalog_is_complete_and_documented():
    for name, spec in KPI_CATALOG.items():
        assert spec.name == name
        assert spec.kind in KINDS and spec.unit in UNITS
        assert spec.description and callable(spec.function) and callable(spec.evaluator)
        doc = spec.function.__doc__
        assert "Parameters" in doc and "Returns" in doc and "%(common)s" not in doc
        assert "=" in doc, f"{spec.function.__name__} docstring should state its formula"
        assert spec.function.__name__ in kpi.__all__


@pytest.mark.slow
def test_five_thousand_agents_three_years_every_grain():
    """All KPIs of 5,000 agents over three years at every grain (their cost is measured by
    bench/ingest.py, not asserted here)."""
    from spm_models.synthetic.generator import generate_organisation

    org = generate_organisation(5000, years=3, seed=5)
    opps = org.dataset["opportunities"]
    assert len(opps) > 900_000
    for grain in ("week", "month", "quarter"):
        out = compute_kpis(org.dataset, grain=grain)
        assert len(out) > 0
