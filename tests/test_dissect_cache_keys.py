"""Dissection cache keys follow what makes each artifact: the CLIP architecture, the code of the modules that
compute it (the probe pass only on its own modules and library versions), the device, the model spec, its layers
and their pooling."""

from __future__ import annotations

from pathlib import Path

import pytest

from xai import models
from xai.classifiers import PRESETS, ClassifierSpec


def test_clip_architecture_is_in_the_clip_embedding_key(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from xai.cache import make_key
    from xai.stages import dissect as stage

    config = SimpleNamespace(weights="random", seed=0)
    before = make_key(stage.STAGE, {"piece": "clip-images", **stage.clip_parts(config, "cpu")})
    monkeypatch.setattr(models, "CLIP_ARCH", "ViT-B-16")
    after = make_key(stage.STAGE, {"piece": "clip-images", **stage.clip_parts(config, "cpu")})
    assert before != after
    assert stage.clip_parts(config, "cuda")["clip_dtype"] == "float16"


@pytest.mark.parametrize("module", ["models.py", "data.py", "stages/dissect.py", "dissect/labelling.py"])
def test_code_version_covers_models_data_and_stages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: str
) -> None:
    from xai import cache as cache_module

    package = tmp_path / "pkg"
    for name in ("models.py", "data.py", "config.py", "stages/dissect.py", "dissect/labelling.py", "explain/x.py"):
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text("x = 1\n")
    monkeypatch.setattr(cache_module, "PACKAGE_ROOT", package)
    cache_module.code_version.cache_clear()
    before = cache_module.code_version("dissect")
    (package / module).write_text("x = 2\n")
    cache_module.code_version.cache_clear()
    try:
        assert cache_module.code_version("dissect") != before
    finally:
        cache_module.code_version.cache_clear()


def _temp_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, names: tuple[str, ...]) -> Path:
    from xai import cache as cache_module

    package = tmp_path / "pkg"
    for name in names:
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text("x = 1\n")
    monkeypatch.setattr(cache_module, "PACKAGE_ROOT", package)
    cache_module.code_version.cache_clear()
    cache_module.probe_code_version.cache_clear()
    return package


PROBE_FILES = (
    "dissect/activations.py",
    "dissect/probe_pass.py",
    "dissect/clip_embed.py",
    "dissect/probes.py",
    "models.py",
    "data.py",
    "stages/dissect.py",
    "stages/__init__.py",
    "cache.py",
)


@pytest.mark.parametrize("module", PROBE_FILES)
def test_probe_code_version_follows_the_probe_modules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: str
) -> None:
    from xai import cache as cache_module

    package = _temp_package(tmp_path, monkeypatch, (*PROBE_FILES, "dissect/findings.py", "stages/explain.py"))
    try:
        before = cache_module.probe_code_version()
        (package / module).write_text("x = 2\n")
        cache_module.probe_code_version.cache_clear()
        assert cache_module.probe_code_version() != before
    finally:
        cache_module.probe_code_version.cache_clear()
        cache_module.code_version.cache_clear()


@pytest.mark.parametrize("module", ["dissect/findings.py", "stages/explain.py", "dissect/analysis.py"])
def test_editing_analysis_code_keeps_the_probe_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: str
) -> None:
    """Editing the analyses invalidates labels and analyses (broad key), never the probe artifacts."""
    from xai import cache as cache_module

    package = _temp_package(tmp_path, monkeypatch, (*PROBE_FILES, module))
    try:
        probe_before, broad_before = cache_module.probe_code_version(), cache_module.code_version("dissect")
        (package / module).write_text("x = 2\n")
        cache_module.probe_code_version.cache_clear()
        cache_module.code_version.cache_clear()
        assert cache_module.probe_code_version() == probe_before
        assert cache_module.code_version("dissect") != broad_before or module == "stages/explain.py"
    finally:
        cache_module.probe_code_version.cache_clear()
        cache_module.code_version.cache_clear()


def test_probe_code_version_follows_torch_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata

    from xai import cache as cache_module

    real = importlib.metadata.version
    cache_module.probe_code_version.cache_clear()
    before = cache_module.probe_code_version()
    monkeypatch.setattr(
        importlib.metadata, "version", lambda name: "0.0-test" if name == "open_clip_torch" else real(name)
    )
    cache_module.probe_code_version.cache_clear()
    try:
        assert cache_module.probe_code_version() != before
    finally:
        cache_module.probe_code_version.cache_clear()


def test_activations_key_separates_cpu_and_cuda() -> None:
    from types import SimpleNamespace

    from xai.cache import make_key
    from xai.stages import dissect as stage

    places = PRESETS["resnet18_places365"]
    config = SimpleNamespace(weights="random", seed=0, dissect=SimpleNamespace(layers=("layer4", "fc"), pool="mean"))
    cpu = stage.activation_parts(config, places, "probe", "cpu")
    cuda = stage.activation_parts(config, places, "probe", "cuda:0")
    assert cpu["device"] == "cpu" and cuda["device"] == "cuda"
    assert make_key(stage.STAGE, cpu) != make_key(stage.STAGE, cuda)
    assert make_key(stage.STAGE, cuda) == make_key(stage.STAGE, stage.activation_parts(config, places, "probe", "cuda"))


def test_activations_key_follows_the_spec_the_layers_and_their_pooling() -> None:
    """Two models, two weights members or two layer lists never share pooled activations."""
    from types import SimpleNamespace

    from xai.cache import make_key
    from xai.classifiers import ClassifierSpec
    from xai.stages import dissect as stage

    def key(spec: ClassifierSpec, layers: object = "auto", pool: str = "mean") -> str:
        config = SimpleNamespace(weights="random", seed=0, dissect=SimpleNamespace(layers=layers, pool=pool))
        return make_key(stage.STAGE, stage.activation_parts(config, spec, "probe", "cpu"))

    imagenet, places = PRESETS["resnet18_imagenet"], PRESETS["resnet18_places365"]
    keys = [
        key(imagenet),
        key(places),
        key(ClassifierSpec("resnet18", label="resnet18")),
        key(ClassifierSpec("vit_b_16", label="vit_b_16")),
        key(ClassifierSpec("vit_b_16", "IMAGENET1K_SWAG_LINEAR_V1", label="vit_b_16_IMAGENET1K_SWAG_LINEAR_V1")),
        key(imagenet, ("layer4", "fc")),
        key(imagenet, pool="max"),
    ]
    assert len(set(keys)) == len(keys)
    parts = stage.activation_parts(
        SimpleNamespace(weights="random", seed=0, dissect=SimpleNamespace(layers="auto", pool="mean")),
        ClassifierSpec("vit_b_16", label="vit_b_16"),
        "probe",
        "cpu",
    )
    assert parts["layers"][-1] == "heads" and parts["pooling"] == ["tokens", "tokens", "tokens", "none"]
    assert parts["weights_member"] == "IMAGENET1K_V1" and parts["architecture"] == "vit_b_16"
