"""Shared fixtures: an isolated environment (no real weights or caches leak in), the data mirror, one headless
Chromium per worker and the smoke site (built once per test run, shared by the workers)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers.mirror import mirror_path
from tests.helpers.smoke import SmokeSite, shared_smoke_site


@pytest.fixture(autouse=True)
def isolated_caches(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the user's torch hub, download cache or Hugging Face cache."""
    root = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("TORCH_HOME", str(root / "torch"))
    monkeypatch.setenv("XAI_DATA_DIR", str(root / "downloads"))
    monkeypatch.setenv("HF_HOME", str(root / "hf"))


@pytest.fixture
def mirror(monkeypatch: pytest.MonkeyPatch) -> Path:
    """The data mirror, set as $XAI_MIRROR for this test only (skips without one)."""
    path = mirror_path()
    if path is None:
        pytest.skip("needs the data mirror (../shared/data or $XAI_MIRROR)")
    monkeypatch.setenv("XAI_MIRROR", str(path))
    return path


@pytest.fixture(scope="session")
def smoke_site(tmp_path_factory: pytest.TempPathFactory) -> SmokeSite:
    """The real report: configs/smoke.yaml generated (twice) and strictly built, once per test run
    (:mod:`tests.helpers.smoke`)."""
    return shared_smoke_site(tmp_path_factory)


def pytest_configure(config: pytest.Config) -> None:
    # Under pytest-xdist every worker would start one OpenMP thread per core; on a small machine the workers'
    # threads then spin-wait on each other and torch runs many times slower. One thread per worker avoids it.
    # A single process gets one thread too: torch's timings are not under test, and CI shares its cores.
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def chromium():
    """One headless Chromium per worker: Playwright's sync API allows a single instance per thread."""
    from tests.helpers.site_checks import browser_unavailable_reason, open_browser

    reason = browser_unavailable_reason()
    if reason is not None:
        if os.environ.get("XAI_REQUIRE_BROWSER") == "1":
            pytest.fail(f"XAI_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(f"browser checks need Chromium + playwright: {reason}")
    with open_browser() as browser:
        yield browser
