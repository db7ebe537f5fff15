"""The explanation stage for one image: prediction, LIME (+ stability over seeds) and every requested CAM.

A pure function of its inputs. The pipeline may instead call :func:`predict`, :func:`~xai.explain.lime_image.
run_lime` (once per seed), :func:`~xai.explain.lime_image.lime_stability` and
:func:`~xai.explain.cams.base.compute_cam` one by one, caching each (image x method) artifact separately, so a
changed parameter reruns only its method; :func:`explain_image` is exactly that composition.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from xai.explain.artifacts import CamMap, ImageExplanation, LimeResult, LimeStability, Prediction
from xai.explain.cams.base import compute_cam
from xai.explain.inference import check_eval_mode, predict_top
from xai.explain.lime_image import DEFAULT_LIME_PARAMS, LimeParams, lime_stability, run_lime
from xai.explain.registry import method_info

ToInput = Callable[[np.ndarray], torch.Tensor]


def predict(model: nn.Module, image: np.ndarray, *, to_input: ToInput, k: int = 5) -> Prediction:
    """The model's top-k classes and softmax probabilities on one (H, W, 3) uint8 image."""
    check_eval_mode(model)
    labels, probabilities = predict_top(model, to_input(image[None]), k)
    return Prediction(labels=labels, probabilities=probabilities)


def run_lime_seeds(model: nn.Module, image: np.ndarray, *, to_input: ToInput, params: LimeParams, seed: int,
                   batch_size: int | None = None) -> tuple[LimeResult, LimeStability | None]:
    """LIME with seeds ``seed .. seed + params.stability_seeds - 1``; the first run is the explanation.

    Later seeds reuse the first run's segmentation (quickshift is deterministic, so this only saves time).
    """
    first = run_lime(model, image, to_input=to_input, params=params, seed=seed, batch_size=batch_size)
    others = [run_lime(model, image, to_input=to_input, params=params, seed=seed + offset,
                       batch_size=batch_size, segments=first.segments)
              for offset in range(1, params.stability_seeds)]
    stability = lime_stability([first, *others]) if others else None
    return first, stability


def explain_image(model: nn.Module, image: np.ndarray, *, to_input: ToInput, target_layer: nn.Module,
                  methods: Sequence[str], lime_params: LimeParams = DEFAULT_LIME_PARAMS, seed: int = 0,
                  batch_size: int | None = None) -> ImageExplanation:
    """Explain the model's top-1 class on ``image`` with every method in ``methods`` (registry names).

    Args:
        model: classifier in eval mode.
        image: (H, W, 3) uint8 RGB, already resized/cropped to the model's input size.
        to_input: (N, H, W, 3) images -> normalised (N, 3, H, W) tensor (``xai.models.to_input``).
        target_layer: CAM target, e.g. ``model.layer4[-1]``.
        methods: names from :data:`xai.explain.registry.METHODS`, in any order.
        lime_params: LIME settings (tutorial defaults).
        seed: LIME sampling seed (stability runs use seed+1, seed+2, ...).
        batch_size: images per forward for LIME and ScoreCAM; None picks the device's best.
    """
    for name in methods:
        method_info(name)
    prediction = predict(model, image, to_input=to_input)
    lime, stability = None, None
    if "lime" in methods:
        lime, stability = run_lime_seeds(model, image, to_input=to_input, params=lime_params, seed=seed,
                                         batch_size=batch_size)
    input_tensor = to_input(image[None])
    cams: list[CamMap] = []
    for name in methods:
        if method_info(name).family == "cam":
            # AblationCAM's batch counts channels, not images: let it size its own chunks.
            cam_batch = batch_size if name == "scorecam" else None
            cams.append(compute_cam(model, input_tensor, name, target_layer, prediction.top1,
                                    batch_size=cam_batch))
    return ImageExplanation(prediction=prediction, lime=lime, stability=stability, cams=tuple(cams))
