from pathlib import Path

import pytest

from xai import config as config_module
from xai.config import ConfigError

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("name", ["assignment", "quick", "smoke"])
def test_shipped_configs_load(name: str) -> None:
    config = config_module.load(CONFIGS / f"{name}.yaml")
    assert config.name == name


def test_assignment_is_the_task_as_specified() -> None:
    config = config_module.load(CONFIGS / "assignment.yaml")
    assert config.weights == "pretrained"
    assert config.explain.model == "resnet50" and config.explain.target_layer == "layer4[-1]"
    assert {"lime", "gradcam", "ablationcam", "scorecam"} <= set(config.explain.methods)
    assert config.explain.lime.num_samples == 1000 and config.explain.lime.hide_color == 0
    assert config.dissect.layers == ("layer3", "layer4", "fc")
    assert config.dissect.models == ("resnet18_imagenet", "resnet18_places365")


def test_smoke_uses_random_weights() -> None:
    assert config_module.load(CONFIGS / "smoke.yaml").weights == "random"


def _error(tmp_path: Path, text: str) -> str:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        config_module.load(path)
    message = str(raised.value)
    assert "\n" not in message and str(path) in message
    return message


def test_unknown_key_is_named(tmp_path: Path) -> None:
    assert "explain.lime.num_sample: unknown key" in _error(tmp_path, "explain:\n  lime:\n    num_sample: 5\n")


def test_wrong_type_is_named(tmp_path: Path) -> None:
    assert "seed:" in _error(tmp_path, "seed: many\n")


def test_bad_choice_lists_allowed_values(tmp_path: Path) -> None:
    message = _error(tmp_path, "weights: imagenet\n")
    assert "weights:" in message and "'pretrained'" in message and "'random'" in message


def test_unknown_method_lists_the_registry(tmp_path: Path) -> None:
    message = _error(tmp_path, "explain:\n  methods: [gradcam, gradkam]\n")
    assert "explain.methods" in message and "'gradkam'" in message and "scorecam" in message


def test_unknown_similarity_lists_the_registry(tmp_path: Path) -> None:
    from xai.dissect.similarity import SIMILARITY_FUNCTIONS

    message = _error(tmp_path, "dissect:\n  similarity: softwpmi\n")
    assert "dissect.similarity" in message and "'softwpmi'" in message
    assert all(name in message for name in SIMILARITY_FUNCTIONS)


def test_a_similarity_registered_once_is_accepted_by_the_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The registry is the one list: adding a function there is all the config needs."""
    from xai.dissect import similarity

    monkeypatch.setitem(similarity.SIMILARITY_FUNCTIONS, "toy_similarity", similarity.cos_similarity)
    path = tmp_path / "toy.yaml"
    path.write_text("dissect:\n  similarity: toy_similarity\n")
    assert config_module.load(path).dissect.similarity == "toy_similarity"


def test_unknown_dissect_model_lists_the_models(tmp_path: Path) -> None:
    message = _error(tmp_path, "dissect:\n  models: [resnet18_imagenet, resnet5]\n")
    assert "dissect.models" in message and "'resnet5'" in message
    assert all(name in message for name in config_module.DISSECT_MODELS)
    # close matches first, then everything allowed (presets and torchvision names)
    assert message.index("close: resnet50") < message.index("all: ")
    assert "\n" not in message


def test_out_of_range_value(tmp_path: Path) -> None:
    assert "explain.lime.num_samples" in _error(tmp_path, "explain:\n  lime:\n    num_samples: 0\n")


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        config_module.load(tmp_path / "nope.yaml")
    assert "not valid YAML" in _error(tmp_path, "a: [1, 2\n")


def test_cli_overrides_replace_file_values() -> None:
    config = config_module.load(CONFIGS / "assignment.yaml", weights="random", images=None)
    assert config.weights == "random" and config.images == "task"
