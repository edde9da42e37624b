"""The one spreadsheet-formula rule: which text cells a spreadsheet would evaluate.

A text cell is a formula when, after leading white space (spaces, tabs, carriage returns), it

* starts with ``=``; or
* starts with ``+``, ``-`` or ``@`` and what follows is not a plain number: digits, spaces,
  ``.`` and ``,`` only (``-5``, ``+44 20 7946 0000`` and ``-1,234.50`` are numbers; ``+A1``,
  ``-2+3+cmd|' /C calc'!A0``, ``@1+`` and ``@SUM(A1)`` are formulas).

Ingest uses it to refuse such cells (or store them as plain text when asked,
:func:`spm_models.data.validation.validate`); every CSV the workbench writes puts a ``'`` in
front of them (:func:`spm_models.data.exports.neutralise_formulas`), so a hostile name in a
CRM export never runs in the spreadsheet of whoever opens a report's table.
"""

from __future__ import annotations

import pandas as pd

__all__ = ["FORMULA_PATTERN", "is_formula"]

#: Matched after stripping leading white space (module docstring).
FORMULA_PATTERN = r"(?:=|[+\-@](?![0-9 .,]*$))"


def is_formula(text: pd.Series) -> pd.Series:
    """Boolean mask of the cells a spreadsheet would evaluate as a formula (module docstring).

    Cells that are not text (numbers, missing values) are never formulas.
    """
    s = text if isinstance(text, pd.Series) else pd.Series(text)
    is_text = s.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)
    out = pd.Series(False, index=s.index)
    if is_text.any():
        t = s[is_text].astype("str")
        out[is_text] = t.str.lstrip(" \t\r\n").str.match(FORMULA_PATTERN).fillna(False).astype(bool).to_numpy()
    return out
