"""Benchmark of CLIP-Dissect's steps: time per step, peak memory, and the straightforward implementation.

Cases (each runs in its own subprocess so its peak RSS is its own):

- ``encoders``: target forward pass (random ResNet18, 224 px), CLIP ViT-B/16 image encoding and text encoding
  with the full 77-token context versus the truncated causal transformer (random weights: same FLOPs).
- ``score``: scoring all 1768 neurons of one ResNet18 (layer3 256 + layer4 512 + fc 1000) against the 20k
  concept set on a 1000-image probe (imagenet-samples size), soft_wpmi with and without the shuffled null,
  against the straightforward implementation (materialised P and softmax, loop over neurons).
- ``broden``: the same 1768 neurons on a Broden-sized probe (63,305 images x 20,000 concepts, random
  normalised embeddings, random activations); the straightforward version would hold P and its softmax,
  2 x 63,305 x 20,000 x 4 B = 10.1 GB, so it is not run.
- ``probe``: the probe pass on a synthetic folder of 224-px JPEGs (``--images``, default 5,000, like Broden's
  tiles). Per network (CLIP ViT-B/16 QuickGELU, fp16 on CUDA; ResNet18 with 1000 and with 365 classes, hooks on
  layer3, layer4, fc): its forward floor (forward passes on tensors already on the device, best of
  ``--batch-sizes``), our pass (:func:`xai.dissect.probe_pass.probe_pass`: DataLoader workers, decoding
  included) and the old serial pass (decode in the main process, then forward) at that batch size, as images/s
  and as a fraction of the floor (floor, ours and serial interleaved over ``--repeats`` runs, medians); then the
  joint pass (one decode for all three) against the sum of the floors. The floor keeps its outputs where the pass
  does (on the device on CUDA) and leaves cuDNN settings alone, as the pass does.

Usage: ``.venv/bin/python bench/bench_dissect.py [--threads 2] [--case all|encoders|score|broden|probe]
[--device cpu|cuda] [--images 5000] [--clip-images N] [--batch-sizes 16,32,64] [--repeats 3]``.
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


def case_encoders() -> dict:
    import open_clip
    import torch

    from bench._paths import mirror_dir
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

    from xai.clip import CLIP_ARCH, build_clip

    clip, _ = build_clip(None)
    tokenizer = open_clip.get_tokenizer(CLIP_ARCH)
    start = time.perf_counter()
    encode_images(clip, [images[:8]])
    out["CLIP image encoding, images/s"] = 8 / (time.perf_counter() - start)

    concepts = read_concepts(mirror_dir() / "clip-dissect-concepts" / "20k.txt")[5000:5064]
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
    from xai.dissect.labelling import dissect_model
    from xai.dissect.reference import soft_wpmi_reference

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
    from xai.dissect.labelling import dissect_model

    rng = np.random.default_rng(0)
    n_images, n_concepts = 63305, 20000
    images, texts = _embeddings(rng, n_images), _embeddings(rng, n_concepts)
    acts = _activations(rng, n_images)
    inputs = images.nbytes + texts.nbytes + sum(a.nbytes for a in acts.values())
    out = {"inputs (embeddings + activations), GB": inputs / 2**30}
    start = time.perf_counter()
    dissect_model(
        acts,
        images,
        texts,
        [f"c{i}" for i in range(n_concepts)],
        model_name="m",
        probe_ids=[str(i) for i in range(n_images)],
        null_seed=None,
    )
    out["soft_wpmi 1768 neurons, 63k x 20k, s"] = time.perf_counter() - start
    out["peak RSS, GB"] = peak_rss_gb()
    out["straightforward P + softmax alone would need, GB"] = 2 * n_images * n_concepts * 4 / 2**30
    return out


def synthetic_jpegs(count: int, size: int = 224) -> list[Path]:
    """``count`` smooth random RGB JPEGs of ``size`` px (quality 90), made once per count in the temp folder."""
    import tempfile

    from PIL import Image

    from xai.testing import planted_image

    folder = Path(tempfile.gettempdir()) / f"xai-bench-probe-{count}-{size}"
    paths = [folder / f"img{i:05d}.jpg" for i in range(count)]
    if not all(path.is_file() for path in paths):
        folder.mkdir(parents=True, exist_ok=True)
        for i, path in enumerate(paths):
            Image.fromarray(planted_image(size, seed=i)).save(path, quality=90)
    return paths


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def _networks(device) -> dict:
    """name -> (model, transform, is_clip); random weights, the pretrained architectures."""
    from torchvision.models import ResNet18_Weights

    from xai.clip import build_clip
    from xai.testing import tiny_resnet

    clip, preprocess = build_clip(None, device=device)
    target_transform = ResNet18_Weights.IMAGENET1K_V1.transforms()
    return {
        "CLIP ViT-B/16": (clip, preprocess, True),
        "ResNet18 (1000 classes)": (tiny_resnet(1000, seed=0).to(device), target_transform, False),
        "ResNet18 (365 classes)": (tiny_resnet(365, seed=1).to(device), target_transform, False),
    }


def _forward_floor(model, is_clip: bool, batch_size: int, device, images: int) -> float:
    """Images/s of the forward passes alone on tensors already on the device, outputs kept where the measured
    pass keeps them (on the device on CUDA, as :func:`xai.dissect.probe_pass.probe_pass` does; hooks included for
    targets); cuDNN settings untouched, as in the pass."""
    import torch

    from xai.dissect.activations import hooked_layers
    from xai.dissect.clip_embed import image_input_dtype

    dtype = image_input_dtype(model) if is_clip else torch.float32
    batch = torch.randn(batch_size, 3, 224, 224, device=device, dtype=dtype)
    if not is_clip:  # the probe pass feeds the ResNets channels_last, so the floor does too
        batch = batch.contiguous(memory_format=torch.channels_last)
    batches = [batch] * max(2, -(-images // batch_size))
    on_cuda = device.type == "cuda"

    def run(items) -> None:
        with torch.inference_mode():
            if is_clip:
                kept = [model.encode_image(item).float() for item in items]
                kept = [k if on_cuda else k.cpu() for k in kept]
            else:
                with hooked_layers(model, ("layer3", "layer4", "fc"), to_cpu=not on_cuda) as store:
                    for item in items:
                        model(item)
                kept = [torch.cat(parts) for parts in store.values()]
            torch.cat([k.flatten() for k in kept]).cpu()  # one copy at the end, as the pass makes

    run(batches[:1])  # warm-up (kernels, allocator)
    _sync(device)
    start = time.perf_counter()
    run(batches)
    _sync(device)
    return len(batches) * batch_size / (time.perf_counter() - start)


def _pipelined(paths, networks: dict, batch_size: int, device, decode: str = "auto") -> float:
    from xai.dissect.probe_pass import probe_pass

    clip = next(((m, t) for m, t, is_clip in networks.values() if is_clip), None)
    targets = {name: m for name, (m, _, is_clip) in networks.items() if not is_clip}
    transform = next((t for _, t, is_clip in networks.values() if not is_clip), None)
    _sync(device)
    start = time.perf_counter()
    probe_pass(
        paths,
        batch_size=batch_size,
        clip=clip[0] if clip else None,
        clip_transform=clip[1] if clip else None,
        targets=targets,
        target_transform=transform,
        layers=("layer3", "layer4", "fc"),
        device=device,
        decode=decode,
    )
    _sync(device)
    return len(paths) / (time.perf_counter() - start)


def _serial(paths, model, transform, is_clip: bool, batch_size: int, device) -> float:
    """The old pass: decode + transform in the main process, then forward, one batch after the other."""
    from xai.dissect.activations import image_batches, layer_activations
    from xai.dissect.clip_embed import encode_images

    _sync(device)
    start = time.perf_counter()
    batches = image_batches(paths, transform, batch_size)
    if is_clip:
        encode_images(model, batches, device=device)
    else:
        layer_activations(model, batches, ("layer3", "layer4", "fc"), device=device)
    _sync(device)
    return len(paths) / (time.perf_counter() - start)


def case_probe(args: argparse.Namespace) -> dict:
    import torch

    device = torch.device(args.device)
    paths = synthetic_jpegs(args.images)
    clip_paths = paths[: args.clip_images or args.images]
    sizes = [int(size) for size in args.batch_sizes.split(",")]
    networks = _networks(device)
    out: dict = {
        "device": str(torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"),
        "images (CLIP)": f"{len(paths)} ({len(clip_paths)})",
        "decoding workers": _workers(args.device),
        "decoder": args.decode,
    }
    floors, best_sizes, serials = {}, {}, {}
    for name, (model, transform, is_clip) in networks.items():
        probe = clip_paths if is_clip else paths
        floor_images = min(len(probe), 4 * max(sizes))
        by_size = {size: _forward_floor(model, is_clip, size, device, floor_images) for size in sizes}
        best = max(by_size, key=by_size.get)
        best_sizes[name] = best
        # floor, ours and the old serial pass interleaved over the repeats, so drift hits all three alike
        runs: dict[str, list[float]] = {"floor": [], "ours": [], "serial": []}
        for _ in range(args.repeats):
            runs["floor"].append(_forward_floor(model, is_clip, best, device, floor_images))
            runs["ours"].append(_pipelined(probe, {name: networks[name]}, best, device, args.decode))
            runs["serial"].append(_serial(probe, model, transform, is_clip, best, device))
        floor, ours, serial = (float(np.median(runs[key])) for key in ("floor", "ours", "serial"))
        floors[name] = floor
        out[f"{name}: forward floor, images/s (batch {best}, median of {args.repeats})"] = floor
        out[f"{name}: our pass incl. decoding, images/s"] = ours
        out[f"{name}: our pass / floor"] = ours / floor
        out[f"{name}: old serial pass, images/s"] = serial
        out[f"{name}: old serial pass / floor"] = serial / floor
        serials[name] = serial
    joint_size = min(best_sizes.values())
    floor_joint = 1 / sum(1 / rate for rate in floors.values())
    joint = _pipelined(clip_paths, networks, joint_size, device, args.decode)
    out[f"all three in one pass (one decode), images/s (batch {joint_size})"] = joint
    out["all three: floor (sum of the three forward floors), images/s"] = floor_joint
    out["all three: one pass / floor"] = joint / floor_joint
    serial_joint = 1 / sum(1 / rate for rate in serials.values())
    out["all three: old serial passes (three decodes; from the rates above), images/s"] = serial_joint
    out["all three: old serial passes / floor"] = serial_joint / floor_joint
    return out


def _workers(device: str = "cpu") -> int:
    from xai.dissect.probe_pass import spare_cpus

    return spare_cpus(device)


CASES = {"encoders": case_encoders, "score": case_score, "broden": case_broden, "probe": case_probe}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", default="all", choices=["all", *CASES])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--images", type=int, default=5000, help="synthetic probe JPEGs (case probe)")
    parser.add_argument("--clip-images", type=int, default=0, help="of which CLIP encodes (default: all)")
    parser.add_argument("--batch-sizes", default="16,32,64", help="candidates for the best batch size")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved floor / ours / serial runs (median)")
    parser.add_argument("--decode", default="auto", choices=["auto", "cpu", "device"], help="probe pass decoder")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case == "all":
        for name in CASES:
            command = [
                sys.executable,
                __file__,
                "--case",
                name,
                "--threads",
                str(args.threads),
                "--device",
                args.device,
                "--images",
                str(args.images),
                "--clip-images",
                str(args.clip_images),
                "--batch-sizes",
                args.batch_sizes,
                "--repeats",
                str(args.repeats),
                "--decode",
                args.decode,
            ]
            subprocess.run(command, check=True)
        return
    import torch

    torch.set_num_threads(args.threads)
    results = CASES[args.case](args) if args.case == "probe" else CASES[args.case]()
    print(f"== {args.case} (torch threads {args.threads})")
    for key, value in results.items():
        print(f"  {key:55s} {value:.3f}" if isinstance(value, float) else f"  {key:55s} {value}")
    sys.stdout.flush()
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
