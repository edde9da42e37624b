"""Fork-server kernels: fast to start, and no state of one report reaches the next."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from pathlib import Path

import papermill
import pyarrow.parquet as pq
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from spm_models.exceptions import ConfigError, ReportError
from spm_models.review.kernels import mode
from spm_models.review.kernels.client import ForkServer
from spm_models.review.kernels.provisioner import fork_kernel_manager_class

PRELOAD = (
    "numpy",
    "pandas",
    "matplotlib",
    "IPython",
    "ipykernel.kernelapp",
    "ipykernel.ipkernel",
    "ipykernel.zmqshell",
    "ipykernel.debugger",
)
HERE = Path(__file__).resolve().parent
META = {"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}}

# The first notebook changes every kind of process state it can reach...
DIRTY = """
import os, sys, json, matplotlib, numpy as np
LEAKED_GLOBAL = 42
json.LEAKED_ATTRIBUTE = 1
matplotlib.rcParams["lines.linewidth"] = 9.0
os.environ["SPM_LEAKED"] = "1"
sys.modules["leaked_module"] = json
np.random.seed(123); np.random.random(5)
print(os.getpid())
"""
# ...and the next one, in a fresh kernel, must find none of it.
CLEAN = """
import os, sys, json, matplotlib
assert "LEAKED_GLOBAL" not in globals()
assert not hasattr(json, "LEAKED_ATTRIBUTE")
assert matplotlib.rcParams["lines.linewidth"] != 9.0
assert "SPM_LEAKED" not in os.environ
assert "leaked_module" not in sys.modules
print(os.getpid())
"""


def _nb(code):
    return new_notebook(
        cells=[new_code_cell("x = 0", metadata={"tags": ["parameters"]}), new_code_cell(code)], metadata=META
    )


@pytest.fixture(scope="module")
def server():
    with ForkServer(preload=PRELOAD) as s:
        yield s


def _run(server, nb, tmp_path, name):
    km = fork_kernel_manager_class(server)
    out = papermill.execute_notebook(
        nb,
        str(tmp_path / f"{name}.ipynb"),
        parameters={"x": 1},
        kernel_manager_class=km,
        progress_bar=False,
        request_save_on_cell_execute=False,
        shutdown_kernel="immediate",
    )
    return int(out.cells[-1].outputs[0]["text"].strip())


def test_no_state_leaks_between_reports(server, tmp_path):
    pids = [_run(server, _nb(DIRTY), tmp_path, "dirty")]
    pids += [_run(server, _nb(CLEAN), tmp_path, f"clean{i}") for i in range(2)]
    assert len(set(pids)) == 3, "every report gets its own kernel process"


def test_a_forked_kernel_has_the_servers_settings(server, tmp_path):
    """The settings a forked kernel is given as configuration, not parsed from a command line,
    hold in it: no history database, quiet, the server as its parent, its own connection file."""
    code = (
        "import json, os\n"
        "from ipykernel.kernelapp import IPKernelApp\n"
        "app = IPKernelApp.instance()\n"
        "assert get_ipython().history_manager.enabled is False\n"
        "assert app.quiet is True and app.parent_handle == os.getppid(), (app.quiet, app.parent_handle)\n"
        "info = json.load(open(app.connection_file))\n"
        "assert (info['shell_port'], info['key']) == (app.shell_port, app.session.key.decode()), info\n"
        "print(os.getpid())"
    )
    assert _run(server, _nb(code), tmp_path, "settings") > 0


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    """A small run's artifacts (no recalibration, few draws): what production forks kernels over."""
    from spm_models.data.validation import validate
    from spm_models.review.artifacts import build_artifacts
    from spm_models.review.outlook import default_month
    from spm_models.review.settings import ReviewConfig
    from spm_models.synthetic.generator import generate_organisation

    ds = validate(generate_organisation(5, years=2, seed=5).dataset)
    root = tmp_path_factory.mktemp("kernel-run")
    out = root / "artifacts"
    config = ReviewConfig(model="CalendarBaseline", recalibrate=False, n_draws=100)
    build_artifacts(ds, month=default_month(ds), out_dir=out, config=config, runs_root=root)
    return out


def test_the_production_server_forks_without_python_threads_and_counts_its_kernels(artifacts, tmp_path):
    """The set-up :func:`execute_reports` starts: every module of KERNEL_PRELOAD and the run's
    artifacts in memory. No Python thread may exist when it forks (a lock it held would stay
    held in every kernel). Reading the artifacts leaves Arrow's native pools running; a kernel
    forked from it must still read parquet with Arrow's threads."""
    with ForkServer(run_dir=artifacts) as production:
        assert production.python_threads == 1
        code = (
            "import pyarrow.parquet as pq\n"
            "from spm_models.review import views\n"
            f"run = views.load_run({str(artifacts)!r})\n"
            f"table = pq.read_table({str(artifacts / 'agents.parquet')!r}, use_threads=True)\n"
            "print(len(run['agents']), table.num_rows)"
        )
        km = fork_kernel_manager_class(production)
        out = papermill.execute_notebook(
            _nb(code),
            str(tmp_path / "production.ipynb"),
            parameters={"x": 1},
            kernel_manager_class=km,
            progress_bar=False,
            request_save_on_cell_execute=False,
            shutdown_kernel="immediate",
        )
        n = str(pq.read_metadata(artifacts / "agents.parquet").num_rows)
        assert out.cells[-1].outputs[0]["text"].split() == [n, n]
        st = production.stats()
        assert st["kernels"] == 1 and st["cpu_user"] > 0


def test_the_servers_imports_leave_out_what_only_the_artifacts_builder_needs():
    """A kernel server imports what reports use, once per run; the warehouse (duckdb), validation
    (pandera) and the models' compiled density (numba) are the artifacts builder's, and cost a
    kernel server most of a CPU second between them when the views imported the builder."""
    import subprocess
    import sys

    code = (
        "import importlib, sys\n"
        "from spm_models.review.kernels.server import KERNEL_PRELOAD\n"
        "for name in KERNEL_PRELOAD: importlib.import_module(name)\n"
        "print(','.join(sorted({m.split('.')[0] for m in sys.modules} & {'duckdb', 'pandera', 'numba'})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_a_failing_cell_is_reported_and_the_server_survives(server, tmp_path):
    with pytest.raises(papermill.PapermillExecutionError, match="ZeroDivisionError"):
        _run(server, _nb("1 / 0"), tmp_path, "boom")
    assert _run(server, _nb("import os\nprint(os.getpid())"), tmp_path, "after") > 0


def test_the_watchdog_learns_the_kernel_pid_in_the_reporting_thread(server, tmp_path):
    import threading

    from spm_models.review import runner

    km = fork_kernel_manager_class(server, on_launch=runner._record_pid)
    seen = {}

    def work():
        with runner._Watchdog(600) as dog:
            out = papermill.execute_notebook(
                _nb("import os\nprint(os.getpid())"),
                str(tmp_path / "w.ipynb"),
                parameters={"x": 1},
                kernel_manager_class=km,
                progress_bar=False,
                request_save_on_cell_execute=False,
            )
            seen["pid"], seen["box"] = int(out.cells[-1].outputs[0]["text"]), dict(dog.box)

    t = threading.Thread(target=work)
    t.start()
    t.join(120)
    assert seen["box"]["pid"] == seen["pid"]


# ------------------------------------------------------------- the server's own robustness


@contextlib.asynccontextmanager
async def _kernel(server):
    """A running fork-server kernel and a client connected to it."""
    km = fork_kernel_manager_class(server)()
    await km.start_kernel()
    kc = km.client()
    kc.start_channels()
    try:
        await kc.wait_for_ready(timeout=60)
        yield km, kc
    finally:
        kc.stop_channels()
        if await km.is_alive():
            await km.shutdown_kernel(now=True)
        else:
            await km.cleanup_resources()


async def _output(kc, code: str) -> str:
    """What ``code`` prints in the kernel."""
    out = []

    def hook(msg):
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])

    reply = await kc.execute_interactive(code, output_hook=hook, timeout=60)
    assert reply["content"]["status"] == "ok", reply["content"]
    return "".join(out).strip()


def test_a_kernel_that_cannot_start_is_an_error_and_its_siblings_live_on(server, tmp_path):
    async def go():
        async with _kernel(server) as (_, kc):
            missing = tmp_path / "no-such-folder"
            with pytest.raises(ReportError, match="no-such-folder"):
                server.fork_kernel(str(tmp_path / "kernel.json"), cwd=missing)
            # the failed child did not take its sibling (or the server) down with it
            assert await _output(kc, "print(6 * 7)") == "42"
        assert await _with_new_kernel(server, "print(1)") == "1"

    asyncio.run(go())


async def _with_new_kernel(server, code):
    async with _kernel(server) as (_, kc):
        return await _output(kc, code)


def test_a_killed_kernel_reads_as_killed_and_an_exit_code_as_itself(server):
    async def go():
        async with _kernel(server) as (km, _):
            os.kill(km.provisioner.pid, signal.SIGKILL)
            assert await km.provisioner.wait() == -signal.SIGKILL
        async with _kernel(server) as (km, kc):
            kc.execute("import os; os._exit(3)")
            assert await km.provisioner.wait() == 3

    asyncio.run(go())


def test_a_reaped_kernel_reads_as_dead_even_when_its_pid_is_taken(server, monkeypatch):
    """The kernel's pid is reaped, then (simulated) reused: ``kill(pid, 0)`` succeeds again.

    Real pid reuse cannot be forced in a test; this shows that liveness is not read from the
    pid at all, so a reused pid cannot make a dead kernel look alive.
    """

    async def go():
        async with _kernel(server) as (km, _):
            pid = km.provisioner.pid
            ended = server.stats()["kernels"]
            os.kill(pid, signal.SIGKILL)
            for _ in range(1200):  # until the server has reaped it (at most a minute)
                if server.stats()["kernels"] > ended:
                    break
                await asyncio.sleep(0.05)
            assert server.stats()["kernels"] > ended, "the server did not reap the killed kernel"
            real_kill = os.kill

            def kill(p, sig):
                if p == pid and sig == 0:
                    return  # someone else has this pid now
                real_kill(p, sig)

            monkeypatch.setattr(os, "kill", kill)
            assert not await km.is_alive()

    asyncio.run(go())


def test_the_server_keeps_serving_whatever_it_writes_to_stderr(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(HERE))
    with ForkServer(preload=("_stderr_flood",)) as s:
        os.kill(s.process.pid, signal.SIGUSR1)  # the server writes 2 MiB to its stderr
        assert s.stats()["kernels"] == 0


def test_a_server_that_cannot_start_says_why():
    with pytest.raises(ReportError, match="no_such_module_anywhere"):
        ForkServer(preload=("no_such_module_anywhere",)).start()


def test_a_client_that_sends_nothing_is_dropped_and_others_are_served():
    with ForkServer(preload=(), request_timeout=0.5) as s:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as silent:
            silent.connect(s.address)
            assert s.stats()["kernels"] == 0  # answered although the silent client came first
            silent.settimeout(60)
            assert silent.recv(1) == b"", "the server closes the silent connection"


def test_a_stock_kernel_manager_gets_a_forked_kernel_through_the_provisioner_entry_point(server):
    """No subclass, no private hook: jupyter_client's own manager, the server's kernel spec, the
    provisioner found by its entry point."""
    from importlib.metadata import entry_points

    from jupyter_client import AsyncKernelManager
    from jupyter_client.kernelspec import KernelSpecManager

    from spm_models.review.kernels.client import FORK_KERNEL_NAME, FORK_PROVISIONER_NAME
    from spm_models.review.kernels.provisioner import ForkProvisioner

    (ep,) = entry_points(group="jupyter_client.kernel_provisioners", name=FORK_PROVISIONER_NAME)
    assert ep.load() is ForkProvisioner
    specs = KernelSpecManager(kernel_dirs=[server.kernel_dir])
    spec = specs.get_kernel_spec(FORK_KERNEL_NAME)
    assert spec.metadata["kernel_provisioner"] == {
        "provisioner_name": FORK_PROVISIONER_NAME,
        "config": {"server_address": server.address},
    }

    async def go():
        km = AsyncKernelManager(kernel_spec_manager=specs, kernel_name=FORK_KERNEL_NAME)
        await km.start_kernel()
        kc = km.client()
        kc.start_channels()
        try:
            await kc.wait_for_ready(timeout=60)
            assert isinstance(km.provisioner, ForkProvisioner)
            assert await _output(kc, "import os; print(os.getppid())") == str(server.process.pid)
        finally:
            kc.stop_channels()
            await km.shutdown_kernel(now=True)

    asyncio.run(go())


# ------------------------------------------------------------------ fork, plain or auto


def test_auto_falls_back_to_plain_kernels_with_one_line_where_fork_is_missing(monkeypatch):
    monkeypatch.setattr(mode, "fork_available", lambda: False)
    chosen, warning = mode.resolve_kernel_mode("auto")
    assert chosen == "plain" and "plain kernels" in warning and "\n" not in warning
    assert mode.resolve_kernel_mode("plain") == ("plain", None)
    with pytest.raises(ConfigError, match="kernels='fork' needs os.fork on Linux.*'auto' or 'plain'"):
        mode.resolve_kernel_mode("fork")
    monkeypatch.setattr(mode, "fork_available", lambda: True)
    assert mode.resolve_kernel_mode("auto") == ("fork", None)
    with pytest.raises(ConfigError, match="one of 'auto', 'fork', 'plain'; got 'spawn'"):
        mode.resolve_kernel_mode("spawn")


def test_a_review_without_fork_runs_its_reports_in_plain_kernels(artifacts, tmp_path, monkeypatch):
    import io

    from spm_models.review.pipeline import plan_reports
    from spm_models.review.runner import execute_reports
    from spm_models.review.views import load_run

    def no_server(self):
        raise AssertionError("no kernel server may start where fork is not available")

    monkeypatch.setattr(mode, "fork_available", lambda: False)
    monkeypatch.setattr(ForkServer, "start", no_server)
    run = load_run(artifacts)
    task = next(t for t in plan_reports(run.tables, artifacts) if t.kind == "agent")
    log = io.StringIO()
    results, setup = execute_reports([task], run_folder=tmp_path / "run", artifacts_dir=artifacts, log=log)
    assert [r.status for r in results] == ["ok"], results[0].error
    assert "kernel_server_start" not in setup
    assert log.getvalue().count("\n") == 1 and log.getvalue().startswith("warning: report kernels cannot be forked")


def test_the_kernels_setting_is_checked_and_does_not_change_the_run(tmp_path):
    from spm_models.review.settings import ReviewConfig, load_config

    with pytest.raises(ConfigError, match="kernels must be one of 'auto', 'fork', 'plain', got 'forks'"):
        ReviewConfig(kernels="forks")
    assert ReviewConfig().kernels == "auto"
    assert ReviewConfig(kernels="plain").key() == ReviewConfig().key()
    f = tmp_path / "review.toml"
    f.write_text('kernels = "plain"\n')
    assert load_config(f).kernels == "plain" and load_config(f, kernels="fork").kernels == "fork"


def test_spm_review_takes_kernels(capsys):
    from spm_models.cli import main

    assert main(["review", "--help"]) == 0
    assert "--kernels" in capsys.readouterr().out
    assert main(["review", "--kernels", "spawn"]) == 2
    assert "kernels must be one of 'auto', 'fork', 'plain', got 'spawn'" in capsys.readouterr().err


#: Modules a report's own cells may still import in its kernel (each a few milliseconds, private
#: to its library or loaded by the standard library on first use).
LAZY_ALLOWED = {"pandas.core.reshape.reshape", "IPython.core.logger", "encodings.unicode_escape"}


@pytest.mark.slow
def test_report_cells_import_nothing_the_fork_server_did_not(artifacts, tmp_path):
    """Every module a report's cells import in its kernel is paid for again by every report;
    KERNEL_PRELOAD imports them once. Each template runs with a first cell that notes the
    kernel's modules and a last one that prints what the report's cells added."""
    import json

    import nbformat

    from spm_models.review.params import template_path
    from spm_models.review.pipeline import plan_reports
    from spm_models.review.runner import execute_reports
    from spm_models.review.views import load_run

    folder = tmp_path / "templates"
    folder.mkdir()
    for name in ("agent_report", "territory_report", "monthly_review"):
        nb = nbformat.read(template_path(name), as_version=4)
        nb.cells.insert(1, new_code_cell("import sys\n_spm_before = set(sys.modules)"))
        nb.cells.append(new_code_cell("import json\nprint(json.dumps(sorted(set(sys.modules) - _spm_before)))"))
        nbformat.write(nb, folder / f"{name}.ipynb")
    tasks = plan_reports(load_run(artifacts).tables, artifacts)
    chosen = [next(t for t in tasks if t.kind == kind) for kind in ("agent", "territory", "monthly")]
    run = tmp_path / "run"
    results, _ = execute_reports(chosen, run_folder=run, artifacts_dir=artifacts, templates_dir=folder, kernel="fork")
    assert [r.status for r in results] == ["ok"] * 3, [r.error for r in results]
    for task in chosen:
        last = nbformat.read(run / task.notebook, as_version=4).cells[-1]
        added = set(json.loads(last.outputs[0]["text"]))
        assert added <= LAZY_ALLOWED, (
            f"{task.template} imports {sorted(added - LAZY_ALLOWED)}: add them to KERNEL_PRELOAD"
        )
