"""The one model registry: names to classes, checked parameters, nested models, provenance."""

from __future__ import annotations

import pytest

from spm_models.exceptions import ConfigError
from spm_models.models import (
    MODELS,
    REGISTRY,
    CalendarBaseline,
    ForecastModel,
    HierarchicalBayes,
    Mean,
    PipelineAware,
    make_model,
    model_class,
    model_names,
    model_spec,
)


def test_every_registered_model_is_a_forecast_model_and_the_contract_list_is_the_registry():
    assert model_names() == list(REGISTRY) and MODELS == list(REGISTRY.values())
    assert all(issubclass(c, ForecastModel) and c.__name__ == n for n, c in REGISTRY.items())
    assert {"CalendarBaseline", "HierarchicalBayes", "ProphetForecaster", "PipelineAware"} <= set(REGISTRY)


def test_names_and_aliases():
    assert model_class("CalendarBaseline") is CalendarBaseline
    assert model_class("HierBayes") is HierarchicalBayes  # the name its forecasts carry
    with pytest.raises(ConfigError, match="unknown forecasting model 'Crystal ball'; choose one of Naive"):
        model_class("Crystal ball")
    with pytest.raises(ConfigError, match="named by text"):
        model_class(CalendarBaseline)


def test_unknown_parameters_are_refused_with_the_valid_names():
    with pytest.raises(ConfigError, match=r"no parameter 'windw'; valid parameters: .*window"):
        make_model("CalendarBaseline", windw=26)
    model = make_model("CalendarBaseline", window=26, random_state=3)
    assert isinstance(model, CalendarBaseline) and model.window == 26 and model.random_state == 3


def test_a_wrapper_takes_its_model_by_name_or_spec_and_checks_it_too():
    by_name = make_model("PipelineAware", model="Mean")
    assert isinstance(by_name, PipelineAware) and isinstance(by_name.model, Mean)
    spec = {"name": "CalendarBaseline", "params": {"window": 13}}
    nested = make_model("PipelineAware", model=spec, lookback_weeks=26)
    assert nested.model.window == 13 and nested.lookback_weeks == 26
    with pytest.raises(ConfigError, match="no parameter 'windw'"):
        make_model("PipelineAware", model={"name": "CalendarBaseline", "params": {"windw": 13}})
    with pytest.raises(ConfigError, match="unknown forecasting model"):
        make_model("PipelineAware", model="Oracle")
    with pytest.raises(ConfigError, match="nested model"):
        make_model("PipelineAware", model={"model": "Mean"})


def test_model_spec_names_the_non_default_parameters_and_rebuilds_the_model():
    model = make_model("PipelineAware", model={"name": "CalendarBaseline", "params": {"window": 13}})
    spec = model_spec(model)
    assert spec == {
        "name": "PipelineAware",
        "params": {"model": {"name": "CalendarBaseline", "params": {"window": 13}}},
    }
    assert model_spec(make_model(spec["name"], **spec["params"])) == spec
