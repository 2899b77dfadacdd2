"""bench/quality/annotation_sim.py's pure parts: choosing items, the pool, the report and the plot (no model)."""

from __future__ import annotations

import random

import pytest

from bench.quality import annotation_sim as sim
from bench.results_doc import replace_section
from mtl_core.data.examples import Example
from mtl_core.tasks import ContradictionRule, TaskFile, TaskSpec
from mtl_core.types import ClassPrediction, Prediction, RegressionPrediction

TASKS = TaskFile(
    tasks=[TaskSpec("sentiment", "classification", ["negative", "positive"]),
           TaskSpec("sentiment_score", "regression", value_range=(-4.0, 4.0)),
           TaskSpec("topic", "classification", ["business", "sport"])],
    contradictions=[ContradictionRule("positive_but_negative_score", "sentiment", "positive", "sentiment_score",
                                      below=-0.5)],
)


def _pred(positive: float, score: float, applies: dict | None = None) -> Prediction:
    probs = {"negative": 1 - positive, "positive": positive}
    label = max(probs, key=probs.get)
    tasks = {"sentiment": ClassPrediction(label, probs[label], probs, abs(2 * positive - 1)),
             "sentiment_score": RegressionPrediction(score, -4.0, 4.0),
             "topic": ClassPrediction("sport", 0.99, {"business": 0.01, "sport": 0.99}, 0.98)}
    return Prediction("a text", tasks, n_tokens=3, truncated=False, applies=applies or {})


def test_item_score_is_the_queues_doubt_or_a_broken_rule_about_the_task():
    unsure = _pred(positive=0.55, score=1.0)
    assert sim.item_score(unsure, "sentiment", TASKS) > 0.5  # a near-coin-flip
    assert sim.item_score(unsure, "topic", TASKS) < 0.1  # a confident answer
    assert sim.item_score(unsure, "sentiment_score", TASKS) == 0.0  # no doubt score for a regression, no rule broken
    clash = _pred(positive=0.9, score=-3.0)  # positive, but a clearly negative score: the rule involves both tasks
    assert sim.item_score(clash, "sentiment_score", TASKS) > 0.5
    assert sim.item_score(clash, "sentiment", TASKS) >= sim.item_score(clash, "sentiment_score", TASKS)
    off_topic = _pred(positive=0.55, score=1.0, applies={"sentiment": 0.01})
    assert sim.item_score(off_topic, "sentiment", TASKS) == 0.0  # the queue skips a task that does not apply


def test_choose_queue_takes_the_highest_scores_and_breaks_ties_by_seed():
    scores = {0: 0.1, 1: 0.9, 2: 0.0, 3: 0.5, 4: 0.0, 5: 0.0}
    assert sim.choose_queue(scores, 2, random.Random(0)) == [1, 3]
    picked = sim.choose_queue(scores, 4, random.Random(0))
    assert picked[:3] == [1, 3, 0] and picked[3] in (2, 4, 5)
    assert picked == sim.choose_queue(scores, 4, random.Random(0))  # deterministic per seed
    assert sorted(sim.choose_queue(scores, 99, random.Random(1))) == list(scores)  # more than there are: all


def test_choose_balanced_takes_turns_over_tasks_in_queue_order():
    scores = {0: 0.9, 1: 0.8, 2: 0.7, 3: 0.1, 4: 0.0, 5: 0.6}
    task_of = {0: "a", 1: "a", 2: "a", 3: "b", 4: "b", 5: "c"}
    assert sim.choose_balanced(scores, task_of, 3, random.Random(0)) == [0, 3, 5]  # each task's best first
    assert sim.choose_balanced(scores, task_of, 5, random.Random(0)) == [0, 3, 5, 1, 4]  # c ran out: a, b go on
    assert sorted(sim.choose_balanced(scores, task_of, 99, random.Random(0))) == list(range(6))


def test_choose_random_draws_without_replacement_from_what_is_left():
    todo = [2, 5, 7, 11, 13]
    picked = sim.choose_random(todo, 3, random.Random(4))
    assert len(set(picked)) == 3 and set(picked) <= set(todo)
    assert picked == sim.choose_random(todo, 3, random.Random(4))
    assert sorted(sim.choose_random(todo, 10, random.Random(4))) == todo


def test_beyond_noise_needs_seeds_and_a_clear_mean():
    assert sim.beyond_noise([0.01]) is None
    assert sim.beyond_noise([0.010, 0.011, 0.012]) is True
    assert sim.beyond_noise([0.02, -0.015, 0.001]) is False
    assert sim.beyond_noise([-0.01, -0.011, -0.012]) is False


def test_sample_pool_is_seeded_and_leaves_test_texts_out():
    prepared = {"sentiment": {"train": [Example(f"text {i}", "positive") for i in range(20)] + [Example("In Test")],
                              "test": [Example("in   test", "negative")]}}
    pool = sim.sample_pool(prepared, ["sentiment"], "train", 21, seed=0)
    assert len(pool) == 20 and all(it.example.text != "In Test" for it in pool)
    assert sim.sample_pool(prepared, ["sentiment"], "train", 5, 3) == sim.sample_pool(prepared, ["sentiment"], "train", 5, 3)


def test_gold_value_is_what_the_store_holds():
    ner = Example("Obama visited Paris", words=("Obama", "visited", "Paris"), tags=("B-person", "O", "B-geo-loc"))
    assert sim.gold_value(sim.PoolItem("ner", ner), "token_classification") == [
        {"start": 0, "end": 5, "label": "person"}, {"start": 14, "end": 19, "label": "geo-loc"}]
    assert sim.gold_value(sim.PoolItem("s", Example("x", 1)), "regression") == 1.0
    assert sim.gold_value(sim.PoolItem("t", Example("x", "sport")), "classification") == "sport"


def _rows() -> tuple[list[dict], dict[str, float]]:
    base = {"sentiment": 0.80, "topic": 0.90}
    rows = []
    for arm, lift in (("queue", 0.02), ("random", 0.01)):
        for seed in (0, 1):
            for rnd in (1, 2):
                rows.append({"arm": arm, "seed": seed, "round": rnd, "labels": 10 * rnd, "n_chosen": 10,
                             "chosen": {"sentiment": 6, "topic": 4}, "wrong_chosen": 3,
                             "below_threshold": 1 if arm == "queue" else None,
                             "metrics": {t: v + lift * rnd + 0.001 * seed for t, v in base.items()},
                             "nfr": {"sentiment": 0.005, "topic": 0.0}, "fixed": 9, "broken": 2,
                             "n_corrections": 10 * rnd, "weights_right": 8 * rnd, "memory_right": 10 * rnd,
                             "round_s": 100.0, "wall": 110.0})
    return rows, base


def test_report_has_the_base_row_every_arm_and_the_targets():
    rows, base = _rows()
    text = sim.report(rows, base, ["queue", "random"], 2, "header")
    assert "| base | 0 | 0 | 85.00 |" in text
    assert "| queue | 2 | 20 | 89.05 ± 0.07 | +2.00 ± 0.00 |" in text
    assert "- queue: >= 70% of corrections right by the weights alone after every round: yes" in text
    assert "queue above random (six-task mean, queue − random per seed; beyond noise?): round 1 +1.00" in text


def test_plot_writes_a_png(tmp_path):
    pytest.importorskip("PIL")
    from PIL import Image

    rows, base = _rows()
    path = sim.plot(rows, base, ["queue", "random"], 2, tmp_path / "curves.png")
    with Image.open(path) as img:
        assert img.format == "PNG" and img.width > 500


def test_write_section_replaces_only_its_own_section(tmp_path):
    results = tmp_path / "RESULTS.md"
    results.write_text("# Results\n\n## Learning loop\n\nold loop\n\n## Applicability\n\nkept\n", encoding="utf-8")
    replace_section(sim.HEADING, "first", after=sim.AFTER, path=results)
    assert results.read_text(encoding="utf-8") == (
        "# Results\n\n## Learning loop\n\nold loop\n\n## Simulated annotation\n\nfirst\n\n## Applicability\n\nkept\n")
    replace_section(sim.HEADING, "second", after=sim.AFTER, path=results)
    text = results.read_text(encoding="utf-8")
    assert "second" in text and "first" not in text and text.count("## Applicability\n\nkept") == 1
