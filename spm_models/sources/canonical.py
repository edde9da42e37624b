"""The canonical CSV layout: one ``<table>.csv`` per canonical table, canonical column names.

``spm demo-data`` writes it; ``spm ingest FOLDER`` reads it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..dataset import Dataset
from ..schemas import TABLE_ORDER, TABLES

__all__ = ["write_canonical_folder"]


def write_canonical_folder(dataset: Dataset, folder: str | Path) -> list[Path]:
    """Write every table of ``dataset`` as ``folder/<table>.csv`` (ISO dates, UTF-8).

    Returns the paths written, in load order. Files are written to a temporary name and
    renamed, so a crash never leaves a half-written table behind.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in TABLE_ORDER:
        if name not in dataset.tables:
            continue
        spec = TABLES[name]
        frame = dataset.tables[name].loc[:, spec.column_names].copy()
        for col in spec.columns:
            if col.kind == "date":
                frame[col.name] = pd.to_datetime(frame[col.name]).dt.strftime("%Y-%m-%d")
        path = folder / f"{name}.csv"
        tmp = path.with_suffix(".csv.tmp")
        frame.to_csv(tmp, index=False, encoding="utf-8", lineterminator="\n")
        tmp.replace(path)
        written.append(path)
    return written
