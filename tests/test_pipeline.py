"""The command line end to end on small inputs: bad images, interruption and resume, partial stages, plans,
and the offline message. ResNet50 with seeded random weights, two tiny images, cheap methods."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from xai.cli import main

REPO = Path(__file__).resolve().parents[1]


def _config(tmp_path: Path, **explain: object) -> Path:
    config = {
        "name": "test",
        "weights": "random",
        "stages": ["explain"],
        "output_dir": str(tmp_path / "docs"),
        "cache_dir": str(tmp_path / "cache"),
        "explain": {
            "methods": ["lime", "gradcam", "eigencam"],
            "batch_size": 16,
            "lime": {"num_samples": 10, "stability_seeds": 1},
            **explain,
        },
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def images(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a-good", "b-good"):  # names that are their own slug, so the ids are readable
        Image.fromarray(rng.integers(0, 255, (80, 100, 3), dtype=np.uint8)).save(folder / f"{name}.png")
    (folder / "c_empty.jpg").write_bytes(b"")
    (folder / "d_notes.jpg").write_bytes(b"not an image")
    return folder


def _entries(tmp_path: Path) -> set[str]:
    return {p.parent.name for p in (tmp_path / "cache").rglob("meta.json")}


def test_bad_images_are_skipped_listed_and_the_rest_explained(
    tmp_path: Path, images: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(_config(tmp_path)), "--images", str(images), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "c_empty.jpg: empty file" in err and "d_notes.jpg: not an image" in err
    docs = tmp_path / "docs"
    home = (docs / "index.md").read_text().replace("\\", "")  # file names are shown Markdown-escaped
    assert "c_empty.jpg" in home and "d_notes.jpg" in home and "Skipped inputs" in home
    assert (docs / "explanations" / "image-a-good.md").is_file()
    assert (docs / "explanations" / "image-b-good.md").is_file()
    # Stages not run are placeholders, so the nav and links still resolve.
    assert "Not computed in this build" in (docs / "dissection" / "index.md").read_text()


def test_interrupted_run_resumes_without_recomputing(
    tmp_path: Path, images: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import xai.explain.cams.base as cams

    real = cams.compute_cam
    calls: list[str] = []

    def interrupt_on_second_image(*args: object, **kwargs: object) -> object:
        calls.append(str(args[2]))
        if len(calls) == 3:  # image one: gradcam, eigencam; image two: interrupted
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(cams, "compute_cam", interrupt_on_second_image)
    config = str(_config(tmp_path))
    assert main(["--config", config, "--images", str(images), "--quiet"]) == 130
    finished = _entries(tmp_path)
    assert len(finished) >= 4  # image one: prediction, lime, two CAMs; image two: prediction, lime
    calls.clear()
    monkeypatch.setattr(cams, "compute_cam", lambda *a, **k: calls.append(str(a[2])) or real(*a, **k))
    assert main(["--config", config, "--images", str(images), "--quiet"]) == 0
    assert calls == ["gradcam", "eigencam"]  # only image two's CAMs were left to compute
    assert finished < _entries(tmp_path)


def test_changing_one_parameter_reruns_only_what_depends_on_it(
    tmp_path: Path, images: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(_config(tmp_path)), "--images", str(images), "--quiet"]) == 0
    before = _entries(tmp_path)
    config = _config(tmp_path, lime={"num_samples": 12, "stability_seeds": 1})
    assert main(["--config", str(config), "--images", str(images), "--quiet", "--plan"]) == 0
    assert "4/6 cached" in capsys.readouterr().out
    assert main(["--config", str(config), "--images", str(images), "--quiet"]) == 0
    assert len(_entries(tmp_path) - before) == 2  # one new LIME entry per image, nothing else


def test_identical_reruns_give_identical_pages(tmp_path: Path, images: Path) -> None:
    config = str(_config(tmp_path))
    assert main(["--config", config, "--images", str(images), "--quiet"]) == 0
    first = (tmp_path / "docs" / "explanations" / "image-a-good.md").read_text()
    assert main(["--config", config, "--images", str(images), "--quiet"]) == 0
    assert (tmp_path / "docs" / "explanations" / "image-a-good.md").read_text() == first


def test_pretrained_offline_names_every_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path)
    data = yaml.safe_load(config.read_text())
    data.update(weights="pretrained", stages=["dissect", "explain"], weights_dir=str(tmp_path / "weights"))
    config.write_text(yaml.safe_dump(data))
    assert main(["--config", str(config), "--quiet"]) == 2
    err = capsys.readouterr().err
    for filename in (
        "resnet50-11ad3fa6.pth",
        "resnet18-f37072fd.pth",
        "resnet18_places365.pth.tar",
        "ViT-B-16.pt",
    ):
        assert filename in err
    assert "Traceback" not in err and err.startswith("error: Pretrained weights are not available offline")


def test_invalid_config_and_stage_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = str(_config(tmp_path))
    assert main(["--config", config, "--only", "explian"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "'explian'" in err and "explain" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("explain:\n  methods: [lime, gradcam]\n  colour: red\n")
    assert main(["--config", str(bad)]) == 2
    assert "explain.colour: unknown key" in capsys.readouterr().err


def test_pretrained_path_with_a_local_checkpoint_runs_the_sanity_check(
    tmp_path: Path, images: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real-weights code path end to end (checksummed local file, weights_only load, no random-weights stamp,
    the parameter-randomisation check computed), with a seeded checkpoint standing in for the download."""
    import hashlib

    import torch
    from torchvision.models import resnet50

    from xai import classifiers, models
    from xai import plan as plan_module

    weights_dir = tmp_path / "weights"
    weights_dir.mkdir()
    entry = classifiers.weight_file("resnet50", classifiers.resolve_weights("resnet50", "DEFAULT"))
    assert entry.filename == models.WEIGHT_FILES["resnet50"].filename  # the enum's file is the one we pinned
    checkpoint = weights_dir / entry.filename
    torch.manual_seed(1)
    torch.save(resnet50().state_dict(), checkpoint)
    digest = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    pinned = models.WeightFile(entry.model, entry.filename, entry.url, f"sha256:{digest}")
    monkeypatch.setattr(plan_module, "weight_file", lambda name, member: pinned)  # the plan names the file to load
    config = yaml.safe_load(_config(tmp_path).read_text())
    config.update(weights="pretrained", weights_dir=str(weights_dir), stages=["explain", "compare"])
    config["explain"]["methods"] = ["lime", "gradcam"]
    config["compare"] = {"faithfulness_steps": 4, "sanity_images": 1, "sanity_methods": ["gradcam"]}
    path = tmp_path / "pretrained.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["--config", str(path), "--images", str(images), "--quiet"]) == 0
    docs = tmp_path / "docs"
    assert "seeded random weights" not in (docs / "index.md").read_text()
    assert digest[:16] in (docs / "index.md").read_text()
    comparison = (docs / "comparison" / "index.md").read_text()
    assert "to the original map after randomising every layer: Grad-CAM" in comparison
    assert "| conv1+bn1 |" in comparison and "No sanity-check numbers" not in comparison  # the cascade's last step
    assert "edge detector (control)" in comparison and "passes" not in comparison
    assert (docs / "assets" / "comparison" / "sanity.png").is_file()


def test_unknown_target_layer_is_a_config_error(
    tmp_path: Path, images: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, target_layer="layer9[-1]")
    assert main(["--config", str(config), "--images", str(images), "--quiet"]) == 2
    assert "explain.target_layer: 'layer9[-1]' does not name a module" in capsys.readouterr().err


def test_bad_target_layer_is_named_by_the_plan_before_the_task_images_are_downloaded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XAI_MIRROR", raising=False)  # the task images are not on disk: the plan lists them
    config = yaml.safe_load(_config(tmp_path, model="mobilenet_v3_small", target_layer="feature[-1]").read_text())
    path = tmp_path / "task.yaml"
    path.write_text(yaml.safe_dump({**config, "images": "task"}))
    assert main(["--config", str(path), "--plan"]) == 2
    assert "explain.target_layer: 'feature[-1]' does not name a module" in capsys.readouterr().err


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if not line.startswith(("WARNING: seeded RANDOM", "skipped "))]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


def _with(config: Path, **changes: object) -> Path:
    data = yaml.safe_load(config.read_text())
    for key, value in changes.items():
        section, _, name = key.partition("__")
        if name:
            data.setdefault(section, {})[name] = value
        else:
            data[key] = value
    config.write_text(yaml.safe_dump(data))
    return config


def test_cuda_without_cuda_is_one_line(
    tmp_path: Path, images: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["--config", str(_config(tmp_path)), "--images", str(images), "--device", "cuda"]) == 2
    line = _one_line_error(capsys)
    assert "'cuda'" in line and "--device cpu" in line


@pytest.mark.parametrize("key", ["output_dir", "cache_dir"])
def test_unwritable_output_or_cache_folder_is_one_line(
    tmp_path: Path, images: Path, key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")  # below a file nothing can be created, even as root
    config = _with(_config(tmp_path), **{key: str(blocker / "inside")})
    assert main(["--config", str(config), "--images", str(images), "--quiet"]) == 2
    line = _one_line_error(capsys)
    assert f"{key} {blocker / 'inside'}: not writable" in line and "choose another folder" in line
    assert not (tmp_path / "cache").exists()  # stopped before any compute


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"dissect__probe": "no/such/folder"}, "dissect.probe: folder 'no/such/folder' does not exist"),
        ({"dissect__concepts": "no/such/concepts.txt"}, "dissect.concepts: 'no/such/concepts.txt' is neither"),
        ({"dissect__concepts": "30k"}, "dissect.concepts: '30k' is neither a concept set (20k,"),
        (
            {"dissect__layers": ["layer3", "layer5"]},
            "dissect.layers: model resnet18_imagenet: 'layer5' does not name a module of ResNet; close: layer4, layer3",
        ),
    ],
)
def test_dissect_config_mistakes_are_one_line(
    tmp_path: Path, images: Path, changes: dict[str, object], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _with(_config(tmp_path), stages=["dissect"], **{"dissect__probe": "imagenet-samples", **changes})
    assert main(["--config", str(config), "--images", str(images), "--quiet"]) == 2
    assert expected in _one_line_error(capsys)


def test_empty_probe_folder_is_one_line(tmp_path: Path, images: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "probe").mkdir()
    config = _with(_config(tmp_path), stages=["dissect"], dissect__probe=str(tmp_path / "probe"))
    assert main(["--config", str(config), "--images", str(images), "--quiet"]) == 2
    assert "dissect.probe: no images" in _one_line_error(capsys)


def test_broden_unreachable_is_one_line_before_any_compute(
    tmp_path: Path, images: Path, mirror: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mirror holds the concept sets, so Broden is the one thing missing."""
    from xai.dissect import probes

    monkeypatch.setattr(probes, "BRODEN_URL", "http://127.0.0.1:9/broden1_224.zip")  # connection refused
    config = _with(_config(tmp_path), stages=["dissect", "explain"], dissect__probe="broden")
    assert main(["--config", str(config), "--images", str(images), "--quiet"]) == 2
    line = _one_line_error(capsys)
    assert "Broden probe set" in line and "127.0.0.1:9" in line and "imagenet-samples" in line
    assert not list((tmp_path / "cache").rglob("meta.json"))  # nothing computed first


def test_only_explain_never_downloads_broden_for_the_stage_it_only_loads(
    tmp_path: Path, images: Path, mirror: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--only explain`` with dissect in the config and Broden absent: the explain stage runs, the dissect stage is
    only loaded from the cache (nothing there), nothing is downloaded, and the report is written."""
    import pooch

    from xai.dissect import probes

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a load-only stage started a download")

    monkeypatch.setattr(pooch, "retrieve", refuse)
    monkeypatch.setattr(probes, "BRODEN_URL", "http://127.0.0.1:9/broden1_224.zip")
    config = _with(_config(tmp_path), stages=["dissect", "explain"], dissect__probe="broden")
    assert main(["--config", str(config), "--images", str(images), "--only", "explain", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err and "error" not in err
    docs = tmp_path / "docs"
    assert (docs / "explanations" / "image-a-good.md").is_file()
    assert "Not computed in this build" in (docs / "dissection" / "index.md").read_text()


def test_pretrained_offline_names_broden_with_the_weights(
    tmp_path: Path, images: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from xai.dissect import probes

    monkeypatch.setattr(probes, "BRODEN_URL", "http://127.0.0.1:9/broden1_224.zip")
    config = _with(
        _config(tmp_path),
        weights="pretrained",
        weights_dir=str(tmp_path / "weights"),
        stages=["dissect", "explain"],
        dissect__probe="broden",
    )
    assert main(["--config", str(config), "--images", str(images), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "resnet50-11ad3fa6.pth" in err and "ViT-B-16.pt" in err and "Broden probe set" in err
    assert "Traceback" not in err


def test_plan_works_offline_and_lists_downloads_with_sizes(
    tmp_path: Path, images: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _with(
        _config(tmp_path),
        weights="pretrained",
        weights_dir=str(tmp_path / "weights"),
        stages=["dissect", "explain"],
        dissect__probe="broden",
    )
    assert main(["--config", str(config), "--images", str(images), "--quiet", "--plan"]) == 0
    out = capsys.readouterr().out
    assert "would download" in out
    for filename, size in (
        ("resnet50-11ad3fa6.pth", "about 100 MB"),
        ("resnet18-f37072fd.pth", "about 45 MB"),
        ("ViT-B-16.pt", "about 350 MB"),
        ("broden1_224.zip", "about 1 GB"),
    ):
        assert any(filename in line and size in line for line in out.splitlines()), (filename, out)
    assert not (tmp_path / "docs").exists() and not (tmp_path / "cache").exists()


def test_full_disk_mid_run_is_one_line_and_the_next_run_recomputes(
    tmp_path: Path, images: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    real = Path.write_bytes
    writes: list[Path] = []

    def fill_up(self: Path, data: bytes) -> int:
        writes.append(self)
        if len(writes) == 3:  # the third cache entry's arrays
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", fill_up)
    config = str(_config(tmp_path))
    assert main(["--config", config, "--images", str(images), "--quiet"]) == 2
    line = _one_line_error(capsys)
    assert "disk is full" in line and str(tmp_path / "cache") in line
    assert len(_entries(tmp_path)) == 2
    assert not list((tmp_path / "cache" / ".staging").iterdir())  # no staging folder left behind
    monkeypatch.setattr(Path, "write_bytes", real)
    assert main(["--config", config, "--images", str(images), "--quiet"]) == 0
    assert len(_entries(tmp_path)) == 8  # 2 images x (prediction, lime, gradcam, eigencam)


def _offline(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """No mirror (``XAI_NO_MIRROR=1`` semantics), an empty download cache (conftest) and no network."""
    import pooch

    calls: list[str] = []

    def unreachable(url: str, *args: object, **kwargs: object) -> str:
        calls.append(url)
        raise ConnectionError(f"{url}: network unreachable")

    monkeypatch.delenv("XAI_MIRROR", raising=False)
    monkeypatch.setattr(pooch, "retrieve", unreachable)
    return calls


def test_plan_of_the_default_config_works_offline_and_lists_every_data_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _offline(monkeypatch)
    assert (
        main(
            [
                "--config",
                str(REPO / "configs" / "assignment.yaml"),
                "--plan",
                "--weights",
                "pretrained",
                "--output",
                str(tmp_path / "docs"),
                "--quiet",
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    assert calls == [] and "Traceback" not in captured.err
    out = captured.out
    assert "10 input image(s) not downloaded yet" in out and "waits for 10 data file(s)" in out
    lines = out.splitlines()
    # the ten task images and the powered sample's 200 (compare.sample in the default config)
    for folder, count in (("imagenet-sample-images/", 210), ("clip-dissect-concepts/", 3), ("places365/", 1)):
        assert any(line.startswith(f"  {folder}: {count} file(s), ") and "B in all" in line for line in lines), out
    assert "resnet50-11ad3fa6.pth" in out and "broden1_224.zip" in out


def test_missing_task_images_are_all_named_in_one_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _offline(monkeypatch)
    config = _with(_config(tmp_path), stages=["explain"])
    assert main(["--config", str(config), "--images", "task", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert len(calls) == 1  # the first failed download stands for the rest: no timeout per file
    assert "Traceback" not in err and "10 data file(s) could not be downloaded" in err
    assert "imagenet-sample-images/: 10 file(s)" in err and "XAI_MIRROR" in err


def test_a_folder_without_valid_images_stops_before_any_download(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _offline(monkeypatch)
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"not an image")
    config = _with(
        _config(tmp_path),
        weights="pretrained",
        weights_dir=str(tmp_path / "weights"),
        stages=["dissect", "explain"],
        dissect__probe="broden",
    )
    assert main(["--config", str(config), "--images", str(folder), "--quiet"]) == 2
    line = _one_line_error(capsys)
    assert "no valid image" in line and str(folder) in line and calls == []


# ----------------------------------------------------------------------------------------------------------------
# Issue 13: a user's classifier through the command line.


def test_checkpoint_that_does_not_fit_names_the_tensor_and_both_shapes(
    tmp_path: Path, images: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 10-class checkpoint with a 12-line class file: one line, exit 2, before any image is explained."""
    import torch
    from torchvision.models import resnet18

    torch.save(resnet18(num_classes=10).state_dict(), tmp_path / "ours.pt")
    (tmp_path / "classes.txt").write_text("".join(f"class {n}\n" for n in range(12)))
    config = _with(
        _config(tmp_path, model="resnet18", checkpoint="ours.pt", classes="classes.txt"),
        weights="pretrained",
        weights_dir=str(tmp_path / "weights"),
    )
    assert main(["--config", str(config), "--images", str(images), "--quiet"]) == 2
    line = _one_line_error(capsys)
    assert str(tmp_path / "ours.pt") in line and "'fc.weight'" in line
    assert "(10, 512) in the checkpoint but (12, 512) in resnet18 with 12 classes" in line
    assert not (tmp_path / "cache").exists() or not _entries(tmp_path)


def test_a_pickled_module_checkpoint_is_refused_in_one_line(
    tmp_path: Path, images: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch
    from torchvision.models import resnet18

    torch.save(resnet18(), tmp_path / "whole.pt")  # the module, not its state_dict
    config = _with(
        _config(tmp_path, model="resnet18", checkpoint="whole.pt"),
        weights="pretrained",
        weights_dir=str(tmp_path / "weights"),
    )
    assert main(["--config", str(config), "--images", str(images), "--quiet"]) == 2
    line = _one_line_error(capsys)
    assert "whole.pt" in line and "state_dict" in line


def test_bad_target_layer_of_any_model_lists_close_paths_in_the_plan(
    tmp_path: Path, images: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, model="mobilenet_v3_small", target_layer="feature[-1]")
    assert main(["--config", str(config), "--images", str(images), "--plan"]) == 2
    line = _one_line_error(capsys)
    assert "explain.target_layer: 'feature[-1]' does not name a module of MobileNetV3" in line
    assert line.index("close: features") < line.index("top-level: features, avgpool, classifier")


def test_plan_names_the_model_weights_target_layer_and_the_enums_url(
    tmp_path: Path, images: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from torchvision.models import ConvNeXt_Tiny_Weights

    config = _with(_config(tmp_path, model="convnext_tiny"), weights="pretrained", weights_dir=str(tmp_path / "w"))
    assert main(["--config", str(config), "--images", str(images), "--plan"]) == 0
    out = capsys.readouterr().out
    expected = (
        "explain: convnext_tiny (convnext_tiny, weights IMAGENET1K_V1, target layer features[-1][-1], 768 channels)"
    )
    assert expected in out
    url = ConvNeXt_Tiny_Weights.DEFAULT.url
    assert f"{url.rsplit('/', 1)[-1]} (convnext_tiny weights" in out and url in out


def test_offline_message_for_a_torchvision_model_names_its_enum_url(
    tmp_path: Path, images: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import pooch
    from torchvision.models import EfficientNet_B0_Weights

    def offline(*args: object, **kwargs: object) -> None:
        raise OSError("no network")

    monkeypatch.setattr(pooch, "retrieve", offline)
    config = _with(_config(tmp_path, model="efficientnet_b0"), weights="pretrained", weights_dir=str(tmp_path / "w"))
    assert main(["--config", str(config), "--images", str(images), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Pretrained weights are not available offline") and "Traceback" not in err
    assert f"efficientnet_b0 IMAGENET1K_V1): {EfficientNet_B0_Weights.DEFAULT.url}" in err
