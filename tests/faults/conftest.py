"""Shared pieces of the fault suite: warehouses, a published month, ``spm`` processes, checks.

Two warehouses of the same small organisation (6 agents, 2 years, month 2024-11) differ in one
deal's amount, so a review of the second is a new run of the same month. A month published from
the first is built once per session and copied for each test.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from spm_models.data.validation import validate
from spm_models.data.warehouse import Warehouse
from spm_models.review.pipeline import run_review
from spm_models.synthetic.generator import generate_organisation

MONTH = "2024-11"
#: Reports of three agents per run (the fit is the organisation's): enough to kill a run between
#: reports, few enough to keep the suite to minutes.
AGENTS = "A0001,A0002,A0003"


def pytest_collection_modifyitems(items):
    for item in items:
        item.add_marker(pytest.mark.faults)


def _shared(tmp_path_factory, name: str, build) -> Path:
    """A folder built once per test session, shared by the pytest-xdist workers (the first builds it)."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    folder, done = base / name, base / f"{name}.done"
    try:
        os.close(os.open(base / f"{name}.lock", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:  # another worker builds it
        deadline = time.monotonic() + 600
        while not done.exists():
            assert time.monotonic() < deadline, f"{name} was not built"
            time.sleep(0.2)
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    build(folder)
    done.touch()
    return folder


def _build_warehouses(folder: Path) -> None:
    ds = validate(generate_organisation(6, years=2, seed=5).dataset)
    Warehouse(folder / "v1.duckdb").ingest(ds)
    opp = ds.tables["opportunities"].copy()
    won = opp.index[opp["outcome"] == "won"][-1]
    opp.loc[won, "amount"] = opp.loc[won, "amount"] + 1
    ds.tables["opportunities"] = opp
    Warehouse(folder / "v2.duckdb").ingest(ds)


@pytest.fixture(scope="session")
def warehouses(tmp_path_factory) -> tuple[Path, Path]:
    """(v1, v2): the same organisation, v2 with one won deal's amount changed."""
    folder = _shared(tmp_path_factory, "faults-warehouses", _build_warehouses)
    return folder / "v1.duckdb", folder / "v2.duckdb"


@pytest.fixture(scope="session")
def published_template(tmp_path_factory, warehouses) -> Path:
    """A reports folder holding month 2024-11 published from v1 (three agents' reports)."""

    def build(folder: Path) -> None:
        result = run_review(
            db=warehouses[0],
            month=MONTH,
            out=folder / "reports",
            workers=2,
            agents=AGENTS.split(","),
            progress=False,
            log=open(os.devnull, "w"),
        )
        assert result.exit_code == 0

    return _shared(tmp_path_factory, "faults-published", build) / "reports"


@pytest.fixture
def reports(tmp_path, published_template) -> Path:
    """A fresh copy of the published reports folder."""
    root = tmp_path / "reports"
    shutil.copytree(published_template, root, symlinks=True)
    return root


def _ctrl_c_as_in_a_terminal() -> None:
    # A test run started in the background (`make test-faults &`, nohup, a CI runner) inherits
    # SIGINT ignored, and Python then keeps ignoring it: Ctrl-C could not reach `spm`. The
    # runs here get the default disposition, as a command started from a terminal has.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def spm(*args: str, **kwargs) -> subprocess.Popen:
    """Start ``spm`` (the real entry point) with stderr piped as text, Ctrl-C as in a terminal."""
    return subprocess.Popen(
        [sys.executable, "-m", "spm_models.cli", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_ctrl_c_as_in_a_terminal,
        **kwargs,
    )


def review(db: Path, root: Path, *extra: str, workers: int = 2) -> subprocess.Popen:
    """``spm review`` of the month for three agents. ``workers=1`` runs the reports one after
    another, so a test that signals the run after the first report has a few seconds before the
    others finish (with two they can all end in the same second on a fast machine)."""
    return spm(
        "review", "--db", db, "--out", root, "--month", MONTH, "--workers", str(workers), "--agents", AGENTS, *extra
    )


#: A progress line of ``spm review`` off a terminal: its UTC time, then ``stage=`` or ``report=``.
PROGRESS = re.compile(r"^(?:\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ )?(stage|report)=")


def is_progress(line: str, kind: str = "") -> bool:
    """Whether ``line`` is a progress line (of ``kind``, ``"report"`` or ``"stage"``, when given)."""
    m = PROGRESS.match(line)
    return bool(m) and (not kind or m.group(1) == kind)


def wait_for_reports(proc: subprocess.Popen, n: int, lines: list[str]) -> None:
    """Read stderr until ``n`` report lines have come (or the process ended)."""
    seen = 0
    for line in proc.stderr:
        lines.append(line)
        if is_progress(line, "report"):
            seen += 1
            if seen >= n:
                return
    raise AssertionError(f"the run ended before {n} reports:\n" + "".join(lines))


def finish(proc: subprocess.Popen, lines: list[str], timeout: float = 300) -> tuple[int, str]:
    """Wait for ``proc``; its exit code and all its stderr."""
    _, rest = proc.communicate(timeout=timeout)
    return proc.returncode, "".join(lines) + rest


def family(pid: int) -> list[psutil.Process]:
    """The processes a run started (fork server, kernels), to check none outlives it."""
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def all_gone(processes: list[psutil.Process], timeout: float = 20) -> list[psutil.Process]:
    """Wait until every process has ended; those still running after ``timeout``."""
    _, alive = psutil.wait_procs(processes, timeout=timeout)
    return [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]


def digest(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder``, by relative path."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def leftovers(root: Path) -> list[str]:
    """Temporary files, staging folders and set-aside months anywhere under ``root``."""
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if ".tmp" in p.name or p.name.endswith(".staging") or ".old-" in p.name
    )


def kill(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, sig)


@contextlib.contextmanager
def tmpfs(path: Path, size_mb: int, *, read_only: bool = False):
    """A small in-memory file system at ``path`` (needs the right to mount; skipped otherwise)."""
    path.mkdir(parents=True, exist_ok=True)
    opts = f"size={size_mb}m" + (",ro" if read_only else "")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a {size_mb} MiB tmpfs here ({proc.stderr.strip() or 'not permitted'}): run as root")
    try:
        yield path
    finally:
        for _ in range(20):  # processes of the test may still be closing files
            if subprocess.run(["umount", str(path)], capture_output=True).returncode == 0:
                break
            time.sleep(0.5)


def remount_read_only(path: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True, capture_output=True)


@pytest.fixture(scope="session")
def kit():
    """The helpers above, for the tests (conftest modules are not importable by name)."""
    import types

    names = [
        "spm",
        "review",
        "wait_for_reports",
        "is_progress",
        "finish",
        "family",
        "all_gone",
        "digest",
        "leftovers",
        "kill",
    ]
    names += ["tmpfs", "remount_read_only"]
    return types.SimpleNamespace(MONTH=MONTH, AGENTS=AGENTS, **{n: globals()[n] for n in names})
