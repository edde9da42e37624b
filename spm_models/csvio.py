"""Reading text exports defensively: every cell as text, problems reported, nothing evaluated.

Spreadsheet formulas (``=HYPERLINK(...)``) are never evaluated: cells are read as plain text
and the validation layer flags them. Row numbers follow spreadsheet convention (header is
row 1) and count records, so a quoted line break inside a field does not shift them.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd

from .exceptions import DataValidationError, Problem

__all__ = ["read_text_table", "FORMULA_PREFIXES"]

#: Leading characters that make spreadsheet programs evaluate a cell.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def read_text_table(
    path: str | Path,
    *,
    encoding: str = "utf-8",
    delimiter: str = ",",
    display_name: str | None = None,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Read a delimited text file with every cell as text.

    Parameters
    ----------
    path : path-like
        The file.
    encoding : str
        Expected encoding; a file that does not decode is rejected with the byte position.
    delimiter : str
        Field separator.
    display_name : str, optional
        Name used in messages (defaults to the file name).

    Returns
    -------
    frame : DataFrame
        One column per header field, values as ``str`` with empty cells as ``None``.
    rows : ndarray of int
        Spreadsheet row number of each record (header is row 1).

    Raises
    ------
    DataValidationError
        The file is missing, empty, not in ``encoding``, has no header, repeats a header
        name, or a record has more or fewer fields than the header.
    """
    path = Path(path)
    name = display_name or path.name
    if not path.is_file():
        raise DataValidationError([Problem(name, None, None, None, f"file not found at {path}")])
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]  # Excel's UTF-8 byte-order mark
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        bad = raw[exc.start : exc.start + 1].hex()
        raise DataValidationError(
            [
                Problem(
                    name,
                    line,
                    None,
                    None,
                    f"file is not valid {encoding} text (byte 0x{bad} at byte {exc.start}, line {line}); "
                    f"re-export it as UTF-8 or declare its encoding (e.g. encoding = \"latin-1\" in the mapping file)",
                )
            ]
        ) from None
    if not text.strip():
        raise DataValidationError([Problem(name, None, None, None, "file is empty: expected a header row and data rows")])

    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    problems: list[Problem] = []
    try:
        records = list(reader)
    except csv.Error as exc:
        raise DataValidationError(
            [Problem(name, reader.line_num, None, None, f"file is not valid CSV: {exc}")]
        ) from None
    # Drop wholly empty lines (a trailing newline, blank lines between records).
    numbered = [(i + 1, r) for i, r in enumerate(records) if any(cell.strip() for cell in r)]
    if not numbered:
        raise DataValidationError([Problem(name, None, None, None, "file is empty: expected a header row and data rows")])
    _, header = numbered[0]
    header = [h.strip() for h in header]
    seen: set[str] = set()
    for h in header:
        if not h:
            problems.append(Problem(name, 1, None, None, "header has an empty column name"))
        elif h in seen:
            problems.append(Problem(name, 1, h, None, "column name appears twice in the header"))
        seen.add(h)
    body = numbered[1:]
    width = len(header)
    for row_no, rec in body:
        if len(rec) != width:
            problems.append(
                Problem(name, row_no, None, None, f"row has {len(rec)} fields but the header has {width}")
            )
    if problems:
        raise DataValidationError(problems)
    rows = np.array([row_no for row_no, _ in body], dtype=np.int64)
    data = {h: [rec[j] if rec[j] != "" else None for _, rec in body] for j, h in enumerate(header)}
    frame = pd.DataFrame(data, columns=header, dtype=object)
    return frame, rows
