"""Shared builders of the indicator tests: long frames from arrays, and a tiny canonical data set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spm_models.data.dataset import Dataset
from spm_models.data.validation import validate

#: Mondays, three years.
WEEKS = pd.date_range("2021-01-04", periods=156, freq="7D")
MAVEN_FOLDER = Path(__file__).resolve().parents[2] / "data" / "examples" / "maven_crm"


@pytest.fixture(scope="session")
def weeks() -> pd.DatetimeIndex:
    return WEEKS


@pytest.fixture(scope="session")
def maven_folder() -> Path:
    return MAVEN_FOLDER


def _frames(y: np.ndarray, xs: dict[str, np.ndarray], *, entity: str = "company", periods=WEEKS):
    """Long target and candidate frames for one entity."""
    n = len(y)
    target = pd.DataFrame({"entity_id": entity, "period": periods[:n], "value": y})
    cands = pd.concat(
        [pd.DataFrame({"entity_id": entity, "period": periods[:n], "candidate": k, "value": v}) for k, v in xs.items()],
        ignore_index=True,
    )
    return target, cands


def _panel_frames(y: np.ndarray, xs: dict[str, np.ndarray], *, periods=WEEKS):
    """Long target and candidate frames for entities ``A0..`` (rows of the arrays), NaN cells left out."""
    n_e, n_t = y.shape
    ids = np.array([f"A{i}" for i in range(n_e)])

    def long(values: np.ndarray, **extra) -> pd.DataFrame:
        frame = pd.DataFrame(
            {"entity_id": np.repeat(ids, n_t), "period": np.tile(periods[:n_t], n_e), "value": values.ravel(), **extra}
        )
        return frame.dropna(subset=["value"]).reset_index(drop=True)

    target = long(y)
    cands = pd.concat([long(v, candidate=k) for k, v in xs.items()], ignore_index=True)
    return target, cands


@pytest.fixture(scope="session")
def frames():
    """``frames(y, {name: x}, entity=..., periods=...)`` -> (target, candidates) of one entity."""
    return _frames


@pytest.fixture(scope="session")
def panel_frames():
    """``panel_frames(y (E, T), {name: x (E, T)})`` -> (target, candidates) of entities A0, A1, ..."""
    return _panel_frames


def _tiny_dataset(*, lost_amount: float = 900.0, first_close: str = "2024-01-03") -> Dataset:
    """Two territories, three agents; closes from Wed 2024-01-03 to Tue 2024-02-13."""
    agents = pd.DataFrame(
        {
            "agent_id": ["a1", "a2", "a3"],
            "agent_name": ["Ann", "Bob", "Cy"],
            "territory_id": ["T1", "T1", "T2"],
            "manager": None,
            "hire_date": pd.NaT,
            "leave_date": pd.NaT,
        }
    )
    territories = pd.DataFrame({"territory_id": ["T1", "T2"], "territory_name": ["North", "South"]})
    d = pd.Timestamp
    opps = pd.DataFrame(
        {
            "opportunity_id": ["o1", "o2", "o3", "o4", "o5"],
            "agent_id": ["a1", "a2", "a3", "a1", "a3"],
            "account_id": None,
            "product_id": None,
            "stage": [None, None, "proposal", None, "qualification"],
            "created_date": [d("2024-01-02"), d("2024-01-03"), d("2024-01-04"), d("2024-01-10"), d("2024-01-11")],
            "outcome": ["won", "won", "lost", "won", "open"],
            "close_date": [d(first_close), d("2024-01-24"), d("2024-01-31"), d("2024-02-13"), pd.NaT],
            "amount": [1000.0, 2000.0, lost_amount, 500.0, 300.0],
        }
    )
    activities = pd.DataFrame(
        {
            "agent_id": ["a1", "a1", "a3"],
            "date": [d("2024-01-01"), d("2024-01-03"), d("2024-01-08")],
            "activity_type": ["call", "call", "demo"],
            "count": [3, 2, 4],
        }
    )
    indicators = pd.DataFrame(
        {
            "date": [d("2024-01-01"), d("2024-01-01"), d("2024-01-01"), d("2024-01-03"), d("2024-01-08")],
            "name": ["leads_web", "leads_web", "market_index", "market_index", "market_index"],
            "value": [10.0, 4.0, 100.0, 102.0, 98.0],
            "territory_id": ["T1", "T2", None, None, None],
        }
    )
    tables = {
        "territories": territories,
        "agents": agents,
        "opportunities": opps,
        "activities": activities,
        "indicators": indicators,
    }
    return validate(Dataset(tables=tables, source="tiny"))


@pytest.fixture(scope="session")
def tiny_dataset():
    """``tiny_dataset(lost_amount=900.0, first_close="2024-01-03")``: three agents, six weeks."""
    return _tiny_dataset
