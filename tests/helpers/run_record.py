"""A fixed run record (what :func:`xai.pipeline.run_record` returns) for rendering tests and golden pages."""

from __future__ import annotations

RUN = {
    "config_name": "golden",
    "config_file": "configs/golden.yaml (the copy shipped with xai-report)",
    "config_yaml": "name: golden\nseed: 0\n",
    "config": {
        "explain": {"methods": ["lime", "gradcam"], "lime": {"num_samples": 1000}},
        "compare": {"top_k": [5, 10]},
        "dissect": {"similarity": "soft_wpmi", "layers": ["fc"]},
    },
    "weights": "random",
    "random_weights": True,
    "seed": 0,
    "device": "cpu",
    "versions": {"python": "3.11.7", "torch": "2.14.1"},
    "weights_ids": {"resnet50": "random(seed=0)"},
    "timings": {"explain": 1.25, "total": 75.0},
    "images": [{"name": "n01443537_goldfish", "sha256": "61ff9f1e"}],
    "skipped": [{"path": "bad|name.jpg", "reason": "bad|name.jpg: empty file; replace it"}],
    "cache": {"hits": 3, "misses": 4},
    "stages": ["explain"],
}


def run_plan(run: dict | None = None):  # -> xai.plan.RunPlan
    """The run plan of a run record's config: what a page builder reads besides the record and the artifacts."""
    from xai.config import validate
    from xai.plan import make_plan

    run = RUN if run is None else run
    return make_plan(validate({**run["config"], "weights": run["weights"], "seed": run["seed"]}))
