"""Every text of every report figure lies inside the figure: no clipped axis label, legend entry
or tick label (a fixed-margin layout once cut the bookings axis label on every agent page, the
fan chart's sixth legend entry and its overlapping dates)."""

from __future__ import annotations

import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from spm_models.present import figures, plots
from spm_models.review import monthly, views


def _figures(run_dir: str):
    agent = str(pd.read_parquet(f"{run_dir}/agents.parquet")["agent_id"].iloc[0])
    territory = str(pd.read_parquet(f"{run_dir}/territories.parquet")["territory_id"].iloc[0])
    a, t, m = views.agent_view(run_dir, agent), views.territory_view(run_dir, territory), monthly.monthly_view(run_dir)
    yield "bookings_trend", plots.bookings_trend(a.trend, currency=a.currency)
    yield "activity_trend", plots.activity_trend(a.activity)
    yield "funnel_chart", plots.funnel_chart(a.funnel, usable=a.funnel_usable)
    yield "indicator_chart", plots.indicator_chart(a.indicators)
    for who, v in (("agent", a), ("territory", t), ("company", m)):
        yield (
            f"fan_chart:{who}",
            plots.fan_chart(v.fan, v.actual_path, quota=v.quota, currency=v.currency, quarter=v.quarter),
        )
    yield "payout_chart", plots.payout_chart(a.payout_curve, a.commission, currency=a.currency)
    yield "attainment_bars", plots.attainment_bars(t.agents, quarter=t.review_quarter, closed=t.quarter_closed)
    yield "new_vs_existing_chart", plots.new_vs_existing_chart(t.new_vs_existing, currency=t.currency)
    yield "plan_chart", plots.plan_chart(m.plan, currency=m.currency)
    yield "territory_chart", plots.territory_chart(m.territory_outlook, currency=m.currency, quarter=m.quarter)
    yield "accuracy_chart", plots.accuracy_chart(m.accuracy_rows, currency=m.currency, label_column="label")


def _renderer(fig):
    canvas = FigureCanvasAgg(fig)  # the figures are built without pyplot, so without a canvas
    canvas.draw()
    return canvas.get_renderer()


def test_every_text_of_every_figure_is_inside_it(review_run):
    """What each axes draws (its tick labels in view, axis labels, legend, texts) lies inside
    the figure; ``Axes.get_tightbbox`` is the box of what is actually drawn."""
    seen = 0
    for name, fig in _figures(str(review_run.artifacts)):
        if fig is None:
            continue
        renderer = _renderer(fig)
        box = fig.bbox
        for ax in fig.axes:
            ext = ax.get_tightbbox(renderer)
            inside = (
                ext.x0 >= box.x0 - 0.5 and ext.x1 <= box.x1 + 0.5 and ext.y0 >= box.y0 - 0.5 and ext.y1 <= box.y1 + 0.5
            )
            assert inside, f"{name}: what the axes draw spans {ext}, outside the figure {box}"
        seen += 1
    assert seen >= 10


@pytest.mark.parametrize("name", ["fan_chart:agent"])
def test_date_ticks_do_not_overlap(review_run, name):
    fig = dict(_figures(str(review_run.artifacts)))[name]
    renderer = _renderer(fig)
    ticks = [t.get_window_extent(renderer) for t in fig.axes[0].get_xticklabels() if t.get_text()]
    assert len(ticks) >= 3
    for left, right in zip(ticks, ticks[1:]):
        assert left.x1 < right.x0, "x tick labels overlap"


def test_a_stocked_figure_draws_the_same_bytes_as_a_new_one(review_run):
    """The fork server builds blank figures ahead (``figures.stock``); every chart drawn on
    one is byte for byte the chart drawn on a new figure."""
    new = [(name, figures.figure_svg(fig)) for name, fig in _figures(str(review_run.artifacts)) if fig is not None]
    figures.stock(len(new) + 3)
    try:
        stocked = [
            (name, figures.figure_svg(fig)) for name, fig in _figures(str(review_run.artifacts)) if fig is not None
        ]
        assert len(figures._stocked) <= 3  # the charts were drawn on stocked figures
    finally:
        figures._stocked.clear()
    assert len(new) >= 10
    for (name, a), (_, b) in zip(new, stocked, strict=True):
        assert a == b, name
