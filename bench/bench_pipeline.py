"""Benchmark the whole pipeline: each stage and each method against its floor, peak RSS, and the whole run.

Runs a config (default ``configs/quick.yaml``) with seeded random weights on the ten task images copied into a
scratch directory, with a fresh artifact cache there, so every piece is computed (cold) and every batch size
measured (``batch_size: auto``). The floor of a piece is what its forward passes alone cost at the best batch
size, timed in this same process: ``forward passes x best seconds per image`` (the batch-size search's winner)
plus image decoding and quickshift segmentation, measured separately here. Gradient CAMs have as floor one forward
and one backward pass at batch 1; AblationCAM one full forward plus the layers after the target on its C ablated
rows (that tail timed here). The dissect probe pass: every probe image through each network of the pass (CLIP and
each ResNet18) timed at the pass's own batch size, plus decoding when no spare CPU lets a worker overlap it.

    PYTHONPATH=$PWD .venv/bin/python bench/bench_pipeline.py                    # quick config, CPU (~15-30 min)
    PYTHONPATH=$PWD .venv/bin/python bench/bench_pipeline.py --max-images 2 --probe-limit 200   # reduced
    PYTHONPATH=$PWD .venv/bin/python bench/bench_pipeline.py --device cuda --mirror /path/to/shared/data
    PYTHONPATH=$PWD python bench/bench_pipeline.py --device cuda --config .gpu/quick_gpu.yaml --mirror .gpu/data
    PYTHONPATH=$PWD .venv/bin/python bench/bench_pipeline.py --case render --scratch /tmp/xai-render   # report stage
    PYTHONPATH=$PWD .venv/bin/python bench/bench_pipeline.py --case overlap     # LIME's CPU work vs the device's

``--case render`` (:mod:`bench.bench_render`, smoke config by default) times the report stage cold (serial, as
today, and in worker processes), warm, and a whole rerun with nothing changed against the cold run.
``--case overlap`` (:mod:`bench.bench_overlap`) measures how much of LIME's CPU-side work hides behind the
model's batches, with the CPU standing in for the device.

Peak RSS is the process's high-water mark per stage (reset between stages through ``/proc/self/clear_refs``);
on CUDA the GPU's peak allocated memory per stage is printed beside it.
Timings on a shared machine are noisy: a stage's ratio to its floor is measured in one process and is the number
to compare; the whole run is printed next to a reference time given with ``--reference-min``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._paths import mirror_dir  # noqa: E402  (needs ROOT on the path)


def _median_time(function: Any, repeats: int = 3) -> float:
    function()  # warm-up
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def gradient_pass_s(model: Any, device: Any, image_shape: tuple[int, ...]) -> float:
    """One forward + one backward of a (1, *image_shape) input: the floor of a gradient CAM."""
    import torch

    x = torch.randn(1, *image_shape, device=device, requires_grad=True)

    def run() -> None:
        model.zero_grad(set_to_none=True)
        model(x)[0, 0].backward()
        _sync(device)

    seconds = _median_time(run)
    model.zero_grad(set_to_none=True)
    return seconds


def single_forward_s(model: Any, device: Any, image_shape: tuple[int, ...]) -> float:
    import torch

    x = torch.randn(1, *image_shape, device=device)

    def run() -> None:
        with torch.inference_mode():
            model(x)
        _sync(device)

    return _median_time(run)


def quickshift_s(pixels: list[Any]) -> float:
    """Total quickshift time over the images, with LIME's settings (one segmentation per image)."""
    from xai.explain.lime_image import DEFAULT_LIME_PARAMS, quickshift_segmenter

    segmenter = quickshift_segmenter(DEFAULT_LIME_PARAMS)
    start = time.perf_counter()
    for image in pixels:
        segmenter(image)
    return time.perf_counter() - start


def decode_s(paths: list[Path], transforms: list[Any], sample: int = 64) -> float:
    """Seconds to decode and preprocess every probe image once per transform, from a sample of ``sample``."""
    from PIL import Image

    chosen = paths[:: max(1, len(paths) // sample)][:sample]
    start = time.perf_counter()
    for path in chosen:
        for transform in transforms:
            with Image.open(path) as image:
                transform(image.convert("RGB"))
    return (time.perf_counter() - start) / len(chosen) * len(paths)


def text_encoding_s(context: Any, concepts: int) -> float:
    """Seconds CLIP's text encoder needs for ``concepts`` concepts at the stage's text batch size."""
    from xai.dissect import clip_embed, probes

    clip = context.clip()
    sample = probes.load_concepts(context.plan.dissect.concepts)[:256]
    seconds = _median_time(
        lambda: clip_embed.encode_texts(clip.module, clip.tokenizer, sample, device=context.device), repeats=1
    )
    return seconds / len(sample) * concepts


def ratio(seconds: float, floor: float | None) -> str:
    return f"{seconds / floor:6.2f}x" if floor else "    n/a"


def print_row(name: str, seconds: float, floor: float | None, extra: str = "") -> None:
    floor_text = f"{floor:9.1f}" if floor is not None else "      n/a"
    print(f"  {name:<28}{seconds:9.1f}{floor_text}{ratio(seconds, floor):>9}  {extra}", flush=True)


def ablation_floor_s(model: Any, layer: Any, device: Any, image_shape: tuple[int, ...]) -> float:
    """AblationCAM's floor: one full forward (activation and original score) + the layers after the target on
    its C ablated rows. The tail is timed in this process: a forward whose target-layer hook returns a chunk of
    rows (as :mod:`xai.explain.cams.ablation` does) minus a plain batch-1 forward, summed over the chunks."""
    import torch

    from xai.explain.cams._core import capture_activation, forward_hook
    from xai.explain.cams.ablation import CHUNK_BYTES

    x = torch.randn(1, *image_shape, device=device)
    with torch.inference_mode():
        activation, _ = capture_activation(model, x, layer)
    channels = activation.shape[1]
    rows = max(1, min(channels, CHUNK_BYTES // (activation[0].numel() * activation.element_size())))
    single = single_forward_s(model, device, image_shape)
    tail = 0.0
    for start in range(0, channels, rows):
        chunk = activation.expand(min(rows, channels - start), *activation.shape[1:]).clone()

        def run(chunk: Any = chunk) -> None:
            with forward_hook(layer, lambda module, inputs, out: chunk), torch.inference_mode():
                model(x)
            _sync(device)

        tail += max(0.0, _median_time(run, repeats=1) - single)
    return single + tail


def explain_floors(context: Any, explained: Any, per_image: float) -> tuple[dict[str, tuple[float, float]], float]:
    """Per method (wall s, floor s) summed over images, and the explain stage's whole floor."""
    from xai.architectures import resolve_layer
    from xai.explain.registry import METHODS

    planned = context.plan.explain
    model = context.classifier(planned.model).module
    device = context.device
    image_shape = (3, *explained.images[0].pixels.shape[:2])
    gradient = gradient_pass_s(model, device, image_shape)
    single = single_forward_s(model, device, image_shape)
    # A method whose rows are per target channel but not whole images ablates channels and runs only the layers
    # after the target (AblationCAM): its floor is those partial forwards, not whole-image ones.
    ablates = {
        m for m in explained.methods if METHODS[m].passes_scale_with == "target_channel" and not METHODS[m].batched
    }
    target = resolve_layer(model, planned.target.path)
    ablation = ablation_floor_s(model, target, device, image_shape) if ablates else None
    segmentation = quickshift_s([item.pixels for item in explained.images])
    params = planned.lime
    rows: dict[str, list[float]] = {}
    stage_floor = len(explained.images) * single  # the prediction of each image
    for item in explained.images:
        explanation = item.explanation
        for method in explained.methods:
            if METHODS[method].family == "lime":
                found = explanation.lime
                floor = found.forward_passes * per_image + segmentation / len(explained.images)
                # The stability runs reuse the segmentation: forward passes only (their time is not recorded).
                stage_floor += (params.stability_seeds - 1) * params.num_samples * per_image
            else:
                found = next(cam for cam in explanation.cams if cam.method == method)
                if METHODS[method].batched:
                    floor = found.forward_passes * per_image
                elif method in ablates:
                    floor = ablation
                elif METHODS[method].needs_gradients:
                    floor = gradient
                else:
                    floor = single
            seconds, total = rows.setdefault(method, [0.0, 0.0])
            rows[method] = [seconds + found.seconds, total + floor]
            stage_floor += floor
    return {method: (values[0], values[1]) for method, values in rows.items()}, stage_floor


PROBE_PASS_LABELS = ("dissect:clip", "dissect:resnet18")
"""The labels the joint probe pass records its batch size under (:func:`xai.stages.probe_shards.pass_batch_size`):
measured on CLIP when CLIP is in the pass, else on ResNet18."""


def probe_pass_label(batch_sizes: dict[str, Any]) -> str | None:
    """The label under which this run's probe pass resolved its batch size; None when no pass ran (all cached)."""
    return next((label for label in PROBE_PASS_LABELS if label in batch_sizes), None)


def probe_pass_floor(images: int, per_image_s: dict[str, float], decode_s: float, decoding_overlapped: bool) -> float:
    """The joint probe pass's floor: every image through every network of the pass, each at the pass's batch size
    (``per_image_s``: network -> seconds per image), plus the decoding when no worker overlaps it with compute."""
    return images * sum(per_image_s.values()) + (0.0 if decoding_overlapped else decode_s)


def per_image_at_s(forward: Any, input_shape: tuple[int, ...], batch_size: int, device: Any) -> float:
    """Median seconds per image of ``forward`` on random batches of ``batch_size``, in this process."""
    import torch

    batch = torch.randn(batch_size, *input_shape, device=device)

    def run() -> None:
        with torch.inference_mode():
            forward(batch)
        _sync(device)

    return _median_time(run) / batch_size


def dissect_floor(context: Any, dissected: Any) -> tuple[float | None, str]:
    """The dissect stage's floor (probe pass + text encoding) and how its pass was sized; None: no pass ran."""
    import torch
    from PIL import Image
    from torchvision.models import ResNet18_Weights

    from xai.dissect import probes
    from xai.dissect.clip_embed import image_input_dtype
    from xai.dissect.paper import FC_CONCEPT_SETS
    from xai.dissect.probe_pass import spare_cpus

    planned, device = context.plan.dissect, context.device
    label = probe_pass_label(context.batch_sizes)
    if label is None:
        return None, "no probe pass ran (activations cached)"
    batch_size = context.batch_sizes[label].batch_size
    resnet_transform = ResNet18_Weights.IMAGENET1K_V1.transforms()
    resnet_shape = tuple(resnet_transform(Image.new("RGB", (256, 256))).shape)
    per_image: dict[str, float] = {}
    transforms = []
    if label == "dissect:clip":
        clip = context.clip()
        dtype = image_input_dtype(clip.module)
        shape = tuple(clip.preprocess(Image.new("RGB", (256, 256))).shape)
        per_image["clip"] = per_image_at_s(
            lambda batch: clip.module.encode_image(batch.to(dtype)), shape, batch_size, device
        )
        transforms.append(clip.preprocess)
    for entry in planned.models:
        name = entry.model_id
        model = context.classifier(entry.model).module
        per_image[name] = per_image_at_s(
            lambda batch, model=model: model(batch.contiguous(memory_format=torch.channels_last)),
            resnet_shape,
            batch_size,
            device,
        )
        transforms.append(resnet_transform)
    paths = dissected.probe_paths
    overlapped = spare_cpus(device) > 0 and len(paths) > batch_size
    concepts = len(probes.load_concepts(planned.concepts)) + sum(
        len(probes.load_concepts(FC_CONCEPT_SETS[entry.model_id]))
        for entry in planned.models
        if not entry.facts.no_self_check
    )
    floor = probe_pass_floor(len(paths), per_image, decode_s(paths, transforms), overlapped) + text_encoding_s(
        context, concepts
    )
    networks = ", ".join(f"{name} {seconds:.4f}" for name, seconds in per_image.items())
    decoding = "overlapped" if overlapped else "in the main process"
    how = f"{label} batch {batch_size}; s/image at that batch: {networks}; decoding {decoding}"
    return floor, how


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", choices=("pipeline", "render", "overlap"), default="pipeline")
    parser.add_argument("--config", type=Path, help="default: configs/quick.yaml (render: configs/smoke.yaml)")
    parser.add_argument("--workers", type=int, help="figure-drawing processes for --case render (default: all CPUs)")
    parser.add_argument(
        "--cold-s",
        type=float,
        help="--case render: the cold run's seconds, when the scratch folder's cache was filled by another run",
    )
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument(
        "--mirror",
        type=Path,
        help="data mirror holding MANIFEST.tsv (default: $XAI_MIRROR, else ../shared/data beside the checkout)",
    )
    parser.add_argument("--scratch", type=Path, help="work directory (default: a new temporary one, removed)")
    parser.add_argument("--max-images", type=int, help="explain only the first N task images (reduced run)")
    parser.add_argument(
        "--gpu-memory-gb",
        type=float,
        help="cap this process's GPU memory (a smaller GPU: batch sizes are measured under the cap)",
    )
    parser.add_argument("--probe-limit", type=int, help="dissection probe images (reduced run)")
    parser.add_argument("--stages", default="dissect,explain,compare")
    parser.add_argument(
        "--reference-min",
        type=float,
        default=28.9,
        help="a previous whole-run time to print the speed-up against (issue #14: 28.9 min)",
    )
    args = parser.parse_args()
    args.config = args.config or ROOT / "configs" / ("smoke.yaml" if args.case == "render" else "quick.yaml")
    if args.case == "overlap":
        from bench.bench_overlap import bench_overlap

        bench_overlap(args)
        return
    args.mirror = args.mirror or mirror_dir()
    if not (args.mirror / "MANIFEST.tsv").is_file():
        sys.exit(f"{args.mirror}: no MANIFEST.tsv there; pass the data mirror with --mirror")

    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="xai-bench-"))
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        if args.case == "render":
            from bench.bench_render import bench_render

            os.environ["XAI_MIRROR"] = str(args.mirror.resolve())
            bench_render(args, scratch)
        else:
            bench(args, scratch)
    finally:  # a failed or interrupted run leaves no temporary directory behind (an explicit --scratch is kept)
        if not args.scratch:
            shutil.rmtree(scratch, ignore_errors=True)


def bench(args: argparse.Namespace, scratch: Path) -> None:
    os.environ["XAI_MIRROR"] = str(args.mirror.resolve())
    os.environ.setdefault("XAI_DATA_DIR", str(scratch / "downloads"))
    os.environ.setdefault("TORCH_HOME", str(scratch / "torch"))

    import torch
    import yaml

    from xai import pipeline
    from xai.batching import configure_threads, cpu_model
    from xai.cache import ArtifactCache
    from xai.config import validate
    from xai.context import RunContext
    from xai.context import stage as stage_module
    from xai.data import task_image_paths
    from xai.memory import PeakMemory
    from xai.plan import make_plan
    from xai.report.render import render_report

    started = time.perf_counter()
    threads = configure_threads()
    images = scratch / "images"
    images.mkdir(exist_ok=True)
    for path in task_image_paths():
        shutil.copyfile(path, images / path.name)
    data = yaml.safe_load(args.config.read_text())
    data.update(
        weights="random",
        device=args.device,
        images=str(images),
        cache_dir=str(scratch / "cache"),
        output_dir=str(scratch / "docs"),
        stages=args.stages.split(","),
    )
    for section in ("explain", "dissect"):  # the floors need the measured seconds per image
        data.setdefault(section, {})["batch_size"] = "auto"
    if args.max_images:
        data["max_images"] = args.max_images
    if args.probe_limit:
        data.setdefault("dissect", {})["probe_limit"] = args.probe_limit
    config = validate(data, str(args.config))
    plan = make_plan(config)
    context = RunContext(plan, ArtifactCache(plan.cache_dir), pipeline.resolve_device(config.device), quiet=True)
    context.images, context.skipped = pipeline.load_inputs(plan)
    if args.gpu_memory_gb and context.device.type == "cuda":
        total = torch.cuda.get_device_properties(context.device).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, args.gpu_memory_gb * 2**30 / total), context.device)
        print(f"GPU memory capped at {args.gpu_memory_gb:g} GB of {total / 2**30:.0f}", flush=True)
    device_text = (
        torch.cuda.get_device_name(context.device)
        if context.device.type == "cuda"
        else f"{cpu_model()}, {threads} torch threads"
    )
    print(
        f"config {args.config.name} (weights random), {len(context.images)} images, device {context.device} "
        f"({device_text}), scratch {scratch}",
        flush=True,
    )
    stages = list(plan.run)
    peaks: dict[str, float] = {}
    gpu_peaks: dict[str, float] = {}
    for stage in stages:
        with PeakMemory(context.device) as peak:
            begin = time.perf_counter()
            context.artifacts[stage] = stage_module(stage).run(context)
            context.timings[stage] = time.perf_counter() - begin
        peaks[stage] = peak.rss_mb
        if peak.gpu_mb is not None:
            gpu_peaks[stage] = peak.gpu_mb
        print(f"  {stage} done in {context.timings[stage]:.1f} s", flush=True)
    with PeakMemory(context.device) as peak:
        begin = time.perf_counter()
        render_report(pipeline.run_record(context), context.artifacts, plan.output_dir, plan)
        context.timings["report"] = time.perf_counter() - begin
    peaks["report"] = peak.rss_mb
    run_seconds = time.perf_counter() - started

    print("\nbatch sizes (seconds per image by candidate):")
    for label, choice in context.batch_sizes.items():
        timings = ", ".join(f"{size}: {seconds:.4f}" for size, seconds in choice.timings.items())
        print(f"  {label:<28} {choice.batch_size:>4} ({choice.source}) {timings}")

    print("\nfloors measured in this process (this takes a minute)...", flush=True)
    floors: dict[str, float | None] = {}
    methods: dict[str, tuple[float, float]] = {}
    explain_label = f"explain:{plan.explain.model_id}" if plan.explain else ""
    if "explain" in context.artifacts:
        per_image = context.batch_sizes[explain_label].per_image_s
        methods, floors["explain"] = explain_floors(context, context.artifacts["explain"], per_image)
    if "compare" in context.artifacts:
        per_image = context.batch_sizes[explain_label].per_image_s
        passes = sum(result.forward_passes for result in context.artifacts["compare"].faithfulness)
        floors["compare"] = passes * per_image
    if "dissect" in context.artifacts:
        floors["dissect"], how = dissect_floor(context, context.artifacts["dissect"])
        print(f"  dissect floor: {how}", flush=True)
    floors["report"] = None

    print(f"\n  {'stage / method':<28}{'wall s':>9}{'floor s':>9}{'ratio':>9}  peak RSS")
    for stage in [*stages, "report"]:
        gpu = f", GPU {gpu_peaks[stage]:,.0f} MB" if stage in gpu_peaks else ""
        print_row(stage, context.timings[stage], floors.get(stage), f"{peaks[stage]:,.0f} MB{gpu}")
        if stage == "explain":
            for method, (seconds, floor) in methods.items():
                print_row(f"  {method}", seconds, floor)
    floor_total = sum(value for value in floors.values() if value)
    reduced = (
        args.max_images
        or args.probe_limit
        or args.stages != "dissect,explain,compare"
        or args.config.name != "quick.yaml"
    )
    reference = (
        "reduced run: not comparable with the reference"
        if reduced
        else f"reference {args.reference_min:.1f} min -> {args.reference_min * 60 / run_seconds:.2f}x faster"
    )
    print(
        f"\nwhole run {run_seconds / 60:.1f} min (stages {sum(context.timings.values()) / 60:.1f} min, floors "
        f"{floor_total / 60:.1f} min); {reference}"
    )
    print("  (explain's method rows: LIME's first seed only; the stage also runs the stability seeds)")


if __name__ == "__main__":
    main()
