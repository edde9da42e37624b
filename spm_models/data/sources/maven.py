"""The Maven Analytics "CRM Sales Opportunities" export, read through its bundled mapping file.

The export (``sales_pipeline.csv``, ``sales_teams.csv``, ``accounts.csv``, ``products.csv``) is
the B2B pipeline of a fictitious computer-hardware company. Everything this reader does is in
``spm_models/data/mappings/maven.toml``: the known dirt it cleans (product ``GTXPro`` is ``GTX Pro``,
sector ``technolgy`` is ``technology``), regional offices as territories, agent names as agent
ids, and the 500 Prospecting rows left out because they have no engage date.
"""

from __future__ import annotations

from pathlib import Path

from spm_models.config import ProjectPaths
from spm_models.data.dataset import Dataset
from spm_models.data.sources.mapping import read_mapped_export

__all__ = ["MAVEN_MAPPING", "load_maven"]

#: The bundled mapping file of the Maven export.
MAVEN_MAPPING: Path = Path(__file__).resolve().parent.parent / "mappings" / "maven.toml"


def load_maven(folder: str | Path | None = None) -> Dataset:
    """Read a Maven CRM export folder into canonical (unvalidated) tables.

    Parameters
    ----------
    folder : path-like, optional
        Folder holding the four CSV files; defaults to the shipped copy
        (``ProjectPaths.from_root().maven``, i.e. ``data/examples/maven_crm``).

    Returns
    -------
    Dataset
        territories (3 regional offices), agents (35, with their manager), accounts (85),
        products (7) and opportunities (8,300: the 8,800 rows less the 500 Prospecting rows
        without an engage date, reported in ``Dataset.warnings``). No stage history,
        activities, targets or indicators: the export has none.

    Raises
    ------
    DataValidationError
        A file or an expected column is missing, or a deal stage is not one of Prospecting,
        Engaging, Won, Lost.
    """
    where = Path(folder) if folder is not None else ProjectPaths.from_root().maven
    return read_mapped_export(MAVEN_MAPPING, folder=where)
