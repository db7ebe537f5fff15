"""CLIP-Dissect's own way of dissecting two ResNet18s, timed: the yardstick our dissect stage must beat.

Re-implemented from a reading of the reference repository (Trustworthy-ML-Lab/CLIP-dissect, ``utils.py`` and
``similarity.py`` at 21e7697), with its settings: ``describe_neurons.py`` run once per target model, batch size
200 everywhere (its ``--batch_size`` default, passed to the text encoder too), CLIP in fp16 on CUDA (``clip.load``),
the targets in fp32, every pass a ``DataLoader(ImageFolder(probe, preprocess), 200, num_workers=8,
pin_memory=True)`` that decodes the probe set again (CLIP's image features are saved by the first run and reused
by the second), hooks that mean-pool conv outputs and keep them on the GPU, the text encoded at CLIP's full
77-token context, and soft-WPMI computed as there: ``image @ text.T`` and its softmax on the CPU, then per
neuron a gather on the CPU, moved to the GPU, ``log``-summed. Random weights (same FLOPs as the trained ones).

    python bench/bench_reference.py --device cuda --probe /tmp/broden-synthetic --concepts PATH/20k.txt

Prints each step's wall time and the total; compare it with the dissect stage of ``bench_pipeline.py`` on the same
probe folder and concept set (which also scores a shuffled-probe null and the fc self-checks).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BATCH_SIZE = 200
WORKERS = 8
LAYERS = ("layer3", "layer4", "fc")


def _sync(device: Any) -> None:
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def _loader(root: Path, preprocess: Any, limit: int | None) -> Any:
    import torch
    from torch.utils.data import DataLoader
    from torchvision.datasets import ImageFolder

    data = ImageFolder(str(root), preprocess)
    if limit:
        data = torch.utils.data.Subset(data, range(min(limit, len(data))))
    return DataLoader(data, BATCH_SIZE, num_workers=WORKERS, pin_memory=True)


def clip_image_features(model: Any, loader: Any, device: Any) -> Any:
    import torch

    features = []
    with torch.no_grad():
        for images, _ in loader:
            features.append(model.encode_image(images.to(device).half() if device.type == "cuda" else images))
    return torch.cat(features)


def text_features(model: Any, tokens: Any) -> Any:
    import torch

    found = []
    with torch.no_grad():
        for start in range(0, len(tokens), BATCH_SIZE):
            found.append(model.encode_text(tokens[start : start + BATCH_SIZE]))
    return torch.cat(found)


def target_activations(model: Any, loader: Any, device: Any) -> dict[str, Any]:
    import torch

    stores: dict[str, list] = {layer: [] for layer in LAYERS}

    def keep(layer: str) -> Any:
        def hook(module: Any, inputs: Any, output: Any) -> None:
            stores[layer].append(output.mean(dim=[2, 3]).detach() if output.dim() == 4 else output.detach())

        return hook

    handles = [model.get_submodule(layer).register_forward_hook(keep(layer)) for layer in LAYERS]
    with torch.no_grad():
        for images, _ in loader:
            model(images.to(device))
    for handle in handles:
        handle.remove()
    return {layer: torch.cat(parts) for layer, parts in stores.items()}


def soft_wpmi(clip_feats: Any, target_feats: Any, device: Any, top_k: int = 100, a: float = 10, lam: float = 1,
              min_prob: float = 1e-7, p_start: float = 0.998, p_end: float = 0.97) -> Any:  # fmt: skip
    """The reference's soft-WPMI loop: softmax on the CPU, one CPU gather per neuron moved to the device."""
    import torch

    with torch.no_grad():
        probabilities = torch.nn.functional.softmax(a * clip_feats, dim=1)
        top_k = min(top_k, target_feats.shape[0])  # a reduced probe (--limit) may hold fewer images
        top = torch.topk(target_feats, dim=0, k=top_k)[1]
        weights = (p_start - torch.arange(top_k) / top_k * (p_start - p_end)).unsqueeze(1).to(device)
        rows = []
        for unit in range(target_feats.shape[1]):
            gathered = probabilities.gather(0, top[:, unit : unit + 1].expand(-1, probabilities.shape[1])).to(device)
            rows.append(torch.sum(torch.log(1 + weights * (gathered - 1) + min_prob), dim=0, keepdim=True))
            if device.type == "cuda":
                torch.cuda.empty_cache()
        log_likelihood = torch.cat(rows)
        prior = torch.logsumexp(log_likelihood, dim=0, keepdim=True) - math.log(log_likelihood.shape[0])
        return log_likelihood - lam * prior


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cuda")
    parser.add_argument("--probe", type=Path, required=True, help="an ImageFolder (class folders of images)")
    parser.add_argument("--concepts", type=Path, required=True, help="one concept per line (e.g. 20k.txt)")
    parser.add_argument("--limit", type=int, help="the first N probe images only")
    args = parser.parse_args()

    import open_clip
    import torch
    from torchvision.models import ResNet18_Weights

    from xai.clip import load_clip
    from xai.testing import tiny_resnet

    device = torch.device(args.device)
    words = [word for word in args.concepts.read_text().split("\n") if word]
    clip = load_clip("random", seed=0, weights_dir=None, device=device)
    tokens = open_clip.get_tokenizer("ViT-B-16-quickgelu")(words).to(device)
    target_preprocess = ResNet18_Weights.IMAGENET1K_V1.transforms()
    times: dict[str, float] = {}

    def timed(name: str, function: Any) -> Any:
        _sync(device)
        start = time.perf_counter()
        value = function()
        _sync(device)
        times[name] = time.perf_counter() - start
        print(f"  {name:<44}{times[name]:8.1f} s", flush=True)
        return value

    print(f"CLIP-Dissect's way, {len(words):,} concepts, probe {args.probe}, device {device}", flush=True)
    texts = timed("text features (batch 200, full context)", lambda: text_features(clip.module, tokens))
    images = timed(
        "CLIP image features (decode #1)",
        lambda: clip_image_features(clip.module, _loader(args.probe, clip.preprocess, args.limit), device),
    )
    for run, classes in enumerate((1000, 365), start=1):
        model = tiny_resnet(classes, seed=run).to(device)
        activations = timed(
            f"resnet18 ({classes} classes) activations (decode #{run + 1})",
            lambda model=model: target_activations(model, _loader(args.probe, target_preprocess, args.limit), device),
        )

        def similarity(activations: dict = activations) -> None:
            image = images.float().cpu()
            text = texts.float().cpu()
            image /= image.norm(dim=-1, keepdim=True)
            text /= text.norm(dim=-1, keepdim=True)
            clip_feats = image @ text.T
            for layer in LAYERS:
                soft_wpmi(clip_feats, activations[layer].float().cpu(), device)

        timed(f"resnet18 ({classes} classes) soft-WPMI, {len(LAYERS)} layers", similarity)
    print(f"  {'reference total':<44}{sum(times.values()):8.1f} s")


if __name__ == "__main__":
    main()
