"""Where things live and how the organisation counts time: project paths and project settings.

Paths come from here, never from the caller's working directory. Project settings live in an
optional ``spm.toml`` at the project root::

    fiscal_year_start = "February"   # or 2; January (the calendar year) by default
    fiscal_year_label = "end"        # FY2026 runs Feb 2025 - Jan 2026 ("start": FY2025)
    bookings_measure = "money"       # or "deals": bookings are counted in won deals
    earliest_date = "1980-01-01"     # dates in the data outside this window are refused
    latest_date = "2100-12-31"

A mapping file may declare the export's own fiscal year and bookings measure, which then win
for that ingest, and a review settings file may override the fiscal year for one review. Both
are stored with the warehouse snapshot and are part of its fingerprint.
"""

from __future__ import annotations

import errno
import os
import stat
import tomllib
from dataclasses import dataclass, fields
from datetime import date
from pathlib import Path

from spm_models.calendar import Calendar, to_day
from spm_models.exceptions import ConfigError

__all__ = [
    "ProjectPaths",
    "ProjectSettings",
    "default_root",
    "SETTINGS_FILE",
    "read_regular_file",
    "file_kind",
    "read_toml",
    "DEFAULT_EARLIEST_DATE",
    "DEFAULT_LATEST_DATE",
    "BOOKINGS_MEASURES",
    "DEFAULT_MEASURE",
    "check_bookings_measure",
]

#: Name of the project settings file at the project root.
SETTINGS_FILE = "spm.toml"

_PACKAGE_DIR = Path(__file__).resolve().parent
#: The default window of plausible dates in the data (``earliest_date``, ``latest_date``).
DEFAULT_EARLIEST_DATE = "1980-01-01"
DEFAULT_LATEST_DATE = "2100-12-31"
#: Nesting a settings file may have; deeper is refused before the parser recurses that far.
_MAX_TOML_DEPTH = 100


def file_kind(mode: int) -> str | None:
    """What a file that is not a regular file is, in words (``None`` for a regular file)."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def read_regular_file(path: str | os.PathLike) -> bytes:
    """The bytes of a regular file, opened without blocking and checked on the open descriptor.

    A named pipe never hangs the reader, and a file swapped for something else between a
    check and the read is still refused.

    Raises
    ------
    OSError
        The file cannot be opened or read, or it is not a regular file (then with
        ``errno.EINVAL`` and a ``strerror`` saying what it is: "a folder", "a named pipe (FIFO)").
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        kind = file_kind(os.fstat(fd).st_mode)
        if kind is not None:
            raise OSError(errno.EINVAL, f"it is {kind}, not a file", str(path))
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _toml_depth(text: str) -> int:
    """Deepest nesting of brackets and braces outside strings and comments (an upper bound)."""
    depth = deepest = 0
    quote = None
    comment = False
    for ch in text:
        if comment:
            comment = ch != "\n"
        elif quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            comment = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def read_toml(path: str | os.PathLike, *, what: str) -> dict:
    """A TOML settings file as a dict; ConfigError naming ``what`` and the file otherwise.

    Refuses a file that is missing, not a regular file, not UTF-8, not TOML, or nested more
    than 100 levels deep (Python's TOML parser would recurse until it crashed).

    Raises
    ------
    ConfigError
    """
    p = Path(path)
    try:
        raw = read_regular_file(p)
    except FileNotFoundError:
        raise ConfigError(f"{what} {p} not found") from None
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} {p}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"the {what} {p} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    if _toml_depth(text) > _MAX_TOML_DEPTH:
        raise ConfigError(f"the {what} {p} nests tables or lists more than {_MAX_TOML_DEPTH} levels deep")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"the {what} {p} is not valid TOML: {exc}") from None
    except RecursionError:  # deep nesting the count above did not see
        raise ConfigError(f"the {what} {p} nests tables or lists too deeply") from None


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
    earliest_date, latest_date : str
        The window of plausible dates in the data (``YYYY-MM-DD``, inclusive): a deal,
        activity, target or indicator date outside it is refused at ingest
        (:mod:`spm_models.data.plausibility`). Defaults 1980-01-01 and 2100-12-31.
    """

    fiscal_year_start: int | str = 1
    fiscal_year_label: str = "end"
    bookings_measure: str = DEFAULT_MEASURE
    earliest_date: str = DEFAULT_EARLIEST_DATE
    latest_date: str = DEFAULT_LATEST_DATE

    def __post_init__(self) -> None:
        object.__setattr__(self, "fiscal_year_start", self.calendar.fiscal_year_start)
        object.__setattr__(self, "bookings_measure", check_bookings_measure(self.bookings_measure))
        for name in ("earliest_date", "latest_date"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (str, date)):
                raise ConfigError(f'{name} must be a date like "1980-01-01", got {value!r}')
        earliest, latest = self.date_window
        if earliest > latest:
            raise ConfigError(f"earliest_date {self.earliest_date} is after latest_date {self.latest_date}")

    @property
    def date_window(self) -> tuple:
        """``(earliest, latest)`` plausible dates as midnight timestamps."""
        return (to_day(self.earliest_date, "earliest_date"), to_day(self.latest_date, "latest_date"))

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
        if not os.path.lexists(p):
            return cls()
        try:
            values = read_toml(p, what="project settings")
        except ConfigError as exc:
            raise ConfigError(f"cannot read the project settings: {exc}") from None
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
