"""What a run downloads: pretrained weights, the Broden probe set and the data files of ``manifest.tsv``.

Checked on disk only (``--plan`` works offline and lists them with sizes); ``fetch_downloads`` then fetches them
all before any compute and names every one that could not be had in one message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from xai.data import DataError, fetch
from xai.models import WEIGHT_FILES, WeightFile

if TYPE_CHECKING:
    from xai.plan import DissectPlan, RunPlan

DOWNLOAD_SIZES = {
    "resnet50": "about 100 MB",
    "resnet18_imagenet": "about 45 MB",
    "resnet18_places365": "about 45 MB",
    "clip": "about 350 MB",
}
BRODEN_SIZE = "about 1 GB"


@dataclass(frozen=True)
class Download:
    """A file this run needs that is not on disk yet."""

    name: str
    filename: str
    url: str
    size: str
    model: str | None = None
    """The model whose weights these are; None for a data set."""


def probe_plans(plan: RunPlan, stages: Sequence[str] | None = None) -> dict[str, DissectPlan]:
    """The dissections among ``stages`` (by default the stages run now), by stage: Task 1's, and the concepts
    stage's of the explained model (the dissect section's probe, concept set and CLIP)."""
    stages = plan.run if stages is None else stages
    found = {"dissect": plan.dissect} if "dissect" in stages and plan.dissect is not None else {}
    if "concepts" in stages and plan.concepts is not None:
        found["concepts"] = plan.concepts.dissect
    return found


def broden_needed(plan: RunPlan, stages: Sequence[str] | None = None) -> bool:
    """Whether a dissection among ``stages`` (by default the stages run now) reads Broden and it is not on disk
    yet."""
    from xai.data import cache_dir

    return (
        any(planned.probe == "broden" for planned in probe_plans(plan, stages).values())
        and not (cache_dir() / "broden1_224" / "images").is_dir()
    )


def manifest_files(plan: RunPlan, stages: Sequence[str] | None = None) -> dict[str, list[str]]:
    """The ``manifest.tsv`` files each of ``stages`` (by default the stages run now) reads, by stage (``inputs``
    for the images every run opens): the task images, the concept sets, the Places365 categories, the
    ImageNet-sample probe images and the compare stage's powered sample."""
    from xai.data import TASK_IMAGES, manifest
    from xai.dissect.paper import FC_CONCEPT_SETS
    from xai.dissect.probes import CONCEPT_FILES

    stages = plan.run if stages is None else stages
    needed: dict[str, list[str]] = {}
    if plan.inputs.folder is None:
        needed["inputs"] = [f"imagenet-sample-images/{name}.JPEG" for name in TASK_IMAGES]
    if "dissect" in stages and plan.dissect is not None:
        settings = plan.dissect
        sets = [settings.concepts]
        for entry in settings.models:
            spec = entry.model.spec
            if not entry.facts.no_self_check:  # the paper's fc self-check runs for this preset
                sets.append(FC_CONCEPT_SETS[spec.model_id])
            if spec.classes_format == "places365" and spec.classes is None:
                sets.append("places365")  # the classifier's category names, from the data mirror
        files = [CONCEPT_FILES[name] for name in sets if name in CONCEPT_FILES]
        if settings.probe == "imagenet-samples":
            files += [path for path in manifest() if path.startswith("imagenet-sample-images/")]
        needed["dissect"] = list(dict.fromkeys(files))
    sample = plan.compare.sample if "compare" in stages and plan.compare is not None else None
    if sample is not None:  # the powered sample's drawn ImageNet images (a folder's are the user's)
        needed["compare"] = [source.location for source in sample.drawn if source.from_manifest]
    if "concepts" in stages and plan.concepts is not None:  # one model, no fc self-check
        settings = plan.concepts.dissect
        files = [CONCEPT_FILES[settings.concepts]] if settings.concepts in CONCEPT_FILES else []
        if settings.probe == "imagenet-samples":
            files += [path for path in manifest() if path.startswith("imagenet-sample-images/")]
        needed["concepts"] = files
    return needed


def missing_files(plan: RunPlan, stages: Sequence[str] | None = None) -> dict[str, list[str]]:
    """:func:`manifest_files` that are neither in the mirror nor downloaded yet (checked on disk, no fetch)."""
    from xai.data import local_copy

    missing = {
        stage: [path for path in files if local_copy(path) is None]
        for stage, files in manifest_files(plan, stages).items()
    }
    return {stage: files for stage, files in missing.items() if files}


def missing_downloads(plan: RunPlan) -> list[Download]:
    """What this run would download, checked on disk only: pretrained weights, the Broden probe set and every
    data file of the manifest the planned stages read."""
    from xai.clip import clip_weights_present
    from xai.data import manifest
    from xai.dissect.probes import BRODEN_IMAGE_COUNT, BRODEN_URL
    from xai.models import weights_present

    missing = []
    if plan.weights_mode == "pretrained":
        for name, weight in published_weights(plan).items():
            unverified = plan.config.clip_unverified
            present = (
                clip_weights_present(plan.weights_dir, unverified=unverified)
                if name == "clip"
                else weights_present(weight, plan.weights_dir)
            )
            if not present:
                size = DOWNLOAD_SIZES.get(name, "size not listed")
                missing.append(Download(f"{name} weights", weight.filename, weight.url, size, name))
    if broden_needed(plan):
        missing.append(
            Download(f"Broden probe set ({BRODEN_IMAGE_COUNT:,} images)", "broden1_224.zip", BRODEN_URL, BRODEN_SIZE)
        )
    files = dict.fromkeys(path for paths in missing_files(plan).values() for path in paths)
    for path in files:
        entry = manifest()[path]
        missing.append(Download(path.split("/")[0], path, entry.url, f"{entry.size:,} bytes"))
    return missing


def published_weights(plan: RunPlan) -> dict[str, WeightFile]:
    """Model id -> the published checkpoint each model of the stages run now loads (a user's own checkpoint is not
    downloaded: the config checks that it exists), then CLIP's when dissection runs. torchvision's files come from the
    weights enum member, so the offline message names the member's URL."""
    found: dict[str, WeightFile] = {}
    if {"explain", "compare", "concepts"} & set(plan.run) and plan.explain is not None and plan.explain.model.published:
        found[plan.explain.model_id] = plan.explain.model.published
    if "dissect" in plan.run and plan.dissect is not None:
        for entry in plan.dissect.models:
            if entry.model.published is not None:
                found[entry.model_id] = entry.model.published
        found["clip"] = plan.dissect.clip_published or WEIGHT_FILES["clip"]
    if "concepts" in plan.run and plan.concepts is not None:  # CLIP's crops and the explained layer's dissection
        found["clip"] = plan.concepts.dissect.clip_published or WEIGHT_FILES["clip"]
    return found


def _file_groups(downloads: list[Download]) -> list[str]:
    """One line per folder of manifest files: how many, their total size, and the first one's URL."""
    from xai.data import manifest

    groups: dict[str, list[Download]] = {}
    for download in downloads:
        groups.setdefault(download.name, []).append(download)
    lines = []
    for folder, members in groups.items():
        total = sum(manifest()[d.filename].size for d in members)
        size = f"{total / 1e6:.1f} MB" if total >= 1e6 else f"{total / 1e3:.0f} kB"
        lines.append(
            f"  {folder}/: {len(members)} file(s), {size} in all "
            f"({', '.join(Path(d.filename).name for d in members[:3])}{', ...' if len(members) > 3 else ''}"
            f"; e.g. from {members[0].url})"
        )
    return lines


def download_plan(plan: RunPlan) -> list[str]:
    """The plan's lines about downloads: each missing file with its size (data files grouped by folder), or that
    nothing is missing."""
    missing = missing_downloads(plan)
    if not missing:
        return ["downloads: none needed (everything is on disk)"]
    large = [d for d in missing if d.model is not None or d.filename == "broden1_224.zip"]
    return [
        "would download (run without --plan to fetch; offline, place the files as the error then says):",
        *(f"  {d.filename} ({d.name}, {d.size}) from {d.url}" for d in large),
        *_file_groups([d for d in missing if d not in large]),
    ]


def fetch_downloads(plan: RunPlan) -> None:
    """Before any heavy work: fetch every missing download; name all that could not be had in one message."""
    from xai.data import MIRROR_ENV, cache_dir
    from xai.dissect import probes
    from xai.dissect.probes import ProbeSetError
    from xai.models import WeightsUnavailableError, fetch_weights, missing_message

    weights = published_weights(plan)
    failed_weights, problems, failed_files = [], [], []
    offline = False
    for download in missing_downloads(plan):
        if download.model is not None:
            try:
                fetch_weights(weights[download.model], plan.weights_dir)
            except WeightsUnavailableError:
                failed_weights.append(weights[download.model])
        elif download.filename == "broden1_224.zip":
            import pooch

            pooch.get_logger().setLevel("WARNING")  # its "Downloading ..." line would precede our one-line error
            try:
                probes.broden_paths(cache_dir())
            except ProbeSetError as error:  # probes' one-line message: URL, md5, where to unzip, the alternative
                problems.append(f"Broden probe set ({BRODEN_SIZE}): {error}")
        elif offline:  # one failed download is enough to know: no minutes of timeouts, one per file
            failed_files.append(download)
        else:
            try:
                fetch(download.filename)
            except DataError as error:
                failed_files.append(download)
                offline = "cannot download" in str(error)
                if not offline:
                    problems.append(str(error))
    if failed_files:
        where = f"{cache_dir()} (keeping the folders), or set {MIRROR_ENV} to a folder holding them"
        problems.append(
            f"{len(failed_files)} data file(s) could not be downloaded; place them in {where}:\n"
            + "\n".join(_file_groups(failed_files))
        )
    if failed_weights:
        message = missing_message(failed_weights, plan.weights_dir)
        raise WeightsUnavailableError(message + "".join(f"\nAlso missing: {problem}" for problem in problems))
    if problems:
        raise DataError("\n".join(problems))
