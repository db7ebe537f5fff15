"""Benchmark LIME and the CAM family on one real image: our time vs the library default and vs the floor.

The floor is the forward passes a method needs at the best batch size, measured in the same run: ScoreCAM
2049 ResNet50 forwards, LIME ``num_samples`` forwards plus quickshift. Each measurement runs in its own
subprocess so its peak RSS (``resource.getrusage``) is its own; "peak" is the process's whole peak including
the model, "extra" is the peak minus the RSS after loading the model and image.

    .venv/bin/python bench/bench_explain.py                      # everything (~10+ min on 2 CPU cores)
    .venv/bin/python bench/bench_explain.py --methods gradcam,ablationcam --skip-library-ablation

Model: torchvision ResNet50 with seeded random weights (no download), CPU, eval mode. Timings on a shared
machine are noisy: compare the ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_IMAGE = Path("/work/shared/data/imagenet-sample-images/n01443537_goldfish.JPEG")
ALL_METHODS = ["lime", "gradcam", "ablationcam", "scorecam", "gradcampp", "xgradcam", "layercam", "hirescam",
               "eigencam"]
LIBRARY_CLASSES = {"gradcam": "GradCAM", "ablationcam": "AblationCAM", "scorecam": "ScoreCAM",
                   "gradcampp": "GradCAMPlusPlus", "xgradcam": "XGradCAM", "layercam": "LayerCAM",
                   "hirescam": "HiResCAM", "eigencam": "EigenCAM"}


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


def worker(task: str, variant: str, args: argparse.Namespace) -> dict:
    """Run one measurement in this process and return its numbers."""
    import numpy as np
    import torch

    from xai.explain import LimeParams, compute_cam, run_lime
    from xai.explain.inference import fast_layout, predict_top
    from xai.models import to_input

    model, image = _load(args.image, args.threads)
    x = to_input(image[None])
    target = int(predict_top(model, x, 1)[0][0])
    with torch.inference_mode():  # one-time oneDNN set-up is not any method's cost
        model(x)
        model(fast_layout(x))
    baseline = _peak_mb()
    start = time.perf_counter()
    result: dict = {}
    if task == "floor":
        from lime.wrappers.scikit_image import SegmentationAlgorithm

        batch = torch.randn(max(args.batch_sizes) * 4, 3, 224, 224)
        with torch.inference_mode():
            model(fast_layout(batch[:8]))  # warm-up
            per_image = {}
            for size in args.batch_sizes:
                count = max(args.floor_images // size, 1) * size
                begin = time.perf_counter()
                for offset in range(0, count, size):
                    model(fast_layout(batch[offset % len(batch):][:size]))
                per_image[size] = (time.perf_counter() - begin) / count
        begin = time.perf_counter()
        SegmentationAlgorithm("quickshift", kernel_size=4, max_dist=200, ratio=0.2)(image)
        result = {"per_image_s": per_image, "quickshift_s": time.perf_counter() - begin}
    elif task == "lime" and variant == "ours":
        lime = run_lime(model, image, to_input=to_input, params=LimeParams(num_samples=args.num_samples), seed=0)
        result = {"segments": int(lime.segments.max()) + 1}
    elif task == "lime":
        from lime.lime_image import LimeImageExplainer

        def batch_predict(images: np.ndarray) -> np.ndarray:  # the tutorial's predictor, autograd and all
            batch = torch.cat([to_input(image[None]) for image in images])
            return torch.softmax(model(batch), dim=1).detach().numpy()

        LimeImageExplainer(random_state=0).explain_instance(image, batch_predict, top_labels=5, hide_color=0,
                                                            num_samples=args.num_samples)
    elif variant == "ours":
        cam = compute_cam(model, x, task, model.layer4[-1], target)
        result = {"forward_passes": cam.forward_passes}
    else:
        import pytorch_grad_cam
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        with getattr(pytorch_grad_cam, LIBRARY_CLASSES[task])(model=model, target_layers=[model.layer4[-1]]) as cam:
            cam(x, [ClassifierOutputTarget(target)])
    result.update(seconds=time.perf_counter() - start, peak_mb=_peak_mb(), extra_mb=_peak_mb() - baseline)
    return result


def _spawn(task: str, variant: str, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--worker", task, variant, "--image", str(args.image),
               "--threads", str(args.threads), "--num-samples", str(args.num_samples),
               "--batch-sizes", ",".join(map(str, args.batch_sizes)), "--floor-images", str(args.floor_images)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{task}/{variant} failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    parser.add_argument("--methods", default=",".join(ALL_METHODS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--num-samples", type=int, default=1000)
    parser.add_argument("--batch-sizes", type=lambda text: [int(v) for v in text.split(",")], default=[8, 16, 32])
    parser.add_argument("--floor-images", type=int, default=96, help="images timed per batch size for the floor")
    parser.add_argument("--skip-library-ablation", action="store_true", help="grad-cam's AblationCAM takes ~3 min")
    parser.add_argument("--skip-library-score", action="store_true", help="grad-cam's ScoreCAM takes ~3 min")
    parser.add_argument("--skip-library-lime", action="store_true", help="the tutorial's LIME takes ~1 min")
    parser.add_argument("--worker", nargs=2, metavar=("TASK", "VARIANT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker, args)))
        return

    methods = [m for m in args.methods.split(",") if m]
    print(f"image {args.image.name}, ResNet50 random weights, CPU, {args.threads} threads")
    floor = _spawn("floor", "-", args)
    per_image = {int(k): v for k, v in floor["per_image_s"].items()}
    best_batch = min(per_image, key=per_image.get)
    print("forward s/image by batch size: " + ", ".join(f"{b}: {t:.4f}" for b, t in per_image.items())
          + f"; quickshift {floor['quickshift_s']:.2f} s")
    floors = {"lime": args.num_samples * per_image[best_batch] + floor["quickshift_s"],
              "scorecam": 2049 * per_image[best_batch]}
    skip = {"ablationcam": args.skip_library_ablation, "scorecam": args.skip_library_score,
            "lime": args.skip_library_lime}
    header = f"{'method':<12}{'ours s':>9}{'library s':>11}{'speed-up':>10}{'floor s':>9}{'ours/floor':>11}" \
             f"{'peak MB':>9}{'extra MB':>10}{'lib extra MB':>13}  passes"
    print(header)
    for method in methods:
        ours = _spawn(method, "ours", args)
        library = None if skip.get(method) else _spawn(method, "library", args)
        method_floor = floors.get(method)
        print(f"{method:<12}{ours['seconds']:>9.2f}"
              f"{library['seconds'] if library else float('nan'):>11.2f}"
              f"{library['seconds'] / ours['seconds'] if library else float('nan'):>9.1f}x"
              f"{method_floor if method_floor else float('nan'):>9.2f}"
              f"{ours['seconds'] / method_floor if method_floor else float('nan'):>11.3f}"
              f"{ours['peak_mb']:>9.0f}{ours['extra_mb']:>10.0f}"
              f"{library['extra_mb'] if library else float('nan'):>13.0f}  "
              f"{ours.get('forward_passes', ours.get('segments', ''))}", flush=True)


if __name__ == "__main__":
    main()
