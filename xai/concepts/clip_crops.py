"""CLIP as the presence check takes it (:class:`xai.concepts.presence.ClipFunctions`): each uint8 crop through
CLIP's own preprocessing (resize of the shorter side to 224 bicubic, centre crop, CLIP's mean and std), then
:func:`xai.dissect.clip_embed.encode_images` (L2-normalised image embeddings, CLIP's dtype on its device); the text
embeddings are the concept set's, the same rows Task 1's dissection scored with."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from PIL import Image
from torch import nn

from xai.concepts.presence import ClipFunctions
from xai.dissect.clip_embed import encode_images

CROPS_PER_BATCH = 32


def clip_functions(
    module: nn.Module,
    preprocess: Callable[[Image.Image], torch.Tensor],
    text_embeddings: np.ndarray,
    *,
    device: str | torch.device = "cpu",
    batch_size: int = CROPS_PER_BATCH,
) -> ClipFunctions:
    """:class:`ClipFunctions` of a loaded CLIP (``module``, its ``preprocess``) and the concept set's (M, D)
    L2-normalised ``text_embeddings`` (row = concept id)."""

    def encode_crops(crops: Sequence[np.ndarray]) -> np.ndarray:
        tensors = [preprocess(Image.fromarray(np.ascontiguousarray(crop, dtype=np.uint8))) for crop in crops]
        batches = (torch.stack(tensors[start : start + batch_size]) for start in range(0, len(tensors), batch_size))
        return encode_images(module, batches, device=device)

    return ClipFunctions(encode_crops, np.asarray(text_embeddings, np.float32))
