"""CLIP-Dissect neuron labelling (Oikarinen & Weng, ICLR 2023), written from the maths in the project spec.

Pure functions: :func:`probe_pass` (CLIP image embeddings and every model's hooked layers, each probe image
decoded once), :func:`layer_activations` (one hooked pass per model), :func:`encode_images` /
:func:`encode_texts` (CLIP embeddings, shared by both models), :func:`dissect_model` (scores -> labels),
:func:`summarise_model`, :func:`compare_models`, :func:`fc_self_check`, :func:`dissection_findings`.
"""

from xai.dissect.activations import (
    DEFAULT_LAYERS,
    hooked_layers,
    image_batches,
    layer_activations,
)
from xai.dissect.analysis import (
    FcSelfCheck,
    LayerOverlap,
    LayerSummary,
    ModelComparison,
    ModelSummary,
    compare_models,
    fc_self_check,
    summarise_layer,
    summarise_model,
)
from xai.dissect.categories import CATEGORIES, concept_category
from xai.dissect.clip_embed import concepts_hash, encode_images, encode_text_truncated, encode_texts
from xai.dissect.findings import dissection_findings
from xai.dissect.labelling import dissect_model
from xai.dissect.probe_pass import ProbeOutputs, probe_pass
from xai.dissect.probes import (
    broden_index_images,
    broden_paths,
    folder_images,
    imagenet_sample_paths,
    load_concepts,
    places365_class_names,
    probe_ids,
    stratified_limit,
)
from xai.dissect.result import DissectionResult, LayerDissection, to_csv_text, write_csv
from xai.dissect.similarity import SIMILARITY_FUNCTIONS, cos_similarity, rank_reorder, soft_wpmi, wpmi

__all__ = [
    "CATEGORIES",
    "DEFAULT_LAYERS",
    "SIMILARITY_FUNCTIONS",
    "DissectionResult",
    "FcSelfCheck",
    "LayerDissection",
    "LayerOverlap",
    "LayerSummary",
    "ModelComparison",
    "ModelSummary",
    "ProbeOutputs",
    "broden_index_images",
    "broden_paths",
    "compare_models",
    "concept_category",
    "concepts_hash",
    "cos_similarity",
    "dissect_model",
    "dissection_findings",
    "encode_images",
    "encode_text_truncated",
    "encode_texts",
    "fc_self_check",
    "folder_images",
    "hooked_layers",
    "image_batches",
    "imagenet_sample_paths",
    "layer_activations",
    "load_concepts",
    "places365_class_names",
    "probe_ids",
    "probe_pass",
    "rank_reorder",
    "soft_wpmi",
    "stratified_limit",
    "summarise_layer",
    "summarise_model",
    "to_csv_text",
    "wpmi",
    "write_csv",
]
