"""The concepts stage (issue #21) end to end through the command line on a tiny config (seeded random weights, one
task image, ten probe images): the explained model dissected at its target layer, the per-image explanation, the
Concepts tab, the Tasks 2-3 section and the methods section; a rerun computes nothing. And the plan's pieces: the
dissection shares Task 1's CLIP embeddings, the true class of a task image, the config section's one-line errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from xai.cli import main

TINY = {
    "name": "tiny-concepts",
    "weights": "random",
    "seed": 0,
    "images": "task",
    "max_images": 1,
    "stages": ["explain", "concepts"],
    "explain": {"methods": ["lime", "gradcam"], "batch_size": 16, "lime": {"num_samples": 16, "stability_seeds": 1}},
    "dissect": {"batch_size": 16, "probe": "imagenet-samples", "probe_limit": 10, "concepts": "broden_labels"},
    "concepts": {"ks": [1, 4, 16], "random_sets": 20, "permutations": 100, "shown": 2, "random_crops": 1},
}
IMAGE = "n02098286-west-highland-white-terrier"


def write_config(work: Path, **changes: object) -> Path:
    config = {**TINY, "output_dir": str(work / "docs"), "cache_dir": str(work / "cache"), **changes}
    path = work / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _value(tab: str, measure: str) -> str:
    """The value of ``measure`` in the tab's facts table."""
    found = re.search(rf"^\s*\| {re.escape(measure)} \| (.*?) \|", tab, re.MULTILINE)
    assert found, measure
    return found.group(1)


def test_concepts_stage_through_the_cli(tmp_path: Path, mirror: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    assert main(["--config", str(config), "--quiet"]) == 0
    docs = tmp_path / "docs"
    page = (docs / "explanations" / f"image-{IMAGE}.md").read_text()
    assert page.count('=== "Concepts"') == 1
    tab = page.split('=== "Concepts"')[1]
    assert "Random weights" in tab and "mean nothing" in tab
    # resnet50 at layer4[-1]: global average pool + fc, so the bars add up to the logit up to float32 rounding
    assert _value(tab, "Head after the layer").startswith("gap_linear")
    assert _value(tab, "Contributions") == "linear_head"
    assert abs(float(_value(tab, "Completeness error Σ c_u + offset − z_t"))) < 1e-3
    assert _value(tab, "True class") == "West Highland white terrier"  # the task image's synset, an ImageNet model
    assert "of 2,048 units clear it" in tab and "`layer4.2`" in tab
    for table in ("K | Δ probability", "Rank on its region", "Superpixel null p"):
        assert table in tab, table
    for figure in ("concept_bars.png", "concept_maps.png", "concept_faithfulness.png"):
        assert f"/{IMAGE}/{figure})" in tab
        assert (docs / "assets" / "explanations" / IMAGE / figure).stat().st_size > 1000
    index = (docs / "explanations" / "index.md").read_text()
    assert "## Why each prediction, in concepts" in index and f"(image-{IMAGE}.md)" in index
    assert "Correct and wrong predictions are split by the images' ImageNet labels" in index
    assert (docs / "assets" / "explanations" / "concepts_summary.csv").read_text().startswith("kind,metric,group")
    methods = (docs / "methods.md").read_text()
    assert "## Why this prediction, in concepts" in methods and "| random_sets | 20 |" in methods
    capsys.readouterr()
    assert main(["--config", str(config), "--quiet"]) == 0
    assert ", 0 computed" in capsys.readouterr().out  # every piece, the dissection included, came from the cache


def test_the_dissection_of_the_explained_model_shares_task_1s_clip_embeddings(tmp_path: Path, mirror: Path) -> None:
    """Same probe, concept set and CLIP: the concepts stage's CLIP image and text embeddings are Task 1's entries;
    its activations and labels are its own (another model and layer)."""
    import torch

    from xai.cache import ArtifactCache
    from xai.config import load
    from xai.context import RunContext
    from xai.dissect import probes
    from xai.plan import make_plan
    from xai.stages import dissect_keys
    from xai.stages.dissect import probe_inputs

    plan = make_plan(load(write_config(tmp_path, stages=["dissect", "explain", "concepts"])))
    context = RunContext(plan, ArtifactCache(plan.cache_dir), torch.device("cpu"), quiet=True)
    assert plan.dissect is not None and plan.concepts is not None
    ours = plan.concepts.dissect
    probe = probe_inputs(ours, plan.seed)
    assert probe.key == probe_inputs(plan.dissect, plan.seed).key
    concepts = probes.load_concepts(ours.concepts)
    assert dissect_keys.clip_image_parts(context, probe.key, ours) == dissect_keys.clip_image_parts(context, probe.key)
    assert dissect_keys.clip_text_parts(context, concepts, ours) == dissect_keys.clip_text_parts(context, concepts)
    entry = plan.concepts.entry
    assert entry.layers.layers == ("layer4.2",) and entry.model == plan.explain.model
    assert dissect_keys.activation_parts(context, entry, probe.key, ours) != dissect_keys.activation_parts(
        context, plan.dissect.models[0], probe.key
    )


def test_true_class_of_a_task_image() -> None:
    from xai.concepts.truth import UNKNOWN, is_imagenet, true_class

    assert true_class("n01443537_goldfish.JPEG", True) == 1
    assert true_class("n07747607_orange.JPEG", True) == 950
    assert true_class("n01443537_goldfish.JPEG", False) == UNKNOWN  # a checkpoint with classes of its own
    assert true_class("n99999999_nothing.JPEG", True) == UNKNOWN
    assert true_class("goldfish.jpg", True) == UNKNOWN
    from torchvision.models import ResNet50_Weights

    assert is_imagenet(ResNet50_Weights.DEFAULT.meta["categories"])
    assert not is_imagenet(["cat", "dog"])


def test_the_concepts_section_is_validated_with_one_line_errors(tmp_path: Path) -> None:
    from xai.config import ConfigError, load, validate

    assert validate({}).concepts.settings().random_sets == 100
    assert validate({"concepts": {"ks": [16, 1, 4, 4]}}).concepts.settings().ks == (1, 4, 16)
    for section, expected in (
        ("concepts:\n  random_set: 10\n", "concepts.random_set: unknown key"),
        ("concepts:\n  ks: [0, 4]\n", "concepts.ks"),
        ("concepts:\n  method: shapley\n", "concepts.method"),
        ("concepts:\n  top_fraction: 1.5\n", "concepts.top_fraction"),
    ):
        path = tmp_path / "bad.yaml"
        path.write_text(section)
        with pytest.raises(ConfigError) as error:
            load(path)
        assert expected in str(error.value) and "\n" not in str(error.value), str(error.value)


def test_any_classifier_the_explain_stage_accepts(tmp_path: Path, mirror: Path) -> None:
    """mobilenet_v3_small at its real input size: its two-layer classifier is not a linear head, so contributions
    are integrated gradients from the probe-set means, whose completeness error the tab reports; the dissected layer
    is its auto CAM target."""
    from xai.shapes import plan_target

    explain = {**TINY["explain"], "model": "mobilenet_v3_small"}
    assert main(["--config", str(write_config(tmp_path, explain=explain)), "--quiet"]) == 0
    tab = (tmp_path / "docs" / "explanations" / f"image-{IMAGE}.md").read_text().split('=== "Concepts"')[1]
    assert _value(tab, "Head after the layer").startswith("general")
    assert _value(tab, "Contributions") == "integrated_gradients (32 nodes)"
    error = float(_value(tab, "Completeness error Σ c_u + offset − z_t"))
    logit = float(_value(tab, "Logit z_t"))
    assert abs(error) < 0.05 * max(1.0, abs(logit))  # the quadrature's error, small against the logit
    target = plan_target("mobilenet_v3_small", "DEFAULT", "auto").target.path
    assert f"of {plan_target('mobilenet_v3_small', 'DEFAULT', 'auto').channels:,} units clear it" in tab
    index = (tmp_path / "docs" / "explanations" / "index.md").read_text()
    assert f"`{target}`" in index
