"""The planted network (``tests/helpers/concepts_planted.py``): its logit depends on four known units, two labelled
concept A and two concept B through planted CLIP-Dissect neurons; a fake CLIP sees A (only) where those units fire.
The explanation must name A and B as the top bars, pass faithfulness against random units, confirm A in the image
and fail B (a planted wrong label: CLIP does not see B where its units fire)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import concepts_planted as planted
from xai.concepts import ConceptSettings, LimeWeights, explain_in_concepts, summarise
from xai.concepts.maps import upsample

SETTINGS = ConceptSettings(random_crops=8)


@pytest.fixture(scope="module")
def case():
    model = planted.PlantedUnitsNet()
    concepts = planted.planted_concepts()
    labels = planted.planted_labels(
        concepts, {concepts.concept_a: planted.UNITS_A, concepts.concept_b: planted.UNITS_B}
    )
    baseline = planted.probe_mean(model, planted.probe_images())
    return model, concepts, labels, baseline


def _explain(case, region=planted.REGION, seed=0, **kwargs):
    model, concepts, labels, baseline = case
    image = planted.planted_image(seed, region)
    return explain_in_concepts(
        model,
        model.features,
        planted.to_tensor(image),
        planted.TARGET,
        labels,
        baseline,
        image=image,
        clip=planted.fake_clip(concepts, concepts.concept_a),
        seed=seed,
        settings=SETTINGS,
        **kwargs,
    )


def test_planted_units_are_labelled_reliably_through_the_dissection(case) -> None:
    _, concepts, labels, _ = case
    assert labels.label_ids[:4].tolist() == [concepts.concept_a] * 2 + [concepts.concept_b] * 2
    assert labels.reliable[:4].all()
    assert labels.reliable[4:].mean() < 0.15  # noise units rarely clear Task 1's threshold


def test_planted_concepts_are_the_top_bars_and_the_bars_add_up_to_the_logit(case) -> None:
    _, concepts, _, _ = case
    explanation = _explain(case)
    assert explanation.head_kind == "gap_linear" and explanation.predicted_class == planted.TARGET
    bars = explanation.bars
    assert [bar.concept_id for bar in bars.top(2)] == [concepts.concept_a, concepts.concept_b]
    assert sorted(bars.bars[0].units.tolist()) == list(planted.UNITS_A)
    assert sorted(bars.bars[1].units.tolist()) == list(planted.UNITS_B)
    # red covers a quarter of the image: each A unit contributes 4 * 0.25, each B unit 3 * 0.25
    assert bars.bars[0].contribution == pytest.approx(2.0, abs=1e-5)
    assert bars.bars[1].contribution == pytest.approx(1.5, abs=1e-5)
    assert bars.bars[0].label_scores.shape == (2,) and np.all(bars.bars[0].label_scores > bars.threshold)
    total = sum(bar.contribution for bar in bars.bars) + bars.unlabelled.contribution + bars.offset
    assert total == pytest.approx(bars.logit, abs=1e-5)
    assert abs(bars.completeness_error) < 1e-5
    assert bars.bars[0].share > 0.3 and bars.unlabelled.n_units > 100


def test_planted_units_pass_faithfulness_against_random_units(case) -> None:
    explanation = _explain(case)
    faith = explanation.faithfulness
    assert faith.linear_logit_check < 1e-5
    k4 = list(faith.ks).index(4)
    assert faith.p_margin[k4] <= 2 / 201 and faith.p_probability[k4] <= 2 / 201
    assert faith.by_contribution.delta_margin[k4] < faith.random_removal.margin_low[k4]
    assert faith.flip_k == 4  # the class holds until all four planted units are gone
    assert faith.by_contribution.units[:4].tolist() == [0, 1, 2, 3]
    # activation alone ranks the loud noise units first: removing them barely matters
    assert abs(faith.by_activation.delta_probability[k4]) < 0.05
    # keeping only the four planted units keeps the prediction; keeping four random units does not
    assert faith.keep_only.flipped[k4] == np.False_ and faith.p_keep_margin[k4] <= 2 / 201
    assert faith.random_keep_only.flip_rate[k4] > 0.8  # P(four random units miss all planted ones) ~ 0.88
    removal_a, removal_b = explanation.concept_removals[:2]
    assert removal_a.p_margin <= 2 / 201 and removal_b.p_margin <= 2 / 201
    assert removal_a.delta_margin < removal_a.random_margin_low
    assert explanation.label_permutation.p_value <= 2 / 1001
    assert explanation.label_permutation.concept == explanation.bars.bars[0].concept


def test_presence_confirms_the_right_label_and_fails_the_planted_wrong_one(case) -> None:
    _, concepts, _, _ = case
    explanation = _explain(case)
    by_concept = {presence.concept_id: presence for presence in explanation.presence}
    right, wrong = by_concept[concepts.concept_a], by_concept[concepts.concept_b]
    top, left, bottom, right_edge = right.box
    assert min(top, left) >= 0 and max(bottom, right_edge) <= 32  # the crop lies in the planted region
    assert right.region_rank == 1 and right.confirmed
    assert np.median(right.random_ranks) > 1
    assert wrong.region_rank > 1 and not wrong.confirmed


def test_concept_map_and_presence_box_follow_the_planted_region(case) -> None:
    moved = (32, 32, 64, 64)
    explanation = _explain(case, region=moved, seed=3)
    layer_map = explanation.maps.map_of(explanation.bars.bars[0].concept)
    assert layer_map[4:, 4:].sum() == pytest.approx(layer_map.sum())  # the map sits in the moved quarter only
    presence = explanation.presence[0]
    assert presence.box[0] >= 32 and presence.box[1] >= 32 and presence.confirmed


def test_agreement_with_maps_that_point_at_the_region_and_away_from_it(case) -> None:
    inside = np.zeros((64, 64), np.float32)
    inside[:32, :32] = np.add.outer(np.arange(32), np.arange(32))[::-1, ::-1] + 1
    outside = inside[::-1, ::-1].copy()
    segments = np.repeat(np.repeat(np.arange(16).reshape(4, 4), 16, axis=0), 16, axis=1).astype(np.int32)
    weights = np.where(np.isin(np.arange(16), [0, 1, 4, 5]), 1.0, -0.1) + np.arange(16) * 1e-3
    explanation = _explain(case, cam_maps={"inside": inside, "outside": outside}, lime=LimeWeights(segments, weights))
    top = explanation.bars.bars[0].concept
    rows = {row.method: row for row in explanation.agreement if row.concept == top}
    assert set(rows) == {"lime", "inside", "outside"}
    assert rows["inside"].iou > 0.6 and rows["inside"].rho > 0.5
    assert rows["outside"].iou == pytest.approx(0.0) and rows["outside"].rho < 0
    assert rows["lime"].iou > 0.6 and rows["lime"].null_p < 0.05
    assert rows["inside"].chance_iou < 0.2
    # the upsampled concept map is what was compared
    image_map = upsample(explanation.maps.map_of(top), (64, 64))
    assert image_map[:32, :32].mean() > 10 * abs(image_map[32:, 32:].mean())


def test_summary_over_planted_images_counts_correct_predictions_and_checks(case) -> None:
    explanations = [_explain(case, seed=seed) for seed in range(3)]
    wrong_truth = [planted.TARGET, planted.TARGET, (planted.TARGET + 1) % planted.N_CLASSES]
    labelled = [
        type(e)(**{**{f: getattr(e, f) for f in e.__dataclass_fields__}, "true_class": truth})
        for e, truth in zip(explanations, wrong_truth, strict=True)
    ]
    summary = summarise(labelled)
    assert (summary.n_images, summary.n_correct, summary.n_wrong) == (3, 2, 1)
    beats = summary.share("top_concept_beats_random")
    assert (beats.count, beats.n) == (3, 3) and beats.low > 0.25
    assert summary.share("top_concept_present").count == 3
    assert summary.median("top_concept_share").median == pytest.approx(2.0 / summary_total(explanations[0]), rel=0.05)
    assert summary.median("flip_k", "correct").n == 2 and summary.median("flip_k", "wrong").n == 1
    assert np.isnan(summary.median("flip_k").low)  # 3 images are too few for a 95% median interval


def summary_total(explanation) -> float:
    return float(np.abs(explanation.contributions.contributions.astype(np.float64)).sum())
