"""Every config mistake is one line naming the file, the key and the fix (issue 18): the exact wording per kind of
mistake, and a sweep that no message leaks pydantic's internals (``<root>``, ``Value error``, branch tags)."""

from __future__ import annotations

from pathlib import Path

import pytest

from xai import config as config_module
from xai.cli import main
from xai.config import Config, ConfigError, DissectConfig, ExplainConfig, LimeConfig, ModelEntry
from xai.errors import UserError


def _error(tmp_path: Path, text: str) -> str:
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        config_module.load(path)
    return str(raised.value).removeprefix(f"{path}: ")


def _allowed(message: str) -> list[str]:
    return message.split("allowed keys here: ", 1)[1].split(", ")


def test_config_error_is_a_user_error_and_a_value_error() -> None:
    assert issubclass(ConfigError, UserError) and issubclass(ConfigError, ValueError)


def test_unknown_top_level_key_lists_every_allowed_key_closest_first(tmp_path: Path) -> None:
    message = _error(tmp_path, "explian: {}\n")
    assert message.startswith("explian: unknown key; allowed keys here: explain, ")
    assert sorted(_allowed(message)) == sorted(Config.model_fields)


def test_unknown_nested_key_lists_that_sections_keys_closest_first(tmp_path: Path) -> None:
    message = _error(tmp_path, "explain:\n  methdos: [lime, gradcam]\n")
    assert message.startswith("explain.methdos: unknown key; allowed keys here: methods, ")
    allowed = _allowed(message)
    assert sorted(allowed) == sorted(ExplainConfig.model_fields)
    # after the close matches, the rest in declaration order
    rest = [key for key in ExplainConfig.model_fields if key not in allowed[: allowed.index("methods") + 1]]
    assert allowed[-len(rest) :] == rest
    lime = _error(tmp_path, "explain:\n  lime:\n    num_sample: 5\n")
    assert lime.startswith("explain.lime.num_sample: unknown key; allowed keys here: num_samples, ")
    assert sorted(_allowed(lime)) == sorted(LimeConfig.model_fields)


def test_unknown_key_in_a_model_entry_lists_the_entry_keys(tmp_path: Path) -> None:
    message = _error(tmp_path, "dissect:\n  models:\n    - {name: resnet18, wieghts: DEFAULT}\n")
    assert message.startswith("dissect.models: entry 0: wieghts: unknown key; allowed keys here: weights, ")
    assert sorted(_allowed(message)) == sorted(ModelEntry.model_fields)


def test_missing_required_key(tmp_path: Path) -> None:
    message = _error(tmp_path, "dissect:\n  models:\n    - {weights: DEFAULT}\n")
    assert message == "dissect.models: entry 0: name: required key missing; add it"


def test_value_out_of_range_says_the_bound(tmp_path: Path) -> None:
    message = _error(tmp_path, "explain:\n  lime:\n    num_samples: 5\n")
    assert message == "explain.lime.num_samples: got 5; must be greater than or equal to 10"


def test_wrong_type_shows_the_value(tmp_path: Path) -> None:
    message = _error(tmp_path, "seed: many\n")
    assert message == "seed: got 'many'; must be a valid integer, unable to parse string as an integer"


def test_bad_choice_lists_the_choices(tmp_path: Path) -> None:
    assert _error(tmp_path, "weights: imagenet\n") == "weights: got 'imagenet'; must be 'pretrained' or 'random'"


def test_list_position_is_shown_in_brackets(tmp_path: Path) -> None:
    message = _error(tmp_path, "stages: [dissect, explian]\n")
    assert message == "stages[1]: got 'explian'; must be 'dissect', 'explain', 'compare' or 'concepts'"


def test_union_gives_every_alternative_and_no_branch_tag(tmp_path: Path) -> None:
    assert _error(tmp_path, "dissect:\n  layers: 5\n") == "dissect.layers: got 5; must be 'auto' or a list, e.g. [a, b]"


def test_section_that_is_not_a_mapping(tmp_path: Path) -> None:
    message = _error(tmp_path, "explain: resnet50\n")
    assert message == "explain: got 'resnet50'; must be a mapping of keys to values (nested 'key: value' lines)"


def test_our_validators_message_is_kept(tmp_path: Path) -> None:
    message = _error(tmp_path, "explain:\n  batch_size: 0\n")
    assert message == "explain.batch_size: got 0; use 'auto' (measured) or a whole number from 1 to 4096"


def test_a_check_across_keys_names_them_without_a_root_placeholder(tmp_path: Path) -> None:
    message = _error(tmp_path, "explain:\n  methods: [gradcam]\n")
    assert message.startswith("the compare stage needs 'lime' in explain.methods")


def test_other_problems_are_counted_per_key(tmp_path: Path) -> None:
    message = _error(tmp_path, "seed: many\nweights: imagenet\ndissect:\n  layers: 5\n")
    # the first in declaration order; dissect.layers' two failed union branches count as one key
    assert message == "weights: got 'imagenet'; must be 'pretrained' or 'random' (and 2 more)"


def test_missing_file_names_the_shipped_configs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        config_module.load(tmp_path / "nope.yaml")
    assert str(raised.value) == (
        f"{tmp_path / 'nope.yaml'}: no such config file; give the path of a YAML config, or one of the shipped "
        "configs: configs/assignment.yaml, configs/quick.yaml, configs/smoke.yaml"
    )


def test_yaml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    message = _error(tmp_path, "name: x\nexplain:\n  methods: [lime, gradcam\n")
    assert message.startswith("not valid YAML at line 4, column 1 (")
    assert message.endswith("); fix the syntax there ('key: value' lines, nested keys indented)")


def test_top_level_that_is_not_a_mapping(tmp_path: Path) -> None:
    assert _error(tmp_path, "- lime\n- gradcam\n").startswith("the top level is a list, not a mapping; write 'key: ")


def test_a_folder_or_binary_file_given_as_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="a folder, not a config file; give the path of a YAML file"):
        config_module.load(tmp_path)
    binary = tmp_path / "weights.pt"
    binary.write_bytes(b"\x80\x04\x95\xff\xfe")
    with pytest.raises(ConfigError, match="not UTF-8 text; save the config as UTF-8 YAML"):
        config_module.load(binary)


BAD_CONFIGS = [
    "explian: {}\n",
    "explain:\n  methdos: [lime]\n",
    "explain:\n  lime:\n    num_samples: 0\n",
    "explain:\n  lime: 3\n",
    "explain:\n  methods: [lime]\n",
    "explain:\n  preprocess: tutorial\n",
    "dissect:\n  layers: {a: 1}\n",
    "dissect:\n  models: resnet18\n",
    "dissect:\n  models: [{name: resnet18, weights: NOPE}]\n",
    "dissect:\n  probe_limit: 3\n",
    "compare:\n  top_k: five\n",
    "stages: explain\n",
    "max_images: -1\n",
    "device: tpu\n",
]


@pytest.mark.parametrize("text", BAD_CONFIGS)
def test_every_message_is_one_line_with_the_file_and_no_internals(tmp_path: Path, text: str) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        config_module.load(path)
    message = str(raised.value)
    assert "\n" not in message and message.startswith(f"{path}: ")
    for internal in ("<root>", "Value error", "literal[", "tuple[", "function-", "Input should"):
        assert internal not in message, message


def test_the_command_line_prints_the_one_line_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("dissect:\n  simliarity: soft_wpmi\n")
    assert main(["--config", str(path)]) == 2
    err = capsys.readouterr().err
    allowed = ", ".join(["similarity", *(key for key in DissectConfig.model_fields if key != "similarity")])
    assert err == f"error: {path}: dissect.simliarity: unknown key; allowed keys here: {allowed}\n"
