"""Task 4: LIME vs CAM — agreement, complexity, faithfulness (deletion/insertion) and the sanity check.

API (pure functions -> frozen artifacts, stored by the cache with :mod:`xai.serial`):

* ``compare_image(image, segments, segment_weights, cam_maps, ...) -> ImageComparison``
* ``cross_image_table(inputs, ks) -> DataFrame`` (the cross-image null; needs every image's maps)
* ``faithfulness_image(model, to_input, image, maps, target, ...) -> FaithfulnessResult``
  (``maps = explanation_maps(segments, segment_weights, cam_maps)``)
* ``sanity_check(model, explain_fn, layer_groups, ...) -> SanityResult`` (``layer_groups(model)``: the cascade)
* ``summarise(comparisons, faithfulness, sanity, ..., primary=PRIMARY_CAMS) -> ComparisonSummary`` (claims tested
  in declared families, Holm within each: ``family``)
* ``findings(summary) -> list[str]``
* the powered sample: ``draw_sample(source, count, seed) -> SampleSource...``, ``sample_image(model, pixels,
  settings, ...) -> SampleImage`` (one image, a pure function), ``summarise_sample(images, k=...) -> ComparisonSummary``
"""

from xai.compare.agreement import (
    DEFAULT_KS,
    DEFAULT_THRESHOLDS,
    Agreement,
    chance_dice,
    chance_iou,
    compute_agreement,
    dice,
    iou,
    lime_topk_mask,
    pooled_spearman,
    top_area_mask,
)
from xai.compare.complexity import COMPLEXITY_MEASURES, Complexity, image_complexity, spearman_with_p
from xai.compare.faithfulness import (
    RANDOM_DRAWS,
    RANDOM_METHOD,
    FaithfulnessResult,
    faithfulness_image,
    forward_passes,
    image_seed,
    lime_pixel_map,
    random_map,
)
from xai.compare.family import PRIMARY_CAMS, detectable_effect, smallest_adjusted, smallest_p
from xai.compare.intervals import interval
from xai.compare.layer_groups import layer_groups
from xai.compare.narrative import RANDOM_WEIGHTS_NOTE, findings
from xai.compare.nulls import (
    CENTRE_METHOD,
    MapOrder,
    SuperpixelNull,
    centre_prior_map,
    degenerate_reason,
    location_maps,
)
from xai.compare.per_image import LIME_METHOD, ImageComparison, compare_image, cross_image_table, explanation_maps
from xai.compare.sample import (
    SampleImage,
    SamplePlan,
    SampleResults,
    SampleSettings,
    SampleSource,
    draw_sample,
    sample_image,
    summarise_sample,
)
from xai.compare.sanity import EDGE_METHOD, SanityResult, edge_map, sanity_check
from xai.compare.stats import mean_interval, paired_comparison, rank_groups, signed_rank_test
from xai.compare.summary import TABLES, ComparisonSummary, summarise

__all__ = [
    "CENTRE_METHOD",
    "COMPLEXITY_MEASURES",
    "DEFAULT_KS",
    "DEFAULT_THRESHOLDS",
    "EDGE_METHOD",
    "LIME_METHOD",
    "PRIMARY_CAMS",
    "RANDOM_DRAWS",
    "RANDOM_METHOD",
    "RANDOM_WEIGHTS_NOTE",
    "TABLES",
    "Agreement",
    "ComparisonSummary",
    "Complexity",
    "FaithfulnessResult",
    "ImageComparison",
    "MapOrder",
    "SampleImage",
    "SamplePlan",
    "SampleResults",
    "SampleSettings",
    "SampleSource",
    "SanityResult",
    "SuperpixelNull",
    "centre_prior_map",
    "chance_dice",
    "chance_iou",
    "compare_image",
    "compute_agreement",
    "cross_image_table",
    "degenerate_reason",
    "detectable_effect",
    "dice",
    "draw_sample",
    "edge_map",
    "explanation_maps",
    "faithfulness_image",
    "findings",
    "forward_passes",
    "image_complexity",
    "image_seed",
    "interval",
    "iou",
    "layer_groups",
    "lime_pixel_map",
    "lime_topk_mask",
    "location_maps",
    "mean_interval",
    "paired_comparison",
    "pooled_spearman",
    "random_map",
    "rank_groups",
    "sample_image",
    "sanity_check",
    "signed_rank_test",
    "smallest_adjusted",
    "smallest_p",
    "spearman_with_p",
    "summarise",
    "summarise_sample",
    "top_area_mask",
]
