"""Executed notebook -> one self-contained HTML page with no code in it.

nbconvert's ``basic`` template renders the cells' outputs only (inputs and prompts
excluded); figures are already ``<img>`` tags with SVG data URIs in the outputs
(:func:`spm_models.present.plots.figure_html`), so they travel inside the page. The page
around it is ours: inline CSS, no script, no external link, a ``<title>`` naming the subject
(escaped), so it opens offline and shows the same everywhere. Text the kernel wrote to stderr
(library warnings) is kept in the executed notebook for whoever debugs it, and left out of the
page.
"""

from __future__ import annotations

import copy
import os
import threading
from html import escape
from pathlib import Path
from typing import Any

__all__ = ["to_html", "write_atomic", "PAGE_CSS"]

PAGE_CSS = """
:root { color-scheme: light; }
body {
  margin: 0;
  background: #f6f7f9;
  color: #1d2733;
  font: 15px/1.5 -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
}
main {
  max-width: 960px;
  margin: 0 auto;
  padding: 24px 32px 48px;
  background: #fff;
  min-height: 100vh;
  box-sizing: border-box;
}
h1 { font-size: 28px; margin: 8px 0 0; }
h2 { font-size: 20px; margin: 32px 0 8px; border-bottom: 1px solid #e3e6ea; padding-bottom: 4px; }
h3 { font-size: 16px; margin: 20px 0 6px; }
.spm-subtitle { color: #5b6b7c; margin: 4px 0 16px; }
.spm-cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 12px 0; }
.spm-card { flex: 1 1 170px; border: 1px solid #e3e6ea; border-radius: 8px; padding: 10px 14px; background: #fafbfc; }
.spm-card-value { font-size: 20px; font-weight: 600; } .spm-card-label { color: #5b6b7c; font-size: 13px; }
table.spm-table, table.spm-provenance { border-collapse: collapse; width: 100%; margin: 8px 0 16px; font-size: 14px; }
.spm-table th, .spm-table td, .spm-provenance th, .spm-provenance td {
  border-bottom: 1px solid #e3e6ea;
  padding: 5px 8px;
  text-align: left;
  vertical-align: top;
}
.spm-table td.n { text-align: right; font-variant-numeric: tabular-nums; }
.spm-table caption { caption-side: bottom; text-align: left; color: #5b6b7c; font-size: 13px; padding-top: 4px; }
.spm-provenance th { width: 30%; color: #5b6b7c; font-weight: normal; }
.spm-provenance code { word-break: break-all; font-size: 13px; }
.spm-note { color: #33414f; } .spm-list li { margin: 4px 0; }
img { max-width: 100%; height: auto; display: block; margin: 8px 0; }
.spm-nav ul { list-style: none; display: flex; flex-wrap: wrap; gap: 6px 16px; margin: 0 0 8px; padding: 0; }
.spm-nav { font-size: 14px; }
.spm-nav a, .spm-agent-links a { color: #2f6db3; }
.spm-card-value { white-space: nowrap; }
code, .spm-subtitle { overflow-wrap: anywhere; word-break: break-word; }
.spm-note code { word-break: break-all; }
.spm-card-change { font-size: 13px; color: #5b6b7c; margin-top: 2px; }
.spm-card-change.spm-good { color: #2e7d44; } .spm-card-change.spm-bad { color: #b03a2e; }
.spm-table td.n { white-space: nowrap; }
h3.spm-period { color: #33414f; }
/* wide tables scroll inside themselves, never the page */
table.spm-table { display: block; overflow-x: auto; max-width: 100%; }
table.spm-table > caption { display: block; }
.spm-agent-links { columns: 2 14em; }
@media (max-width: 640px) {
  body { font-size: 14px; }
  main { padding: 12px 12px 32px; }
  h1 { font-size: 22px; }
  .spm-card { flex: 1 1 140px; }
  .spm-table th, .spm-table td { padding: 4px 6px; }
  table.spm-table { font-size: 13px; }
  /* figures keep a readable text size and scroll sideways inside their box */
  .spm-figure { overflow-x: auto; }
  .spm-figure img { max-width: none; width: 520px; }
}
@media print {
  body { background: #fff; font-size: 11pt; }
  main { max-width: none; padding: 0; min-height: 0; }
  .spm-nav { display: none; }
  a { color: inherit; text-decoration: none; }
  h1, h2, h3 { break-after: avoid; page-break-after: avoid; }
  table.spm-table { display: table; overflow: visible; }
  tr, img, .spm-card, .spm-cards, .spm-figure { break-inside: avoid; page-break-inside: avoid; }
  .spm-figure img { max-width: 100%; width: auto; }
  .spm-card { background: #fff; }
}
pre { white-space: pre-wrap; background: #f6f7f9; padding: 8px; border-radius: 4px; font-size: 13px; }
.output_stderr { display: none; } .anchor-link { display: none; }
"""

_local = threading.local()


def _exporter():
    """One nbconvert exporter per thread (exporters keep state between calls)."""
    ex = getattr(_local, "exporter", None)
    if ex is None:
        from nbconvert import HTMLExporter

        ex = HTMLExporter(
            template_name="basic", exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True
        )
        _local.exporter = ex
    return ex


def _strip(nb: Any) -> Any:
    """A copy without stderr streams and without the papermill/cell metadata."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.get("cell_type") == "code":
            cell["outputs"] = [
                o
                for o in cell.get("outputs", [])
                if not (o.get("output_type") == "stream" and o.get("name") == "stderr")
            ]
        cell["metadata"] = {}
    nb.metadata = {
        "kernelspec": nb.metadata.get("kernelspec", {}),
        "language_info": nb.metadata.get("language_info", {}),
    }
    return nb


def to_html(nb: Any, *, title: str, lang: str = "en") -> str:
    """The page of an executed notebook: outputs only, inline CSS, figures embedded.

    Parameters
    ----------
    nb : NotebookNode
        An executed notebook.
    title : str
        Text of ``<title>`` (escaped).
    """
    body, _ = _exporter().from_notebook_node(_strip(nb))
    return (
        f'<!DOCTYPE html>\n<html lang="{escape(lang)}">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{PAGE_CSS}</style>\n</head>\n<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def write_atomic(path: str | Path, data: str | bytes) -> Path:
    """Write ``data`` to a temporary file beside ``path``, then rename it into place.

    The temporary file is removed when writing fails, so a full disk leaves nothing behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    mode = "wb" if isinstance(data, bytes) else "w"
    try:
        with open(tmp, mode, **({} if isinstance(data, bytes) else {"encoding": "utf-8"})) as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:  # a full disk, an interruption: no half-written file is left
        tmp.unlink(missing_ok=True)
        raise
    return path
