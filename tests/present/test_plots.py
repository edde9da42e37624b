"""Figures reach a page as one ``<img>``: an SVG data URI with the figure's alternative text."""

from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET

import pandas as pd
import pytest

from spm_models.present import figures, plots

HOSTILE = 'O\'Brien & <Sons> "Ltd"'
IMG = re.compile(
    r'^<div class="spm-figure"><img alt="([^"]*)" src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)"></div>$'
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
