"""Typed parameters of each report template, checked before any kernel starts.

Each template (a notebook in ``notebooks/reports/``) has one frozen dataclass listing its
parameters and their types. :func:`check_parameters` turns a mapping into that dataclass
and fails on an unknown name, a missing name or a value of the wrong type: papermill alone
would inject an unknown parameter with a warning and run the notebook on its defaults.
:func:`notebook_parameters` reads the notebook's ``parameters`` cell, and
:func:`check_template` verifies that it declares exactly the dataclass's fields, so the two
cannot drift apart.
"""

from __future__ import annotations

import ast
import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from spm_models.exceptions import ConfigError, ReportError

__all__ = [
    "AgentReportParams",
    "TerritoryReportParams",
    "MonthlyReviewParams",
    "TEMPLATES",
    "template_dir",
    "template_path",
    "check_parameters",
    "notebook_parameters",
    "check_template",
]


@dataclass(frozen=True)
class AgentReportParams:
    """Parameters of ``agent_report.ipynb``.

    Attributes
    ----------
    run_dir : str
        The run's artifacts folder.
    agent_id : str
        The agent the report is about.
    """

    run_dir: str
    agent_id: str


@dataclass(frozen=True)
class TerritoryReportParams:
    """Parameters of ``territory_report.ipynb``."""

    run_dir: str
    territory_id: str


@dataclass(frozen=True)
class MonthlyReviewParams:
    """Parameters of ``monthly_review.ipynb``."""

    run_dir: str


#: Template name -> its parameter dataclass.
TEMPLATES: dict[str, type] = {
    "agent_report": AgentReportParams,
    "territory_report": TerritoryReportParams,
    "monthly_review": MonthlyReviewParams,
}


def template_dir() -> Path:
    """Folder of the report notebooks.

    They live in ``notebooks/reports/`` of the source checkout, where analysts open them. A
    built wheel carries them as the package data of ``spm_models.review.templates`` (the
    ``package-dir`` mapping in pyproject.toml), so an installed wheel finds them beside this
    module; a source checkout, editable install included, has no such folder and reads
    ``notebooks/reports/`` directly.
    """
    shipped = resources.files("spm_models.review").joinpath("templates")
    # An installed wheel is unpacked on disk: papermill and the run's fingerprint read paths.
    if isinstance(shipped, Path) and shipped.is_dir():
        return shipped
    return Path(__file__).resolve().parents[2] / "notebooks" / "reports"


def template_path(template: str, *, folder: str | Path | None = None) -> Path:
    """Path of a template notebook; ConfigError for an unknown template."""
    if template not in TEMPLATES:
        raise ConfigError(f"unknown report template {template!r}; templates: {', '.join(TEMPLATES)}")
    path = Path(folder or template_dir()) / f"{template}.ipynb"
    if not path.is_file():
        raise ConfigError(
            f"report template {path} not found: an installed wheel ships the templates in "
            "spm_models/review/templates, a source checkout keeps them in notebooks/reports; reinstall, or pass "
            "the templates folder"
        )
    return path


def _type_ok(value: Any, annotation: Any) -> bool:
    if annotation is str:
        return isinstance(value, str)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is bool:
        return isinstance(value, bool)
    return isinstance(value, annotation)


def check_parameters(template: str, parameters: Mapping[str, Any]):
    """The typed parameters of ``template``, or ConfigError listing every problem.

    Raises
    ------
    ConfigError
        Unknown template, unknown parameter, missing parameter, wrong type, or an empty
        string where an id or folder is expected.
    """
    if template not in TEMPLATES:
        raise ConfigError(f"unknown report template {template!r}; templates: {', '.join(TEMPLATES)}")
    cls = TEMPLATES[template]
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    problems = []
    unknown = sorted(set(parameters) - set(names))
    if unknown:
        problems.append(f"unknown parameter(s) {', '.join(map(repr, unknown))} (the template takes {', '.join(names)})")
    missing = [n for n in names if n not in parameters]
    if missing:
        problems.append(f"missing parameter(s) {', '.join(map(repr, missing))}")
    for n in names:
        if n in parameters:
            v = parameters[n]
            if not _type_ok(v, hints[n]):
                problems.append(f"parameter {n!r} must be {hints[n].__name__}, got {type(v).__name__} {v!r}")
            elif isinstance(v, str) and not v.strip():
                problems.append(f"parameter {n!r} must not be empty")
    if problems:
        raise ConfigError(f"bad parameters for report {template}: " + "; ".join(problems))
    return cls(**{n: parameters[n] for n in names})


def notebook_parameters(notebook: Mapping[str, Any]) -> dict[str, Any]:
    """Names and default values assigned in the notebook's cell tagged ``parameters``.

    Raises
    ------
    ReportError
        No (or more than one) parameters cell, or a statement in it that is not a plain
        assignment of a literal.
    """
    cells = [c for c in notebook["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ReportError(f"a report template needs exactly one cell tagged 'parameters', found {len(cells)}")
    source = cells[0]["source"] if isinstance(cells[0]["source"], str) else "".join(cells[0]["source"])
    out: dict[str, Any] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                raise ReportError(f"parameter {node.targets[0].id} must default to a literal value") from None
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            out[node.target.id] = ast.literal_eval(node.value)
        else:
            raise ReportError(f"the parameters cell may only assign literal defaults; found {ast.dump(node)[:80]}")
    return out


def check_template(template: str, notebook: Mapping[str, Any]) -> None:
    """Check that a template's parameters cell declares exactly its dataclass's fields, typed alike.

    Raises
    ------
    ReportError
        A field is missing from the cell, the cell has an extra name, or a default's type
        differs from the field's annotation.
    """
    cls = TEMPLATES[template]
    hints = typing.get_type_hints(cls)
    declared = notebook_parameters(notebook)
    fields = [f.name for f in dataclasses.fields(cls)]
    problems = []
    if set(declared) != set(fields):
        problems.append(f"declares {sorted(declared)} but {cls.__name__} has {fields}")
    for n in set(declared) & set(fields):
        if not _type_ok(declared[n], hints[n]):
            problems.append(f"default of {n} is a {type(declared[n]).__name__}, the parameter is {hints[n].__name__}")
    if problems:
        raise ReportError(f"template {template}: " + "; ".join(problems))
