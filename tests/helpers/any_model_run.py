"""Issue 13 end to end for one classifier: ``generate.py`` (explain + compare at smoke budgets, every CAM), then
``mkdocs build --strict`` and the offline link check, then what the pages must say about the model. Shared by
tests/test_any_model*.py (two files, so that ``--dist loadfile`` can put them on two workers)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml
from markupsafe import escape

from tests.helpers.site_fixture import build_docs_site
from xai.cli import main

REPO = Path(__file__).resolve().parents[2]
CAMS = ["gradcam", "ablationcam", "scorecam", "gradcampp", "xgradcam", "layercam", "hirescam", "eigencam"]
CHECKPOINT_CLASSES = [f"class {index:02d} of ours" for index in range(12)]


@dataclass
class Case:
    """One classifier to explain: a torchvision model with seeded random weights, or a checkpoint of our own."""

    model: str
    checkpoint_classes: int = 0
    """> 0: a ``model`` checkpoint with this many classes, written by the test (and its class file)."""
    scorecam: bool = True
    """Whether ScoreCAM runs too: it costs one full forward per target channel (769 for convnext_tiny, 5.8 min on
    the 2-core CPU); its equality with grad-cam per family is tests/test_cams_families.py's check."""

    @property
    def cams(self) -> list[str]:
        return [cam for cam in CAMS if self.scorecam or cam != "scorecam"]

    @property
    def id(self) -> str:
        return f"{self.model}-checkpoint{self.checkpoint_classes}" if self.checkpoint_classes else self.model


@dataclass
class Outcome:
    docs: Path
    site: Path
    seconds: float
    expected: dict[str, str] = field(default_factory=dict)
    """Texts the explanations page must hold: display name, architecture, weights, target layer."""


def config_for(case: Case, work: Path) -> Path:
    from xai.shapes import plan_target

    explain: dict[str, object] = {
        "model": case.model,
        "methods": ["lime", *case.cams],
        "batch_size": 16,
        "lime": {"num_samples": 16, "stability_seeds": 1},
    }
    config: dict[str, object] = {
        "name": f"any-{case.id}",
        "weights": "random",
        "seed": 0,
        "images": "task",
        "max_images": 1,
        "stages": ["explain", "compare"],
        "output_dir": str(work / "docs"),
        "cache_dir": str(work / "cache"),
        "explain": explain,
        "compare": {
            "faithfulness_steps": 4,
            "random_draws": 1,
            "null_draws": 100,
            "sanity_check": True,
            "sanity_images": 1,
            "sanity_lime_samples": 16,
            # ScoreCAM under 7 model states is 7 x (C + 1) forwards (2.6 of the checkpoint case's 3.1 min): the
            # sanity check runs every other CAM; ScoreCAM is explained once above where a forward is cheap.
            "sanity_methods": ["lime", *(cam for cam in case.cams if cam != "scorecam")],
        },
    }
    if case.checkpoint_classes:
        # The real path for a user's checkpoint: 'pretrained' reads it (weights_only=True, sha256 recorded);
        # relative paths are read from the config file's folder.
        torch.manual_seed(1)
        module = __import__("torchvision").models.get_model(case.model, num_classes=case.checkpoint_classes)
        torch.save(module.state_dict(), work / "ours.pt")
        (work / "classes.txt").write_text("\n".join(CHECKPOINT_CLASSES[: case.checkpoint_classes]) + "\n")
        explain.update(checkpoint="ours.pt", classes="classes.txt")
        config["weights"] = "pretrained"
        config["weights_dir"] = str(work / "weights")  # empty: nothing published may be needed
    plan_target(case.model, "DEFAULT", "auto")  # warm the shape inference outside the timing
    path = work / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run_case(case: Case, work: Path) -> Outcome:
    """generate.py on ``case`` and a strict site build; the seconds are the generate run's (printed for the
    lead's CI budget). The test provides the data mirror (the ``mirror`` fixture sets $XAI_MIRROR for it)."""
    config = config_for(case, work)
    started = time.perf_counter()
    assert main(["--config", str(config), "--quiet"]) == 0
    seconds = time.perf_counter() - started
    print(f"\n[any-model] {case.id}: generate (explain + compare) {seconds:.1f} s")
    docs, site = work / "docs", work / "site"
    build_docs_site(docs, site)
    return Outcome(docs, site, seconds)


def check_pages(case: Case, outcome: Outcome) -> None:
    """The built report names this model, its weights and its layers, never another model; links all resolve."""
    from tests.helpers.site_checks import check_image_alt_text, check_links
    from xai.models import file_sha256
    from xai.report.page import md_text
    from xai.shapes import plan_target

    docs = outcome.docs
    target = plan_target(case.model, "DEFAULT", "auto").target
    explanations = (docs / "explanations" / "index.md").read_text()
    assert "Images that failed" not in explanations, explanations
    assert f"`{target.path}`" in explanations and str(escape(target.reason)) in explanations
    assert f"| Architecture (torchvision) | {case.model} |" in explanations
    image_pages = sorted((docs / "explanations").glob("image-*.md"))
    assert len(image_pages) == 1
    image_page = image_pages[0].read_text()
    assert f"CAM target layer `{target.path}`" in image_page
    from xai.explain.registry import METHODS

    tabs = re.findall(r'^=== "(.+)"$', image_page, flags=re.MULTILINE)
    assert tabs == [METHODS[method].title for method in ["lime", *case.cams]]
    if case.checkpoint_classes:
        sha = file_sha256(docs.parent / "ours.pt")
        assert str(md_text(f"ours.pt (sha256:{sha})")) in explanations and sha in image_page
        assert f"| Classes | {case.checkpoint_classes} |" in explanations
        assert any(name in image_page for name in CHECKPOINT_CLASSES)
        assert "seeded random weights" not in explanations
    else:
        assert str(md_text("random(seed=0)")) in explanations and "seeded random weights" in explanations
    comparison = (docs / "comparison" / "index.md").read_text()
    assert "Not computed in this build" not in comparison
    assert target.path in comparison
    pages = {page.relative_to(docs).as_posix(): page.read_text() for page in docs.rglob("*.md")}
    others = ["ResNet50", "resnet50"] + ([] if case.model.startswith("resnet18") else ["ResNet18"])
    said = sorted(f"{name}: {word}" for name, text in pages.items() for word in others if re.search(word, text))
    assert not said, said
    assert check_links(outcome.site) == []
    assert check_image_alt_text(outcome.site) == []
