"""Where things live. Paths come from here, never from the caller's working directory."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ProjectPaths", "default_root"]

_PACKAGE_DIR = Path(__file__).resolve().parent


def default_root() -> Path:
    """The project root: ``$SPM_HOME`` if set, else the source checkout holding this package.

    Falls back to ``~/spm-workbench`` for a non-editable install outside a checkout.
    """
    env = os.environ.get("SPM_HOME")
    if env:
        return Path(env).expanduser().resolve()
    checkout = _PACKAGE_DIR.parent
    if (checkout / "pyproject.toml").is_file():
        return checkout
    return Path.home() / "spm-workbench"


@dataclass(frozen=True)
class ProjectPaths:
    """The files and folders of one workbench project.

    Parameters
    ----------
    root : Path
        Project root; everything else is derived from it unless overridden.
    """

    root: Path

    @classmethod
    def from_root(cls, root: str | os.PathLike | None = None) -> ProjectPaths:
        return cls(Path(root).expanduser().resolve() if root is not None else default_root())

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def warehouse(self) -> Path:
        """Default DuckDB warehouse file."""
        return self.data / "warehouse.duckdb"

    @property
    def demo_data(self) -> Path:
        """Where ``spm demo-data`` writes the synthetic organisation."""
        return self.data / "demo"

    @property
    def examples(self) -> Path:
        return self.data / "examples"

    @property
    def maven(self) -> Path:
        return self.examples / "maven_crm"

    @property
    def kpis(self) -> Path:
        return self.data / "kpis"

    @property
    def reports(self) -> Path:
        return self.root / "reports"
