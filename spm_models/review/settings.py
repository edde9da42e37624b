"""Settings of a monthly review run: the forecasting model, the incentive plans, labels.

Defaults work out of the box; a TOML file (``spm review --config review.toml``) overrides
them::

    currency = "EUR"
    model = "CalendarBaseline"          # "auto" (default): chosen per level by a backtest on the data
    n_draws = 1000
    seed = 0
    min_peers = 5
    recalibrate = true                  # check P(quota) against past quarters
    kernels = "auto"                    # report kernels: "auto", "fork" or "plain"
    cluster = "tcp://scheduler:8786"    # reports on a Dask cluster ("local": on this machine); docs/scale.md

    [model_params]                      # the named model's own parameters (`spm models` lists them)
    window = 26

    plan_file = "plans/fy2025.toml"     # the incentive plan book (docs/plans.md), relative to this file

    # or, for one commission on bookings and nothing else, instead of plan_file:
    [commission]                        # without either the reports have no commission section
    name = "FY25 plan"
    tiers = [[0.0, 0.05], [1.0, 0.08], [1.5, 0.10]]   # [from attainment, marginal rate]
    cap_attainment = 2.0
    no_quota_rate = 0.05

    [coaching]                          # thresholds of coaching points and deal lists (docs/review.md)
    stuck_factor = 2.0
    far_above_quota = 1.5

Unknown keys are errors, so a misspelt setting is never silently ignored. Payouts are shown only
when a plan is configured: a plan nobody set up is not a plan anyone is paid by. A ``[commission]``
table is a plan book of one plan for everyone with that one component
(:meth:`~spm_models.insights.incentives.plan.PlanBook.from_commission`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from spm_models.calendar import Calendar
from spm_models.config import read_toml
from spm_models.data.dataset import Dataset
from spm_models.exceptions import ConfigError
from spm_models.insights.commission import CommissionPlan, plan_from_mapping
from spm_models.insights.incentives import PlanBook, load_plan_book, plan_book_from_mapping, plan_book_to_mapping
from spm_models.insights.settings import CoachingSettings, coaching_settings_from_mapping
from spm_models.models.registry import check_model_params, model_class
from spm_models.review.kernels.mode import KERNEL_MODES

__all__ = ["ReviewConfig", "load_config", "check_cluster", "AUTO", "AUTO_CANDIDATES", "LOCAL"]

#: ``cluster = "local"``: a Dask LocalCluster on this machine (:mod:`spm_models.review.cluster`).
LOCAL = "local"
_ADDRESS = re.compile(r"^(tcp|tls|ucx|inproc)://[^\s/:]+(:\d{1,5})?/?$")

#: ``model = "auto"``: choose the model per level by a backtest on the organisation's own data.
AUTO = "auto"
#: What ``auto`` compares, simplest first (the order breaks near-ties).
AUTO_CANDIDATES: tuple[str, ...] = (
    "MonthOfQuarterMean",
    "CalendarBaseline",
    "PipelineAware",
    "HierarchicalBayes",
    "ProphetForecaster",
)


def check_cluster(spec: str | None) -> str | None:
    """``spec`` if it names a cluster (``"local"`` or a scheduler address), else ConfigError.

    Raises
    ------
    ConfigError
        Neither ``local`` nor an address such as ``tcp://scheduler:8786``.
    """
    if spec is None:
        return None
    if not isinstance(spec, str) or not (spec.strip() == LOCAL or _ADDRESS.match(spec.strip())):
        raise ConfigError(
            f"cluster must be 'local' (a Dask cluster on this machine) or a scheduler address such as "
            f"'tcp://scheduler:8786', got {spec!r}"
        )
    return spec.strip()


@dataclass(frozen=True)
class ReviewConfig:
    """Everything a review run depends on besides the data and the month.

    Attributes
    ----------
    model : str
        ``"auto"`` (choose per level by a backtest on the data: :mod:`spm_models.review.forecasting`)
        or the name of a registered model (:data:`spm_models.models.registry.REGISTRY`, ``spm
        models``) used at every level. Territory and company forecasts are always sums of agent
        draws (:func:`spm_models.models.aggregate.aggregate_draws`).
    model_params : dict
        Keyword parameters of a named model (not with ``auto``).
    auto_candidates : tuple of str
        Registered models ``auto`` compares, simplest first.
    auto_origins : int
        Backtest origins of the comparison.
    auto_budget_seconds : float
        Time the comparison may take; a candidate that would not finish in it is left out.
    n_draws : int
        Predictive draws per agent and week.
    seed : int
        Random seed of the model.
    currency : str
        Label of money amounts (bookings counted in deals are labelled "deals" instead, see
        :func:`spm_models.present.format.bookings_label`).
    commission : CommissionPlan or None
        One commission plan for everyone; ``None`` (the default): none configured.
    plans : PlanBook or None
        The incentive plan book (``plan_file`` in the TOML file): statements, the plan's cost
        and contests in the reports. At most one of ``commission`` and ``plans``; with neither
        the reports have no commission or statement section.
    min_peers : int
        Smallest peer group shown (see :mod:`spm_models.insights.scorecard`).
    trend_months, funnel_months, history_months : int
        Months shown in trend charts; months of opportunity cohorts pooled in the funnel;
        months of own history the leading indicators are compared with.
    report_timeout : float
        Seconds one report may run before it is stopped and recorded as failed.
    recalibrate : bool
        Adjust each agent's P(quota) by how the model's P(quota) turned out in past quarters
        (:mod:`spm_models.review.recalibration`).
    recalibration_draws : int
        Predictive draws per agent at each backtest origin of the recalibration.
    recalibration_min_rows : int
        Fewest past agent-quarters (with both hits and misses) to learn the adjustment from.
    recalibration_quarters : int
        Most recent ended quarters the adjustment is learned from (bounds the refits).
    fiscal_year_start : int or str, optional
        Month the fiscal year starts in, for this review only; default the one stored with
        the data (the mapping's or the project's, :mod:`spm_models.config`).
    coaching : CoachingSettings
        Thresholds of the coaching points and the deal lists (stuck deals, deals at risk,
        rows listed): :class:`spm_models.insights.settings.CoachingSettings`.
    kernels : {"auto", "fork", "plain"}
        How report kernels start: forked from a kernel server that has imported everything
        (``"fork"``, Linux only), one new process each (``"plain"``), or fork where possible
        and plain elsewhere (``"auto"``, see :mod:`spm_models.review.kernels.mode`). It changes
        how fast reports run, not what they show, so it is left out of :meth:`to_dict` and
        :meth:`key`: changing it refits nothing and re-runs no report.
    fit_partitions : int
        Fit :class:`~spm_models.models.hierarchical.model.HierarchicalBayes` (named, or picked
        by ``auto``) in this many parts, each a group of whole territories of about the same
        number of agents, combined draw by draw (:mod:`spm_models.review.partitions`); on a
        cluster the parts are Dask tasks. 1 (default): one joint fit. It changes the forecast
        (the parts share no company-wide parameters), so it is part of :meth:`key` when not 1.
    cluster : str, optional
        Run the reports on a Dask cluster: ``"local"`` (a LocalCluster on this machine) or a
        scheduler address such as ``"tcp://scheduler:8786"`` (:mod:`spm_models.review.cluster`,
        docs/scale.md). Default: none, the reports run on this machine. Like ``kernels`` it
        changes where reports run, not what they show, so it is not part of :meth:`key`.
    """

    model: str = AUTO
    model_params: Mapping[str, Any] = field(default_factory=dict)
    auto_candidates: tuple[str, ...] = AUTO_CANDIDATES
    auto_origins: int = 4
    auto_budget_seconds: float = 30.0
    n_draws: int = 1000
    seed: int = 0
    currency: str = "USD"
    commission: CommissionPlan | None = None
    plans: PlanBook | None = None
    min_peers: int = 5
    trend_months: int = 12
    funnel_months: int = 12
    history_months: int = 12
    report_timeout: float = 300.0
    recalibrate: bool = True
    recalibration_draws: int = 300
    recalibration_min_rows: int = 200
    recalibration_quarters: int = 12
    fiscal_year_start: int | str | None = None
    coaching: CoachingSettings = field(default_factory=CoachingSettings)
    kernels: str = "auto"
    fit_partitions: int = 1
    cluster: str | None = None

    def __post_init__(self) -> None:
        problems = []
        for name in (
            "n_draws",
            "min_peers",
            "trend_months",
            "funnel_months",
            "history_months",
            "recalibration_draws",
            "recalibration_min_rows",
            "recalibration_quarters",
            "auto_origins",
            "fit_partitions",
        ):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                problems.append(f"{name} must be a positive whole number, got {v!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            problems.append(f"seed must be a non-negative whole number, got {self.seed!r}")
        if not isinstance(self.recalibrate, bool):
            problems.append(f"recalibrate must be true or false, got {self.recalibrate!r}")
        if not isinstance(self.currency, str) or not self.currency.strip():
            problems.append("currency must be a non-empty label such as 'USD'")
        if (
            not isinstance(self.report_timeout, (int, float))
            or isinstance(self.report_timeout, bool)
            or self.report_timeout <= 0
        ):
            problems.append(f"report_timeout must be a positive number of seconds, got {self.report_timeout!r}")
        if self.fiscal_year_start is not None:
            try:
                Calendar(self.fiscal_year_start)
            except ConfigError as exc:
                problems.append(str(exc))
        if self.commission is not None and self.plans is not None:
            problems.append("give either plan_file (a plan book) or [commission], not both")
        if self.plans is not None and not isinstance(self.plans, PlanBook):
            problems.append(f"plans must be a plan book (plan_file = ...), got {type(self.plans).__name__}")
        if not isinstance(self.coaching, CoachingSettings):
            problems.append(f"coaching must be a table of thresholds (CoachingSettings), got {self.coaching!r}")
        if self.kernels not in KERNEL_MODES:
            problems.append(f"kernels must be one of {', '.join(repr(m) for m in KERNEL_MODES)}, got {self.kernels!r}")
        try:
            object.__setattr__(self, "cluster", check_cluster(self.cluster))
        except ConfigError as exc:
            problems.append(str(exc))
        if problems:
            raise ConfigError("invalid review settings: " + "; ".join(problems))
        if not isinstance(self.model_params, Mapping):
            raise ConfigError(f"model_params must be a table of the model's parameters, got {self.model_params!r}")
        if self.model == AUTO:
            if self.model_params:
                raise ConfigError(
                    'model_params set the parameters of one named model; with model = "auto" the review '
                    "chooses the model itself. Name a model (spm models lists them) or remove model_params."
                )
        else:
            check_model_params(self.model, self.model_params)
        object.__setattr__(self, "auto_candidates", tuple(self.auto_candidates))
        for name in self.auto_candidates:
            model_class(name)
        if not self.auto_candidates:
            raise ConfigError("auto_candidates must name at least one model")
        b = self.auto_budget_seconds
        if isinstance(b, bool) or not isinstance(b, (int, float)) or b <= 0:
            raise ConfigError(f"auto_budget_seconds must be a positive number of seconds, got {b!r}")

    @property
    def plan_book(self) -> PlanBook | None:
        """The incentive plans the review pays under: ``plans``, or ``commission`` as a book of one
        plan, or None."""
        if self.plans is not None:
            return self.plans
        return PlanBook.from_commission(self.commission) if self.commission is not None else None

    def calendar_for(self, dataset: Dataset) -> Calendar:
        """The review's calendar: ``fiscal_year_start`` when set, else the dataset's."""
        if self.fiscal_year_start is None:
            return dataset.fiscal_calendar
        return Calendar(self.fiscal_year_start, dataset.fiscal_calendar.fiscal_year_label)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able settings (recorded in the provenance of every report)."""
        d = asdict(self)
        d["model_params"] = dict(self.model_params)
        c = self.commission
        d["commission"] = None
        if c is not None:
            tiers = [[t.from_attainment, t.rate] for t in c.tiers]
            d["commission"] = {"tiers": tiers, "cap_attainment": c.cap_attainment, "no_quota_rate": c.no_quota_rate}
            d["commission"]["name"] = c.name
        d["plans"] = plan_book_to_mapping(self.plans) if self.plans is not None else None
        del d["kernels"], d["cluster"]  # how and where reports run, not what they show
        if d["fit_partitions"] == 1:  # one joint fit, as before the setting: earlier runs keep their identity
            del d["fit_partitions"]
        return json.loads(json.dumps(d, default=str))

    def key(self) -> str:
        """SHA-256 of :meth:`to_dict`, part of the identity of a run."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()


def load_config(path: str | Path | None = None, **overrides: Any) -> ReviewConfig:
    """Settings from a TOML file (see the module docstring), then ``overrides``.

    Raises
    ------
    ConfigError
        The file is missing or unreadable, or a setting is unknown or invalid.
    """
    values: dict[str, Any] = {}
    if path is not None:
        values = read_toml(Path(path), what="review settings file")
    values.update({k: v for k, v in overrides.items() if v is not None})
    if "plan_file" in values:
        if "plans" in values:
            raise ConfigError("give either plan_file or plans, not both")
        plan_file = Path(values.pop("plan_file"))
        if not plan_file.is_absolute() and path is not None and "plan_file" not in overrides:
            plan_file = Path(path).parent / plan_file
        values["plans"] = load_plan_book(plan_file)
    elif isinstance(values.get("plans"), Mapping):
        values["plans"] = plan_book_from_mapping(values["plans"], source=f"{path or 'settings'} [plans]")
    known = {f.name for f in fields(ReviewConfig)} | {"plan_file"}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown review setting(s) {', '.join(unknown)}; known settings: {', '.join(sorted(known))}")
    if "commission" in values and not isinstance(values["commission"], CommissionPlan):
        values["commission"] = plan_from_mapping(values["commission"])
    if "coaching" in values and not isinstance(values["coaching"], CoachingSettings):
        if not isinstance(values["coaching"], Mapping):
            raise ConfigError(f"[coaching] must be a table of thresholds, got {values['coaching']!r}")
        values["coaching"] = coaching_settings_from_mapping(values["coaching"])
    return ReviewConfig(**values)
