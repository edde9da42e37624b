"""Tests of spm_models.evaluation.tracking: snapshot round trip, provenance, scoring against actuals."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from spm_models import __version__
from spm_models.evaluation.tracking import list_snapshots, load_snapshot, save_snapshot, score_snapshot
from spm_models.exceptions import ConfigError, DataError
from spm_models.models.baselines import Naive
from spm_models.models.forecast import Forecast

DS = pd.date_range("2024-01-01", periods=3, freq="W-MON").to_numpy()


def _forecast() -> Forecast:
    # series A: two draws {0, 10} in every period; series B: a point mass at 5, 6, 7
    draws = np.array([[[0.0, 10.0]] * 3, [[5.0, 5.0], [6.0, 6.0], [7.0, 7.0]]])
    return Forecast.from_draws(draws, unique_ids=["A", "B"], ds=np.tile(DS, (2, 1)), model="Hand", freq="W-MON")


def _save(tmp_path, fc=None, **kw):
    args = dict(
        folder=tmp_path / "snaps",
        model="Hand",
        config={"h": 3, "note": "test"},
        seed=42,
        data_range=("2023-01-02", "2023-12-31"),
        data_fingerprint="abc123",
        level_of={"A": "agent", "B": "territory"},
    )
    args.update(kw)
    return save_snapshot(_forecast() if fc is None else fc, **args)


def test_round_trip_is_exact(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "unique_id": np.repeat(["x", "y"], 20),
            "ds": np.tile(pd.date_range("2024-01-01", periods=20, freq="W-MON"), 2),
            "y": rng.gamma(2, 50, 40),
        }
    )
    model = Naive(random_state=3).fit(frame)
    fc = model.predict(4, n_draws=200)
    path = save_snapshot(
        fc,
        folder=tmp_path,
        model=model,
        config={"h": 4},
        seed=3,
        data_range=("2024-01-01", "2024-05-13"),
        data_fingerprint="f",
    )
    snap = load_snapshot(path)
    pd.testing.assert_frame_equal(snap.forecast.quantiles, fc.quantiles)
    np.testing.assert_array_equal(snap.forecast.draws, fc.draws.astype(np.float32).astype(float))
    np.testing.assert_array_equal(snap.forecast.unique_ids, fc.unique_ids)
    np.testing.assert_array_equal(snap.forecast.ds, fc.ds)
    pd.testing.assert_frame_equal(snap.forecast.fallback, fc.fallback)
    assert (snap.forecast.model, snap.forecast.freq, snap.forecast.quantile_levels) == (
        fc.model,
        fc.freq,
        fc.quantile_levels,
    )
    with np.load(path / "draws.npz", allow_pickle=False) as z:
        assert z["draws"].dtype == np.float32
    assert snap.provenance["model"] == {
        "name": "Naive",
        "params": {"freq": None, "joint_bootstrap": True, "random_state": 3},
    }


def test_provenance_fields(tmp_path):
    before = pd.Timestamp.now(tz="UTC")
    path = _save(tmp_path)
    prov = json.loads((path / "provenance.json").read_text())
    assert path.name == prov["snapshot_id"] and path.parent == tmp_path / "snaps"
    assert before - pd.Timedelta(seconds=5) <= pd.Timestamp(prov["created_utc"]) <= pd.Timestamp.now(tz="UTC")
    assert prov["spm_version"] == __version__
    assert prov["model"] == {"name": "Hand", "params": {}}
    assert prov["config"] == {"h": 3, "note": "test"}
    assert prov["seed"] == 42
    assert prov["data_range"] == {"start": "2023-01-02", "end": "2023-12-31"}
    assert prov["data_fingerprint"] == "abc123"
    assert (prov["h"], prov["n_series"], prov["n_draws"], prov["freq"]) == (3, 2, 2, "W-MON")
    assert prov["level_of"] == {"A": "agent", "B": "territory"}
    assert pd.read_parquet(path / "quantiles.parquet")["level"].tolist() == ["agent"] * 3 + ["territory"] * 3


def test_atomic_write_and_listing(tmp_path):
    first = _save(tmp_path)
    second = _save(tmp_path, seed=7)
    (tmp_path / "snaps" / ".tmp-half-written").mkdir()
    (tmp_path / "snaps" / "notes").mkdir()
    listed = list_snapshots(tmp_path / "snaps")
    assert listed["snapshot_id"].tolist() == [first.name, second.name]
    assert listed["seed"].tolist() == [42, 7]
    assert not [
        p for p in (tmp_path / "snaps").iterdir() if p.name.startswith(".tmp-") and p.name != ".tmp-half-written"
    ]
    assert list_snapshots(tmp_path / "nowhere").empty


def test_bad_snapshots_and_arguments(tmp_path):
    path = _save(tmp_path)
    with open(path / "quantiles.parquet", "ab") as fh:
        fh.write(b"tampered")
    with pytest.raises(DataError, match="checksum"):
        load_snapshot(path)
    with pytest.raises(DataError, match="not a complete forecast snapshot"):
        load_snapshot(tmp_path)
    with pytest.raises(ConfigError, match="level_of"):
        _save(tmp_path, level_of={"A": "agent"})
    with pytest.raises(ConfigError, match="data_range"):
        _save(tmp_path, data_range="2023")
    assert len(list_snapshots(tmp_path / "snaps")) == 1


def test_scoring_partially_observed_actuals_by_hand(tmp_path):
    snap = load_snapshot(_save(tmp_path))
    # A observed in weeks 1 and 2, B only in week 1; week 3 not known yet
    actuals = pd.DataFrame({"unique_id": ["A", "A", "B"], "ds": [DS[0], DS[1], DS[0]], "y": [4.0, 10.0, 8.0]})
    s = score_snapshot(snap, actuals).set_index("unique_id")
    assert s.loc["A", "n"] == 2 and s.loc["B", "n"] == 1
    assert s.loc["A", "n_pending"] == 1 and s.loc["B", "n_pending"] == 2
    assert s["status"].tolist() == ["partial", "partial"]
    assert s.loc["A", "first_pending"] == pd.Timestamp(DS[2]) and s.loc["B", "first_pending"] == pd.Timestamp(DS[1])
    assert s["level"].tolist() == ["agent", "territory"]
    # A: mean forecast 5; errors |5-4| = 1 and |5-10| = 5
    assert s.loc["A", "mae"] == pytest.approx(3.0)
    # CRPS of draws {0, 10}: mean |x - y| - (1/2) mean |x_i - x_j| = mean|x - y| - 2.5
    # y=4: 5 - 2.5 = 2.5; y=10: 5 - 2.5 = 2.5
    assert s.loc["A", "crps"] == pytest.approx(2.5)
    # B: a point mass at 5 against 8 scores its absolute error and misses every interval
    assert s.loc["B", "crps"] == pytest.approx(3.0) and s.loc["B", "mae"] == pytest.approx(3.0)
    assert s.loc["B", "coverage_80"] == 0.0
    assert s.loc["A", "coverage_80"] == 0.5  # 4 inside [1, 9]; 10 outside
    assert s.loc["A", "bias_pct"] == pytest.approx(100 * (10 - 14) / 14)
    assert np.isnan(s.loc["A", "mase"])  # no training data given
    train = pd.DataFrame(
        {"unique_id": ["A", "A", "A"], "ds": pd.date_range("2023-12-11", periods=3, freq="W-MON"), "y": [0.0, 2.0, 6.0]}
    )
    assert score_snapshot(snap, actuals, train=train).set_index("unique_id").loc["A", "mase"] == pytest.approx(
        3.0 / 3.0
    )

    nothing = score_snapshot(snap, actuals.iloc[:0])
    assert nothing["status"].tolist() == ["pending", "pending"] and (nothing["n"] == 0).all()


def test_scoring_by_period_and_observed_until(tmp_path):
    snap = load_snapshot(_save(tmp_path))
    actuals = pd.DataFrame({"unique_id": ["A", "B", "B"], "ds": [DS[0], DS[0], DS[2]], "y": [4.0, 8.0, 7.0]})
    # weeks 1 and 2 have ended by 2024-01-14; A's week 2 had no sales (no row: 0);
    # B's week 3 row is a partial week and stays pending
    per = score_snapshot(snap, actuals, observed_until="2024-01-14", by="period")
    assert per["status"].tolist() == ["observed", "observed", "pending", "observed", "observed", "pending"]
    np.testing.assert_allclose(per["y"], [4, 0, np.nan, 8, 0, np.nan])
    np.testing.assert_allclose(per["abs_error"], [1, 5, np.nan, 3, 6, np.nan])
    np.testing.assert_allclose(per["crps"], [2.5, 2.5, np.nan, 3, 6, np.nan])
    np.testing.assert_allclose(per["in_80"], [1, 0, np.nan, 0, 0, np.nan])
    s = score_snapshot(snap, actuals, observed_until="2024-01-21")
    assert s["status"].tolist() == ["complete", "complete"]
    with pytest.raises(ConfigError):
        score_snapshot(snap, actuals, by="agent")
