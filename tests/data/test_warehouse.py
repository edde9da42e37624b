"""The DuckDB warehouse: atomic snapshot ingest, idempotent re-ingest, rollback, typed reads."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import pandas as pd
import pytest

import spm_models.data.warehouse as warehouse_module
from spm_models.data.dataset import Dataset
from spm_models.data.schemas import TABLE_ORDER, TABLES
from spm_models.data.sources.canonical import read_canonical_folder
from spm_models.data.validation import DATE_DTYPE, validate
from spm_models.data.warehouse import Warehouse, ddl, fingerprint
from spm_models.exceptions import ConfigError, DataValidationError

GOOD = Path(__file__).parent / "good_small"
GOOD_COUNTS = {
    "territories": 2,
    "agents": 4,
    "accounts": 3,
    "products": 2,
    "opportunities": 15,
    "stage_history": 5,
    "activities": 9,
    "targets": 6,
    "indicators": 6,
    "leads": 0,  # tables of later contract versions, not in this export: stored empty
    "channel_spend": 0,
}


def _good() -> Dataset:
    return read_canonical_folder(GOOD)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _smaller(ds: Dataset) -> Dataset:
    """good_small without its last opportunity and without the optional indicators table."""
    tables = dict(ds.tables)
    tables["opportunities"] = tables["opportunities"].iloc[:-1]
    del tables["indicators"]
    return Dataset(tables=tables, refs=dict(ds.refs), source="smaller")


def test_ingest_creates_the_folder_and_stores_every_table(tmp_path):
    db = tmp_path / "new" / "deeper" / "w.duckdb"
    result = Warehouse(db).ingest(_good())
    assert db.is_file() and result.changed
    assert result.row_counts == GOOD_COUNTS
    assert Warehouse(db).counts() == GOOD_COUNTS
    log = Warehouse(db).last_ingest()
    assert log["run_id"] == result.run_id and log["fingerprint"] == result.fingerprint
    assert log["row_counts"] == GOOD_COUNTS
    assert log["ingested_at"].tzinfo is not None and log["source"] == str(GOOD)


def test_read_after_write_has_the_validated_types_and_values(tmp_path):
    db = tmp_path / "w.duckdb"
    Warehouse(db).ingest(_good())
    expected = validate(_good())
    loaded = Warehouse(db).load()
    for name in TABLE_ORDER:
        if name in expected:
            pd.testing.assert_frame_equal(loaded[name], expected[name], check_like=False)
        else:
            assert len(loaded[name]) == 0 and list(loaded[name].columns) == TABLES[name].column_names
    opp = Warehouse(db).read("opportunities")
    assert opp["created_date"].dtype == DATE_DTYPE and opp["amount"].dtype == "float64"
    assert opp["opportunity_id"].dtype == "str"
    assert Warehouse(db).read("activities")["count"].dtype == "int64"
    won = Warehouse(db).read("opportunities", columns=["opportunity_id", "amount"], where="outcome = 'won'")
    assert list(won.columns) == ["opportunity_id", "amount"]
    # Hand-summed from good_small/opportunities.csv: O01 O04 O07 O10 O12 O14.
    assert won["amount"].sum() == 1000 + 4800.5 + 5000 + 5200 + 900 + 1100


def test_identical_reingest_writes_nothing(tmp_path):
    db = tmp_path / "w.duckdb"
    first = Warehouse(db).ingest(_good())
    before = (_sha(db), db.stat().st_mtime_ns)
    again = Warehouse(db).ingest(_good())
    assert not again.changed
    assert again.fingerprint == first.fingerprint and again.run_id == first.run_id
    assert (_sha(db), db.stat().st_mtime_ns) == before


def test_new_snapshot_replaces_the_old_and_absent_optional_tables_become_empty(tmp_path):
    db = tmp_path / "w.duckdb"
    Warehouse(db).ingest(_good())
    result = Warehouse(db).ingest(_smaller(_good()))
    assert result.changed
    counts = Warehouse(db).counts()
    assert counts["opportunities"] == 14 and counts["indicators"] == 0 and counts["agents"] == 4
    assert Warehouse(db).last_ingest()["run_id"] == result.run_id
    assert Warehouse(db).read("indicators").empty


def test_failure_mid_write_rolls_back_to_the_previous_snapshot(tmp_path, monkeypatch):
    db = tmp_path / "w.duckdb"
    first = Warehouse(db).ingest(_good())
    real = warehouse_module._write_table
    written = []

    def failing(con, name, frame):
        if name == "stage_history":  # after territories .. opportunities were replaced
            raise RuntimeError("disk full (injected)")
        written.append(name)
        real(con, name, frame)

    monkeypatch.setattr(warehouse_module, "_write_table", failing)
    with pytest.raises(RuntimeError, match="injected"):
        Warehouse(db).ingest(_smaller(_good()))
    assert "opportunities" in written  # the failure really came mid-transaction
    monkeypatch.setattr(warehouse_module, "_write_table", real)
    assert Warehouse(db).counts() == GOOD_COUNTS
    assert Warehouse(db).last_ingest()["run_id"] == first.run_id
    pd.testing.assert_frame_equal(Warehouse(db).read("opportunities"), validate(_good())["opportunities"])


def test_database_error_mid_write_is_a_data_error_and_rolls_back(tmp_path, monkeypatch):
    from spm_models.exceptions import DataError

    db = tmp_path / "w.duckdb"
    Warehouse(db).ingest(_good())
    real = warehouse_module._write_table

    def broken(con, name, frame):
        real(con, name, frame)
        if name == "agents":
            con.execute("INSERT INTO agents SELECT * FROM agents")  # violates the primary key

    monkeypatch.setattr(warehouse_module, "_write_table", broken)
    with pytest.raises(DataError, match="keeps its previous content"):
        Warehouse(db).ingest(_smaller(_good()))
    monkeypatch.setattr(warehouse_module, "_write_table", real)
    assert Warehouse(db).counts() == GOOD_COUNTS


def test_invalid_data_never_opens_the_database(tmp_path, monkeypatch):
    db = tmp_path / "w.duckdb"
    Warehouse(db).ingest(_good())
    before = (_sha(db), db.stat().st_mtime_ns)

    def no_connect(*args, **kwargs):
        raise AssertionError("the database was opened although validation failed")

    monkeypatch.setattr(warehouse_module.duckdb, "connect", no_connect)
    bad = _good()
    bad.tables["opportunities"] = bad.tables["opportunities"].assign(amount="-1")
    with pytest.raises(DataValidationError):
        Warehouse(db).ingest(bad)
    assert (_sha(db), db.stat().st_mtime_ns) == before


def test_invalid_data_creates_no_database(tmp_path):
    db = tmp_path / "sub" / "w.duckdb"
    bad = _good()
    del bad.tables["agents"]
    with pytest.raises(DataValidationError):
        Warehouse(db).ingest(bad)
    assert not db.parent.exists()


def test_fingerprint_ignores_row_order_but_not_content():
    typed = validate(_good())
    shuffled = Dataset(
        tables={k: v.sample(frac=1, random_state=3).reset_index(drop=True) for k, v in typed.tables.items()}
    )
    assert fingerprint(shuffled) == fingerprint(typed)
    changed = Dataset(tables={k: v.copy() for k, v in typed.tables.items()})
    changed.tables["opportunities"].loc[0, "amount"] = 1001.0
    assert fingerprint(changed) != fingerprint(typed)
    assert len(fingerprint(typed)) == 64


def test_fingerprint_treats_an_absent_optional_table_as_empty():
    typed = validate(_good())
    without = Dataset(tables={k: v for k, v in typed.tables.items() if k != "indicators"})
    empty = Dataset(tables={**without.tables, "indicators": typed["indicators"].iloc[0:0]})
    assert fingerprint(without) == fingerprint(empty) != fingerprint(typed)


def test_fingerprint_is_stable_across_processes(tmp_path):
    import subprocess
    import sys

    code = (
        "from spm_models.data.sources.canonical import read_canonical_folder;"
        "from spm_models.data.validation import validate;"
        "from spm_models.data.warehouse import fingerprint;"
        f"print(fingerprint(validate(read_canonical_folder({str(GOOD)!r}))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == fingerprint(validate(_good()))


def test_loaded_warehouse_has_the_ingest_fingerprint(tmp_path):
    db = tmp_path / "w.duckdb"
    result = Warehouse(db).ingest(_good())
    assert fingerprint(Warehouse(db).load()) == result.fingerprint
    assert not Warehouse(db).ingest(Warehouse(db).load()).changed


def test_missing_warehouse_is_a_clear_config_error(tmp_path):
    db = tmp_path / "none.duckdb"
    for call in (lambda w: w.load(), lambda w: w.read("agents"), lambda w: w.counts(), lambda w: w.last_ingest()):
        with pytest.raises(ConfigError, match="run `spm ingest` first") as info:
            call(Warehouse(db))
        assert str(db) in str(info.value)
    assert not db.exists()


def test_unknown_table_or_column_is_a_config_error(tmp_path):
    db = tmp_path / "w.duckdb"
    Warehouse(db).ingest(_good())
    with pytest.raises(ConfigError, match="unknown table"):
        Warehouse(db).read("deals")
    with pytest.raises(ConfigError, match="no column"):
        Warehouse(db).read("agents", columns=["agent_id", "salary"])


def test_reads_use_read_only_connections(tmp_path):
    db = tmp_path / "w.duckdb"
    Warehouse(db).ingest(_good())
    with pytest.raises(ConfigError):  # a write through ``where`` cannot run on a read-only connection
        Warehouse(db).read("agents", where="1=1; DELETE FROM agents")
    assert Warehouse(db).counts()["agents"] == 4


def test_ddl_follows_the_schema():
    sql = ddl("opportunities")
    assert '"opportunity_id" VARCHAR PRIMARY KEY' in sql
    assert '"created_date" DATE NOT NULL' in sql and '"amount" DOUBLE' in sql
    assert "PRIMARY KEY" not in ddl("activities")  # composite key: checked by validation
    assert '"count" BIGINT NOT NULL' in ddl("activities")
    con = duckdb.connect()
    for name in TABLE_ORDER:
        con.execute(ddl(name))


# ------------------------------------------------------------------ the fiscal calendar


def test_the_fiscal_calendar_is_stored_with_the_snapshot(tmp_path):
    from spm_models.calendar import Calendar

    db = tmp_path / "w.duckdb"
    plain = Warehouse(db).ingest(_good())
    assert Warehouse(db).load().calendar == Calendar()
    # the same data under another fiscal year is new content: every quarterly number changes
    fiscal = Warehouse(db).ingest(_good(), calendar=Calendar(fiscal_year_start="April"))
    assert fiscal.changed and fiscal.fingerprint != plain.fingerprint
    loaded = Warehouse(db).load()
    assert loaded.calendar == Calendar(4) and fingerprint(loaded) == fiscal.fingerprint
    assert not Warehouse(db).ingest(_good(), calendar=Calendar(4)).changed
    # a source that says its own fiscal year wins over the project's
    own = Dataset(tables=_good().tables, refs=_good().refs, source="mapped", calendar=Calendar(7))
    Warehouse(db).ingest(own, calendar=Calendar(4))
    assert Warehouse(db).load().calendar.fiscal_year_start == 7


def test_a_warehouse_from_before_the_calendar_setting_reads_as_the_calendar_year(tmp_path):
    from spm_models.calendar import Calendar

    db = tmp_path / "w.duckdb"
    Warehouse(db).ingest(_good(), calendar=Calendar(4))
    con = duckdb.connect(str(db))
    con.execute("DROP TABLE spm_settings")
    con.close()
    assert Warehouse(db).load().calendar == Calendar()


# ------------------------------------------------------------------ later contract versions


def test_a_warehouse_written_before_the_later_tables_and_columns_loads_as_before(tmp_path):
    """A warehouse from before leads, is_person, cost, margin, metric and the bookings measure
    existed loads with them empty (people, money) and keeps its fingerprint."""
    db = tmp_path / "w.duckdb"
    stored = Warehouse(db).ingest(_good())
    con = duckdb.connect(str(db))
    con.execute("DROP TABLE leads")
    con.execute("DROP TABLE channel_spend")
    con.execute("ALTER TABLE agents DROP COLUMN is_person")
    con.execute("ALTER TABLE opportunities DROP COLUMN cost")
    con.execute("ALTER TABLE opportunities DROP COLUMN margin")
    con.execute("ALTER TABLE targets DROP COLUMN metric")
    con.execute("DELETE FROM spm_settings WHERE key = 'bookings_measure'")
    con.close()
    old = Warehouse(db).load()
    assert old.bookings_measure == "money" and old["agents"]["is_person"].all()
    assert len(old["leads"]) == 0 and old["opportunities"]["margin"].isna().all()
    assert fingerprint(old) == stored.fingerprint


def test_later_columns_count_in_the_fingerprint_only_when_used(tmp_path):
    base = validate(_good())
    assert base["agents"]["is_person"].all() and "leads" not in base.tables
    flagged = dict(_good().tables)
    flagged["agents"] = flagged["agents"].assign(is_person=["true", "false", None, "yes"])
    typed = validate(Dataset(tables=flagged))
    assert typed["agents"]["is_person"].tolist() == [True, False, True, True]
    assert fingerprint(typed) != fingerprint(base)
    written = tmp_path / "canonical"
    from spm_models.data.sources.canonical import write_canonical_folder

    write_canonical_folder(base, written)
    assert "is_person" not in (written / "agents.csv").read_text().splitlines()[0]  # files as before
    write_canonical_folder(typed, written)
    assert (written / "agents.csv").read_text().splitlines()[0].endswith(",is_person")
    assert not (written / "leads.csv").exists()


# --------------------------------------------------------------------------- narrow, dictionary-encoded reads

_KPI_LIKE = {
    "agents": ["agent_id", "territory_id", "hire_date", "leave_date"],
    "opportunities": ["opportunity_id", "agent_id", "account_id", "created_date", "stage", "outcome", "amount"],
    "stage_history": ["opportunity_id", "stage", "entered_date"],
    "activities": ["agent_id", "date", "activity_type", "count"],
    "targets": ["agent_id", "territory_id", "period_start", "quota", "metric"],
}


def test_load_reads_only_the_tables_and_columns_asked_for(small_warehouse):
    w = Warehouse(small_warehouse)
    narrow = w.load(columns={"opportunities": ["amount", "agent_id"], "agents": ["agent_id"]})
    assert list(narrow.tables) == ["agents", "opportunities"]  # canonical order, whatever the order asked
    assert list(narrow["opportunities"].columns) == ["agent_id", "amount"]
    full = w.load()
    pd.testing.assert_frame_equal(narrow["opportunities"], full["opportunities"][["agent_id", "amount"]])
    assert narrow.calendar == full.calendar and narrow.measure == full.measure


def test_load_names_every_unknown_table_and_column(small_warehouse):
    with pytest.raises(ConfigError) as err:
        Warehouse(small_warehouse).load(columns={"deals": ["x"], "agents": ["agent_id", "shoe_size"]})
    assert "'deals'" in str(err.value) and "'shoe_size'" in str(err.value)


def test_dictionary_load_holds_the_plain_values_with_one_vocabulary_per_column(small_warehouse):
    w = Warehouse(small_warehouse)
    encoded, plain = w.load(columns=_KPI_LIKE, dictionary=True), w.load(columns=_KPI_LIKE)
    for table, columns in _KPI_LIKE.items():
        assert list(encoded[table].columns) == columns
        for col in columns:
            e, p = encoded[table][col], plain[table][col]
            if p.dtype == "str":
                assert isinstance(e.dtype, pd.CategoricalDtype), (table, col)
                pd.testing.assert_series_equal(e.astype("str"), p, check_names=False)
            else:
                pd.testing.assert_series_equal(e, p, check_names=False)
    # one vocabulary per column name: an agent (or opportunity) has the same code in every table
    agents, opps = encoded["agents"]["agent_id"], encoded["opportunities"]["agent_id"]
    assert agents.dtype == opps.dtype
    code_of = dict(zip(agents.astype("str"), agents.cat.codes))
    assert all(code_of[a] == c for a, c in zip(opps.astype("str"), opps.cat.codes))
    assert encoded["stage_history"]["opportunity_id"].dtype == encoded["opportunities"]["opportunity_id"].dtype
