"""SPM Workbench: sales performance management from the data you already have.

Layers, each importing only those beneath it::

    sources -> warehouse -> kpi / funnel / indicators -> models -> review -> reports -> cli

Importing the package does no I/O and loads no heavy library; import submodules as needed,
e.g. ``from spm_models import kpi`` or ``from spm_models.data.warehouse import Warehouse``.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("spm-workbench")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
