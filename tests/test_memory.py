"""PeakMemory: the peak of its own block, reset when the block starts (what a stage's record shows)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from xai.memory import PeakMemory


@pytest.mark.skipif(not os.access("/proc/self/clear_refs", os.W_OK), reason="needs Linux's clear_refs")
def test_each_block_reports_its_own_peak() -> None:
    with PeakMemory() as big:
        block = np.ones(300 * 2**20 // 8)  # 300 MiB, touched
        del block
    with PeakMemory() as small:
        np.ones(1000).sum()
    assert big.rss_mb - small.rss_mb > 200  # the second block's peak does not carry the first one's
    assert big.record() == {"rss_mb": round(big.rss_mb, 1), "gpu_mb": None}
