"""One key rule for every stage: a cache key covers the domain code that computes its artifact and the versions of
the libraries that can change a number; editing glue (stages, plan, runner, context, command line, config), a
comment or a docstring invalidates nothing."""

from __future__ import annotations

import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

import xai
import xai.cache as cache_module
from xai.stages import compare_keys, dissect_keys
from xai.stages import concepts as concepts_stage
from xai.stages import explain as explain_stage

PACKAGE = Path(xai.__file__).parent

PIECE_CODE = {
    "explain": explain_stage.CODE,
    "compare": compare_keys.CODE,
    "dissect probe": dissect_keys.PROBE_CODE,
    "dissect labels": dissect_keys.LABEL_CODE,
    "concepts": concepts_stage.CODE,
}
"""Every code list a stage keys its pieces with."""

GLUE = (
    "stages/compare.py",
    "stages/compare_keys.py",
    "stages/compare_sample.py",
    "stages/explain.py",
    "stages/dissect.py",
    "stages/dissect_keys.py",
    "stages/probe_shards.py",
    "stages/__init__.py",
)
GLUE += ("stages/concepts.py", "pipeline.py", "plan.py", "plan_types.py", "context.py", "cli.py", "config.py")
GLUE += ("config_concepts.py", "config_compare.py", "estimate.py", "estimate_work.py", "units.py", "executor.py")
GLUE += ("downloads.py",)


def _versions(root: Path) -> dict[str, str]:
    cache_module.code_version.cache_clear()
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(cache_module, "PACKAGE_ROOT", root)
            return {piece: cache_module.code_version(*code) for piece, code in PIECE_CODE.items()}
    finally:
        cache_module.code_version.cache_clear()


@pytest.fixture
def package_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "xai"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


@pytest.mark.parametrize("edited", GLUE)
def test_editing_glue_invalidates_nothing(package_copy: Path, edited: str) -> None:
    before = _versions(package_copy)
    target = package_copy / edited
    target.write_text(target.read_text() + "\n\ndef added_by_a_test() -> int:\n    return 1\n")
    assert _versions(package_copy) == before


@pytest.mark.parametrize(
    ("edited", "pieces"),
    [
        ("explain/lime_image.py", {"explain", "compare", "concepts"}),
        ("explain/cams/ablation.py", {"explain", "compare", "concepts"}),
        ("compare/stats.py", {"compare"}),
        ("compare/layer_groups.py", {"compare"}),
        ("compare/nulls.py", {"compare", "concepts"}),  # the concepts' tie-breaking and p-values
        ("dissect/similarity.py", {"dissect labels", "concepts"}),
        ("dissect/findings.py", {"dissect labels", "concepts"}),  # analysis code never throws away a probe pass
        ("dissect/probe_pass.py", {"dissect probe", "dissect labels", "concepts"}),
        ("concepts/bars.py", {"concepts"}),  # the concept pieces only: the dissection keeps Task 1's keys
        ("concepts/presence.py", {"concepts"}),
        ("data.py", set(PIECE_CODE)),
        ("architectures.py", set(PIECE_CODE)),
        ("classifiers.py", set(PIECE_CODE)),
        ("models.py", set(PIECE_CODE)),
        ("serial.py", set(PIECE_CODE)),
    ],
)
def test_editing_domain_code_invalidates_exactly_what_it_computes(
    package_copy: Path, edited: str, pieces: set[str]
) -> None:
    before = _versions(package_copy)
    target = package_copy / edited
    target.write_text(target.read_text() + "\n\nADDED_BY_A_TEST = 1\n")
    after = _versions(package_copy)
    assert {piece for piece in PIECE_CODE if after[piece] != before[piece]} == pieces


def test_a_comment_or_docstring_edit_invalidates_nothing(package_copy: Path) -> None:
    before = _versions(package_copy)
    target = package_copy / "compare" / "stats.py"
    source = target.read_text()
    docstring_end = source.index('"""', 3)
    target.write_text(source[:docstring_end] + " A docstring edit." + source[docstring_end:] + "\n# a comment\n")
    assert _versions(package_copy) == before


def test_a_library_upgrade_invalidates_every_piece(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before, the labels key ignored library versions: after a torch upgrade the embeddings were recomputed and
    stale labels served. Now every piece's key moves with torch, open_clip, numpy, ..."""
    before = _versions(PACKAGE)
    real = metadata.version
    monkeypatch.setattr(
        metadata, "version", lambda name: "99.0" if name == "open_clip_torch" else real(name), raising=True
    )
    after = _versions(PACKAGE)
    assert all(after[piece] != before[piece] for piece in PIECE_CODE)


def test_every_module_the_domain_code_imports_is_hashed() -> None:
    """Import each stage's domain packages (and what they import lazily) in a fresh interpreter: every xai module
    loaded is hashed into that stage's key, or is glue by design (no computation) or the package version."""
    lazily = [
        "xai.compare",
        "xai.compare.layer_groups",
        "xai.compare.sanity",
        "xai.explain",
        "xai.explain.cams.base",
        "xai.explain.lime_image",
        "xai.dissect",
        "xai.dissect.probe_pass",
        "xai.dissect.labelling",
        "xai.shapes",
    ]
    code = (
        f"import importlib, sys\nfor m in {lazily!r}: importlib.import_module(m)\n"
        "print('\\n'.join(m.__file__ for n, m in sys.modules.items() if n.startswith('xai') and m.__file__))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=PACKAGE.parent
    ).stdout.split()
    covered: set[Path] = set()
    for name in (*cache_module.SHARED_SOURCES, "compare", "explain", "dissect"):
        target = PACKAGE / name
        covered |= set(target.rglob("*.py")) if target.is_dir() else {target.with_suffix(".py")}
    # what computes nothing: the version string, the cache's storage (versioned by CACHE_FORMAT), the error base, the
    # config's types, the batch-size search (it changes no number), the stage registry (a list of names)
    exempt = {"__init__.py", "cache.py", "errors.py", "config.py", "batching.py", "stages/__init__.py"}
    missing = [
        str(path.relative_to(PACKAGE))
        for path in map(Path, loaded)
        if path.resolve() not in {p.resolve() for p in covered} and str(path.relative_to(PACKAGE)) not in exempt
    ]
    assert not missing
