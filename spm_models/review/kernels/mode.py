"""How report kernels start: forked from the kernel server, or one plain process each.

``"fork"`` needs ``os.fork`` on Linux: macOS has ``fork`` but its system frameworks are not
safe to use in a forked child (Python's ``multiprocessing`` starts processes by ``spawn``
there since 3.8), and Windows has no ``fork``. ``"auto"`` (the default) forks where that
works and falls back to plain kernels elsewhere, saying so in one line; reports are the same
either way, plain kernels only cost more CPU per report.
"""

from __future__ import annotations

import os
import sys

from spm_models.exceptions import ConfigError

__all__ = ["KERNEL_MODES", "fork_available", "resolve_kernel_mode"]

#: The choices of ``kernels`` (review settings) and ``spm review --kernels``.
KERNEL_MODES: tuple[str, ...] = ("auto", "fork", "plain")


def fork_available() -> bool:
    """Whether report kernels can be forked here (``os.fork`` exists and the platform is Linux)."""
    return hasattr(os, "fork") and sys.platform.startswith("linux")


def resolve_kernel_mode(requested: str) -> tuple[str, str | None]:
    """The kernel mode to use for ``requested``, and a one-line warning when "auto" falls back.

    Parameters
    ----------
    requested : {"auto", "fork", "plain"}

    Returns
    -------
    mode : {"fork", "plain"}
    warning : str or None
        Set when ``"auto"`` chose plain kernels because forking is not available.

    Raises
    ------
    ConfigError
        ``requested`` is not a mode, or is ``"fork"`` where forking is not available.
    """
    if requested not in KERNEL_MODES:
        raise ConfigError(f"kernels must be one of {', '.join(repr(m) for m in KERNEL_MODES)}; got {requested!r}")
    if requested == "plain":
        return "plain", None
    if fork_available():
        return "fork", None
    if requested == "fork":
        raise ConfigError(
            f"kernels='fork' needs os.fork on Linux, which this platform ({sys.platform}) does not offer; "
            "use kernels='auto' or 'plain'"
        )
    return "plain", (
        f"report kernels cannot be forked on this platform ({sys.platform}); "
        "using plain kernels (one new process per report, slower)"
    )
