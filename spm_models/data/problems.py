"""Collecting problems at scale: every row of a rule counted exactly, the first ones listed.

A rule broken by 8,000 rows becomes the first :data:`MAX_PER_RULE` rows (file, row, column,
value) and one closing line that says how many rows break it in all, whose
:attr:`~spm_models.exceptions.Problem.count` is the number of rows it stands for. So
:attr:`DataValidationError.total <spm_models.exceptions.DataValidationError>` is the exact
number of problems, and its message shows the exact count of every rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from spm_models.data.dataset import SourceRef
from spm_models.exceptions import Problem

__all__ = ["MAX_PER_RULE", "ProblemCollector", "rule_rows", "show_value", "sheet_rows", "row_list"]

#: Rows of one rule listed one by one; the rest are counted in one closing line.
MAX_PER_RULE = 20


def show_value(value) -> str | None:
    """A cell as shown in a problem (dates as ISO days; missing as None)."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d")
    return str(value)


def sheet_rows(ref: SourceRef, n_rows: int, positions: np.ndarray) -> np.ndarray:
    """Spreadsheet row numbers of frame positions (``ref.rows``, else position + 2)."""
    positions = np.asarray(positions, dtype=np.int64)
    if ref.rows is None or len(ref.rows) != n_rows:
        return positions + 2
    return np.asarray(ref.rows, dtype=np.int64)[positions]


def row_list(rows: Sequence[int] | np.ndarray, *, limit: int = 10) -> str:
    """``"rows 5, 9, 12, ..."``: the first ``limit`` row numbers, ``...`` when there are more."""
    rows = list(rows)
    shown = ", ".join(str(int(r)) for r in rows[:limit])
    word = "row" if len(rows) == 1 else "rows"
    return f"{word} {shown}{' ...' if len(rows) > limit else ''}"


def rule_rows(
    file: str,
    rows: Iterable,
    column: str | None,
    values: Iterable | None,
    rule: str | Sequence[str],
    *,
    cap: int = MAX_PER_RULE,
    summary: str | None = None,
) -> list[Problem]:
    """The problems of one rule: the first ``cap`` rows, then one line counting the rest.

    ``rule`` is one text or one text per row (then ``summary`` says the rule in general).
    The closing line, when there is one, reads ``"8,000 rows in all break this rule (the
    first 20 are listed above): ..."`` and counts the rows not listed.
    """
    rows = list(rows)
    n = len(rows)
    if n == 0:
        return []
    values = list(values) if values is not None else [None] * n
    rules = [rule] * n if isinstance(rule, str) else list(rule)
    if n == cap + 1:  # listing one more row is shorter than a line counting it
        cap += 1
    items = [
        Problem(file, int(r) if r is not None else None, column, show_value(v), ru)
        for r, v, ru in zip(rows[:cap], values[:cap], rules[:cap])
    ]
    if n > cap:
        what = summary or (rule if isinstance(rule, str) else rules[0])
        items.append(
            Problem(
                file,
                None,
                column,
                None,
                f"{n:,} rows in all break this rule (the first {cap} are listed above): {what}",
                count=n - cap,
            )
        )
    return items


class ProblemCollector:
    """Problems and warnings gathered across tables; each rule is listed by :func:`rule_rows`."""

    def __init__(self) -> None:
        self._problems: list[tuple[int, int, Problem]] = []
        self.warnings: list[Problem] = []

    def add(
        self,
        order: int,
        file: str,
        rows,
        column,
        values,
        rule,
        *,
        cap: int = MAX_PER_RULE,
        summary: str | None = None,
        warn: bool = False,
    ) -> None:
        """Record one rule broken by ``rows`` (of the table loaded ``order``-th)."""
        items = rule_rows(file, rows, column, values, rule, cap=cap, summary=summary)
        if warn:
            self.warnings.extend(items)
            return
        # the closing count line sorts after the rows it counts
        keys = [(p.row or 0) if p.count == 1 else np.iinfo(np.int64).max for p in items]
        self._problems.extend(zip([order] * len(items), keys, items))

    def sorted(self) -> list[Problem]:
        """Every problem, by table load order, then row."""
        return [p for _, _, p in sorted(self._problems, key=lambda t: (t[0], t[1]))]
