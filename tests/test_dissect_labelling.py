"""Neuron labelling (``dissect_model``), its artifacts, the CSV and the analyses built on it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xai import serial
from xai.dissect import (
    DissectionResult,
    FcSelfCheck,
    LayerDissection,
    ModelComparison,
    ModelSummary,
    compare_models,
    dissect_model,
    dissection_findings,
    fc_self_check,
    soft_wpmi,
    summarise_model,
    to_csv_text,
    write_csv,
)
from xai.dissect.analysis import summarise_layer
from xai.dissect.categories import concept_category


def _normalise(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def planted():
    """Probe embeddings and a two-layer model whose first 10 layer-A neurons are planted concept detectors."""
    rng = np.random.default_rng(11)
    n, m, d = 400, 60, 128
    images = _normalise(rng.normal(size=(n, d)))
    texts = _normalise(rng.normal(size=(m, d)))
    concept_acts = images @ texts.T
    planted_ids = rng.choice(m, size=10, replace=False)
    layer_a = np.concatenate([concept_acts[:, planted_ids], rng.normal(size=(n, 6))], axis=1).astype(np.float32)
    layer_b = rng.normal(size=(n, 7)).astype(np.float32)
    concepts = [f"concept {i}" for i in range(m)]
    ids = [f"n{i % 8:02d}_img{i:04d}" for i in range(n)]
    return {"a": layer_a, "b": layer_b}, images, texts, concepts, ids, planted_ids


def _dissect(planted, **kwargs) -> DissectionResult:
    acts, images, texts, concepts, ids, _ = planted
    return dissect_model(acts, images, texts, concepts, model_name="toy", probe_ids=ids, **kwargs)


def test_dissect_model_labels_planted_neurons_and_keeps_layer_priors_separate(planted):
    acts, images, texts, concepts, _, planted_ids = planted
    result = _dissect(planted)
    layer_a = result.layer("a")
    assert layer_a.label_ids[:10].tolist() == planted_ids.tolist()
    assert result.labels("a")[0] == concepts[planted_ids[0]]
    # one pass over both layers, but each layer's scores equal scoring that layer alone (its own prior)
    for name in ("a", "b"):
        alone = soft_wpmi(acts[name], images, texts)
        np.testing.assert_array_equal(result.layer(name).label_ids, alone.argmax(axis=1))
        np.testing.assert_allclose(result.layer(name).best_scores, alone.max(axis=1), rtol=1e-4, atol=1e-4)
    # top-5 sorted descending; top images are the highest activations, best first
    assert np.all(np.diff(layer_a.scores, axis=1) <= 0)
    assert layer_a.scores.shape == (16, 5) and layer_a.top_images.shape == (16, 10)
    assert layer_a.top_images[3].tolist() == np.argsort(-acts["a"][:, 3], kind="stable")[:10].tolist()
    np.testing.assert_allclose(layer_a.top_activations[3], np.sort(acts["a"][:, 3])[::-1][:10])
    assert layer_a.null_scores.shape == (16,)


def test_dissect_model_rejects_mismatched_inputs(planted):
    acts, images, texts, concepts, ids, _ = planted
    with pytest.raises(ValueError, match="concepts"):
        dissect_model(acts, images, texts, concepts[:-1], model_name="x", probe_ids=ids)
    with pytest.raises(ValueError, match="probe"):
        dissect_model({"a": acts["a"][:-1]}, images, texts, concepts, model_name="x", probe_ids=ids)
    with pytest.raises(ValueError, match="unknown similarity"):
        dissect_model(acts, images, texts, concepts, model_name="x", probe_ids=ids, similarity="iou")


@pytest.mark.parametrize("similarity", ["wpmi", "cos_similarity"])
def test_other_similarities_through_dissect_model(planted, similarity):
    result = _dissect(planted, similarity=similarity, null_seed=None)
    assert result.layer("a").label_ids[:10].tolist() == planted[5].tolist()
    assert result.layer("a").null_scores.size == 0


def test_result_round_trips_and_csv_is_byte_identical(planted, tmp_path):
    result = _dissect(planted)
    arrays, meta = serial.to_parts(result)
    restored = serial.from_parts(DissectionResult, arrays, meta)
    assert serial.to_parts(restored)[1] == meta
    for key, value in arrays.items():
        np.testing.assert_array_equal(serial.to_parts(restored)[0][key], value)
        assert serial.to_parts(restored)[0][key].dtype == value.dtype
    again = _dissect(planted)
    first = write_csv(result, tmp_path / "one.csv").read_bytes()
    second = write_csv(again, tmp_path / "two.csv").read_bytes()
    assert first == second
    lines = to_csv_text(result).splitlines()
    assert lines[0].startswith("layer,unit,description,similarity,description_2,similarity_2")
    assert len(lines) == 1 + 16 + 7
    row = lines[1].split(",")
    assert row[:3] == ["a", "0", result.labels("a")[0]]
    assert float(row[3]) == pytest.approx(float(result.layer("a").best_scores[0]), abs=1e-6)
    assert row[-1].split("|")[0] == result.probe_ids[result.layer("a").top_images[0, 0]]


def _hand_result(name: str, labels_by_layer: dict[str, list[int]], concepts: list[str], null: bool = True):
    layers = []
    for layer, labels in labels_by_layer.items():
        k = len(labels)
        ids = np.array([[label, (label + 1) % len(concepts)] for label in labels], np.int32)
        scores = np.stack([np.arange(k, dtype=np.float32), np.arange(k, dtype=np.float32) - 1], axis=1)
        layers.append(
            LayerDissection(
                layer=layer,
                concept_ids=ids,
                scores=scores,
                top_images=np.zeros((k, 2), np.int32),
                top_activations=np.zeros((k, 2), np.float32),
                null_scores=np.full(k, 2.5, np.float32) if null else np.zeros(0, np.float32),
            )
        )
    return DissectionResult(name, "soft_wpmi", {}, tuple(concepts), ("img0",), tuple(layers))


CONCEPTS = ["dog", "red-c", "kitchen", "striped", "the", "car"]
VOCABULARY = {
    "colour": frozenset({"red"}),
    "texture": frozenset({"striped"}),
    "scene": frozenset({"kitchen"}),
    "object": frozenset({"dog", "car"}),
}


def test_summaries_count_labels_and_apply_the_null_threshold():
    result = _hand_result("m", {"layer4": [0, 0, 0, 2, 2, 4], "fc": [5, 0]}, CONCEPTS)
    summary = summarise_layer(result.layer("layer4"), CONCEPTS, vocabulary=VOCABULARY)
    assert summary.top_concepts == (("dog", 3), ("kitchen", 2), ("the", 1))
    assert summary.n_distinct == 3
    assert summary.duplicate_label_fraction == pytest.approx(5 / 6)
    assert dict(summary.score_stats)["median"] == pytest.approx(2.5)
    assert dict(summary.category_counts) == {"colour": 0, "texture": 0, "scene": 2, "object": 3, "other": 1}
    # null scores are all 2.5, so the threshold is 2.5 and best scores 3, 4, 5 clear it
    assert summary.threshold == pytest.approx(2.5)
    assert summary.interpretable_count == 3 and summary.interpretable_fraction == pytest.approx(0.5)
    assert [concept_category(c, VOCABULARY) for c in CONCEPTS] == [
        "object",
        "colour",
        "scene",
        "texture",
        "other",
        "object",
    ]
    model = summarise_model(result, vocabulary=VOCABULARY)
    assert model.cross_layer == (("layer4", "fc", 1, pytest.approx(1 / 4)),)
    assert serial.from_parts(ModelSummary, *serial.to_parts(model)) == model
    no_null = summarise_layer(
        _hand_result("m", {"l": [0, 1]}, CONCEPTS, null=False).layer("l"), CONCEPTS, vocabulary=VOCABULARY
    )
    assert math.isnan(no_null.threshold) and no_null.interpretable_count == -1


def test_compare_models_overlap_and_jaccard():
    a = _hand_result("imagenet", {"layer4": [0, 0, 2, 3], "fc": [0, 5]}, CONCEPTS)
    b = _hand_result("places", {"layer4": [2, 2, 2, 1], "fc": [4]}, CONCEPTS)
    comparison = compare_models(a, b)
    layer4 = comparison.layer("layer4")
    assert (layer4.n_distinct_a, layer4.n_distinct_b, layer4.n_shared) == (3, 2, 1)
    assert layer4.jaccard == pytest.approx(1 / 4)
    assert layer4.shared == ("kitchen",) and layer4.only_a == ("dog", "striped")
    assert (layer4.n_unique_a, layer4.n_unique_b) == (2, 1)
    overall = comparison.layer("all")
    assert overall.n_shared == 1 and overall.jaccard == pytest.approx(1 / 6)
    assert serial.from_parts(ModelComparison, *serial.to_parts(comparison)) == comparison
    summaries = [summarise_model(r, vocabulary=VOCABULARY) for r in (a, b)]
    sentences = dissection_findings(summaries, comparison)
    assert any("imagenet layer4: 3 distinct concepts" in s and "most frequent 'dog' (2 of 4)" in s for s in sentences)
    assert any("layer4: imagenet 3 concepts, places 2; 1 shared (Jaccard 0.25)" in s for s in sentences)


def test_fc_self_check_index_and_string_matching():
    classes = ["dog", "red-c", "kitchen"]
    result = _hand_result("m", {"fc": [0, 2, 2]}, classes)
    embeddings = np.eye(3, dtype=np.float32)
    check = fc_self_check(result, classes, concept_embeddings=embeddings, class_embeddings=embeddings)
    # unit 0 -> dog (right), unit 1 -> kitchen (wrong, runner-up is concept 0), unit 2 -> kitchen (right)
    assert check.top1_fraction == pytest.approx(2 / 3)
    assert check.top5_fraction == pytest.approx(2 / 3)
    assert check.mean_clip_cosine == pytest.approx(2 / 3)
    assert serial.from_parts(FcSelfCheck, *serial.to_parts(check)) == check
    concepts = ["kitchen-s", "dog", "garage"]
    by_string = _hand_result("m", {"fc": [1, 0, 0]}, concepts)
    check = fc_self_check(by_string, ["dog", "apartment_building/outdoor", "kitchen"], match="string")
    assert check.n_scored == 2  # the sub-typed class cannot match, as in the paper's protocol
    assert check.top1_fraction == pytest.approx(1.0)
    assert math.isnan(check.mean_clip_cosine)
    with pytest.raises(ValueError, match="class-name concept set"):
        fc_self_check(by_string, ["dog", "cat", "kitchen"])
    sentence = dissection_findings([], None, [check])[0]
    assert "100.0% of 2 scorable neurons" in sentence
