"""Test-session settings shared by every folder.

The fault suite (``tests/faults``: runs killed, disks filled, folders made read-only) is run by
``make test-faults`` and CI, not by the default ``pytest`` run: it is collected only when named
on the command line (``pytest tests/faults``) or when ``SPM_FAULTS=1``.
"""

from __future__ import annotations

import os
from pathlib import Path

FAULTS = Path(__file__).resolve().parent / "faults"


def _names_faults(config) -> bool:
    here = Path(config.invocation_params.dir)
    for arg in config.args:
        path = (here / arg.split("::")[0]).resolve()
        if path == FAULTS or FAULTS in path.parents:
            return True
    return False


def pytest_ignore_collect(collection_path, config):
    path = Path(collection_path).resolve()
    if (path == FAULTS or FAULTS in path.parents) and os.environ.get("SPM_FAULTS") != "1" and not _names_faults(config):
        return True
    return None
