"""The neuron catalogue: its page rendered by the real builder from fixed artifacts equals its golden file
(tests/golden/dissection__resnet18_imagenet-layer4.md), labels are escaped, and once built by MkDocs each neuron is
a search entry of its own (found by its label, pointing at ``#unit-N``) that stays out of the table of contents.

The catalogue in a browser (filter, sort, lazy images, search box) is checked on the smoke site in
tests/test_site_browser.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.helpers import report_artifacts
from tests.helpers.golden import check_golden
from tests.helpers.run_record import RUN, run_plan
from xai.report import pages_dissect
from xai.report.page import Page
from xai.report.render import render_pages, render_report

RUN_DISSECT = {**RUN, "stages": ["dissect"], "weights_ids": {"resnet18_imagenet": "random(seed=0)"}}
PAGE = "dissection/resnet18_imagenet-layer4.md"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report's dissection pages from the fixed artifacts (both presets, layer4 and fc)."""
    work = tmp_path_factory.mktemp("catalogue")
    artifacts = {"dissect": report_artifacts.dissect_artifacts(work / "probe")}
    render_report(RUN_DISSECT, artifacts, work / "docs", run_plan(RUN_DISSECT), [pages_dissect])
    return work / "docs"


def test_catalogue_page_matches_golden(rendered: Path) -> None:
    text = (rendered / PAGE).read_text()
    check_golden("dissection__resnet18_imagenet-layer4.md", text)
    card = r'<article class="xai-unit[^"]*" data-unit="(\d+)" data-score="([0-9.]+)" data-label="(\w+)"'
    cards = re.findall(card, text)
    # the planted labels of report_artifacts.LABELS, unit order, best score first
    assert [(int(u), label) for u, _, label in cards] == list(enumerate(["dog", "dog", "dog", "cat", "striped", "the"]))
    assert [float(score) for _, score, _ in cards] == sorted((float(s) for _, s, _ in cards), reverse=True)
    assert all(f'<h4 id="unit-{unit}">Unit {unit} · ' in text for unit in range(6))
    assert '<button type="button" data-xai-filter="dog">dog <span>3</span></button>' in text  # most frequent
    assert "**layer4**" in text and "[fc](resnet18_imagenet-fc.md)" in text  # the model's other layer
    # every strip lazy, with its size reserved (5 thumbnails of 64 px and 4 gaps of 2 px)
    assert text.count("{ .thumb loading=lazy width=328 height=64 }") == 6


def test_weak_neurons_are_marked_by_the_layer_threshold(rendered: Path) -> None:
    text = (rendered / PAGE).read_text()
    weak = re.findall(r'<article class="xai-unit xai-unit--weak" data-unit="(\d+)"', text)
    scores = dict(re.findall(r'data-unit="(\d+)" data-score="([0-9.]+)"', text))
    threshold = float(re.search(r"interpretability threshold \(([0-9.]+);", text.replace("\n", " ")).group(1))
    assert weak and set(weak) == {unit for unit, score in scores.items() if float(score) <= threshold}


def test_labels_are_escaped_in_text_and_attributes(tmp_path: Path) -> None:
    neuron = {
        "unit": 0,
        "label": '<b>bold</b> | "q"',
        "score": "0.410",
        "weak": False,
        "runner_ups": ["<i>cat</i> (0.300)"],
        "strip": "fc-unit-0000.jpg",
        "top_images": ["n01_[a]"],
    }
    context = {
        "title": "m · fc neurons",
        "model": "m",
        "layer": "fc",
        "neurons": [neuron],
        "threshold": "0.200",
        "interpretable": "50.0%",
        "strips": "../assets/strips",
        "strip_width": 64,
        "strip_height": 64,
        "similarity": "soft_wpmi",
        "model_title": "m",
        "about": "",
        "layers": [{"name": "fc", "page": "m-fc.md", "current": True}],
        "frequent": [('<b>bold</b> | "q"', 2)],
    }
    render_pages([Page("dissection/m-fc.md", "catalogue.md.j2", context)], tmp_path, RUN)
    text = (tmp_path / "dissection" / "m-fc.md").read_text()
    assert "<b>" not in text and "<i>" not in text
    assert 'data-label="&lt;b&gt;bold&lt;/b&gt; | &#34;q&#34;"' in text
    assert "Unit 0 · &lt;b&gt;bold&lt;/b&gt; | &#34;q&#34;</h4>" in text
    assert "![Top-activating probe images of unit 0: n01_(a)]" in text  # brackets would end the alt text


@pytest.mark.slow
def test_each_neuron_is_a_search_entry_and_not_a_toc_entry(rendered: Path, tmp_path: Path) -> None:
    """MkDocs with the shipped mkdocs.yml: the search index holds "Unit N · label" at ``#unit-N`` for every neuron
    (how site search finds the neurons labelled 'dog'), and the table of contents none of them."""
    import shutil

    from tests.helpers.site_fixture import build_docs_site

    docs = Path(shutil.copytree(rendered, tmp_path / "docs"))
    for page in ("index.md", "explanations/index.md", "comparison/index.md", "methods.md"):
        (docs / page).parent.mkdir(parents=True, exist_ok=True)
        (docs / page).write_text("# Placeholder\n")
    build_docs_site(docs, tmp_path / "site")
    entries = json.loads((tmp_path / "site" / "search" / "search_index.json").read_text())["docs"]
    units = {e["location"]: e["title"] for e in entries if "#unit-" in e["location"]}
    layer4 = {k: v for k, v in units.items() if k.startswith("dissection/resnet18_imagenet-layer4/")}
    assert layer4 == {
        f"dissection/resnet18_imagenet-layer4/#unit-{unit}": f"Unit {unit} · {label}"
        for unit, label in enumerate(["dog", "dog", "dog", "cat", "striped", "the"])
    }
    dogs = [location for location, title in units.items() if title.endswith("· dog")]
    assert len(dogs) == 3 + 1  # layer4's three and fc's unit 0
    # scores and runner-ups stay out of the index (a search for 'cat' must not list every neuron with a cat runner-up)
    assert all(e["text"] in ("", "<p></p>") for e in entries if "#unit-" in e["location"])
    html = (tmp_path / "site" / "dissection" / "resnet18_imagenet-layer4" / "index.html").read_text()
    assert html.count('id="unit-') == 6
    assert not re.search(r'<a[^>]*href="#unit-\d+"[^>]*class="md-nav__link', html)  # no table-of-contents entry
