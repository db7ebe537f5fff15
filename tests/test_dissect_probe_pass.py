"""The one-decode probe pass equals separate per-network passes, and decodes each image once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torchvision import transforms as T

from tests.helpers.probe_fixtures import CLIP_TRANSFORM, LAYERS, TARGET_TRANSFORM, TinyClip
from xai import serial
from xai.dissect.activations import image_batches, layer_activations
from xai.dissect.clip_embed import encode_images
from xai.dissect.probe_pass import probe_loader, probe_pass
from xai.testing import PlantedEvidenceNet, planted_image


@pytest.fixture
def probe_files(tmp_path: Path) -> list[Path]:
    paths = []
    for i in range(7):
        paths.append(tmp_path / f"img{i}.jpg")
        Image.fromarray(planted_image(80, seed=i)).save(paths[-1], quality=90)
    return paths


@pytest.mark.parametrize("workers", [0, 2])
def test_one_pass_equals_separate_passes(probe_files: list[Path], workers: int) -> None:
    clip = TinyClip().eval()
    targets = {
        "a": PlantedEvidenceNet((8, 8, 56, 56), image_size=64, seed=1).eval(),
        "b": PlantedEvidenceNet((0, 0, 40, 64), image_size=64, seed=2).eval(),
    }
    out = probe_pass(
        probe_files,
        batch_size=3,
        clip=clip,
        clip_transform=CLIP_TRANSFORM,
        targets=targets,
        target_transform=TARGET_TRANSFORM,
        layers=LAYERS,
        workers=workers,
    )
    expected_clip = encode_images(clip, image_batches(probe_files, CLIP_TRANSFORM, 3))
    np.testing.assert_array_equal(out.clip_embeddings, expected_clip)
    for name, model in targets.items():
        expected = layer_activations(model, image_batches(probe_files, TARGET_TRANSFORM, 3), LAYERS)
        assert list(out.activations[name]) == list(LAYERS)
        for layer in LAYERS:
            np.testing.assert_array_equal(out.activations[name][layer], expected[layer])
    assert not any(m._forward_hooks for model in targets.values() for m in model.modules())


def test_each_image_is_decoded_once_for_all_networks(probe_files: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[str] = []
    real_open = Image.open

    def counting_open(path, *args, **kwargs):
        opened.append(Path(path).name)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(Image, "open", counting_open)
    targets = {
        "a": PlantedEvidenceNet((8, 8, 56, 56), image_size=64, seed=1),
        "b": PlantedEvidenceNet((0, 0, 40, 64), image_size=64, seed=2),
    }
    totals = []
    out = probe_pass(
        probe_files,
        batch_size=4,
        clip=TinyClip(),
        clip_transform=CLIP_TRANSFORM,
        targets=targets,
        target_transform=TARGET_TRANSFORM,
        layers=("fc",),
        workers=0,
        progress=lambda batches, total: (totals.append(total), batches)[1],
    )
    assert sorted(opened) == sorted(p.name for p in probe_files)
    assert totals == [2] and out.clip_embeddings.shape == (7, 16) and out.activations["b"]["fc"].shape == (7, 5)


def test_loader_defaults(probe_files: list[Path]) -> None:
    assert probe_loader(probe_files, [TARGET_TRANSFORM], 8).num_workers == 0  # one batch: no worker processes
    loader = probe_loader(probe_files, [TARGET_TRANSFORM], 2, workers=2)
    assert loader.num_workers == 2 and not loader.pin_memory
    assert probe_loader(probe_files, [TARGET_TRANSFORM], 2, device="cuda", workers=0).pin_memory
    with pytest.raises(ValueError):
        probe_pass([], batch_size=2, targets={"a": nn.Identity()}, target_transform=TARGET_TRANSFORM)


def test_scoring_progress_counts_every_step_and_changes_nothing() -> None:
    from xai.dissect import similarity
    from xai.dissect.labelling import dissect_model

    rng = np.random.default_rng(0)
    images, texts = rng.standard_normal((60, 8)).astype(np.float32), rng.standard_normal((30, 8)).astype(np.float32)
    acts = {"a": rng.standard_normal((60, 9)).astype(np.float32), "b": rng.standard_normal((60, 4)).astype(np.float32)}
    seen: list[tuple[int, int]] = []

    def progress(steps, total):
        for step in steps:
            seen.append((step, total))
            yield step

    ids = [str(i) for i in range(60)]
    plain = dissect_model(acts, images, texts, [f"c{i}" for i in range(30)], model_name="m", probe_ids=ids)
    counted = dissect_model(
        acts, images, texts, [f"c{i}" for i in range(30)], model_name="m", probe_ids=ids, progress=progress
    )
    # 26 neuron rows (2 layers + their nulls), top-60 ranks -> PAIR_CHUNK // 60 neurons per block, one concept chunk
    blocks = -(-26 // (similarity.PAIR_CHUNK // 60))
    assert [s for s, _ in seen] == list(range(blocks)) and {t for _, t in seen} == {blocks}
    for name in acts:
        np.testing.assert_array_equal(plain.layer(name).concept_ids, counted.layer(name).concept_ids)


def test_workers_send_uint8_and_the_device_finishes_exactly(probe_files: list[Path]) -> None:
    """uint8 from the workers, ``/255`` and mean/std on the device: bit-equal to the whole transform, for the
    ResNet18 preset, open_clip's CLIP preprocess and a plain Compose."""
    import open_clip
    from torchvision.models import ResNet18_Weights

    from xai.dissect.probe_pass import split_transform

    clip_preprocess = open_clip.create_model_and_transforms("ViT-B-16-quickgelu", pretrained=None)[2]
    image = Image.open(probe_files[0]).convert("RGB").resize((300, 260))
    for transform in (ResNet18_Weights.IMAGENET1K_V1.transforms(), clip_preprocess, TARGET_TRANSFORM):
        split = split_transform(transform)
        crop = split.to_uint8(image)
        assert crop.dtype == torch.uint8 and split.mean is not None
        finished = split.finish(crop[None], torch.device("cpu"), torch.float32)[0]
        assert torch.equal(finished, transform(image))
    whole = split_transform(T.Compose([T.ToTensor()]))  # no Normalize at the end: runs whole in the worker
    assert whole.mean is None and whole.to_uint8(image).dtype == torch.float32


@pytest.mark.filterwarnings("ignore:This DataLoader will create")
def test_loader_caps_workers_and_prefetch(probe_files: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    import xai.batching

    module = sys.modules["xai.dissect.probe_pass"]
    monkeypatch.setattr(xai.batching.os, "sched_getaffinity", lambda pid: set(range(64)), raising=False)
    monkeypatch.setattr(module.torch, "get_num_threads", lambda: 1)
    loader = probe_loader(probe_files * 20, [TARGET_TRANSFORM], 2)
    assert loader.num_workers == 8 and loader.prefetch_factor == 2


def test_decoding_workers_use_only_the_cpus_torch_leaves(
    probe_files: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers = logical CPUs this process may use minus torch's threads: none spare, decode in the main process."""
    import xai.batching

    monkeypatch.setattr(xai.batching.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5}, raising=False)
    monkeypatch.setattr(xai.batching.torch, "get_num_threads", lambda: 4)
    assert probe_loader(probe_files * 20, [TARGET_TRANSFORM], 2).num_workers == 2
    monkeypatch.setattr(xai.batching.torch, "get_num_threads", lambda: 6)
    assert probe_loader(probe_files * 20, [TARGET_TRANSFORM], 2).num_workers == 0


def test_on_cuda_every_cpu_but_one_decodes(probe_files: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """The GPU runs the forwards, so torch's CPU threads do not count: decoding is what bounds the pass."""
    import sys

    import xai.batching

    module = sys.modules["xai.dissect.probe_pass"]
    monkeypatch.setattr(xai.batching.os, "sched_getaffinity", lambda pid: set(range(16)), raising=False)
    monkeypatch.setattr(module.torch, "get_num_threads", lambda: 16)
    assert module.spare_cpus("cpu") == 0
    assert module.spare_cpus("cuda") == 15


@pytest.mark.parametrize(("workers", "batch_size"), [(0, 3), (2, 3), (0, 1)])
def test_an_undecodable_probe_image_is_skipped_and_reported(
    probe_files: list[Path], workers: int, batch_size: int
) -> None:
    bad = probe_files[0].with_name("broken.jpg")
    bad.write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    with_bad = [*probe_files[:3], bad, *probe_files[3:]]
    clip = TinyClip().eval()
    targets = {"a": PlantedEvidenceNet((8, 8, 56, 56), image_size=64, seed=1).eval()}
    kwargs = dict(
        batch_size=batch_size,
        clip=clip,
        clip_transform=CLIP_TRANSFORM,
        targets=targets,
        target_transform=TARGET_TRANSFORM,
        layers=LAYERS,
        workers=workers,
    )
    with pytest.warns(UserWarning, match="broken.jpg") as caught:
        out = probe_pass(with_bad, **kwargs)
    assert len(caught) == 1 and "\n" not in str(caught[0].message)
    clean = probe_pass(probe_files, **kwargs)
    assert out.kept.tolist() == [0, 1, 2, 4, 5, 6, 7]
    assert [path for path, _ in out.skipped] == [str(bad)] and "cannot be decoded" in out.skipped[0][1]
    # batches hold other images than in the clean pass, so float sums may differ in the last bit
    np.testing.assert_allclose(out.clip_embeddings, clean.clip_embeddings, rtol=1e-5, atol=1e-6)
    for layer in LAYERS:
        np.testing.assert_allclose(out.activations["a"][layer], clean.activations["a"][layer], rtol=1e-5, atol=1e-6)


def test_stage_keeps_the_rows_every_piece_decoded_and_carries_the_notes() -> None:
    """CLIP embeddings and activations cached by different runs line up on the images both could decode; the
    skipped files and the weights note survive the cache (JSON meta)."""
    from types import SimpleNamespace

    from xai.dissect.artifacts import ArrayArtifact, common_rows, probe_artifact

    rows = np.arange(5, dtype=np.float32)[:, None]
    clip = probe_artifact(
        {"embeddings": rows[[0, 1, 3, 4]]},
        SimpleNamespace(kept=np.array([0, 1, 3, 4]), skipped=[("p/2.jpg", "cannot be decoded")]),
    )
    acts = probe_artifact(
        {"fc": rows[[0, 1, 3, 4]] * 10},
        SimpleNamespace(kept=np.array([0, 1, 3, 4]), skipped=[("p/2.jpg", "cannot be decoded")]),
        "read with weights_only=False",
    )
    acts = serial.from_parts(ArrayArtifact, *serial.to_parts(acts))
    assert acts.meta == {"skipped": [["p/2.jpg", "cannot be decoded"]], "load_note": "read with weights_only=False"}
    older = ArrayArtifact({"fc": rows * 10})  # cached before any image was skipped: every row
    kept, (clip_rows, act_rows, older_rows) = common_rows([clip, acts, older], 5)
    assert kept.tolist() == [0, 1, 3, 4]
    assert clip.arrays["embeddings"][clip_rows].ravel().tolist() == [0, 1, 3, 4]
    assert (acts.arrays["fc"][act_rows] == older.arrays["fc"][older_rows]).all()


def test_run_record_shows_weights_notes_that_came_from_the_cache(tmp_path: Path) -> None:
    from xai.cache import ArtifactCache
    from xai.config import Config
    from xai.context import RunContext
    from xai.pipeline import run_record
    from xai.plan import make_plan

    context = RunContext(make_plan(Config()), ArtifactCache(tmp_path), torch.device("cpu"))
    context.load_notes["resnet18_places365"] = "resnet18_places365.pth.tar: read with weights_only=False"
    assert run_record(context)["weights_notes"] == {
        "resnet18_places365": "resnet18_places365.pth.tar: read with weights_only=False"
    }
