"""Invariants of the KPI engine on random organisations (hypothesis).

- additive KPIs: each territory equals the sum of its agents' rows, the company the sum of
  its territories (agent rows are dropped only where they are zero);
- attainment = bookings / quota, coverage = open pipeline / quota, win rate =
  won / (won + lost), all at every level; rates lie in [0, 1];
- new + existing + unknown bookings = bookings.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spm_models.kpi import KPI_CATALOG, compute_kpis

BASE = pd.Timestamp("2017-01-01")


@st.composite
def organisations(draw):
    n_agents = draw(st.integers(1, 6))
    territories = [f"T{draw(st.integers(0, 2))}" for _ in range(n_agents)]
    hire = [draw(st.one_of(st.none(), st.integers(0, 200))) for _ in range(n_agents)]
    leave = [draw(st.one_of(st.none(), st.integers(100, 400))) for _ in range(n_agents)]
    agents = pd.DataFrame(
        {
            "agent_id": [f"a{i}" for i in range(n_agents)],
            "territory_id": territories,
            "hire_date": [BASE + pd.Timedelta(days=h) if h is not None else pd.NaT for h in hire],
            "leave_date": [BASE + pd.Timedelta(days=v) if v is not None else pd.NaT for v in leave],
        }
    )
    n_opps = draw(st.integers(1, 40))
    created = draw(st.lists(st.integers(0, 300), min_size=n_opps, max_size=n_opps))
    cycle = draw(st.lists(st.integers(0, 150), min_size=n_opps, max_size=n_opps))
    outcome = draw(st.lists(st.sampled_from(["won", "lost", "open"]), min_size=n_opps, max_size=n_opps))
    stage = draw(
        st.lists(
            st.sampled_from([None, "prospecting", "qualification", "needs_assessment", "proposal", "negotiation"]),
            min_size=n_opps,
            max_size=n_opps,
        )
    )
    opps = pd.DataFrame(
        {
            "opportunity_id": [f"o{i}" for i in range(n_opps)],
            "agent_id": [f"a{draw(st.integers(0, n_agents - 1))}" for _ in range(n_opps)],
            "account_id": [draw(st.sampled_from([None, "x", "y", "z"])) for _ in range(n_opps)],
            "created_date": [BASE + pd.Timedelta(days=c) for c in created],
            "stage": stage,
            "outcome": outcome,
            "close_date": [
                BASE + pd.Timedelta(days=c + d) if o != "open" else pd.NaT for c, d, o in zip(created, cycle, outcome)
            ],
            "amount": draw(
                st.lists(
                    st.floats(0, 1e6, allow_nan=False).map(lambda v: round(v, 2)), min_size=n_opps, max_size=n_opps
                )
            ),
        }
    )
    n_targets = draw(st.integers(0, 8))
    t_start = draw(st.lists(st.integers(0, 300), min_size=n_targets, max_size=n_targets))
    t_len = draw(st.lists(st.integers(0, 120), min_size=n_targets, max_size=n_targets))
    targets = pd.DataFrame(
        {
            "agent_id": [f"a{draw(st.integers(0, n_agents - 1))}" for _ in range(n_targets)],
            "territory_id": pd.Series([None] * n_targets, dtype="str"),
            "period_start": pd.to_datetime([BASE + pd.Timedelta(days=s) for s in t_start]),
            "period_end": pd.to_datetime([BASE + pd.Timedelta(days=s + n) for s, n in zip(t_start, t_len)]),
            "quota": draw(
                st.lists(
                    st.floats(0, 1e6, allow_nan=False).map(lambda v: round(v, 2)),
                    min_size=n_targets,
                    max_size=n_targets,
                )
            ),
        }
    )
    n_acts = draw(st.integers(0, 20))
    acts = pd.DataFrame(
        {
            "agent_id": [f"a{draw(st.integers(0, n_agents - 1))}" for _ in range(n_acts)],
            "date": pd.to_datetime([BASE + pd.Timedelta(days=draw(st.integers(0, 300))) for _ in range(n_acts)]),
            "activity_type": [draw(st.sampled_from(["call", "email"])) for _ in range(n_acts)],
            "count": [draw(st.integers(0, 50)) for _ in range(n_acts)],
        }
    )
    grain = draw(st.sampled_from(["week", "month", "quarter"]))
    return {"agents": agents, "opportunities": opps, "targets": targets, "activities": acts}, grain


def _check_additive(frame, agents):
    """Territory = sum of its agents, company = sum of territories, for every additive KPI."""
    add = frame[frame.kpi.isin(ADDITIVE)]
    keys = ["kpi", "period", "segment"]
    agent_rows = add[add.level == "agent"].merge(
        agents[["agent_id", "territory_id"]], left_on="entity_id", right_on="agent_id"
    )
    summed = agent_rows.groupby(["territory_id"] + keys).value.sum()
    terr_rows = add[add.level == "territory"]
    terr = terr_rows.set_index(["entity_id"] + keys).value
    terr.index = terr.index.set_names(["territory_id"] + keys)
    joined = pd.concat([terr.rename("territory"), summed.rename("agents")], axis=1).fillna(0.0)
    np.testing.assert_allclose(joined.territory, joined.agents, rtol=1e-9, atol=1e-6)
    company = add[add.level == "company"].set_index(keys).value
    by_terr = terr_rows.groupby(keys).value.sum()
    joined = pd.concat([company.rename("company"), by_terr.rename("territories")], axis=1).fillna(0.0)
    np.testing.assert_allclose(joined.company, joined.territories, rtol=1e-9, atol=1e-6)


ADDITIVE = [n for n, s in KPI_CATALOG.items() if s.kind == "additive"]


def _wide(frame, level):
    """One column per unsplit KPI; a missing additive row (an agent outside employment) is 0."""
    sub = frame[(frame.level == level) & (frame.segment == "")]
    wide = sub.pivot(index=["entity_id", "period"], columns="kpi", values="value")
    wide = wide.reindex(columns=[n for n, s in KPI_CATALOG.items() if s.segment is None])
    for name in ADDITIVE:
        if name in wide:
            wide[name] = wide[name].fillna(0.0)
    return wide


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(organisations())
def test_invariants(org):
    tables, grain = org
    out = compute_kpis(tables, grain=grain)
    _check_additive(out, tables["agents"])
    rates = out[out.kpi.isin(["win_rate", "stage_conversion"])].value.dropna()
    assert ((rates >= 0) & (rates <= 1)).all()
    for level in ("agent", "territory", "company"):
        w = _wide(out, level)
        with np.errstate(divide="ignore", invalid="ignore"):
            q = w["quota"].to_numpy()
            expected_att = np.where(q != 0, w["bookings"].to_numpy() / np.where(q != 0, q, 1), np.nan)
            expected_cov = np.where(q != 0, w["open_pipeline"].to_numpy() / np.where(q != 0, q, 1), np.nan)
            closed = (w["deals_won"] + w["deals_lost"]).to_numpy()
            expected_wr = np.where(closed > 0, w["deals_won"].to_numpy() / np.where(closed > 0, closed, 1), np.nan)
        np.testing.assert_allclose(w["attainment"].to_numpy(), expected_att, rtol=1e-9, equal_nan=True)
        np.testing.assert_allclose(w["pipeline_coverage"].to_numpy(), expected_cov, rtol=1e-9, equal_nan=True)
        np.testing.assert_allclose(w["win_rate"].to_numpy(), expected_wr, rtol=1e-12, equal_nan=True)
    split = out[out.kpi == "new_vs_existing_bookings"].groupby(["level", "entity_id", "period"]).value.sum()
    total = out[out.kpi == "bookings"].set_index(["level", "entity_id", "period"]).value
    joined = pd.concat([split.rename("split"), total.rename("total")], axis=1).fillna(0.0)
    np.testing.assert_allclose(joined.split, joined.total, rtol=1e-9, atol=1e-6)
