"""Executed notebook -> one self-contained HTML page with no code in it.

The page holds the cells' outputs and the markdown cells, nothing else: no inputs, no
prompts. Figures are already ``<img>`` tags with SVG data URIs in the outputs
(:func:`spm_models.present.figures.figure_html`), so they travel inside the page. The page around
it is ours: inline CSS, no script, no external link, a ``<title>`` naming the subject
(escaped), so it opens offline and shows the same everywhere. Text the kernel wrote to stderr
(library warnings) is kept in the executed notebook for whoever debugs it, and left out of the
page.

Why this is not nbconvert's ``HTMLExporter``: a report page needs only its outputs (which are
HTML the review wrote) and its markdown, while the exporter runs a dozen preprocessors,
validates the whole notebook against its schema after each one, renders jinja templates it
finds on the data path (which a non-editable install may put elsewhere) and then re-parses
the page it built with BeautifulSoup to add attributes these pages never need. That was about
45 ms of CPU per page, over a tenth of a report's cost (``bench/review.py``); this walk takes
a few. Markdown is rendered by mistune, the library nbconvert itself uses, with raw HTML kept
as nbconvert did.
"""

from __future__ import annotations

import base64
import os
import re
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
"""

_local = threading.local()

#: Output types shown on a page, in order of preference (the first one an output has is used).
_PREFERENCE = ("text/html", "image/svg+xml", "image/png", "image/jpeg", "text/markdown", "text/plain")


def _markdown() -> Any:
    """One mistune renderer per thread, headings with ids (a section can be linked to)."""
    md = getattr(_local, "markdown", None)
    if md is None:
        import mistune

        class _Renderer(mistune.HTMLRenderer):
            def __init__(self) -> None:
                super().__init__(escape=False)
                self.ids: set[str] = set()  # the ids given on the current page (reset per page by _body)

            def heading(self, text: str, level: int, **attrs: Any) -> str:
                slug = re.sub(r"[^0-9a-z]+", "-", re.sub(r"<[^>]+>", "", text).lower()).strip("-")
                if not slug:
                    return f"<h{level}>{text}</h{level}>\n"
                unique, n = slug, 1
                while unique in self.ids:  # a heading repeated on the page gets -2, -3, ...
                    n += 1
                    unique = f"{slug}-{n}"
                self.ids.add(unique)
                return f'<h{level} id="{unique}">{text}</h{level}>\n'

        md = mistune.create_markdown(escape=False, renderer=_Renderer(), plugins=["table", "strikethrough"])
        _local.markdown = md
    return md


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def _output_html(out: Any) -> str:
    """One output as HTML; stderr and unknown kinds give nothing."""
    kind = out.get("output_type")
    if kind == "stream":
        return f"<pre>{escape(_text(out.get('text', '')))}</pre>" if out.get("name") == "stdout" else ""
    if kind == "error":
        return f"<pre>{escape(str(out.get('ename', '')))}: {escape(str(out.get('evalue', '')))}</pre>"
    data = out.get("data", {})
    mime = next((m for m in _PREFERENCE if m in data), None)
    if mime is None:
        return ""
    value = _text(data[mime])
    if mime == "text/html":
        return value
    if mime == "image/svg+xml":
        value = base64.b64encode(value.encode("utf-8")).decode("ascii")
    if mime.startswith("image/"):
        return f'<img alt="Figure" src="data:{mime};base64,{value.strip()}">'
    if mime == "text/markdown":
        return _markdown()(value)
    return f"<pre>{escape(value)}</pre>"


def _body(nb: Any) -> str:
    """The markdown cells rendered and the code cells' outputs, in notebook order."""
    parts = []
    _markdown().renderer.ids.clear()
    for cell in nb.cells:
        kind = cell.get("cell_type")
        if kind == "markdown":
            parts.append(_markdown()(_text(cell.get("source", ""))))
        elif kind == "code":
            parts.extend(_output_html(o) for o in cell.get("outputs", []))
    return "\n".join(p for p in parts if p)


def to_html(nb: Any, *, title: str, lang: str = "en") -> str:
    """The page of an executed notebook: outputs only, inline CSS, figures embedded.

    Parameters
    ----------
    nb : NotebookNode
        An executed notebook.
    title : str
        Text of ``<title>`` (escaped).
    """
    body = _body(nb)
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
