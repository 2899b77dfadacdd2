"""Negative flips and the promotion concerns built on them."""

from __future__ import annotations

from mtl_core.data.examples import Example
from mtl_core.eval.compare import compare_answers
from mtl_core.eval.flips import flip_rates, negative_flip_rate, promotion_concerns
from mtl_core.tasks import TaskSpec

SPEC = TaskSpec(name="topic", kind="classification", labels=["a", "b"])


def _comparison(gold, old, new):
    sets = {"topic": [Example(text=f"t{i}", label=g) for i, g in enumerate(gold)]}
    return compare_answers({"topic": SPEC}, sets, {"topic": old}, {"topic": new}, "test")


def test_nfr_counts_right_to_wrong_only():
    gold = ["a"] * 100
    old = ["a"] * 90 + ["b"] * 10  # 90 right
    new = ["b"] * 3 + ["a"] * 87 + ["a"] * 5 + ["b"] * 5  # 3 broken, 5 fixed
    cmp = _comparison(gold, old, new)
    counts = cmp["counts"]["topic"]
    assert (counts["fixed"], counts["broken"]) == (5, 3)
    assert counts["nfr"] == negative_flip_rate(counts) == 0.03
    assert flip_rates(cmp) == {"topic": 0.03}
    assert promotion_concerns(cmp) == ["negative flip rate above 1% on topic (3.0%)"]


def test_more_broken_than_fixed_is_a_concern_even_at_low_nfr():
    gold = ["a"] * 1000
    old = ["a"] * 990 + ["b"] * 10
    new = ["b"] * 2 + ["a"] * 988 + ["a"] * 1 + ["b"] * 9  # 2 broken (0.2 %), 1 fixed
    concerns = promotion_concerns(_comparison(gold, old, new))
    assert concerns == ["it breaks more test examples than it fixes (2 broken, 1 fixed)"]


def test_a_clean_update_has_no_concern():
    gold = ["a"] * 10
    assert promotion_concerns(_comparison(gold, ["b"] * 10, ["a"] * 10)) == []
    assert negative_flip_rate({"n": 0, "broken": 0}) == 0.0
