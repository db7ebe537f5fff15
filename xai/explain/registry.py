"""The single registry of explanation methods: config validation, CLI, report tabs and docs table read it.

Adding a CAM is one registry entry here, plus one small module only when the method is not a grad-cam class:
``implementation`` names either a ``pytorch_grad_cam`` class (run through the library, see
:mod:`xai.explain.cams.library`) or a function with the :data:`xai.explain.cams._core.CamFunction` signature.
Importing this module is cheap (no torch): implementations are resolved lazily by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Family = Literal["lime", "cam"]
PassesScaleWith = Literal["lime_sample", "target_channel", "nothing"]
"""What a method's forward passes per image grow with: one per LIME sample (of every stability seed), one per
channel of the CAM target layer, or nothing (a fixed count)."""


@dataclass(frozen=True)
class MethodInfo:
    """What the report and the config need to know about one explanation method."""

    name: str
    """Identifier used in configs, the CLI, cache keys and file names."""
    title: str
    """Display name, e.g. ``Grad-CAM++``."""
    family: Family
    paper: str
    """Paper title and URL."""
    needs_gradients: bool
    required: bool
    """The task asks for this method (LIME, Grad-CAM, AblationCAM, ScoreCAM); others are gallery extras."""
    cost: str
    """Model passes per image, in words."""
    summary: str
    """One sentence: what the method computes."""
    implementation: str = ""
    """``module:attribute``; a ``pytorch_grad_cam`` class or a CamFunction. Empty for LIME."""
    reference: str = ""
    """``module:attribute`` of the library class our own implementation reproduces (tested equal, and the bench's
    baseline); empty when ``implementation`` already is the library's. See :attr:`library_implementation`."""
    batched: bool = False
    """Its forward passes are whole images through the whole network, run ``batch_size`` at a time: it takes
    the run's resolved batch size, and its floor is ``forward_passes`` x the best measured seconds per image.
    (AblationCAM is not: its rows only run the layers after the target, chunked by memory.)"""
    passes_scale_with: PassesScaleWith = "nothing"
    """What its image rows per image grow with (the plan's forward-pass count, :meth:`forward_passes`)."""
    fixed_passes: int = 1
    """Passes on top of the scaled ones: 2 for a gradient CAM (forward + backward), 1 for the unablated or
    unmasked forward of AblationCAM and ScoreCAM, 0 for LIME (its first sample is the unperturbed image)."""

    @property
    def library_implementation(self) -> str:
        """``module:attribute`` of the library's implementation of this CAM (what the bench times ours against)."""
        return self.reference or self.implementation

    def forward_passes(self, *, lime_samples: int, target_channels: int) -> int:
        """Image rows per image, at most (ScoreCAM skips constant channels): the floor the plan shows.

        Args:
            lime_samples: LIME samples per image over all seeds (``num_samples x stability_seeds``).
            target_channels: channels of the CAM target layer's output (2048 for resnet50 ``layer4``, D for ViT tokens).
        """
        scaled = {"lime_sample": lime_samples, "target_channel": target_channels, "nothing": 0}
        return scaled[self.passes_scale_with] + self.fixed_passes


METHODS: dict[str, MethodInfo] = {
    info.name: info
    for info in (
        MethodInfo(
            name="lime",
            title="LIME",
            family="lime",
            paper='Ribeiro et al. 2016, "Why Should I Trust You?" https://arxiv.org/abs/1602.04938',
            needs_gradients=False,
            required=True,
            batched=True,
            passes_scale_with="lime_sample",
            fixed_passes=0,
            cost="num_samples forward passes (1000 by default) + quickshift segmentation",
            summary="Fits a weighted ridge regression of the class probability on which superpixels are kept, "
            "over random on/off perturbations; each superpixel's coefficient is its weight.",
        ),
        MethodInfo(
            name="gradcam",
            title="Grad-CAM",
            family="cam",
            paper="Selvaraju et al. 2017, Grad-CAM: Visual Explanations from Deep Networks via Gradient-based "
            "Localization. https://arxiv.org/abs/1610.02391",
            needs_gradients=True,
            required=True,
            fixed_passes=2,
            cost="1 forward + 1 backward pass",
            summary="ReLU of the target layer's channels weighted by the spatial mean of the class logit's gradient.",
            implementation="pytorch_grad_cam:GradCAM",
        ),
        MethodInfo(
            name="ablationcam",
            title="AblationCAM",
            family="cam",
            paper="Desai & Ramaswamy 2020, Ablation-CAM: Visual Explanations for Deep Convolutional Network via "
            "Gradient-free Localization. https://openaccess.thecvf.com/content_WACV_2020/papers/"
            "Desai_Ablation-CAM_Visual_Explanations_for_Deep_Convolutional_Network_via_Gradient-free_"
            "Localization_WACV_2020_paper.pdf",
            needs_gradients=False,
            required=True,
            passes_scale_with="target_channel",
            cost="1 forward + C runs of the layers after the target (C = channels of the target layer's output; "
            "C whole-network forwards where a tensor that bypasses the target does not broadcast)",
            summary="Weights each channel by the relative drop of the class logit when that channel is zeroed.",
            implementation="xai.explain.cams.ablation:ablation_cam",
            reference="pytorch_grad_cam:AblationCAM",
        ),
        MethodInfo(
            name="scorecam",
            title="Score-CAM",
            family="cam",
            paper="Wang et al. 2020, Score-CAM: Score-Weighted Visual Explanations for Convolutional Neural "
            "Networks. https://arxiv.org/abs/1910.01279",
            needs_gradients=False,
            required=True,
            batched=True,
            passes_scale_with="target_channel",
            cost="1 + C forward passes (C = channels of the target layer's output), fewer when channels are constant",
            summary="Weights each channel by the softmax, over channels, of the class logit of the image masked "
            "by that channel's upsampled, min-max normalised activation.",
            implementation="xai.explain.cams.score:score_cam",
            reference="pytorch_grad_cam:ScoreCAM",
        ),
        MethodInfo(
            name="gradcampp",
            title="Grad-CAM++",
            family="cam",
            paper="Chattopadhay et al. 2018, Grad-CAM++: Improved Visual Explanations for Deep Convolutional "
            "Networks. https://arxiv.org/abs/1710.11063",
            needs_gradients=True,
            required=False,
            fixed_passes=2,
            cost="1 forward + 1 backward pass",
            summary="Like Grad-CAM but channel weights use higher-order gradient terms, so several instances of "
            "a class all light up.",
            implementation="pytorch_grad_cam:GradCAMPlusPlus",
        ),
        MethodInfo(
            name="xgradcam",
            title="XGrad-CAM",
            family="cam",
            paper="Fu et al. 2020, Axiom-based Grad-CAM: Towards Accurate Visualization and Explanation of CNNs. "
            "https://arxiv.org/abs/2008.02312",
            needs_gradients=True,
            required=False,
            fixed_passes=2,
            cost="1 forward + 1 backward pass",
            summary="Channel weight = sum(gradient x activation) / sum(activation), from sensitivity and "
            "conservation axioms.",
            implementation="pytorch_grad_cam:XGradCAM",
        ),
        MethodInfo(
            name="layercam",
            title="LayerCAM",
            family="cam",
            paper="Jiang et al. 2021, LayerCAM: Exploring Hierarchical Class Activation Maps for Localization. "
            "https://ieeexplore.ieee.org/document/9462463",
            needs_gradients=True,
            required=False,
            fixed_passes=2,
            cost="1 forward + 1 backward pass",
            summary="Sum over channels of ReLU(gradient) x activation, element-wise, so each location keeps "
            "its own weight.",
            implementation="pytorch_grad_cam:LayerCAM",
        ),
        MethodInfo(
            name="hirescam",
            title="HiResCAM",
            family="cam",
            paper="Draelos & Carin 2020, Use HiResCAM instead of Grad-CAM for faithful explanations of "
            "convolutional neural networks. https://arxiv.org/abs/2011.08891",
            needs_gradients=True,
            required=False,
            fixed_passes=2,
            cost="1 forward + 1 backward pass",
            summary="Sum over channels of gradient x activation element-wise (no spatial averaging of the gradient).",
            implementation="pytorch_grad_cam:HiResCAM",
        ),
        MethodInfo(
            name="eigencam",
            title="EigenCAM",
            family="cam",
            paper="Muhammad & Yeasin 2020, Eigen-CAM: Class Activation Map using Principal Components. "
            "https://arxiv.org/abs/2008.00299",
            needs_gradients=False,
            required=False,
            cost="1 forward pass + an SVD of the activations",
            summary="Projection of the target layer's activations on their first principal component; "
            "not class-specific.",
            implementation="xai.explain.cams.eigen:eigen_cam",
            reference="pytorch_grad_cam:EigenCAM",
        ),
    )
}

CAM_METHODS: tuple[str, ...] = tuple(name for name, info in METHODS.items() if info.family == "cam")
REQUIRED_METHODS: tuple[str, ...] = tuple(name for name, info in METHODS.items() if info.required)


def method_info(name: str) -> MethodInfo:
    """The registry entry for ``name``; a clear error listing the valid names otherwise."""
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown explanation method {name!r}; known: {', '.join(METHODS)}") from None
