"""One exception hierarchy for the workbench.

Every error a user can cause derives from :class:`SpmError` and carries a message a
sales-operations person can act on. Data problems are collected first and raised once
(:class:`DataValidationError` lists every :class:`Problem`), so a user fixes a file in
one pass instead of one error per run.
"""

from __future__ import annotations

import errno
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "SpmError",
    "DataError",
    "Problem",
    "DataValidationError",
    "ConfigError",
    "ModelError",
    "NotFittedError",
    "ReportError",
    "ReviewBusyError",
    "DiskFullError",
    "Interrupted",
    "is_disk_full",
]


class SpmError(Exception):
    """Base class of every error the workbench raises on purpose."""

    exit_code = 1


class DataError(SpmError):
    """Input data cannot be read or does not meet the data contract."""

    exit_code = 2


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one place in one input file.

    Attributes
    ----------
    file : str
        File name (or table name for in-memory data).
    row : int or None
        Spreadsheet row number: the header is row 1, the first data row is row 2.
        ``None`` for problems of the whole file or column.
    column : str or None
        Column name as it appears in the file, ``None`` for whole-file problems.
    value : str or None
        The offending value, shortened for display.
    rule : str
        What was expected, in plain words.
    count : int
        How many problems this entry stands for: 1 for one cell or row; the number of rows
        it summarises for the line that closes a long list of rows breaking one rule.
    """

    file: str
    row: int | None
    column: str | None
    value: str | None
    rule: str
    count: int = 1

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            where += f", row {self.row}"
        if self.column is not None:
            where += f", column '{self.column}'"
        shown = ""
        if self.value is not None:
            v = self.value if len(self.value) <= 60 else self.value[:57] + "..."
            shown = f" (found {v!r})"
        return f"{where}: {self.rule}{shown}"


class DataValidationError(DataError):
    """Raised once with every problem found in a batch of inputs.

    Attributes
    ----------
    problems : list of Problem
        The rows listed, and for a rule broken by many rows one closing line that counts the
        rest (its :attr:`Problem.count`).
    total : int
        The exact number of problems: the sum of the entries' counts.

    The message lists the first ``max_shown`` entries, then every closing count line that
    did not fit, so the exact count of every rule is always shown.
    """

    def __init__(self, problems: Iterable[Problem], *, max_shown: int = 50):
        self.problems: list[Problem] = list(problems)
        self.total = sum(p.count for p in self.problems)
        shown = self.problems[:max_shown]
        rest = self.problems[max_shown:]
        lines = [str(p) for p in shown]
        summaries = [p for p in rest if p.count > 1]
        lines += [str(p) for p in summaries]
        hidden = sum(p.count for p in rest) - sum(p.count for p in summaries)
        if hidden:
            lines.append(f"... and {hidden:,} more problem{'s' if hidden != 1 else ''} not listed here")
        n = self.total
        head = f"{n:,} problem{'s' if n != 1 else ''} found in the input; nothing was stored:"
        super().__init__(head + "\n  " + "\n  ".join(lines))


class ConfigError(SpmError):
    """A configuration, mapping file or command-line option is wrong."""

    exit_code = 2


class ModelError(SpmError):
    """A model could not be fitted or used."""


class NotFittedError(ModelError):
    """``predict`` or ``save`` was called before ``fit``."""


class ReportError(SpmError):
    """A report could not be rendered."""


class ReviewBusyError(ReportError):
    """Another review of the same month holds its lock; this run changed nothing."""


class DiskFullError(SpmError):
    """The disk (or quota) ran out while writing; what was published before is intact."""


class Interrupted(KeyboardInterrupt):
    """The run was stopped by a signal (Ctrl-C is SIGINT, a scheduler's stop is SIGTERM).

    A :class:`KeyboardInterrupt`, so it unwinds like Ctrl-C; ``signum`` gives the exit code
    ``128 + signum`` that shells expect.
    """

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


#: Errors that mean "no space left": the device is full, or the user's quota is.
_DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_DISK_FULL_TEXT = ("no space left on device", "disk quota exceeded")


def is_disk_full(exc: BaseException | None) -> bool:
    """Whether ``exc``, or an exception it was raised from, means the disk is full.

    Looks at ``errno`` (``ENOSPC``, ``EDQUOT``) and, for libraries that re-raise without it
    (pyarrow, nbformat, zmq), at the message.
    """
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if getattr(exc, "errno", None) in _DISK_FULL_ERRNOS:
            return True
        if any(t in str(exc).lower() for t in _DISK_FULL_TEXT):
            return True
        exc = exc.__cause__ or exc.__context__
    return False
