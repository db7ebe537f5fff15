"""CLIP-Dissect neuron labelling (Oikarinen & Weng, ICLR 2023), written from the maths in the project spec.

Pure functions: :func:`probe_pass` (CLIP image embeddings and every model's hooked layers, each probe image
decoded once), :func:`layer_activations` (one hooked pass per model), :func:`encode_images` /
:func:`encode_texts` (CLIP embeddings, shared by both models), :func:`dissect_model` (scores -> labels),
:func:`summarise_model`, :func:`compare_models`, :func:`fc_self_check`, :func:`dissection_findings`.
"""

from xai.dissect.activations import (
    hooked_layers,
    layer_activations,
)
from xai.dissect.analysis import (
    FcSelfCheck,
    ModelComparison,
    ModelSummary,
    compare_models,
    fc_self_check,
    summarise_model,
)
from xai.dissect.findings import dissection_findings
from xai.dissect.labelling import dissect_model
from xai.dissect.probe_pass import probe_pass
from xai.dissect.probes import (
    load_concepts,
    places365_class_names,
    probe_ids,
    stratified_limit,
)
from xai.dissect.result import DissectionResult, LayerDissection, to_csv_text, write_csv
from xai.dissect.similarity import soft_wpmi

__all__ = [
    "DissectionResult",
    "FcSelfCheck",
    "LayerDissection",
    "ModelComparison",
    "ModelSummary",
    "compare_models",
    "dissect_model",
    "dissection_findings",
    "fc_self_check",
    "hooked_layers",
    "layer_activations",
    "load_concepts",
    "places365_class_names",
    "probe_ids",
    "probe_pass",
    "soft_wpmi",
    "stratified_limit",
    "summarise_model",
    "to_csv_text",
    "write_csv",
]
