"""A report's view is the same whether its rows are found by the id index the fork server builds
(``views.preload``) or by scanning the tables."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from spm_models.review import monthly, views


def _fields(view) -> dict:
    return {f.name: getattr(view, f.name) for f in dataclasses.fields(view)}


def _same(a, b, where: str) -> None:
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b, obj=where)
    elif isinstance(a, float) and np.isnan(a):
        assert isinstance(b, float) and np.isnan(b), where
    else:
        assert a == b, where


def _all_views(run_dir: str) -> list:
    run = views.load_run(run_dir)
    agents = run["agents"]["agent_id"].astype("str").tolist()
    territories = run["territories"]["territory_id"].astype("str").tolist()
    return (
        [views.agent_view(run_dir, a) for a in agents]
        + [views.territory_view(run_dir, t) for t in territories]
        + [monthly.monthly_view(run_dir)]
    )


def test_views_by_the_index_equal_views_by_scanning(review_run):
    run_dir = str(review_run.artifacts)
    views._INDEX.clear()
    try:
        scanned = _all_views(run_dir)
        views.preload(run_dir)
        assert views._INDEX  # the tables are indexed now, and the views below use it
        indexed = _all_views(run_dir)
    finally:
        views._INDEX.clear()
    assert len(scanned) == len(indexed) > 3
    for a, b in zip(scanned, indexed, strict=True):
        for name, value in _fields(a).items():
            _same(value, _fields(b)[name], f"{type(a).__name__}.{name}")


def test_an_index_serves_only_the_frame_it_was_built_for(review_run):
    run = views.load_run(str(review_run.artifacts))
    views._INDEX.clear()
    try:
        views.preload(str(review_run.artifacts))
        agents = run["agents"]
        first = str(agents["agent_id"].iloc[0])
        assert views._rows(agents, "agent_id", first)["agent_id"].astype("str").tolist() == [first]
        assert views._rows(agents, "agent_id", "no such agent").empty
        assert list(views._rows(agents, "agent_id", "no such agent").columns) == list(agents.columns)
        changed = agents.copy()  # another frame: scanned, never served by the index
        changed["agent_id"] = "X"
        assert views._rows(changed, "agent_id", first).empty
    finally:
        views._INDEX.clear()
