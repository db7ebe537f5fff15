"""Fixed, small stage artifacts for rendering the real report pages (the golden dissection and comparison pages):
built from hand-written arrays with a planted structure, no model, no randomness beyond fixed seeds.

Dissection: the paper's two presets, ``layer4`` (6 neurons) and ``fc`` (4), 8 probe images. The ImageNet model's
layer4 labels are mostly objects ('dog' 3 times), the Places365 model's mostly scenes ('kitchen' 3 times); the two
share 'striped'. Comparison (:func:`compare_artifacts`): ResNet50 on 16x16 images, Grad-CAM following LIME and
Score-CAM unrelated to it (:mod:`tests.helpers.compare_artifacts`); with 8 images the primary family can make claims.
Every stage at once (:func:`all_stages`): the dissection, the planted network's explanations and concepts on two
images (:mod:`tests.helpers.concept_artifacts`) and their comparison, where two images can claim nothing.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
from PIL import Image

from tests.helpers import compare_artifacts as fixed
from xai.classifiers import Preprocessing
from xai.compare import summarise
from xai.compare.results import CompareArtifacts
from xai.dissect import DissectionResult, LayerDissection, compare_models, summarise_model
from xai.dissect.analysis import FcSelfCheck
from xai.dissect.artifacts import DissectArtifacts, DissectedModel
from xai.dissect.layers import LayerPlan
from xai.explain.explained import ExplainArtifacts, ExplainedImage

CONCEPTS = ("dog", "cat", "kitchen", "beach", "striped", "red", "grass", "the")
VOCABULARY = {
    "colour": frozenset({"red"}),
    "texture": frozenset({"striped"}),
    "scene": frozenset({"kitchen", "beach"}),
    "object": frozenset({"dog", "cat"}),
}
"""The categories of :data:`CONCEPTS` (the real default reads the Places365 and ImageNet class lists)."""
N_PROBE = 8
LABELS = {
    "resnet18_imagenet": {"layer4": [0, 0, 0, 1, 4, 7], "fc": [0, 1, 6, 5]},
    "resnet18_places365": {"layer4": [2, 2, 2, 3, 4, 6], "fc": [2, 3, 3, 7]},
}
"""model -> layer -> each neuron's label (a concept index)."""
CASCADE = ("fc", "layer4", "layer3", "layer2", "layer1", "conv1+bn1")
"""compare.layer_groups(resnet50), output end first."""


def _layer(name: str, labels: list[int], offset: int) -> LayerDissection:
    count = len(labels)
    runner_ups = [[(label + 1) % len(CONCEPTS), (label + 2) % len(CONCEPTS)] for label in labels]
    # best score first per neuron; the planted labels score 0.30 .. 0.05, the null sits at 0.08
    best = np.linspace(0.30, 0.05, count, dtype=np.float32)
    scores = np.stack([best, best - 0.02, best - 0.03], axis=1).astype(np.float32)
    return LayerDissection(
        layer=name,
        concept_ids=np.array([[label, *rest] for label, rest in zip(labels, runner_ups, strict=True)], np.int32),
        scores=scores,
        top_images=np.array([np.roll(np.arange(N_PROBE), -(unit + offset))[:5] for unit in range(count)], np.int32),
        top_activations=np.tile(np.linspace(1.0, 0.6, 5, dtype=np.float32), (count, 1)),
        null_scores=np.full(count, 0.08, np.float32),
    )


def _result(model: str) -> DissectionResult:
    layers = tuple(_layer(name, labels, offset) for offset, (name, labels) in enumerate(LABELS[model].items()))
    probe_ids = tuple(f"probe/p{index}" for index in range(N_PROBE))
    return DissectionResult(model, "soft_wpmi", {}, CONCEPTS, probe_ids, layers)


def probe_images(folder: Path) -> list[Path]:
    """Eight 32x32 solid-colour PNGs (the neuron strips are drawn from them)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(N_PROBE):
        path = folder / f"p{index}.png"
        Image.new("RGB", (32, 32), (30 * index, 255 - 30 * index, 128)).save(path)
        paths.append(path)
    return paths


def dissect_artifacts(probe_folder: Path) -> DissectArtifacts:
    """Both presets dissected at layer4 and fc on :func:`probe_images`, with the ImageNet fc self-check."""
    dissected = DissectArtifacts("imagenet-samples", probe_images(probe_folder), "broden_labels")
    plan = LayerPlan(("layer4", "fc"), ("spatial", "none"), "fc")
    for model, weights in (("resnet18_imagenet", "IMAGENET1K_V1"), ("resnet18_places365", "resnet18_places365")):
        result = _result(model)
        dissected.models[model] = DissectedModel(
            model,
            "resnet18",
            weights,
            plan,
            preset=True,
            weights_member="IMAGENET1K_V1",
            preprocessing="resize 256, crop 224, bilinear",
        )
        dissected.results[model] = result
        dissected.summaries[model] = summarise_model(result, vocabulary=VOCABULARY)
    dissected.self_checks["resnet18_imagenet"] = FcSelfCheck(
        "resnet18_imagenet", "fc", "index", 4, 4, 0.5, 0.75, 0.62, "imagenet_labels", "", 0.75, "soft_wpmi"
    )
    dissected.comparison = compare_models(*dissected.results.values())
    return dissected


CAMS = ("gradcam", "scorecam")
"""The compared CAMs go by their registry names: the primary family is theirs."""


def explain_artifacts(n_images: int = 3) -> ExplainArtifacts:
    """ResNet50 with seeded random weights: LIME and the two CAMs on ``n_images`` 16x16 images."""
    rng = np.random.default_rng(0)
    images = []
    for index in range(n_images):
        lime = SimpleNamespace(segments=fixed.segment_grid(), weights=rng.normal(size=16))
        cams = tuple(SimpleNamespace(method=name, map=rng.random((16, 16))) for name in CAMS)
        pixels = rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
        images.append(ExplainedImage(f"img{index}", pixels, SimpleNamespace(lime=lime, cams=cams)))
    return ExplainArtifacts(
        "resnet50",
        ["tench", "goldfish"],
        "layer4[-1]",
        ("lime", "gradcam", "scorecam"),
        images=images,
        architecture="resnet50",
        weights_member="IMAGENET1K_V2",
        weights_description="random(seed=0)",
        target_reason="the last bottleneck block (its output is the last spatial map)",
        target_channels=2048,
        preprocessing=Preprocessing(232, 224, "bilinear", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    )


def compare_artifacts(n_images: int = 3) -> dict[str, object]:
    """The explain artifacts and the comparison of LIME with Grad-CAM and Score-CAM on them."""
    cams = CAMS
    comparisons, cross = fixed.image_comparisons(n_images, cams)
    faithful = fixed.faithfulness_results(n_images, cams)
    sanity = fixed.sanity_result(cams)
    explained = explain_artifacts(n_images)
    compared = CompareArtifacts(
        comparisons,
        faithful,
        sanity,
        summarise(comparisons, faithful, sanity, k=5, cross_image=cross),
        explained,
        cam_grid=(7, 7),
        cascade=CASCADE,
    )
    return {"explain": explained, "compare": compared}


def compare_explained(explained: ExplainArtifacts) -> CompareArtifacts:
    """The comparison of the explanations in ``explained`` (each image's LIME weights against its CAMs), with
    faithfulness curves of given AUCs (the CAMs most faithful, then LIME) and the sanity check skipped for random
    weights: what the compare stage makes of them, without a model."""
    from xai.compare import SanityResult, compare_image, cross_image_table

    comparisons, inputs, faithful = [], [], []
    for index, item in enumerate(explained.images):
        lime = item.explanation.lime
        maps = {cam.method: cam.map.astype(np.float32) for cam in item.explanation.cams}
        weights = lime.weights[None]
        comparisons.append(
            compare_image(item.pixels, lime.segments, weights, maps, image_id=item.name, ks=lime.ks, seeds=(0,),
                          null_draws=200)
        )  # fmt: skip
        inputs.append((item.name, lime.segments, weights, maps))
        jitter = 0.02 * index
        scores = {"lime": (0.3, 0.6 + jitter), **{m: (0.2 - jitter, 0.7) for m in maps}}
        scores |= {"random:0": (0.5, 0.5), "random:1": (0.5 + jitter, 0.5), "centre": (0.45, 0.55)}
        faithful.append(fixed.faithfulness_result(item.name, scores))
    cross = cross_image_table(inputs, comparisons[0].agreements[0].ks)
    sanity = SanityResult.skipped()
    summary = summarise(comparisons, faithful, sanity, k=comparisons[0].agreements[0].ks[0], cross_image=cross)
    return CompareArtifacts(comparisons, faithful, sanity, summary, explained, cam_grid=(8, 8), cascade=())


def all_stages(probe_folder: Path) -> dict[str, object]:
    """Every stage's artifacts: the dissection, the planted explanations and concepts, and their comparison."""
    from tests.helpers import concept_artifacts

    artifacts = concept_artifacts.artifacts()
    return {
        "dissect": dissect_artifacts(probe_folder),
        **artifacts,
        "compare": compare_explained(artifacts["explain"]),
    }
