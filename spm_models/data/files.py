"""Opening input files defensively: regular files only, and only inside the folder they belong to.

An export is a folder of files someone else produced, and a mapping file is text someone else
wrote. So a file named by either is opened only when it

* stays inside its folder (:func:`confine`): no absolute path, no ``..`` out of it, no symbolic
  link that leads out of it; a message about such a name never shows anything of the file it
  points to, because that file is never opened;
* is a regular file (:func:`read_input`): a name that is missing, a folder, a broken link, a
  named pipe (FIFO), a socket or a device, or a file that cannot be read, is a problem with a
  message saying which, never an empty table. The kind is checked on the opened descriptor
  (``fstat``), so a file swapped for a pipe between the check and the read is still refused,
  and a pipe is opened without blocking.

:func:`check_encoding` accepts only text encodings (``"utf-8"``, ``"cp1252"``), not codecs
such as ``"rot13"`` or ``"zlib"`` that Python can look up but that do not turn bytes into text.
"""

from __future__ import annotations

import codecs
import os
from pathlib import Path

from spm_models.config import file_kind, read_regular_file
from spm_models.exceptions import ConfigError, DataValidationError, Problem

__all__ = ["check_encoding", "confine", "read_input"]


def check_encoding(name: object, *, where: str = "encoding") -> str:
    """``name`` when it is a text encoding Python knows; ConfigError naming ``where`` otherwise.

    Raises
    ------
    ConfigError
        Not text, unknown, or a codec that does not decode bytes to text (``rot13``, ``base64``).
    """
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f'{where}: expected the name of a text encoding such as "utf-8", found {name!r}')
    try:
        info = codecs.lookup(name)
    except LookupError:
        info = None
    if info is None or not getattr(info, "_is_text_encoding", True):
        what = "unknown text encoding" if info is None else "not a text encoding"
        raise ConfigError(f'{where}: {what} {name!r}; use one such as "utf-8", "cp1252" or "latin-1"')
    return name


def _problem(name: str, rule: str, named_by: str | None) -> DataValidationError:
    return DataValidationError([Problem(name, None, None, None, rule + (f" ({named_by})" if named_by else ""))])


def _diagnose(path: Path, name: str, named_by: str | None) -> DataValidationError | None:
    """Why ``path`` cannot be read as a data file, or None when it is a regular file."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            return _problem(name, f"{path} is a link to {os.readlink(path)!s}, which does not exist", named_by)
        return _problem(name, f"file not found at {path}", named_by)
    except NotADirectoryError:
        return _problem(name, f"file not found at {path} (a part of the path is a file, not a folder)", named_by)
    except OSError as exc:
        return _problem(name, f"cannot look at {path}: {exc.strerror or exc}", named_by)
    kind = file_kind(st.st_mode)
    if kind is not None:
        return _problem(name, f"{path} is {kind}, not a file: give the data file itself", named_by)
    return None


def confine(folder: str | Path, name: str, *, named_by: str | None = None) -> Path:
    """The file ``name`` of ``folder``, when it stays inside ``folder`` and is a regular file.

    Parameters
    ----------
    folder : path-like
        The export folder (a mapping file's folder, a canonical CSV folder).
    name : str
        File name relative to ``folder``, as written by whoever made the mapping or export.
    named_by : str, optional
        Where the name comes from (``"products.file in mapping file mapping.toml"``), for messages.

    Returns
    -------
    Path
        The file's real path (links followed), inside ``folder``.

    Raises
    ------
    DataValidationError
        The name is absolute, leads out of ``folder`` (``..`` or a link), or is not a regular
        file (missing, a folder, a broken link, a pipe...). The message names the path given,
        never anything read from where it leads.
    """
    base = Path(folder)
    if Path(name).is_absolute() or Path(name).drive:
        raise _problem(
            name,
            f"an absolute path is not allowed here: nothing outside the export folder {base} is read; "
            "name a file inside it",
            named_by,
        )
    path = base / name
    real_base = base.resolve()
    try:
        real = path.resolve(strict=False)
    except (OSError, RuntimeError):  # a link loop
        raise _problem(name, f"{path} is a link that leads in a circle", named_by) from None
    if real != real_base and real_base not in real.parents:
        how = "through a symbolic link" if ".." not in Path(name).parts else "with '..'"
        raise _problem(
            name,
            f"the file must be inside the export folder {base}, but this name leads out of it {how} "
            "(nothing outside the export folder is read); copy the file into the folder",
            named_by,
        )
    problem = _diagnose(path, name, named_by)
    if problem is not None:
        raise problem
    return real


def read_input(path: str | Path, *, display_name: str | None = None) -> bytes:
    """The bytes of a regular file (:func:`spm_models.config.read_regular_file`); a clear problem otherwise.

    Raises
    ------
    DataValidationError
        Missing, a folder, a broken link, a named pipe, a socket or a device, or unreadable.
    """
    path = Path(path)
    name = display_name or path.name
    try:
        return read_regular_file(path)
    except PermissionError:
        rule = f"{path} cannot be read (permission denied); make it readable for this user"
        raise _problem(name, rule, None) from None
    except OSError as exc:
        problem = _diagnose(path, name, None)
        raise (problem or _problem(name, f"cannot read {path}: {exc.strerror or exc}", None)) from None
