"""CLIP as the dissection loads it, checked without downloading weights: built with QuickGELU, identically in
random and pretrained mode on every loading path (a local file, open_clip's 'openai' tag), fp16 on CUDA and fp32
on CPU, and an unpinned local CLIP file hashed into the cache key."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from xai import clip


def _module_classes(module: nn.Module) -> list[str]:
    return [f"{name}:{type(child).__module__}.{type(child).__qualname__}" for name, child in module.named_modules()]


def _assert_quick_gelu(module: nn.Module) -> None:
    from open_clip.transformer import QuickGELU

    kinds = [type(child) for child in module.modules()]
    assert QuickGELU in kinds
    assert not any(issubclass(kind, nn.GELU) for kind in kinds), "CLIP built with nn.GELU: OpenAI trained QuickGELU"
    # 12 blocks in each tower, one activation per MLP
    assert sum(kind is QuickGELU for kind in kinds) == 24


def test_clip_is_quick_gelu_and_pretrained_builds_the_random_architecture(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import open_clip.factory as factory

    random_clip = clip.load_clip("random", seed=0, weights_dir=None)
    _assert_quick_gelu(random_clip.module)
    built: dict[str, nn.Module] = {}

    def capture_checkpoint(model: nn.Module, checkpoint_path: str, **_kwargs) -> dict:
        built[Path(checkpoint_path).name] = model  # the module the real weights would be loaded into
        return {}

    monkeypatch.setattr(factory, "load_checkpoint", capture_checkpoint)
    # open_clip's unpinned .bin (allowed by clip_unverified); OpenAI's pinned archive: tests/test_clip_pinned.py
    local = tmp_path / clip.UNVERIFIED_CLIP.filename
    local.write_bytes(b"stand-in")
    loaded = clip.load_clip("pretrained", seed=0, weights_dir=tmp_path, unverified=True)
    assert set(built) == {local.name}
    _assert_quick_gelu(loaded.module)
    assert _module_classes(loaded.module) == _module_classes(random_clip.module)
    # OpenAI's preprocessing on every path: bicubic resize of the short side to 224, centre crop, CLIP mean/std
    assert repr(loaded.preprocess) == repr(random_clip.preprocess)
    assert "Resize(size=224, interpolation=bicubic" in repr(random_clip.preprocess)
    assert "mean=(0.48145466, 0.4578275, 0.40821073)" in repr(random_clip.preprocess)
    assert hashlib.sha256(b"stand-in").hexdigest() in loaded.weights_id


def test_clip_runs_in_fp16_on_cuda_and_fp32_on_cpu() -> None:
    from open_clip.transformer import LayerNormFp32

    from xai.dissect.clip_embed import encode_images, image_input_dtype

    assert clip.clip_dtype("cpu") == torch.float32 and clip.clip_dtype("cuda") == torch.float16
    half, _ = clip.build_clip(None, precision="fp16")  # what a CUDA device gets, built on the CPU here
    assert half.visual.conv1.weight.dtype == torch.float16
    assert half.transformer.resblocks[0].mlp.c_fc.weight.dtype == torch.float16
    norms = [m for m in half.modules() if isinstance(m, nn.LayerNorm)]
    assert norms and all(isinstance(m, LayerNormFp32) and m.weight.dtype == torch.float32 for m in norms)
    _assert_quick_gelu(half)
    # the fp32 probe batch is cast to what the image tower takes (its class embedding stays fp32)
    assert image_input_dtype(half) == torch.float16 and half.visual.class_embedding.dtype == torch.float32
    embedding = encode_images(half, [torch.zeros(1, 3, 224, 224)])
    assert embedding.dtype == np.float32 and embedding.shape == (1, 512)
