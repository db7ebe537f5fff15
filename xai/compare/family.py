"""Families of claims: which tests are declared, Holm over each family, and what n images can show at all.

Every sentence that claims something ("agrees beyond a null", "A and B differ") is one test of a declared family,
and its p-value is Holm-adjusted (Holm 1979; valid under any dependence between the tests) over that family:

* **primary**: declared before seeing data: the assignment's CAMs (``PRIMARY_CAMS``: Grad-CAM, AblationCAM,
  ScoreCAM) against each null (one-sided), and those CAMs against each other (two-sided); for faithfulness, LIME and
  those CAMs against each baseline map (one-sided) and against each other (two-sided).
* **exploratory**: every other claim the page makes (the other CAMs against the nulls, the remaining pairs), in one
  family of its own.

What a design can reach is computed, not guessed:

* ``smallest_p(n, sided)``: the smallest exact signed-rank p with n non-zero differences, ``2^-n`` one-sided and
  ``2^(1-n)`` two-sided (every sign equal). ``smallest_adjusted``: the smallest Holm-adjusted p a claim can reach in
  its family whatever the data (Holm's first step multiplies the smallest p by m); when it is not below α the page
  says so instead of ranking (36 two-sided pairs on 10 images: 36 · 2/1024 = 0.070).
* ``detectable_effect(n, level, sided)``: the smallest standardised mean difference ``d = δ/σ`` of normal paired
  differences (σ: their SD) that the claim rule (exact signed-rank p at ``level`` and the 95% t-interval excluding
  0) detects with probability ``POWER``, by seeded simulation (``POWER_REPLICATES`` samples, common random numbers,
  bisection). At ``level = α/m`` it is what a lone true difference among m needs (Holm's first step); multiplied by
  the observed SD of the differences it is an IoU or faithfulness difference. It assumes normal differences and
  independent images (the signed-rank test's relative efficiency is 0.955 there, so little is lost to it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
from scipy import stats as scipy_stats

from xai.compare.stats import ALPHA, PairedComparison, exceeds, holm, separated, signed_rank_distribution

Sided = Literal["greater", "two-sided"]
FamilyName = Literal["primary", "exploratory"]
PRIMARY_CAMS: tuple[str, ...] = ("gradcam", "ablationcam", "scorecam")
"""The assignment's CAMs (``xai.explain.registry``'s required CAM methods)."""
POWER = 0.8
POWER_REPLICATES = 4000
DESIGN_COLUMNS = [
    "question", "family", "n_images", "tests", "one_sided_tests", "two_sided_tests", "smallest_adjusted_p_one_sided",
    "smallest_adjusted_p_two_sided", "detectable_d_one_sided", "detectable_d_two_sided", "sd_median",
    "detectable_one_sided", "detectable_two_sided",
]  # fmt: skip


@dataclass(frozen=True)
class Claim:
    """One declared test: ``subject`` against ``other`` (a null, a baseline or another method)."""

    family: FamilyName
    subject: str
    other: str
    sided: Sided
    comparison: PairedComparison

    @property
    def p_value(self) -> float:
        """The uncorrected p of the claim's side."""
        return self.comparison.p_greater if self.sided == "greater" else self.comparison.p_value


@dataclass(frozen=True)
class Verdict:
    claim: Claim
    p_holm: float
    """Holm-adjusted over the claim's family."""
    family_size: int

    @property
    def holds(self) -> bool:
        """The claim is made: the adjusted p < ``ALPHA`` and the interval of the mean difference agrees."""
        c = self.claim.comparison
        if self.claim.sided == "greater":
            return exceeds(self.p_holm, c.low)
        return separated(self.p_holm, c.low, c.high)


def adjust(claims: Sequence[Claim]) -> list[Verdict]:
    """Holm over each family (in input order); an untestable claim (NaN p) is not counted."""
    verdicts: dict[int, Verdict] = {}
    for family in dict.fromkeys(claim.family for claim in claims):
        members = [index for index, claim in enumerate(claims) if claim.family == family]
        adjusted = holm([claims[index].p_value for index in members])
        size = int(np.isfinite(adjusted).sum())
        for index, p_holm in zip(members, adjusted, strict=True):
            verdicts[index] = Verdict(claims[index], float(p_holm), size)
    return [verdicts[index] for index in range(len(claims))]


def smallest_p(n: int, sided: Sided) -> float:
    """The smallest exact signed-rank p with ``n`` non-zero differences (1 when n = 0)."""
    if n <= 0:
        return 1.0
    return min(1.0, 2.0 ** (-n) * (1 if sided == "greater" else 2))


def smallest_adjusted(n: int, one_sided: int, two_sided: int, sided: Sided) -> float:
    """The smallest Holm-adjusted p a claim of side ``sided`` can reach in a family of ``one_sided`` one-sided and
    ``two_sided`` two-sided tests on ``n`` images: every test at its smallest p, the one-sided first. Holm's
    adjusted p is the running maximum of ``(m − i + 1) · p_(i)``, so a one-sided claim reaches ``m · 2^-n`` and a
    two-sided one ``max(m · 2^-n, two_sided · 2^(1-n))`` (``m · 2^(1-n)`` when every test is two-sided). NaN when the
    family has no test of that side."""
    tests = one_sided + two_sided
    if not (one_sided if sided == "greater" else two_sided):
        return math.nan
    first = tests * smallest_p(n, "greater" if one_sided else "two-sided")
    reached = first if sided == "greater" else max(first, two_sided * smallest_p(n, "two-sided"))
    return min(1.0, reached)


def _critical_value(n: int, level: float) -> float:
    """Smallest W+ with P(W+ >= w) < ``level`` for n untied ranks (the claim rule is p < level); inf when none."""
    distribution = signed_rank_distribution(2 * np.arange(1, n + 1))
    tail = np.cumsum(distribution[::-1])[::-1]  # tail[s] = P(2 W+ >= s)
    reachable = np.flatnonzero(tail < level)
    return float(reachable[0]) / 2 if reachable.size else math.inf


@lru_cache(maxsize=256)
def detectable_effect(n: int, level: float, sided: Sided, power: float = POWER) -> float:
    """Smallest ``d = δ/σ`` detected with probability ``power`` at ``level`` on ``n`` images (module docstring);
    inf when the smallest attainable p exceeds ``level``."""
    one_sided_level = level if sided == "greater" else level / 2
    if n < 2 or smallest_p(n, "greater") >= one_sided_level:
        return math.inf
    critical = _critical_value(n, one_sided_level)
    noise = np.random.default_rng(20260614).standard_normal((POWER_REPLICATES, n))
    t_quantile = scipy_stats.t.ppf(0.975, n - 1)

    def detected(d: float) -> float:
        sample = noise + d
        ranks = np.argsort(np.argsort(np.abs(sample), axis=1), axis=1) + 1
        w_plus = np.where(sample > 0, ranks, 0).sum(axis=1)
        low = sample.mean(axis=1) - t_quantile * sample.std(axis=1, ddof=1) / math.sqrt(n)
        return float(np.mean((w_plus >= critical) & (low > 0)))

    low, high = 0.0, 1.0
    while detected(high) < power:
        low, high = high, 2 * high
        if high > 64:
            return math.inf
    for _ in range(30):
        middle = (low + high) / 2
        low, high = (middle, high) if detected(middle) < power else (low, middle)
    return high


def design_row(question: str, family: FamilyName, n_images: int, claims: Sequence[Claim]) -> dict[str, object]:
    """What ``claims`` (one family) can show on ``n_images``: smallest adjusted p and detectable effect per side."""
    tests = len(claims)
    row: dict[str, object] = {"question": question, "family": family, "n_images": n_images, "tests": tests}
    sds = [c.comparison.sd for c in claims if math.isfinite(c.p_value) and math.isfinite(c.comparison.sd)]
    sd_median = float(np.median(sds)) if sds else math.nan
    one_sided = sum(1 for c in claims if c.sided == "greater")
    for sided, name in (("greater", "one_sided"), ("two-sided", "two_sided")):
        count = one_sided if sided == "greater" else tests - one_sided
        row[f"{name}_tests"] = count
        row[f"smallest_adjusted_p_{name}"] = smallest_adjusted(n_images, one_sided, tests - one_sided, sided)
        d = detectable_effect(n_images, ALPHA / tests, sided) if count and tests else math.nan
        row[f"detectable_d_{name}"] = d
        row[f"detectable_{name}"] = d * sd_median if math.isfinite(d) and math.isfinite(sd_median) else math.nan
    row["sd_median"] = sd_median
    return {column: row[column] for column in DESIGN_COLUMNS}


def attainable(row: dict[str, object] | object, sided: Sided) -> bool:
    """Whether a design row's family can reach ``ALPHA`` with tests of that side."""
    name = "one_sided" if sided == "greater" else "two_sided"
    value = row[f"smallest_adjusted_p_{name}"] if isinstance(row, dict) else getattr(row, f"smallest_adjusted_p_{name}")
    return isinstance(value, float) and math.isfinite(value) and value < ALPHA
