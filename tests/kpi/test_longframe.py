"""The long frame's columns grow in place, and still grow when something else holds one."""

from __future__ import annotations

import numpy as np

from spm_models.kpi.longframe import grow_columns


def test_columns_grow_in_place_with_zeros_after_the_old_rows():
    cols = {"value": np.array([1.0, 2.0, 3.0]), "kpi": np.array([4, 5, 6], dtype=np.int16)}
    grow_columns(cols, 6)
    np.testing.assert_array_equal(cols["value"], [1.0, 2.0, 3.0, 0.0, 0.0, 0.0])
    assert cols["kpi"].dtype == np.int16 and cols["kpi"].tolist() == [4, 5, 6, 0, 0, 0]


def test_a_column_that_something_else_refers_to_is_copied_instead_of_failing():
    """A debugger or profiler looking at the builder's frames, or a view kept somewhere, makes
    ``ndarray.resize`` refuse (ValueError); the column is then copied, and the view still reads
    the old rows."""
    cols = {"value": np.array([1.0, 2.0, 3.0]), "kpi": np.array([4, 5, 6], dtype=np.int16)}
    held = cols["value"][:2]
    grow_columns(cols, 5)
    np.testing.assert_array_equal(cols["value"], [1.0, 2.0, 3.0, 0.0, 0.0])
    assert cols["kpi"].tolist() == [4, 5, 6, 0, 0]
    np.testing.assert_array_equal(held, [1.0, 2.0])
    cols["value"][0] = 9.0  # the new column is its own array
    assert held[0] == 1.0
