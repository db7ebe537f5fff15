"""The README's "Extending" recipe, followed by a user: a CAM written in the user's own module plus one registry
entry reaches the command line, the config, the cache, the explanation tabs, the methods table and the comparison,
with no other file touched."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from xai.cli import main
from xai.explain.registry import METHODS, MethodInfo

TOY_MODULE = '''
"""A user's CAM: the target layer's channels averaged with equal weights (no class, no gradient)."""
import numpy as np

from xai.explain.cams._core import RawCam, capture_activation, finalize_cam


def mean_cam(model, input_tensor, target_layer, target_class, batch_size=None):
    activations, _ = capture_activation(model, input_tensor, target_layer)
    channels = activations.shape[1]
    weights = np.full((1, channels), 1.0 / channels, dtype=np.float32)
    return RawCam(finalize_cam(weights, activations.float().cpu().numpy(), tuple(input_tensor.shape[-2:])), 1)
'''

TOY_METHOD = MethodInfo(
    name="meancam",
    title="Mean-CAM",
    family="cam",
    paper="(a toy method of the Extending test)",
    needs_gradients=False,
    required=False,
    cost="1 forward pass",
    summary="Channels of the target layer averaged with equal weights.",
    implementation="toy_cams:mean_cam",
)


@pytest.fixture
def toy_method(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MethodInfo:
    """Step 1: the implementation in a module of the user's own; step 2: one registry entry."""
    package = tmp_path / "user_code"
    package.mkdir()
    (package / "toy_cams.py").write_text(textwrap.dedent(TOY_MODULE))
    monkeypatch.syspath_prepend(str(package))
    monkeypatch.setitem(METHODS, TOY_METHOD.name, TOY_METHOD)
    return TOY_METHOD


def _run(tmp_path: Path, methods: list[str]) -> int:
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (96, 112, 3), dtype=np.uint8)).save(images / "photo.png")
    config = {
        "name": "extending",
        "weights": "random",
        "stages": ["explain", "compare"],
        "output_dir": str(tmp_path / "docs"),
        "cache_dir": str(tmp_path / "cache"),
        "explain": {
            "methods": methods,
            "batch_size": 16,
            "lime": {"num_samples": 10, "stability_seeds": 1},
        },
        "compare": {"faithfulness_steps": 4, "random_draws": 1, "null_draws": 100, "sanity_check": False},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return main(["--config", str(path), "--images", str(images), "--quiet"])


@pytest.mark.slow
def test_a_registered_toy_cam_reaches_every_part_of_the_site(
    toy_method: MethodInfo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "meancam" in capsys.readouterr().out  # the command line lists it

    assert _run(tmp_path, ["lime", "gradcam", "meancam"]) == 0
    docs = tmp_path / "docs"
    image_page = (docs / "explanations" / "image-photo.md").read_text()
    assert '=== "Mean-CAM"' in image_page  # a tab of its own
    assert "Mean-CAM" in (docs / "explanations" / "index.md").read_text()
    methods_page = (docs / "methods.md").read_text()
    assert "Mean-CAM" in methods_page and toy_method.summary in methods_page  # the docs table
    comparison = (docs / "comparison" / "index.md").read_text()
    assert "- Mean-CAM: IoU " in comparison and "with LIME&#39;s top-" in comparison  # compared with LIME like any CAM
    tables = {path.name: path.read_text() for path in (docs / "assets" / "comparison").glob("*.csv")}
    assert any("meancam" in text for text in tables.values()), sorted(tables)
    assert "meancam" in (docs / "index.md").read_text()  # the home page's run record lists the config


def test_a_registered_toy_cam_is_in_the_default_config_and_the_plan(
    toy_method: MethodInfo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No method list written: the default config and the sanity check take every registered method, and the plan
    counts its forward passes and names it."""
    from xai.config import validate
    from xai.plan import make_plan

    config = validate({"weights": "random", "stages": ["explain", "compare"]})
    assert config.explain.methods[-1] == "meancam" and "meancam" in config.compare.sanity_methods
    without = validate({"weights": "random", "stages": ["explain"], "explain": {"methods": ["lime", "gradcam"]}})
    with_toy = validate(
        {"weights": "random", "stages": ["explain"], "explain": {"methods": ["lime", "gradcam", "meancam"]}}
    )
    assert (
        make_plan(with_toy).explain.forward_passes_per_image == make_plan(without).explain.forward_passes_per_image + 1
    )
    assert "meancam" in make_plan(config).compare.sanity_methods
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"weights": "random", "stages": ["explain"]}))
    assert main(["--config", str(path), "--plan", "--quiet"]) == 0
    assert "meancam" in next(line for line in capsys.readouterr().out.splitlines() if "explain:" in line)


def test_an_unregistered_method_is_one_config_line_naming_the_registry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without step 2 the same config is refused in one line that lists what is registered."""
    assert _run(tmp_path, ["lime", "gradcam", "meancam"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "meancam" in error[0] and "gradcam" in error[0]


def test_a_registered_probe_set_is_accepted_and_listed_by_the_dissect_stage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's probe-set recipe: one ``ProbeSet`` entry; the config's preflight and the stage both take it."""
    from xai import pipeline
    from xai.config import ConfigError, validate
    from xai.dissect.probes import PROBE_SETS, ProbeSet
    from xai.plan import make_plan
    from xai.stages.dissect import probe_inputs

    root = tmp_path / "toy-probe"
    for label in ("cats", "dogs"):
        (root / label).mkdir(parents=True)
        for index in range(3):
            Image.new("RGB", (64, 64), (index * 40, 0, 0)).save(root / label / f"{index}.png")
    images = sorted(root.rglob("*.png"))
    monkeypatch.setitem(PROBE_SETS, "toyset", ProbeSet(lambda quiet: images, lambda: root))
    config = validate(
        {
            "stages": ["dissect"],
            "output_dir": str(tmp_path / "docs"),
            "cache_dir": str(tmp_path / "cache"),
            "dissect": {"probe": "toyset", "concepts": "broden_labels"},
        }
    )
    plan = make_plan(config)
    pipeline.preflight(plan)
    probe = probe_inputs(plan.dissect, plan.seed)
    assert probe.paths == images and probe.ids[0].startswith("cats/") and len(set(probe.ids)) == len(probe.ids) == 6

    unknown = validate({**config.model_dump(mode="json"), "dissect": {"probe": "toyst", "concepts": "broden_labels"}})
    with pytest.raises(ConfigError, match="'toyset'"):
        pipeline.preflight(make_plan(unknown))
