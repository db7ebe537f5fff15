"""The comparison, home and methods pages name the explained model from the artifacts, never a ResNet it is not."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from tests.helpers.compare_artifacts import faithfulness_result as _faithfulness
from tests.helpers.compare_artifacts import image_comparisons as _comparisons
from tests.helpers.compare_artifacts import segment_grid as _segments
from xai.classifiers import Preprocessing
from xai.compare import (
    EDGE_METHOD,
    SampleImage,
    SamplePlan,
    SampleResults,
    SampleSettings,
    SampleSource,
    SanityResult,
    summarise,
    summarise_sample,
)
from xai.compare.results import CompareArtifacts
from xai.explain.explained import ExplainArtifacts, ExplainedImage
from xai.explain.lime_image import LimeParams
from xai.report import pages_compare, pages_home
from xai.report.render import render_report

VIT_CASCADE = (
    "encoder.ln+heads",
    *(f"encoder.layers.encoder_layer_{i}" for i in range(11, -1, -1)),
    "conv_proj+class_token+encoder.pos_embedding",
)
"""compare.layer_groups(vit_b_16), as the stage records it (checked in test_compare_layer_groups)."""


def _vit_artifacts(n_images: int = 3) -> dict[str, object]:
    """Explain and compare artifacts of a ViT-B/16 run with its SWAG weights (384 px, bicubic), pretrained."""
    comparisons, cross = _comparisons(n_images)
    methods = {"lime": (0.3, 0.7), "GradCAM": (0.2, 0.8), "random:0": (0.5, 0.5), "centre": (0.45, 0.55)}
    faithful = [_faithfulness(f"img{i}", methods) for i in range(n_images)]
    spearman = np.array([[[0.2, 0.3, 0.1], [0.1, 0.0, 0.05]], [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]])
    sanity = SanityResult(
        False, ("GradCAM", EDGE_METHOD), VIT_CASCADE[:2], spearman, np.abs(spearman), spearman * 0.9, 0
    )
    rng = np.random.default_rng(0)
    images = []
    for i in range(n_images):
        lime = SimpleNamespace(segments=_segments(), weights=rng.normal(size=16))
        cams = (SimpleNamespace(method="GradCAM", map=rng.random((16, 16))),)
        pixels = rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
        images.append(ExplainedImage(f"img{i}", pixels, SimpleNamespace(lime=lime, cams=cams)))
    explained = ExplainArtifacts(
        "vit_b_16_IMAGENET1K_SWAG_E2E_V1",
        ["a", "b"],
        "encoder.layers[-1].ln_1",
        ("lime", "gradcam"),
        images=images,
        architecture="vit_b_16",
        weights_member="IMAGENET1K_SWAG_E2E_V1",
        weights_description="vit_b_16_swag-9ac1b537.pth:sha256-prefix:9ac1b537",
        target_reason="layer norm before attention in the last encoder block",
        target_channels=768,
        reshape="vit_tokens_to_map",
        preprocessing=Preprocessing(384, 384, "bicubic", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    )
    compared = CompareArtifacts(
        comparisons,
        faithful,
        sanity,
        summarise(comparisons, faithful, sanity, k=5, cross_image=cross),
        explained,
        cam_grid=(24, 24),
        cascade=VIT_CASCADE,
        sample=_sample(),
    )
    return {"explain": explained, "compare": compared}


def _sample(n_images: int = 4) -> SampleResults:
    """A powered sample of ``n_images`` (the summary tests' synthetic comparisons, renamed) with one failed image."""
    comparisons, _ = _comparisons(n_images)
    rng = np.random.default_rng(1)
    images = [
        SampleImage(
            f"s{i}", 3, _segments(), rng.normal(size=(1, 16)), (0,), ("GradCAM",), rng.random((1, 16, 16)),
            dataclasses.replace(comparison, image_id=f"s{i}"),
            _faithfulness(f"s{i}", {"lime": (0.3, 0.7), "GradCAM": (0.2, 0.8 + 0.01 * i), "random:0": (0.5, 0.5)}),
            100, 1.5,
        )
        for i, comparison in enumerate(comparisons)
    ]  # fmt: skip
    settings = SampleSettings(("GradCAM",), LimeParams(), 1, (5, 10), (0.1,), 100, 8, 2, None, "x", None)
    drawn = tuple(SampleSource(f"s{i}", f"s{i}.png", "0" * 64, False) for i in range(n_images + 1))
    results = SampleResults(SamplePlan(settings, drawn, "imagenet-samples", n_images + 1, 0, 30), images)
    results.failed.append((f"s{n_images}", "s4.png: corrupt or truncated image"))
    results.summary = summarise_sample(images, k=5)
    return results


def _run(weights_ids: dict[str, str]) -> dict[str, object]:
    config = {
        "explain": {"model": "vit_b_16", "model_weights": "IMAGENET1K_SWAG_E2E_V1", "preprocess": "weights"},
        "compare": {},
        "dissect": {"similarity": "soft_wpmi"},
    }
    return {
        "config_name": "vit",
        "config_yaml": "name: vit\n",
        "config": config,
        "weights": "pretrained",
        "random_weights": False,
        "seed": 0,
        "device": "cpu",
        "versions": {"torch": "2"},
        "weights_ids": weights_ids,
        "timings": {},
        "images": [],
        "skipped": [],
        "cache": {"hits": 0, "misses": 0},
        "stages": ["explain", "compare"],
    }


def test_a_vit_run_never_says_resnet_and_names_its_model_weights_and_layer(tmp_path: Path) -> None:
    run = _run({"vit_b_16_IMAGENET1K_SWAG_E2E_V1": "vit_b_16_swag-9ac1b537.pth:sha256-prefix:9ac1b537"})
    from xai.config import Config
    from xai.plan import make_plan

    config = Config.model_validate({"explain": run["config"]["explain"], "stages": ["explain", "compare"]})
    artifacts = _vit_artifacts()
    written = render_report(run, artifacts, tmp_path, make_plan(config), [pages_compare, pages_home])
    pages = {name: (tmp_path / name).read_text() for name in written if name.endswith(".md")}
    assert set(pages) == {"comparison/index.md", "index.md", "methods.md"}
    for name, text in pages.items():
        # the methods page's concepts section names the heads its formula is exact for (ResNet's among them)
        generic = text.split("## Why this prediction, in concepts")[-1].split("## What the numbers cannot say")[0]
        assert not re.search("resnet", text.replace(generic, ""), re.IGNORECASE), f"{name} names a ResNet"
        assert "H/32" not in text, name  # a ResNet's CAM grid

    comparison, home, methods = pages["comparison/index.md"], pages["index.md"], pages["methods.md"]
    assert "**Explained model:** `vit_b_16_IMAGENET1K_SWAG_E2E_V1` (torchvision `vit_b_16`)" in comparison
    assert "weights vit_b_16_swag-9ac1b537.pth:sha256-prefix:9ac1b537" in comparison
    assert "`encoder.layers[-1].ln_1`" in comparison
    assert "own 24x24 grid" in comparison  # the random baselines' grid: the CAMs' (ViT-B/16 at 384 px)
    assert "`encoder.ln+heads`, `encoder.layers.encoder_layer_11`" in comparison  # the cascade, output end first
    assert "`conv_proj+class_token+encoder.pos_embedding`." in comparison
    assert "| encoder.ln+heads |" in comparison  # the sanity table's steps
    assert "## The claims behind the answers" in comparison and "| agreement | primary |" not in comparison
    assert "## Powered sample: 4 more images" in comparison and "5 more image(s) were drawn (seed 0)" in comparison
    assert "s4: s4.png: corrupt or truncated image" in comparison
    assert "(../assets/comparison/sample-agreement_by_method.csv)" in comparison
    assert "assets/comparison/sample-design.csv" in written
    answers = pages_compare.answers(artifacts["compare"], None).findings
    assert any(answer.finding.startswith("Powered sample: ") and "(n = 4)" in answer.finding for answer in answers)
    assert all(answer.evidence.startswith("comparison/index.md#") for answer in answers)

    assert "Explaining vit_b_16_IMAGENET1K_SWAG_E2E_V1: dissection" in home
    assert "CAM target layer encoder.layers[-1].ln_1" in home
    assert "shorter side is 384 pixels (bicubic, antialiased) and centre-cropped\nto 384x384" in methods
    assert "the vit_b_16 IMAGENET1K_SWAG_E2E_V1 weights' own transform" in methods
    assert "LIME perturbs these 384x384 pixels" in methods
    assert "24x24 in this run" in methods
    assert "C in this run: 768 channels of `encoder.layers[-1].ln_1` in vit_b_16_IMAGENET1K_SWAG_E2E_V1." in methods
    assert "(here: `encoder.ln+heads`, `encoder.layers.encoder_layer_11`" in methods


def test_the_title_lists_every_classifier_run_and_not_clip() -> None:
    ids = {"resnet50": "x", "resnet18_imagenet": "y", "resnet18_places365": "z", "clip": "w"}
    assert pages_home.home_title({"weights_ids": ids}) == (
        "Explaining resnet50, resnet18_imagenet and resnet18_places365: dissection, LIME and CAMs"
    )
    assert pages_home.home_title({"weights_ids": {"convnext_tiny": "x"}}).startswith("Explaining convnext_tiny:")
    assert pages_home.home_title({"weights_ids": {}}).startswith("Explaining image classifiers:")
