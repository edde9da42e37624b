"""The scenarios a plan's cost is modelled on: the review's recalibrated bookings draws.

A forecasting model's draws treat the agents as independent, so a sum over fifty people (the
company's cost of a plan) comes out far narrower than whole quarters actually vary: a market
turn moves every agent at once. The monthly review therefore never reads a model's draws as
they come. From the quarters that had ended it learns stage 1 of the quota calibration
(:mod:`spm_models.evaluation.quota.calibration`): how far off the forecast of a whole quarter
was most recently (``c``), how much that error moved from quarter to quarter (``s``) and how much
more territories varied (``g``); every agent's draw ``j`` is multiplied by one common factor
``F_j = exp(c + s Z_j - s^2/2)`` and its territory's ``G_gj``. The review's plan-in-force section
is evaluated on those draws (:mod:`spm_models.review.incentives`).

:func:`calibrated_scenarios` does the same for :func:`~.rollout.plan_runs` (a draft before
roll-out) and :func:`~.backtest.backtest_plan_cost` (each past quarter, learning only from the
quarters that had ended before it), with the review's default settings
(:data:`CALIBRATION_QUARTERS`, :data:`CALIBRATION_DRAWS`, :data:`CALIBRATION_MIN_ROWS`), so
the cost modelled here, the review's and the backtest's are one method.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from spm_models.evaluation.quota.calibration import QuotaCalibration, factor_forecast, learn_calibration_before
from spm_models.models.forecast import Forecast

__all__ = [
    "CALIBRATION_QUARTERS",
    "CALIBRATION_DRAWS",
    "CALIBRATION_MIN_ROWS",
    "agent_territories",
    "calibrated_scenarios",
    "no_calibration",
]

#: The review's defaults (``ReviewConfig.recalibration_quarters``, ``recalibration_draws`` and
#: ``recalibration_min_rows``; a test keeps them equal).
CALIBRATION_QUARTERS = 12
CALIBRATION_DRAWS = 300
CALIBRATION_MIN_ROWS = 200


def agent_territories(tables: Mapping[str, pd.DataFrame]) -> dict[str, str]:
    """Agent id -> territory id (the groups of the territory factor); agents without one are left out."""
    agents = tables["agents"].dropna(subset=["territory_id"])
    return dict(zip(agents["agent_id"].astype("str"), agents["territory_id"].astype("str")))


def no_calibration(note: str) -> QuotaCalibration:
    """A calibration that changes nothing, with why (the model's own draws are used)."""
    return QuotaCalibration(None, None, None, 0, 0, (note,))


def calibrated_scenarios(
    forecast: Forecast,
    rows: pd.DataFrame,
    quarter_start: Any,
    *,
    tables: Mapping[str, pd.DataFrame],
    seed: int,
    quarters: int = CALIBRATION_QUARTERS,
    min_rows: int = CALIBRATION_MIN_ROWS,
) -> tuple[Forecast, QuotaCalibration]:
    """The agents' draws of the quarter starting on ``quarter_start`` multiplied by the common and
    territory factors learned from the quota backtest ``rows`` of the quarters that had ended
    before it (:func:`~spm_models.evaluation.quota.calibration.learn_calibration_before`, then
    :func:`~spm_models.evaluation.quota.calibration.factor_forecast` with the review's ``seed``).

    Parameters
    ----------
    forecast : Forecast
        The model's agent-level weekly draws.
    rows : DataFrame
        :func:`~spm_models.evaluation.quota.backtest.calibration_rows` at the forecast's offset
        into the quarter; rows of later quarters are ignored.
    quarter_start : date-like
    tables : mapping of str to DataFrame
        The canonical tables (the agents' territories).
    seed : int
        Seed of the factors' draws (the review's ``seed``).
    quarters, min_rows : int
        Past quarters learned from, at most; fewest past agent-quarters for the logistic stage
        (which does not touch the draws, but is learned as the review learns it).

    Returns
    -------
    (Forecast, QuotaCalibration)
        The factored forecast (unchanged when stage 1 could not be learned) and the calibration,
        whose ``notes`` say what was not applied and why.
    """
    cal = learn_calibration_before(rows, quarter_start, quarters=quarters, min_rows=min_rows)
    return factor_forecast(forecast, cal, seed=seed, groups=agent_territories(tables)), cal
