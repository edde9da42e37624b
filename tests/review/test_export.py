"""The report page of an executed notebook (spm_models/review/export.py)."""

from __future__ import annotations

import base64
import re

from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from spm_models.review.export import to_html


def _page(*cells, title="Agent <A&B>"):
    return to_html(new_notebook(cells=list(cells)), title=title)


def test_outputs_and_markdown_in_order_and_no_code():
    page = _page(
        new_markdown_cell("## Coaching points\n\nRanked by *what* each is worth & <b>why</b>."),
        new_code_cell(
            "secret_call_name(view)",
            outputs=[new_output("display_data", data={"text/html": '<div class="spm-cards">cards</div>'})],
        ),
        new_markdown_cell("### Won this month"),
        new_code_cell(
            "other_call()",
            outputs=[
                new_output("execute_result", data={"text/plain": "<X>", "text/html": "<p>won</p>"}, execution_count=1)
            ],
        ),
    )
    body = page[page.index("<main>") : page.index("</main>")]
    assert "secret_call_name" not in page and "other_call" not in page  # inputs never reach the page
    order = [body.index(x) for x in ('id="coaching-points"', "spm-cards", 'id="won-this-month"', "<p>won</p>")]
    assert order == sorted(order)
    assert "<em>what</em>" in body and "&amp;" in body and "<b>why</b>" in body  # markdown, raw HTML kept
    assert "&lt;X&gt;" not in body  # the HTML representation wins over the plain one


def test_streams_errors_and_plain_text():
    page = _page(
        new_code_cell(
            "x",
            outputs=[
                new_output("stream", name="stderr", text="DeprecationWarning: noisy library\n"),
                new_output("stream", name="stdout", text="a <tag> & more\n"),
                new_output("execute_result", data={"text/plain": "1 < 2"}, execution_count=2),
                new_output("error", ename="ValueError", evalue="bad <value>", traceback=["\x1b[0;31mTrace"]),
            ],
        )
    )
    assert "noisy library" not in page  # stderr stays in the notebook, out of the page
    assert "<pre>a &lt;tag&gt; &amp; more\n</pre>" in page
    assert "<pre>1 &lt; 2</pre>" in page
    assert "ValueError: bad &lt;value&gt;" in page and "\x1b" not in page


def test_images_become_data_uris():
    svg = '<svg xmlns="http://www.w3.org/2000/svg"><text>é</text></svg>'
    png = base64.b64encode(b"\x89PNG fake").decode()
    page = _page(
        new_code_cell("a", outputs=[new_output("display_data", data={"image/svg+xml": svg, "text/plain": "<Figure>"})]),
        new_code_cell("b", outputs=[new_output("display_data", data={"image/png": png + "\n"})]),
    )
    (svg_src,) = re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', page)
    assert base64.b64decode(svg_src).decode("utf-8") == svg
    assert f'src="data:image/png;base64,{png}"' in page
    assert "&lt;Figure&gt;" not in page


def test_the_page_is_self_contained_with_an_escaped_title():
    page = _page(new_markdown_cell("# Title"))
    assert page.startswith("<!DOCTYPE html>")
    assert "<title>Agent &lt;A&amp;B&gt;</title>" in page
    assert '<meta name="viewport"' in page and "<style>" in page
    assert "<script" not in page and "http://" not in page and "https://" not in page


def test_headings_get_ids_unique_on_their_page():
    cells = [new_markdown_cell("## Deals"), new_markdown_cell("## Deals"), new_markdown_cell("## Déjà <i>vu</i>")]
    page = _page(*cells)
    assert re.findall(r'<h2 id="([^"]+)"', page) == ["deals", "deals-2", "d-j-vu"]
    assert re.findall(r'<h2 id="([^"]+)"', _page(*cells)) == ["deals", "deals-2", "d-j-vu"]  # per page
