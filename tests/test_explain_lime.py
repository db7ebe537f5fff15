"""LIME: identical to a plain ``lime`` call, deterministic, finds planted evidence, stability, artifacts."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from lime.lime_image import LimeImageExplainer
from torch import nn

from tests.helpers.planted import tempered_planted
from xai import serial
from xai.explain import LimeParams, LimeResult, LimeStability, lime_stability, run_lime
from xai.explain.inference import probabilities_fn
from xai.explain.lime_image import jaccard, lime_with_classifier
from xai.models import to_input
from xai.testing import box_mask, planted_image

BOX = (8, 8, 32, 32)
CONTROL_BOX = (32, 32, 56, 56)
FINE = LimeParams(num_samples=300, kernel_size=2, max_dist=20)  # ~46 superpixels on the 64x64 test image


def _tutorial_classifier(model: nn.Module):
    """The lime PyTorch tutorial's batch_predict: one image at a time through the transform, softmax."""

    def batch_predict(images: np.ndarray) -> np.ndarray:
        batch = torch.cat([to_input(image[None]) for image in images])
        return torch.softmax(model(batch), dim=1).detach().numpy()

    return batch_predict


def _plain_lime(image: np.ndarray, classifier, seed: int, num_samples: int):
    return LimeImageExplainer(random_state=seed).explain_instance(
        image, classifier, top_labels=5, hide_color=0, num_samples=num_samples
    )


def test_identical_to_plain_lime_call_with_same_classifier() -> None:
    # The tempered planted model: its probabilities move with the box's superpixels, so LIME's weights are
    # far from zero and a wrong ``data_labels`` (row 0 not all on, shifted segment ids) changes them. (The
    # untempered net gives p = 1.0 for every sample, all weights 0, and nothing could fail.)
    model = tempered_planted(BOX)
    image = planted_image(64, 1)

    def one_at_a_time(images: np.ndarray) -> np.ndarray:  # batch-invariant, so any batching gives equal bits
        return np.concatenate([_tutorial_classifier(model)(image[None]) for image in images])

    plain = _plain_lime(image, one_at_a_time, seed=7, num_samples=120)
    ours = lime_with_classifier(image, one_at_a_time, params=LimeParams(num_samples=120), seed=7, batch_size=32)
    label = plain.top_labels[0]
    assert np.abs(ours.weights).max() > 1e-3 and ours.score > 0.1  # a non-degenerate explanation
    assert ours.label == label
    assert np.array_equal(ours.segments, plain.segments)
    assert [(int(s), float(w)) for s, w in plain.local_exp[label]] == [
        (int(s), float(ours.weights[s])) for s in ours.ranking
    ]
    assert (ours.intercept, ours.score, ours.local_pred) == (
        plain.intercept[label],
        plain.score,
        float(plain.local_pred[0]),
    )
    for i, k in enumerate(ours.ks):
        assert np.array_equal(ours.positive_masks[i], plain.get_image_and_mask(label, num_features=k)[1] == 1)


def test_fast_classifier_matches_tutorial_classifier() -> None:
    model = tempered_planted(BOX)
    image = planted_image(64, 0)
    plain = _plain_lime(image, _tutorial_classifier(model), seed=3, num_samples=200)
    ours = run_lime(model, image, to_input=to_input, params=LimeParams(num_samples=200), seed=3)
    label = plain.top_labels[0]
    assert ours.label == label and list(ours.top_labels) == list(plain.top_labels)
    assert [int(s) for s, _ in plain.local_exp[label]] == ours.ranking.tolist()
    np.testing.assert_allclose([w for _, w in plain.local_exp[label]], ours.weights[ours.ranking], atol=1e-5)
    assert ours.score == pytest.approx(plain.score, abs=1e-5)
    probabilities = probabilities_fn(model, to_input)(image[None])[0]
    assert ours.model_probability == pytest.approx(float(probabilities[label]), abs=1e-6)
    np.testing.assert_allclose(ours.top_probabilities, probabilities[ours.top_labels], atol=1e-6)


def test_deterministic_for_a_seed_and_sensitive_to_it() -> None:
    model = tempered_planted(BOX)
    image = planted_image(64, 0)
    first, second, other = (run_lime(model, image, to_input=to_input, params=FINE, seed=s) for s in (0, 0, 1))
    first_parts, second_parts = serial.to_parts(first), serial.to_parts(second)
    assert all(np.array_equal(first_parts[0][k], second_parts[0][k]) for k in first_parts[0])
    assert {k: v for k, v in first_parts[1].items() if k != "seconds"} == {
        k: v for k, v in second_parts[1].items() if k != "seconds"
    }
    assert not np.array_equal(first.weights, other.weights)


def _touching_box(result: LimeResult, box: tuple[int, int, int, int]) -> np.ndarray:
    inside = box_mask(box, result.segments.shape[0])
    return np.array([inside[result.segments == s].any() for s in range(len(result.weights))])


def test_planted_evidence_top_superpixels_cover_the_box_and_follow_it() -> None:
    image = planted_image(64, 0)
    for box, other in ((BOX, CONTROL_BOX), (CONTROL_BOX, BOX)):
        result = run_lime(tempered_planted(box), image, to_input=to_input, params=FINE, seed=0)
        touching = _touching_box(result, box)
        # Pixels outside the box cannot change the output: the largest |weights| must all be in the box.
        assert touching[result.ranking[:3]].all()
        assert np.abs(result.weights[touching]).mean() > 3 * np.abs(result.weights[~touching]).mean()
        strongest = np.isin(result.segments, result.ranking[: touching.sum()])
        assert (strongest & box_mask(box, 64)).sum() > 0.5 * box_mask(box, 64).sum()
        assert not _touching_box(result, other)[result.ranking[:3]].all()


def test_stability_is_jaccard_of_top_k_superpixels() -> None:
    model = tempered_planted(BOX)
    image = planted_image(64, 0)
    runs = [run_lime(model, image, to_input=to_input, params=FINE, seed=s) for s in range(3)]
    stability = lime_stability(runs)
    assert stability.seeds == (0, 1, 2) and stability.jaccard.shape == (2, 3)
    a, b = set(runs[0].positive_superpixels(5)), set(runs[1].positive_superpixels(5))
    assert stability.jaccard[0, 0] == pytest.approx(len(a & b) / len(a | b))
    assert lime_stability([runs[0], runs[0]]).mean_jaccard == {5: 1.0, 10: 1.0}
    assert jaccard({1, 2}, {2, 3}) == pytest.approx(1 / 3) and jaccard(set(), set()) == 1.0
    # Every seed's weights are kept (row i = seed i) so agreement can average over seeds, not use seed 0 only.
    np.testing.assert_array_equal(stability.weights, np.stack([run.weights for run in runs]))
    arrays, meta = serial.to_parts(stability)
    again = serial.from_parts(LimeStability, arrays, json.loads(json.dumps(meta)))
    assert again.seeds == stability.seeds and np.array_equal(again.jaccard, stability.jaccard)
    np.testing.assert_array_equal(again.weights, stability.weights)


def test_masks_and_views_are_consistent() -> None:
    result = run_lime(tempered_planted(BOX), planted_image(64, 0), to_input=to_input, params=FINE, seed=0)
    for i, k in enumerate(result.ks):
        assert np.array_equal(result.positive_masks[i], result.positive_mask(k))
        assert all(result.weights[s] > 0 for s in result.positive_superpixels(k))
    assert result.pixel_weights().shape == (64, 64)
    assert len(result.signed_superpixels(10)) == 10
    assert result.segments.dtype == np.int32 and result.forward_passes == FINE.num_samples
