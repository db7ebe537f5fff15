"""Fixed, small artifacts of the concepts stage for rendering the real pages (the golden Concepts tab and section):
the planted network of :mod:`tests.helpers.concepts_planted` (class 2's logit carried by units labelled 'concept A' and
'concept B', which fire only on the red top-left quarter) explained on two 64x64 images, with the explain stage's
prediction, LIME and one CAM built by hand, and a fake CLIP that sees concept A in red pixels. Times are fixed, so
the pages are byte-stable."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from tests.helpers import concepts_planted as planted
from xai.classifiers import Preprocessing
from xai.concepts import ConceptSettings, LimeWeights, explain_in_concepts, summarise
from xai.concepts.artifacts import ConceptArtifacts, ConceptImage
from xai.explain.artifacts import CamMap, ImageExplanation, LimeResult, Prediction
from xai.explain.explained import ExplainArtifacts, ExplainedImage, method_costs

CATEGORIES = ["tench", "goldfish", "planted class", "kite", "vulture", "orange"]
SETTINGS = ConceptSettings(ks=(1, 2, 4, 8), random_sets=50, permutations=200, shown=2, random_crops=2)
TRUE_CLASSES = (2, 5)
"""The first image's prediction is right, the second's wrong (its true class is 'orange')."""


def _lime(image: np.ndarray, label: int) -> LimeResult:
    rows, cols = np.indices(image.shape[:2])
    segments = ((rows // 16) * 4 + cols // 16).astype(np.int32)  # a 4x4 grid of superpixels
    weights = np.where(np.isin(np.arange(16), [0, 1, 4, 5]), 1.0, -0.1)  # the red quarter's four superpixels
    return LimeResult(
        label=label, segments=segments, weights=weights, ranking=np.argsort(-weights).astype(np.int32),
        intercept=0.0, score=0.9, local_pred=0.8, model_probability=0.8, top_labels=np.array([label], np.int64),
        top_probabilities=np.array([0.8], np.float32), ks=(2,), positive_masks=np.isin(segments, [0, 1])[None],
        seed=0, num_samples=100, seconds=1.0, forward_passes=100,
    )  # fmt: skip


def _image(seed: int) -> tuple[np.ndarray, ImageExplanation, np.ndarray]:
    model = planted.PlantedUnitsNet()
    image = planted.planted_image(seed)
    with torch.inference_mode():
        logits = model(planted.to_tensor(image))[0]
    probabilities = torch.softmax(logits, 0)
    order = torch.argsort(probabilities, descending=True)[:5]
    prediction = Prediction(order.numpy().astype(np.int64), probabilities[order].numpy().astype(np.float32))
    cam = np.zeros((64, 64), np.float32)
    cam[:32, :32] = 1.0
    cam += np.linspace(0, 0.1, 64, dtype=np.float32)[None]  # no flat ties
    explanation = ImageExplanation(
        prediction, _lime(image, prediction.top1), None, (CamMap("gradcam", cam, prediction.top1, 0.5, 1),)
    )
    return image, explanation, cam


def artifacts() -> dict[str, object]:
    """``{"explain": ExplainArtifacts, "concepts": ConceptArtifacts}`` of the two planted images."""
    concepts = planted.planted_concepts()
    planted_units = {concepts.concept_a: planted.UNITS_A, concepts.concept_b: planted.UNITS_B}
    labels = planted.planted_labels(concepts, planted_units)
    model = planted.PlantedUnitsNet()
    baseline = planted.probe_mean(model, planted.probe_images())
    explained = ExplainArtifacts(
        "planted",
        CATEGORIES,
        "features",
        ("lime", "gradcam"),
        architecture="planted",
        weights_member="none",
        weights_description="random(seed=0)",
        target_reason="the planted units",
        target_channels=planted.N_UNITS,
        preprocessing=Preprocessing(64, 64, "bilinear", (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
    )
    found = ConceptArtifacts(
        "planted", CATEGORIES, "features", "features", labels, "planted-probe", 400, "planted-8", "soft_wpmi",
        "mean", random_weights=True, true_class_known=True, settings=SETTINGS,
    )  # fmt: skip
    for index, true_class in enumerate(TRUE_CLASSES):
        image, explanation, cam = _image(index)
        name = f"img{index}"
        explained.images.append(ExplainedImage(name, image, explanation))
        concept = explain_in_concepts(
            model,
            model.features,
            planted.to_tensor(image),
            explanation.prediction.top1,
            labels,
            baseline,
            image=image,
            clip=planted.fake_clip(concepts, concepts.concept_a),
            cam_maps={"gradcam": cam},
            lime=LimeWeights(explanation.lime.segments, explanation.lime.weights),
            image_id=name,
            true_class=true_class,
            seed=index,
            settings=SETTINGS,
        )
        found.images.append(ConceptImage(name, image, dataclasses.replace(concept, seconds=0.25)))
    explained.costs = method_costs(explained.images, explained.methods)
    found.summary = summarise([item.explanation for item in found.images])
    return {"explain": explained, "concepts": found}
