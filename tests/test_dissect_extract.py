"""Activation capture (hooks, pooling), CLIP embeddings (truncated text tower), probe and concept sets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from xai.architectures import pool_activation
from xai.dissect import (
    dissect_model,
    hooked_layers,
    layer_activations,
    load_concepts,
    places365_class_names,
    probe_ids,
    stratified_limit,
    to_csv_text,
)
from xai.dissect import probes as probes_module
from xai.dissect.activations import image_batches
from xai.dissect.probes import folder_images, image_class
from xai.errors import UserError
from xai.testing import PlantedEvidenceNet, planted_image, tiny_resnet


def _batches(count: int, size: int = 64, batch: int = 3, seed: int = 0):
    images = np.stack([planted_image(size, seed=seed + i) for i in range(count)]).astype(np.float32)
    tensor = torch.from_numpy(images).permute(0, 3, 1, 2) / 255.0
    return [tensor[i : i + batch] for i in range(0, count, batch)]


def test_pooling_by_output_rank():
    maps = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).reshape(2, 3, 2, 2)
    torch.testing.assert_close(pool_activation(maps, "mean"), maps.mean(dim=(2, 3)))
    torch.testing.assert_close(pool_activation(maps, "max"), maps[:, :, 1, 1])
    logits = torch.randn(2, 5)
    assert pool_activation(logits, "max") is logits
    tokens = torch.randn(2, 7, 4)
    torch.testing.assert_close(pool_activation(tokens), tokens.mean(dim=1))  # every token, not CLIP-Dissect's CLS
    channels_last = maps.permute(0, 2, 3, 1)  # Swin's (N, H, W, C)
    torch.testing.assert_close(pool_activation(channels_last, "mean", channels_last=True), maps.mean(dim=(2, 3)))
    with pytest.raises(ValueError):
        pool_activation(maps, "median")


def test_one_pass_captures_all_layers_pooled_like_a_manual_forward():
    model = PlantedEvidenceNet((8, 8, 40, 40), image_size=64, num_classes=5, seed=1)
    batches = _batches(5)
    acts = layer_activations(model, batches, ("layer3", "layer4", "fc"))
    assert {name: a.shape for name, a in acts.items()} == {"layer3": (5, 32), "layer4": (5, 32), "fc": (5, 5)}
    assert all(a.dtype == np.float32 for a in acts.values())
    x = torch.cat(batches)
    with torch.no_grad():
        l3 = model.layer3(model.layer2(model.layer1(model.conv1(x * model.evidence_mask))))
        l4 = model.layer4(l3)
        np.testing.assert_allclose(acts["layer3"], l3.mean(dim=(2, 3)).numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(acts["fc"], model(x).numpy(), rtol=1e-5, atol=1e-6)
        maxed = layer_activations(model, batches, ("layer4",), pool="max")["layer4"]
        np.testing.assert_allclose(maxed, l4.amax(dim=(2, 3)).numpy(), rtol=1e-5, atol=1e-6)
    assert not model.layer3._forward_hooks and not model.fc._forward_hooks


def test_hooks_are_released_after_an_error():
    model = tiny_resnet(num_classes=4, seed=0)
    with pytest.raises(RuntimeError):
        layer_activations(model, [torch.zeros(1, 5, 32, 32)], ("layer3", "fc"))  # 5 channels: conv1 fails
    assert not model.layer3._forward_hooks and not model.fc._forward_hooks
    with pytest.raises(KeyError, match="layer9"), hooked_layers(model, ("layer3", "layer9")):
        pass
    assert not model.layer3._forward_hooks


def test_same_probe_and_seed_give_identical_csv_bytes():
    def run() -> str:
        model = tiny_resnet(num_classes=6, seed=3)
        acts = layer_activations(model, _batches(12, size=48, batch=4), ("layer3", "layer4", "fc"))
        rng = np.random.default_rng(0)
        images, texts = rng.normal(size=(12, 16)), rng.normal(size=(9, 16))
        concepts = [f"c{i}" for i in range(9)]
        ids = [f"img{i}" for i in range(12)]
        result = dissect_model(
            acts,
            images,
            texts,
            concepts,
            model_name="tiny",
            probe_ids=ids,
            similarity_params={"top_k": 5},
            top_images=3,
        )
        return to_csv_text(result)

    first, second = run(), run()
    assert first == second
    assert len(first.splitlines()) == 1 + 256 + 512 + 6


@pytest.fixture(scope="module")
def random_clip():
    import open_clip

    from xai.clip import CLIP_ARCH, build_clip

    torch.manual_seed(0)
    model, preprocess = build_clip(None)  # the architecture the pipeline runs (QuickGELU)
    return model, preprocess, open_clip.get_tokenizer(CLIP_ARCH)


def test_truncated_text_transformer_equals_full_context(random_clip):
    from xai.dissect.clip_embed import encode_texts

    model, _, tokenizer = random_clip
    concepts = [
        "dog",
        "tench, Tinca tinca",
        "the",
        "a red double-decker bus on a wet street",
        "bizjournalshire",
    ]
    fast = encode_texts(model, tokenizer, concepts, batch_size=2, truncate=True)
    full = encode_texts(model, tokenizer, concepts, batch_size=8, truncate=False)
    assert fast.shape == (5, 512)
    np.testing.assert_allclose(fast, full, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)
    with torch.no_grad():
        direct = torch.nn.functional.normalize(model.encode_text(tokenizer(concepts[1:2])), dim=-1).numpy()
    np.testing.assert_allclose(fast[1:2], direct, atol=1e-5)


def test_image_embeddings_are_normalised(random_clip, tmp_path):
    from PIL import Image

    from xai.dissect.clip_embed import encode_images

    model, preprocess, _ = random_clip
    paths = []
    for i in range(2):
        paths.append(tmp_path / f"n0_{i}.png")
        Image.fromarray(planted_image(64, seed=i)).save(paths[-1])
    embeddings = encode_images(model, image_batches(paths, preprocess, batch_size=2))
    assert embeddings.shape == (2, 512)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)


def test_stratified_limit_is_deterministic_and_balanced():
    paths = [Path(f"n{c:03d}_{i}.JPEG") for c in range(10) for i in range(c + 1)]
    chosen = stratified_limit(paths, 15, seed=1)
    assert chosen == stratified_limit(paths, 15, seed=1)
    assert chosen == sorted(chosen, key=paths.index)
    counts = np.bincount([int(p.name[1:4]) for p in chosen], minlength=10)
    assert counts.tolist() == [1, 2, 2, 2, 2, 2, 1, 1, 1, 1]  # 10 classes once, then 5 more round-robin
    assert stratified_limit(paths, None) == paths
    assert image_class(Path("/d/cat/x_1.jpg"), "/d") == "cat"


def test_folder_probe_is_recursive_sorted_and_ids_are_relative(tmp_path):
    for name in ("b/2.jpg", "a/10.png", "a/sub/1.JPEG", ".hidden.jpg", "notes.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    paths = folder_images(tmp_path)
    assert probe_ids(paths, tmp_path) == ["a/10", "a/sub/1", "b/2"]
    with pytest.raises(FileNotFoundError):
        folder_images(tmp_path / "missing")


def test_broden_offline_fails_with_one_clear_line(tmp_path, monkeypatch):
    import pooch

    def offline(*_args, **_kwargs):
        raise ConnectionError("Failed to resolve 'netdissect.csail.mit.edu'\nmore detail")

    monkeypatch.setattr(pooch, "retrieve", offline)
    with pytest.raises(probes_module.ProbeSetError) as error:
        probes_module.broden_paths(tmp_path)
    assert isinstance(error.value, UserError)  # the command line's one-line, exit-2 path
    message = str(error.value)
    assert "\n" not in message and probes_module.BRODEN_URL in message and probes_module.BRODEN_MD5 in message


def test_concept_sets(mirror, tmp_path):
    assert len(load_concepts("20k")) == 20000
    assert load_concepts("imagenet_labels")[0] == "tench, Tinca tinca"
    places = places365_class_names()
    assert len(places) == 365 and places[0] == "airfield" and "apartment_building/outdoor" in places
    assert load_concepts("places365") == places
    user = tmp_path / "mine.txt"
    user.write_text("cat\n\n  dog \n")
    assert load_concepts(user) == ["cat", "dog"]
    with pytest.raises(FileNotFoundError):
        load_concepts("nope")


def test_default_categories_from_shipped_class_lists(mirror):
    from xai.dissect.categories import concept_category, default_vocabulary

    default_vocabulary.cache_clear()
    assert [concept_category(c) for c in ("red-c", "striped", "kitchen", "tench", "goldfish", "the")] == [
        "colour",
        "texture",
        "scene",
        "object",
        "object",
        "other",
    ]


def test_concept_longer_than_clip_context_is_refused(random_clip):
    from xai.data import DataError
    from xai.dissect.clip_embed import encode_texts

    model, _, tokenizer = random_clip
    longest_allowed = " ".join(["dog"] * 75)  # 75 BPE tokens + start + end = 77
    assert encode_texts(model, tokenizer, [longest_allowed], truncate=True).shape == (1, 512)
    with pytest.raises(DataError, match=r"is 78 CLIP tokens, more than CLIP.s context of 77") as raised:
        encode_texts(model, tokenizer, ["cat", longest_allowed + " dog"])
    assert "\n" not in str(raised.value) and "dog dog" in str(raised.value)


@pytest.mark.parametrize("quiet", [False, True])
def test_broden_download_bar_follows_quiet(tmp_path, monkeypatch, quiet):
    import pooch

    seen = {}

    def record(*_args, **kwargs):
        seen.update(kwargs)
        raise ConnectionError("offline")

    monkeypatch.setattr(pooch, "retrieve", record)
    with pytest.raises(probes_module.ProbeSetError):
        probes_module.broden_paths(tmp_path, quiet=quiet)
    assert seen["progressbar"] is (not quiet)
