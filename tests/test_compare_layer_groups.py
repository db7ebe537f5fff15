"""The sanity check's cascade for any classifier: head, the trunk's stages last to first, the stem."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torchvision

from xai.classifiers import architecture, resolve_weights
from xai.compare.layer_groups import PARAMETER_INITS, layer_groups
from xai.compare.sanity import randomise_modules, sanity_check

RESNET = (("fc",), ("layer4",), ("layer3",), ("layer2",), ("layer1",), ("conv1", "bn1"))
"""The cascade the check ran on ResNet50 before it knew other architectures (the default run's)."""

EXPECTED = {
    "resnet50": RESNET,
    "mobilenet_v3_small": (
        ("classifier",),
        ("features.9", "features.10", "features.11", "features.12"),  # 7x7
        ("features.4", "features.5", "features.6", "features.7", "features.8"),  # 14x14
        ("features.2", "features.3"),  # 28x28
        ("features.1",),  # 56x56
        ("features.0",),  # 112x112 stem
    ),
    "efficientnet_b0": (
        ("classifier",),
        ("features.6", "features.7", "features.8"),
        ("features.4", "features.5"),
        ("features.3",),
        ("features.2",),
        ("features.0", "features.1"),
    ),
    "convnext_tiny": (  # each downsampling layer joins the stage it feeds
        ("classifier",),
        ("features.6", "features.7"),
        ("features.4", "features.5"),
        ("features.2", "features.3"),
        ("features.0", "features.1"),
    ),
    "vit_b_16": (
        ("encoder.ln", "heads"),
        *((f"encoder.layers.encoder_layer_{i}",) for i in range(11, -1, -1)),
        ("conv_proj", "class_token", "encoder.pos_embedding"),
    ),
    "swin_t": (
        ("norm", "head"),
        ("features.6", "features.7"),
        ("features.4", "features.5"),
        ("features.2", "features.3"),
        ("features.0", "features.1"),
    ),
    # No family knows SqueezeNet: the trunk is the child with the most resolutions (features).
    "squeezenet1_0": (
        ("classifier",),
        ("features.12",),
        ("features.7", "features.8", "features.9", "features.10"),
        ("features.3", "features.4", "features.5"),
        ("features.0",),
    ),
}


def _perturbed(model: torch.nn.Module, seed: int = 1) -> torch.nn.Module:
    """Stand-in for trained weights: every parameter moved off its initial value (zeros, ones, 1e-6 included)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn(parameter.shape, generator=generator) + 0.05)
    return model


def _parameters_of(model: torch.nn.Module, group: tuple[str, ...]) -> set[str]:
    names = set()
    for path in group:
        try:
            module = model.get_submodule(path)
        except AttributeError:
            names.add(path)
            continue
        names.update(f"{path}.{name}" for name, _ in module.named_parameters())
    return names


@pytest.mark.parametrize("name", list(EXPECTED))
def test_cascade_follows_the_architecture_and_covers_every_parameter_once(name: str) -> None:
    model = architecture(name, resolve_weights(name)).eval()  # the module the published weights load into
    groups = layer_groups(model)
    assert groups == EXPECTED[name]
    owned = [_parameters_of(model, group) for group in groups]
    assert sum(len(names) for names in owned) == len(set().union(*owned))  # no parameter in two groups
    assert set().union(*owned) == {n for n, _ in model.named_parameters()}

    # Every parameter is re-initialised by its group (none skipped, none unknown), away from its trained value.
    trained = _perturbed(model)
    before = {n: p.detach().clone() for n, p in trained.named_parameters()}
    for step, group in enumerate(groups):
        randomise_modules(trained, group, seed=step)
    unchanged = [n for n, p in trained.named_parameters() if torch.equal(p, before[n])]
    assert not unchanged


def test_vit_tokens_and_parameters_outside_modules_get_torchvisions_initialisation() -> None:
    vit = _perturbed(tiny_vit())
    randomise_modules(vit, ["class_token", "encoder.pos_embedding"], seed=0)
    assert not vit.class_token.detach().any()  # zeros, as VisionTransformer.__init__
    assert abs(float(vit.encoder.pos_embedding.detach().std()) - 0.02) < 0.01
    assert set(PARAMETER_INITS) >= {"class_token", "pos_embedding", "layer_scale", "relative_position_bias_table"}

    class Odd(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = torch.nn.Parameter(torch.ones(3))

    with pytest.raises(ValueError, match="'scale' has no reset_parameters and no known initialisation"):
        randomise_modules(Odd(), ["scale"], seed=0)


def tiny_vit(num_classes: int = 5) -> torch.nn.Module:
    torch.manual_seed(0)
    return torchvision.models.VisionTransformer(
        image_size=32, patch_size=8, num_layers=3, num_heads=2, hidden_dim=16, mlp_dim=32, num_classes=num_classes
    ).eval()


def tiny_mobilenet(num_classes: int = 5) -> torch.nn.Module:
    torch.manual_seed(0)
    return torchvision.models.mobilenet_v3_small(num_classes=num_classes, width_mult=0.25).eval()


@pytest.mark.parametrize("build", [tiny_mobilenet, tiny_vit], ids=["mobilenet", "vit"])
def test_sanity_check_randomises_a_non_resnet_in_the_derived_order(build) -> None:
    """At step i exactly the first i + 1 groups differ from the trained model: output end first, cumulative."""
    model = _perturbed(build())
    groups = layer_groups(model)
    assert len(groups) >= 4
    owned = [_parameters_of(model, group) for group in groups]
    trained = {n: p.detach().clone() for n, p in model.named_parameters()}
    size = getattr(model, "image_size", 64)
    image = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    changed_per_call: list[tuple[int, ...]] = []

    def explain(working: torch.nn.Module) -> dict[str, np.ndarray]:
        differs = {n for n, p in working.named_parameters() if not torch.equal(p, trained[n])}
        changed_per_call.append(tuple(i for i, names in enumerate(owned) if names & differs))
        assert all(names <= differs for names in owned if names & differs)  # a group changes as a whole
        pixels = image.clone().requires_grad_(True)
        working(pixels)[0, 0].backward()
        saliency = pixels.grad.abs().sum(dim=1)[0].numpy()
        return {"gradient": (saliency - saliency.min()) / np.ptp(saliency)}

    result = sanity_check(model, explain, seed=0)
    assert result.steps == tuple("+".join(group) for group in groups)
    assert changed_per_call == [tuple(range(step)) for step in range(len(groups) + 1)]
    assert all(torch.equal(p, trained[n]) for n, p in model.named_parameters())  # the caller's model untouched
    assert np.isfinite(result.spearman).any()


def test_explicit_groups_still_win() -> None:
    model = _perturbed(tiny_mobilenet())
    calls = []
    result = sanity_check(model, lambda m: calls.append(1) or {"m": np.eye(8)}, [("classifier",)], seed=0)
    assert result.steps == ("classifier",) and len(calls) == 2
    assert layer_groups(copy.deepcopy(model)) == layer_groups(model)  # derived without touching the model


@pytest.mark.parametrize(
    ("model", "weights", "size", "grid"),
    [
        ("resnet50", "DEFAULT", 224, (7, 7)),  # layer4[-1]: H/32, the default run's grid
        ("vit_b_16", "DEFAULT", 224, (14, 14)),  # 16 px patches
        ("vit_b_16", "IMAGENET1K_SWAG_E2E_V1", 384, (24, 24)),  # SWAG weights: 384 px
        ("swin_t", "DEFAULT", 224, (7, 7)),  # channels-last map
    ],
)
def test_random_baselines_are_drawn_on_the_cams_own_grid(model: str, weights: str, size: int, grid) -> None:
    from xai.compare.faithfulness import faithfulness_image, random_map
    from xai.config import Config
    from xai.plan import make_plan

    config = Config.model_validate({"explain": {"model": model, "model_weights": weights, "target_layer": "auto"}})
    planned = make_plan(config, ["explain"]).explain
    assert planned is not None and planned.image_loading.crop == size and planned.cam_grid == grid

    # faithfulness_image's random baseline is the draw on the grid it is given: same curve as that map passed in
    image = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()).eval()

    def curve(maps: dict[str, np.ndarray], **options) -> np.ndarray:
        to_input = lambda x: torch.as_tensor(x).permute(0, 3, 1, 2).float() / 255  # noqa: E731
        found = faithfulness_image(net, to_input, image, maps, 0, steps=8, include_centre=False, seed=2, **options)
        return found.deletion[0]

    cells = (3, 5)
    drawn = curve({}, random_draws=1, random_cells=cells)
    np.testing.assert_array_equal(drawn, curve({"m": random_map((64, 64), 2000, cells)}, include_random=False))
    assert not np.array_equal(drawn, curve({}, random_draws=1))  # the default grid (H/32 = 2x2) differs


def test_the_stage_sanity_maps_of_a_vit_use_the_target_layers_reshape() -> None:
    """The compare stage's explain_fn on a ViT: Grad-CAM on the last block's norm, tokens folded to a 4x4 grid."""
    from xai.architectures import auto_target_layer
    from xai.compare.sanity import sanity_explain_fn
    from xai.explain.lime_image import LimeParams

    model = _perturbed(tiny_vit())
    target = auto_target_layer(model)
    assert target.reshape == "vit_tokens_to_map"
    pixels = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    segments = (np.indices((32, 32)).sum(axis=0) // 8).astype(np.int32)
    explain = sanity_explain_fn(
        [(pixels, segments, 1)], ["gradcam"], target=target, lime_params=LimeParams(), seed=0, batch_size=4
    )
    result = sanity_check(model, explain, seed=0)
    assert result.steps[0] == "encoder.ln+heads" and result.steps[-1] == "conv_proj+class_token+encoder.pos_embedding"
    assert result.methods[0] == "gradcam" and result.spearman.shape == (2, len(result.steps), 1)
    assert np.isfinite(result.spearman[0, 0, 0])  # a real map on the trained model and after the head's reset


def test_the_plan_line_counts_the_architectures_model_states() -> None:
    from types import SimpleNamespace

    from xai.config import Config
    from xai.plan import make_plan
    from xai.stages.compare import describe

    def plan(model: str, weights: str = "pretrained") -> str:

        config = Config.model_validate({"weights": weights, "explain": {"model": model, "target_layer": "auto"}})
        return describe(SimpleNamespace(plan=make_plan(config, ["compare"])))

    assert "x 7 model states (resnet50 randomised from fc down to conv1+bn1)" in plan("resnet50")
    assert "x 6 model states (convnext_tiny randomised from classifier down to features.0+features.1)" in plan(
        "convnext_tiny"
    )
    assert "sanity check skipped (random weights)" in plan("convnext_tiny", "random")
