"""CLIP's pretrained file without downloading it: OpenAI's ``ViT-B-16.pt`` (a TorchScript archive, pinned by the
sha256 in its URL) written here in its real format from seeded random weights, read through the real loading code
and compared with open_clip's own reader of OpenAI files; a wrong file and open_clip's unpinned ``.bin`` refused in
one line unless ``clip_unverified`` is set."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from xai import clip, models
from xai.models import WeightsUnavailableError

EXTRA_ENTRIES = {"input_resolution": 224, "context_length": 77, "vocab_size": 49408}
"""Scalars OpenAI's archive holds beside the weights (OpenAI's ``build_model`` and open_clip both drop them)."""


class _Node(nn.Module):
    """One level of the archive's module tree (TorchScript needs a forward to compile; it is never run)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _openai_weights(seed: int) -> dict[str, torch.Tensor]:
    """Seeded random ViT-B/16 weights with OpenAI's key names, shapes and released dtypes.

    open_clip's ViT-B-16-quickgelu state dict has the keys, shapes and dtypes of OpenAI's ``clip/model.py`` CLIP
    built from the same tensors (checked once by building OpenAI's model from them); ``convert_weights_to_lp`` is
    open_clip's copy of OpenAI's ``convert_weights`` (fp16 linear, conv and attention weights and both projections;
    embeddings and LayerNorms stay fp32).
    """
    import open_clip
    from open_clip.model import convert_weights_to_lp

    torch.manual_seed(seed)
    model = open_clip.create_model(clip.CLIP_ARCH, pretrained=None, force_quick_gelu=True).eval()
    convert_weights_to_lp(model)
    return {key: value.detach().clone() for key, value in model.state_dict().items()}


def _archive_module(state: dict[str, torch.Tensor]) -> nn.Module:
    """A module tree holding ``state`` under its own names plus OpenAI's three scalar entries, to be scripted.

    (Scripting open_clip's CLIP itself would add its causal ``attn_mask``: ScriptModules keep no non-persistent
    buffers. OpenAI's archive has no such entry: ``clip.load`` strict-loads its state dict into OpenAI's model.)
    """
    root = _Node()
    for key, value in state.items():
        *path, leaf = key.split(".")
        node = root
        for part in path:
            if not hasattr(node, part):
                node.add_module(part, _Node())
            node = getattr(node, part)
        node.register_parameter(leaf, nn.Parameter(value.clone(), requires_grad=False))
    for name, value in EXTRA_ENTRIES.items():
        root.register_buffer(name, torch.tensor(value))
    return root


@pytest.fixture(scope="module")
def openai_archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, torch.Tensor]]:
    """``ViT-B-16.pt`` in OpenAI's format (a scripted module saved with ``torch.jit.save``) and its tensors."""
    import warnings

    state = _openai_weights(seed=11)
    path = tmp_path_factory.mktemp("openai") / "ViT-B-16.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated, OpenAI's file is what it is
        torch.jit.save(torch.jit.script(_archive_module(state)), str(path))
    return path, state


def _pin(monkeypatch: pytest.MonkeyPatch, path: Path) -> str:
    """Pin WEIGHT_FILES['clip'] to ``path``'s sha256, as the real entry pins OpenAI's file."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    pinned = dataclasses.replace(models.WEIGHT_FILES["clip"], known_hash=f"sha256:{digest}")
    monkeypatch.setitem(models.WEIGHT_FILES, "clip", pinned)
    return digest


def _no_download(monkeypatch: pytest.MonkeyPatch) -> None:
    import pooch

    def refuse(*_args, **_kwargs):
        raise AssertionError("a local CLIP file must not trigger a download")

    monkeypatch.setattr(pooch, "retrieve", refuse)


def _embeddings(module: nn.Module, tokenizer) -> tuple[np.ndarray, np.ndarray]:
    """Raw (unnormalised) image and text embeddings of fixed inputs."""
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(2, 3, 224, 224, generator=generator)
    tokens = tokenizer(["a photo of a dog", "striped", "the"])
    with torch.no_grad():
        return module.encode_image(images).float().numpy(), module.encode_text(tokens).float().numpy()


def _direct(state: dict[str, torch.Tensor]) -> nn.Module:
    """The same weights put straight into open_clip's model (no archive, no file)."""
    module, _ = clip.build_clip(None)
    module.load_state_dict(state, strict=True)
    return module


def _in_weights_dir(tmp_path: Path, source: Path, name: str) -> Path:
    weights_dir = tmp_path / "weights"
    weights_dir.mkdir(exist_ok=True)
    (weights_dir / name).symlink_to(source)
    return weights_dir


def test_real_pin_is_the_sha256_in_openai_url() -> None:
    pinned = models.WEIGHT_FILES["clip"]
    # The URL of clip/clip.py _MODELS["ViT-B/16"] (openai/CLIP); clip._download checks url.split("/")[-2].
    assert pinned.url == (
        "https://openaipublic.azureedge.net/clip/models/"
        "5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f/ViT-B-16.pt"
    )
    assert pinned.known_hash == f"sha256:{pinned.url.split('/')[-2]}" and models.full_checksum(pinned.known_hash)
    assert pinned.filename == "ViT-B-16.pt"


def test_openai_archive_loads_as_open_clip_reads_openai_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, openai_archive: tuple[Path, dict[str, torch.Tensor]]
) -> None:
    import open_clip

    path, state = openai_archive
    digest = _pin(monkeypatch, path)
    _no_download(monkeypatch)
    weights_dir = _in_weights_dir(tmp_path, path, "ViT-B-16.pt")

    loaded = clip.load_clip("pretrained", seed=0, weights_dir=weights_dir)
    assert loaded.weights_id == f"ViT-B-16.pt:sha256:{digest}"
    image, text = _embeddings(loaded.module, loaded.tokenizer)
    # open_clip's reader of OpenAI's files (builds its CLIP from the archive's state dict, strict, QuickGELU)
    reference = open_clip.load_openai_model(str(path), precision="fp32", device="cpu").eval()
    ref_image, ref_text = _embeddings(reference, loaded.tokenizer)
    np.testing.assert_allclose(image, ref_image, rtol=0, atol=1e-5)
    np.testing.assert_allclose(text, ref_text, rtol=0, atol=1e-5)
    # and the weights put in directly, without the archive: the same numbers exactly
    direct_image, direct_text = _embeddings(_direct(state), loaded.tokenizer)
    assert np.array_equal(image, direct_image) and np.array_equal(text, direct_text)
    assert np.abs(image).max() > 0.1 and not np.allclose(image[0], image[1])  # not a degenerate model
    # the pretrained network is the random one (QuickGELU, same modules, same preprocessing)
    random_clip = clip.load_clip("random", seed=0, weights_dir=None)
    classes = [type(m) for m in loaded.module.modules()]
    assert classes == [type(m) for m in random_clip.module.modules()]
    assert repr(loaded.preprocess) == repr(random_clip.preprocess)


def test_openai_archive_in_fp16_as_a_cuda_run_holds_it(
    monkeypatch: pytest.MonkeyPatch, openai_archive: tuple[Path, dict[str, torch.Tensor]]
) -> None:
    """On CUDA the pinned weights go into the fp16 build (fp32 LayerNorms): the same tensors, in the same dtypes,
    as open_clip's fp16 reader of OpenAI files gives (built on the CPU here; no device is needed to compare)."""
    import open_clip

    path, _ = openai_archive
    _pin(monkeypatch, path)
    half, _ = clip.build_clip(None, precision="fp16", state=clip.openai_clip_state(path, models.WEIGHT_FILES["clip"]))
    reference = open_clip.load_openai_model(str(path), precision="fp16", device="cpu")
    ours, theirs = half.state_dict(), reference.state_dict()
    assert set(ours) == set(theirs)
    for key, value in ours.items():
        assert value.dtype == theirs[key].dtype and torch.equal(value, theirs[key]), key
    assert half.visual.conv1.weight.dtype == torch.float16 and half.ln_final.weight.dtype == torch.float32


def test_pinned_weights_id_does_not_hash_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, openai_archive: tuple[Path, dict[str, torch.Tensor]]
) -> None:
    path, _ = openai_archive
    weights_dir = _in_weights_dir(tmp_path, path, "ViT-B-16.pt")

    def no_hashing(_path: Path) -> str:
        raise AssertionError("the pinned file's id is its pin; hashing 335 MB per run is not needed")

    monkeypatch.setattr(models, "file_sha256", no_hashing)
    monkeypatch.setattr(clip, "file_sha256", no_hashing)
    expected = f"ViT-B-16.pt:sha256:{models.OPENAI_CLIP_SHA256}"
    assert clip.clip_weights_id(weights_dir) == expected
    assert clip.clip_weights_id(weights_dir, unverified=True) == expected  # the pinned file wins over the flag
    assert clip.clip_weights_present(weights_dir)
    # nothing on disk: the pinned file will be downloaded (and verified), so the id is the same
    assert clip.clip_weights_id(tmp_path / "empty") == expected
    assert not clip.clip_weights_present(tmp_path / "empty")


def test_wrong_file_under_the_pinned_name_is_refused_before_it_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, openai_archive: tuple[Path, dict[str, torch.Tensor]]
) -> None:
    path, _ = openai_archive  # not OpenAI's bytes: the real pin does not match
    weights_dir = _in_weights_dir(tmp_path, path, "ViT-B-16.pt")
    _no_download(monkeypatch)

    def never(*_args, **_kwargs):
        raise AssertionError("torch.jit.load ran on a file that failed its pin")

    monkeypatch.setattr(torch.jit, "load", never)
    with pytest.raises(WeightsUnavailableError) as raised:
        clip.load_clip("pretrained", seed=0, weights_dir=weights_dir)
    message = str(raised.value)
    assert "\n" not in message and "checksum does not match" in message
    assert str(weights_dir / "ViT-B-16.pt") in message and models.WEIGHT_FILES["clip"].url in message
    # the reader itself refuses a file its pin does not vouch for, and a pin that is no full checksum
    for weight in (
        models.WEIGHT_FILES["clip"],
        dataclasses.replace(models.WEIGHT_FILES["clip"], known_hash=""),
        dataclasses.replace(models.WEIGHT_FILES["clip"], known_hash="sha256-prefix:" + models.file_sha256(path)[:8]),
    ):
        with pytest.raises(WeightsUnavailableError, match="not read") as raised:
            clip.openai_clip_state(path, weight)
        assert "\n" not in str(raised.value)


def test_unverified_bin_is_refused_unless_the_config_allows_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, openai_archive: tuple[Path, dict[str, torch.Tensor]]
) -> None:
    _, state = openai_archive
    _no_download(monkeypatch)
    weights_dir = tmp_path / "weights"
    weights_dir.mkdir()
    bin_file = weights_dir / "open_clip_pytorch_model.bin"
    torch.save(state, bin_file)  # open_clip's .bin: a plain state dict with OpenAI's key names

    for call in (
        lambda: clip.load_clip("pretrained", seed=0, weights_dir=weights_dir),
        lambda: clip.clip_weights_id(weights_dir),
        lambda: clip.clip_weights_present(weights_dir),
    ):
        with pytest.raises(WeightsUnavailableError) as raised:
            call()
        message = str(raised.value)
        assert "\n" not in message and str(bin_file) in message and "no published checksum" in message
        assert "clip_unverified: true" in message and models.WEIGHT_FILES["clip"].url in message
    # random mode never looks at weight files
    assert clip.load_clip("random", seed=0, weights_dir=weights_dir).weights_id == "random(seed=0)"

    loaded = clip.load_clip("pretrained", seed=0, weights_dir=weights_dir, unverified=True)
    digest = hashlib.sha256(bin_file.read_bytes()).hexdigest()
    assert loaded.weights_id == f"open_clip_pytorch_model.bin:sha256:{digest} (computed, not pinned)"
    assert clip.clip_weights_id(weights_dir, unverified=True) == loaded.weights_id
    image, text = _embeddings(loaded.module, loaded.tokenizer)
    direct_image, direct_text = _embeddings(_direct(state), loaded.tokenizer)
    assert np.array_equal(image, direct_image) and np.array_equal(text, direct_text)


def test_unverified_bin_choice_and_its_cache_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Which file a pretrained run takes (no loading): pinned first, a placed .bin only with the flag, open_clip's
    own Hugging Face download only with the flag (without it the pinned file is downloaded instead)."""
    weights_dir = tmp_path / "weights"
    weights_dir.mkdir()
    hub = tmp_path / "hf"
    monkeypatch.setenv("HF_HOME", str(hub))
    snapshot = hub / "hub" / "models--timm--vit_base_patch16_clip_224.openai" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    cached = snapshot / "open_clip_pytorch_model.bin"
    cached.write_bytes(b"open_clip download")
    assert clip.clip_file(weights_dir) is None  # the hub's copy is never used unasked
    assert clip.clip_file(weights_dir, unverified=True) == cached
    assert hashlib.sha256(b"open_clip download").hexdigest() in clip.clip_weights_id(weights_dir, unverified=True)

    placed = weights_dir / "open_clip_pytorch_model.bin"
    placed.write_bytes(b"laion weights?")
    first = clip.clip_weights_id(weights_dir, unverified=True)
    assert hashlib.sha256(b"laion weights?").hexdigest() in first and "not pinned" in first
    placed.write_bytes(b"dfn weights!!!")  # same size: the content still changes the id
    assert clip.clip_weights_id(weights_dir, unverified=True) != first

    (weights_dir / "ViT-B-16.pt").write_bytes(b"pinned")
    assert clip.clip_file(weights_dir) == weights_dir / "ViT-B-16.pt"  # the pinned file wins, no refusal
    assert clip.clip_file(weights_dir, unverified=True) == weights_dir / "ViT-B-16.pt"


def test_offline_without_clip_names_openai_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pooch

    def offline(*_args, **_kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(pooch, "retrieve", offline)
    with pytest.raises(WeightsUnavailableError) as raised:
        clip.load_clip("pretrained", seed=0, weights_dir=tmp_path)
    message = str(raised.value)
    assert "ViT-B-16.pt" in message and models.WEIGHT_FILES["clip"].url in message
    assert "open_clip_pytorch_model.bin" not in message


def test_config_key_clip_unverified(tmp_path: Path) -> None:
    from xai import config as config_module

    assert config_module.validate({}).clip_unverified is False
    assert config_module.validate({"clip_unverified": True}).clip_unverified is True
    with pytest.raises(config_module.ConfigError, match="clip_unverified"):
        config_module.validate({"clip_unverified": "maybe"})
