"""The review of the shipped Maven CRM example, end to end (slow: 39 reports)."""

from __future__ import annotations

import re
from html import escape
from pathlib import Path

import pytest

from spm_models.data.sources.maven import load_maven
from spm_models.data.validation import validate
from spm_models.review import run_review

MAVEN = Path(__file__).resolve().parents[2] / "data" / "examples" / "maven_crm"
DATA_URI = re.compile(r"data:image/[a-z+]+;base64,[A-Za-z0-9+/=]+")


@pytest.mark.slow
def test_maven_review_end_to_end(tmp_path):
    ds = validate(load_maven(MAVEN))
    result = run_review(dataset=ds, out=tmp_path, workers=2, progress=False, log=open(tmp_path / "log.txt", "w"))
    s = result.manifest["summary"]
    assert result.exit_code == 0 and s["total"] == 35 + 3 + 1 and s["ok"] == s["total"]
    assert result.month == "2017-12"
    # the target is 90 s on 2 cores; a generous bound here catches regressions on busy machines
    assert result.timings["total"] < 180, result.timings
    names = set(ds["agents"]["agent_name"])
    for e in result.manifest["reports"]:
        page = (result.run_folder / e["output"]).read_text(encoding="utf-8")
        text = DATA_URI.sub("data:", page)
        assert "<script" not in text and "import " not in text and page.count('<div class="spm-figure">') >= 3
        assert f"<h1>{escape(e['subject'], quote=False)}</h1>" in page
        if e["kind"] == "agent":  # agent ids are names in this export: check both at once
            assert not [n for n in names - {e["subject"]} if n in text], e["id"]
            assert "stage-to-stage conversion cannot be measured" in text  # the export records no lost stages
    index = (result.run_folder / "index.html").read_text(encoding="utf-8")
    assert all((result.run_folder / link).is_file() for link in re.findall(r'href="([^"]+)"', index))
