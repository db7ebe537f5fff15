"""The one serialiser of cached artifacts (``xai.serial``): every artifact class round-trips to an equal object
(types, dtypes, shapes, read-only flags, DataFrame dtypes, NaN), through the cache as a fresh result and as a hit;
its meta is deterministic JSON; an unsupported annotation is refused by name."""

from __future__ import annotations

import ast
import dataclasses
import functools
import importlib
import io
import json
import math
import typing
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from xai import serial
from xai.cache import ArtifactCache
from xai.compare import (
    EDGE_METHOD,
    Agreement,
    ComparisonSummary,
    Complexity,
    FaithfulnessResult,
    ImageComparison,
    SampleImage,
    SanityResult,
    compare_image,
    cross_image_table,
    summarise,
)
from xai.compare.faithfulness import auc
from xai.concepts import (
    ConceptBar,
    ConceptBars,
    ConceptExplanation,
    ConceptMaps,
    ConceptPresence,
    ConceptRemoval,
    ConceptSettings,
    LabelPermutation,
    MapAgreement,
    RandomBand,
    RemovalCurve,
    UnitContributions,
    UnitFaithfulness,
)
from xai.dissect import (
    DissectionResult,
    FcSelfCheck,
    LayerDissection,
    ModelComparison,
    ModelSummary,
    compare_models,
    fc_self_check,
    summarise_model,
)
from xai.dissect.analysis import LayerOverlap, LayerSummary
from xai.dissect.artifacts import ArrayArtifact
from xai.dissect.result import label_layer
from xai.explain.artifacts import CamMap, ImageExplanation, LimeResult, LimeStability, Prediction

PACKAGE = Path(__file__).resolve().parents[1] / "xai"

# ---------------------------------------------------------------- representative instances, one builder per class


def _predictions() -> list[Prediction]:
    return [Prediction(np.array([207, 208, 1], np.int64), np.array([0.5, 0.25, 0.125], np.float32))]


def _cams() -> list[CamMap]:
    rng = np.random.default_rng(0)
    heat = rng.random((8, 8)).astype(np.float32)
    return [
        CamMap("GradCAM", heat, 207, 0.125, 1),
        CamMap("AblationCAM", heat, 3, 2.5, 513, warning="negative logit", batch_size=32, per_image_s=0.01),
        CamMap("ScoreCAM", np.zeros((8, 8), np.float32), 3, 0.0, 1, batch_size=4, per_image_s=math.nan),
    ]


def _limes() -> list[LimeResult]:
    segments = (np.arange(64).reshape(8, 8) // 16).astype(np.int32)
    weights = np.array([0.5, -0.25, 0.0, 0.125])
    return [
        LimeResult(
            label=207, segments=segments, weights=weights, ranking=np.array([0, 1, 3], np.int32), intercept=0.25,
            score=math.nan, local_pred=0.75, model_probability=0.5, top_labels=np.array([207, 3], np.int64),
            top_probabilities=np.array([0.5, 0.25], np.float32), ks=(1, 3),
            positive_masks=np.stack([segments == 0, segments < 2]), seed=0, num_samples=100, seconds=1.5,
            forward_passes=100, batch_size=None, per_image_s=None,
        )
    ]  # fmt: skip


def _stabilities() -> list[LimeStability]:
    return [
        LimeStability(seeds=(0, 1, 2), ks=(1, 3), jaccard=np.array([[1.0, 0.5, 0.0], [1.0, 1.0, 0.5]])),
        LimeStability(seeds=(0,), ks=(5,), jaccard=np.zeros((1, 0)), weights=np.ones((1, 4))),
    ]


def _explanations() -> list[ImageExplanation]:
    return [
        ImageExplanation(_predictions()[0], _limes()[0], _stabilities()[0], tuple(_cams())),
        ImageExplanation(_predictions()[0]),
    ]


def _segments() -> np.ndarray:
    rows, cols = np.indices((16, 16))
    return ((rows // 4) * 4 + cols // 4).astype(np.int32)


def _comparison_inputs(n_images: int) -> list[tuple[str, np.ndarray, np.ndarray, dict[str, np.ndarray]]]:
    inputs = []
    for index in range(n_images):
        rng = np.random.default_rng(index)
        weights = rng.normal(size=(2, 16))
        cams = {"Good": rng.random((16, 16)).astype(np.float32), "Flat": np.zeros((16, 16), np.float32)}
        inputs.append((f"img{index}", _segments(), weights, cams))
    return inputs


def _image_comparisons(n_images: int = 3) -> list[ImageComparison]:
    comparisons = []
    for index, (image_id, segments, weights, cams) in enumerate(_comparison_inputs(n_images)):
        image = np.random.default_rng(index).integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
        comparisons.append(
            compare_image(image, segments, weights, cams, image_id=image_id, ks=(5, 10), seeds=(0, 1), null_draws=50)
        )
    return comparisons


def _agreements() -> list[Agreement]:
    return list(_image_comparisons(1)[0].agreements)


def _complexities() -> list[Complexity]:
    return [Complexity("img0", 16, 0.25, 5.5, 0.125), Complexity("img1", 0, math.nan, 0.0, math.nan)]


def _faithfulness(image_id: str = "img0") -> list[FaithfulnessResult]:
    fractions = np.linspace(0, 1, 5)
    deletion = np.array([[1, 0.4, 0.3, 0.2, 0], [1, 0.8, 0.7, 0.6, 0], [np.nan] * 5])
    insertion = deletion[::-1, ::-1].copy()
    return [
        FaithfulnessResult(
            image_id=image_id, target=3, methods=("lime", "Good", "random:0"), fractions=fractions, deletion=deletion,
            insertion=insertion, deletion_auc=np.array([auc(fractions, c) for c in deletion]),
            insertion_auc=np.array([auc(fractions, c) for c in insertion]), step_pixels=64, forward_passes=15,
            deletion_baseline="zero", seed=0, excluded=(("Flat", "the map is constant"),),
        )
    ]  # fmt: skip


def _sample_images() -> list[SampleImage]:
    """A powered-sample image: its LIME seeds, CAMs (one excluded as flat), comparison and curves."""
    (image_id, segments, weights, cams), comparison = _comparison_inputs(1)[0], _image_comparisons(1)[0]
    maps = np.stack(list(cams.values()))
    return [
        SampleImage(image_id, 3, segments, weights, (0, 1), tuple(cams), maps, comparison, _faithfulness()[0], 20, 1.5)
    ]


def _sanities() -> list[SanityResult]:
    spearman = np.array([[[0.4, 0.5, np.nan], [0.1, 0.05, 0.15]], [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]])
    full = SanityResult(
        False, ("Good", EDGE_METHOD), ("fc", "layer4"), spearman, np.abs(spearman), spearman * 0.9, 0,
        budgets=(("lime", "300 samples"),), constant=np.array([[0, 1], [0, 0]]),
        warnings=(("original", "a warning"), ("fc", "another")),
    )  # fmt: skip
    return [full, SanityResult.skipped(), SanityResult.skipped(("Good",), seed=3, reason="no layers")]


def _summaries() -> list[ComparisonSummary]:
    comparisons = _image_comparisons(4)
    faithful = [result for index in range(4) for result in _faithfulness(f"img{index}")]
    cross = cross_image_table(_comparison_inputs(4), (5, 10))
    full = summarise(comparisons, faithful, _sanities()[0], k=5, cross_image=cross, notes=("img0: a caveat",))
    return [full, summarise([])]


def _hand_layer(name: str, labels: Sequence[int], n_concepts: int, null: bool = True) -> LayerDissection:
    k = len(labels)
    return LayerDissection(
        layer=name,
        concept_ids=np.array([[label, (label + 1) % n_concepts] for label in labels], np.int32),
        scores=np.stack([np.arange(k, dtype=np.float32), np.arange(k, dtype=np.float32) - 1], axis=1),
        top_images=np.zeros((k, 2), np.int32),
        top_activations=np.zeros((k, 2), np.float32),
        null_scores=np.full(k, 2.5, np.float32) if null else np.zeros(0, np.float32),
    )


CONCEPTS = ("dog", "red-c", "kitchen", "striped", "the", "car")
VOCABULARY = {"colour": frozenset({"red"}), "scene": frozenset({"kitchen"}), "object": frozenset({"dog", "car"})}


def _dissections() -> list[DissectionResult]:
    rng = np.random.default_rng(5)
    scores, activations = rng.normal(size=(4, 6)), rng.normal(size=(10, 4))
    top = np.argsort(-activations, axis=0)[:3].T
    labelled = label_layer("features.8", scores, activations, top, null_scores=rng.normal(size=4))
    wide = LayerDissection("layer4", np.zeros((2, 1), np.int64), np.ones((2, 1)), np.zeros((2, 1), np.int64),
                           np.ones((2, 1)), np.ones(2))  # fmt: skip
    params = {"lam": 1.0, "alpha": 0.001, "nested": {"b": [1, 2], "a": None}}
    return [
        DissectionResult(
            "toy", "soft_wpmi", params, CONCEPTS, tuple(f"img{i}" for i in range(10)),
            (labelled, _hand_layer("fc", [5, 0], len(CONCEPTS), null=False)),
        ),
        DissectionResult("empty", "wpmi", {}, (), (), ()),
        DissectionResult("wide dtypes", "wpmi", {}, CONCEPTS, ("img0",), (wide,)),
    ]  # fmt: skip


def _model_results() -> tuple[DissectionResult, DissectionResult]:
    a = DissectionResult("imagenet", "soft_wpmi", {}, CONCEPTS, ("img0",), (
        _hand_layer("layer4", [0, 0, 2, 3], 6), _hand_layer("fc", [0, 5], 6, null=False)))  # fmt: skip
    b = DissectionResult("places", "soft_wpmi", {}, CONCEPTS, ("img0",), (_hand_layer("features.8", [2, 2, 1], 6),))
    return a, b


def _model_summaries() -> list[ModelSummary]:
    summary = summarise_model(_model_results()[0], vocabulary=VOCABULARY)
    return [summary, dataclasses.replace(summary, cross_layer=(("a", "b", 0, math.nan),)), ModelSummary("x", (), ())]


def _layer_summaries() -> list[LayerSummary]:
    return list(_model_summaries()[0].layers)


def _model_comparisons() -> list[ModelComparison]:
    a, b = _model_results()
    return [compare_models(a, a), compare_models(a, b)]


def _overlaps() -> list[LayerOverlap]:
    return [*_model_comparisons()[1].layers, LayerOverlap("x", 0, 0, 0, math.nan, (), (), ())]


def _self_checks() -> list[FcSelfCheck]:
    classes = ["dog", "red-c", "kitchen"]
    result = DissectionResult("m", "soft_wpmi", {}, tuple(classes), ("img0",), (_hand_layer("fc", [0, 2, 2], 3),))
    embeddings = np.eye(3, dtype=np.float32)
    return [
        fc_self_check(result, classes, concept_embeddings=embeddings, class_embeddings=embeddings),
        fc_self_check(result, ["garage", "x", "y"], match="string", concept_set="places", scorable_rule="rule"),
    ]


def _array_artifacts() -> list[ArrayArtifact]:
    return [
        ArrayArtifact(
            {"embeddings": np.ones((3, 4), np.float16), "kept": np.array([0, 2, 5]), "features.8": np.zeros((3, 2, 1))},
            {"skipped": [["n01/a.JPEG", "cannot decode"]], "load_note": "strict load"},
        ),
        ArrayArtifact({}, {}),
    ]


@functools.cache
def _concept_explanations() -> tuple[ConceptExplanation, ...]:
    """The planted network's explanation (tests.helpers.concept_artifacts), and one without the optional checks,
    with an unknown true class and a permutation test that had nothing to test (NaNs)."""
    from tests.helpers.concept_artifacts import artifacts

    first = artifacts()["concepts"].images[0].explanation  # type: ignore[attr-defined]
    nothing = LabelPermutation("", math.nan, math.nan, math.nan, math.nan, 10)
    bare = dataclasses.replace(
        first, presence=(), agreement=(), concept_removals=(), label_permutation=nothing, true_class=-1
    )
    return first, bare


def _concept_parts(part: Callable[[ConceptExplanation], Any]) -> Callable[[], list[Any]]:
    def build() -> list[Any]:
        found: list[Any] = []
        for explanation in _concept_explanations():
            value = part(explanation)
            found += list(value) if isinstance(value, tuple) else [value]
        return found

    return build


EXAMPLES: dict[type, Callable[[], list[Any]]] = {
    Prediction: _predictions,
    CamMap: _cams,
    LimeResult: _limes,
    LimeStability: _stabilities,
    ImageExplanation: _explanations,
    Agreement: _agreements,
    Complexity: _complexities,
    ImageComparison: _image_comparisons,
    FaithfulnessResult: _faithfulness,
    SampleImage: _sample_images,
    SanityResult: _sanities,
    ComparisonSummary: _summaries,
    LayerDissection: lambda: list(_dissections()[0].layers),
    DissectionResult: _dissections,
    LayerSummary: _layer_summaries,
    ModelSummary: _model_summaries,
    LayerOverlap: _overlaps,
    ModelComparison: _model_comparisons,
    FcSelfCheck: _self_checks,
    ArrayArtifact: _array_artifacts,
    ConceptExplanation: lambda: list(_concept_explanations()),
    ConceptSettings: _concept_parts(lambda e: e.settings),
    UnitContributions: _concept_parts(lambda e: e.contributions),
    ConceptBars: _concept_parts(lambda e: e.bars),
    ConceptBar: _concept_parts(lambda e: (*e.bars.bars, e.bars.unlabelled)),
    ConceptMaps: _concept_parts(lambda e: e.maps),
    UnitFaithfulness: _concept_parts(lambda e: e.faithfulness),
    RemovalCurve: _concept_parts(lambda e: (e.faithfulness.by_contribution, e.faithfulness.keep_only)),
    RandomBand: _concept_parts(lambda e: (e.faithfulness.random_removal, e.faithfulness.random_keep_only)),
    ConceptRemoval: _concept_parts(lambda e: e.concept_removals),
    LabelPermutation: _concept_parts(lambda e: e.label_permutation),
    ConceptPresence: _concept_parts(lambda e: e.presence),
    MapAgreement: _concept_parts(lambda e: e.agreement),
}
"""Every artifact class with representative instances (NaNs, empty tuples, None optionals, nested tables)."""


def examples() -> Iterator[tuple[type, Any]]:
    for kind, build in EXAMPLES.items():
        for instance in build():
            yield kind, instance


# ---------------------------------------------------------------- helpers


def assert_same(a: Any, b: Any, where: str = "") -> None:
    """Equal field by field with the same types: tuple vs list, int vs float, array dtype, shape and read-only
    flag, DataFrame dtypes and column order; NaN equals NaN."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} vs {type(b).__name__}"
    if dataclasses.is_dataclass(a):
        for item in dataclasses.fields(a):
            assert_same(getattr(a, item.name), getattr(b, item.name), f"{where}.{item.name}")
    elif isinstance(a, np.ndarray):
        assert (a.dtype, a.shape, a.flags.writeable) == (b.dtype, b.shape, b.flags.writeable), where
        np.testing.assert_array_equal(a, b, err_msg=where, strict=True)
    elif isinstance(a, pd.DataFrame):
        assert list(a.columns) == list(b.columns) and list(a.dtypes) == list(b.dtypes), where
        pd.testing.assert_frame_equal(a, b, check_exact=True, obj=where)
    elif isinstance(a, tuple | list):
        assert len(a) == len(b), where
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{index}]")
    elif isinstance(a, dict):
        assert sorted(a) == sorted(b), where
        for key in a:
            assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b), where
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def through_storage(parts: serial.Parts) -> serial.Parts:
    """What a cache entry gives back: the arrays through npz without pickle, the meta through strict JSON."""
    arrays, meta = parts
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as archive:
        loaded = {name: archive[name] for name in archive.files}
    return loaded, json.loads(json.dumps(meta, sort_keys=True, allow_nan=False))


# ---------------------------------------------------------------- tests


@pytest.fixture(scope="module")
def all_examples() -> list[tuple[type, Any]]:
    return list(examples())


def test_every_class_round_trips_to_an_equal_object(all_examples: list[tuple[type, Any]]) -> None:
    for kind, instance in all_examples:
        restored = serial.from_parts(kind, *through_storage(serial.to_parts(instance)))
        assert_same(instance, restored, kind.__name__)


def test_meta_is_deterministic_json(all_examples: list[tuple[type, Any]]) -> None:
    for kind, instance in all_examples:
        arrays, meta = serial.to_parts(instance)
        text = json.dumps(meta, sort_keys=True, allow_nan=False)  # strict JSON: no NaN literal anywhere
        assert json.dumps(serial.to_parts(instance)[1], sort_keys=True, allow_nan=False) == text, kind.__name__
        again_arrays, again_meta = serial.to_parts(serial.from_parts(kind, *through_storage((arrays, meta))))
        assert json.dumps(again_meta, sort_keys=True, allow_nan=False) == text, kind.__name__
        assert sorted(again_arrays) == sorted(arrays), kind.__name__  # a dict comes back in sorted key order
        for name, array in arrays.items():
            assert again_arrays[name].dtype == array.dtype, f"{kind.__name__} {name}"
            np.testing.assert_array_equal(again_arrays[name], array, strict=True)


def test_a_fresh_result_and_a_cache_hit_are_equal(tmp_path: Path, all_examples: list[tuple[type, Any]]) -> None:
    store = ArtifactCache(tmp_path)
    for index, (kind, instance) in enumerate(all_examples):
        parts = {"example": index}
        fresh = store.get_or_compute("stage", parts, lambda instance=instance: instance, kind)
        hit = ArtifactCache(tmp_path).get_or_compute("stage", parts, pytest.fail, kind)
        assert_same(instance, fresh, kind.__name__)
        assert_same(fresh, hit, kind.__name__)
    assert len(store.stats.misses) == len(all_examples)


def test_nan_and_containers_are_restored_to_their_annotated_types() -> None:
    summary_meta = serial.to_parts(_complexities()[1])[1]
    assert summary_meta["edge_density"] is None and summary_meta["n_segments"] == 0  # NaN as null
    restored = serial.from_parts(Complexity, {}, {**summary_meta, "colour_entropy": 2})
    assert math.isnan(restored.edge_density) and type(restored.colour_entropy) is float
    cam = _cams()[2]
    assert serial.to_parts(cam)[1]["per_image_s"] == "NaN"  # null would read as None under float | None
    assert math.isnan(serial.from_parts(CamMap, *serial.to_parts(cam)).per_image_s)
    assert serial.from_parts(CamMap, *serial.to_parts(_cams()[0])).per_image_s is None
    lime = serial.from_parts(LimeResult, *through_storage(serial.to_parts(_limes()[0])))
    assert lime.ks == (1, 3) and type(lime.ks) is tuple
    summary = serial.from_parts(ModelSummary, *through_storage(serial.to_parts(_model_summaries()[1])))
    assert type(summary.cross_layer[0]) is tuple and math.isnan(summary.cross_layer[0][3])
    sanity = serial.from_parts(SanityResult, *through_storage(serial.to_parts(_sanities()[0])))
    assert not sanity.spearman.flags.writeable and sanity.constant.dtype == np.int64


def test_a_field_missing_from_the_meta_takes_its_default_and_extra_keys_are_ignored() -> None:
    arrays, meta = serial.to_parts(_cams()[0])
    del meta["warning"], meta["batch_size"]
    restored = serial.from_parts(CamMap, arrays, {**meta, "retired_field": 1})
    assert restored.warning == "" and restored.batch_size is None
    del meta["method"]
    with pytest.raises(ValueError, match=r"CamMap\.method: missing"):
        serial.from_parts(CamMap, arrays, meta)


@dataclasses.dataclass
class _WithSet:
    name: str
    members: set[int]


@dataclasses.dataclass
class _WithSequence:
    values: Sequence[int]


@dataclasses.dataclass
class _Nested:
    inner: _WithSet | None = None


@dataclasses.dataclass
class _WithObjects:
    values: np.ndarray


def test_unsupported_annotations_and_values_raise_a_clear_type_error() -> None:
    with pytest.raises(TypeError, match=r"_WithSet\.members: cannot serialise a field annotated set\[int\]"):
        serial.to_parts(_WithSet("a", {1}))
    with pytest.raises(TypeError, match=r"_WithSet\.members"):
        serial.from_parts(_WithSet, {}, {"name": "a", "members": [1]})
    with pytest.raises(TypeError, match=r"_WithSequence\.values"):
        serial.to_parts(_WithSequence((1, 2)))
    with pytest.raises(TypeError, match=r"_WithSet\.members"):  # found through the type, even when inner is None
        serial.to_parts(_Nested())
    with pytest.raises(TypeError, match=r"_WithObjects\.values: an object array cannot be stored"):
        serial.to_parts(_WithObjects(np.array([{"a": 1}], dtype=object)))
    with pytest.raises(TypeError, match=r"CamMap\.target_class: str value '3'"):
        serial.to_parts(dataclasses.replace(_cams()[0], target_class="3"))
    with pytest.raises(TypeError, match="not a dataclass"):
        serial.to_parts({"a": 1})
    with pytest.raises(TypeError, match="not a dataclass"):
        serial.from_parts(dict, {}, {})


def _stored_kinds() -> set[str]:
    """Names of the classes the package asks its cache for: ``<stage cache>.get(Kind, ...)`` and
    ``get_or_compute(stage, parts, compute, Kind)`` calls, each name resolved in its module to a dataclass."""
    found: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        module = None
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            kind = None
            if node.func.attr == "get" and node.args:
                kind = node.args[0]
            elif node.func.attr == "get_or_compute" and len(node.args) == 4:
                kind = node.args[3]
            kind = next((k.value for k in node.keywords if k.arg == "kind"), kind)
            if not isinstance(kind, ast.Name | ast.Attribute) or not ast.unparse(kind).split(".")[-1][0].isupper():
                continue
            if module is None:
                name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
                module = importlib.import_module(name)
            value = eval(ast.unparse(kind), vars(module))  # a name the module binds at run time
            if dataclasses.is_dataclass(value):
                found.add(value.__name__)
    return found


def test_the_examples_cover_every_dataclass_the_cache_stores() -> None:
    stored = _stored_kinds()
    # The scan must keep seeing the stages' cache calls (if they move behind another name, update the scan).
    assert len(stored) >= 11 and {"Prediction", "ImageComparison", "DissectionResult", "ArrayArtifact"} <= stored
    missing = stored - {kind.__name__ for kind in EXAMPLES}
    assert not missing, f"add representative instances of {sorted(missing)} to EXAMPLES"
    for kind in EXAMPLES:  # and every class nested in one: EXAMPLES covers each on its own too
        for item in serial._schema(kind):
            for nested in _dataclasses_in(item.hint):
                assert nested in EXAMPLES, f"{kind.__name__}.{item.name}: add {nested.__name__} to EXAMPLES"


def _dataclasses_in(hint: Any) -> Iterator[type]:
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        yield hint
    for arg in typing.get_args(hint):
        yield from _dataclasses_in(arg)
