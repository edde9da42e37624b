"""The runner under failure: a kernel that dies at start-up is started again once; a full disk
stops the whole run with one error and leaves the published month as it was.

The fault suite (tests/faults) fills a real disk; here the full disk is simulated where the
runner writes a page, so the behaviour is checked in the default suite too.
"""

from __future__ import annotations

import errno
import hashlib
import io
import socket
from pathlib import Path

import pytest
from jupyter_client.provisioning import local_provisioner

from spm_models.data.validation import validate
from spm_models.exceptions import DiskFullError
from spm_models.review import runner
from spm_models.review.pipeline import run_review
from spm_models.review.settings import ReviewConfig
from spm_models.synthetic.generator import generate_organisation

# What these tests check is the runner's, not the forecast's: the cheapest model, no recalibration.
CHEAP = ReviewConfig(model="CalendarBaseline", recalibrate=False, n_draws=100)


@pytest.fixture(scope="module")
def org():
    return validate(generate_organisation(6, years=2, seed=5).dataset)


def test_a_kernel_that_dies_before_its_first_cell_is_started_again_once(org, tmp_path, monkeypatch, kernel="fork"):
    """What made a 23-agent review fail once with "Kernel died before replying to kernel_info":
    the kernel manager picks ports by binding and releasing them, and one was taken before the
    kernel bound it. Here the first port handed out is one a socket of this test holds. (The
    same with plain kernels is in tests/faults/test_kernel_start.py.)"""
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen()
    real = local_provisioner.LocalPortCache.find_available_port
    calls = []

    def first_one_taken(self, ip):
        calls.append(ip)
        return held.getsockname()[1] if len(calls) == 1 else real(self, ip)

    monkeypatch.setattr(local_provisioner.LocalPortCache, "find_available_port", first_one_taken)
    try:
        res = run_review(
            dataset=org,
            config=CHEAP,
            out=tmp_path,
            agents=["A0001"],
            workers=1,
            kernel=kernel,
            progress=False,
            log=io.StringIO(),
        )
    finally:
        held.close()
    (entry,) = res.manifest["reports"]
    assert entry["status"] == "ok" and entry["kernel_starts"] == 2, entry
    assert len(calls) == 10  # five ports for each of the two kernels


def test_a_full_disk_stops_the_run_once_and_keeps_the_published_month(org, tmp_path, monkeypatch):
    log = io.StringIO()
    first = run_review(
        dataset=org, config=CHEAP, out=tmp_path, agents=["A0001", "A0002", "A0003"], workers=1, progress=False, log=log
    )
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in first.run_folder.rglob("*") if p.is_file()}
    real = runner.write_atomic
    pages = []

    def full_after_one_page(path, data):
        if Path(path).suffix == ".html":
            pages.append(path)
            if len(pages) > 1:
                raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, data)

    monkeypatch.setattr(runner, "write_atomic", full_after_one_page)
    log = io.StringIO()
    with pytest.raises(DiskFullError) as info:
        run_review(
            dataset=org,
            config=CHEAP,
            out=tmp_path,
            agents=["A0001", "A0002", "A0003"],
            workers=1,
            force=True,
            progress=False,
            log=log,
        )
    message = str(info.value)
    assert (
        "is full" in message and f"the published {first.month} (run {first.manifest['run_id']}) is unchanged" in message
    )
    assert info.value.exit_code == 1
    # one error: the reports after the first full write are not reported one by one
    assert "No space" not in log.getvalue() and log.getvalue().count("status=failed") == 0
    after = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in first.run_folder.rglob("*") if p.is_file()}
    assert after == before
    assert not [p for p in tmp_path.rglob("*") if ".tmp" in p.name or p.name.endswith(".staging")]


def test_the_notebook_is_written_when_the_run_starts_and_ends_with_every_output(tmp_path, monkeypatch):
    """The runner's papermill engine writes a report's notebook twice (papermill: about 60
    times), and the last write holds every output, the failing cell's error included."""
    import nbformat
    import papermill
    from papermill import engines

    writes = []
    real = engines.write_ipynb
    monkeypatch.setattr(engines, "write_ipynb", lambda nb, path: (writes.append(path), real(nb, path)))
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
            nbformat.v4.new_markdown_cell("text"),
            nbformat.v4.new_code_cell("print(x + 1)"),
            nbformat.v4.new_code_cell("raise ValueError('the third cell')"),
        ],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    )
    out = tmp_path / "out.ipynb"
    with pytest.raises(papermill.PapermillExecutionError):
        papermill.execute_notebook(
            nb, str(out), engine_name=runner._engine(), parameters={"x": 41}, progress_bar=False, kernel_name="python3"
        )
    assert len(writes) == 2
    cells = [c for c in nbformat.read(out, as_version=4).cells if c.cell_type == "code"]
    assert cells[-2].outputs[0]["text"] == "42\n"
    assert cells[-1].outputs[0]["ename"] == "ValueError"
