"""The run's front door: ``index.html`` linking every report with its headline numbers, and
``manifest.json`` recording each report's status, duration, output, parameters and provenance.

Both are written atomically (temporary file, then rename). Links are relative, so the
folder can be moved, zipped or served as it is; every text from the data is escaped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

import pandas as pd

from spm_models.present.format import format_value
from spm_models.review.export import PAGE_CSS, write_atomic
from spm_models.review.recalibration import quota_note
from spm_models.review.render import chance_text

__all__ = ["MANIFEST", "INDEX", "MANIFEST_FORMAT", "headlines", "write_manifest", "read_manifest", "write_index"]

MANIFEST, INDEX = "manifest.json", "index.html"
MANIFEST_FORMAT = 1


def headlines(tables: Mapping[str, pd.DataFrame]) -> dict[str, dict[str, float | None]]:
    """Headline numbers per report id, from the run's artifacts.

    ``agent:<id>`` and ``territory:<id>``: ``bookings_qtd``, ``attainment_qtd`` (of the review
    month's quarter), ``p_quota`` and ``reached`` (1.0 when already booked at or above quota;
    of the forecast quarter, adjusted by past quarters, see :mod:`spm_models.review.recalibration`),
    plus ``expected_payout`` (forecast quarter) and ``closed_quarter_payout`` (the quarter a
    quarter-end review closes) for agents; ``monthly``: the company's.
    """
    metrics, outlook, comm = tables["metrics"], tables["outlook"], tables["commission"]
    m = metrics.set_index(metrics["level"].astype("str") + ":" + metrics["entity_id"].astype("str"))
    o = outlook.set_index(outlook["level"].astype("str") + ":" + outlook["unique_id"].astype("str"))
    c = comm.set_index("agent:" + comm["unique_id"].astype("str"))
    final = c["closed_quarter_payout"] if "closed_quarter_payout" in c else pd.Series(dtype=float)
    out: dict[str, dict[str, float | None]] = {}
    for key in m.index:
        level, _ = key.split(":", 1)
        rid = "monthly" if level == "company" else key
        vals = {
            "bookings_qtd": m.at[key, "bookings_qtd"],
            "attainment_qtd": m.at[key, "attainment_qtd"],
            "p_quota": o.at[key, "p_quota"] if key in o.index else None,
            "reached": float(bool(o.at[key, "reached"])) if key in o.index and "reached" in o else None,
        }
        if level == "agent":
            vals["expected_payout"] = c["expected_payout"].get(key)
            vals["closed_quarter_payout"] = final.get(key)
        out[rid] = {k: (None if v is None or pd.isna(v) else float(v)) for k, v in vals.items()}
    return out


def read_manifest(run_folder: str | Path) -> dict | None:
    """The run's manifest, or None when there is none (or it cannot be read)."""
    try:
        return json.loads((Path(run_folder) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_manifest(run_folder: str | Path, manifest: Mapping[str, Any]) -> Path:
    """Write ``manifest.json`` atomically."""
    return write_atomic(
        Path(run_folder) / MANIFEST,
        json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n",
    )


def _e(v: Any) -> str:
    return escape(str(v), quote=True)


def _cell(h: Mapping[str, Any], column: str, currency: str, money: str) -> str:
    if column == "p_quota":
        return chance_text(h.get("p_quota"), bool(h.get("reached")))
    if column == "attainment_qtd":
        return format_value(h.get(column), "ratio")
    # payouts are money even when bookings are counted in deals
    return format_value(h.get(column), "currency", currency=money if "payout" in column else currency)


def _row(entry: Mapping[str, Any], currency: str, columns: Sequence[str], money: str) -> str:
    h = entry.get("headline") or {}
    name = _e(entry["subject"])
    if entry["status"] == "ok" and entry.get("output"):
        link = f'<a href="{_e(entry["output"])}">{name}</a>'
        status = "ok"
    else:
        link = name
        nb = entry.get("notebook")
        status = f"failed: {_e(entry.get('error') or '')}" + (
            f' (<a href="{_e(nb)}">executed notebook</a>)' if nb else ""
        )
    tds = f'<td class="t">{link}</td>' + "".join(
        f'<td class="n">{_e(_cell(h, c, currency, money))}</td>' for c in columns
    )
    return f'<tr class="{"ok" if entry["status"] == "ok" else "failed"}">{tds}<td class="t">{status}</td></tr>'


def _table(
    entries: Sequence[Mapping[str, Any]],
    currency: str,
    *,
    payout: bool,
    quota: bool = True,
    quarters: tuple[str, str] = ("this quarter", "this quarter"),
    closed: bool = False,
    money: str = "USD",
) -> str:
    """The index table of some reports; at a quarter end (``closed``) two tables, the quarter
    that closed and the one ahead, so that no row mixes two quarters. Without quotas
    (``quota``) no attainment or chance columns; ``payout``: the agents' payout columns."""
    now, ahead = quarters
    done = "(final)" if closed else "so far"
    past = {"bookings_qtd": f"Booked in {now} {done}"}
    future = {}
    if quota:
        past["attainment_qtd"] = f"Attainment {now} {done}"
        future["p_quota"] = f"Chance of reaching the {ahead} quota"
    if payout:
        future["expected_payout"] = f"Expected payout {ahead} (mean)"
        if closed:
            past["closed_quarter_payout"] = f"Payout {now} (final)"

    def one(columns: Mapping[str, str]) -> str:
        head = "<th>Report</th>" + "".join(f"<th>{_e(t)}</th>" for t in columns.values()) + "<th>Status</th>"
        rows = "".join(_row(e, currency, list(columns), money) for e in entries)
        return f'<table class="spm-table"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'

    if not closed or not future:
        return one({**past, **future})
    return (
        f'<h4 class="spm-period">{_e(now)}: the quarter that closed</h4>{one(past)}'
        f'<h4 class="spm-period">{_e(ahead)}: the quarter ahead</h4>{one(future)}'
    )


def write_index(run_folder: str | Path, manifest: Mapping[str, Any]) -> Path:
    """Write ``index.html``: the monthly review, territories, then agents by territory.

    Columns follow what the data hold (the manifest's ``data``): attainment and the chance of
    reaching quota only with quotas, expected payout only with a commission plan, and
    bookings in the bookings label (a currency, or deals).
    """
    reports = manifest["reports"]
    data = manifest.get("data") or {}
    money = manifest.get("settings", {}).get("currency", "USD")
    currency = data.get("bookings_label") or money
    quota = bool(data.get("has_quota", True))
    plan = bool(data.get("has_commission_plan", True))
    monthly = [r for r in reports if r["kind"] == "monthly"]
    terrs = sorted((r for r in reports if r["kind"] == "territory"), key=lambda r: str(r["subject"]).lower())
    agents = sorted(
        (r for r in reports if r["kind"] == "agent"),
        key=lambda r: (str(r.get("group", "")).lower(), str(r["subject"]).lower()),
    )
    s = manifest.get("summary", {})
    failed = [r for r in reports if r["status"] != "ok"]
    quarters = (manifest.get("review_quarter", "this quarter"), manifest.get("forecast_quarter", "this quarter"))
    closed = bool(manifest.get("quarter_closed", quarters[0] != quarters[1]))
    parts = [
        f'<header class="spm-title"><h1>Sales review {_e(manifest["month"])}</h1>'
        f'<p class="spm-subtitle">data as of {_e(manifest.get("calendar", {}).get("as_of", ""))} &middot; run '
        f"{_e(manifest['run_id'])} &middot; "
        f"{s.get('ok', 0)} reports ok, {s.get('failed', 0)} failed</p></header>"
    ]
    if failed:
        items = "".join(f"<li>{_e(r['subject'])}: {_e(r.get('error') or 'failed')}</li>" for r in failed)
        parts.append(f'<h2>Failed reports</h2><ul class="spm-list">{items}</ul>')
    if monthly:
        parts.append(
            "<h2>Company</h2>"
            + _table(monthly, currency, payout=False, quota=quota, quarters=quarters, closed=closed, money=money)
        )
    if terrs:
        parts.append(
            "<h2>Territories</h2>"
            + _table(terrs, currency, payout=False, quota=quota, quarters=quarters, closed=closed, money=money)
        )
    groups: dict[str, list] = {}
    for r in agents:
        groups.setdefault(str(r.get("group", "")), []).append(r)
    if groups:
        parts.append("<h2>Agents</h2>")
        for g, rows in groups.items():
            parts.append(
                f"<h3>{_e(g)}</h3>"
                + _table(rows, currency, payout=plan, quota=quota, quarters=quarters, closed=closed, money=money)
            )
    note = quota_note(manifest.get("quota_recalibration"), level="index")
    if note:
        parts.append(f'<p class="spm-note">{_e(note)}</p>')
    prov = (
        f'<p class="spm-note">Package version {_e(manifest.get("package_version"))}; data fingerprint '
        f"<code>{_e(manifest.get('data_fingerprint'))}</code>; see manifest.json for each report's parameters and "
        "provenance.</p>"
    )
    parts.append(prov)
    page = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<meta name="viewport" '
        'content="width=device-width, initial-scale=1">\n'
        f"<title>Sales review {_e(manifest['month'])}</title>\n<style>{PAGE_CSS}\ntr.failed td "
        f"{{ color: #c0392b; }}</style>\n</head>\n<body>\n<main>\n" + "\n".join(parts) + "\n</main>\n</body>\n</html>\n"
    )
    return write_atomic(Path(run_folder) / INDEX, page)
