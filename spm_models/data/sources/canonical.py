"""The canonical CSV layout: one ``<table>.csv`` per canonical table, canonical column names.

``spm demo-data`` writes it; ``spm ingest FOLDER`` (or ``spm ingest a.csv b.csv ...``) reads it.
Reading only checks that each file is readable text with the canonical header; every value
rule is checked by :func:`spm_models.data.validation.validate` at ingest.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

from spm_models.data.csvio import read_text_table
from spm_models.data.dataset import Dataset, SourceRef, significant_columns
from spm_models.data.files import confine
from spm_models.data.schemas import TABLE_ORDER, TABLES
from spm_models.exceptions import DataValidationError, Problem

__all__ = ["write_canonical_folder", "read_canonical_folder", "read_canonical_files"]


def write_canonical_folder(dataset: Dataset, folder: str | Path) -> list[Path]:
    """Write every table of ``dataset`` as ``folder/<table>.csv`` (ISO dates, UTF-8).

    Returns the paths written, in load order. Files are written to a temporary name and
    renamed, so a crash never leaves a half-written table behind. Columns added to the contract
    after its first version are written only when they hold something
    (:func:`~spm_models.data.dataset.significant_columns`).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in TABLE_ORDER:
        if name not in dataset.tables:
            continue
        spec = TABLES[name]
        frame = dataset.tables[name]
        frame = frame.loc[:, significant_columns(name, frame)].copy()
        for col in spec.columns:
            if col.kind == "date" and col.name in frame:
                frame[col.name] = pd.to_datetime(frame[col.name]).dt.strftime("%Y-%m-%d")
        path = folder / f"{name}.csv"
        tmp = path.with_suffix(".csv.tmp")
        frame.to_csv(tmp, index=False, encoding="utf-8", lineterminator="\n")
        tmp.replace(path)
        written.append(path)
    return written


def read_canonical_folder(folder: str | Path, *, encoding: str = "utf-8") -> Dataset:
    """Read ``folder/<table>.csv`` for every canonical table present, as text frames.

    Parameters
    ----------
    folder : path-like
        Folder holding one CSV per canonical table (``agents.csv``, ``opportunities.csv``...).
    encoding : str
        Text encoding of the files.

    Returns
    -------
    Dataset
        Text frames (cells ``str`` or ``None``) with the canonical columns, a
        :class:`SourceRef` per table (file name and spreadsheet row of every record), and
        warnings for ignored extra files and columns. Not validated yet.

    Raises
    ------
    DataValidationError
        Once, with the problems of every file: the folder or a required table's file is
        missing, a file is empty, not in ``encoding``, not valid CSV, has ragged rows, or
        lacks canonical columns.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataValidationError([Problem(str(folder), None, None, None, "folder not found")])
    # Any entry named like a table counts, so a folder, a broken link or a pipe called
    # activities.csv is reported, never read as an absent (empty) table.
    files = {name: folder / f"{name}.csv" for name in TABLE_ORDER if os.path.lexists(folder / f"{name}.csv")}
    warnings = [
        Problem(
            p.name,
            None,
            None,
            None,
            "not a canonical table; ignored (canonical files are " + ", ".join(f"{t}.csv" for t in TABLE_ORDER) + ")",
        )
        for p in sorted(folder.iterdir())
        if p.is_file() and p.suffix.lower() == ".csv" and p.stem not in TABLES
    ]
    return _read_tables(
        files, encoding=encoding, source=str(folder), warnings=warnings, where=f" in {folder}", in_folder=folder
    )


def read_canonical_files(paths: Iterable[str | Path], *, encoding: str = "utf-8") -> Dataset:
    """Read canonical CSV files given one by one; each file's name (``agents.csv``) names its table.

    Parameters
    ----------
    paths : iterable of path-like
        The files, in any order.
    encoding : str
        Text encoding of the files.

    Returns
    -------
    Dataset
        As :func:`read_canonical_folder`.

    Raises
    ------
    DataValidationError
        Once, with every problem: a file named after no canonical table, two files for one
        table, a missing required table, and every problem of reading each file.
    """
    problems: list[Problem] = []
    files: dict[str, Path] = {}
    for p in map(Path, paths):
        name = p.stem.lower()
        if name not in TABLES:
            problems.append(
                Problem(
                    p.name,
                    None,
                    None,
                    None,
                    "file name does not name a canonical table; name it one of "
                    + ", ".join(f"{t}.csv" for t in TABLE_ORDER),
                )
            )
        elif name in files:
            problems.append(
                Problem(p.name, None, None, None, f"two files for the {name} table ({files[name]} and {p}); give one")
            )
        else:
            files[name] = p
    source = ", ".join(str(p) for p in files.values())
    return _read_tables(files, encoding=encoding, source=source, problems=problems)


def _read_tables(
    files: Mapping[str, Path],
    *,
    encoding: str,
    source: str,
    warnings: list[Problem] | None = None,
    problems: list[Problem] | None = None,
    where: str = "",
    in_folder: Path | None = None,
) -> Dataset:
    """Read each table's file, collecting the problems of all of them before raising once."""
    problems = list(problems or [])
    warnings = list(warnings or [])
    tables: dict[str, pd.DataFrame] = {}
    refs: dict[str, SourceRef] = {}
    for name in TABLE_ORDER:
        spec = TABLES[name]
        if name not in files:
            if not spec.optional:
                problems.append(
                    Problem(
                        f"{name}.csv",
                        None,
                        None,
                        None,
                        f"required file is missing{where}: expected {name}.csv with columns "
                        + ", ".join(spec.column_names),
                    )
                )
            continue
        path = files[name]
        try:
            # a file of the folder may not lead out of it (through a link)
            real = confine(in_folder, path.name) if in_folder is not None else path
            frame, rows = read_text_table(real, encoding=encoding, display_name=path.name)
        except DataValidationError as exc:
            problems.extend(exc.problems)
            continue
        # columns added after the first contract version may be left out (they are then empty)
        missing = [c.name for c in spec.columns if c.since == 1 and c.name not in frame.columns]
        for c in missing:
            problems.append(Problem(path.name, 1, c, None, f"required column '{c}' is missing from the header"))
        for c in frame.columns:
            if c not in spec.column_names:
                warnings.append(Problem(path.name, 1, c, None, f"column is not part of the {name} table; ignored"))
        if missing:
            continue
        tables[name] = frame.loc[:, [c for c in spec.column_names if c in frame.columns]]
        refs[name] = SourceRef(file=path.name, rows=rows)
    if problems:
        raise DataValidationError(problems)
    return Dataset(tables=tables, refs=refs, source=source, warnings=warnings)
