"""Safe, stable file names for reports, whatever an agent or territory is called.

Names come from CRM data and can hold anything: ``../../etc/passwd``, ``<script>``, ``$``,
emoji, spaces, a name shared by two agents. A report file name is a readable ASCII slug of
the name plus a short hash of the *id* (so two agents called "Sam Lee" get two files and a
renamed agent keeps a recognisable file), and :func:`inside` checks that a path stays in
the output folder before anything is written.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from pathlib import Path

from spm_models.exceptions import ReportError

__all__ = ["slug", "report_file_name", "inside", "MAX_SLUG"]

#: Longest slug kept from a name (file names stay well under every file system's limit).
MAX_SLUG = 40
_NOT_SAFE = re.compile(r"[^a-z0-9]+")


def slug(text: str, *, fallback: str = "report") -> str:
    """Lower-case ASCII letters, digits and single hyphens; ``fallback`` when nothing is left.

    Accents are folded (``"Zoë Müller"`` -> ``"zoe-muller"``); everything else that is not a
    letter or digit (slashes, dots, ``<>``, ``$``, emoji) becomes a hyphen; the result is cut
    to :data:`MAX_SLUG` characters.

    >>> slug("../../etc/passwd")
    'etc-passwd'
    >>> slug("<script>alert(1)</script>")
    'script-alert-1-script'
    """
    folded = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode("ascii").lower()
    s = _NOT_SAFE.sub("-", folded).strip("-")[:MAX_SLUG].strip("-")
    return s or fallback


def report_file_name(name: str, entity_id: str, *, suffix: str = ".html", fallback: str = "report") -> str:
    """``<slug of name>-<first 8 hex digits of sha256(id)><suffix>``.

    The hash keeps names unique when two subjects share a name or a slug, and stable across
    runs (it depends on the id only).

    >>> report_file_name("Ana Okafor", "A0001")
    'ana-okafor-2b348918.html'
    """
    digest = hashlib.sha256(str(entity_id).encode("utf-8")).hexdigest()[:8]
    return f"{slug(name, fallback=fallback)}-{digest}{suffix}"


def inside(folder: str | Path, relative: str | Path) -> Path:
    """``folder / relative``, refusing any result outside ``folder``.

    Raises
    ------
    ReportError
        ``relative`` is absolute or climbs out of ``folder`` (``..``, symlinks).
    """
    root = Path(folder).resolve()
    rel = Path(relative)
    if rel.is_absolute():
        raise ReportError(f"report path {str(relative)!r} must be relative to the output folder")
    target = (root / rel).resolve()
    if target != root and root not in target.parents:
        raise ReportError(f"report path {str(relative)!r} would leave the output folder {root}")
    return target
