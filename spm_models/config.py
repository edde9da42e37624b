"""Where things live and how the organisation counts time: project paths and project settings.

Paths come from here, never from the caller's working directory. Project settings live in an
optional ``spm.toml`` at the project root::

    fiscal_year_start = "February"   # or 2; January (the calendar year) by default
    fiscal_year_label = "end"        # FY2026 runs Feb 2025 - Jan 2026 ("start": FY2025)
    bookings_measure = "money"       # or "deals": bookings are counted in won deals

A mapping file may declare the export's own fiscal year and bookings measure, which then win
for that ingest, and a review settings file may override the fiscal year for one review. Both
are stored with the warehouse snapshot and are part of its fingerprint.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

from spm_models.calendar import Calendar
from spm_models.exceptions import ConfigError

__all__ = [
    "ProjectPaths",
    "ProjectSettings",
    "default_root",
    "SETTINGS_FILE",
    "BOOKINGS_MEASURES",
    "DEFAULT_MEASURE",
    "check_bookings_measure",
]

#: Name of the project settings file at the project root.
SETTINGS_FILE = "spm.toml"

_PACKAGE_DIR = Path(__file__).resolve().parent

#: How bookings are measured: ``"money"`` (the amounts of won deals, in the currency) or
#: ``"deals"`` (each won deal counts one; for exports without usable amounts).
BOOKINGS_MEASURES: tuple[str, ...] = ("money", "deals")
#: The measure of a dataset that does not say.
DEFAULT_MEASURE = "money"


def check_bookings_measure(value: object, *, where: str = "bookings_measure") -> str:
    """``value`` as one of :data:`BOOKINGS_MEASURES`, or ConfigError naming ``where``."""
    if isinstance(value, str) and value.strip().lower() in BOOKINGS_MEASURES:
        return value.strip().lower()
    raise ConfigError(
        f"{where} must be one of {', '.join(repr(m) for m in BOOKINGS_MEASURES)} "
        f"(money: deal amounts; deals: each won deal counts one), got {value!r}"
    )


def default_root() -> Path:
    """The project root: ``$SPM_HOME`` if set, else the source checkout holding this package.

    Falls back to ``~/spm-workbench`` for a non-editable install outside a checkout.
    """
    env = os.environ.get("SPM_HOME")
    if env:
        return Path(env).expanduser().resolve()
    checkout = _PACKAGE_DIR.parent
    if (checkout / "pyproject.toml").is_file():
        return checkout
    return Path.home() / "spm-workbench"


@dataclass(frozen=True)
class ProjectPaths:
    """The files and folders of one workbench project.

    Parameters
    ----------
    root : Path
        Project root; everything else is derived from it unless overridden.
    """

    root: Path

    @classmethod
    def from_root(cls, root: str | os.PathLike | None = None) -> ProjectPaths:
        return cls(Path(root).expanduser().resolve() if root is not None else default_root())

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def warehouse(self) -> Path:
        """Default DuckDB warehouse file."""
        return self.data / "warehouse.duckdb"

    @property
    def demo_data(self) -> Path:
        """Where ``spm demo-data`` writes the synthetic organisation."""
        return self.data / "demo"

    @property
    def examples(self) -> Path:
        return self.data / "examples"

    @property
    def maven(self) -> Path:
        return self.examples / "maven_crm"

    @property
    def kpis(self) -> Path:
        return self.data / "kpis"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def settings_file(self) -> Path:
        """The optional project settings file, ``<root>/spm.toml``."""
        return self.root / SETTINGS_FILE

    def settings(self) -> ProjectSettings:
        """The project settings (:class:`ProjectSettings`; defaults when there is no file)."""
        return ProjectSettings.load(self.settings_file)


@dataclass(frozen=True)
class ProjectSettings:
    """Settings of one workbench project (``spm.toml``).

    Attributes
    ----------
    fiscal_year_start : int or str
        Month the fiscal year starts in (1-12 or a month name); 1 is the calendar year.
    fiscal_year_label : {"end", "start"}
        Whether FY labels name the calendar year the fiscal year ends or starts in.
    bookings_measure : {"money", "deals"}
        How bookings are measured (:data:`BOOKINGS_MEASURES`), unless the export's mapping
        file says.
    """

    fiscal_year_start: int | str = 1
    fiscal_year_label: str = "end"
    bookings_measure: str = DEFAULT_MEASURE

    def __post_init__(self) -> None:
        object.__setattr__(self, "fiscal_year_start", self.calendar.fiscal_year_start)
        object.__setattr__(self, "bookings_measure", check_bookings_measure(self.bookings_measure))

    @property
    def calendar(self) -> Calendar:
        """The project's :class:`~spm_models.calendar.Calendar`."""
        return Calendar(self.fiscal_year_start, self.fiscal_year_label)

    @classmethod
    def load(cls, path: str | os.PathLike) -> ProjectSettings:
        """Settings from a TOML file; the defaults when it does not exist.

        Raises
        ------
        ConfigError
            The file is not readable TOML, or has an unknown or invalid setting.
        """
        p = Path(path)
        if not p.exists():
            return cls()
        try:
            values = tomllib.loads(p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read the project settings {p}: {exc}") from None
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(
                f"unknown project setting(s) {', '.join(unknown)} in {p}; known settings: {', '.join(known)}"
            )
        try:
            return cls(**values)
        except ConfigError as exc:
            raise ConfigError(f"{p}: {exc}") from None
