"""From a path on disk to a validated warehouse: pick the source reader, then ingest once."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from spm_models.calendar import Calendar
from spm_models.data.dataset import Dataset
from spm_models.data.files import check_encoding
from spm_models.data.warehouse import IngestResult, Warehouse
from spm_models.exceptions import ConfigError

__all__ = ["SOURCES", "detect_source", "read_source", "ingest_paths"]

SOURCES = ("auto", "canonical", "maven", "mapping")


#: The mapping file a folder of an export may hold (``spm ingest my_export`` then reads it).
MAPPING_FILE = "mapping.toml"


def detect_source(paths: Sequence[Path]) -> str:
    """Guess the source kind: a ``.toml`` mapping file (or a folder holding ``mapping.toml``), a
    Maven export folder, or canonical CSVs."""
    if len(paths) == 1:
        p = paths[0]
        if p.suffix.lower() == ".toml" or (p.is_dir() and (p / MAPPING_FILE).is_file()):
            return "mapping"
        if p.is_dir() and (p / "sales_pipeline.csv").is_file() and (p / "sales_teams.csv").is_file():
            return "maven"
    return "canonical"


def read_source(paths: Sequence[str | Path], *, source: str = "auto", encoding: str = "utf-8") -> Dataset:
    """Read ``paths`` with the reader for ``source`` into an unvalidated :class:`Dataset`.

    Parameters
    ----------
    paths : sequence of path-like
        One folder of canonical CSVs, several canonical CSV files (each named after its
        table), one Maven export folder, or one mapping ``.toml`` file (or a folder holding
        ``mapping.toml``).
    source : {"auto", "canonical", "maven", "mapping"}
        Which reader; ``auto`` guesses from the paths.
    encoding : str
        Text encoding of canonical CSVs (mapping files declare their own).
    """
    if source not in SOURCES:
        raise ConfigError(f"unknown source {source!r}; choose one of {', '.join(SOURCES)}")
    check_encoding(encoding, where="--encoding")
    ps = [Path(p) for p in paths]
    if not ps:
        raise ConfigError("give at least one file or folder to ingest")
    for p in ps:
        if not p.exists():
            raise ConfigError(f"{p} does not exist")
    kind = detect_source(ps) if source == "auto" else source
    if kind in {"maven", "mapping"} and len(ps) != 1:
        raise ConfigError(f"source {kind!r} takes exactly one path, got {len(ps)}")
    if kind == "maven":
        from spm_models.data.sources.maven import load_maven

        return load_maven(ps[0])
    if kind == "mapping":
        from spm_models.data.sources.mapping import read_mapped_export

        return read_mapped_export(ps[0] / MAPPING_FILE if ps[0].is_dir() else ps[0])
    from spm_models.data.sources.canonical import read_canonical_files, read_canonical_folder

    if len(ps) == 1 and ps[0].is_dir():
        return read_canonical_folder(ps[0], encoding=encoding)
    return read_canonical_files(ps, encoding=encoding)


def ingest_paths(
    paths: Sequence[str | Path],
    *,
    db: str | Path,
    source: str = "auto",
    encoding: str = "utf-8",
    allow_formula_text: bool = False,
    calendar: Calendar | None = None,
    measure: str | None = None,
    date_window: tuple | None = None,
) -> IngestResult:
    """Read, validate and store ``paths`` in the warehouse at ``db`` in one transaction.

    Nothing is written when any input has a problem; the error lists every problem found.
    ``calendar`` and ``measure`` are the project's fiscal calendar and bookings measure,
    stored with the data unless a mapping file declares its own; ``date_window`` the
    project's plausible dates (:mod:`spm_models.data.plausibility`).
    """
    dataset = read_source(paths, source=source, encoding=encoding)
    return Warehouse(db).ingest(
        dataset, allow_formula_text=allow_formula_text, calendar=calendar, measure=measure, date_window=date_window
    )
