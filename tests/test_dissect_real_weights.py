"""What only real weights and real data would reveal, seen without downloading anything: CLIP's activation on
every loading path, the Broden layout (masks beside the JPEGs), the Places365 checkpoint's legacy format, cache
keys that follow the model code, and the paper's fc scoring rules."""

from __future__ import annotations

import dataclasses
import hashlib
import pickle
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torchvision.models import resnet18

from xai import classifiers, models
from xai.classifiers import PRESETS, ClassifierSpec, LoadedClassifier, build_classifier, weight_file
from xai.dissect import paper, probes
from xai.dissect.analysis import fc_self_check
from xai.dissect.labelling import dissect_model
from xai.models import WeightsUnavailableError

# ---------------------------------------------------------------------------------------------------------------
# 1. CLIP is built with QuickGELU, identically in random and pretrained mode


def _module_classes(module: nn.Module) -> list[str]:
    return [f"{name}:{type(child).__module__}.{type(child).__qualname__}" for name, child in module.named_modules()]


def _assert_quick_gelu(module: nn.Module) -> None:
    from open_clip.transformer import QuickGELU

    kinds = [type(child) for child in module.modules()]
    assert QuickGELU in kinds
    assert not any(issubclass(kind, nn.GELU) for kind in kinds), "CLIP built with nn.GELU: OpenAI trained QuickGELU"
    # 12 blocks in each tower, one activation per MLP
    assert sum(kind is QuickGELU for kind in kinds) == 24


def test_clip_is_quick_gelu_and_pretrained_builds_the_random_architecture(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import open_clip.factory as factory

    random_clip = models.load_clip("random", seed=0, weights_dir=None)
    _assert_quick_gelu(random_clip.module)
    built: dict[str, nn.Module] = {}

    def capture_checkpoint(model: nn.Module, checkpoint_path: str, **_kwargs) -> dict:
        built[Path(checkpoint_path).name] = model  # the module the real weights would be loaded into
        return {}

    monkeypatch.setattr(factory, "load_checkpoint", capture_checkpoint)
    # open_clip's unpinned .bin (allowed by clip_unverified); OpenAI's pinned archive: tests/test_clip_pinned.py
    local = tmp_path / models.UNVERIFIED_CLIP.filename
    local.write_bytes(b"stand-in")
    loaded = models.load_clip("pretrained", seed=0, weights_dir=tmp_path, unverified=True)
    assert set(built) == {local.name}
    _assert_quick_gelu(loaded.module)
    assert _module_classes(loaded.module) == _module_classes(random_clip.module)
    # OpenAI's preprocessing on every path: bicubic resize of the short side to 224, centre crop, CLIP mean/std
    assert repr(loaded.preprocess) == repr(random_clip.preprocess)
    assert "Resize(size=224, interpolation=bicubic" in repr(random_clip.preprocess)
    assert "mean=(0.48145466, 0.4578275, 0.40821073)" in repr(random_clip.preprocess)
    assert hashlib.sha256(b"stand-in").hexdigest() in loaded.weights_id


def test_clip_runs_in_fp16_on_cuda_and_fp32_on_cpu() -> None:
    from open_clip.transformer import LayerNormFp32

    from xai.dissect.clip_embed import encode_images, image_input_dtype

    assert models.clip_dtype("cpu") == torch.float32 and models.clip_dtype("cuda") == torch.float16
    half, _ = models.build_clip(None, precision="fp16")  # what a CUDA device gets, built on the CPU here
    assert half.visual.conv1.weight.dtype == torch.float16
    assert half.transformer.resblocks[0].mlp.c_fc.weight.dtype == torch.float16
    norms = [m for m in half.modules() if isinstance(m, nn.LayerNorm)]
    assert norms and all(isinstance(m, LayerNormFp32) and m.weight.dtype == torch.float32 for m in norms)
    _assert_quick_gelu(half)
    # the fp32 probe batch is cast to what the image tower takes (its class embedding stays fp32)
    assert image_input_dtype(half) == torch.float16 and half.visual.class_embedding.dtype == torch.float32
    embedding = encode_images(half, [torch.zeros(1, 3, 224, 224)])
    assert embedding.dtype == np.float32 and embedding.shape == (1, 512)


# ---------------------------------------------------------------------------------------------------------------
# 2. Broden: the JPEGs listed in index.csv, never the segmentation PNGs beside them


def _mock_broden(root: Path) -> list[str]:
    """A broden1_224 tree as the zip extracts it: JPEGs plus colour/object/part masks, index.csv, c_scene.csv."""
    images = []
    for source, stems in {
        "ade20k": ["ADE_train_00000001", "ADE_train_00000002"],
        "dtd": ["banded_0002"],
        "opensurfaces": ["100963"],
        "pascal": ["2008_000002"],
    }.items():
        folder = root / "images" / source
        folder.mkdir(parents=True)
        for stem in stems:
            Image.new("RGB", (8, 8), (10, 20, 30)).save(folder / f"{stem}.jpg")
            for mask in ("color", "object", "part_1", "material"):
                Image.new("RGB", (8, 8)).save(folder / f"{stem}_{mask}.png")
            images.append(f"{source}/{stem}.jpg")
    rows = ["image,split,ih,iw,sh,sw,color,object,part,material,scene,texture"]
    rows += [f"{name},train,224,224,112,112,{name[:-4]}_color.png,,,,," for name in images]
    (root / "index.csv").write_text("\n".join(rows) + "\n")
    (root / "c_scene.csv").write_text("number,name,frequency,coverage\n1,airfield-s,10,1\n")
    return images


def test_broden_probe_is_the_index_jpegs_only(tmp_path: Path) -> None:
    names = _mock_broden(tmp_path / "broden1_224")
    paths = probes.broden_paths(tmp_path, expected=len(names))  # images/ exists: no download is attempted
    root = tmp_path / "broden1_224" / "images"
    assert [p.relative_to(root).as_posix() for p in paths] == sorted(names)
    assert all(p.suffix == ".jpg" for p in paths)


def test_broden_with_a_missing_image_or_index_is_one_clear_line(tmp_path: Path) -> None:
    names = _mock_broden(tmp_path / "broden1_224")
    (tmp_path / "broden1_224" / "images" / names[1]).unlink()
    with pytest.raises(probes.ProbeSetError) as raised:
        probes.broden_paths(tmp_path, expected=len(names))
    message = str(raised.value)
    assert "\n" not in message
    assert f"expected {len(names)} probe images, found {len(names) - 1}" in message and names[1] in message
    with pytest.raises(probes.ProbeSetError, match="expected 63,305"):
        probes.broden_paths(tmp_path)  # the real count by default
    (tmp_path / "broden1_224" / "index.csv").unlink()
    with pytest.raises(probes.ProbeSetError, match=r"index\.csv is missing"):
        probes.broden_paths(tmp_path, expected=len(names))


# ---------------------------------------------------------------------------------------------------------------
# 3. Places365 checkpoint: PyTorch 0.2 / Python 2.7 legacy pickle


def _legacy_places_checkpoint(path: Path, *, numpy_scalar: bool) -> str:
    """As CSAIL wrote it: non-zip pickle, protocol 2, DataParallel 'module.' keys, no num_batches_tracked."""
    torch.manual_seed(0)
    state = {
        f"module.{k}": v
        for k, v in resnet18(num_classes=365).state_dict().items()
        if not k.endswith("num_batches_tracked")
    }
    checkpoint = {
        "epoch": 90,
        "arch": "resnet18",
        "state_dict": state,
        "best_prec1": np.float64(54.74) if numpy_scalar else 54.74,
    }
    torch.save(checkpoint, path, _use_new_zipfile_serialization=False, pickle_protocol=2)
    return hashlib.md5(path.read_bytes()).hexdigest()


def _places_spec(weights_dir: Path, known_hash: str) -> ClassifierSpec:
    """The Places365 preset as ``RunContext.classifier`` fills it (``classes`` = a categories_places365.txt in
    CSAIL's ``/a/airfield 0`` format), its published checkpoint pinned to ``known_hash``."""
    classes = weights_dir / "categories_places365.txt"
    classes.write_text("".join(f"/a/class_{i} {i}\n" for i in range(365)))
    preset = PRESETS["resnet18_places365"]
    published = dataclasses.replace(preset.published, known_hash=known_hash)
    return dataclasses.replace(preset, published=published, classes=classes)


def _load_places(weights_dir: Path, known_hash: str) -> LoadedClassifier:
    return build_classifier(_places_spec(weights_dir, known_hash), "pretrained", seed=0, weights_dir=weights_dir)


@pytest.mark.parametrize("numpy_scalar", [False, True])
def test_legacy_places365_checkpoint_loads(tmp_path: Path, numpy_scalar: bool) -> None:
    path = tmp_path / "resnet18_places365.pth.tar"
    digest = _legacy_places_checkpoint(path, numpy_scalar=numpy_scalar)
    assert path.read_bytes()[:2] == b"\x80\x02"  # a bare protocol-2 pickle, not a zip archive
    if numpy_scalar:
        with pytest.raises(pickle.UnpicklingError):
            torch.load(path, weights_only=True)
    loaded = _load_places(tmp_path, f"md5:{digest}")
    torch.manual_seed(0)
    reference = resnet18(num_classes=365)
    assert torch.equal(loaded.module.layer4[1].bn2.running_var, reference.layer4[1].bn2.running_var)
    assert torch.equal(loaded.module.fc.weight, reference.fc.weight)
    if numpy_scalar:
        assert "weights_only=False" in loaded.load_note and "checksum matched" in loaded.load_note
    else:
        assert loaded.load_note == ""


def test_unsafe_checkpoint_without_a_published_checksum_is_refused(tmp_path: Path) -> None:
    _legacy_places_checkpoint(tmp_path / "resnet18_places365.pth.tar", numpy_scalar=True)
    with pytest.raises(WeightsUnavailableError, match="no published full checksum"):
        _load_places(tmp_path, "")


def test_torchvision_prefix_hash_never_allows_an_unrestricted_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An 8-hex sha256 prefix (torchvision's file names) matches a crafted file easily: no fallback on it."""
    path = tmp_path / "resnet18-f37072fd.pth"
    torch.manual_seed(0)
    torch.save({"state_dict": resnet18().state_dict(), "best_prec1": np.float64(1.0)}, path)
    prefix = hashlib.sha256(path.read_bytes()).hexdigest()[:8]
    monkeypatch.setattr(
        classifiers,
        "weight_file",
        lambda *a: dataclasses.replace(weight_file(*a), known_hash=f"sha256-prefix:{prefix}"),
    )
    with pytest.raises(WeightsUnavailableError, match="no published full checksum") as raised:
        build_classifier(PRESETS["resnet18_imagenet"], "pretrained", seed=0, weights_dir=tmp_path)
    assert "\n" not in str(raised.value) and str(path) in str(raised.value)
    assert models.full_checksum(f"md5:{'0' * 32}") and models.full_checksum(f"sha256:{'0' * 64}")
    assert not models.full_checksum("sha256-prefix:f37072fd") and not models.full_checksum("")


# ---------------------------------------------------------------------------------------------------------------
# 4. Cache keys follow the code that makes the artifact


def _context(data: dict, device: str = "cpu") -> SimpleNamespace:
    """What the dissect stage's key functions read of a run: its plan and device."""
    from xai.config import validate
    from xai.plan import make_plan

    return SimpleNamespace(plan=make_plan(validate({"stages": ["dissect"], **data})), device=torch.device(device))


def test_clip_architecture_is_in_the_clip_embedding_key(monkeypatch: pytest.MonkeyPatch) -> None:
    from xai.cache import make_key
    from xai.stages import dissect as stage
    from xai.stages.dissect_keys import clip_parts

    context = _context({"weights": "random"})
    before = make_key(stage.STAGE, {"piece": "clip-images", **clip_parts(context)})
    monkeypatch.setattr(models, "CLIP_ARCH", "ViT-B-16")
    after = make_key(stage.STAGE, {"piece": "clip-images", **clip_parts(context)})
    assert before != after
    assert clip_parts(_context({"weights": "random"}, "cuda"))["clip_dtype"] == "float16"


def test_activations_key_separates_cpu_and_cuda() -> None:
    from xai.cache import make_key
    from xai.stages import dissect as stage
    from xai.stages.dissect_keys import activation_parts

    data = {"weights": "random", "dissect": {"models": ["resnet18_places365"], "layers": ["layer4", "fc"]}}

    def parts(device: str) -> dict:
        context = _context(data, device)
        return activation_parts(context, context.plan.dissect.models[0], "probe")

    cpu, cuda = parts("cpu"), parts("cuda:0")
    assert cpu["device"] == "cpu" and cuda["device"] == "cuda"
    assert make_key(stage.STAGE, cpu) != make_key(stage.STAGE, cuda)
    assert make_key(stage.STAGE, cuda) == make_key(stage.STAGE, parts("cuda"))


def test_activations_key_follows_the_spec_the_layers_and_their_pooling() -> None:
    """Two models, two weights members or two layer lists never share pooled activations."""
    from xai.cache import make_key
    from xai.stages import dissect as stage
    from xai.stages.dissect_keys import activation_parts

    def parts(model: object, layers: object = "auto", pool: str = "mean") -> dict:
        context = _context({"weights": "random", "dissect": {"models": [model], "layers": layers, "pool": pool}})
        return activation_parts(context, context.plan.dissect.models[0], "probe")

    def key(model: object, layers: object = "auto", pool: str = "mean") -> str:
        return make_key(stage.STAGE, parts(model, layers, pool))

    keys = [
        key("resnet18_imagenet"),
        key("resnet18_places365"),
        key("resnet18"),
        key("vit_b_16"),
        key({"name": "vit_b_16", "weights": "IMAGENET1K_SWAG_LINEAR_V1"}),
        key("resnet18_imagenet", ["layer4", "fc"]),
        key("resnet18_imagenet", pool="max"),
    ]
    assert len(set(keys)) == len(keys)
    vit = parts("vit_b_16")
    assert vit["layers"][-1] == "heads" and vit["pooling"] == ["tokens", "tokens", "tokens", "none"]
    assert vit["weights_member"] == "IMAGENET1K_V1" and vit["architecture"] == "vit_b_16"


# ---------------------------------------------------------------------------------------------------------------
# 5. The fc self-check scores the paper's way


def _reference_topk_acc(
    top_ids: np.ndarray, words: list[str], id_to_label: dict[int, str | None], k: int, once: bool = False
) -> float:
    """CLIP-Dissect's ``get_topk_acc`` (table2 notebook), restated over precomputed top-k concept indices.

    The notebook's ``continue`` sits inside the inner loop, so every top-k concept equal to the target adds a hit;
    ``once=True`` is the strict count (a unit at most once).
    """

    def process_word(word: str) -> str:
        if word.endswith("-s"):
            word = word[:-2]
        return word.replace("_", " ")

    correct = total = 0
    for orig_id in range(len(top_ids)):
        if id_to_label[orig_id] is None:
            continue
        hits = sum(process_word(words[idx]) == process_word(id_to_label[orig_id]) for idx in top_ids[orig_id][:k])
        correct += min(hits, 1) if once else hits
        total += 1
    return correct / total


def _reference_id_to_label(category_lines: list[str], scene_names: set[str]) -> dict[int, str | None]:
    """CLIP-Dissect's ``get_places_id_to_broden_label``, restated."""
    out: dict[int, str | None] = {}
    for i, cls in enumerate(category_lines):
        name = cls[3:].split(" ")[0].replace("/", "-")
        out[i] = name.replace("-", "/") + "-s" if name + "-s" in scene_names else None
    return out


CATEGORY_LINES = [
    "/a/airfield 0",
    "/a/apartment_building/outdoor 1",
    "/b/bakery/shop 2",
    "/b/ball_pit 3",
    "/z/zen_garden 4",
    "/a/alley 5",
]
SCENES = {"airfield-s", "apartment_building-outdoor-s", "ball_pit-s", "zen_garden-s", "kitchen-s"}
CONCEPTS = [
    "airfield",
    "apartment building-outdoor",
    "bakery-shop",
    "ball pit",
    "zen garden",
    "alley",
    "red-c",
    "kitchen",
    "dog",
    "zen_garden-s",
]
"""The last concept duplicates "zen garden" after the notebook's cleaning, as 44 strings of broden_labels_clean do."""


def test_places_targets_follow_the_notebook() -> None:
    names = paper.places_category_names(CATEGORY_LINES)
    targets = paper.places_targets(names, SCENES, CONCEPTS)
    assert targets == ["airfield-s", "apartment_building/outdoor-s", None, "ball_pit-s", "zen_garden-s", None]
    # without c_scene.csv: class names present in the concept set (alley counts, bakery/shop is spelled with '-')
    assert [t is not None for t in paper.places_targets(names, None, CONCEPTS)] == [True, True, True, True, True, True]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_places_fc_accuracy_equals_the_notebook(seed: int) -> None:
    names = paper.places_category_names(CATEGORY_LINES)
    rng = np.random.default_rng(seed)
    n_images = 40
    images = rng.standard_normal((n_images, 16)).astype(np.float32)
    texts = rng.standard_normal((len(CONCEPTS), 16)).astype(np.float32)
    texts[9] = texts[4] + 0.05 * rng.standard_normal(16)  # the duplicate string has (almost) the same embedding
    # unit k fires on the images most similar to its own class's concept (where it has one): a planted answer
    planted = [0, 1, 2, 3, 4, 5]
    acts = (images @ texts[planted].T + 0.5 * rng.standard_normal((n_images, len(names)))).astype(np.float32)
    result = dissect_model(
        {"fc": acts},
        images,
        texts,
        CONCEPTS,
        model_name="m",
        probe_ids=[str(i) for i in range(n_images)],
        similarity="cos_similarity",
        null_seed=None,
    )
    targets = paper.places_targets(names, SCENES, CONCEPTS)
    check = fc_self_check(result, names, match="string", targets=targets)
    top = result.layer("fc").concept_ids
    id_to_label = _reference_id_to_label(CATEGORY_LINES, SCENES)
    assert check.n_scored == 4
    assert check.top1_fraction == pytest.approx(_reference_topk_acc(top, CONCEPTS, id_to_label, 1))
    assert check.top5_notebook_fraction == pytest.approx(_reference_topk_acc(top, CONCEPTS, id_to_label, 5))
    assert check.top5_fraction == pytest.approx(_reference_topk_acc(top, CONCEPTS, id_to_label, 5, once=True))
    # the fixture does exercise the difference: zen garden's unit has both spellings in its top-5
    assert check.top5_notebook_fraction > check.top5_fraction


def test_places_self_check_known_answers() -> None:
    from xai.dissect.result import DissectionResult

    names = paper.places_category_names(CATEGORY_LINES)
    targets = paper.places_targets(names, SCENES, CONCEPTS)
    # labels: airfield right, apartment building-outdoor (never right: '-' vs '/'), ball pit second, zen right
    ids = np.array(
        [[0, 8, 7, 6, 5], [1, 8, 7, 6, 5], [2, 8, 7, 6, 5], [8, 3, 7, 6, 5], [4, 8, 7, 6, 5], [5, 8, 7, 6, 0]]
    )
    result = DissectionResult(
        model_name="m",
        similarity="soft_wpmi",
        params={},
        concepts=tuple(CONCEPTS),
        probe_ids=("a",),
        layers=(_layer(ids),),
    )
    check = fc_self_check(result, names, match="string", targets=targets)
    assert check.n_scored == 4 and check.top1_fraction == pytest.approx(2 / 4)
    assert check.top5_fraction == pytest.approx(3 / 4)
    assert check.top5_notebook_fraction == pytest.approx(3 / 4)
    # zen garden's unit lists both of its spellings: one neuron, two hits by the notebook's count
    ids[4] = [4, 9, 7, 6, 5]
    result = DissectionResult(
        model_name="m",
        similarity="soft_wpmi",
        params={},
        concepts=tuple(CONCEPTS),
        probe_ids=("a",),
        layers=(_layer(ids),),
    )
    check = fc_self_check(result, names, match="string", targets=targets)
    assert check.top5_fraction == pytest.approx(3 / 4) and check.top5_notebook_fraction == pytest.approx(4 / 4)


def _layer(ids: np.ndarray):
    from xai.dissect.result import label_layer

    n_units, n_concepts = ids.shape[0], len(CONCEPTS)
    scores = np.zeros((n_units, n_concepts), np.float32)
    for unit, row in enumerate(ids):
        scores[unit, row] = np.arange(len(row), 0, -1, dtype=np.float32)
    return label_layer(
        "fc",
        scores,
        np.zeros((1, n_units), np.float32),
        np.zeros((n_units, 1), np.int64),
        top_concepts=5,
        null_scores=None,
    )


def test_self_check_rows_show_the_paper_only_for_the_same_probe() -> None:
    from types import SimpleNamespace

    from xai.dissect.analysis import FcSelfCheck
    from xai.report.pages_dissect import self_check_rows

    places = FcSelfCheck(
        "resnet18_places365",
        "fc",
        "string",
        365,
        267,
        0.5,
        0.8,
        0.9,
        "broden_labels",
        "Broden c_scene.csv",
        0.85,
        "soft_wpmi",
    )
    imagenet = FcSelfCheck(
        "resnet18_imagenet", "fc", "index", 1000, 1000, 0.6, 0.85, 0.95, "imagenet_labels", "", 0.85, "soft_wpmi"
    )
    full = SimpleNamespace(
        self_checks={"a": places, "b": imagenet}, probe_name="broden", probe_paths=[Path("x")] * 63305
    )
    rows = self_check_rows(full)
    assert rows[0][4:9] == ["50.0%", "58.1%", "80.0%", "85.0%", "86.1%"] and "ResNet18-Places365" in rows[0][9]
    assert rows[1][4:9] == ["60.0%", "70.7%", "85.0%", "85.0%", "90.0%"] and "ResNet50" in rows[1][9]
    limited = SimpleNamespace(self_checks={"a": places}, probe_name="broden", probe_paths=[Path("x")] * 500)
    row = self_check_rows(limited)[0]
    assert row[5] == row[8] == "–" and "none comparable" in row[9] and "500" in row[9]


@pytest.mark.parametrize(
    "change", [{"similarity": "cos_similarity"}, {"similarity": ""}, {"scorable_rule": "class name in the concept set"}]
)
def test_paper_row_needs_soft_wpmi_and_the_c_scene_rule(change: dict) -> None:
    from dataclasses import replace
    from types import SimpleNamespace

    from xai.dissect.analysis import FcSelfCheck
    from xai.report.pages_dissect import self_check_rows

    places = FcSelfCheck(
        "resnet18_places365",
        "fc",
        "string",
        365,
        281,
        0.5,
        0.8,
        0.9,
        "broden_labels",
        "Broden c_scene.csv",
        0.85,
        "soft_wpmi",
    )
    assert (
        paper.comparable_row(
            "resnet18_places365", "broden", 63305, similarity="soft_wpmi", scorable_rule="Broden c_scene.csv"
        )
        is not None
    )
    full = SimpleNamespace(
        self_checks={"a": replace(places, **change)}, probe_name="broden", probe_paths=[Path("x")] * 63305
    )
    row = self_check_rows(full)[0]
    assert row[5] == row[8] == "–" and "none comparable" in row[9]
    assert next(iter(change.values())) or "unrecorded" in row[9]


def test_fc_check_uses_the_papers_concept_sets(mirror: Path) -> None:
    from xai.dissect.fc_check import fc_check_inputs

    def embed(concepts: list[str]) -> np.ndarray:
        return np.ones((len(concepts), 4), np.float32)

    places = fc_check_inputs("resnet18_places365", "imagenet-samples", embed)
    assert places.concept_set == "broden_labels" and len(places.concepts) == 1197
    assert places.match == "string" and len(places.targets) == 365
    assert places.rule == "class name in the concept set"
    imagenet = fc_check_inputs("resnet18_imagenet", "broden", embed)
    assert imagenet.concept_set == "imagenet_labels" and imagenet.match == "index"
    assert imagenet.class_names == imagenet.concepts and len(imagenet.concepts) == 1000


def test_fc_self_check_is_scored_with_soft_wpmi_whatever_the_main_similarity(mirror: Path) -> None:
    """The paper's measurement is SoftWPMI; the fc self-check must not follow ``dissect.similarity``."""
    from xai.dissect import fc_check

    rng = np.random.default_rng(0)
    n_images, dim = 300, 8

    def embed(concepts: list[str]) -> np.ndarray:
        vectors = np.random.default_rng(len(concepts)).standard_normal((len(concepts), dim)).astype(np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    check = fc_check.fc_check_inputs("resnet18_places365", "imagenet-samples", embed)
    images = rng.standard_normal((n_images, dim)).astype(np.float32)
    images /= np.linalg.norm(images, axis=1, keepdims=True)
    acts = rng.standard_normal((n_images, 365)).astype(np.float32)
    ids = [str(i) for i in range(n_images)]
    got = fc_check.paper_self_check(acts, images, ids, "resnet18_places365", check, "cpu")
    assert got.similarity == "soft_wpmi"
    expected = fc_self_check(
        dissect_model(
            {"fc": acts},
            images,
            check.concept_embeddings,
            check.concepts,
            model_name="m",
            probe_ids=ids,
            similarity="soft_wpmi",
            null_seed=None,
        ),
        check.class_names,
        match="string",
        targets=check.targets,
    )
    assert (got.top1_fraction, got.top5_fraction) == (expected.top1_fraction, expected.top5_fraction)


def test_clip_cache_key_is_the_pin_or_the_unpinned_file_hash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """OpenAI's pinned file keys the cache by its pin; open_clip's unpinned .bin (a LAION ViT-B-16 saved under its
    name, say) by its content, so replacing it recomputes the embeddings."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    weights_dir = tmp_path / "weights"
    weights_dir.mkdir()
    (weights_dir / models.WEIGHT_FILES["clip"].filename).write_bytes(b"checked when read, not here")
    context = _context({"weights": "pretrained", "weights_dir": str(weights_dir), "stages": ["dissect"]})
    assert context.plan.dissect.clip_weights_key == f"ViT-B-16.pt:sha256:{models.OPENAI_CLIP_SHA256}"
    (weights_dir / models.WEIGHT_FILES["clip"].filename).unlink()
    clip_file = weights_dir / models.UNVERIFIED_CLIP.filename
    clip_file.write_bytes(b"openai weights")
    first = models.clip_weights_id(weights_dir, unverified=True)
    assert hashlib.sha256(b"openai weights").hexdigest() in first and "not pinned" in first
    assert models.clip_weights_id(weights_dir, unverified=True) == first
    clip_file.write_bytes(b"laion weights!")  # same size: the mtime and content still tell them apart
    assert models.clip_weights_id(weights_dir, unverified=True) != first
