"""The built-in example, end to end: synthetic organisation -> warehouse -> KPI tables -> review."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from spm_models.calendar import GRAINS
from spm_models.config import ProjectPaths
from spm_models.data.exports import write_table
from spm_models.data.ingest import ingest_paths
from spm_models.data.warehouse import IngestResult, Warehouse

__all__ = ["DemoResult", "run_demo", "write_kpis"]


@dataclass
class DemoResult:
    data_folder: Path
    warehouse: Path
    ingest: IngestResult
    kpi_files: list[Path] = field(default_factory=list)
    review: Any = None  # spm_models.review.pipeline.ReviewResult when the review ran


def write_kpis(db: str | Path, out_folder: str | Path, *, grains=GRAINS) -> list[Path]:
    """Compute every KPI at every level for each grain from the warehouse and write them.

    Writes ``kpis_<grain>.parquet`` (the long frame) and ``kpis_<grain>.csv`` per grain.
    """
    from spm_models.kpi import compute_kpis, kpi_columns

    dataset = Warehouse(db).load(columns=kpi_columns(), dictionary=True)
    out_folder = Path(out_folder)
    written = []
    for grain in grains:
        frame = compute_kpis(dataset, grain=grain)
        for ext in ("parquet", "csv"):
            written.append(write_table(frame, out_folder / f"kpis_{grain}.{ext}"))
    return written


def run_demo(
    paths: ProjectPaths,
    *,
    n_agents: int = 50,
    years: float = 3,
    seed: int = 7,
    review: bool = True,
    workers: int | None = None,
) -> DemoResult:
    """Generate the synthetic organisation, ingest it, write its KPI tables, then run the
    monthly review of its last complete month (``review=False`` skips it).

    Re-running with the same arguments leaves the same files (the ingest is skipped when
    the data are unchanged; the review reuses what is current).
    """
    from spm_models.synthetic.generator import generate_organisation

    org = generate_organisation(n_agents, years=years, seed=seed)
    folder = paths.demo_data
    org.write(folder)
    settings = paths.settings()
    result = ingest_paths(
        [folder],
        db=paths.warehouse,
        source="canonical",
        calendar=settings.calendar,
        measure=settings.bookings_measure,
        date_window=settings.date_window,
    )
    files = write_kpis(paths.warehouse, paths.kpis)
    outcome = DemoResult(data_folder=folder, warehouse=paths.warehouse, ingest=result, kpi_files=files)
    if review:
        from spm_models.insights.incentives import load_plan_book
        from spm_models.insights.incentives.planfile import example_plan_file
        from spm_models.review.outlook import data_last_day
        from spm_models.review.pipeline import run_review
        from spm_models.review.settings import ReviewConfig

        # Synthetic data end where the generator stops, not today: judge their freshness on the
        # day after they end, so the demo reviews its last month without a stale-data warning.
        day_after = data_last_day(org.dataset) + pd.Timedelta(days=1)
        # the built-in example shows how its plans read (plans/example.toml); with your data, configure yours
        plans = load_plan_book(example_plan_file("example"))
        outcome.review = run_review(paths=paths, workers=workers, config=ReviewConfig(plans=plans), today=day_after)
    return outcome
