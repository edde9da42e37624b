"""Writing result tables for people and spreadsheets.

Text cells that a spreadsheet would evaluate (``=HYPERLINK(...)``) are neutralised with a
leading apostrophe when written to CSV, so a hostile name in the source never runs as a
formula in whoever opens the export.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pandas as pd

from spm_models.data.formulas import is_formula
from spm_models.exceptions import ConfigError, DiskFullError, is_disk_full

__all__ = ["write_table", "neutralise_formulas"]


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Copy of ``frame`` whose formula cells (:mod:`spm_models.data.formulas`) get a leading ``'``.

    Numbers are left alone; only text columns are touched.
    """
    out = frame.copy(deep=False)  # copy-on-write: only the columns replaced below are new
    for col in out.columns:
        s = out[col]
        if isinstance(s.dtype, pd.CategoricalDtype):
            # dictionary-encoded (a KPI frame has millions of rows, a few hundred distinct
            # values): the rule runs on the vocabulary, and the codes are kept
            names = pd.Series(s.cat.categories)
            mask = is_formula(names)
            fixed = names.where(~mask, "'" + names.astype(str))
            if not mask.any():
                continue
            if fixed.is_unique:
                out[col] = s.cat.rename_categories(fixed.tolist())
                continue
            s = s.astype(object)  # "=x" and "'=x" both there: cell by cell, as plain text
        if pd.api.types.is_string_dtype(s) or s.dtype == object:
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
        For any other extension, a folder, or a place that cannot be written.
    DiskFullError
        The disk is full (no partial file is left).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in {".csv", ".parquet"}:
        raise ConfigError(f"cannot write {path}: use a file name ending in .csv or .parquet")
    if path.is_dir():
        raise ConfigError(f"cannot write {path}: it is a folder; give a file name ending in {suffix}")
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".csv":
            neutralise_formulas(frame).to_csv(tmp, index=False, lineterminator="\n")
        else:
            frame.to_parquet(tmp, index=False)
        tmp.replace(path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if is_disk_full(exc):
            raise DiskFullError(f"the disk is full: {path} was not written (nothing was changed)") from exc
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return path
