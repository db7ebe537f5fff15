"""The random-unit and label-permutation nulls keep their nominal false-positive rate on networks with no planted
units (simulation), and the unit faithfulness machinery agrees with plain model forwards."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.helpers import concepts_planted as planted
from xai.concepts import make_unit_labels
from xai.concepts.bars import concept_bars
from xai.concepts.concept_tests import concept_removals, label_permutation_null, top_shares
from xai.concepts.contributions import linear_head_contributions
from xai.concepts.faithfulness import changes, random_sets, unit_faithfulness
from xai.concepts.head import UnitReplacement, detect_head
from xai.concepts.suffix import SuffixRunner
from xai.explain.cams._core import forward_hook

TRIALS = 400
ALPHA = 0.05
N_CONCEPTS = 8


def _unplanted_trial(trial: int):
    """A network with no planted units, a noise image, random labels (independent of everything)."""
    model = planted.PlantedUnitsNet(planted=False, seed=trial)
    rng = np.random.default_rng(trial)
    image = rng.integers(0, 256, size=(planted.SIZE, planted.SIZE, 3), dtype=np.uint8)
    runner = SuffixRunner(model, planted.to_tensor(image), model.features)
    head = detect_head(runner)
    target = int(runner.logits.argmax())
    contributions = linear_head_contributions(runner, head, target)
    ids = rng.integers(0, N_CONCEPTS, size=(planted.N_UNITS, 1))
    scores = rng.uniform(0, 1, size=(planted.N_UNITS, 1))
    labels = make_unit_labels("features", [f"c{i}" for i in range(N_CONCEPTS)], ids, scores, 0.3)
    baseline = rng.uniform(0, 0.2, planted.N_UNITS).astype(np.float32)
    return UnitReplacement(runner, head, baseline), contributions, labels, target


@pytest.fixture(scope="module")
def simulation():
    """Per trial: p of concept 0's removal (a concept fixed before looking), p of the top concept's removal, and the
    label-permutation p."""
    fixed, top, permutation = [], [], []
    for trial in range(TRIALS):
        replacement, contributions, labels, target = _unplanted_trial(trial)
        bars = concept_bars(contributions, labels)
        by_id = {bar.concept_id: bar for bar in bars.bars}
        tested = [by_id[0]] if 0 in by_id else []
        tested += list(bars.top(1))
        removals = concept_removals(replacement, tested, target, draws=200, seed=trial)
        if 0 in by_id:
            fixed.append(removals[0].p_margin)
        if bars.top(1):
            top.append(removals[-1].p_margin)
        permutation.append(label_permutation_null(contributions, labels, draws=200, seed=trial).p_value)
    return np.array(fixed), np.array(top), np.array(permutation)


def test_random_unit_null_has_its_nominal_false_positive_rate_without_planted_units(simulation) -> None:
    fixed, _, _ = simulation
    assert fixed.size > 0.9 * TRIALS
    rate = float(np.mean(fixed <= ALPHA))
    # exchangeable under the null: P(p <= 0.05) = 10/201 ~ 0.0498; 3 standard errors of the simulation
    standard_error = np.sqrt(ALPHA * (1 - ALPHA) / fixed.size)
    assert abs(rate - 10 / 201) < 3 * standard_error, rate


def test_label_permutation_null_has_its_nominal_false_positive_rate_without_planted_units(simulation) -> None:
    _, _, permutation = simulation
    rate = float(np.mean(permutation <= ALPHA))
    standard_error = np.sqrt(ALPHA * (1 - ALPHA) / permutation.size)
    assert abs(rate - 10 / 201) < 3 * standard_error, rate


def test_the_top_concept_beats_random_units_by_selection_alone(simulation) -> None:
    """Documented caveat: a top concept is chosen for its contribution, so on an unplanted network it beats random
    units far more often than 5%; only the label-permutation null speaks to its name."""
    _, top, _ = simulation
    assert np.mean(top <= ALPHA) > 3 * ALPHA


def test_top_shares_counts_each_row_and_ignores_unlabelled_units() -> None:
    values = np.array([1.0, 2.0, -1.0, 4.0])
    groups = np.array([[0, 0, 1, -1], [-1, 1, 1, 0]])
    np.testing.assert_allclose(top_shares(values, groups), [3 / 8, 4 / 8])


def test_unit_replacement_equals_a_model_forward_with_those_units_replaced() -> None:
    model = planted.PlantedUnitsNet()
    x = planted.to_tensor(planted.planted_image())
    runner = SuffixRunner(model, x, model.features)
    head = detect_head(runner)
    baseline = np.linspace(0, 1, planted.N_UNITS, dtype=np.float32)
    masks = random_sets(planted.N_UNITS, 7, 3, np.random.default_rng(0))
    ours = UnitReplacement(runner, head, baseline).logits(masks)
    for mask, row in zip(masks, ours, strict=True):

        def replace(module, inputs, output, mask=mask):
            output = output.clone()
            output[:, mask] = torch.from_numpy(baseline[mask]).view(1, -1, 1, 1)
            return output

        with forward_hook(model.features, replace), torch.inference_mode():
            np.testing.assert_allclose(row, model(x)[0].double().numpy(), rtol=1e-5, atol=1e-5)


def test_changes_of_probability_margin_and_flip() -> None:
    original = np.array([2.0, 1.0, 0.0])
    effect = changes(np.array([[2.0, 1.0, 0.0], [0.0, 1.0, 0.0]]), original, 0)
    np.testing.assert_allclose(effect["logit"], [0.0, -2.0])
    np.testing.assert_allclose(effect["margin"], [0.0, -2.0])
    probability = np.exp(2) / (np.exp(2) + np.exp(1) + 1)
    np.testing.assert_allclose(effect["probability"][1], 1 / (2 + np.e) - probability)
    assert effect["flipped"].tolist() == [False, True]


def test_set_sizes_are_capped_at_the_unit_count() -> None:
    model = planted.PlantedUnitsNet()
    runner = SuffixRunner(model, planted.to_tensor(planted.planted_image()), model.features)
    head = detect_head(runner)
    contributions = linear_head_contributions(runner, head, planted.TARGET)
    replacement = UnitReplacement(runner, head, np.zeros(planted.N_UNITS, np.float32))
    faith = unit_faithfulness(replacement, contributions, ks=(1, 64, 500), draws=20)
    assert faith.ks.tolist() == [1, 64, 128]
    assert faith.random_removal.probability_low.shape == (3,)
    # removing every unit is the same set for the ranking and for random draws: p is 1 there
    assert faith.p_margin[-1] == pytest.approx(1.0)
