"""Dissection cache keys follow what makes each artifact, read from the run plan: the CLIP architecture and weights
(OpenAI's pinned file by its pin, an unpinned file by its content), the device, the model spec, its layers and their
pooling. (The code part of every key, one rule for every stage: tests/test_cache_keys.py.)"""

from __future__ import annotations

import hashlib
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from xai import clip, models


def _context(data: dict, device: str = "cpu") -> SimpleNamespace:
    """What the dissect stage's key functions read of a run: its plan and device."""
    from xai.config import validate
    from xai.plan import make_plan

    return SimpleNamespace(plan=make_plan(validate({"stages": ["dissect"], **data})), device=torch.device(device))


def test_clip_architecture_is_in_the_clip_embedding_key(monkeypatch: pytest.MonkeyPatch) -> None:
    from xai.cache import make_key
    from xai.stages import dissect as stage
    from xai.stages.dissect_keys import clip_parts

    context = _context({"weights": "random"})
    before = make_key(stage.STAGE, {"piece": "clip-images", **clip_parts(context)})
    monkeypatch.setattr(clip, "CLIP_ARCH", "ViT-B-16")
    after = make_key(stage.STAGE, {"piece": "clip-images", **clip_parts(context)})
    assert before != after
    assert clip_parts(_context({"weights": "random"}, "cuda"))["clip_dtype"] == "float16"


def test_activations_key_separates_cpu_and_cuda() -> None:
    from xai.cache import make_key
    from xai.stages import dissect as stage
    from xai.stages.dissect_keys import activation_parts

    data = {"weights": "random", "dissect": {"models": ["resnet18_places365"], "layers": ["layer4", "fc"]}}

    def parts(device: str) -> dict:
        context = _context(data, device)
        return activation_parts(context, context.plan.dissect.models[0], "probe")

    cpu, cuda = parts("cpu"), parts("cuda:0")
    assert cpu["device"] == "cpu" and cuda["device"] == "cuda"
    assert make_key(stage.STAGE, cpu) != make_key(stage.STAGE, cuda)
    assert make_key(stage.STAGE, cuda) == make_key(stage.STAGE, parts("cuda"))


def test_activations_key_follows_the_spec_the_layers_and_their_pooling() -> None:
    """Two models, two weights members or two layer lists never share pooled activations."""
    from xai.cache import make_key
    from xai.stages import dissect as stage
    from xai.stages.dissect_keys import activation_parts

    def parts(model: object, layers: object = "auto", pool: str = "mean") -> dict:
        context = _context({"weights": "random", "dissect": {"models": [model], "layers": layers, "pool": pool}})
        return activation_parts(context, context.plan.dissect.models[0], "probe")

    def key(model: object, layers: object = "auto", pool: str = "mean") -> str:
        return make_key(stage.STAGE, parts(model, layers, pool))

    keys = [
        key("resnet18_imagenet"),
        key("resnet18_places365"),
        key("resnet18"),
        key("vit_b_16"),
        key({"name": "vit_b_16", "weights": "IMAGENET1K_SWAG_LINEAR_V1"}),
        key("resnet18_imagenet", ["layer4", "fc"]),
        key("resnet18_imagenet", pool="max"),
    ]
    assert len(set(keys)) == len(keys)
    vit = parts("vit_b_16")
    assert vit["layers"][-1] == "heads" and vit["pooling"] == ["tokens", "tokens", "tokens", "none"]
    assert vit["weights_member"] == "IMAGENET1K_V1" and vit["architecture"] == "vit_b_16"


def test_clip_cache_key_is_the_pin_or_the_unpinned_file_hash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """OpenAI's pinned file keys the cache by its pin; open_clip's unpinned .bin (a LAION ViT-B-16 saved under its
    name, say) by its content, so replacing it recomputes the embeddings."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    weights_dir = tmp_path / "weights"
    weights_dir.mkdir()
    (weights_dir / models.WEIGHT_FILES["clip"].filename).write_bytes(b"checked when read, not here")
    context = _context({"weights": "pretrained", "weights_dir": str(weights_dir), "stages": ["dissect"]})
    assert context.plan.dissect.clip_weights_key == f"ViT-B-16.pt:sha256:{models.OPENAI_CLIP_SHA256}"
    (weights_dir / models.WEIGHT_FILES["clip"].filename).unlink()
    clip_file = weights_dir / clip.UNVERIFIED_CLIP.filename
    clip_file.write_bytes(b"openai weights")
    first = clip.clip_weights_id(weights_dir, unverified=True)
    assert hashlib.sha256(b"openai weights").hexdigest() in first and "not pinned" in first
    assert clip.clip_weights_id(weights_dir, unverified=True) == first
    clip_file.write_bytes(b"laion weights!")  # same size: the mtime and content still tell them apart
    assert clip.clip_weights_id(weights_dir, unverified=True) != first
