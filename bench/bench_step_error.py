"""Deletion/insertion resolution: AUC error of coarser step counts against the RISE reference (224 steps).

The RISE reference moves 224 pixels per step at 224x224 (224 steps, 225 points per curve). A coarser plan
integrates the same curve with fewer trapezoids; this measures ``|AUC(steps) − AUC(224)|`` for deletion and
insertion on a few real ImageNet sample images and several maps, and names the coarsest step count whose
**maximum** error stays within ``--tolerance`` (0.005).

Model: the planted-evidence network of ``xai.testing`` at 224x224 (it reads only a central box; logits
divided by a temperature so the softmax is not saturated). A random-weight ResNet50 would not do: its softmax
is nearly flat, so every curve is flat and every step count looks exact. The discretisation error depends on
how fast the curve moves, which the planted model makes it do; it is a measurement of the integration error,
not of any real model's faithfulness. Maps: the planted model's Grad-CAM, a smooth random map and the centre
prior.

Writes ``xai/compare/step_error.json`` (read by the methods page) when ``--write`` is given.
Usage: ``PYTHONPATH=$PWD python bench/bench_step_error.py --images 4 --write``
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from xai.compare.faithfulness import faithfulness_image, random_map
from xai.compare.nulls import centre_prior_map
from xai.data import imagenet_sample_paths, load_image
from xai.explain.cams.base import compute_cam
from xai.models import to_input
from xai.testing import PlantedEvidenceNet

OUTPUT = Path(__file__).resolve().parents[1] / "xai" / "compare" / "step_error.json"
REFERENCE_STEPS = 224
CANDIDATES = (8, 14, 16, 28, 32, 56, 112)


class Tempered(torch.nn.Module):
    def __init__(self, model: torch.nn.Module, temperature: float) -> None:
        super().__init__()
        self.model, self.temperature = model, temperature

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) / self.temperature


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--temperature", type=float, default=300.0)
    parser.add_argument("--tolerance", type=float, default=0.005)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    torch.manual_seed(0)
    planted = PlantedEvidenceNet((56, 56, 168, 168), image_size=224, num_classes=10, seed=0)
    model = Tempered(planted, args.temperature).eval()
    paths = imagenet_sample_paths()[::250][: args.images]  # spread over the classes
    errors = {steps: [] for steps in CANDIDATES}
    curves_range = []
    for path in paths:
        image = load_image(path)
        tensor = to_input(image[None])
        with torch.inference_mode():
            target = int(model(tensor).argmax())
        maps = {"gradcam": compute_cam(model, tensor, "gradcam", planted.layer4[-1], target).map,
                "smooth random": random_map((224, 224), 1),
                "centre prior": centre_prior_map((224, 224))}
        run = {steps: faithfulness_image(model, to_input, image, maps, target, steps=steps, batch_size=64,
                                         include_random=False, include_centre=False, image_id=path.stem)
               for steps in (REFERENCE_STEPS, *CANDIDATES)}
        reference = run[REFERENCE_STEPS]
        curves_range.append(float(np.ptp(np.concatenate([reference.deletion, reference.insertion]))))
        for steps in CANDIDATES:
            errors[steps].extend(np.abs(run[steps].deletion_auc - reference.deletion_auc).tolist())
            errors[steps].extend(np.abs(run[steps].insertion_auc - reference.insertion_auc).tolist())
    rows = [{"steps": steps, "pixels_per_step": -(-224 * 224 // steps), "max_abs_error": max(values),
             "mean_abs_error": float(np.mean(values)), "n_curves": len(values)}
            for steps, values in errors.items()]
    within = [row["steps"] for row in rows if row["max_abs_error"] <= args.tolerance]
    result = {
        "command": f"PYTHONPATH=$PWD python bench/bench_step_error.py --images {args.images} "
                   f"--temperature {args.temperature} --tolerance {args.tolerance} --write",
        "model": f"xai.testing.PlantedEvidenceNet box (56, 56, 168, 168) at 224x224, logits / {args.temperature}",
        "images": [path.name for path in paths], "maps": ["gradcam", "smooth random", "centre prior"],
        "reference_steps": REFERENCE_STEPS, "tolerance": args.tolerance,
        "smallest_curve_range": min(curves_range), "rows": rows,
        "coarsest_within_tolerance": min(within) if within else None,
    }
    print(json.dumps(result, indent=1))
    if args.write:
        OUTPUT.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
