"""What a user's classifier is and how it is built: any torchvision classification model, with its published
weights, seeded random weights of the same architecture, or a fine-tuned checkpoint of the user's own.

A :class:`ClassifierSpec` names the architecture (``torchvision.models.list_models(module=torchvision.models)``),
a member of its weights enum, and optionally a checkpoint and a class-name file. :func:`build_classifier` turns it
into an :class:`xai.models.LoadedModel`. The random path builds *exactly* the module the published weights load
into: torchvision's builders pass extra arguments only when weights are given (``num_classes`` from the enum,
``image_size`` for ViT, ``input_size`` for MaxViT, ``transform_input``/``aux_logits``/``init_weights`` for GoogLeNet
and Inception v3, whose auxiliary heads are dropped after loading); :data:`BUILD_RULES` repeats them per builder
module, and the tests check each against the builder itself.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from xai.checkpoints import CheckpointError, checkpoint_state, load_checked, read_classes, read_state
from xai.errors import UserError
from xai.models import (
    WEIGHT_FILES,
    LoadedModel,
    WeightFile,
    WeightsMode,
    fetch_weights,
    file_sha256,
    full_checksum,
    places365_categories,
    to_input,
)


class ModelChoiceError(UserError, ValueError):
    """A model, weights or layer name that does not exist; the message is one line listing what does."""


@dataclass(frozen=True)
class ClassifierSpec:
    """A classifier as a user describes it.

    ``architecture`` is a torchvision model name and ``weights_member`` a member of its weights enum as the user
    wrote it (``DEFAULT`` included): the architecture, categories and preprocessing follow it. ``checkpoint`` is the
    user's own state dict (it replaces the published weights; the architecture still follows ``weights_member``, e.g.
    ViT's image size); ``classes`` is a file with one class name per line, whose line count is the output size.
    ``published`` is a non-torchvision published checkpoint fetched and checksummed like torchvision's (Places365),
    with ``classes_format="places365"`` for its ``/a/airfield 0`` category file. ``model_id`` is the one name the
    model goes by in configs, cache keys, file names and the report (the architecture unless given).
    """

    architecture: str
    weights_member: str = "DEFAULT"
    checkpoint: Path | None = None
    classes: Path | None = None
    published: WeightFile | None = None
    classes_format: Literal["lines", "places365"] = "lines"
    model_id: str = ""

    def __post_init__(self) -> None:
        if not self.model_id:
            object.__setattr__(self, "model_id", self.architecture)


PRESETS: dict[str, ClassifierSpec] = {
    # resnet18-f37072fd.pth: torchvision's IMAGENET1K_V1, the file xai.models.WEIGHT_FILES already names.
    "resnet18_imagenet": ClassifierSpec("resnet18", "IMAGENET1K_V1", model_id="resnet18_imagenet"),
    # The CSAIL Places365 ResNet18 (a DataParallel checkpoint); its ``classes`` path (categories_places365.txt from
    # the data mirror or download) is filled in by the caller with dataclasses.replace.
    "resnet18_places365": ClassifierSpec(
        "resnet18",
        "IMAGENET1K_V1",
        published=WEIGHT_FILES["resnet18_places365"],
        classes_format="places365",
        model_id="resnet18_places365",
    ),
}
resnet18_imagenet = PRESETS["resnet18_imagenet"]
resnet18_places365 = PRESETS["resnet18_places365"]


def model_names() -> list[str]:
    """Every torchvision classification model name (detection, segmentation, video and quantized ones excluded)."""
    import torchvision

    return list(torchvision.models.list_models(module=torchvision.models))


def choice_message(what: str, noun: str, value: str, allowed: list[str]) -> str:
    """``<what>: unknown <noun> 'x'; close: a, b; all: ...`` in one line, close matches first."""
    close = difflib.get_close_matches(value, allowed, n=5, cutoff=0.5)
    parts = [f"{what}: unknown {noun} {value!r}"]
    if close:
        parts.append(f"close: {', '.join(close)}")
    parts.append(f"all: {', '.join(sorted(allowed))}")
    return "; ".join(parts)


def check_model_name(name: str, *, what: str = "explain.model") -> str:
    names = model_names()
    if name not in names:
        raise ModelChoiceError(choice_message(what, "model", name, names))
    return name


def resolve_weights(name: str, weights_name: str = "DEFAULT", *, what: str = "explain.model_weights") -> Any:
    """The weights enum member ``weights_name`` of model ``name`` (``DEFAULT`` is the enum's alias of its best).

    Its ``meta["categories"]`` are the class names, ``transforms()`` the preprocessing, ``url`` the file."""
    import torchvision

    check_model_name(name, what=what.rsplit("_weights", 1)[0] if what.endswith("_weights") else what)
    enum = torchvision.models.get_model_weights(name)
    members = list(enum.__members__)  # includes the DEFAULT alias
    if weights_name not in members:
        raise ModelChoiceError(choice_message(what, f"weights for {name}", weights_name, members))
    return enum[weights_name]


def weight_file(name: str, member: Any) -> WeightFile:
    """The checkpoint of a weights enum member as a :class:`WeightFile`: torchvision's file name is
    ``<stem>-<sha256 prefix>.pth`` and ``torch.hub`` checks the prefix (``HASH_REGEX``); so do we."""
    filename = member.url.rsplit("/", 1)[-1]
    found = torch.hub.HASH_REGEX.search(filename)
    known = f"sha256-prefix:{found.group(1)}" if found and len(found.group(1)) >= 8 else ""
    return WeightFile(f"{name} {member.name}", filename, member.url, known)


@dataclass(frozen=True)
class Preprocessing:
    """The values of a weights member's ``transforms()`` (torchvision's ``ImageClassification``): the shorter side
    resized to ``resize`` with ``interpolation`` (antialiased), the centre ``crop`` square kept, scaled to [0, 1]
    and normalised with ``mean``/``std``. Known without loading any weights."""

    resize: int
    crop: int
    interpolation: str
    """``bilinear`` or ``bicubic`` (a ``torchvision.transforms.InterpolationMode`` value)."""
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def to_input(self, images: Any) -> torch.Tensor:
        """(N, H, W, 3) RGB in 0..255 -> normalised float32 (N, 3, H, W), as :func:`xai.models.to_input`."""
        return to_input(images, mean=self.mean, std=self.std)


def preprocessing(spec: ClassifierSpec) -> Preprocessing:
    """The preprocessing of ``spec``'s weights member (a checkpoint is assumed trained with its architecture's
    member's transform; resnet50 DEFAULT = IMAGENET1K_V2: 232, 224, bilinear, ImageNet mean/std)."""
    transform = resolve_weights(spec.architecture, spec.weights_member).transforms()
    return Preprocessing(
        int(transform.resize_size[0]),
        int(transform.crop_size[0]),
        transform.interpolation.value,
        tuple(float(value) for value in transform.mean),
        tuple(float(value) for value in transform.std),
    )


# ----------------------------------------------------------------------------------------------------------------
# What each torchvision builder does only when it is given weights (read from its source, torchvision 0.2x).


def _num_classes(member: Any) -> dict[str, Any]:
    return {"num_classes": len(member.meta["categories"])}


def _inception_like(member: Any) -> dict[str, Any]:
    # googlenet() / inception_v3(): transform_input=True unless given, aux_logits=True (the file holds the
    # auxiliary heads), init_weights=False; after loading, googlenet drops its heads (see _drop_aux_heads).
    return {"transform_input": True, "aux_logits": True, "init_weights": False, **_num_classes(member)}


def _vit(member: Any) -> dict[str, Any]:
    return {"image_size": member.meta["min_size"][0], **_num_classes(member)}


def _maxvit(member: Any) -> dict[str, Any]:
    return {"input_size": member.meta["min_size"], **_num_classes(member)}


def _drop_aux_heads(model: nn.Module) -> None:
    """What googlenet() does after loading when the caller did not ask for aux_logits."""
    model.aux_logits = False
    model.aux1 = None
    model.aux2 = None


_DENSE_OLD_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$"
)


def _densenet_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """densenet's _load_state_dict: the published files use the old ``norm.1`` keys; the modules are ``norm1``.
    Renamed in place, as torchvision does, so the state's ``_metadata`` (module versions) stays with it."""
    for key in list(state):
        if found := _DENSE_OLD_KEY.match(key):
            state[found.group(1) + found.group(2)] = state.pop(key)
    return state


@dataclass(frozen=True)
class BuildRule:
    """How one torchvision builder module builds the model its published weights load into."""

    kwargs: Callable[[Any], dict[str, Any]] = _num_classes
    rename_keys: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None
    after_load: Callable[[nn.Module], None] | None = None


BUILD_RULES: dict[str, BuildRule] = {
    "googlenet": BuildRule(_inception_like, after_load=_drop_aux_heads),
    # inception_v3() keeps its AuxLogits head unless called with aux_logits=False (its default is True, unlike
    # googlenet's); in eval mode the model returns the logits alone either way.
    "inception": BuildRule(_inception_like),
    "vision_transformer": BuildRule(_vit),
    "maxvit": BuildRule(_maxvit),
    "densenet": BuildRule(rename_keys=_densenet_keys),
}
"""Keyed by the builder's module (``torchvision.models.<key>``); every other builder only sets ``num_classes``."""


def build_rule(name: str) -> BuildRule:
    import torchvision

    module = torchvision.models.get_model_builder(name).__module__.rsplit(".", 1)[-1]
    return BUILD_RULES.get(module, BuildRule())


def architecture(name: str, member: Any, *, num_classes: int | None = None) -> nn.Module:
    """The module torchvision's builder makes for ``weights=member`` before loading, with torch's default
    (seeded by the caller) initialisation and no download; ``num_classes`` replaces the enum's class count."""
    import torchvision

    kwargs = build_rule(name).kwargs(member)
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    return torchvision.models.get_model(name, weights=None, **kwargs)


def redraw_zero_layers(module: nn.Module) -> list[str]:
    """Re-initialise (torch's default, from the seeded generator) every linear or convolution layer whose weight
    torchvision initialised to all zeros; returns their paths.

    torchvision's ViT zero-initialises its classification head (``heads.head``), so with random weights all logits
    are equal and every gradient is zero: Grad-CAM maps and LIME scores would be constant and tests blind. The
    architecture and parameter shapes are unchanged; pretrained and checkpoint weights replace these values anyway.
    """
    redrawn = []
    for path, layer in module.named_modules():
        if isinstance(layer, nn.Linear | nn.Conv2d) and not layer.weight.detach().any():
            layer.reset_parameters()
            redrawn.append(path)
    return redrawn


@dataclass(kw_only=True)
class LoadedClassifier(LoadedModel):
    """A :class:`LoadedModel` that also knows its spec, weights enum member and preprocessing."""

    spec: ClassifierSpec
    weights_member: str
    """The resolved enum member (``IMAGENET1K_V2`` for ``DEFAULT`` of resnet50)."""
    preprocess: Callable[..., torch.Tensor] | None = None
    """The enum member's ``transforms()``: resize, centre crop, scale to [0, 1], normalise."""
    preprocessing: Preprocessing | None = None
    """Its values; ``preprocessing.to_input`` normalises images for this model."""


def spec_categories(spec: ClassifierSpec) -> list[str]:
    """The class names of ``spec`` in output order, without loading weights: its class file, else the weights
    member's ``meta["categories"]``."""
    if spec.classes is not None:
        return places365_categories(spec.classes) if spec.classes_format == "places365" else read_classes(spec.classes)
    if spec.published is not None:
        raise CheckpointError(f"{spec.model_id}: needs its category file; set classes")
    return list(resolve_weights(spec.architecture, spec.weights_member).meta["categories"])


def build_classifier(
    spec: ClassifierSpec,
    weights_mode: WeightsMode,
    *,
    seed: int,
    weights_dir: Path | None,
    published: WeightFile | None = None,
) -> LoadedClassifier:
    """The classifier of ``spec`` in eval mode, with seeded random weights (``weights_mode="random"``), the
    published checkpoint (fetched, checksummed, ``weights_only=True``; ``published`` when the run plan names it,
    else the spec's or its weights member's file) or the user's ``checkpoint``."""
    member = resolve_weights(spec.architecture, spec.weights_member)
    rule = build_rule(spec.architecture)
    categories = spec_categories(spec)
    torch.manual_seed(seed)
    module = architecture(spec.architecture, member, num_classes=len(categories))
    label = f"{spec.architecture} with {len(categories)} classes"
    note = ""
    if weights_mode == "random":  # the checkpoint, if any, is not read: random mode is the same compute, offline
        if rule.after_load:
            rule.after_load(module)
        redrawn = redraw_zero_layers(module)
        if redrawn:
            note = (
                f"random weights: {', '.join(redrawn)} re-drawn with torch's default initialisation (torchvision "
                "initialises them to zeros, which would make every logit constant and every gradient zero)"
            )
        weights_id = f"random(seed={seed})"
    elif spec.checkpoint is not None:
        if rule.after_load:  # a fine-tuned model's state dict is saved without the dropped auxiliary heads
            rule.after_load(module)
        state = checkpoint_state(spec.checkpoint)
        load_checked(module, state, source=spec.checkpoint, model_label=label)
        weights_id = f"{spec.checkpoint.name} (sha256:{file_sha256(spec.checkpoint)})"
    else:
        weight = published or spec.published or weight_file(spec.architecture, member)
        path = fetch_weights(weight, weights_dir)  # checksummed; offline, the message names the URL
        state, note = read_state(path, verified=full_checksum(weight.known_hash))
        if rule.rename_keys:
            state = rule.rename_keys(state)
        load_checked(module, state, source=path, model_label=label)
        if rule.after_load:
            rule.after_load(module)
        weights_id = f"{weight.filename} ({weight.known_hash or 'unverified'})"
    return LoadedClassifier(
        spec.model_id,
        module.eval(),
        weights_mode,
        weights_id,
        categories,
        note,
        spec=spec,
        weights_member=member.name,
        preprocess=member.transforms(),
        preprocessing=preprocessing(spec),
    )
