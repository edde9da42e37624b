"""The real ``spm`` entry point, in its own process: messages and exit codes, never a traceback.

tests/test_cli_errors.py and tests/data/test_bad_inputs.py run every case in-process; these run a
sample the way cron and a shell do, so the exit code is the process's and stderr is all there is.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

GOOD = Path(__file__).resolve().parents[1] / "data" / "good_small"


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["ingest", "{tmp}/missing"], 2, "missing"),
        (["ingest", str(GOOD), "--encoding", "rot13", "--db", "{tmp}/w.duckdb"], 2, "not a text encoding"),
        (["kpis", "--db", "{tmp}/none.duckdb"], 2, "spm ingest"),
        (["review", "--db", "{tmp}/none.duckdb"], 2, "spm ingest"),
        (["review", "--month", "2024-13", "--db", "{tmp}/none.duckdb"], 2, "2024-13"),
        (["demo-data", "--agents", "3"], 2, "--agents"),
    ],
)
def test_errors_are_one_message_with_their_exit_code(kit, tmp_path, args, code, words):
    rc, err = kit.finish(kit.spm(*[a.replace("{tmp}", str(tmp_path)) for a in args]), [], timeout=120)
    assert rc == code and words in err and "Traceback" not in err, err


def test_a_named_pipe_given_as_a_mapping_is_refused_at_once(kit, tmp_path):
    """Reading it used to block forever (a cron job that never ends); SIGTERM is tested in test_kills."""
    fifo = tmp_path / "mapping.toml"
    os.mkfifo(fifo)
    rc, err = kit.finish(kit.spm("ingest", fifo, "--db", tmp_path / "w.duckdb"), [], timeout=60)
    assert rc == 2 and "named pipe" in err and "Traceback" not in err, err
