"""bench/quality/label_errors.py's pure parts: label flips, the review queue's ranking of label errors, P/R at k.

No model and no cleanlab: synthetic probabilities only (the figures live in docs/RESULTS.md).
"""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from tests.helpers import ROOT


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("label_errors", ROOT / "bench" / "quality" / "label_errors.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_flips_move_exactly_the_share_asked_to_another_class_and_are_seeded(bench):
    y = np.arange(200) % 3
    noisy, flipped = bench.flip_labels(y, 3, 0.05, seed=7)
    assert flipped.sum() == 10
    assert (noisy[flipped] != y[flipped]).all() and (noisy[~flipped] == y[~flipped]).all()
    again, flipped_again = bench.flip_labels(y, 3, 0.05, seed=7)
    assert (again == noisy).all() and (flipped_again == flipped).all()


def test_queue_ranks_confident_disagreements_first_and_unflagged_last(bench):
    labels = ["a", "b", "c"]
    probs = np.array([
        [0.90, 0.05, 0.05],  # 0: given a, agrees: not flagged
        [0.10, 0.80, 0.10],  # 1: given a, model says b: 1 - 0.10 = 0.90
        [0.40, 0.45, 0.15],  # 2: given a, model says b: 1 - 0.40 = 0.60
        [0.05, 0.05, 0.90],  # 3: given b, model says c: 1 - 0.05 = 0.95
        [0.20, 0.60, 0.20],  # 4: given b, agrees: not flagged
    ])
    given = np.array([0, 0, 0, 1, 1])
    order, n_flagged, scores = bench.queue_ranking(probs, given, labels)
    assert order.tolist() == [3, 1, 2, 0, 4]
    assert n_flagged == 3
    assert scores == pytest.approx([0.95, 0.90, 0.60])


def test_precision_and_recall_at_k(bench):
    flipped = np.array([True, False, True, False, False, True])
    order = np.array([2, 1, 0, 3, 4, 5])
    assert bench.at_k(order, flipped, 2) == (0.5, pytest.approx(1 / 3))
    assert bench.at_k(order, flipped, 3) == (pytest.approx(2 / 3), pytest.approx(2 / 3))


def test_out_of_sample_probabilities_cover_every_example_and_class(bench):
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 20)
    x = rng.normal(size=(60, 8)) + np.eye(3, 8)[y] * 3
    probs = bench.oof_probs(x, y, 3, folds=5, seed=0)
    assert probs.shape == (60, 3)
    assert np.allclose(probs.sum(1), 1.0)
    assert (probs.argmax(1) == y).mean() > 0.8
