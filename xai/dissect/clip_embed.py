"""Step 1 of CLIP-Dissect: L2-normalised CLIP image embeddings of the probe set and text embeddings of
concepts.

Concepts are encoded verbatim (no prompt template), as in CLIP-Dissect. The text transformer is causal and the
embedding is read at the end-of-text token, so positions after a batch's longest real sequence cannot change
any result; :func:`encode_text_truncated` runs the transformer on tokens, positional embedding and causal mask
cut to that length (spec 1.8: same embeddings within ~3e-6, about 15x faster for word concepts). Concepts are
encoded in order of token length so batches hold similar lengths; the output keeps the input order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch
from torch import nn


def image_input_dtype(model: nn.Module) -> torch.dtype:
    """The dtype CLIP's image tower takes: that of its patch-embedding convolution (fp16 after open_clip's
    ``convert_weights_to_lp`` on CUDA, which leaves the class and positional embeddings in fp32)."""
    visual = getattr(model, "visual", model)
    conv = next((m for m in visual.modules() if isinstance(m, nn.Conv2d)), None)
    if conv is not None:
        return conv.weight.dtype
    parameter = next(model.parameters(), None)
    return parameter.dtype if parameter is not None else torch.float32


def encode_images(
    model: nn.Module, batches: Iterable[torch.Tensor], *, device: str | torch.device = "cpu"
) -> np.ndarray:
    """``E_I(x) / ‖E_I(x)‖`` for every image of the CLIP-preprocessed ``batches`` -> (N, D) float32."""
    model.eval()
    features = []
    dtype = image_input_dtype(model)  # fp16 on CUDA, as CLIP-Dissect runs OpenAI's CLIP
    with torch.inference_mode():
        for batch in batches:
            features.append(model.encode_image(batch.to(device, dtype=dtype)).float().cpu())
    embeddings = torch.cat(features)
    return torch.nn.functional.normalize(embeddings, dim=-1).numpy()


def can_truncate(model: nn.Module) -> bool:
    """Whether ``model`` is an open_clip CLIP with a causal text tower pooled at the EOT/EOS token."""
    needed = ("token_embedding", "positional_embedding", "transformer", "ln_final", "attn_mask")
    if not all(getattr(model, name, None) is not None for name in needed):
        return False
    return getattr(model, "text_pool_type", "argmax") in ("argmax", "eos")


def encode_text_truncated(model: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """``model.encode_text(tokens)`` (unnormalised) computed on the first L positions only.

    L is the largest index of a non-padding token in the batch, plus one (padding id is 0). Mirrors
    open_clip's ``CLIP.encode_text``: embed, add positions, causal transformer, final LayerNorm, pool at the
    EOT token (``argmax`` of token ids, or the tokenizer's EOS id), project.
    """
    from open_clip.transformer import text_global_pool

    nonzero = (tokens != 0).int()
    length = int((nonzero * torch.arange(1, tokens.shape[1] + 1, device=tokens.device)).amax())
    tokens = tokens[:, :length]
    cast_dtype = model.transformer.get_cast_dtype()
    x = model.token_embedding(tokens).to(cast_dtype)
    x = x + model.positional_embedding[:length].to(cast_dtype)
    x = model.transformer(x, attn_mask=model.attn_mask[:length, :length])
    x = model.ln_final(x)
    x = text_global_pool(x, tokens, model.text_pool_type, eos_token_id=getattr(model, "text_eos_id", None))
    projection = model.text_projection
    if projection is not None:
        x = projection(x) if isinstance(projection, nn.Linear) else x @ projection
    return x


def encode_texts(
    model: nn.Module,
    tokenizer: Callable[[list[str]], torch.Tensor],
    concepts: Sequence[str],
    *,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    truncate: bool = True,
    progress: Callable[[Iterable, int], Iterable] | None = None,
) -> np.ndarray:
    """``E_T(t) / ‖E_T(t)‖`` for every concept string -> (M, D) float32, in the order of ``concepts``.

    Args:
        model: open_clip CLIP model.
        tokenizer: open_clip tokenizer (list of strings -> (B, 77) int tensor).
        concepts: concept strings, encoded verbatim.
        batch_size: concepts per forward pass.
        device: where the model runs.
        truncate: use :func:`encode_text_truncated` when the model allows it (identical result, faster).
        progress: ``progress(batch starts, total)`` wraps the loop over batches (a bar with total and ETA).
    """
    if not concepts:
        raise ValueError("no concepts to encode")
    check_context_length(tokenizer, concepts)
    model.eval()
    tokens = tokenizer(list(concepts))
    lengths = (tokens != 0).sum(dim=1).numpy()
    order = np.argsort(lengths, kind="stable")
    use_truncation = truncate and can_truncate(model)
    out = torch.empty(len(concepts), 0)
    with torch.inference_mode():
        starts: Iterable = range(0, len(concepts), batch_size)
        if progress is not None:
            starts = progress(starts, len(starts))
        for start in starts:
            rows = torch.from_numpy(order[start : start + batch_size])
            batch = tokens[rows].to(device)
            features = encode_text_truncated(model, batch) if use_truncation else model.encode_text(batch)
            features = torch.nn.functional.normalize(features.float(), dim=-1).cpu()
            if out.shape[1] == 0:
                out = torch.empty(len(concepts), features.shape[1])
            out[rows] = features
    return out.numpy()


def check_context_length(tokenizer: Callable, concepts: Sequence[str]) -> None:
    """Refuse a concept longer than CLIP's context, as CLIP-Dissect's ``clip.tokenize`` does (start and end
    tokens included); open_clip's tokenizer would cut it silently and embed a different string.

    Raises:
        xai.data.DataError: one line naming the first such concept.
    """
    encode, context = getattr(tokenizer, "encode", None), getattr(tokenizer, "context_length", None)
    if encode is None or context is None:
        return
    for concept in concepts:
        length = len(encode(concept)) + 2
        if length > context:
            from xai.data import DataError

            shown = concept if len(concept) <= 60 else concept[:57] + "..."
            raise DataError(
                f"concept {shown!r} is {length} CLIP tokens, more than CLIP's context of {context}; "
                f"shorten it in the concept file (CLIP-Dissect refuses it too)"
            )


def concepts_hash(concepts: Sequence[str]) -> str:
    """SHA-256 of the concept list (one per line); with the CLIP model name, the text-embedding cache key."""
    return hashlib.sha256("\n".join(concepts).encode("utf-8")).hexdigest()
