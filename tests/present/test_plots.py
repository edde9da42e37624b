"""Figures reach a page as one ``<img>``: an SVG data URI with the figure's alternative text,
below the figure's legend as an HTML list."""

from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET

import pandas as pd
import pytest

from spm_models.present import figures, plots

HOSTILE = 'O\'Brien & <Sons> "Ltd"'
IMG = re.compile(
    r'^<div class="spm-figure">(?:<ul class="spm-legend"[^>]*>.*</ul>)?'
    r'<img alt="([^"]*)" src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)"></div>$'
)


def _trend(name: str = "bookings") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "period": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01"]),
            "kpi": name,
            "value": [1000.0, 2500.0, 3500.0],
            "peer_median": [1200.0, 1100.0, 2000.0],
        }
    )


def test_a_figure_is_an_svg_image_with_its_alt_text_and_real_text():
    fig = plots.bookings_trend(_trend(), currency="EUR")
    match = IMG.match(figures.figure_html(fig))
    assert match, figures.figure_html(fig)[:200]
    alt, data = match.groups()
    assert alt == figures.alt_text(fig) and len(alt) > 20
    svg = ET.fromstring(base64.b64decode(data))  # well-formed XML
    texts = " ".join(t.text or "" for t in svg.iter("{http://www.w3.org/2000/svg}text"))
    assert "Bookings (EUR)" in texts  # text stays text (a browser draws it), not glyph outlines


def test_the_same_figure_gives_the_same_bytes():
    """Pages of two runs (or of a run on a cluster) compare equal: no date, no random ids."""
    assert figures.figure_svg(plots.bookings_trend(_trend(), currency="EUR")) == figures.figure_svg(
        plots.bookings_trend(_trend(), currency="EUR")
    )


def test_hostile_text_is_escaped_in_the_svg_and_in_the_alt_text():
    fig = plots._empty(HOSTILE)  # a chart's text that came from the data
    html = figures.figure_html(fig)
    alt, data = IMG.match(html).groups()
    assert "<Sons>" not in alt and "&lt;Sons&gt;" in alt
    svg = ET.fromstring(base64.b64decode(data))
    assert HOSTILE in [t.text for t in svg.iter("{http://www.w3.org/2000/svg}text")]


@pytest.mark.parametrize("registered", [True, False])
def test_in_a_notebook_a_figure_displays_as_that_html_only(registered):
    """``use_in_notebook`` replaces any PNG formatter (the inline backend's) by the SVG image."""
    from IPython.core.interactiveshell import InteractiveShell
    from matplotlib.figure import Figure

    shell = InteractiveShell.instance()
    try:
        if registered:
            shell.display_formatter.formatters["image/png"].for_type(Figure, lambda f: b"png")
        figures.use_in_notebook()
        fig = plots.bookings_trend(_trend(), currency="EUR")
        data, _ = shell.display_formatter.format(fig)
        assert "image/png" not in data and IMG.match(data["text/html"])
    finally:
        InteractiveShell.clear_instance()


def test_a_chart_with_more_ticks_than_a_stocked_figure_holds_draws_the_same():
    """A stocked figure has 16 ticks built per axis; 30 monthly bars need more, built as usual."""
    months = pd.date_range("2022-01-01", periods=30, freq="MS")
    trend = pd.DataFrame({"period": months, "kpi": "bookings", "value": range(30), "peer_median": 10.0})
    new = figures.figure_svg(plots.bookings_trend(trend, currency="EUR"))
    figures.stock(1)
    try:
        stocked = figures.figure_svg(plots.bookings_trend(trend, currency="EUR"))
        assert not figures._stocked
    finally:
        figures._stocked.clear()
    assert new == stocked and new.count("Jan 23") == 1


def _legend_items(html: str) -> list[str]:
    return re.findall(r"<li[^>]*>(<svg.*?</svg>)([^<]*)</li>", html)


def test_a_legend_is_html_above_the_chart_and_not_in_the_svg():
    fig = plots.bookings_trend(_trend(), currency="EUR")
    html = figures.figure_html(fig)
    assert html.index('<ul class="spm-legend"') < html.index("<img")
    items = dict((label, swatch) for swatch, label in _legend_items(html))
    assert list(items) == ["Peer median", "Your bookings"]
    assert 'stroke="#8c8c8c"' in items["Peer median"] and "stroke-dasharray" in items["Peer median"]
    assert "<rect" in items["Your bookings"] and 'fill="#2f6db3"' in items["Your bookings"]
    assert fig.axes[0].get_legend() is None
    svg = base64.b64decode(IMG.match(html).group(2)).decode()
    assert "Peer median" not in svg and "Your bookings" not in svg


def test_legend_labels_from_the_data_are_escaped():
    activity = pd.DataFrame(
        {"period": pd.to_datetime(["2024-01-01", "2024-02-01"]), "segment": HOSTILE, "value": [3.0, 4.0]}
    )
    html = figures.figure_html(plots.activity_trend(activity))
    assert "<Sons>" not in html and [label for _, label in _legend_items(html)] == [
        "O&#x27;Brien &amp; &lt;Sons&gt; &quot;Ltd&quot;"
    ]


def test_each_kind_of_legend_entry_is_drawn_as_it_is_in_the_chart():
    """Bars and bands as boxes (with their opacity), lines with their dashes and markers, a
    range as a thick line, scatter markers as a dot or a tick mark."""
    with figures.style():
        fig, ax = figures.new_figure()
        handles = [
            ax.bar([0, 1], [1, 2], color="#2f6db3"),
            ax.fill_between([0, 1], [0, 0], [1, 1], color="#2f6db3", alpha=0.2, lw=0),
            ax.plot([0, 1], [1, 1], color="#e08214", ls="--")[0],
            ax.plot([0, 1], [1, 2], color="#3b8f4f", marker="o")[0],
            ax.hlines([0], [0], [1], color="#2f6db3", lw=6, alpha=0.35),
            ax.scatter([0], [0], color="black"),
            ax.scatter([1], [1], color="#2f6db3", marker="|", s=200),
        ]
    figures.with_legend(fig, handles, list("abcdefg"))
    swatch = dict((label, s) for s, label in _legend_items(figures.legend_html(fig)))
    assert "<rect" in swatch["a"] and 'fill="#2f6db3"' in swatch["a"] and "opacity" not in swatch["a"]
    assert "<rect" in swatch["b"] and 'fill-opacity="0.20"' in swatch["b"]
    assert 'stroke="#e08214"' in swatch["c"] and "stroke-dasharray" in swatch["c"] and "<circle" not in swatch["c"]
    assert "<line" in swatch["d"] and "<circle" in swatch["d"] and "stroke-dasharray" not in swatch["d"]
    assert 'stroke-width="6"' in swatch["e"] and 'stroke-opacity="0.35"' in swatch["e"]
    assert "<circle" in swatch["f"] and 'fill="#000000"' in swatch["f"]
    assert 'x1="12" y1="0" x2="12" y2="12"' in swatch["g"]
    assert figures.legend_html(figures.new_figure()[0]) == ""
