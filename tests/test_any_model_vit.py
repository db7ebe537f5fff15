"""Issue 13 end to end (see test_any_model.py): a vision transformer (tokens folded to a map, the class token
dropped) and a ResNet18 checkpoint of our own with 12 classes and its class file, loaded as a user's would be."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.any_model_run import Case, check_pages, run_case

pytestmark = [pytest.mark.slow]

CASES = [Case("vit_b_16", scorecam=False), Case("resnet18", checkpoint_classes=12)]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_any_model_explained_compared_and_published(case: Case, tmp_path: Path, mirror: Path) -> None:
    check_pages(case, run_case(case, tmp_path))
