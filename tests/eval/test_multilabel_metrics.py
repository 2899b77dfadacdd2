"""Multi-label metrics on a hand-computed case, threshold tuning, and old-vs-new answers."""

from __future__ import annotations

import numpy as np
import pytest

from mtl_core.data.examples import Example
from mtl_core.eval.compare import (
    answer_metrics,
    compare_answers,
    format_answer,
    gold_answers,
    is_right,
    label_deltas,
)
from mtl_core.eval.metrics import PRIMARY, multilabel_metrics
from mtl_core.eval.thresholds import THRESHOLD_RANGE, best_threshold
from mtl_core.model.decoding import DEFAULT_THRESHOLD
from mtl_core.tasks import MULTILABEL, TaskSpec

SPEC = TaskSpec("t", MULTILABEL, ["a", "b", "c"])
GOLD = [["a", "b"], ["a"], [], ["c"]]
PRED = [["a"], ["a", "b"], ["c"], ["c"]]


def test_metrics_on_a_hand_computed_case():
    # a: tp 2 fp 0 fn 0 -> F1 1; b: tp 0 fp 1 fn 1 -> 0; c: tp 1 fp 1 fn 0 -> 2/3
    # micro: tp 3, fp 2, fn 1 -> F1 6/9; precision 3/5, recall 3/4; macro (1 + 0 + 2/3) / 3 = 5/9
    m = multilabel_metrics(SPEC, GOLD, PRED)
    assert m["micro_f1"] == pytest.approx(2 / 3)
    assert m["micro_precision"] == pytest.approx(3 / 5) and m["micro_recall"] == pytest.approx(3 / 4)
    assert m["macro_f1"] == pytest.approx(5 / 9)
    assert (m["f1_a"], m["f1_b"], m["f1_c"]) == pytest.approx((1.0, 0.0, 2 / 3))
    assert m["exact_match"] == pytest.approx(0.25)
    assert m["report"]["a"]["support"] == 2 and m["report"]["c"]["precision"] == pytest.approx(0.5)
    assert PRIMARY[MULTILABEL] == "micro_f1"


def test_perfect_and_empty_answers():
    assert multilabel_metrics(SPEC, GOLD, GOLD)["micro_f1"] == 1.0
    assert multilabel_metrics(SPEC, [[], []], [[], []])["micro_f1"] == 0.0  # nothing to find: no division by 0


def test_best_threshold_maximises_the_labels_f1():
    # top 1: F1 2/3; top 2: 1/2; top 3: 4/5 (best); top 4: 2/3 -> cut between 0.3 and 0.2
    assert best_threshold(np.array([0.9, 0.8, 0.3, 0.2]), np.array([1, 0, 1, 0])) == pytest.approx(0.25)
    assert best_threshold(np.array([0.3, 0.9, 0.2, 0.8]), np.array([1, 1, 0, 0])) == pytest.approx(0.25)  # any order
    assert best_threshold(np.array([0.6, 0.6, 0.1]), np.array([1, 0, 0])) == pytest.approx(0.35)  # never splits ties
    assert best_threshold(np.array([0.9, 0.1]), np.array([0, 0])) == DEFAULT_THRESHOLD  # dev lacks the label
    assert best_threshold(np.array([0.04, 0.03]), np.array([1, 1])) == THRESHOLD_RANGE[0]  # kept in range


@pytest.mark.parametrize("seed", range(5))
def test_best_threshold_is_as_good_as_any_cut(seed):
    rng = np.random.default_rng(seed)
    probs, gold = rng.random(40), rng.random(40) < 0.3
    gold[0] = True

    def f1(t):
        pred = probs >= t
        tp = (pred & gold).sum()
        return 2 * tp / (pred.sum() + gold.sum())

    t = best_threshold(probs, gold)
    inside = [c for c in np.unique(probs) if THRESHOLD_RANGE[0] <= c <= THRESHOLD_RANGE[1]]
    assert f1(t) >= max(f1(c) for c in inside) - 1e-12 or not THRESHOLD_RANGE[0] < t < THRESHOLD_RANGE[1]


def test_compare_uses_exact_sets():
    examples = [Example(f"text {i}", tuple(g)) for i, g in enumerate(GOLD)]
    gold = gold_answers(SPEC, examples)
    assert gold == GOLD
    assert is_right(MULTILABEL, ["a", "b"], ["b", "a"]) and not is_right(MULTILABEL, ["a", "b"], ["a"])
    assert format_answer(MULTILABEL, ["a", "c"]) == "a | c" and format_answer(MULTILABEL, []) == "(no labels)"
    m = answer_metrics(SPEC, gold, PRED)
    assert m["primary"] == pytest.approx(2 / 3) and m["n"] == 4
    comparison = compare_answers({"t": SPEC}, {"t": examples}, {"t": PRED}, {"t": GOLD}, "test")
    assert comparison["counts"]["t"] == {"n": 4, "right_old": 1, "right_new": 4, "fixed": 3, "broken": 0, "nfr": 0.0}
    assert comparison["tasks"]["t"]["delta"] == pytest.approx(1 / 3)
    assert {row["label"] for row in label_deltas({"t": m}, {"t": answer_metrics(SPEC, gold, GOLD)})} == {"a", "b", "c"}
