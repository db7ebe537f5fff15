"""The CUDA path of the dissection (fp16 CLIP, pinned one-decode probe pass, scoring on the GPU) against the CPU
path. Skipped without a CUDA device; CI has none, run it on a GPU machine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from xai.testing import planted_image

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def test_scoring_on_cuda_equals_cpu() -> None:
    from xai.dissect.labelling import dissect_model

    rng = np.random.default_rng(0)
    images = rng.standard_normal((500, 32)).astype(np.float32)
    texts = rng.standard_normal((300, 32)).astype(np.float32)
    acts = {"a": rng.standard_normal((500, 40)).astype(np.float32)}
    ids = [str(i) for i in range(500)]
    concepts = [f"c{i}" for i in range(300)]
    cpu = dissect_model(acts, images, texts, concepts, model_name="m", probe_ids=ids)
    gpu = dissect_model(acts, images, texts, concepts, model_name="m", probe_ids=ids, device="cuda")
    np.testing.assert_allclose(gpu.layer("a").scores, cpu.layer("a").scores, rtol=1e-4, atol=1e-4)
    assert (gpu.layer("a").label_ids == cpu.layer("a").label_ids).mean() > 0.97  # near-ties may flip


def test_probe_pass_on_cuda_matches_cpu(tmp_path: Path) -> None:
    from torchvision.models import ResNet18_Weights

    from xai.clip import load_clip
    from xai.dissect.probe_pass import probe_pass
    from xai.testing import tiny_resnet

    paths = []
    for i in range(6):
        paths.append(tmp_path / f"{i}.jpg")
        Image.fromarray(planted_image(224, seed=i)).save(paths[-1])
    transform = ResNet18_Weights.IMAGENET1K_V1.transforms()
    results = {}
    for device in ("cpu", "cuda"):
        clip = load_clip("random", seed=0, weights_dir=None, device=device)
        model = tiny_resnet(365, seed=0).to(device)
        results[device] = probe_pass(
            paths,
            batch_size=4,
            clip=clip.module,
            clip_transform=clip.preprocess,
            targets={"m": model},
            target_transform=transform,
            layers=("layer4", "fc"),
            device=device,
            workers=2,
        )
    cpu, gpu = results["cpu"], results["cuda"]
    assert gpu.clip_embeddings.dtype == np.float32
    cosine = (cpu.clip_embeddings * gpu.clip_embeddings).sum(axis=1)
    assert cosine.min() > 0.99  # fp16 CLIP on CUDA, as CLIP-Dissect runs it
    for layer in ("layer4", "fc"):
        np.testing.assert_allclose(gpu.activations["m"][layer], cpu.activations["m"][layer], rtol=2e-2, atol=2e-2)


def test_probe_pass_leaves_cudnn_autotuning_off(tmp_path: Path) -> None:
    """cuDNN autotuning may pick other kernels on another run: the same config must give identical tables."""
    from torchvision.models import ResNet18_Weights

    from xai.dissect.probe_pass import probe_pass
    from xai.testing import tiny_resnet

    paths = []
    for i in range(4):
        paths.append(tmp_path / f"{i}.jpg")
        Image.fromarray(planted_image(224, seed=i)).save(paths[-1])
    model = tiny_resnet(365, seed=0).to("cuda")
    seen = []
    model.register_forward_hook(lambda *_: seen.append(torch.backends.cudnn.benchmark))
    assert not torch.backends.cudnn.benchmark
    runs = [
        probe_pass(
            paths,
            batch_size=2,
            targets={"m": model},
            layers=("layer4", "fc"),
            device="cuda",
            target_transform=ResNet18_Weights.IMAGENET1K_V1.transforms(),
            workers=0,
        )
        for _ in range(2)
    ]
    assert seen and not any(seen)
    for layer in ("layer4", "fc"):
        assert runs[0].activations["m"][layer].tobytes() == runs[1].activations["m"][layer].tobytes()
