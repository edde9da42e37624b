"""The bench scripts are files, not a package: their tests load them by path."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="session")
def load_bench():
    """``load_bench("accuracy")``: bench/accuracy.py as a module, loaded once per name."""

    def load(name: str):
        key = f"bench_{name}"
        if key not in sys.modules:
            spec = importlib.util.spec_from_file_location(key, BENCH / f"{name}.py")
            module = importlib.util.module_from_spec(spec)
            sys.modules[key] = module  # dataclasses look their module up while a class is built
            spec.loader.exec_module(module)
        return sys.modules[key]

    return load
