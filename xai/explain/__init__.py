"""Explanations of one image's prediction: LIME and the CAM family (registry in :mod:`xai.explain.registry`).

The pipeline (:mod:`xai.stages.explain`) calls :func:`xai.explain.inference.predict`, :func:`run_lime`,
:func:`seed_stability` and :func:`compute_cam` one by one and caches each (image x method) artifact separately,
so a changed parameter reruns only its method.
"""

from xai.explain.artifacts import CamMap, ImageExplanation, LimeResult, LimeStability, Prediction
from xai.explain.cams.base import compute_cam
from xai.explain.lime_image import LimeParams, lime_stability, run_lime, seed_stability
from xai.explain.registry import CAM_METHODS, METHODS, REQUIRED_METHODS, method_info

__all__ = [
    "CAM_METHODS",
    "METHODS",
    "REQUIRED_METHODS",
    "CamMap",
    "ImageExplanation",
    "LimeParams",
    "LimeResult",
    "LimeStability",
    "Prediction",
    "compute_cam",
    "lime_stability",
    "method_info",
    "run_lime",
    "seed_stability",
]
