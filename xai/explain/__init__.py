"""Explanations of one image's prediction: LIME and the CAM family (registry in :mod:`xai.explain.registry`)."""

from xai.explain.artifacts import CamMap, ImageExplanation, LimeResult, LimeStability, Prediction
from xai.explain.cams.base import compute_cam
from xai.explain.lime_image import LimeParams, lime_stability, run_lime
from xai.explain.registry import CAM_METHODS, METHODS, REQUIRED_METHODS, MethodInfo, method_info
from xai.explain.stage import explain_image, predict, run_lime_seeds

__all__ = [
    "CAM_METHODS", "METHODS", "REQUIRED_METHODS", "CamMap", "ImageExplanation", "LimeParams", "LimeResult",
    "LimeStability", "MethodInfo", "Prediction", "compute_cam", "explain_image", "lime_stability", "method_info",
    "predict", "run_lime", "run_lime_seeds",
]
