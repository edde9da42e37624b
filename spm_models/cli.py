"""The ``spm`` command: argument parsing only; each command calls one library function."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from spm_models import __version__
from spm_models.exceptions import ConfigError, Interrupted, SpmError, is_disk_full

__all__ = ["app", "main"]

app = typer.Typer(
    name="spm",
    help="SPM Workbench: validated sales data, KPIs, forecasts and reports.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ProjectDir = Annotated[
    Path | None,
    typer.Option("--project-dir", help="Project root (default: $SPM_HOME or the checkout)."),
]
DbOption = Annotated[
    Path | None,
    typer.Option("--db", help="Warehouse file (default: <project>/data/warehouse.duckdb)."),
]


class Grain(StrEnum):
    """``--grain`` choices (listed by ``--help``)."""

    week = "week"
    month = "month"
    quarter = "quarter"
    year = "year"


class Level(StrEnum):
    """``--level`` choices (listed by ``--help``)."""

    agent = "agent"
    territory = "territory"
    company = "company"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"spm {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """SPM Workbench: validated sales data, KPIs, forecasts and reports."""


def _paths(project_dir: Path | None):
    from spm_models.config import ProjectPaths

    return ProjectPaths.from_root(project_dir)


def _err(message: str) -> None:
    typer.echo(message, err=True)


@app.command("demo-data")
def demo_data(
    agents: Annotated[int, typer.Option(min=5, max=5000, help="Number of agents (5 to 5,000).")] = 50,
    years: Annotated[float, typer.Option(min=0.5, max=10, help="Years of history.")] = 3.0,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same data.")] = 7,
    out: Annotated[Path | None, typer.Option(help="Output folder (default: <project>/data/demo).")] = None,
    kind: Annotated[
        str,
        typer.Option(
            help="canonical: the workbench's own tables and the ground truth; funnel: a raw two-file CRM export "
            "(leads.csv, won_deals.csv) with its mapping.toml, to try `spm ingest <out>/mapping.toml` on."
        ),
    ] = "canonical",
    project_dir: ProjectDir = None,
) -> None:
    """Generate the synthetic example organisation as canonical CSVs plus its ground truth, or as a raw export."""
    from spm_models.synthetic.generator import generate_organisation

    if kind not in ("canonical", "funnel"):
        raise ConfigError(f"--kind must be canonical or funnel, got {kind!r}")
    folder = out or (_paths(project_dir).demo_data if kind == "canonical" else _paths(project_dir).examples / "funnel")
    org = generate_organisation(agents, years=years, seed=seed)
    if kind == "funnel":
        from spm_models.synthetic.funnel import funnel_export

        fx = funnel_export(org, seed=seed)
        fx.write(folder)
        typer.echo(f"wrote {folder}: {len(fx.leads):,} leads, {len(fx.won_deals):,} won deals, mapping.toml")
        return
    org.write(folder)
    counts = ", ".join(f"{len(f):,} {name}" for name, f in org.dataset.tables.items())
    typer.echo(f"wrote {folder}: {counts}")


@app.command("ingest")
def ingest(
    paths: Annotated[
        list[Path], typer.Argument(help="Canonical CSV folder or files, a Maven export folder, or a mapping .toml.")
    ],
    db: DbOption = None,
    source: Annotated[str, typer.Option(help="auto, canonical, maven or mapping.")] = "auto",
    encoding: Annotated[str, typer.Option(help="Encoding of canonical CSVs.")] = "utf-8",
    allow_formula_text: Annotated[
        bool,
        typer.Option(help="Store spreadsheet-formula cells (=HYPERLINK(...)) as plain text instead of rejecting them."),
    ] = False,
    project_dir: ProjectDir = None,
) -> None:
    """Validate input files and load them into the warehouse in one transaction.

    Every problem is listed at once; on any problem nothing is stored and the exit code is 2.
    The fiscal year and bookings measure stored with the data are the mapping file's, else the
    project's (spm.toml).
    """
    from spm_models.data.ingest import ingest_paths

    project = _paths(project_dir)
    target = db or project.warehouse
    settings = project.settings()
    result = ingest_paths(
        paths,
        db=target,
        source=source,
        encoding=encoding,
        allow_formula_text=allow_formula_text,
        calendar=settings.calendar,
        measure=settings.bookings_measure,
        date_window=settings.date_window,
    )
    for w in result.warnings:
        _err(f"warning: {w}")
    state = "stored" if result.changed else "unchanged (same data as the last ingest)"
    counts = ", ".join(f"{n:,} {t}" for t, n in result.row_counts.items())
    typer.echo(f"{target}: {state}; {counts}")


@app.command("kpis")
def kpis(
    db: DbOption = None,
    grain: Annotated[Grain, typer.Option(help="Period length (quarters and years are fiscal).")] = Grain.month,
    level: Annotated[Level, typer.Option(help="Level shown on the terminal.")] = Level.company,
    period: Annotated[
        str | None, typer.Option(help="Period shown on the terminal, e.g. 2025-06 (default: last complete).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Write the full long KPI table to this .csv or .parquet file.")
    ] = None,
    levels: Annotated[
        str | None,
        typer.Option(
            help="With --out: only these levels, comma separated (agent,territory,company); one grain and "
            "level at a time keeps the memory of a large organisation low."
        ),
    ] = None,
    project_dir: ProjectDir = None,
) -> None:
    """Compute KPIs per agent, territory and company; print one period or write them all."""
    from spm_models.data.exports import write_table
    from spm_models.data.warehouse import Warehouse
    from spm_models.kpi import compute_kpis, kpi_columns
    from spm_models.kpi.views import latest_period_view

    grain, level = Grain(grain).value, Level(level).value
    target = db or _paths(project_dir).warehouse
    if levels is not None and out is None:
        raise ConfigError("--levels chooses what --out writes; the terminal shows one --level")
    chosen = None if levels is None else [v.strip() for v in levels.split(",") if v.strip()]
    # only the columns the KPIs read, ids dictionary-encoded: a fraction of the whole warehouse's memory
    dataset = Warehouse(target).load(columns=kpi_columns(), dictionary=True)
    frame = compute_kpis(dataset, grain=grain, **({} if chosen is None else {"levels": chosen}))
    if out is not None:
        write_table(frame, out)
        typer.echo(f"wrote {len(frame):,} KPI rows to {out}")
        return
    view = latest_period_view(frame, level=level, period=period)
    import pandas as pd

    from spm_models.workbench.frames import readable_kpis

    text = readable_kpis(view)
    with pd.option_context("display.width", 200, "display.max_columns", 40):
        typer.echo(f"{grain} starting {view.attrs['period'].date()}, level {level}")
        typer.echo(text.T.to_string() if text.shape[0] <= 8 else text.to_string())


@app.command("demo")
def demo(
    agents: Annotated[int, typer.Option(min=5, max=5000, help="Number of agents.")] = 50,
    years: Annotated[float, typer.Option(min=0.5, max=10, help="Years of history.")] = 3.0,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
    project_dir: ProjectDir = None,
) -> None:
    """Run the main job on the built-in synthetic organisation: data, warehouse, KPI tables, monthly review."""
    from spm_models.demo import run_demo

    result = run_demo(_paths(project_dir), n_agents=agents, years=years, seed=seed)
    typer.echo(f"synthetic data:  {result.data_folder}")
    typer.echo(f"warehouse:       {result.warehouse} ({'stored' if result.ingest.changed else 'unchanged'})")
    for f in result.kpi_files:
        typer.echo(f"KPI table:       {f}")
    if result.review is not None:
        typer.echo(result.review.summary())
        typer.echo(f"open the review: {result.review.index}")
        if result.review.exit_code:
            raise typer.Exit(code=result.review.exit_code)


plan_app = typer.Typer(
    help="Incentive plan books (docs/plans.md): check one against the data, statements, a draft's cost.",
    no_args_is_help=True,
)
app.add_typer(plan_app, name="plan")
PlanFile = Annotated[Path, typer.Argument(help="Plan book TOML (docs/plans.md).")]


def _plan_data(db: Path | None, project_dir: Path | None):
    from spm_models.data.warehouse import Warehouse

    return Warehouse(db or _paths(project_dir).warehouse).load()


@plan_app.command("check")
def plan_check(plan_file: PlanFile, db: DbOption = None, project_dir: ProjectDir = None) -> None:
    """Validate a plan book and check it against the warehouse: every problem at once, exit code 2."""
    from spm_models.insights.incentives.planfile import load_checked_plan_book

    book = load_checked_plan_book(plan_file, _plan_data(db, project_dir).tables)
    typer.echo(f"{plan_file}: ok; {len(book.plans)} plan(s), {len(book.contests)} contest(s), from {book.start.date()}")


@plan_app.command("statements")
def plan_statements(
    plan_file: PlanFile,
    out: Annotated[Path, typer.Option(help="Write the statement lines to this .csv or .parquet file.")],
    as_of: Annotated[str | None, typer.Option(help="Last day of results, YYYY-MM-DD (default: the data's).")] = None,
    db: DbOption = None,
    project_dir: ProjectDir = None,
) -> None:
    """Statements on actual results: every quarter of the plan book settled by --as-of, then the one in progress."""
    from spm_models.data.exports import write_table
    from spm_models.insights.incentives import settled_statements
    from spm_models.insights.incentives.planfile import load_checked_plan_book

    data = _plan_data(db, project_dir)
    lines = settled_statements(data, load_checked_plan_book(plan_file, data.tables), as_of=as_of)
    write_table(lines, out)
    typer.echo(f"wrote {len(lines):,} statement lines to {out}")


@plan_app.command("model")
def plan_model(
    current: PlanFile,
    draft: Annotated[Path, typer.Argument(help="The draft plan book to compare with it.")],
    model: Annotated[str, typer.Option(help="Forecasting model (`spm models`).")] = "CalendarBaseline",
    as_of: Annotated[
        str | None, typer.Option(help="Last day of results (default: the end of the data's last whole month).")
    ] = None,
    draws: Annotated[int, typer.Option(min=50, max=20000, help="Forecast scenarios.")] = 500,
    db: DbOption = None,
    project_dir: ProjectDir = None,
) -> None:
    """Two plan books side by side on one forecast of the quarter ahead: cost, its 80% range, payout spread."""
    from spm_models.insights.incentives import compare_plan_files

    table = compare_plan_files(_plan_data(db, project_dir), current, draft, model=model, as_of=as_of, n_draws=draws)
    typer.echo(f"quarter {table.attrs['quarter']}, model {model}, {draws} scenarios")
    typer.echo(table.to_string(float_format="{:,.3f}".format))


@app.command("models")
def models() -> None:
    """List the forecasting models a review can use (``model = "..."`` in the settings) and their parameters."""
    from spm_models.models.registry import describe_models

    typer.echo(describe_models())


def _ids(text: str | None, option: str) -> list[str] | None:
    if text is None:
        return None
    ids = [s.strip() for s in text.split(",") if s.strip()]
    if not ids:  # an empty subset would publish a month with no reports
        raise ConfigError(f"{option} needs at least one id, e.g. {option} A0001,A0002")
    return ids


@app.command("review")
def review(
    month: Annotated[
        str | None, typer.Option(help="Month to review, YYYY-MM (default: the last complete month of the data).")
    ] = None,
    db: DbOption = None,
    out: Annotated[
        Path | None, typer.Option(help="Reports folder (default: <project>/reports); the run goes to <out>/<month>.")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="Review settings TOML: model, commission plan, currency.")] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Reports executed in parallel (default: number of cores).")
    ] = None,
    timeout: Annotated[
        float | None, typer.Option(min=1, help="Seconds one report may take before it is stopped.")
    ] = None,
    only_failed: Annotated[
        bool, typer.Option("--only-failed", help="Re-run only the reports that failed last time.")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Refit and re-run every report even if current.")] = False,
    agents: Annotated[str | None, typer.Option(help="Only these agent ids, comma separated.")] = None,
    territories: Annotated[str | None, typer.Option(help="Only these territory ids, comma separated.")] = None,
    kernels: Annotated[
        str | None,
        typer.Option(
            help="How report kernels start: auto (fork where the platform allows, else plain), fork "
            "(from a server that has imported everything; Linux) or plain (one new process each). "
            "Default: the settings' kernels, auto."
        ),
    ] = None,
    cluster: Annotated[
        str | None,
        typer.Option(
            help="Run the reports on a Dask cluster: 'local' (worker processes on this machine; --workers "
            "sets how many) or a scheduler address such as tcp://scheduler:8786. The reports folder must "
            "be on a file system every worker mounts at the same path (docs/scale.md). Default: the "
            "settings' cluster; none, this machine.",
        ),
    ] = None,
    require_fresh: Annotated[
        bool,
        typer.Option(
            "--require-fresh",
            help="Without --month: fail (exit 2) instead of warning when the data end before the last month "
            "that has ended (an export that stopped arriving).",
        ),
    ] = False,
    project_dir: ProjectDir = None,
) -> None:
    """Fit once, write every agent, territory and company report as HTML, plus index.html.

    The month is built aside and published whole; a second run of the same month is refused
    while one works; an interrupted run is resumed by the next. Exit code 1 when any report
    failed (the others are still written; see manifest.json), when another run of the month is
    working, or when the disk filled up (the published month is then unchanged).
    """
    from spm_models.review.pipeline import run_review
    from spm_models.review.settings import load_config

    result = run_review(
        month=month,
        db=db,
        out=out,
        paths=_paths(project_dir),
        config=load_config(config, kernels=kernels, cluster=cluster),
        workers=workers,
        timeout=timeout,
        only_failed=only_failed,
        force=force,
        agents=_ids(agents, "--agents"),
        territories=_ids(territories, "--territories"),
        require_fresh=require_fresh,
    )
    typer.echo(result.summary())
    if result.exit_code:
        raise typer.Exit(code=result.exit_code)


def _signal_exit(exc: BaseException | None) -> int | None:
    """``128 + signal`` when ``exc`` (or what it was raised from) is an interruption, else None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, KeyboardInterrupt):
            return 128 + getattr(exc, "signum", signal.SIGINT)
        exc = exc.__cause__ or exc.__context__
    return None


def _os_error(exc: OSError) -> str:
    """An operating-system error as one line naming the file and what went wrong."""
    where = f"{exc.filename}" + (f" -> {exc.filename2}" if getattr(exc, "filename2", None) else "")
    what = exc.strerror or str(exc) or type(exc).__name__
    return f"cannot use {where}: {what}" if exc.filename else what


def _crash_report(exc: BaseException) -> str:
    """Write the traceback of an unexpected error to a file; its path (or why not)."""
    import tempfile
    import traceback

    try:
        fd, path = tempfile.mkstemp(prefix="spm-error-", suffix=".txt")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write("".join(traceback.format_exception(exc)))
        return f"details in {path}"
    except OSError as err:
        return f"no details written ({err.strerror or err})"


def _stop_on_signal(signum, frame) -> None:
    raise Interrupted(signum)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code.

    0 success; 1 a run that failed (a report, disk full, a review already running) or an
    internal error; 2 bad input, options or paths; ``128 + N`` stopped by signal N (130 for
    Ctrl-C, 143 for SIGTERM). Every error is one message on stderr, never a traceback: an
    unexpected one writes its traceback to a file and says where.
    """
    # papermill logs a report's kernel trouble ("Kernel died while waiting for execute reply") to
    # stderr through Python's last-resort handler; the review records it per report (manifest,
    # progress line), so on the terminal it would only repeat it, or, after a full disk, bury
    # the one message that matters.
    logging.getLogger("papermill").addHandler(logging.NullHandler())
    handlers = {}
    if threading.current_thread() is threading.main_thread():
        # SIGTERM (a scheduler's stop) and SIGHUP unwind like Ctrl-C, so runs clean up after themselves.
        for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
            if sig is not None:
                handlers[sig] = signal.signal(sig, _stop_on_signal)
    try:
        # Standalone mode turns usage errors into exit code 2 with a message; our own
        # errors propagate here and become a message plus their exit code.
        app(args=argv if argv is not None else sys.argv[1:], prog_name="spm", standalone_mode=True)
    except SpmError as exc:
        _err(f"error: {exc}")
        return exc.exit_code
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        interrupted = _signal_exit(exc)
        if interrupted is not None:
            _err(f"interrupted (signal {interrupted - 128})")
            return interrupted
        return code
    except KeyboardInterrupt as exc:
        _err("interrupted")
        return _signal_exit(exc) or 130
    except OSError as exc:
        if is_disk_full(exc):
            _err(f"error: the disk is full: {_os_error(exc)}; free some space and run again")
            return 1
        _err(f"error: {_os_error(exc)}")
        return 2
    except MemoryError:
        _err("error: out of memory; close other programs or use a machine with more memory")
        return 1
    except Exception as exc:  # a bug: one line and a file, never a traceback on the terminal
        _err(f"error: internal error ({type(exc).__name__}: {exc}); {_crash_report(exc)}; please report it")
        return 1
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
