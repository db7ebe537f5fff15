"""The probe pass with its images decoded and cropped on the device (nvJPEG on CUDA; libjpeg-turbo and the same
tensor code here, on the CPU): the crops, embeddings and activations of the PIL path within a few levels of 255;
a file the decoder refuses goes through PIL exactly as the CPU path; an unreadable one is skipped."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.models import ResNet18_Weights

from tests.helpers.probe_fixtures import CLIP_TRANSFORM, LAYERS, TARGET_TRANSFORM, TinyClip
from xai.dissect.device_decode import decode_batch, tensor_transform
from xai.dissect.probe_pass import probe_pass, split_transform
from xai.testing import PlantedEvidenceNet, planted_image


def _convert_to_rgb(image):
    """open_clip's preprocess has this step between the crop and ToTensor."""
    return image.convert("RGB")


@pytest.fixture
def photos(tmp_path: Path) -> list[Path]:
    """JPEGs of several sizes and aspect ratios (a grayscale one too)."""
    rng = np.random.default_rng(0)
    paths = []
    for i, (height, width) in enumerate([(80, 80), (96, 140), (150, 90), (64, 200), (120, 120)]):
        pixels = np.asarray(Image.fromarray(planted_image(max(height, width), seed=i)).resize((width, height)))
        pixels = np.clip(pixels.astype(int) + rng.integers(-20, 20, pixels.shape), 0, 255).astype(np.uint8)
        paths.append(tmp_path / f"photo{i}.jpg")
        image = Image.fromarray(pixels)
        (image.convert("L") if i == 4 else image).save(paths[-1], quality=92)
    return paths


@pytest.mark.parametrize("name", ["resnet18", "clip-like"])
def test_the_tensor_crop_is_the_pil_crop_within_a_few_levels(photos: list[Path], name: str) -> None:
    from torchvision.transforms import Compose

    transform = (
        ResNet18_Weights.IMAGENET1K_V1.transforms()
        if name == "resnet18"
        else Compose([*CLIP_TRANSFORM.transforms[:2], _convert_to_rgb, *CLIP_TRANSFORM.transforms[2:]])
    )
    tensor_form = tensor_transform(transform)
    assert tensor_form is not None
    pil_form = split_transform(transform).to_uint8
    decoded = decode_batch([torch.frombuffer(bytearray(p.read_bytes()), dtype=torch.uint8) for p in photos], "cpu")
    for path, image in zip(photos, decoded, strict=True):
        with Image.open(path) as opened:
            expected = pil_form(opened.convert("RGB")).int()
        ours = tensor_form(image).int()
        assert ours.shape == expected.shape
        difference = (ours - expected).abs()
        assert difference.float().mean() < 1.5 and difference.max() <= 40, (path.name, difference.float().mean())


def test_open_clips_preprocess_has_a_tensor_form() -> None:
    from xai.clip import load_clip

    preprocess = load_clip("random", seed=0, weights_dir=None).preprocess
    assert tensor_transform(preprocess) is not None  # Resize, CenterCrop, MaybeConvertMode('RGB'), ToTensor, Normalize


def test_a_transform_without_a_tensor_form_is_refused() -> None:
    from torchvision.transforms import ColorJitter, Compose

    assert tensor_transform(Compose([ColorJitter(0.5), *TARGET_TRANSFORM.transforms])) is None
    assert tensor_transform(lambda image: image) is None


def test_the_device_path_gives_the_cpu_paths_numbers_and_the_same_skips(photos: list[Path], tmp_path: Path) -> None:
    png, broken = tmp_path / "drawing.png", tmp_path / "broken.jpg"
    Image.fromarray(planted_image(90, seed=9)).save(png)  # not a JPEG: decoded by PIL, as on the CPU path
    broken.write_bytes(b"\xff\xd8 not really a jpeg")
    paths = [photos[0], png, photos[1], broken, *photos[2:]]
    clip = TinyClip().eval()
    targets = {"a": PlantedEvidenceNet((8, 8, 56, 56), image_size=64, seed=1).eval()}
    kwargs = dict(batch_size=3, clip=clip, clip_transform=CLIP_TRANSFORM, targets=targets,
                  target_transform=TARGET_TRANSFORM, layers=LAYERS, workers=0)  # fmt: skip
    with pytest.warns(UserWarning, match="broken.jpg"):
        cpu = probe_pass(paths, decode="cpu", **kwargs)
    with pytest.warns(UserWarning, match="broken.jpg"):
        device = probe_pass(paths, decode="device", **kwargs)
    assert (cpu.decoder, device.decoder) == ("cpu", "device")
    assert device.kept.tolist() == cpu.kept.tolist() == [0, 1, 2, 4, 5, 6]
    assert [path for path, _ in device.skipped] == [str(broken)]
    cosine = (device.clip_embeddings * cpu.clip_embeddings).sum(axis=1)
    assert cosine.min() > 0.99
    np.testing.assert_array_equal(device.clip_embeddings[1], cpu.clip_embeddings[1])  # the PNG: PIL both times
    for layer in LAYERS:
        ours, expected = device.activations["a"][layer], cpu.activations["a"][layer]
        np.testing.assert_array_equal(ours[1], expected[1])
        scale = np.abs(expected).max()
        np.testing.assert_allclose(ours, expected, rtol=0, atol=0.05 * scale)
        assert not np.array_equal(ours, expected)  # a different resize: close, not the same bits


def test_auto_decodes_on_the_cpu_with_pil(photos: list[Path]) -> None:
    out = probe_pass(photos, batch_size=2, clip=TinyClip().eval(), clip_transform=CLIP_TRANSFORM, workers=0)
    assert out.decoder == "cpu"
