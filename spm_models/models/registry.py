"""The one model registry: every forecasting model by name, built and checked in one place.

The review settings (``model = "CalendarBaseline"`` with ``[model_params]``), the command line,
the workbench and the benchmarks all name models through :func:`make_model`, and the contract
suite (``tests/models/test_contract.py``) runs on every class in :data:`REGISTRY`. A parameter a
model does not have is refused with the valid names listed, so a misspelt setting
(``windw = 26``) never falls silently back to a default.

A parameter named ``model`` (a wrapper such as :class:`PipelineAware`) may be given as a model
name, or as ``{"name": ..., "params": {...}}``; it is built here too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from spm_models.exceptions import ConfigError
from spm_models.models.base import ForecastModel
from spm_models.models.baselines import CalendarBaseline, Mean, Naive, SeasonalNaive
from spm_models.models.hierarchical.model import HierarchicalBayes
from spm_models.models.month_of_quarter import MonthOfQuarterMean
from spm_models.models.pipeline_aware import PipelineAware
from spm_models.models.prophet_model import ProphetForecaster

__all__ = [
    "REGISTRY",
    "model_names",
    "model_class",
    "make_model",
    "check_model_params",
    "model_spec",
    "describe_models",
]

#: Model name -> class. Register a new model here: the contract suite then runs on it.
REGISTRY: dict[str, type[ForecastModel]] = {
    cls.__name__: cls
    for cls in (
        Naive,
        SeasonalNaive,
        Mean,
        MonthOfQuarterMean,
        CalendarBaseline,
        ProphetForecaster,
        HierarchicalBayes,
        PipelineAware,
    )
}
#: Names models are also known by (the name shown in forecasts, and short forms).
ALIASES: dict[str, str] = {
    "Prophet": "ProphetForecaster",
    "HierBayes": "HierarchicalBayes",
    "Pipeline": "PipelineAware",
}


def model_names() -> list[str]:
    """The registered model names, in registry order."""
    return list(REGISTRY)


def model_class(name: str) -> type[ForecastModel]:
    """The class registered as ``name`` (or one of its :data:`ALIASES`).

    Raises
    ------
    ConfigError
        Unknown name; the message lists the registered ones.
    """
    if not isinstance(name, str):
        raise ConfigError(f"a model is named by text, got {name!r}; choose one of {', '.join(REGISTRY)}")
    key = ALIASES.get(name, name)
    if key not in REGISTRY:
        raise ConfigError(f"unknown forecasting model {name!r}; choose one of {', '.join(REGISTRY)}")
    return REGISTRY[key]


def check_model_params(name: str, params: Mapping[str, Any]) -> None:
    """Raise ConfigError when ``params`` holds a name the model ``name`` does not take.

    Nested ``model`` specifications of wrappers are checked too.
    """
    cls = model_class(name)
    valid = cls._get_param_names()
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ConfigError(
            f"{cls.__name__} has no parameter {', '.join(map(repr, unknown))}; valid parameters: {', '.join(valid)}"
        )
    inner = params.get("model")
    if isinstance(inner, str):
        model_class(inner)
    elif isinstance(inner, Mapping):
        _check_spec(inner)
        check_model_params(inner["name"], inner.get("params", {}))


def _check_spec(spec: Mapping[str, Any]) -> None:
    extra = sorted(set(spec) - {"name", "params"})
    if "name" not in spec or extra or not isinstance(spec.get("params", {}), Mapping):
        raise ConfigError(f'a nested model is a name or {{name = "...", params = {{...}}}}, got {dict(spec)!r}')


def make_model(name: str, /, **params: Any) -> ForecastModel:
    """An unfitted model ``name`` with ``params`` (checked by :func:`check_model_params`).

    >>> make_model("CalendarBaseline", window=26)
    CalendarBaseline(window=26)
    """
    check_model_params(name, params)
    inner = params.get("model")
    if isinstance(inner, str):
        params = {**params, "model": make_model(inner)}
    elif isinstance(inner, Mapping):
        params = {**params, "model": make_model(inner["name"], **dict(inner.get("params", {})))}
    return model_class(name)(**params)


def model_spec(model: ForecastModel) -> dict[str, Any]:
    """``{"name": registry name, "params": non-default parameters}`` of a model, for provenance."""
    cls = type(model)
    name = next((n for n, c in REGISTRY.items() if c is cls), cls.__name__)
    defaults = cls().get_params()
    params = {}
    for k, v in model.get_params().items():
        if isinstance(v, ForecastModel):
            params[k] = model_spec(v)
        elif defaults.get(k) != v:
            params[k] = v
    return {"name": name, "params": params}


def describe_models() -> str:
    """One line per registered model: its name, the first line of its docstring and its
    parameters with their defaults (what ``spm models`` prints)."""
    lines = []
    for name, cls in REGISTRY.items():
        doc = (cls.__doc__ or "").strip().splitlines()
        params = ", ".join(f"{k}={v!r}" for k, v in cls().get_params().items() if k not in ("freq", "random_state"))
        lines.append(f"{name}: {doc[0] if doc else ''}\n    parameters: {params or '(none)'}")
    return "\n".join(lines)
