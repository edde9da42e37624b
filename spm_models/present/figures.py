"""How a report figure is made and shown: its style, a blank figure to draw on, SVG for a page.

The charts themselves are in :mod:`spm_models.present.plots`; this module is what they share.
Figures are built without pyplot, so no global figure state is kept between cells and figures
are freed with their last reference. Styling is seaborn's "whitegrid" theme applied inside a
context (no global ``rcParams`` change), and ``text.parse_math`` is off so a ``$`` in a name
is drawn as a dollar sign, not parsed as mathematics.

Blank figures made ahead of time (:func:`stock`). Most of a small chart's CPU is matplotlib
building the axes and their ticks, the same for every chart: 15 ms of a 40 ms figure. The
review's fork server (:mod:`spm_models.review.kernels.server`) calls :func:`stock` before it
forks, so every report kernel starts with blank figures whose axes and ticks are built, and
:func:`new_figure` hands them out while any are left, then builds new ones. A stocked figure
draws the same bytes as a new one (``tests/present/test_figures.py`` compares every chart both
ways): it is made by the same calls in the same style, and a figure's size and margins are
set when it is handed out.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = [
    "WIDTH",
    "HEIGHT",
    "DPI",
    "style",
    "new_figure",
    "stock",
    "with_alt",
    "alt_text",
    "with_legend",
    "legend_html",
    "figure_svg",
    "figure_html",
    "use_in_notebook",
]

WIDTH, HEIGHT, DPI = 7.0, 3.3, 96
#: Ticks built ahead on each axis of a stocked figure (a chart with more builds the rest).
_STOCKED_TICKS = 16
_stocked: list[tuple[Any, Any]] = []


@contextmanager
def style() -> Iterator[None]:
    """The report style (seaborn "whitegrid", notebook context at 0.95), for the ``with`` block."""
    import matplotlib
    import seaborn as sns

    rc = {
        **sns.axes_style("whitegrid"),
        **sns.plotting_context("notebook", font_scale=0.95),
        "text.parse_math": False,
        "svg.hashsalt": "spm",
    }
    with matplotlib.rc_context(rc):
        yield


def _blank() -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH, HEIGHT), dpi=DPI)
    return fig, fig.subplots()


def stock(n: int = 8) -> None:
    """Build ``n`` blank figures (in the report style, each with its axes and ticks) for
    :func:`new_figure` to hand out; the fork server does it once, before it forks."""
    with style():
        for _ in range(n):
            fig, ax = _blank()
            ax.xaxis.get_major_ticks(_STOCKED_TICKS)
            ax.yaxis.get_major_ticks(_STOCKED_TICKS)
            _stocked.append((fig, ax))


def new_figure(
    height: float = HEIGHT,
    width: float = WIDTH,
    *,
    left: float = 0.115,
    right: float = 0.955,
    bottom: float | None = None,
    top: float | None = None,
):
    """A figure with one axes and fixed margins (a layout engine would cost a second drawing
    pass). Its legend, if any, is part of the page, not of the figure (:func:`with_legend`).

    Call it inside :func:`style`. A stocked figure (:func:`stock`) is used while any is left.
    """
    fig, ax = _stocked.pop() if _stocked else _blank()
    fig.set_size_inches(width, height)
    fig.subplots_adjust(
        left=left,
        right=right,
        bottom=0.5 / height if bottom is None else bottom,
        top=(1 - 0.15 / height) if top is None else top,
    )
    return fig, ax


def with_legend(fig, handles, labels) -> None:
    """Give the figure a legend drawn by the page (:func:`legend_html`), one entry per handle.

    The legend is HTML above the chart, not part of the SVG: its text follows the page's font
    size, so it stays readable on a phone, where the chart itself scrolls sideways at a fixed
    width; it never covers data; and the figure is cheaper to draw (matplotlib's legend, a
    layout of packed boxes measured at every draw, was a sixth of a report's figure time).
    """
    fig.spm_legend = [(_swatch(h), str(label)) for h, label in zip(handles, labels)]


def _swatch(handle) -> str:
    """A small inline SVG of how ``handle`` is drawn: a line (its dashes, its marker), a
    marker alone, or a filled box (bars, bands), in the handle's colours and opacity."""
    from matplotlib.collections import Collection, LineCollection, PathCollection
    from matplotlib.colors import to_hex, to_rgba
    from matplotlib.container import Container
    from matplotlib.lines import Line2D

    def paint(attr: str, rgba) -> str:
        r = to_rgba(rgba)
        return f'{attr}="{to_hex(r)}"' + (f' {attr}-opacity="{r[3]:.2f}"' if r[3] < 1 else "")

    if isinstance(handle, Container):  # bars: drawn as their first bar, as matplotlib's legend does
        handle = handle.patches[0] if getattr(handle, "patches", None) else handle[0]
    shapes = []
    if isinstance(handle, Line2D):
        style, width = handle.get_linestyle(), min(float(handle.get_linewidth()), 3.0)
        if style not in ("None", "", " "):
            dash = {"--": "5 3", ":": "1.5 2", "-.": "5 2 1.5 2"}.get(style)
            shapes.append(
                f'<line x1="1" y1="6" x2="23" y2="6" {paint("stroke", handle.get_color())} '
                f'stroke-width="{width:g}"' + (f' stroke-dasharray="{dash}"' if dash else "") + "/>"
            )
        if handle.get_marker() not in (None, "None", "", " "):
            shapes.append(f'<circle cx="12" cy="6" r="3" {paint("fill", handle.get_markerfacecolor())}/>')
    elif isinstance(handle, LineCollection):  # a range drawn as a thick line
        shapes.append(
            f'<line x1="1" y1="6" x2="23" y2="6" {paint("stroke", handle.get_color()[0])} '
            f'stroke-width="{min(float(handle.get_linewidths()[0]), 6.0):g}"/>'
        )
    elif isinstance(handle, PathCollection):  # scatter markers: a tick mark or a dot
        verts = handle.get_paths()[0].vertices
        colour = handle.get_facecolor()[0] if len(handle.get_facecolor()) else handle.get_edgecolor()[0]
        if float(verts[:, 0].max() - verts[:, 0].min()) < 1e-9:  # the "|" marker
            shapes.append(f'<line x1="12" y1="0" x2="12" y2="12" {paint("stroke", colour)} stroke-width="2"/>')
        else:
            shapes.append(f'<circle cx="12" cy="6" r="4" {paint("fill", colour)}/>')
    else:  # bars and bands (a patch or a filled collection)
        face = handle.get_facecolor()[0] if isinstance(handle, Collection) else handle.get_facecolor()
        shapes.append(f'<rect x="2" y="1" width="20" height="10" {paint("fill", face)}/>')
    return (
        '<svg width="24" height="12" viewBox="0 0 24 12" aria-hidden="true" '
        'style="vertical-align:middle;margin-right:4px">' + "".join(shapes) + "</svg>"
    )


def legend_html(fig) -> str:
    """The figure's legend (:func:`with_legend`) as an HTML list; empty without one. Styled
    inline, so it looks the same in a report page and in JupyterLab."""
    from html import escape

    entries = getattr(fig, "spm_legend", None)
    if not entries:
        return ""
    items = "".join(f'<li style="white-space:nowrap">{swatch}{escape(label)}</li>' for swatch, label in entries)
    return (
        '<ul class="spm-legend" style="list-style:none;margin:4px 0 0;padding:0;display:flex;flex-wrap:wrap;'
        f'gap:2px 16px;font-size:0.85em">{items}</ul>'
    )


def with_alt(fig, text: str):
    """Attach the figure's alternative text (what it shows, with its key numbers) for the page."""
    fig.spm_alt = text
    return fig


def alt_text(fig) -> str:
    """The alternative text a report figure carries (a generic one for another figure)."""
    return getattr(fig, "spm_alt", "") or "Chart of the report (its numbers are in the table beside it)."


#: rcParams of the SVG writer: text as ``<text>`` (not glyph paths), ids from a fixed salt so the
#: same figure gives the same bytes in every run (pages compare equal across machines).
_SVG_RC = {"svg.fonttype": "none", "svg.hashsalt": "spm", "svg.image_inline": True}


def figure_svg(fig) -> str:
    """The figure as SVG text (same figure, same bytes)."""
    import io

    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context(_SVG_RC):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    return buf.getvalue()


def figure_html(fig) -> str:
    """The figure as its legend (:func:`legend_html`) and an ``<img>`` whose ``src`` is an SVG
    data URI and whose ``alt`` is the figure's :func:`alt_text`, in ``<div class="spm-figure">``
    (the page's CSS lets the image scroll sideways on a phone)."""
    import base64
    from html import escape

    data = base64.b64encode(figure_svg(fig).encode("utf-8")).decode("ascii")
    return (
        f'<div class="spm-figure">{legend_html(fig)}'
        f'<img alt="{escape(alt_text(fig))}" src="data:image/svg+xml;base64,{data}"></div>'
    )


def use_in_notebook() -> None:
    """Show :class:`~matplotlib.figure.Figure` results of notebook cells as an embedded SVG image.

    The figure becomes one ``<img>`` whose ``src`` is an SVG data URI and whose ``alt`` is
    :func:`alt_text`: vector lines and real text, sharp on a phone's screen and when printed,
    about half the bytes of a 96 dpi PNG and about 40% less CPU to make (no rasterised
    glyphs, no PNG compression; ``bench/review.py`` measures the report). The SVG's text
    names a font list that ends in ``sans-serif``, so a browser without DejaVu Sans picks its
    own sans-serif font.
    """
    from IPython import get_ipython
    from matplotlib.figure import Figure

    shell = get_ipython()
    if shell is None:
        return
    formatters = shell.display_formatter.formatters
    for mime in ("image/png", "image/svg+xml", "image/jpeg", "application/pdf"):
        formatters[mime].type_printers.pop(Figure, None)  # the inline backend's, if it registered one
    formatters["text/html"].for_type(Figure, figure_html)
