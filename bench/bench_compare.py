"""Cost of the LIME-vs-CAM comparison stage per image: forward passes and seconds, as ratios in one run.

Model: torchvision ResNet-50 with seeded random weights at 224² (no download), one real ImageNet sample image.
Measured, per image:

* agreement + complexity (``compare_image``) for 6 CAM maps: no model call;
* deletion/insertion (``faithfulness_image``) for ``--maps`` maps (+ the smooth random draws and the centre
  prior) at ``--steps``
  steps: forward passes = ``3 + 2·M·(n_steps − 1)``; compared with the floor (the same number of forward
  passes on a pre-built batch, i.e. the model alone) and with the reference RISE loop's count
  (``2·M·(n_steps + 1)``) and the reference 224-step plan;
* the cascading sanity check with Grad-CAM-family methods: ``len(groups) + 1`` explain calls;
* with ``--sample N``: the powered sample's per-image work (``sample_image``: LIME at ``--sample-lime`` samples,
  ``--sample-methods``, deletion/insertion at ``--sample-steps``) on N ImageNet sample images, seconds per image
  beside the model-only floor, and how many images fit in ``--budget-s`` seconds (how the configs' sample sizes are
  chosen).

Usage: ``.venv/bin/python bench/bench_compare.py [--steps 14] [--maps 10] [--batch-size 16] [--threads 1]
[--sample 3 --sample-methods gradcam --sample-lime 300 --sample-steps 16 --budget-s 600]``
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torchvision.models import resnet50

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from bench._paths import mirror_dir
from xai.compare import compare_image, faithfulness_image, forward_passes, sanity_check
from xai.compare.faithfulness import step_plan
from xai.data import load_image
from xai.models import to_input

IMAGE = Path("imagenet-sample-images/n01443537_goldfish.JPEG")
"""Relative to the data mirror (:func:`bench._paths.mirror_dir`)."""


def smooth_maps(count: int, seed: int, size: int = 224) -> dict[str, np.ndarray]:
    """CAM-like maps: seeded 7x7 grids upsampled bilinearly to ``size`` and min-max scaled."""
    rng = np.random.default_rng(seed)
    maps = {}
    for index in range(count):
        grid = torch.from_numpy(rng.random((1, 1, 7, 7)).astype(np.float32))
        up = torch.nn.functional.interpolate(grid, size=(size, size), mode="bilinear", align_corners=False)[0, 0]
        up = (up - up.min()) / (up.max() - up.min())
        maps[f"map{index}"] = up.numpy()
    return maps


class ForwardCounter:
    """Counts images through ``model`` with a forward hook (removed on exit)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        self.images = 0

    def __enter__(self) -> ForwardCounter:
        self.handle = self.model.register_forward_hook(self._hook)
        return self

    def _hook(self, module: torch.nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        self.images += int(inputs[0].shape[0])

    def __exit__(self, *exc: object) -> None:
        self.handle.remove()


def time_floor(model: torch.nn.Module, images: int, batch_size: int) -> float:
    """Seconds for ``images`` forward passes of pre-built batches: the model-only floor."""
    batch = torch.randn(batch_size, 3, 224, 224)
    start = time.perf_counter()
    with torch.inference_mode():
        done = 0
        while done < images:
            size = min(batch_size, images - done)
            model(batch[:size])
            done += size
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=14)
    parser.add_argument("--maps", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sanity-methods", default="GradCAM,GradCAMPlusPlus,LayerCAM")
    parser.add_argument("--skip-sanity", action="store_true")
    parser.add_argument("--sample", type=int, default=0, help="images of the powered sample's per-image work")
    parser.add_argument("--sample-methods", default="gradcam")
    parser.add_argument("--sample-lime", type=int, default=300)
    parser.add_argument("--sample-steps", type=int, default=16)
    parser.add_argument("--budget-s", type=float, default=600)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = resnet50(weights=None).eval()
    image = load_image(mirror_dir() / IMAGE)
    with torch.inference_mode():
        target = int(model(to_input(image[None])).argmax())
    report: dict[str, object] = {"image": IMAGE.name, "threads": args.threads, "batch_size": args.batch_size}

    cams = smooth_maps(6, seed=1)
    segments = (np.arange(224)[:, None] // 32 * 7 + np.arange(224)[None, :] // 32).astype(np.int32)
    weights = np.random.default_rng(2).normal(size=49)
    start = time.perf_counter()
    compare_image(image, segments, weights, cams, image_id=IMAGE.stem)
    report["agreement_seconds_6_cams"] = round(time.perf_counter() - start, 3)

    maps = smooth_maps(args.maps, seed=3)
    _, n_steps, _ = step_plan(224 * 224, args.steps)
    # Floor: seconds per image of the model alone, measured on 4 batches before and after the stage (the
    # machine is shared, so bracketing the stage reduces drift), after one warm-up batch.
    sample = 4 * args.batch_size
    time_floor(model, args.batch_size, args.batch_size)
    floor_before = time_floor(model, sample, args.batch_size) / sample
    with ForwardCounter(model) as counter:
        start = time.perf_counter()
        result = faithfulness_image(
            model, to_input, image, maps, target, steps=args.steps, batch_size=args.batch_size, seed=0
        )
        seconds = time.perf_counter() - start
    floor_after = time_floor(model, sample, args.batch_size) / sample
    floor = (floor_before + floor_after) / 2 * result.forward_passes
    # The same stage with a near-free model isolates the cost of building the perturbed inputs.
    stub = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(3, 1000)).eval()
    start = time.perf_counter()
    faithfulness_image(stub, to_input, image, maps, target, steps=args.steps, batch_size=args.batch_size, seed=0)
    overhead = time.perf_counter() - start
    n_maps = len(result.methods)  # the maps plus the smooth random draws and the centre prior
    report["faithfulness"] = {
        "maps_including_baselines": n_maps,
        "n_steps": n_steps,
        "forward_passes": result.forward_passes,
        "forward_passes_counted": counter.images,
        "formula": forward_passes(n_maps, n_steps),
        "reference_loop_forward_passes": 2 * n_maps * (n_steps + 1),
        "reference_224_steps_forward_passes": forward_passes(n_maps, 224),
        "seconds": round(seconds, 2),
        "floor_seconds_model_only": round(floor, 2),
        "floor_seconds_per_image_before_after": [round(floor_before, 3), round(floor_after, 3)],
        "ratio_to_floor": round(seconds / floor, 3),
        "overhead_seconds_stub_model": round(overhead, 2),
        "images_per_second": round(result.forward_passes / seconds, 2),
        "estimated_seconds_at_224_steps": round(forward_passes(n_maps, 224) / (result.forward_passes / seconds), 1),
    }

    if not args.skip_sanity:
        import pytorch_grad_cam
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        methods = [getattr(pytorch_grad_cam, name) for name in args.sanity_methods.split(",")]
        inputs = to_input(image[None])
        calls = {"explain": 0}

        def explain(working: torch.nn.Module) -> dict[str, np.ndarray]:
            calls["explain"] += 1
            out = {}
            for method in methods:
                with method(model=working, target_layers=[working.layer4[-1]]) as cam:
                    out[method.__name__] = cam(input_tensor=inputs, targets=[ClassifierOutputTarget(target)])[0]
            return out

        start = time.perf_counter()
        sanity = sanity_check(model, explain, seed=0)
        seconds = time.perf_counter() - start
        report["sanity"] = {
            "methods": list(sanity.methods),
            "steps": list(sanity.steps),
            "explain_calls": calls["explain"],
            "cam_calls_forward_plus_backward": calls["explain"] * len(methods),
            "seconds": round(seconds, 2),
            "last_step_mean_abs_spearman": [round(float(v), 3) for v in sanity.spearman_abs[:, -1].mean(axis=1)],
        }
        report["total_seconds_per_image"] = round(
            report["faithfulness"]["seconds"] + seconds + report["agreement_seconds_6_cams"],
            1,  # type: ignore[index]
        )
    if args.sample:
        report["sample"] = bench_sample(model, args)
    print(json.dumps(report, indent=2))
    if not math.isfinite(report["faithfulness"]["seconds"]):  # type: ignore[index]
        raise SystemExit(1)


def bench_sample(model: torch.nn.Module, args: argparse.Namespace) -> dict[str, object]:
    """Seconds per image of ``sample_image`` on ``args.sample`` sample images (the ten task images left out) and the
    images that fit in ``args.budget_s``; the floor is the model alone on the same number of full forward passes."""
    from xai.compare import SampleSettings, draw_sample, sample_image
    from xai.data import TASK_IMAGES
    from xai.explain.lime_image import LimeParams

    settings = SampleSettings(
        methods=tuple(args.sample_methods.split(",")),
        lime=LimeParams(num_samples=args.sample_lime, stability_seeds=1),
        lime_seeds=1,
        ks=(5, 10),
        thresholds=tuple(t / 100 for t in range(5, 55, 5)),
        null_draws=2000,
        steps=args.sample_steps,
        random_draws=3,
        random_cells=(7, 7),
        target_layer="layer4[-1]",
        reshape=None,
    )
    seconds, passes = [], []
    for source in draw_sample("imagenet-samples", args.sample, seed=0, exclude=TASK_IMAGES):
        image = load_image(mirror_dir() / source.location)
        start = time.perf_counter()
        item = sample_image(
            model, image, settings, to_input=to_input, image_id=source.image_id, seed=0, faithfulness_seed=0,
            batch_size=args.batch_size,
        )  # fmt: skip
        seconds.append(time.perf_counter() - start)
        passes.append(item.forward_passes)
    floor = time_floor(model, 4 * args.batch_size, args.batch_size) / (4 * args.batch_size)
    per_image = float(np.median(seconds))
    return {
        "settings": {"methods": settings.methods, "lime_samples": args.sample_lime, "steps": args.sample_steps},
        "images": len(seconds),
        "seconds_per_image": [round(s, 1) for s in seconds],
        "median_seconds_per_image": round(per_image, 1),
        "forward_passes_per_image": passes,
        "floor_seconds_per_forward": round(floor, 4),
        "ratio_to_floor_if_all_passes_were_full": round(per_image / (floor * float(np.median(passes))), 2),
        "images_within_budget": int(args.budget_s // per_image),
        "budget_s": args.budget_s,
    }


if __name__ == "__main__":
    main()
