"""The long KPI frame, written KPI by KPI straight into its final columns.

A 5,000-agent organisation at weekly grain has about 19 million KPI rows (38 million at
10,000 agents). The frame is therefore never assembled from pieces: each column is one numpy
array in its final dtype that grows by exactly the rows of the KPI just evaluated, and the
KPI's dense arrays are let go before the next one is computed. Growing an array in place
(``ndarray.resize``, a ``realloc`` that moves pages rather than copying them) means the
columns are never held twice, so the peak is the frame itself plus one KPI's dense arrays.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from spm_models.calendar import PERIOD_UNIT
from spm_models.kpi.grid import LEVELS, Grid

__all__ = ["LongFrame", "categorical", "grow_columns"]


def _code_dtype(n: int) -> type[np.signedinteger]:
    return np.int8 if n < 2**7 else np.int16 if n < 2**15 else np.int32


def categorical(vocabulary: Iterable, codes: np.ndarray) -> pd.Categorical:
    """``vocabulary[codes]`` as a dictionary-encoded (categorical) column.

    A text column of the long frame repeats a handful of values millions of times (``grain``
    holds one); stored as small integer codes into its vocabulary it costs one or two bytes a
    row instead of a string each. The categories are the vocabulary sorted, so sorting the
    column sorts it alphabetically, as it would a ``str`` column.
    """
    # sorted and without repeats (an agent id may also be a territory id)
    categories, inverse = np.unique(np.asarray([str(v) for v in vocabulary], dtype=object), return_inverse=True)
    small = _code_dtype(len(categories))
    codes = inverse.reshape(-1).astype(small)[codes] if len(codes) else np.asarray(codes, dtype=small)
    return pd.Categorical.from_codes(codes, categories=pd.Index(categories, dtype="str"), validate=False)


def grow_columns(columns: dict[str, np.ndarray], n: int) -> None:
    """Lengthen every array of ``columns`` to ``n`` rows, zeros after the old ones.

    In place where it can be (``ndarray.resize``: ``realloc`` moves the pages of a large array
    instead of copying them, so a column is never held twice). numpy refuses that while
    anything else refers to the array: a debugger or profiler inspecting the builder's frames,
    or a view kept somewhere. Such a column is copied into a new array instead, which costs
    the copy's memory once but never fails.
    """
    for name, col in columns.items():
        try:
            col.resize(n)
        except ValueError:  # referenced elsewhere: resizing in place could leave that reference dangling
            grown = np.zeros(n, dtype=col.dtype)
            grown[: len(col)] = col
            columns[name] = grown


class LongFrame:
    """The rows of evaluated KPIs, in the columns of the long frame (see :mod:`spm_models.kpi`).

    Parameters
    ----------
    grid : Grid
        The engine's grid: entities, periods and who was employed when.
    levels : sequence of str
        Levels whose rows are kept, in :data:`~spm_models.kpi.grid.LEVELS` order.
    grain : str
        Value of the ``grain`` column.
    """

    def __init__(self, grid: Grid, levels: Sequence[str], grain: str):
        self.grid, self.levels, self.grain = grid, tuple(levels), grain
        sizes = [grid.size(lv) for lv in LEVELS]
        self._offset = dict(zip(LEVELS, np.cumsum([0] + sizes)[:-1].tolist()))
        entities = np.concatenate([grid.entity_ids(lv) for lv in LEVELS])
        # the entity column's categories are fixed by the grid: its final codes are written directly
        categories, inverse = np.unique(np.asarray([str(v) for v in entities], dtype=object), return_inverse=True)
        self._entity_categories = pd.Index(categories, dtype="str")
        self._entity_code = inverse.reshape(-1).astype(_code_dtype(len(categories)))
        self._periods = grid.period_values()
        self._kpis: list[str] = []
        self._segments: dict[str, int] = {"": 0}
        self.n = 0
        self._cols = {
            "level": np.empty(0, dtype=np.int8),
            "entity_id": np.empty(0, dtype=self._entity_code.dtype),
            "period": np.empty(0, dtype=f"datetime64[{PERIOD_UNIT}]"),
            "kpi": np.empty(0, dtype=np.int16),
            "segment": np.empty(0, dtype=np.int16),
            "value": np.empty(0, dtype=float),
        }

    def add(self, r) -> None:
        """Append the rows of one evaluated KPI (a :class:`~spm_models.kpi.engine.KpiValues`).

        Agent rows exist where the agent was employed or the KPI's inputs are non-zero
        (``r.active``); territory and company rows for every period. Within the KPI, rows are
        ordered by level, entity, period and segment.
        """
        grid = self.grid
        if r.name not in self._kpis:
            self._kpis.append(r.name)
        kpi = self._kpis.index(r.name)
        seg_codes = np.array([self._segments.setdefault(s, len(self._segments)) for s in r.segments] or [0])
        n_seg = len(r.segments) or 1
        n_periods = grid.n_periods
        for level in self.levels:
            arr = np.asarray(r.values[level], dtype=float)
            if level == "agent":
                cells = np.flatnonzero(grid.employed | r.active)  # agent * periods + period
            else:
                cells = np.arange(arr.shape[0] * n_periods)
            at, m = self.n, len(cells) * n_seg
            self._grow(at + m)
            c, rows = self._cols, slice(at, at + m)
            c["level"][rows] = LEVELS.index(level)
            c["kpi"][rows] = kpi
            entity = self._entity_code[cells // n_periods + self._offset[level]]
            period = self._periods[cells % n_periods]
            # written through (cells, segments) views of the columns: no repeated temporaries
            np.take(arr.reshape(-1, n_seg), cells, axis=0, out=c["value"][rows].reshape(-1, n_seg), mode="clip")
            c["entity_id"][rows].reshape(-1, n_seg)[:] = entity[:, None]
            c["period"][rows].reshape(-1, n_seg)[:] = period[:, None]
            c["segment"][rows].reshape(-1, n_seg)[:] = seg_codes[None, :]
            self.n = at + m

    def _grow(self, n: int) -> None:
        grow_columns(self._cols, n)

    def frame(self) -> pd.DataFrame:
        """The long frame: ``level, entity_id, grain, period, kpi, segment, value``.

        The builder's columns become the frame's (no copy); do not add to it afterwards.
        """
        c, n = self._cols, self.n
        return pd.DataFrame(
            {
                "level": categorical(LEVELS, c.pop("level")),
                "entity_id": pd.Categorical.from_codes(
                    c.pop("entity_id"), categories=self._entity_categories, validate=False
                ),
                "grain": categorical([self.grain], np.zeros(n, dtype=np.int8)),
                "period": c.pop("period"),
                "kpi": categorical(self._kpis, c.pop("kpi")),
                "segment": categorical(list(self._segments), c.pop("segment")),
                "value": c.pop("value"),
            },
            copy=False,
        )
