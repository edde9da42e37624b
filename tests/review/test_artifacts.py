"""Artifacts of a review run: fitted once, coherent, reused when nothing changed; views give a
report only its own subject's rows. The run is the shared one (``review_run``, tests/conftest.py);
the tests that build artifacts build them in a copy."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from spm_models.exceptions import ConfigError, ReportError
from spm_models.models.registry import make_model
from spm_models.review import monthly, views
from spm_models.review.artifact_files import TABLES
from spm_models.review.artifacts import artifacts_key, build_artifacts
from spm_models.review.render import scorecard_table, table, title
from spm_models.review.settings import ReviewConfig, load_config


def test_every_table_and_the_provenance_are_written(review_run):
    folder = review_run.artifacts
    assert all((folder / f"{t}.parquet").is_file() for t in TABLES)
    stored = json.loads((folder / "run.json").read_text())
    assert stored["run_id"].startswith("2024-11-") and stored["key"] == review_run.manifest["key"]
    assert set(stored) >= {"data_fingerprint", "package_version", "settings", "model", "calendar"}
    assert stored["previous_forecast"].startswith("reconstructed")
    # model = "auto" (the default): the pick per level, and the backtest that chose it, are recorded
    choice, model = stored["model_choice"], stored["model"]
    assert set(choice["picks"]) == {"agent", "territory", "company"} and model["picks"] == choice["picks"]
    assert set(model["params_by_model"]) == set(choice["picks"].values())
    assert model["name"] == make_model(choice["picks"]["agent"]).model_name()
    scored = pd.DataFrame(choice["scores"])
    for level, pick in choice["picks"].items():
        assert pick in set(scored.loc[scored["level"] == level, "candidate"]) and choice["reasons"][level]
    assert not review_run.manifest["artifacts_reused"]
    assert len(list((folder / "snapshot").iterdir())) == 1


def test_leading_indicators_are_looked_for_once_and_reach_both_reports(review_run):
    from spm_models.indicators.summary import SUMMARY_COLUMNS

    folder = review_run.artifacts
    table = pd.read_parquet(folder / "leading_indicators.parquet")
    assert list(table.columns) == list(SUMMARY_COLUMNS) and len(table) >= 5  # every candidate, with its verdict
    assert table["verdict"].str.len().gt(10).all()
    stored = json.loads((folder / "run.json").read_text())["leading_indicators"]
    assert stored["found"] == int(table["leading"].sum()) and stored["seconds"] >= 0
    m = monthly.monthly_view(folder)
    assert m.leading_indicators["candidate"].tolist() == table["candidate"].tolist()
    me = pd.read_parquet(folder / "agents.parquet")["agent_id"].iloc[0]
    ind = views.agent_view(folder, me).indicators
    assert "lead_weeks" in ind and str(ind["lead_weeks"].dtype) == "Int64"
    lags = table[table["leading"]].set_index("candidate")["lag"]
    for name, weeks in zip(ind["indicator"], ind["lead_weeks"]):
        assert (pd.isna(weeks) and name not in lags.index) or int(weeks) == int(lags[name])


def test_territory_and_company_forecasts_are_sums_of_their_agents(review_run):
    out = pd.read_parquet(review_run.artifacts / "outlook.parquet")
    agents = pd.read_parquet(review_run.artifacts / "agents.parquet")
    a = out[out["level"] == "agent"].merge(agents, left_on="unique_id", right_on="agent_id")
    by_terr = a.groupby("territory_id")[["expected_remaining", "closed_to_date"]].sum()
    t = out[out["level"] == "territory"].set_index("unique_id")
    np.testing.assert_allclose(t.loc[by_terr.index, "expected_remaining"], by_terr["expected_remaining"], rtol=1e-9)
    c = out[out["level"] == "company"]
    assert c["expected_remaining"].iloc[0] == pytest.approx(a["expected_remaining"].sum())
    assert ((out["p_quota"] >= 0) & (out["p_quota"] <= 1) | out["p_quota"].isna()).all()


def _copy_of_the_run(review_run, tmp_path):
    """The shared run's artifacts copied to ``tmp_path/2024-11/artifacts`` (the run is read-only)."""
    folder = tmp_path / "2024-11" / "artifacts"
    shutil.copytree(review_run.artifacts, folder)
    return folder


def test_same_inputs_reuse_the_artifacts_and_force_rebuilds(review_run, tmp_path):
    info = json.loads((review_run.artifacts / "run.json").read_text())
    folder = _copy_of_the_run(review_run, tmp_path)
    again = build_artifacts(
        review_run.dataset, month="2024-11", out_dir=folder, config=review_run.config, runs_root=tmp_path
    )
    assert again["reused"] and again["run_id"] == info["run_id"]
    other = ReviewConfig(currency="EUR")
    assert artifacts_key(info["data_fingerprint"], "2024-11", other) != info["key"]


def test_next_month_scores_this_months_snapshot(review_run, tmp_path):
    _copy_of_the_run(review_run, tmp_path)
    folder = tmp_path / "2024-12" / "artifacts"
    nxt = build_artifacts(
        review_run.dataset, month="2024-12", out_dir=folder, config=review_run.config, runs_root=tmp_path
    )
    assert nxt["previous_forecast"] == "previous run"
    acc = pd.read_parquet(folder / "accuracy.parquet")
    assert set(acc["level"]) == {"agent", "territory", "company"} and acc["actual"].notna().all()


def test_agent_view_holds_only_that_agent(review_run):
    folder = review_run.artifacts
    ds = review_run.dataset
    agents = pd.read_parquet(folder / "agents.parquet")
    me = agents["agent_id"].iloc[0]
    v = views.agent_view(folder, me)
    others = set(ds["agents"]["agent_id"]) - {me}
    other_names = set(ds["agents"]["agent_name"]) - {v.agent_name}
    for name in (
        "scorecard",
        "trend",
        "activity",
        "funnel",
        "indicators",
        "outlook",
        "fan",
        "actual_path",
        "accuracy",
        "commission",
        "coaching",
    ):
        frame = getattr(v, name)
        # every section has its rows: the shared run configures a commission plan, the one
        # section shown only when configured
        assert frame is not None, name
        text = [str(x) for x in frame.to_numpy().ravel()]
        assert not (set(text) & others) and not any(n in cell for cell in text for n in other_names), name
    # the run folder is named relative to the run (no absolute path reaches a page people read)
    assert len(v.coaching) >= 2 and v.provenance["parameters"] == {"run_dir": "artifacts/", "agent_id": me}
    with pytest.raises(ReportError, match="not in the review"):
        views.agent_view(folder, "nobody")


def test_territory_and_monthly_views(review_run):
    folder = review_run.artifacts
    t = views.territory_view(folder, "T01")
    assert len(t.agents) >= 1 and set(t.agents["territory_id"]) == {"T01"} and len(t.outlook) == 1
    m = monthly.monthly_view(folder)
    assert len(m.territories) == 2 and len(m.leaderboard) >= 1 and m.n_agents >= 5
    assert set(m.accuracy_by_level["level"]) == {"agent", "territory", "company"}


def test_render_escapes_everything():
    assert (
        str(title("<b>x</b>", "a & b"))
        == '<header class="spm-title"><h1>&lt;b&gt;x&lt;/b&gt;</h1><p class="spm-subtitle">a &amp; b</p></header>'
    )
    html = str(
        table(
            pd.DataFrame({"n": ["<img src=x onerror=alert(1)>"], "v": [0.5]}),
            {"n": ("Name", "text"), "v": ("Share", "ratio")},
        )
    )
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html and "50%" in html
    card = pd.DataFrame(
        {
            "label": ["Bookings"],
            "unit": ["currency"],
            "value": [1500.0],
            "peer_median": [1000.0],
            "peer_p25": [500.0],
            "peer_p75": [2000.0],
            "percentile": [72.0],
            "peer_label": ["<all>"],
        }
    )
    s = str(scorecard_table(card, currency="EUR"))
    assert "EUR 1.5k" in s and "72nd" in s and "&lt;all&gt;" in s


def test_settings_file(tmp_path):
    f = tmp_path / "review.toml"
    f.write_text('currency = "EUR"\nmodel = "Naive"\n[commission]\ntiers = [[0.0, 0.04], [1.0, 0.1]]\n')
    c = load_config(f)
    assert c.currency == "EUR" and c.model == "Naive" and c.commission.tiers[1].rate == 0.1
    f.write_text('curency = "EUR"\n')
    with pytest.raises(ConfigError, match="unknown review setting"):
        load_config(f)
    with pytest.raises(ConfigError, match="unknown forecasting model"):
        ReviewConfig(model="Crystal Ball")


def test_model_parameters_are_checked_when_the_settings_load(tmp_path):
    f = tmp_path / "review.toml"
    f.write_text('model = "CalendarBaseline"\n[model_params]\nwindw = 26\n')
    with pytest.raises(ConfigError, match=r"CalendarBaseline has no parameter 'windw'; valid parameters: .*window"):
        load_config(f)
    f.write_text('model = "PipelineAware"\n[model_params]\nmodel = "CalendarBaseline"\nlookback_weeks = 26\n')
    assert load_config(f).model_params == {"model": "CalendarBaseline", "lookback_weeks": 26}
    with pytest.raises(ConfigError, match="fiscal_year_start"):
        ReviewConfig(fiscal_year_start=13)
