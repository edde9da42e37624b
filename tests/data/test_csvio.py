"""Defensive CSV reading: text only, spreadsheet row numbers, every file problem named."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import spm_models.data.csvio as csvio
from spm_models.data.csvio import read_text_table
from spm_models.exceptions import DataValidationError


def _write(tmp_path, text: str | bytes, name: str = "t.csv"):
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", newline="")
    return path


def _problems(path, **kw) -> list[str]:
    with pytest.raises(DataValidationError) as info:
        read_text_table(path, **kw)
    return [str(p) for p in info.value.problems]


def test_cells_are_text_and_empty_cells_are_none(tmp_path):
    frame, rows = read_text_table(_write(tmp_path, "id,amount,name\nA, -5 ,\nB,1e3,x y\n"))
    assert frame.to_dict("list") == {"id": ["A", "B"], "amount": [" -5 ", "1e3"], "name": [None, "x y"]}
    assert rows.tolist() == [2, 3]


def test_formula_cells_are_kept_verbatim_as_text(tmp_path):
    frame, _ = read_text_table(_write(tmp_path, 'id,name\nA,"=HYPERLINK(""http://x"",""y"")"\nB,=1+1\n'))
    assert frame["name"].tolist() == ['=HYPERLINK("http://x","y")', "=1+1"]


def test_quoted_line_break_counts_as_one_row(tmp_path):
    text = 'id,name,n\nA,"two\nlines",1\nB,ok,2\nC,bad\n'
    problems = _problems(_write(tmp_path, text))
    assert problems == ["t.csv, row 4: row has 2 fields but the header has 3"]
    frame, rows = read_text_table(_write(tmp_path, text.replace("C,bad", "C,bad,3")))
    assert frame["name"].tolist() == ["two\nlines", "ok", "bad"] and rows.tolist() == [2, 3, 4]


def test_blank_lines_are_skipped_but_counted(tmp_path):
    for text in ("id,n\n\nA,1\n , \nB,2\n\n", "id,n\r\n\r\nA,1\r\n , \r\nB,2\r\n\r\n", 'id,n\n\n"A",1\n , \nB,2\n\n'):
        frame, rows = read_text_table(_write(tmp_path, text))
        assert frame["id"].tolist() == ["A", "B"] and rows.tolist() == [3, 5], repr(text)


def test_ragged_rows_are_all_reported(tmp_path):
    problems = _problems(_write(tmp_path, "a,b,c\n1,2,3\n1,2\n1,2,3,4\n"))
    assert problems == [
        "t.csv, row 3: row has 2 fields but the header has 3",
        "t.csv, row 4: row has 4 fields but the header has 3",
    ]


def test_utf8_byte_order_mark_is_dropped(tmp_path):
    frame, _ = read_text_table(_write(tmp_path, "\ufeffid,n\nA,1\n".encode("utf-8")))
    assert list(frame.columns) == ["id", "n"]


def test_non_utf8_file_names_the_byte_and_line(tmp_path):
    problems = _problems(_write(tmp_path, "id,name\nA,Ana\nB,Jos\u00e9\n".encode("latin-1")))
    assert len(problems) == 1
    assert problems[0].startswith("t.csv, row 3: file is not valid utf-8 text (byte 0xe9")
    frame, _ = read_text_table(tmp_path / "t.csv", encoding="latin-1")
    assert frame["name"].tolist() == ["Ana", "Jos\u00e9"]


@pytest.mark.parametrize("text", ["", "\n\n", " , \n"])
def test_empty_file(tmp_path, text):
    assert _problems(_write(tmp_path, text, "e.csv")) == ["e.csv: file is empty: expected a header row and data rows"]


def test_header_only_is_an_empty_frame(tmp_path):
    frame, rows = read_text_table(_write(tmp_path, "id,n\n"))
    assert list(frame.columns) == ["id", "n"] and len(frame) == 0 and len(rows) == 0


def test_header_problems(tmp_path):
    assert _problems(_write(tmp_path, "id,,id\n1,2,3\n")) == [
        "t.csv, row 1: header has an empty column name",
        "t.csv, row 1, column 'id': column name appears twice in the header",
    ]


def test_header_problems_name_the_header_row_after_blank_lines(tmp_path):
    assert _problems(_write(tmp_path, "\n\nid,id\n1,2\n")) == [
        "t.csv, row 3, column 'id': column name appears twice in the header"
    ]


def test_missing_file_and_display_name(tmp_path):
    assert _problems(tmp_path / "nope.csv", display_name="deals export") == [
        f"deals export: file not found at {tmp_path / 'nope.csv'}"
    ]


def test_other_delimiter(tmp_path):
    frame, _ = read_text_table(_write(tmp_path, "id;amount\nA;1,5\n"), delimiter=";")
    assert frame.to_dict("list") == {"id": ["A"], "amount": ["1,5"]}


def test_invalid_quoting_is_reported(tmp_path):
    problems = _problems(_write(tmp_path, 'id,name\nA,"open quote\n'))
    assert len(problems) == 1 and "file is not valid CSV" in problems[0]


# The fast path (quote-free files, pandas' C reader) must give exactly what the general path
# (the standard library's csv reader) gives, problems included.
_cell = st.text(alphabet=st.sampled_from(list("ab1-= .;\u00e9\u00a0\t")), max_size=4)
_line = st.one_of(st.lists(_cell, min_size=1, max_size=4).map(",".join), st.just(""), st.just(" , "))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    header=st.lists(st.text(alphabet="xyz", min_size=1, max_size=3), min_size=1, max_size=4, unique=True),
    lines=st.lists(_line, max_size=8),
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
    final=st.booleans(),
)
def test_fast_path_agrees_with_the_general_reader(tmp_path, monkeypatch, header, lines, newline, final):
    text = newline.join([",".join(header), *lines]) + (newline if final else "")
    path = _write(tmp_path, text, "p.csv")

    def read():
        try:
            frame, rows = read_text_table(path)
            return frame.to_dict("list"), rows.tolist()
        except DataValidationError as exc:
            return [str(p) for p in exc.problems]

    fast = read()
    with monkeypatch.context() as m:
        m.setattr(csvio, "_parse_plain", lambda text, delimiter: None)
        general = read()
    assert fast == general


def test_large_plain_file_takes_the_fast_path_with_the_same_row_numbers(tmp_path, monkeypatch):
    monkeypatch.setattr(csvio, "_parse_quoted", lambda *a: pytest.fail("general reader used for a plain file"))
    n = 50_000
    body = "\n".join(f"A{i},{i}" for i in range(n))
    frame, rows = read_text_table(_write(tmp_path, "id,n\n" + body + "\n\nZ,1\n"))
    assert len(frame) == n + 1
    assert rows[-1] == n + 3 and rows[0] == 2
    assert np.array_equal(rows[:n], np.arange(2, n + 2))
