"""Why this prediction, in concepts (issue #21): unit contributions of the explained layer, grouped by CLIP-Dissect
label into concept bars and maps, with faithfulness controls and CLIP's presence check."""

from xai.concepts.bars import ConceptBar, ConceptBars, concept_bars
from xai.concepts.contributions import UnitContributions
from xai.concepts.labels import UNLABELLED, UnitLabels, make_unit_labels, unit_labels
from xai.concepts.maps import ConceptMaps
from xai.concepts.presence import ClipFunctions, ConceptPresence

__all__ = [
    "UNLABELLED",
    "ClipFunctions",
    "ConceptBar",
    "ConceptBars",
    "ConceptMaps",
    "ConceptPresence",
    "UnitContributions",
    "UnitLabels",
    "concept_bars",
    "make_unit_labels",
    "unit_labels",
]
