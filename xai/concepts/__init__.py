"""Why this prediction, in concepts (issue #21): the explained layer's CLIP-Dissect-labelled units, their
contributions to the predicted logit grouped into concept bars and maps, and the checks that the explanation is
faithful (removing the named units changes the prediction beyond random units) and named right (CLIP sees the
concept where its map points).

Entry points:

* :func:`explain_in_concepts` ``(model, target_layer, image_tensor, target_class, labels, probe_mean, *, reshape,
  image, clip, cam_maps, lime, image_id, true_class, seed, settings) -> ConceptExplanation``: one image.
* :func:`summarise` ``(explanations) -> ConceptSummary``: medians with order-statistic intervals and shares with
  Clopper-Pearson intervals over images, all / correct / wrong predictions.
* :func:`unit_labels` ``(layer_dissection, concepts) -> UnitLabels``: the labels and Task 1's interpretability
  threshold from a dissected layer.

Modules, one concern each: ``suffix`` (the layers after the target on replaced rows), ``head`` (head kind, logits
with units at their baseline), ``contributions``, ``labels``, ``bars``, ``maps``, ``faithfulness``,
``concept_tests``, ``presence``, ``agreement``, ``intervals``, ``summary``, ``explanation``. Artifacts are plain
frozen dataclasses of numpy arrays, scalars and strings.
"""

from xai.concepts.agreement import LimeWeights, MapAgreement
from xai.concepts.bars import ConceptBar, ConceptBars, concept_bars
from xai.concepts.concept_tests import ConceptRemoval, LabelPermutation
from xai.concepts.contributions import UnitContributions
from xai.concepts.explanation import ConceptExplanation, ConceptSettings, explain_in_concepts
from xai.concepts.faithfulness import RandomBand, RemovalCurve, UnitFaithfulness
from xai.concepts.intervals import MedianInterval, ShareInterval, median_interval, share_interval
from xai.concepts.labels import UNLABELLED, UnitLabels, make_unit_labels, unit_labels
from xai.concepts.maps import ConceptMaps
from xai.concepts.presence import ClipFunctions, ConceptPresence
from xai.concepts.summary import ConceptSummary, summarise

__all__ = [
    "UNLABELLED",
    "ClipFunctions",
    "ConceptBar",
    "ConceptBars",
    "ConceptExplanation",
    "ConceptMaps",
    "ConceptPresence",
    "ConceptRemoval",
    "ConceptSettings",
    "ConceptSummary",
    "LabelPermutation",
    "LimeWeights",
    "MapAgreement",
    "MedianInterval",
    "RandomBand",
    "RemovalCurve",
    "ShareInterval",
    "UnitContributions",
    "UnitFaithfulness",
    "UnitLabels",
    "concept_bars",
    "explain_in_concepts",
    "make_unit_labels",
    "median_interval",
    "share_interval",
    "summarise",
    "unit_labels",
]
