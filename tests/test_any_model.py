"""Issue 13: any torchvision classifier through explain + compare and a strict site build, at real input size with
seeded random weights (CNNs here; the vision transformer and a fine-tuned checkpoint in test_any_model_vit.py, a
second file so that ``--dist loadfile`` runs the two halves on two workers). Each case prints its generate time."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.any_model_run import Case, check_pages, run_case

pytestmark = [pytest.mark.slow]

CASES = [Case("mobilenet_v3_small"), Case("efficientnet_b0", scorecam=False), Case("convnext_tiny", scorecam=False)]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_any_model_explained_compared_and_published(case: Case, tmp_path: Path, mirror: Path) -> None:
    check_pages(case, run_case(case, tmp_path))
