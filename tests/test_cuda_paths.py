"""The GPU paths of issue #22 against their CPU paths (or the reference library): LIME's samples built on the
device, AblationCAM's cut model, EigenCAM's SVD, the probe pass decoded by nvJPEG. Skipped without CUDA; run
``python -m pytest -m cuda`` on a GPU machine (``bench/gpu_check.sh`` does)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from xai.testing import PlantedEvidenceNet, planted_image, tiny_resnet

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

CUDA_ATOL = 2e-3
"""cuDNN's convolutions (TF32 where the GPU has it) round differently from the CPU's."""


class _Tempered(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.model = PlantedEvidenceNet((8, 8, 32, 32), seed=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) / 200.0


def test_lime_samples_built_on_the_gpu_are_the_cpu_samples() -> None:
    from xai.explain.lime_image import LimeParams, Samples, quickshift_segmenter
    from xai.models import to_input

    image = planted_image(64, 3)
    segments = quickshift_segmenter(LimeParams(kernel_size=2, max_dist=20))(image)
    hidden = np.random.default_rng(0).integers(0, 2, (40, int(segments.max()) + 1)) == 0
    samples = Samples(image, np.zeros_like(image), segments, hidden, 16)
    for cpu, gpu in zip(samples.batches(), samples.device_batches(torch.device("cuda")), strict=True):
        assert gpu.is_cuda and np.array_equal(cpu, gpu.cpu().numpy())
        np.testing.assert_allclose(to_input(gpu).cpu().numpy(), to_input(cpu).numpy(), rtol=0, atol=1e-6)


def test_lime_on_the_gpu_explains_as_on_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    from xai.explain import lime_image
    from xai.explain.lime_image import LimeParams, run_lime
    from xai.models import to_input

    params = LimeParams(num_samples=300, kernel_size=2, max_dist=20)
    image = planted_image(64, 0)
    cpu = run_lime(_Tempered().eval(), image, to_input=to_input, params=params, seed=3, batch_size=64)
    used = []
    original = lime_image.probabilities_on_device
    monkeypatch.setattr(lime_image, "probabilities_on_device", lambda *a: used.append(1) or original(*a))
    gpu = run_lime(_Tempered().eval().cuda(), image, to_input=to_input, params=params, seed=3, batch_size=64)
    assert used  # the samples were built on the GPU
    assert np.abs(cpu.weights).max() > 1e-3 and gpu.label == cpu.label
    np.testing.assert_allclose(gpu.weights, cpu.weights, rtol=0, atol=CUDA_ATOL)
    assert set(gpu.positive_superpixels(5)) == set(cpu.positive_superpixels(5))


def _library(cam_class: type, model: nn.Module, layer: nn.Module, x: torch.Tensor, target: int) -> np.ndarray:
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    cam = cam_class(model=model, target_layers=[layer])
    try:
        return cam(x, [ClassifierOutputTarget(target)])[0]
    finally:
        cam.activations_and_grads.release()


@pytest.mark.parametrize("method", ["ablationcam", "eigencam"])
def test_fast_cams_on_the_gpu_equal_the_library_on_the_gpu(method: str) -> None:
    from pytorch_grad_cam import AblationCAM, EigenCAM

    from xai.explain import compute_cam
    from xai.explain.cams.split import split_at
    from xai.models import to_input

    model = tiny_resnet(10, seed=0).cuda()
    layer = model.layer4[-1]
    x = to_input(planted_image(224, 1)[None]).cuda()
    with torch.no_grad():
        target = int(model(x).argmax())
    assert split_at(model, layer) is not None  # AblationCAM runs the cut model here
    ours = compute_cam(model, x, method, layer, target)
    expected = _library(AblationCAM if method == "ablationcam" else EigenCAM, model, layer, x, target)
    assert expected.std() > 0.01
    np.testing.assert_allclose(ours.map, expected, rtol=0, atol=CUDA_ATOL)


@pytest.fixture
def photos(tmp_path: Path) -> list[Path]:
    paths = []
    for i, size in enumerate([224, 256, 300, 180, 224, 400]):
        paths.append(tmp_path / f"{i}.jpg")
        Image.fromarray(planted_image(size, seed=i)).save(paths[-1], quality=90)
    return paths


def test_the_probe_pass_decoded_by_nvjpeg_matches_pil_decoding(photos: list[Path]) -> None:
    from torchvision.models import ResNet18_Weights

    from xai.clip import load_clip
    from xai.dissect.probe_pass import probe_pass

    clip = load_clip("random", seed=0, weights_dir=None, device="cuda")
    transform = ResNet18_Weights.IMAGENET1K_V1.transforms()
    runs = {
        decode: probe_pass(
            photos,
            batch_size=4,
            clip=clip.module,
            clip_transform=clip.preprocess,
            targets={"m": tiny_resnet(365, seed=0).cuda()},
            target_transform=transform,
            layers=("layer4", "fc"),
            device="cuda",
            workers=2,
            decode=decode,
        )
        for decode in ("cpu", "device", "auto")
    }
    assert [runs[d].decoder for d in ("cpu", "device", "auto")] == ["cpu", "device", "device"]
    cpu, gpu = runs["cpu"], runs["device"]
    assert gpu.kept.tolist() == cpu.kept.tolist()
    assert ((gpu.clip_embeddings * cpu.clip_embeddings).sum(axis=1)).min() > 0.99
    for layer in ("layer4", "fc"):
        np.testing.assert_allclose(gpu.activations["m"][layer], cpu.activations["m"][layer], rtol=5e-2, atol=5e-2)
