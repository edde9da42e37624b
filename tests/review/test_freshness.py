"""Which month a scheduled review covers (spm_models.review.freshness), and `spm review --require-fresh`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from spm_models.cli import main
from spm_models.data.sources.canonical import read_canonical_folder
from spm_models.data.validation import validate
from spm_models.data.warehouse import Warehouse
from spm_models.review.freshness import StaleDataError, choose_month, expected_month

GOOD = Path(__file__).parents[1] / "data" / "good_small"


@pytest.fixture(scope="module")
def small():
    """good_small: its last date is 2024-04-30 (a deal closed then), so its last complete month is 2024-04."""
    return validate(read_canonical_folder(GOOD), today=pd.Timestamp("2024-05-01"))


@pytest.mark.parametrize(
    ("today", "expected"), [("2026-12-06", "2026-11"), ("2026-01-01", "2025-12"), ("2024-05-31", "2024-04")]
)
def test_the_expected_month_is_the_last_that_has_ended(today, expected):
    assert expected_month(today) == expected


def test_fresh_data_review_their_last_month_without_a_word(small):
    assert choose_month(small, today="2024-05-01") == ("2024-04", [])
    assert choose_month(small, today="2024-05-31", require_fresh=True) == ("2024-04", [])


def test_stale_data_warn_and_fail_when_freshness_is_required(small):
    month, warnings = choose_month(small, today="2024-07-02")
    assert month == "2024-04" and len(warnings) == 1
    assert "the data end on 2024-04-30" in warnings[0] and "2024-06 has ended" in warnings[0]
    with pytest.raises(StaleDataError, match="--require-fresh") as info:
        choose_month(small, today="2024-07-02", require_fresh=True)
    assert info.value.exit_code == 2


def test_data_dated_after_today_never_pick_a_month_that_has_not_ended(small):
    month, warnings = choose_month(small, today="2024-03-15")
    assert month == "2024-02" and "after today (2024-03-15)" in warnings[0]


def test_the_cron_line_with_require_fresh_fails_on_stale_data_and_publishes_nothing(tmp_path, small, capsys):
    db = tmp_path / "w.duckdb"
    Warehouse(db).ingest(small)
    out = tmp_path / "reports"
    assert main(["review", "--db", str(db), "--out", str(out), "--require-fresh"]) == 2
    err = capsys.readouterr().err
    assert "the data end on 2024-04-30" in err and "nothing was reviewed" in err and "Traceback" not in err
    assert not out.exists()
