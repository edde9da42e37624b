"""Tables written for people: formula cells neutralised in CSV, atomic writes, known formats."""

from __future__ import annotations

import pandas as pd
import pytest

from spm_models.data.exports import write_table
from spm_models.exceptions import ConfigError


def test_csv_cells_a_spreadsheet_would_run_get_an_apostrophe(tmp_path):
    frame = pd.DataFrame(
        {
            "name": ['=HYPERLINK("http://x")', "-2+3+cmd|' /C calc'!A0", "-5", "Anne-Marie", None],
            "value": [-1.5, 2.0, 3.0, 4.0, 5.0],
        }
    )
    path = write_table(frame, tmp_path / "out.csv")
    back = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert back["name"].tolist() == ['\'=HYPERLINK("http://x")', "'-2+3+cmd|' /C calc'!A0", "-5", "Anne-Marie", ""]
    assert back["value"].tolist() == ["-1.5", "2.0", "3.0", "4.0", "5.0"]  # numbers are never touched
    assert not list(tmp_path.glob("*.tmp"))


def test_parquet_keeps_the_text_as_it_is_and_other_formats_are_refused(tmp_path):
    frame = pd.DataFrame({"name": ["=1+1"]})
    assert pd.read_parquet(write_table(frame, tmp_path / "out.parquet"))["name"].tolist() == ["=1+1"]
    with pytest.raises(ConfigError, match=r"\.csv or \.parquet"):
        write_table(frame, tmp_path / "out.xlsx")


def test_csv_of_dictionary_encoded_text_neutralises_the_vocabulary(tmp_path):
    names = ["=1+1", "Anne-Marie", "=1+1", "@SUM(A1)", None]
    frame = pd.DataFrame({"name": pd.Categorical(names), "clash": pd.Categorical(["=x", "'=x", "=x", "y", "y"])})
    back = pd.read_csv(write_table(frame, tmp_path / "out.csv"), dtype=str, keep_default_na=False)
    assert back["name"].tolist() == ["'=1+1", "Anne-Marie", "'=1+1", "'@SUM(A1)", ""]
    assert back["clash"].tolist() == ["'=x", "'=x", "'=x", "y", "y"]  # "=x" becomes what "'=x" already was
    assert isinstance(frame["name"].dtype, pd.CategoricalDtype) and frame["name"].iloc[0] == "=1+1"  # untouched
