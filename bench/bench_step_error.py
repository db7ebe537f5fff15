"""Deletion/insertion resolution: AUC error of coarser step counts against the RISE reference (224 steps).

The RISE reference moves 224 pixels per step at 224x224 (224 steps, 225 points per curve). A coarser plan
integrates the same curve with fewer trapezoids; this measures ``|AUC(steps) − AUC(224)|`` for deletion and
insertion on a few real ImageNet sample images, several maps and several softmax **sharpness levels**
(temperatures), takes the worst case over all of them, and names the coarsest step count such that it **and
every finer candidate** stay within ``--tolerance`` (0.005): a coarse count that passes by luck of where its
trapezoids fall, while a finer one fails, is not chosen.

Model: the planted-evidence network of ``xai.testing`` at 224x224 (it reads only a central box), logits divided
by each temperature in ``--temperatures``: a high temperature gives slow, smooth curves, a low one the steep
curves of a confident (pretrained) classifier. A random-weight ResNet50 would not do: its softmax is nearly flat,
so every curve is flat and every step count looks exact. The discretisation error depends on how fast the curve
moves; this is a measurement of the integration error on a synthetic model, not of the user's model (a
pretrained ResNet50 can be steeper still than the sharpest level here). Maps: the planted model's Grad-CAM, a
smooth random map and the centre prior.

Writes ``xai/compare/step_error.json`` (read by the methods page) when ``--write`` is given.
Usage: ``PYTHONPATH=$PWD python bench/bench_step_error.py --images 4 --temperatures 300 30 10 3 --write``
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from xai.compare.faithfulness import auc, faithfulness_image, random_map
from xai.compare.nulls import centre_prior_map
from xai.data import imagenet_sample_paths, load_image
from xai.explain.cams.base import compute_cam
from xai.models import to_input
from xai.testing import PlantedEvidenceNet

OUTPUT = Path(__file__).resolve().parents[1] / "xai" / "compare" / "step_error.json"
REFERENCE_STEPS = 224
CANDIDATES = (8, 14, 16, 28, 32, 56, 112)
"""The divisors of 224 below it: each plan's points are a subset of the reference's (its step moves a multiple of
224 pixels, in the same pixel order), so its AUC is the trapezoid over that subset of the reference curve. This
is exact, and checked against a direct run (``CHECK_STEPS``) on the first image of every temperature."""
CHECK_STEPS = 28
CHECK_TOLERANCE = 1e-6


class Tempered(torch.nn.Module):
    def __init__(self, model: torch.nn.Module, temperature: float) -> None:
        super().__init__()
        self.model, self.temperature = model, temperature

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) / self.temperature


def subsampled_aucs(reference: object, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Deletion and insertion AUCs of a ``steps``-step plan, read off the 224-step reference curves."""
    stride = REFERENCE_STEPS // steps
    fractions = reference.fractions[::stride]
    return (
        np.array([auc(fractions, curve[::stride]) for curve in reference.deletion]),
        np.array([auc(fractions, curve[::stride]) for curve in reference.insertion]),
    )


def coarsest_with_finer_passing(rows: list[dict], tolerance: float) -> int | None:
    """The coarsest step count such that it and every finer candidate have max error <= tolerance."""
    chosen = None
    for row in sorted(rows, key=lambda row: -row["steps"]):  # finest first
        if row["max_abs_error"] > tolerance:
            break
        chosen = row["steps"]
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--temperatures", type=float, nargs="+", default=[300.0, 30.0, 10.0, 3.0])
    parser.add_argument("--tolerance", type=float, default=0.005)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    torch.manual_seed(0)
    planted = PlantedEvidenceNet((56, 56, 168, 168), image_size=224, num_classes=10, seed=0)
    paths = imagenet_sample_paths()[::250][: args.images]  # spread over the classes
    by_temperature = {}
    for temperature in args.temperatures:
        model = Tempered(planted, temperature).eval()
        errors = {steps: [] for steps in CANDIDATES}
        curves_range = []
        for path in paths:
            image = load_image(path)
            tensor = to_input(image[None])
            with torch.inference_mode():
                target = int(model(tensor).argmax())
            maps = {
                "gradcam": compute_cam(model, tensor, "gradcam", planted.layer4[-1], target).map,
                "smooth random": random_map((224, 224), 1),
                "centre prior": centre_prior_map((224, 224)),
            }
            reference = faithfulness_image(
                model,
                to_input,
                image,
                maps,
                target,
                steps=REFERENCE_STEPS,
                batch_size=64,
                include_random=False,
                include_centre=False,
                image_id=path.stem,
            )
            curves_range.append(float(np.ptp(np.concatenate([reference.deletion, reference.insertion]))))
            coarse = {steps: subsampled_aucs(reference, steps) for steps in CANDIDATES}
            if path == paths[0]:
                direct = faithfulness_image(
                    model,
                    to_input,
                    image,
                    maps,
                    target,
                    steps=CHECK_STEPS,
                    batch_size=64,
                    include_random=False,
                    include_centre=False,
                    image_id=path.stem,
                )
                gap = max(
                    np.max(np.abs(direct.deletion_auc - coarse[CHECK_STEPS][0])),
                    np.max(np.abs(direct.insertion_auc - coarse[CHECK_STEPS][1])),
                )
                if gap > CHECK_TOLERANCE:
                    raise SystemExit(f"subsampled AUC differs from a direct {CHECK_STEPS}-step run by {gap}")
            for steps, (deletion, insertion) in coarse.items():
                errors[steps].extend(np.abs(deletion - reference.deletion_auc).tolist())
                errors[steps].extend(np.abs(insertion - reference.insertion_auc).tolist())
        by_temperature[temperature] = (errors, min(curves_range))
        print(f"temperature {temperature}: " + ", ".join(f"{s}: {max(v):.4f}" for s, v in errors.items()), flush=True)
    rows = []
    for steps in CANDIDATES:
        worst = {t: max(errors[steps]) for t, (errors, _) in by_temperature.items()}
        pooled = [value for errors, _ in by_temperature.values() for value in errors[steps]]
        rows.append(
            {
                "steps": steps,
                "pixels_per_step": -(-224 * 224 // steps),
                "max_abs_error": max(worst.values()),
                "worst_temperature": max(worst, key=worst.get),
                "mean_abs_error": float(np.mean(pooled)),
                "max_abs_error_by_temperature": {str(t): e for t, e in worst.items()},
                "n_curves": len(pooled),
            }
        )
    temperatures = " ".join(f"{t:g}" for t in args.temperatures)
    result = {
        "command": f"PYTHONPATH=$PWD python bench/bench_step_error.py --images {args.images} "
        f"--temperatures {temperatures} --tolerance {args.tolerance} --write",
        "model": "xai.testing.PlantedEvidenceNet box (56, 56, 168, 168) at 224x224, logits / temperature",
        "temperatures": list(args.temperatures),
        "selection_rule": "coarsest step count such that it and every finer candidate have worst-case max error "
        "(over images, maps, deletion/insertion and temperatures) within the tolerance",
        "images": [path.name for path in paths],
        "maps": ["gradcam", "smooth random", "centre prior"],
        "reference_steps": REFERENCE_STEPS,
        "tolerance": args.tolerance,
        "smallest_curve_range": min(r for _, r in by_temperature.values()),
        "rows": rows,
        "coarsest_within_tolerance": coarsest_with_finer_passing(rows, args.tolerance),
    }
    print(json.dumps(result, indent=1))
    if args.write:
        OUTPUT.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
