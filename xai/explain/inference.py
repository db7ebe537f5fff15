"""Batched, gradient-free model evaluation: the prediction, and the forwards of LIME, ScoreCAM and AblationCAM.

Why channels_last: on the 2-core CPU a ResNet50 forward in ``inference_mode`` runs ~1.3-1.9x faster when only
the *input* is channels_last (oneDNN then keeps every activation channels_last), with the model untouched.
Batch 8 is the fastest CPU batch measured on one 2-core machine (batch 32 ~2x slower per image: activations fall
out of cache); it is only the default of the library-level functions. The pipeline measures the best size per
machine (``batch_size: auto``, :mod:`xai.batching`) and passes it explicitly.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from xai.explain.artifacts import Prediction

ToInput = Callable[[np.ndarray], torch.Tensor]
"""(N, H, W, 3) uint8 images -> normalised (N, 3, H, W) float tensor (e.g. :func:`xai.models.to_input`)."""

CPU_BATCH_SIZE = 8
ACCELERATOR_BATCH_SIZE = 64


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for a parameter-free model)."""
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def default_batch_size(device: torch.device, image_pixels: int = 224 * 224) -> int:
    """Images per forward pass: 8 at 224x224 on CPU (measured best for ResNet50), 64 on an accelerator.

    Smaller images get proportionally larger batches (same pixels per batch), capped at 256: per-call
    overhead dominates tiny batches of tiny images.
    """
    base = CPU_BATCH_SIZE if device.type == "cpu" else ACCELERATOR_BATCH_SIZE
    return int(min(256, max(base, round(base * 224 * 224 / image_pixels))))


def fast_layout(batch: torch.Tensor) -> torch.Tensor:
    """The batch in channels_last memory layout (same values, faster convolutions)."""
    return batch.contiguous(memory_format=torch.channels_last) if batch.dim() == 4 else batch


def check_eval_mode(model: nn.Module) -> None:
    """Explanations of a model in training mode would mix batch statistics and dropout into the maps."""
    if model.training:
        raise ValueError("the model is in training mode; call model.eval() before explaining it")


class BatchClassifier:
    """A LIME classifier function: (N, H, W, 3) uint8 images -> (N, K) float32 softmax probabilities, in steps a
    caller can overlap: :meth:`prepare` (normalise, on the CPU) and :meth:`probabilities` (the model, on its device,
    not waited for).

    Calling it does both and waits, as the plain function did: the whole batch normalised by ``to_input`` in one
    vectorised op, moved to the model's device once, evaluated under ``torch.inference_mode()`` in channels_last.
    """

    def __init__(self, model: nn.Module, to_input: ToInput) -> None:
        self.model = model
        self.to_input = to_input
        self.device = model_device(model)
        self._takes_tensors: bool | None = None

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return self.probabilities(self.prepare(images)).cpu().numpy()

    def prepare(self, images: np.ndarray) -> torch.Tensor:
        """The normalised batch, on the CPU."""
        return self.to_input(images)

    def probabilities(self, batch: torch.Tensor) -> torch.Tensor:
        """Softmax probabilities of a normalised batch, on the model's device (asynchronous there)."""
        with torch.inference_mode():
            logits = self.model(fast_layout(batch.to(self.device)))
            return torch.softmax(logits, dim=1).float()

    @property
    def takes_device_tensors(self) -> bool:
        """Whether ``to_input`` normalises uint8 tensors where they are (:func:`xai.models.to_input` does), so
        images can be built and normalised on the model's device."""
        if self._takes_tensors is None:
            probe = torch.zeros((1, 2, 2, 3), dtype=torch.uint8, device=self.device)
            try:
                self._takes_tensors = self.to_input(probe).device == self.device  # type: ignore[arg-type]
            except (TypeError, RuntimeError, ValueError):
                self._takes_tensors = False
        return self._takes_tensors


def probabilities_fn(model: nn.Module, to_input: ToInput) -> BatchClassifier:
    """A LIME classifier function for ``model`` (:class:`BatchClassifier`)."""
    return BatchClassifier(model, to_input)


def predict_top(model: nn.Module, input_tensor: torch.Tensor, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Top-k class indices (int64) and softmax probabilities (float32) of one (1, 3, H, W) input."""
    with torch.inference_mode():
        probabilities = torch.softmax(model(input_tensor.to(model_device(model))), dim=1)[0].float().cpu()
    if not torch.isfinite(probabilities).all():
        from xai.explain.explained import ExplanationError

        raise ExplanationError(
            "the model's output on this image is not finite (NaN or inf): its weights or activations overflow "
            "here; the image is listed and not explained (check the checkpoint, e.g. a half-precision overflow)"
        )
    top = torch.topk(probabilities, k=min(k, probabilities.numel()))
    return top.indices.numpy().astype(np.int64), top.values.numpy().astype(np.float32)


def predict(model: nn.Module, image: np.ndarray, *, to_input: ToInput, k: int = 5) -> Prediction:
    """The model's top-k classes and softmax probabilities on one (H, W, 3) uint8 image."""
    check_eval_mode(model)
    labels, probabilities = predict_top(model, to_input(image[None]), k)
    return Prediction(labels=labels, probabilities=probabilities)
