"""Defects 4 and 6 (planted) and the design's power: claims are tested in declared families, Holm within each.

Defect 4, before the fix: IoUs planted from 0.97 down to 0.08, ordered on every one of 10 images, all got the
letter "a" (Holm over 36 pairs of 9 maps: the smallest adjusted p is 36 · 2/1024 = 0.070), and that sentence was
the site's headline. Defect 6, before the fix: with no map agreeing with LIME, 15 of 24 simulated reports of 8 CAMs
carried at least one false "agrees beyond" sentence (every verdict uncorrected).
"""

from __future__ import annotations

import itertools
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from xai.compare import intervals
from xai.compare.family import (
    PRIMARY_CAMS,
    Claim,
    adjust,
    detectable_effect,
    smallest_adjusted,
    smallest_p,
)
from xai.compare.narrative import agreement_findings, beats
from xai.compare.stats import ALPHA, holm, paired_comparison, signed_rank_test
from xai.compare.tables import NULLS, agreement_tests

EXTRA_CAMS = ("gradcampp", "xgradcam", "layercam", "hirescam", "eigencam")


def agreement_frame(ious: dict[str, np.ndarray], nulls: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
    """An ``agreement_table`` at k = 5 from per-image IoUs (and per-image null values, default: chance-like)."""
    n = len(next(iter(ious.values())))
    rows = []
    for method, values in ious.items():
        for image in range(n):
            found = {name: nulls[name][method][image] for name in NULLS} if nulls else {}
            rows.append(
                {
                    "image": f"img{image}",
                    "method": method,
                    "k": 5,
                    "n_seeds": 1,
                    "iou": values[image],
                    "iou_seed_std": math.nan,
                    "dice": values[image],
                    "chance_iou": 0.05,
                    "superpixel_iou": found.get("superpixel", 0.05),
                    "superpixel_p": 0.5,
                    "cross_image_iou": found.get("cross_image", 0.05),
                    "location_iou": found.get("location", 0.05),
                    "rho": 0.0,
                    "excluded": "",
                }
            )
    return pd.DataFrame(rows)


def ordered_ious(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Eight CAMs and the centre prior, planted from 0.97 down to 0.08 and in that order on every image."""
    methods = [*PRIMARY_CAMS, *EXTRA_CAMS, "centre"]
    levels = np.linspace(0.97, 0.08, len(methods))
    return {m: np.clip(level + rng.uniform(-0.02, 0.02, 10), 0, 1) for m, level in zip(methods, levels, strict=True)}


def test_ordered_primary_cams_are_separated_and_the_headline_is_not_vacuous() -> None:
    tested = agreement_tests(agreement_frame(ordered_ious(np.random.default_rng(0))), k=5)
    rows = tested.by_method.set_index("method")
    assert [rows.at[m, "primary_group"] for m in PRIMARY_CAMS] == ["a", "b", "c"]
    design = pd.DataFrame(tested.design).set_index("family")
    # primary: 3 CAMs x 3 nulls (one-sided) + 3 pairs; exploratory: 5 CAMs x 3 nulls + the other 25 pairs
    assert design.at["primary", "tests"] == 12 and design.at["exploratory", "tests"] == 40
    assert design.at["primary", "smallest_adjusted_p_two_sided"] == pytest.approx(12 / 1024)
    assert design.at["exploratory", "smallest_adjusted_p_two_sided"] == pytest.approx(50 / 1024)
    summary = SimpleNamespace(agreement_by_method=tested.by_method, design=pd.DataFrame(tested.design), k=5)
    summary.agreement = agreement_frame(ordered_ious(np.random.default_rng(0)))
    sentences = agreement_findings(summary)
    headline = next(s for s in sentences if s.startswith("The assignment's CAMs by IoU"))
    assert "Grad-CAM 0.97 (a), AblationCAM 0.86 (b), Score-CAM 0.75 (c)" in headline
    assert "(Holm, 12 primary tests, n = 10)" in headline


def test_a_family_that_cannot_reach_alpha_says_so_instead_of_printing_letters() -> None:
    """The old design: all 36 pairs of 9 maps on 10 images. No pair can reach α: no letters, a plain sentence."""
    ious = ordered_ious(np.random.default_rng(1))
    tested = agreement_tests(agreement_frame(ious), k=5, primary=())
    assert (tested.by_method["agreement_group"] == "").all()
    assert smallest_adjusted(10, 0, 36, "two-sided") == pytest.approx(36 * 2 / 1024)  # 0.070, the number
    assert smallest_adjusted(10, 0, 55, "two-sided") == pytest.approx(55 * 2 / 1024)  # 0.107 (faithfulness)
    summary = SimpleNamespace(
        agreement_by_method=tested.by_method, design=pd.DataFrame(tested.design), k=5, agreement=agreement_frame(ious)
    )
    sentence = next(s for s in agreement_findings(summary) if s.startswith("Every CAM by IoU"))
    assert "cannot be ranked on 10 images (smallest attainable Holm p" in sentence
    assert "(a)" not in sentence


def test_smallest_adjusted_is_holms_best_case() -> None:
    """Every test at its smallest p, one-sided first: Holm's adjusted p of each side equals the formula."""
    for n, one, two in itertools.product((6, 10, 14), (0, 3, 9), (1, 3, 36)):
        p = [smallest_p(n, "greater")] * one + [smallest_p(n, "two-sided")] * two
        adjusted = holm(p)
        assert adjusted[one:].min() == pytest.approx(smallest_adjusted(n, one, two, "two-sided"))
        if one:
            assert adjusted[:one].min() == pytest.approx(smallest_adjusted(n, one, two, "greater"))
    assert math.isnan(smallest_adjusted(10, 0, 3, "greater"))
    assert smallest_p(10, "two-sided") == 2 / 1024 == signed_rank_test(np.arange(1, 11)).p_two_sided


def test_detectable_effect_has_the_stated_power() -> None:
    """d* at n = 10, level α/12: a fresh simulation of the claim rule (exact test p < level, t-interval above 0)
    detects N(d*, 1) differences about 80% of the time and 0.6 d* far less often."""
    level = ALPHA / 12
    d = detectable_effect(10, level, "greater")
    assert 0.8 < d < 2.5

    def power(effect: float) -> float:
        rng = np.random.default_rng(11)
        found = 0
        for _ in range(300):
            sample = rng.normal(effect, 1, 10)
            comparison = paired_comparison(sample, np.zeros(10))
            found += comparison.p_greater < level and comparison.low > 0
        return found / 300

    assert power(d) == pytest.approx(0.8, abs=0.08)
    assert power(0.6 * d) < 0.55
    assert detectable_effect(4, level, "greater") == math.inf  # 2^-4 = 0.0625 > α/12: nothing is detectable
    assert detectable_effect(200, ALPHA / 12, "two-sided") < 0.35  # the powered sample
    assert detectable_effect(10, level, "two-sided") > d


def _null_report(rng: np.random.Generator, n: int = 10) -> pd.DataFrame:
    """8 CAMs and the centre prior that agree with LIME no more than the nulls do: IoU and each null's value are
    exchangeable draws per image (a shared per-image level, as LIME's mask area sets one)."""
    methods = [*PRIMARY_CAMS, *EXTRA_CAMS, "centre"]
    level = rng.beta(2, 6, n)

    def draw() -> np.ndarray:
        return np.clip(level + rng.normal(0, 0.08, n), 0, 1)

    ious = {m: draw() for m in methods}
    nulls = {name: {m: draw() for m in methods} for name in NULLS}
    return agreement_frame(ious, nulls)


def test_no_false_claims_beyond_the_nominal_rate_when_nothing_agrees(monkeypatch) -> None:
    monkeypatch.setattr(intervals, "N_RESAMPLES", 999)  # speed: the claims do not hinge on the interval's tails
    reports = 200
    false_claims = {"primary": 0, "exploratory": 0}
    uncorrected = 0
    for replicate in range(reports):
        frame = agreement_tests(_null_report(np.random.default_rng(replicate)), k=5).by_method
        for family in false_claims:
            rows = frame[frame["superpixel_family"] == family]
            false_claims[family] += bool(rows[[f"{name}_claim" for name in NULLS]].to_numpy().any())
        cams = frame[frame["method"] != "centre"]
        uncorrected += any(beats(row, f"{name}_") for _, row in cams.iterrows() for name in NULLS)
    for family, count in false_claims.items():
        assert count / reports <= 0.08, (family, count)  # Holm: at most α per family (SE 0.015 at 200 reports)
    assert uncorrected / reports > 0.3  # the same reports judged claim by claim, uncorrected (the old verdicts)


def test_verdicts_adjust_within_each_family_only() -> None:
    def claim(family: str, p: float) -> Claim:
        comparison = SimpleNamespace(p_greater=p, p_value=p, low=0.1, high=0.2, sd=0.1)
        return Claim(family, "m", "superpixel", "greater", comparison)  # type: ignore[arg-type]

    verdicts = adjust([claim("primary", 0.01), claim("exploratory", 0.01), claim("primary", 0.04)])
    assert [v.p_holm for v in verdicts] == pytest.approx([0.02, 0.01, 0.04])
    assert [v.family_size for v in verdicts] == [2, 1, 2]
    assert [v.holds for v in verdicts] == [True, True, True]
