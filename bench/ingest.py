"""Ingest and KPI cost for synthetic organisations of 50, 500 and 5,000 agents over three years.

Usage::

    .venv/bin/python bench/ingest.py            # 50, 500, 5000 agents
    .venv/bin/python bench/ingest.py 50 500     # chosen sizes

Each size runs in its own process so peak memory (max resident set size) is that size's alone.
Stages: generate (synthetic organisation in memory), write CSV (canonical folder), ingest
(read CSV + validate + one DuckDB transaction), KPIs (all KPIs, all levels, monthly and weekly),
and the same organisation as a raw funnel export (leads.csv, won_deals.csv) ingested through its
mapping file (lookups both ways between the files, per-column date formats, rows counted into
weekly indicators, SQL expressions in the sandbox), then its lead KPIs by channel and month.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZES = (50, 500, 5000)


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_one(n_agents: int) -> dict:
    from spm_models.data.ingest import ingest_paths
    from spm_models.data.warehouse import Warehouse
    from spm_models.kpi import compute_kpis
    from spm_models.kpi.leads import lead_kpis
    from spm_models.synthetic.funnel import funnel_export
    from spm_models.synthetic.generator import generate_organisation

    out: dict = {"agents": n_agents}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t = time.perf_counter()
        org = generate_organisation(n_agents, years=3, seed=1)
        out["generate_s"] = time.perf_counter() - t
        out["opportunities"] = len(org.dataset["opportunities"])
        out["activity_rows"] = len(org.dataset["activities"])
        t = time.perf_counter()
        org.write(tmp / "csv")
        out["write_csv_s"] = time.perf_counter() - t
        funnel = funnel_export(org, seed=1)
        funnel.write(tmp / "funnel")
        out["leads"] = len(funnel.leads)
        del org, funnel
        t = time.perf_counter()
        ingest_paths([tmp / "csv"], db=tmp / "w.duckdb", source="canonical")
        out["ingest_s"] = time.perf_counter() - t
        out["db_mib"] = (tmp / "w.duckdb").stat().st_size / 2**20
        t = time.perf_counter()
        ds = Warehouse(tmp / "w.duckdb").load()
        out["load_s"] = time.perf_counter() - t
        t = time.perf_counter()
        k = compute_kpis(ds, grain="month")
        out["kpis_month_s"] = time.perf_counter() - t
        out["kpi_rows_month"] = len(k)
        t = time.perf_counter()
        compute_kpis(ds, grain="week")
        out["kpis_week_s"] = time.perf_counter() - t
        t = time.perf_counter()
        ingest_paths([tmp / "funnel" / "mapping.toml"], db=tmp / "funnel.duckdb")
        out["funnel_ingest_s"] = time.perf_counter() - t
        funnel_ds = Warehouse(tmp / "funnel.duckdb").load()
        t = time.perf_counter()
        lead_kpis(funnel_ds["leads"], funnel_ds["opportunities"], grain="month")
        out["lead_kpis_s"] = time.perf_counter() - t
    out["peak_mib"] = _peak_mib()
    return out


def main(argv: list[str]) -> None:
    if argv and argv[0] == "--one":
        print(json.dumps(run_one(int(argv[1]))))
        return
    sizes = [int(a) for a in argv] or list(SIZES)
    rows = []
    for n in sizes:
        proc = subprocess.run([sys.executable, __file__, "--one", str(n)], capture_output=True, text=True)
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            raise SystemExit(f"benchmark failed at {n} agents")
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    cols = [
        ("agents", "agents", "{:,}"),
        ("opportunities", "opps", "{:,}"),
        ("activity_rows", "activity rows", "{:,}"),
        ("generate_s", "generate s", "{:.1f}"),
        ("write_csv_s", "write CSV s", "{:.1f}"),
        ("ingest_s", "ingest s", "{:.1f}"),
        ("load_s", "load s", "{:.1f}"),
        ("kpis_month_s", "KPIs month s", "{:.1f}"),
        ("kpis_week_s", "KPIs week s", "{:.1f}"),
        ("leads", "funnel leads", "{:,}"),
        ("funnel_ingest_s", "funnel ingest s", "{:.1f}"),
        ("lead_kpis_s", "lead KPIs s", "{:.1f}"),
        ("db_mib", "DB MiB", "{:.0f}"),
        ("peak_mib", "peak RSS MiB", "{:,.0f}"),
    ]
    table = [[c[1] for c in cols]] + [[fmt.format(r[k]) for k, _, fmt in cols] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(cols))]

    def line(row):
        return "| " + " | ".join(v.rjust(w) for v, w in zip(row, widths)) + " |"

    print(line(table[0]))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in table[1:]:
        print(line(row))


if __name__ == "__main__":
    main(sys.argv[1:])
