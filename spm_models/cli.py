"""The ``spm`` command: argument parsing only; each command calls one library function."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from spm_models import __version__
from spm_models.exceptions import SpmError

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
    from spm_models.exceptions import ConfigError
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
    project_dir: ProjectDir = None,
) -> None:
    """Compute KPIs per agent, territory and company; print one period or write them all."""
    from spm_models.data.exports import write_table
    from spm_models.data.warehouse import Warehouse
    from spm_models.kpi import compute_kpis
    from spm_models.kpi.views import latest_period_view

    grain, level = Grain(grain).value, Level(level).value
    target = db or _paths(project_dir).warehouse
    frame = compute_kpis(Warehouse(target).load(), grain=grain)
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


@app.command("models")
def models() -> None:
    """List the forecasting models a review can use (``model = "..."`` in the settings) and their parameters."""
    from spm_models.models.registry import describe_models

    typer.echo(describe_models())


def _ids(text: str | None) -> list[str] | None:
    return None if text is None else [s.strip() for s in text.split(",") if s.strip()]


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
    project_dir: ProjectDir = None,
) -> None:
    """Fit once, write every agent, territory and company report as HTML, plus index.html.

    Exit code 1 when any report failed (the others are still written); see manifest.json.
    """
    from spm_models.review.pipeline import run_review
    from spm_models.review.settings import load_config

    result = run_review(
        month=month,
        db=db,
        out=out,
        paths=_paths(project_dir),
        config=load_config(config, kernels=kernels),
        workers=workers,
        timeout=timeout,
        only_failed=only_failed,
        force=force,
        agents=_ids(agents),
        territories=_ids(territories),
    )
    typer.echo(result.summary())
    if result.exit_code:
        raise typer.Exit(code=result.exit_code)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (0 success, 2 bad input or options, 1 other errors)."""
    try:
        # Standalone mode turns usage errors into exit code 2 with a message; our own
        # errors propagate here and become a message plus their exit code.
        app(args=argv if argv is not None else sys.argv[1:], prog_name="spm", standalone_mode=True)
    except SpmError as exc:
        _err(f"error: {exc}")
        return exc.exit_code
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
