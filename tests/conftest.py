"""Test-session settings shared by every folder, and shared fixtures built once per session.

The fault suite (``tests/faults``: runs killed, disks filled, folders made read-only) is run by
``make test-faults`` and CI, not by the default ``pytest`` run: it is collected only when named
on the command line (``pytest tests/faults``) or when ``SPM_FAULTS=1``.

The shared fixtures are read-only:

``small_org``
    One small synthetic organisation (6 agents, 2 years, seed 4: two territories, agent A0005
    left in May 2023 and A0006 was hired in June; the data end on Sunday 2024-12-29, so its
    review month is 2024-11 and the review has five agents, A0001-A0004 and A0006).
``small_dataset``
    The same organisation validated, as a warehouse or a review reads it, with hostile agent
    and territory names (``HOSTILE_NAMES``, ``HOSTILE_ID``, ``HOSTILE_TERRITORY``), so that
    everything built on it meets markup, paths and emoji in names. ``small_org.dataset`` has
    the generator's plain names.
``small_warehouse``
    A DuckDB warehouse file holding ``small_dataset`` (what ``SPM_WAREHOUSE`` or ``--db`` take).
``review_run``
    One monthly review (``run_review``) of ``small_dataset``: artifacts, every report, index
    and manifest on disk, and what an immediate second run of the same month did
    (``ReviewRun.rerun``). Its settings (``ReviewRun.config``) are the defaults (the model
    chosen per level, ``auto``) plus a commission plan (``DEFAULT_PLAN``), since reports show
    a commission section only when a plan is configured; its freshness is judged on the day
    after the data end, so the data are fresh and the progress log holds no warning.
``execute_notebooks`` and ``execute_notebook``
    Run notebooks, every cell, in an ordinary Jupyter kernel (``python3``, nothing preloaded)
    driven from this process: what ``pytest --nbval-lax`` checks, without starting another
    pytest for it. The first runs a group of notebooks in one kernel, the second gives a
    notebook a kernel of its own.

Read-only means read-only: a test that needs to change one of them copies it first. Each
fixture fingerprints what it hands out and checks the fingerprint again at the end of the
session, so a test that modifies one in place fails there (an error at teardown naming the
fixture) instead of changing what later tests see.

The organisation and the warehouse take a fraction of a second and are built once per
pytest-xdist worker. The review run is the costliest fixture (the model choice's backtest, a
model fit, a kernel server, eight report kernels and their HTML), so it is built once per
session: the first worker that needs it builds it under a lock in the folder all workers share,
the other waits and reads it from disk. (``xdist_group`` with ``--dist loadgroup`` would keep
its tests on one worker instead, but with pytest 9.2 and pytest-xdist 3.8 the grouping silently
does nothing, pytest-dev/pytest-xdist#1386.)
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

FAULTS = Path(__file__).resolve().parent / "faults"

if TYPE_CHECKING:  # the package is imported by the fixtures, not when pytest loads this file
    import pandas as pd

    from spm_models.data.dataset import Dataset
    from spm_models.review.settings import ReviewConfig
    from spm_models.synthetic.generator import SyntheticOrg

SMALL_ORG = {"n_agents": 6, "years": 2, "seed": 4}

# The review run's names, all on agents in the review: markup, a path, dollar signs (MathJax
# and LaTeX), emoji; one agent id that is itself a path with markup, and a territory name with
# markup and quotes.
HOSTILE_NAMES = {
    "A0001": "<script>alert(1)</script>",
    "A0002": "../../etc/passwd",
    "A0003": "$$ Money $ Maker $",
    "A0004": "Zoë 🚀 Ünïcode",
}
HOSTILE_ID = ("A0006", "../x/<b>6</b>")
HOSTILE_TERRITORY = ("T01", '<i>North</i> & "South"')


# ---------------------------------------------------------------------------- the fault suite


def _names_faults(config) -> bool:
    here = Path(config.invocation_params.dir)
    for arg in config.args:
        path = (here / arg.split("::")[0]).resolve()
        if path == FAULTS or FAULTS in path.parents:
            return True
    return False


def pytest_ignore_collect(collection_path, config):
    path = Path(collection_path).resolve()
    if (path == FAULTS or FAULTS in path.parents) and os.environ.get("SPM_FAULTS") != "1" and not _names_faults(config):
        return True
    return None


# ---------------------------------------------------------------------------- read-only guard


def _frames_digest(frames: Mapping[str, pd.DataFrame]) -> str:
    """Hash of every frame's columns, dtypes, index and values, in order."""
    import pandas as pd

    h = hashlib.sha256()
    for name in sorted(frames):
        frame = frames[name]
        h.update(f"\x00{name}\x00{list(frame.columns)}\x00{[str(t) for t in frame.dtypes]}\x00".encode())
        h.update(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
    return h.hexdigest()


def _dataset_digest(dataset: Dataset) -> str:
    return _frames_digest(dataset.tables) + repr(sorted(dataset.refs)) + dataset.source


def _org_digest(org: SyntheticOrg) -> str:
    truth = {n: getattr(org.truth, n) for n in ("agents", "agent_weeks", "indicator_effects")}
    params = json.dumps(org.truth.params, sort_keys=True, default=str)
    return _dataset_digest(org.dataset) + _frames_digest(truth) + params


def _tree_digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _unchanged(fixture: str, before, after) -> None:
    if before != after:
        changed = ""
        if isinstance(before, dict):
            names = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
            changed = ": " + ", ".join(names[:10])
        pytest.fail(
            f"a test modified the shared fixture {fixture!r}{changed}; "
            "shared fixtures are read-only, copy one before changing it",
            pytrace=False,
        )


# ---------------------------------------------------------------------------- organisation


@pytest.fixture(scope="session")
def small_org() -> Iterator[SyntheticOrg]:
    """The small synthetic organisation with its ground truth (read-only)."""
    from spm_models.synthetic.generator import generate_organisation

    org = generate_organisation(**SMALL_ORG)
    before = _org_digest(org)
    yield org
    _unchanged("small_org", before, _org_digest(org))


@pytest.fixture(scope="session")
def small_dataset(small_org) -> Iterator[Dataset]:
    """``small_org`` validated, with hostile names: typed canonical tables (read-only)."""
    ds = hostile(small_org.dataset)
    before = _dataset_digest(ds)
    yield ds
    _unchanged("small_dataset", before, _dataset_digest(ds))


@pytest.fixture(scope="session")
def small_warehouse(tmp_path_factory, small_dataset) -> Iterator[Path]:
    """Path of a warehouse file holding ``small_dataset`` (read-only: copy it to ingest into it)."""
    from spm_models.data.warehouse import Warehouse

    path = tmp_path_factory.mktemp("small_warehouse") / "warehouse.duckdb"
    Warehouse(path).ingest(small_dataset)
    before = _tree_digest(path.parent)
    yield path
    _unchanged("small_warehouse", before, _tree_digest(path.parent))


@pytest.fixture(scope="session")
def plan_data() -> Iterator[Dataset]:
    """An 8-agent organisation over 2.5 years for the incentive plans' cost and backtest (read-only)."""
    from spm_models.synthetic.generator import generate_organisation

    ds = generate_organisation(8, years=2.5, seed=3).dataset
    before = _dataset_digest(ds)
    yield ds
    _unchanged("plan_data", before, _dataset_digest(ds))


@pytest.fixture(scope="session")
def plan_books() -> dict:
    """The two shipped example plan books: ``current`` (plans/example.toml) and ``draft``."""
    from spm_models.insights.incentives import load_plan_book
    from spm_models.insights.incentives.planfile import example_plan_file

    return {name: load_plan_book(example_plan_file(f)) for name, f in (("current", "example"), ("draft", "draft"))}


def hostile(dataset: Dataset) -> Dataset:
    """``dataset`` with the names of ``HOSTILE_NAMES``, ``HOSTILE_ID`` and ``HOSTILE_TERRITORY``, validated."""
    from spm_models.data.dataset import Dataset
    from spm_models.data.validation import validate

    t = {k: v.copy() for k, v in dataset.tables.items()}
    old, new = HOSTILE_ID
    for name in ("agents", "opportunities", "activities", "targets"):
        t[name]["agent_id"] = t[name]["agent_id"].replace({old: new})
    t["agents"]["agent_name"] = t["agents"]["agent_id"].map(HOSTILE_NAMES).fillna(t["agents"]["agent_name"])
    tid, tname = HOSTILE_TERRITORY
    terr = t["territories"]
    terr["territory_name"] = terr["territory_name"].where(terr["territory_id"] != tid, tname)
    return validate(Dataset(tables=t, source="small organisation with hostile names"))


# ---------------------------------------------------------------------------- review run


def _build_once(tmp_path_factory, name: str, build: Callable[[Path], None]) -> Path:
    """The folder ``name``, filled by ``build(folder)`` once per session, whatever the number of
    pytest-xdist workers: the first to get here builds it, the others wait for the lock."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the session's folder, which holds each worker's basetemp
    folder, done = base / name, base / f"{name}.done"
    with open(base / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or if this worker dies
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)  # left by a build that failed
            folder.mkdir()
            build(folder)
            done.touch()
    return folder


@dataclass(frozen=True)
class ReviewRun:
    """A finished review run, read from disk (``manifest`` and ``rerun`` are fresh dicts)."""

    root: Path  # holds progress.log, rerun.json and reports/<month>/
    dataset: Dataset  # small_dataset, which it reviewed
    config: ReviewConfig  # the settings it ran with (``review_config()``)

    @property
    def out(self) -> Path:
        """The reports root the run was written to (``run_review(out=...)``)."""
        return self.root / "reports"

    @property
    def run_folder(self) -> Path:
        """``reports/<month>``, the one month the run reviewed (beside ``.spm``, the runs' locks)."""
        (month,) = (p for p in self.out.iterdir() if p.is_dir() and not p.name.startswith("."))
        return month

    @property
    def artifacts(self) -> Path:
        return self.run_folder / "artifacts"

    @property
    def manifest(self) -> dict:
        return json.loads((self.run_folder / "manifest.json").read_text(encoding="utf-8"))

    @property
    def exit_code(self) -> int:
        return 1 if self.manifest["summary"]["failed"] else 0

    @property
    def rerun(self) -> dict:
        """What a second ``run_review`` of the same month, right after the first, did: the
        reports it ``executed``, its manifest ``summary``, ``artifacts_reused``, ``exit_code``,
        the files it ``changed`` and any ``temporary`` files it left (paths relative to ``root``)."""
        return json.loads((self.root / "rerun.json").read_text(encoding="utf-8"))


def review_config() -> ReviewConfig:
    """The shared review run's settings: the defaults and a commission plan (``DEFAULT_PLAN``)."""
    from spm_models.insights.commission import DEFAULT_PLAN
    from spm_models.review.settings import ReviewConfig

    return ReviewConfig(commission=DEFAULT_PLAN)


def _review_and_rerun(folder: Path, dataset: Dataset, config: ReviewConfig) -> None:
    """Review ``dataset`` into ``folder``, run it again, record what the second run did, and
    put back the first run's manifest.json and index.html, which the second run rewrites."""
    import pandas as pd

    from spm_models.review.outlook import data_last_day
    from spm_models.review.pipeline import run_review

    out = folder / "reports"
    # judged on the day after the data end, the data are fresh: no warning in the progress log
    run = dict(dataset=dataset, out=out, config=config, workers=2, progress=False)
    run["today"] = data_last_day(dataset) + pd.Timedelta(days=1)
    with open(folder / "progress.log", "w", encoding="utf-8") as log:
        first = run_review(**run, log=log)
    kept = {p: p.read_bytes() for p in (first.run_folder / "manifest.json", first.run_folder / "index.html")}
    before = _tree_digest(folder)
    with open(os.devnull, "w") as log:
        again = run_review(**run, log=log)
    after = _tree_digest(folder)
    record = {
        "executed": [r.report_id for r in again.executed],
        "summary": again.manifest["summary"],
        "artifacts_reused": again.manifest["artifacts_reused"],
        "exit_code": again.exit_code,
        "changed": sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p)),
        "temporary": sorted(p for p in after if ".tmp" in Path(p).name),
    }
    for path, content in kept.items():
        path.write_bytes(content)
    (folder / "rerun.json").write_text(json.dumps(record, indent=1), encoding="utf-8")


@pytest.fixture(scope="session")
def review_run(tmp_path_factory, small_dataset) -> Iterator[ReviewRun]:
    """The monthly review of ``small_dataset`` (read-only)."""
    ds, config = small_dataset, review_config()
    root = _build_once(tmp_path_factory, "review_run", lambda folder: _review_and_rerun(folder, ds, config))
    run = ReviewRun(root=root, dataset=ds, config=config)
    before = _tree_digest(root)
    yield run
    _unchanged("review_run", before, _tree_digest(root))


# ---------------------------------------------------------------------------- notebooks


# Run before each notebook in a shared kernel: forget every name the previous one made and
# close its figures, without importing anything the next one might then lean on.
_RESET = """%reset -f
import sys as _sys
if "matplotlib.pyplot" in _sys.modules:
    _sys.modules["matplotlib.pyplot"].close("all")
del _sys"""


def _execute_in_one_kernel(notebooks: Mapping[str, object], *, cwd: Path, env, timeout: int) -> dict:
    """Run each notebook of ``notebooks`` (name -> NotebookNode, executed in place) in one new
    ``python3`` kernel, its namespace reset before each; return name -> ``CellExecutionError``
    for the notebooks that raised."""
    import nbformat
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_core.utils import run_sync
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    km = AsyncKernelManager(kernel_name="python3")
    run_sync(km.start_kernel)(env={**os.environ, **(env or {})}, cwd=str(cwd))
    failures = {}
    try:
        for name, nb in notebooks.items():
            reset = nbformat.v4.new_code_cell(_RESET)
            nb.cells.insert(0, reset)
            client = NotebookClient(nb, km=km, timeout=timeout, resources={"metadata": {"path": str(cwd)}})
            try:
                client.execute()
            except CellExecutionError as error:
                failures[name] = error
            finally:
                nb.cells.remove(reset)
                if client.kc is not None:
                    client.kc.stop_channels()
    finally:
        run_sync(km.shutdown_kernel)(now=True)
    return failures


@pytest.fixture(scope="session")
def execute_notebooks() -> Callable:
    """``execute_notebooks({name: nb, ...}, cwd=..., env=...)`` runs every cell of each notebook,
    in order, in one new ordinary ``python3`` kernel (nothing preloaded, as JupyterLab starts
    one) started in ``cwd`` with ``env`` added to this process's environment, and returns
    ``{name: error}`` for the notebooks that raised (``nbclient``'s ``CellExecutionError``,
    whose text is the failing cell and its traceback), ``{}`` when all ran. Each notebook
    starts with an empty namespace and no open figure (``%reset -f``); what a previous one
    imported stays imported, so a notebook that reaches a module it never imports could pass
    here, and ``execute_notebook`` gives each its own kernel. No output is compared; otherwise
    this is what ``pytest --nbval-lax`` checks."""

    def run(notebooks, *, cwd: Path, env: Mapping[str, str] | None = None, timeout: int = 300):
        return _execute_in_one_kernel(notebooks, cwd=cwd, env=env, timeout=timeout)

    return run


@pytest.fixture(scope="session")
def execute_notebook() -> Callable:
    """``execute_notebook(nb, cwd=..., env=...)`` runs every cell of ``nb`` in its own new
    ``python3`` kernel and returns the executed notebook; a cell that raises fails the test
    with the cell and its traceback (``nbclient.exceptions.CellExecutionError``)."""

    def run(nb, *, cwd: Path, env: Mapping[str, str] | None = None, timeout: int = 300):
        failures = _execute_in_one_kernel({"notebook": nb}, cwd=cwd, env=env, timeout=timeout)
        if failures:
            raise failures["notebook"]
        return nb

    return run
