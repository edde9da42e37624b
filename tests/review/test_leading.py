"""The review's leading indicators: the agent's lags (views.indicator_lags) and the HTML of both sections."""

from __future__ import annotations

import numpy as np
import pandas as pd

from spm_models.review.company import leading_indicator_notes, leading_indicator_table
from spm_models.review.render import indicator_table
from spm_models.review.views import indicator_lags

LEADING = pd.DataFrame(
    {
        "candidate": ["activity:demo", "indicator:market_index", "activity:call"],
        "leading": [True, True, False],
        "lag": pd.array([3, 8, pd.NA], dtype="Int64"),
        "verdict": ["leading indicator", "leading indicator", "moves with activity:demo and adds nothing beyond it"],
        "recent": [310.0, 104.2, np.nan],
        "usual": [290.0, 100.0, np.nan],
        "change": [310 / 290 - 1, 0.042, np.nan],
        "implied": [0.021, 0.063, np.nan],
        "implied_low": [0.011, 0.030, np.nan],
        "implied_high": [0.031, 0.096, np.nan],
        "implied_amount": [3150.0, 25200.0, np.nan],
    }
)


def test_an_agents_indicators_get_the_lag_of_the_same_leading_indicator():
    agent = pd.DataFrame(
        {
            "entity_id": "a1",
            "indicator": ["activity:call", "activity:demo", "open_pipeline"],
            "value": [40.0, 6.0, 1e5],
            "history_mean": [38.0, 4.0, 9e4],
            "direction": ["steady", "up", "steady"],
        }
    )
    out = indicator_lags(agent, LEADING)
    assert out["lead_weeks"].tolist()[1] == 3
    assert out["lead_weeks"].isna().tolist() == [True, False, True]  # calls are not a leading indicator here
    assert out["lead"].tolist() == ["not found to lead", "3 weeks", "not tested"]  # the open pipeline is no candidate
    html = str(indicator_table(out, currency="EUR"))
    assert "Leads bookings by" in html and "3 weeks" in html and "not found to lead" in html and "not tested" in html


def test_the_monthly_section_states_lag_movement_and_implication_with_its_range():
    html = str(leading_indicator_table(LEADING, currency="EUR"))
    assert "Demos logged" in html and "Market index" in html and "Calls logged" not in html
    assert "3 weeks" in html and "8 weeks" in html
    assert "310.0 on average, against 290.0 in the year before (7% change)" in html
    assert "+2.1% on usual bookings, about EUR 3.1k over the 3 weeks" in html
    assert "+1.1% to +3.1%" in html and "80% range" in html
    notes = str(leading_indicator_notes(LEADING))
    assert "Calls logged: moves with demos logged and adds nothing beyond it." in notes
    none = str(leading_indicator_table(LEADING.assign(leading=False), currency="EUR"))
    assert "No leading indicator of bookings passed every check" in none


def test_a_run_that_could_not_look_says_why():
    failed = pd.DataFrame(
        {"candidate": [""], "leading": [False], "verdict": ["leading indicators were not looked for: x"]}
    )
    assert "Leading indicators were not looked for: x." in str(leading_indicator_notes(failed))
