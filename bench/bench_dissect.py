"""Benchmark of the CLIP-Dissect stages: time per stage, peak memory, and the straightforward implementation.

Cases (each runs in its own subprocess so its peak RSS is its own):

- ``stages``: target forward pass (random ResNet18, 224 px), CLIP ViT-B/16 image encoding and text encoding
  with the full 77-token context versus the truncated causal transformer (random weights: same FLOPs).
- ``score``: scoring all 1768 neurons of one ResNet18 (layer3 256 + layer4 512 + fc 1000) against the 20k
  concept set on a 1000-image probe (imagenet-samples size), soft_wpmi with and without the shuffled null,
  against the straightforward implementation (materialised P and softmax, loop over neurons).
- ``broden``: the same 1768 neurons on a Broden-sized probe (63,305 images x 20,000 concepts, random
  normalised embeddings, random activations); the straightforward version would hold P and its softmax,
  2 x 63,305 x 20,000 x 4 B = 10.1 GB, so it is not run.

Usage: ``.venv/bin/python bench/bench_dissect.py [--threads 2] [--case all|stages|score|broden]``.
Timings on a shared machine are noisy: compare ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

LAYER_SIZES = {"layer3": 256, "layer4": 512, "fc": 1000}


def peak_rss_gb() -> float:
    """Peak resident set size of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _embeddings(rng: np.random.Generator, rows: int, width: int = 512) -> np.ndarray:
    out = np.empty((rows, width), np.float32)
    for start in range(0, rows, 8192):
        block = rng.standard_normal((min(8192, rows - start), width), dtype=np.float32)
        out[start : start + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def _activations(rng: np.random.Generator, n_images: int) -> dict[str, np.ndarray]:
    return {name: rng.standard_normal((n_images, k), dtype=np.float32) for name, k in LAYER_SIZES.items()}


def case_stages() -> dict:
    import open_clip
    import torch

    from xai.dissect.activations import layer_activations
    from xai.dissect.clip_embed import encode_images, encode_texts
    from xai.dissect.probes import read_concepts
    from xai.testing import tiny_resnet

    torch.manual_seed(0)
    out = {}
    images = torch.randn(32, 3, 224, 224)
    model = tiny_resnet(num_classes=1000, seed=0)
    layer_activations(model, [images[:4]])
    start = time.perf_counter()
    layer_activations(model, [images[i : i + 16] for i in range(0, 32, 16)])
    out["resnet18 forward+hooks, images/s"] = 32 / (time.perf_counter() - start)

    clip, _, _ = open_clip.create_model_and_transforms("ViT-B-16", pretrained=None)
    tokenizer = open_clip.get_tokenizer("ViT-B-16")
    clip.eval()
    start = time.perf_counter()
    encode_images(clip, [images[:8]])
    out["CLIP image encoding, images/s"] = 8 / (time.perf_counter() - start)

    concepts = read_concepts("/work/shared/data/clip-dissect-concepts/20k.txt")[5000:5064]
    start = time.perf_counter()
    full = encode_texts(clip, tokenizer, concepts, batch_size=64, truncate=False)
    full_s = time.perf_counter() - start
    start = time.perf_counter()
    fast = encode_texts(clip, tokenizer, concepts, batch_size=64, truncate=True)
    fast_s = time.perf_counter() - start
    out["CLIP text, full 77-token context, concepts/s"] = len(concepts) / full_s
    out["CLIP text, truncated, concepts/s"] = len(concepts) / fast_s
    out["text truncation speed-up"] = full_s / fast_s
    out["text truncation max abs diff"] = float(np.abs(full - fast).max())
    out["20k concepts, truncated, estimated minutes"] = 20000 / (len(concepts) / fast_s) / 60
    return out


def case_score() -> dict:
    from xai.dissect.reference import soft_wpmi_reference
    from xai.dissect.stage import dissect_model

    rng = np.random.default_rng(0)
    n_images, n_concepts = 1000, 20000
    images, texts = _embeddings(rng, n_images), _embeddings(rng, n_concepts)
    acts = _activations(rng, n_images)
    concepts = [f"c{i}" for i in range(n_concepts)]
    ids = [f"img{i}" for i in range(n_images)]
    out = {}
    start = time.perf_counter()
    result = dissect_model(acts, images, texts, concepts, model_name="m", probe_ids=ids, null_seed=None)
    out["soft_wpmi 1768 neurons x 20k (ours), s"] = time.perf_counter() - start
    start = time.perf_counter()
    dissect_model(acts, images, texts, concepts, model_name="m", probe_ids=ids, null_seed=0)
    out["soft_wpmi + shuffled null (ours), s"] = time.perf_counter() - start
    out["ours peak RSS, GB"] = peak_rss_gb()
    start = time.perf_counter()
    agree = 0
    for name, layer_acts in acts.items():
        scores = soft_wpmi_reference(layer_acts, images, texts)
        agree += int((scores.argmax(axis=1) == result.layer(name).label_ids).sum())
        del scores
    out["soft_wpmi straightforward, s"] = time.perf_counter() - start
    ours = out["soft_wpmi 1768 neurons x 20k (ours), s"]
    out["speed-up vs straightforward"] = out["soft_wpmi straightforward, s"] / ours
    out["labels equal to straightforward"] = f"{agree}/{sum(LAYER_SIZES.values())}"
    out["peak RSS incl. straightforward, GB"] = peak_rss_gb()
    return out


def case_broden() -> dict:
    from xai.dissect.stage import dissect_model

    rng = np.random.default_rng(0)
    n_images, n_concepts = 63305, 20000
    images, texts = _embeddings(rng, n_images), _embeddings(rng, n_concepts)
    acts = _activations(rng, n_images)
    inputs = images.nbytes + texts.nbytes + sum(a.nbytes for a in acts.values())
    out = {"inputs (embeddings + activations), GB": inputs / 2**30}
    start = time.perf_counter()
    dissect_model(acts, images, texts, [f"c{i}" for i in range(n_concepts)], model_name="m",
                  probe_ids=[str(i) for i in range(n_images)], null_seed=None)
    out["soft_wpmi 1768 neurons, 63k x 20k, s"] = time.perf_counter() - start
    out["peak RSS, GB"] = peak_rss_gb()
    out["straightforward P + softmax alone would need, GB"] = 2 * n_images * n_concepts * 4 / 2**30
    return out


CASES = {"stages": case_stages, "score": case_score, "broden": case_broden}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", default="all", choices=["all", *CASES])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case == "all":
        for name in CASES:
            command = [sys.executable, __file__, "--case", name, "--threads", str(args.threads)]
            subprocess.run(command, check=True)
        return
    import torch

    torch.set_num_threads(args.threads)
    results = CASES[args.case]()
    print(f"== {args.case} (torch threads {args.threads})")
    for key, value in results.items():
        print(f"  {key:55s} {value:.3f}" if isinstance(value, float) else f"  {key:55s} {value}")
    sys.stdout.flush()
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
