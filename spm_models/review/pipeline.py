"""``spm review``: one month's reports, end to end.

1. Load the warehouse and fingerprint the data.
2. Fit the model once and write the artifacts (:func:`~.artifacts.build_artifacts`), or
   reuse them when data, month, settings and package version are unchanged.
3. Plan one report per agent and territory plus the monthly review; check every report's
   parameters before any kernel starts.
4. Execute the reports in parallel (:func:`~.runner.execute_reports`), export each to HTML.
5. Write ``manifest.json`` and ``index.html``.

A re-run of a finished month reuses what is current (same run key, same template, output
present) and redoes the rest; ``only_failed`` redoes just the reports the last manifest
records as failed; ``force`` redoes everything. Output folder layout::

    <reports>/<YYYY-MM>/index.html, manifest.json, monthly_review.html
                        agents/<name>-<hash>.html      territories/<name>-<hash>.html
                        notebooks/...ipynb (executed)  artifacts/ (parquet, run.json, snapshot)
                        exports/statements.csv, .parquet, statement_totals.csv, plan_cost.csv (with a plan)
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from spm_models import __version__
from spm_models.calendar import parse_month
from spm_models.config import ProjectPaths
from spm_models.data.dataset import Dataset
from spm_models.data.warehouse import fingerprint
from spm_models.exceptions import ConfigError, DiskFullError, is_disk_full
from spm_models.review.artifacts import artifacts_key, build_artifacts
from spm_models.review.freshness import check_month_has_data, choose_month
from spm_models.review.incentives import write_statement_exports
from spm_models.review.naming import report_file_name
from spm_models.review.params import check_parameters, template_path
from spm_models.review.publish import Publication, free_space, published_path
from spm_models.review.runner import ReportResult, ReportTask, execute_reports
from spm_models.review.settings import ReviewConfig, check_cluster
from spm_models.review.site import INDEX, MANIFEST_FORMAT, headlines, read_manifest, write_index, write_manifest

__all__ = ["ReviewResult", "run_review", "plan_reports"]


@dataclass
class ReviewResult:
    """Outcome of :func:`run_review`."""

    month: str
    run_folder: Path
    index: Path
    manifest: dict
    executed: list[ReportResult]
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def failed(self) -> list[dict]:
        return [r for r in self.manifest["reports"] if r["status"] != "ok"]

    @property
    def exit_code(self) -> int:
        """0 when every report of the month is ok, 1 otherwise."""
        return 1 if self.failed else 0

    def summary(self) -> str:
        s = self.manifest["summary"]
        lines = [
            f"review {self.month}: {s['ok']} ok, {s['failed']} failed, {s['reused']} reused of {s['total']} reports "
            f"in {self.timings.get('total', 0):.1f} s",
            f"index: {self.index}",
        ]
        lines += [f"FAILED {r['id']} ({r['subject']}): {r['error']} -> {r['notebook']}" for r in self.failed]
        return "\n".join(lines)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def plan_reports(
    tables: dict, artifacts_dir: Path, *, agents: Sequence[str] | None = None, territories: Sequence[str] | None = None
) -> list[ReportTask]:
    """One task per agent (people only) and territory of the run, plus the monthly review.

    With ``agents`` and/or ``territories`` only those subjects' reports are planned (no
    monthly review). Unknown ids are a ConfigError naming them.
    """
    a, t = tables["agents"], tables["territories"]
    if "is_person" in a:  # owners that are not people (unassigned, house accounts) get no report
        a = a[a["is_person"].astype(bool)]
    subset = agents is not None or territories is not None
    problems = []
    if agents is not None:
        unknown = sorted(set(agents) - set(a["agent_id"].astype("str")))
        if unknown:
            problems.append(f"agent id(s) not in this review: {', '.join(map(repr, unknown))}")
        a = a[a["agent_id"].astype("str").isin(agents)]
    elif subset:
        a = a.iloc[0:0]
    if territories is not None:
        unknown = sorted(set(territories) - set(t["territory_id"].astype("str")))
        if unknown:
            problems.append(f"territory id(s) not in this review: {', '.join(map(repr, unknown))}")
        t = t[t["territory_id"].astype("str").isin(territories)]
    elif subset:
        t = t.iloc[0:0]
    if problems:
        raise ConfigError("; ".join(problems))
    run_dir = str(artifacts_dir)
    tasks = []
    for aid, name in zip(a["agent_id"].astype("str"), a["agent_name"].astype("str")):
        f = report_file_name(name, aid, suffix="", fallback="agent")
        tasks.append(
            ReportTask(
                f"agent:{aid}",
                "agent_report",
                {"run_dir": run_dir, "agent_id": aid},
                name,
                "agent",
                f"agents/{f}.html",
                f"notebooks/agents/{f}.ipynb",
            )
        )
    for tid, name in zip(t["territory_id"].astype("str"), t["territory_name"].astype("str")):
        f = report_file_name(name, tid, suffix="", fallback="territory")
        tasks.append(
            ReportTask(
                f"territory:{tid}",
                "territory_report",
                {"run_dir": run_dir, "territory_id": tid},
                name,
                "territory",
                f"territories/{f}.html",
                f"notebooks/territories/{f}.ipynb",
            )
        )
    if not subset:
        tasks.append(
            ReportTask(
                "monthly",
                "monthly_review",
                {"run_dir": run_dir},
                "Monthly sales review",
                "monthly",
                "monthly_review.html",
                "notebooks/monthly_review.ipynb",
            )
        )
    for task in tasks:
        check_parameters(task.template, task.parameters)
    return tasks


def _now() -> str:
    """The time a log line is written, in UTC (``2025-01-02T06:15:02Z``)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _stage(log: TextIO, text: str) -> None:
    """One line per stage before the reports start, so a long fit never looks like a hang."""
    log.write(f"{_now()} stage={text!r}\n")
    log.flush()


class _Progress:
    """A progress bar on a terminal; one parseable ``key=value`` line per report otherwise."""

    def __init__(self, total: int, *, stream: TextIO, bar: bool | None):
        self.stream = stream
        self.bar = None
        use_bar = stream.isatty() if bar is None else bar
        if use_bar and total:
            from tqdm import tqdm

            self.bar = tqdm(total=total, file=stream, unit="report", desc="reports", dynamic_ncols=True)

    def __call__(self, r: ReportResult) -> None:
        if self.bar is not None:
            self.bar.update(1)
            if r.status != "ok":
                self.bar.write(f"failed: {r.report_id}: {r.error}", file=self.stream)
            return
        err = "" if r.error is None else " error=" + repr(r.error.splitlines()[0] if r.error else "")
        self.stream.write(
            f"{_now()} report={r.report_id!r} status={r.status} seconds={r.duration_s:.2f} "
            f"output={r.output or r.notebook}{err}\n"
        )
        self.stream.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run_review(
    *,
    month: str | None = None,
    db: str | Path | None = None,
    dataset: Dataset | None = None,
    out: str | Path | None = None,
    paths: ProjectPaths | None = None,
    config: ReviewConfig | None = None,
    workers: int | None = None,
    timeout: float | None = None,
    only_failed: bool = False,
    force: bool = False,
    agents: Sequence[str] | None = None,
    territories: Sequence[str] | None = None,
    kernel: str | None = None,
    progress: bool | None = None,
    log: TextIO | None = None,
    templates_dir: str | Path | None = None,
    require_fresh: bool = False,
    today: Any = None,
    cluster: str | None = None,
) -> ReviewResult:
    """Produce the review of ``month``: artifacts, every report, index and manifest.

    The month is built in a staging folder and published whole (:mod:`.publish`): the
    published ``<out>/<month>`` holds one run's index, manifest and pages at every moment, a
    second run of the same month is refused while one works, and a run interrupted (Ctrl-C,
    SIGTERM, a kill) is resumed by the next one, which redoes only the missing reports.

    Parameters
    ----------
    month : str, optional
        ``YYYY-MM``; default: the last complete month of the data, never one that has not
        ended yet (:func:`~.freshness.choose_month`, which warns when the data are stale).
    db : path-like, optional
        Warehouse file (default: the project's); ignored when ``dataset`` is given.
    dataset : Dataset, optional
        Typed tables to review instead of the warehouse's.
    out : path-like, optional
        Reports root (default ``<project>/reports``); the run goes to ``<out>/<month>``.
    config : ReviewConfig, optional
    workers : int, optional
        Reports run at once (default: the number of CPU cores).
    timeout : float, optional
        Seconds per report (default: the settings' ``report_timeout``).
    only_failed, force : bool
        Redo only the failed reports of the last run / redo everything.
    agents, territories : sequence of str, optional
        Produce only these subjects' reports.
    kernel : {"auto", "fork", "plain"}, optional
        How kernels start (default: the settings' ``kernels``; see
        :mod:`spm_models.review.kernels.mode`).
    progress : bool, optional
        Progress bar (default: when ``log`` is a terminal); otherwise one line per report.
    log : text stream, optional
        Where progress and warnings go (default stderr).
    require_fresh : bool
        Without ``month``: fail when the data end before the last month that has ended.
    today : date-like, optional
        The day freshness is judged on (default: today).
    cluster : str, optional
        Run the reports on a Dask cluster (:mod:`.cluster`): ``"local"`` or a scheduler address
        (default: the settings' ``cluster``; none: this machine). With ``"local"``, ``workers``
        is the number of worker processes. The artifacts are built here, once, in the run
        folder, which every worker must see at the same path.

    Returns
    -------
    ReviewResult
        ``exit_code`` is 1 when any report failed.

    Raises
    ------
    ReviewBusyError
        Another run of the same month is working (nothing was changed).
    DiskFullError
        The disk filled up; the published month is as it was and nothing is left behind.
    StaleDataError
        ``require_fresh`` and the data are stale.
    """
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    paths = paths or ProjectPaths.from_root()
    config = config or ReviewConfig()
    log = log or sys.stderr
    if only_failed and force:
        raise ConfigError("choose either --only-failed or --force, not both")
    cluster = check_cluster(cluster) or config.cluster
    if month is not None:
        parse_month(month)  # options first: a bad month is named before the warehouse is read
    if dataset is None:
        from spm_models.data.warehouse import Warehouse

        _stage(log, f"loading the warehouse {Path(db or paths.warehouse).name}")
        dataset = Warehouse(db or paths.warehouse).load()
    timings["load"] = time.perf_counter() - t_start
    if month is None:
        month, notes = choose_month(dataset, today=today, require_fresh=require_fresh)
        for note in notes:
            log.write(f"warning: {note}\n")
    check_month_has_data(dataset, month)
    root = Path(out) if out is not None else paths.reports
    fp = fingerprint(dataset)
    publication = Publication(root, month)
    try:
        result = _publish_month(
            publication,
            dataset,
            fp,
            config=config,
            timings=timings,
            t_start=t_start,
            options=dict(
                workers=workers,
                timeout=timeout,
                only_failed=only_failed,
                force=force,
                agents=agents,
                territories=territories,
                kernel=kernel,
                progress=progress,
                log=log,
                templates_dir=templates_dir,
                cluster=cluster,
            ),
        )
    except KeyboardInterrupt:
        if not publication.held:
            raise
        done = len(publication.recorded())
        log.write(
            f"interrupted: the review of {month} was not published (the published {month}, if any, is unchanged); "
            f"{done} finished report(s) are kept in {publication.staging} and the next run of {month} with the "
            "same data and settings reuses them\n"
        )
        raise
    return result


def _publish_month(
    publication: Publication,
    dataset: Dataset,
    fp: str,
    *,
    config: ReviewConfig,
    timings: dict,
    t_start: float,
    options: dict,
) -> ReviewResult:
    """Lock, build in the staging folder, publish; a full disk becomes one clear error."""
    month = publication.month
    with publication.open(artifacts_key(fp, month, config), fresh=options["force"]) as pub:
        try:
            manifest, executed = _build_month(pub, dataset, fp, config=config, timings=timings, options=options)
            timings["total"] = time.perf_counter() - t_start
            manifest["timings"] = {k: round(v, 3) for k, v in timings.items()}
            write_manifest(pub.staging, manifest)
            write_index(pub.staging, manifest)
            run_folder = pub.publish()
        except Exception as exc:
            if is_disk_full(exc):
                raise _disk_full(pub, exc) from exc
            raise
    return ReviewResult(month, run_folder, run_folder / INDEX, manifest, executed, timings)


def _disk_full(pub: Publication, exc: BaseException) -> DiskFullError:
    """One clear message for a full disk: what stopped, what is still published."""
    done = getattr(exc, "results", None)
    progress = "" if done is None else f" after {sum(r.status == 'ok' for r in done)} report(s)"
    before = read_manifest(pub.published)
    kept = (
        f"the published {pub.month} (run {before.get('run_id')}) is unchanged"
        if before
        else f"nothing was published for {pub.month}"
    )
    return DiskFullError(
        f"the disk holding {pub.root} is full ({free_space(pub.root) or 'no space left'}): the review of "
        f"{pub.month} stopped{progress} and was not published; {kept}, and no temporary files are left. "
        "Free some space and run again"
    )


def _build_month(
    pub: Publication, dataset: Dataset, fp: str, *, config: ReviewConfig, timings: dict, options: dict
) -> tuple[dict, list[ReportResult]]:
    """Artifacts, reports (journalled as they finish) and the manifest, all in the staging folder;
    with ``--cluster``, the model work and the reports on the cluster, started when first needed."""
    if not options["cluster"]:
        return _build_in(pub, dataset, fp, config=config, timings=timings, options=options, cluster=None)
    from spm_models.review.cluster import ReviewCluster

    cluster = ReviewCluster(options["cluster"], workers=options["workers"])
    try:
        return _build_in(pub, dataset, fp, config=config, timings=timings, options=options, cluster=cluster)
    finally:
        cluster.close()
        if cluster.start_seconds:
            timings["cluster_start"] = round(cluster.start_seconds, 3)


def _build_in(
    pub: Publication,
    dataset: Dataset,
    fp: str,
    *,
    config: ReviewConfig,
    timings: dict,
    options: dict,
    cluster: Any,
) -> tuple[dict, list[ReportResult]]:
    month, run_folder, log = pub.month, pub.staging, options["log"]
    artifacts_dir = run_folder / "artifacts"
    t = time.perf_counter()
    _stage(log, f"{month}: choosing and fitting the forecast, writing the artifacts (reused when current)")
    info = build_artifacts(
        dataset,
        month=month,
        out_dir=artifacts_dir,
        config=config,
        runs_root=pub.root,
        data_fingerprint=fp,
        force=options["force"],
        executor=cluster,
    )
    if cluster is not None:
        cluster.release()
    timings["artifacts"] = time.perf_counter() - t
    write_statement_exports(artifacts_dir, run_folder / "exports")  # the payroll export, when a plan is set

    from spm_models.review.views import load_run

    run = load_run(artifacts_dir)
    tasks = plan_reports(run.tables, artifacts_dir, agents=options["agents"], territories=options["territories"])
    group = dict(zip("agent:" + run["agents"]["agent_id"].astype("str"), run["agents"]["territory_name"].astype("str")))
    template_sha = {
        name: _sha(template_path(name, folder=options["templates_dir"])) for name in {t.template for t in tasks}
    }
    previous = read_manifest(run_folder)
    same_run = previous is not None and previous.get("key") == info["key"] and previous.get("format") == MANIFEST_FORMAT
    old = {r["id"]: r for r in previous["reports"]} if same_run else {}
    old.update(pub.recorded())  # reports an interrupted run of the same key finished
    if options["only_failed"] and not old:
        raise ConfigError(
            f"--only-failed needs an earlier run of {month} with the same data and settings; run without it first"
        )
    heads = headlines(run.tables)

    def entry(task: ReportTask, r: ReportResult) -> dict:
        return _entry(task, r, info=info, sha=template_sha[task.template], heads=heads, group=group)

    def current(task: ReportTask) -> bool:
        r = old.get(task.report_id)
        return bool(
            r
            and r["status"] == "ok"
            and r.get("template_sha256") == template_sha[task.template]
            and r.get("parameters") == _shown(task.parameters)
            and (run_folder / r["output"]).is_file()
        )

    if options["force"]:
        to_run = list(tasks)
    elif options["only_failed"]:
        to_run = [t for t in tasks if t.report_id in old and old[t.report_id]["status"] != "ok"]
    else:
        to_run = [t for t in tasks if not current(t)]
    _stage(log, f"{month}: running {len(to_run)} of {len(tasks)} reports")
    bar = _Progress(len(to_run), stream=log, bar=options["progress"])
    by_id = {t.report_id: t for t in to_run}

    def finished(r: ReportResult) -> None:
        pub.record(entry(by_id[r.report_id], r))  # first, so a run cut short after it loses nothing
        bar(r)

    t = time.perf_counter()
    run = dict(
        run_folder=run_folder,
        artifacts_dir=artifacts_dir,
        timeout=options["timeout"] or config.report_timeout,
        kernel=options["kernel"] or config.kernels,
        templates_dir=options["templates_dir"],
        on_result=finished,
    )
    try:
        if cluster is not None and to_run:
            from spm_models.review.cluster import execute_on_cluster

            executed, setup = execute_on_cluster(to_run, client=cluster.client, **run)
        else:
            executed, setup = execute_reports(to_run, workers=options["workers"] or os.cpu_count() or 1, log=log, **run)
    finally:
        bar.close()
    timings.update(setup)
    timings["reports"] = time.perf_counter() - t

    entries = {rid: {**r, "reused": True} for rid, r in old.items()}
    entries.update({r.report_id: entry(by_id[r.report_id], r) for r in executed})
    return _manifest(month, info, list(entries.values()), executed), executed


def _shown(parameters: dict) -> dict:
    """Parameters as recorded for people: the artifacts where they are once published."""
    return {k: str(published_path(v)) if k == "run_dir" else v for k, v in parameters.items()}


def _entry(task: ReportTask, r: ReportResult, *, info: dict, sha: str, heads: dict, group: dict) -> dict:
    """The manifest entry of one executed report."""
    return {
        "id": task.report_id,
        "kind": task.kind,
        "template": task.template,
        "subject": task.subject,
        "group": group.get(task.report_id, ""),
        "status": r.status,
        "duration_s": r.duration_s,
        "output": r.output,
        "notebook": r.notebook,
        "error": r.error,
        "timings": r.timings,
        "kernel_starts": r.kernel_starts,
        "parameters": _shown(task.parameters),
        "template_sha256": sha,
        "reused": False,
        "headline": heads.get(task.report_id, {}),
        "provenance": {
            "run_id": info["run_id"],
            "package_version": __version__,
            "data_fingerprint": info["data_fingerprint"],
            "model": info["model"]["name"],
            "template_sha256": sha,
        },
    }


def _manifest(month: str, info: dict, reports: list[dict], executed: list[ReportResult]) -> dict:
    """``manifest.json`` of the run (its timings are added last)."""
    order = {"monthly": 0, "territory": 1, "agent": 2}
    reports.sort(key=lambda e: (order.get(e["kind"], 3), str(e["subject"]).lower(), e["id"]))
    n_fail = sum(e["status"] != "ok" for e in reports)
    return {
        "format": MANIFEST_FORMAT,
        "month": month,
        "run_id": info["run_id"],
        "key": info["key"],
        "generated_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "package_version": __version__,
        "data_fingerprint": info["data_fingerprint"],
        "calendar": info["calendar"],
        "review_quarter": info["review_quarter_label"],
        "forecast_quarter": info["quarter_label"],
        "quarter_closed": bool(info.get("quarter_closed", False)),
        "settings": info["settings"],
        "model": info["model"],
        "model_choice": info.get("model_choice"),
        "quota_recalibration": info.get("quota_recalibration") if info.get("has_quota") else None,
        "data": info.get("data", {}),
        "artifacts": "artifacts",
        "artifacts_reused": bool(info.get("reused")),
        "summary": {
            "total": len(reports),
            "ok": len(reports) - n_fail,
            "failed": n_fail,
            "reused": sum(bool(e.get("reused")) for e in reports),
            "executed": len(executed),
        },
        "timings": {},
        "reports": reports,
    }
