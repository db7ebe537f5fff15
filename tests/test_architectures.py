"""Target layers, reshape transforms, dissection layers and pooling per architecture family, with seeded random
weights at the real input size, checked against pytorch-grad-cam's own conventions."""

from __future__ import annotations

import itertools
from functools import cache

import numpy as np
import pytest
import torch
import torchvision
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.reshape_transforms import swinT_reshape_transform, vit_reshape_transform
from torch import nn

from xai.architectures import (
    FAMILIES,
    RESHAPES,
    TargetLayer,
    auto_dissect_layers,
    auto_target_layer,
    channels_last_path,
    channels_last_to_map,
    pool_activation,
    reshape_transform,
    resolve_layer,
    vit_tokens_to_map,
)
from xai.classifiers import ClassifierSpec, ModelChoiceError, build_classifier


@cache
def built(name: str) -> nn.Module:
    """Each architecture built once per session, seeded random weights, eval mode."""
    return build_classifier(ClassifierSpec(name), "random", seed=0, weights_dir=None).module


def _image() -> torch.Tensor:
    return torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(3))


# name -> (auto target path, reshape, (C, h, w) of the CAM activation at 224 px)
EXPECTED = {
    "resnet50": ("layer4[-1]", None, (2048, 7, 7)),
    "mobilenet_v3_small": ("features[-1]", None, (576, 7, 7)),
    "efficientnet_b0": ("features[-1]", None, (1280, 7, 7)),
    "densenet121": ("features[-1]", None, (1024, 7, 7)),
    "vgg11": ("features[-1]", None, (512, 7, 7)),
    "convnext_tiny": ("features[-1][-1]", None, (768, 7, 7)),
    "regnet_y_400mf": ("trunk_output[-1]", None, (440, 7, 7)),
    "vit_b_16": ("encoder.layers[-1].ln_1", "vit_tokens_to_map", (768, 14, 14)),
    "swin_t": ("features[-1][-1].norm1", "channels_last_to_map", (768, 7, 7)),
}
SLOW = {"vgg11", "vit_b_16", "convnext_tiny", "swin_t", "densenet121"}


@pytest.mark.parametrize(
    "name", [pytest.param(name, marks=pytest.mark.slow) if name in SLOW else name for name in EXPECTED]
)
def test_auto_target_layer_gives_a_gradcam_map_at_224(name: str) -> None:
    model = built(name)
    path, reshape, activation_shape = EXPECTED[name]
    target = auto_target_layer(model)
    assert (target.path, target.reshape) == (path, reshape) and target.reason
    layer = resolve_layer(model, target.path)
    transform = reshape_transform(target.reshape)
    seen: list[tuple[int, ...]] = []
    handle = layer.register_forward_hook(
        lambda _m, _i, out: seen.append(tuple((transform(out) if transform else out).shape[1:]))
    )
    with GradCAM(model=model, target_layers=[layer], reshape_transform=transform) as cam:
        grayscale = cam(input_tensor=_image(), targets=None)  # the top-1 class, as the pipeline explains
    handle.remove()
    assert seen[0] == activation_shape
    assert grayscale.shape == (1, 224, 224) and np.isfinite(grayscale).all()
    assert grayscale.std() > 1e-3  # not a constant map


def test_resnet50_default_layer_is_exactly_layer4_last_block() -> None:
    model = built("resnet50")
    assert auto_target_layer(model) == TargetLayer(
        "layer4[-1]", "last residual block of the last stage (grad-cam's choice for ResNets)"
    )
    assert resolve_layer(model, "layer4[-1]") is model.layer4[2]


def test_vit_reshape_equals_grad_cam_and_follows_torchvision_token_order() -> None:
    tokens = torch.randn(2, 197, 768)
    assert torch.equal(vit_tokens_to_map(tokens), vit_reshape_transform(tokens))
    # Known answer: torchvision's encoder input is [class token, patches row by row]; folding it back must give
    # the patch-embedding convolution's own (D, h, w) map.
    model = built("vit_b_16")
    image = _image()
    with torch.no_grad():
        patches = model._process_input(image)
        sequence = torch.cat([model.class_token.expand(1, -1, -1), patches], dim=1)
        assert torch.equal(vit_tokens_to_map(sequence), model.conv_proj(image))
    with pytest.raises(ValueError, match="square grid"):
        vit_tokens_to_map(torch.randn(1, 1 + 14 * 13, 8))


def test_vit_reshape_infers_grid_of_larger_images() -> None:
    tokens = torch.randn(1, 1 + 24 * 24, 16)  # vit_b_16 SWAG E2E: 384 px
    assert torch.equal(vit_tokens_to_map(tokens), vit_reshape_transform(tokens, 24, 24))


def test_swin_reshape_equals_grad_cam_on_timm_layout() -> None:
    maps = torch.randn(2, 7, 7, 768)  # torchvision: (N, H, W, C); timm/grad-cam: (N, H*W, C)
    assert torch.equal(channels_last_to_map(maps), swinT_reshape_transform(maps.reshape(2, 49, 768)))
    model = built("swin_t")
    with torch.no_grad():
        embedded = model.features[0][1](model.features[0][0](_image()))  # Conv2d then Permute to channels-last
        assert torch.equal(channels_last_to_map(embedded), model.features[0][0](_image()))
    assert channels_last_path(model, "features.7") and channels_last_path(model, "norm")
    assert not channels_last_path(model, "head") and not channels_last_path(built("resnet50"), "layer4")


def test_reshapes_are_named_module_level_functions() -> None:
    import pickle

    for name, function in RESHAPES.items():
        assert function.__name__ == name and pickle.loads(pickle.dumps(function)) is function
    for entry in FAMILIES:
        assert entry.target is None or entry.target.reshape in (None, *RESHAPES)


def test_fallback_is_the_last_spatial_module() -> None:
    torch.manual_seed(0)
    tiny = nn.Sequential(
        nn.Conv2d(3, 4, 3, stride=2),
        nn.ReLU(),
        nn.Conv2d(4, 6, 3, stride=2),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(6, 2),
    )
    target = auto_target_layer(tiny)
    assert target.path == "3" and target.reshape is None and "forward pass" in target.reason
    assert auto_target_layer(built_small("googlenet")).path == "inception5b"
    assert auto_target_layer(built_small("inception_v3")).path == "Mixed_7c"
    assert auto_target_layer(built_small("shufflenet_v2_x0_5")).path == "conv5"
    with pytest.raises(ModelChoiceError, match="no module of Sequential outputs a spatial map"):
        auto_target_layer(nn.Sequential(nn.Flatten(), nn.Linear(3 * 224 * 224, 2)))


@cache
def built_small(name: str) -> nn.Module:
    return built(name)


def test_resolve_layer_keeps_the_existing_syntax() -> None:
    model = built("resnet50")
    assert resolve_layer(model, "layer4[-1]") is model.layer4[-1]
    assert resolve_layer(model, "layer4.2") is model.layer4[2]
    assert resolve_layer(model, "layer3") is model.layer3
    assert resolve_layer(model, "layer4[0].conv1") is model.layer4[0].conv1
    vit = built("vit_b_16")
    assert resolve_layer(vit, "encoder.layers[-1].ln_1") is vit.encoder.layers[11].ln_1
    assert resolve_layer(vit, "encoder.layers.encoder_layer_11") is vit.encoder.layers[11]
    swin = built("swin_t")
    assert resolve_layer(swin, "features[-1][-1].norm1") is swin.features[7][1].norm1


@pytest.mark.parametrize("spec", ["layer5", "layer4[7]", "layer4[-1].conv9", "fc.weight"])
def test_unknown_layer_lists_close_and_top_level_paths(spec: str) -> None:
    with pytest.raises(ModelChoiceError) as raised:
        resolve_layer(built("resnet50"), spec)
    message = str(raised.value)
    assert isinstance(raised.value, ValueError) and "\n" not in message
    assert message.startswith(f"explain.target_layer: {spec!r} does not name a module of ResNet")
    assert message.endswith(
        "; top-level: conv1, bn1, relu, maxpool, layer1, layer2, layer3, layer4, avgpool, fc (index with [-1] or .2)"
    )
    details = {
        "layer5": "; close: layer4, layer3, layer2, layer1, layer3.5;",
        "layer4[7]": "; layer4 holds: 0, 1, 2; close: layer4, ",
        "layer4[-1].conv9": "; layer4[-1] holds: conv1, bn1, conv2, bn2, conv3, bn3, relu; close: ",
        "fc.weight": "; fc holds: no sub-modules; top-level:",
    }
    assert details[spec] in message


def test_dissect_layers_resnet18_and_vit() -> None:
    resnet18 = build_classifier(ClassifierSpec("resnet18"), "random", seed=0, weights_dir=None).module
    assert auto_dissect_layers(resnet18) == ("layer2", "layer3", "layer4", "fc")
    vit = built("vit_b_16")
    assert auto_dissect_layers(vit) == (
        "encoder.layers.encoder_layer_9",
        "encoder.layers.encoder_layer_10",
        "encoder.layers.encoder_layer_11",
        "heads",
    )


@pytest.mark.parametrize(
    ("name", "layers"),
    [
        ("mobilenet_v3_small", ("features.3", "features.8", "features.12", "classifier")),
        ("efficientnet_b0", ("features.3", "features.5", "features.8", "classifier")),
        ("regnet_y_400mf", ("trunk_output.block2", "trunk_output.block3", "trunk_output.block4", "fc")),
        pytest.param("convnext_tiny", ("features.3", "features.5", "features.7", "classifier"), marks=pytest.mark.slow),
        pytest.param("swin_t", ("features.3", "features.5", "features.7", "head"), marks=pytest.mark.slow),
        pytest.param(
            "densenet121",
            ("features.denseblock2", "features.denseblock3", "features.norm5", "classifier"),
            marks=pytest.mark.slow,
        ),
    ],
)
def test_dissect_layers_are_stage_ends_and_the_logits_module(name: str, layers: tuple[str, ...]) -> None:
    model = built(name)
    found = auto_dissect_layers(model)
    assert found == layers
    modules = dict(model.named_modules())
    assert all(path in modules for path in found)
    # each stage end has a coarser (or equal) map than the one before, and the last module gives the logits
    outputs: dict[str, torch.Tensor] = {}
    handles = [
        modules[path].register_forward_hook(lambda _m, _i, out, path=path: outputs.__setitem__(path, out))
        for path in found
    ]
    with torch.no_grad():
        logits = model(_image())
    for handle in handles:
        handle.remove()
    sizes = [
        outputs[path].shape[1:3] if channels_last_path(model, path) else outputs[path].shape[2:] for path in found[:-1]
    ]
    assert all(a[0] > b[0] for a, b in itertools.pairwise(sizes))
    assert torch.equal(pool_activation(outputs[found[-1]]), logits)


def test_pool_activation_layouts() -> None:
    maps = torch.randn(2, 5, 3, 4)
    assert torch.equal(pool_activation(maps, "mean"), maps.mean(dim=(2, 3)))
    assert torch.equal(pool_activation(maps, "max"), maps.amax(dim=(2, 3)))
    channels_last = maps.permute(0, 2, 3, 1).contiguous()
    assert torch.allclose(pool_activation(channels_last, "mean", channels_last=True), maps.mean(dim=(2, 3)))
    assert torch.equal(pool_activation(channels_last, "max", channels_last=True), maps.amax(dim=(2, 3)))
    tokens = torch.randn(2, 197, 8)
    assert torch.equal(pool_activation(tokens), tokens.mean(dim=1))  # all tokens, class token included
    assert not torch.equal(pool_activation(tokens), tokens[:, 0])  # not CLIP-Dissect's class token
    vector = torch.randn(2, 7)
    assert pool_activation(vector) is vector
    with pytest.raises(ValueError, match="pool must be one of"):
        pool_activation(maps, "avg")
    with pytest.raises(ValueError, match="cannot pool a 5-D"):
        pool_activation(torch.zeros(1, 1, 1, 1, 1))


def test_every_family_class_exists_in_torchvision() -> None:
    for entry in FAMILIES:
        for name in entry.classes:
            assert isinstance(getattr(torchvision.models, name), type), name


def _tiny_transformers() -> list[nn.Module]:
    from torchvision.models import SwinTransformer, VisionTransformer

    from xai.classifiers import redraw_zero_layers

    torch.manual_seed(0)
    vit = VisionTransformer(
        image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32, num_classes=5
    )
    redraw_zero_layers(vit)
    swin = SwinTransformer(
        patch_size=[4, 4], embed_dim=16, depths=[1, 1], num_heads=[2, 2], window_size=[2, 2], num_classes=5
    )
    return [vit.eval(), swin.eval()]


@pytest.mark.parametrize("index", [0, 1], ids=["vit", "swin"])
def test_ablation_cam_runs_with_the_named_ablation_layer(index: int) -> None:
    """grad-cam's default AblationLayer indexes dim 1 and fails on tokens / channels-last maps (its ``with`` block
    swallows the error): the named layer must be passed. The CAM is called without ``with`` so errors surface."""
    from pytorch_grad_cam import AblationCAM

    from xai.architectures import ablation_layer_for

    model = _tiny_transformers()[index]
    target = auto_target_layer(model)
    assert target.ablation_layer == "AblationLayerVit"
    image = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    layer = resolve_layer(model, target.path)
    cam = AblationCAM(
        model=model,
        target_layers=[layer],
        reshape_transform=reshape_transform(target.reshape),
        ablation_layer=ablation_layer_for(target.reshape),
    )
    grayscale = cam(input_tensor=image, targets=None)
    cam.activations_and_grads.release()
    assert grayscale.shape == (1, 32, 32) and grayscale.std() > 1e-3
    default = AblationCAM(model=model, target_layers=[layer], reshape_transform=reshape_transform(target.reshape))
    with pytest.raises(IndexError):
        default(input_tensor=image, targets=None)
    default.activations_and_grads.release()
    assert ablation_layer_for(auto_target_layer(built("resnet50")).reshape).__class__.__name__ == "AblationLayer"


@pytest.mark.slow
def test_vit_gradcam_equals_grad_cam_with_its_own_reshape() -> None:
    """At 224 px (14 x 14 patches) our reshape and grad-cam's vit_reshape_transform give the same CAM."""
    model = built("vit_b_16")
    layer = resolve_layer(model, auto_target_layer(model).path)
    maps = []
    for transform in (vit_tokens_to_map, vit_reshape_transform):
        cam = GradCAM(model=model, target_layers=[layer], reshape_transform=transform)
        maps.append(cam(input_tensor=_image(), targets=None))
        cam.activations_and_grads.release()
    assert maps[0].std() > 1e-3 and np.array_equal(maps[0], maps[1])


@pytest.mark.parametrize(
    ("name", "channels"),
    [
        ("resnet50", 2048),
        ("regnet_y_400mf", 440),  # its builder computes widths with tensor ops: no meta build
        ("densenet121", 1024),
        ("efficientnet_b0", 1280),
        ("mobilenet_v3_small", 576),
        ("convnext_tiny", 768),
        ("vit_b_16", 768),
        ("swin_t", 768),
    ],
)
def test_the_plan_finds_every_family_s_target_without_weights(name: str, channels: int) -> None:
    """What ``--plan`` and the stages' cache keys use: no weights loaded, no traceback for any family."""
    from xai.compare.layer_groups import planned_groups
    from xai.shapes import cam_grid, plan_target

    planned = plan_target(name, "DEFAULT", "auto")
    assert planned.channels == channels
    grid = cam_grid(name, "DEFAULT", planned.target.path, planned.target.reshape, 224, 224)
    assert grid in {(7, 7), (14, 14)}
    assert len(planned_groups(name, "DEFAULT")) >= 3
