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

from spm_models.data.files import check_encoding, read_input
from spm_models.exceptions import DataValidationError, Problem

__all__ = ["read_text_table"]


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
        The file is missing or not a regular readable file (a folder, a broken link, a named
        pipe: :func:`spm_models.data.files.read_input`), empty, not in ``encoding``, has no
        header, repeats a header name, or a record has more or fewer fields than the header.
    ConfigError
        ``encoding`` is not a text encoding.
    """
    path = Path(path)
    name = display_name or path.name
    check_encoding(encoding)
    raw = read_input(path, display_name=name)
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
                    f're-export it as UTF-8 or declare its encoding (e.g. encoding = "latin-1" in the mapping file)',
                )
            ]
        ) from None
    if not text.strip():
        raise DataValidationError(
            [Problem(name, None, None, None, "file is empty: expected a header row and data rows")]
        )

    parsed = _parse_plain(text, delimiter) if '"' not in text else None
    if parsed is None:
        parsed = _parse_quoted(text, name, delimiter)
    if parsed is None:
        raise DataValidationError(
            [Problem(name, None, None, None, "file is empty: expected a header row and data rows")]
        )
    header_row, header, rows, widths, columns = parsed
    header = [h.strip() for h in header]
    problems: list[Problem] = []
    seen: set[str] = set()
    for h in header:
        if not h:
            problems.append(Problem(name, header_row, None, None, "header has an empty column name"))
        elif h in seen:
            problems.append(Problem(name, header_row, h, None, "column name appears twice in the header"))
        seen.add(h)
    width = len(header)
    for k in np.flatnonzero(widths != width):
        problems.append(
            Problem(name, int(rows[k]), None, None, f"row has {int(widths[k])} fields but the header has {width}")
        )
    if problems:
        raise DataValidationError(problems)
    frame = pd.DataFrame(dict(zip(range(width), columns(width))), dtype=object)
    frame.columns = header
    return frame, rows


# A parse returns (header row number, header fields, row number of each body record, number of
# fields of each body record, a function giving the body columns as object arrays with ``None``
# for empty cells once every record has been checked to have the header's width), or None
# when the file holds no record with any content.


def _parse_quoted(text: str, name: str, delimiter: str):
    """Any CSV, with the standard library's reader (records may span lines inside quotes)."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    records: list[list[str]] = []
    try:
        for record in reader:
            records.append(record)
    except csv.Error as exc:
        # rows count records: the one that failed is the next one
        hint = '; a quote (") opened in this row is never closed' if "end of data" in str(exc) else ""
        raise DataValidationError(
            [Problem(name, len(records) + 1, None, None, f"file is not valid CSV: {exc}{hint}")]
        ) from None
    # Drop wholly empty records (a trailing newline, blank lines between records); row numbers
    # count records, so they still match the spreadsheet's.
    numbered = [(i + 1, r) for i, r in enumerate(records) if any(map(str.strip, r))]
    if not numbered:
        return None
    header_row, header = numbered[0]
    body = numbered[1:]
    rows = np.array([row_no for row_no, _ in body], dtype=np.int64)
    widths = np.array([len(rec) for _, rec in body], dtype=np.int64)

    def columns(width: int) -> list[np.ndarray]:
        out = []
        for j in range(width):
            col = np.empty(len(body), dtype=object)
            col[:] = [rec[j] if rec[j] != "" else None for _, rec in body]
            out.append(col)
        return out

    return header_row, header, rows, widths, columns


def _parse_plain(text: str, delimiter: str):
    """Fast path for files without any quote character: one record per line.

    Field counts come from counting delimiters per line (vectorised over the bytes), so
    ragged rows and blank lines are found exactly as :func:`_parse_quoted` finds them; the
    values are parsed by pandas' C reader. Returns None (use :func:`_parse_quoted`) for
    anything unusual.
    """
    if len(delimiter) != 1 or ord(delimiter) >= 128:
        return None
    norm = text.replace("\r\n", "\n").replace("\r", "\n")
    if not norm.endswith("\n"):
        norm += "\n"
    buf = np.frombuffer(norm.encode("utf-8"), dtype=np.uint8)
    ends = np.flatnonzero(buf == 10)
    starts = np.concatenate(([0], ends[:-1] + 1))
    n_lines = len(ends)
    widths = np.add.reduceat(buf == ord(delimiter), starts, dtype=np.int64) + 1
    # Blank: nothing but delimiters and white space (what str.strip removes). Non-ASCII bytes
    # may be Unicode white space, so lines with only those are checked one by one.
    ascii_space = np.frombuffer(b" \t\n\x0b\x0c\x1c\x1d\x1e\x1f" + delimiter.encode(), dtype=np.uint8)
    ascii_content = np.add.reduceat((buf < 128) & ~np.isin(buf, ascii_space), starts, dtype=np.int64)
    non_ascii = np.add.reduceat(buf >= 128, starts, dtype=np.int64)
    blank = (ascii_content == 0) & (non_ascii == 0)
    for k in np.flatnonzero((ascii_content == 0) & (non_ascii > 0)):
        line = buf[starts[k] : ends[k]].tobytes().decode("utf-8")
        blank[k] = not line.replace(delimiter, "").strip()
    content = np.flatnonzero(~blank)
    if len(content) == 0 or content[0] != 0:
        return None  # nothing, or blank lines before the header: let the general reader decide
    body = content[1:]
    rows = body + 1
    header = norm[: ends[0]].split(delimiter)
    body_widths = widths[body]
    width = len(header)
    if (body_widths != width).any():
        return 1, header, rows, body_widths, None  # the caller reports the ragged rows
    try:
        table = pd.read_csv(
            io.StringIO(text),
            sep=delimiter,
            header=None,
            names=list(range(width)),
            dtype=str,
            keep_default_na=False,
            na_values=[],
            skip_blank_lines=False,
            quoting=csv.QUOTE_NONE,
            engine="c",
        )
    except (pd.errors.ParserError, ValueError):  # e.g. a blank line of many delimiters
        return None
    if len(table) != n_lines:  # the C reader split lines differently: do not guess
        return None
    cols = []
    for j in range(width):
        col = table[j].to_numpy(dtype=object)[body]
        col[col == ""] = None
        cols.append(col)
    return 1, header, rows, body_widths, lambda _width: cols
