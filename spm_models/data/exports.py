"""Writing result tables for people and spreadsheets.

Text cells that a spreadsheet would evaluate (``=HYPERLINK(...)``) are neutralised with a
leading apostrophe when written to CSV, so a hostile name in the source never runs as a
formula in whoever opens the export.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from spm_models.data.formulas import is_formula
from spm_models.exceptions import ConfigError

__all__ = ["write_table", "neutralise_formulas"]


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Copy of ``frame`` whose formula cells (:mod:`spm_models.data.formulas`) get a leading ``'``.

    Numbers are left alone; only text columns are touched.
    """
    out = frame.copy()
    for col in out.columns:
        if pd.api.types.is_string_dtype(out[col]) or out[col].dtype == object:
            s = out[col]
            mask = is_formula(s)
            if mask.any():
                out[col] = s.where(~mask, "'" + s.astype(str))
    return out


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write ``frame`` to ``path`` as CSV or Parquet (by extension), atomically.

    Parameters
    ----------
    frame : DataFrame
        The table.
    path : path-like
        Ends in ``.csv`` or ``.parquet``.

    Raises
    ------
    ConfigError
        For any other extension.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in {".csv", ".parquet"}:
        raise ConfigError(f"cannot write {path}: use a file name ending in .csv or .parquet")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    if suffix == ".csv":
        neutralise_formulas(frame).to_csv(tmp, index=False, lineterminator="\n")
    else:
        frame.to_parquet(tmp, index=False)
    tmp.replace(path)
    return path
