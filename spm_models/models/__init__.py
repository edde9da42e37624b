"""Forecasting models behind one contract (see :mod:`spm_models.models.base`).

:data:`MODELS` lists every model class; ``tests/models/test_contract.py`` runs the whole
contract suite on each, so a new model is registered by adding it here. Importing this
package loads no modelling library: heavy models import theirs inside ``fit``.
"""

from __future__ import annotations

from spm_models.models.base import ForecastModel, LastValue, check_is_fitted, clone, fit_tables_of
from spm_models.models.baselines import CalendarBaseline, Mean, Naive, SeasonalNaive
from spm_models.models.forecast import DEFAULT_QUANTILES, Forecast, concat_forecasts, quantile_column
from spm_models.models.hierarchical.model import HierarchicalBayes
from spm_models.models.month_of_quarter import MonthOfQuarterMean
from spm_models.models.panel import build_panel, check_frame
from spm_models.models.pipeline_aware import PipelineAware, new_deal_share
from spm_models.models.prophet_model import ProphetForecaster
from spm_models.models.registry import REGISTRY, check_model_params, make_model, model_class, model_names, model_spec

__all__ = [
    "MODELS",
    "REGISTRY",
    "make_model",
    "model_class",
    "model_names",
    "model_spec",
    "check_model_params",
    "fit_tables_of",
    "ForecastModel",
    "Forecast",
    "DEFAULT_QUANTILES",
    "LastValue",
    "Naive",
    "SeasonalNaive",
    "Mean",
    "CalendarBaseline",
    "MonthOfQuarterMean",
    "ProphetForecaster",
    "HierarchicalBayes",
    "PipelineAware",
    "new_deal_share",
    "build_panel",
    "check_frame",
    "check_is_fitted",
    "clone",
    "concat_forecasts",
    "quantile_column",
]

#: Every registered model class (the contract suite runs on each).
MODELS: list[type[ForecastModel]] = list(REGISTRY.values())
