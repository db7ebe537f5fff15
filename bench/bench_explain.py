"""Benchmark LIME and the CAM family on one real image: our time vs the library default and vs the floor.

The floor is the forward passes a method needs at the best batch size, measured in the same run: ScoreCAM's
actual ResNet50 forwards (1 + its non-constant channels), LIME ``num_samples`` forwards plus quickshift.
Timings are taken in ONE process with the variants interleaved (ours, library, then library, ours, ...;
``--repeats`` rounds) and the median kept: separate
processes measured at different moments of a shared machine's load gave a misleading ratio (LIME: 0.8x the
tutorial in separate processes, 1.2x faster interleaved). The seconds per image by batch size come from
:func:`xai.batching.measure` (candidates interleaved too). With ``--memory`` each variant also runs once in its
own subprocess so its peak RSS (``resource.getrusage``) is its own; "extra" is the peak minus the RSS after
loading the model and image.

    .venv/bin/python bench/bench_explain.py                      # everything (~15+ min on 2 CPU cores)
    .venv/bin/python bench/bench_explain.py --methods lime --repeats 5
    .venv/bin/python bench/bench_explain.py --methods gradcam,ablationcam --skip-library-ablation --memory

Model: torchvision ResNet50 with seeded random weights (no download), CPU, eval mode.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_IMAGE = ROOT.parent / "shared" / "data" / "imagenet-sample-images" / "n01443537_goldfish.JPEG"


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _load(image_path: Path, threads: int) -> tuple:
    import numpy as np
    import torch
    from PIL import Image
    from torchvision.models import resnet50

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = resnet50(weights=None).eval()
    with Image.open(image_path) as opened:
        rgb = opened.convert("RGB")
        scale = 256 / min(rgb.size)
        rgb = rgb.resize((round(rgb.width * scale), round(rgb.height * scale)), Image.BILINEAR)
        left, top = (rgb.width - 224) // 2, (rgb.height - 224) // 2
        image = np.asarray(rgb.crop((left, top, left + 224, top + 224)), dtype=np.uint8)
    return model, image


def prepare(args: argparse.Namespace) -> dict:
    """Model, image, input tensor and target class, warmed up (one-time oneDNN set-up is no method's cost)."""
    import torch

    from xai.explain.inference import fast_layout, predict_top
    from xai.models import to_input

    model, image = _load(args.image, args.threads)
    x = to_input(image[None])
    target = int(predict_top(model, x, 1)[0][0])
    with torch.inference_mode():
        model(x)
        model(fast_layout(x))
    return {"model": model, "image": image, "x": x, "target": target}


def run_variant(state: dict, task: str, variant: str, args: argparse.Namespace) -> dict:
    """Run one method once (ours or the library's default) and return its seconds and facts."""
    import numpy as np
    import torch

    from xai.explain import LimeParams, compute_cam, method_info, run_lime
    from xai.models import to_input

    model, image, x, target = state["model"], state["image"], state["x"], state["target"]
    info = method_info(task)
    start = time.perf_counter()
    result: dict = {}
    if info.family == "lime" and variant == "ours":
        lime = run_lime(
            model,
            image,
            to_input=to_input,
            params=LimeParams(num_samples=args.num_samples),
            seed=0,
            batch_size=args.batch,
        )
        result = {"segments": int(lime.segments.max()) + 1}
    elif info.family == "lime":
        from lime.lime_image import LimeImageExplainer

        def batch_predict(images: np.ndarray) -> np.ndarray:  # the tutorial's predictor, autograd and all
            batch = torch.cat([to_input(image[None]) for image in images])
            return torch.softmax(model(batch), dim=1).detach().numpy()

        LimeImageExplainer(random_state=0).explain_instance(
            image, batch_predict, top_labels=5, hide_color=0, num_samples=args.num_samples
        )
    elif variant == "ours":
        cam = compute_cam(model, x, task, model.layer4[-1], target, batch_size=args.batch if info.batched else None)
        result = {"forward_passes": cam.forward_passes}
    else:
        import importlib

        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        module_name, _, class_name = info.library_implementation.partition(":")
        library_class = getattr(importlib.import_module(module_name), class_name)
        with library_class(model=model, target_layers=[model.layer4[-1]]) as cam:
            cam(x, [ClassifierOutputTarget(target)])
    result["seconds"] = time.perf_counter() - start
    return result


def worker(task: str, variant: str, args: argparse.Namespace) -> dict:
    """Memory of one variant, alone in this process: its peak RSS and the peak above the loaded model's RSS."""
    state = prepare(args)
    baseline = _peak_mb()
    result = run_variant(state, task, variant, args)
    result.update(peak_mb=_peak_mb(), extra_mb=_peak_mb() - baseline)
    return result


def floor_timings(state: dict, args: argparse.Namespace) -> tuple[dict[int, float], float]:
    """Seconds per image by batch size (interleaved, median) and one quickshift segmentation."""
    import torch
    from lime.wrappers.scikit_image import SegmentationAlgorithm

    from xai.batching import measure
    from xai.explain.inference import fast_layout

    model = state["model"]
    per_image = measure(
        lambda batch: model(fast_layout(batch)),
        (3, 224, 224),
        torch.device("cpu"),
        candidates=args.batch_sizes,
        rounds=args.repeats,
    )
    segmenter = SegmentationAlgorithm("quickshift", kernel_size=4, max_dist=200, ratio=0.2)
    begin = time.perf_counter()
    segmenter(state["image"])
    return per_image, time.perf_counter() - begin


def _spawn(task: str, variant: str, args: argparse.Namespace) -> dict:
    command = [
        sys.executable,
        __file__,
        "--worker",
        task,
        variant,
        "--image",
        str(args.image),
        "--threads",
        str(args.threads),
        "--num-samples",
        str(args.num_samples),
        "--batch",
        str(args.batch),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{task}/{variant} failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1])


def interleaved(state: dict, method: str, variants: list[str], args: argparse.Namespace) -> dict[str, dict]:
    """``--repeats`` rounds of every variant in turn, the order alternating per round (A, B, then B, A, ...) so
    neither variant always runs on the warmer or the cooler machine; per variant the median seconds."""
    runs: dict[str, list[dict]] = {variant: [] for variant in variants}
    for round_index in range(args.repeats):
        for variant in variants if round_index % 2 == 0 else variants[::-1]:
            runs[variant].append(run_variant(state, method, variant, args))
    return {
        variant: {
            **found[-1],
            "seconds": statistics.median(r["seconds"] for r in found),
            "all_seconds": [r["seconds"] for r in found],
        }
        for variant, found in runs.items()
    }


def main() -> None:
    from xai.explain.registry import METHODS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    parser.add_argument("--methods", default=",".join(METHODS), help="registry names (default: all)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--num-samples", type=int, default=1000)
    parser.add_argument("--batch-sizes", type=lambda text: [int(v) for v in text.split(",")], default=[4, 8, 16, 32])
    parser.add_argument("--batch", type=int, default=0, help="our batch size (default: the fastest measured)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds per method (median kept)")
    parser.add_argument("--memory", action="store_true", help="also measure each variant's peak RSS alone")
    parser.add_argument("--skip-library-ablation", action="store_true", help="grad-cam's AblationCAM takes ~3 min")
    parser.add_argument("--skip-library-score", action="store_true", help="grad-cam's ScoreCAM takes ~3 min")
    parser.add_argument("--skip-library-lime", action="store_true", help="the tutorial's LIME takes ~1 min")
    parser.add_argument("--worker", nargs=2, metavar=("TASK", "VARIANT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker, args)))
        return

    methods = [m for m in args.methods.split(",") if m]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        parser.error(f"--methods: unknown {unknown[0]!r}; known: {', '.join(METHODS)}")
    print(
        f"image {args.image.name}, ResNet50 random weights, CPU, {args.threads} threads, "
        f"{args.repeats} interleaved rounds per method (median)"
    )
    state = prepare(args)
    per_image, quickshift = floor_timings(state, args)
    best_batch = min(per_image, key=per_image.get)
    args.batch = args.batch or best_batch
    print(
        "forward s/image by batch size: "
        + ", ".join(f"{b}: {t:.4f}" for b, t in per_image.items())
        + f"; quickshift {quickshift:.2f} s; ours at batch {args.batch}"
    )
    # ScoreCAM's floor is its actual forward passes (constant channels are skipped), read from its run below.
    floors = {"lime": args.num_samples * per_image[best_batch] + quickshift}
    skip = {
        "ablationcam": args.skip_library_ablation,
        "scorecam": args.skip_library_score,
        "lime": args.skip_library_lime,
    }
    header = f"{'method':<12}{'ours s':>9}{'library s':>11}{'speed-up':>10}{'floor s':>9}{'ours/floor':>11}"
    if args.memory:
        header += f"{'peak MB':>9}{'extra MB':>10}{'lib extra MB':>13}"
    print(header + "  passes")
    for method in methods:
        variants = ["ours"] if skip.get(method) else ["ours", "library"]
        timed = interleaved(state, method, variants, args)
        ours, library = timed["ours"], timed.get("library")
        info = METHODS[method]
        whole_image_rows = info.family == "cam" and info.batched  # ScoreCAM: its rows are whole-image forwards
        method_floor = ours["forward_passes"] * per_image[best_batch] if whole_image_rows else floors.get(method)
        line = (
            f"{method:<12}{ours['seconds']:>9.2f}"
            f"{library['seconds'] if library else float('nan'):>11.2f}"
            f"{library['seconds'] / ours['seconds'] if library else float('nan'):>9.2f}x"
            f"{method_floor if method_floor else float('nan'):>9.2f}"
            f"{ours['seconds'] / method_floor if method_floor else float('nan'):>11.3f}"
        )
        if args.memory:
            ours_memory = _spawn(method, "ours", args)
            library_memory = _spawn(method, "library", args) if library else None
            line += (
                f"{ours_memory['peak_mb']:>9.0f}{ours_memory['extra_mb']:>10.0f}"
                f"{library_memory['extra_mb'] if library_memory else float('nan'):>13.0f}"
            )
        print(f"{line}  {ours.get('forward_passes', ours.get('segments', ''))}", flush=True)


if __name__ == "__main__":
    main()
