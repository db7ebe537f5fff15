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


def test_a_sanity_method_typo_is_refused_not_silently_dropped(tmp_path: Path) -> None:
    message = _error(tmp_path, "compare:\n  sanity_methods: [lime, gradcm]\n")
    assert "compare.sanity_methods" in message and "'gradcm'" in message and "gradcam" in message


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


# ----------------------------------------------------------------------------------------------------------------
# Issue 13: any torchvision classifier, a user's checkpoint and class file.


def test_assignment_specs_are_todays_models() -> None:
    """The default config keeps computing what it did: resnet50's DEFAULT (= IMAGENET1K_V2) and the two presets."""
    from xai.classifiers import PRESETS, resolve_weights

    config = config_module.load(CONFIGS / "assignment.yaml")
    spec = config.explain.spec()
    assert (spec.architecture, spec.model_id, spec.checkpoint, spec.classes) == ("resnet50", "resnet50", None, None)
    assert resolve_weights(spec.architecture, spec.weights_member).name == "IMAGENET1K_V2"
    assert config.dissect.specs() == (PRESETS["resnet18_imagenet"], PRESETS["resnet18_places365"])


def test_unknown_model_lists_close_matches_first(tmp_path: Path) -> None:
    message = _error(tmp_path, "explain:\n  model: mobilenet_v3_smal\n")
    assert "explain.model: unknown model 'mobilenet_v3_smal'" in message
    assert message.index("close: mobilenet_v3_small") < message.index("all: ") and "vit_b_16" in message


def test_unknown_weights_member_lists_the_models_members(tmp_path: Path) -> None:
    message = _error(tmp_path, "explain:\n  model: resnet50\n  model_weights: IMAGENET1K_V3\n")
    assert "model_weights" in message and "'IMAGENET1K_V3'" in message
    assert message.index("close: IMAGENET1K_V2") < message.index("all: DEFAULT, IMAGENET1K_V1, IMAGENET1K_V2")


def test_missing_checkpoint_and_class_file_are_one_line(tmp_path: Path) -> None:
    message = _error(tmp_path, "explain:\n  model: resnet18\n  checkpoint: nowhere.pt\n")
    assert "explain.checkpoint: file 'nowhere.pt' not found" in message and "state_dict" in message
    message = _error(tmp_path, "dissect:\n  models: [{name: resnet18, classes: nowhere.txt}]\n")
    assert "dissect.models: entry 0: classes: file 'nowhere.txt' not found" in message


@pytest.mark.parametrize(
    ("lines", "expected"),
    [("cat\n\ndog\n", "line 2 is blank"), ("cat\ndog\ncat\n", "'cat' appears on lines 1 and 3"), ("", "is empty")],
)
def test_bad_class_file_is_one_line_naming_it(tmp_path: Path, lines: str, expected: str) -> None:
    (tmp_path / "classes.txt").write_text(lines)
    message = _error(tmp_path, "explain:\n  model: resnet18\n  classes: classes.txt\n")
    assert "explain.classes" in message and "classes.txt" in message and expected in message


def test_relative_paths_are_read_from_the_config_files_folder(tmp_path: Path, monkeypatch) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "ours.pt").write_bytes(b"not read at load time")
    (folder / "classes.txt").write_text("a\nb\n")
    path = folder / "config.yaml"
    path.write_text(
        "explain:\n  model: resnet18\n  checkpoint: ours.pt\n  classes: classes.txt\n"
        "dissect:\n  models:\n    - resnet18_imagenet\n"
        "    - {name: resnet18, checkpoint: ours.pt, classes: classes.txt}\n"
        "    - efficientnet_b0\n  layers: auto\n"
    )
    monkeypatch.chdir(tmp_path)  # elsewhere: the paths must not depend on the working directory
    config = config_module.load(Path("project/config.yaml"))
    spec = config.explain.spec()
    assert spec.checkpoint == Path("project/ours.pt") and spec.classes == Path("project/classes.txt")
    assert spec.model_id == "resnet18_ours"
    assert config.explain.checkpoint == Path("ours.pt")  # shown as given: no local absolute path on the site
    names = [entry.model_id for entry in config.dissect.specs()]
    assert names == ["resnet18_imagenet", "resnet18_ours", "efficientnet_b0"] and config.dissect.layers == "auto"
    assert config.dissect.specs()[1].checkpoint == Path("project/ours.pt")


def test_the_same_dissect_model_twice_is_refused(tmp_path: Path) -> None:
    message = _error(tmp_path, "dissect:\n  models: [efficientnet_b0, {name: efficientnet_b0}]\n")
    assert "'efficientnet_b0' is listed twice" in message
    message = _error(tmp_path, "dissect:\n  models: [{name: resnet18, colour: red}]\n")
    assert "dissect.models: entry 0: colour: unknown key" in message
