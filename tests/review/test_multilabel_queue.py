"""The review queue on multi-label answers: doubt = the probability closest to its threshold; label sets that
differ from the data set, another version or another annotator."""

from __future__ import annotations

import pytest

from mtl_core.data.examples import Example
from mtl_core.review import multilabel
from mtl_core.review.pools import gold_value
from mtl_core.review.queue import (
    annotator_conflict,
    candidates_for,
    confidence,
    model_vs_label,
    score_pool,
    uncertainty,
    version_vs_version,
    worth_a_look,
)
from mtl_core.tasks import MULTILABEL, TaskFile, TaskSpec
from mtl_core.types import MultiLabelPrediction, Prediction

THRESHOLDS = {"sport": 0.5, "money": 0.2, "weather": 0.8}
TASKS = TaskFile([TaskSpec("topics", MULTILABEL, list(THRESHOLDS))])


def _answer(sport: float, money: float, weather: float) -> MultiLabelPrediction:
    probs = {"sport": sport, "money": money, "weather": weather}
    return MultiLabelPrediction([k for k, p in probs.items() if p >= THRESHOLDS[k]], probs, dict(THRESHOLDS))


def _pred(answer: MultiLabelPrediction, applies: float | None = None) -> Prediction:
    return Prediction("some text", {"topics": answer}, 3, False, applies={} if applies is None else {"topics": applies})


def test_distance_is_a_share_of_the_room_on_its_side():
    assert multilabel.distance(0.5, 0.5) == 0.0 and multilabel.distance(1.0, 0.8) == pytest.approx(1.0)
    assert multilabel.distance(0.1, 0.2) == pytest.approx(0.5) and multilabel.distance(0.6, 0.2) == pytest.approx(0.5)
    assert multilabel.distance(0.0, 0.0) == multilabel.distance(1.0, 1.0) == 0.0


def test_doubt_is_the_label_closest_to_its_threshold():
    sure, unsure = _answer(0.99, 0.01, 0.01), _answer(0.99, 0.01, 0.78)  # weather 0.78 vs threshold 0.8
    (cand,) = uncertainty(_pred(unsure), 0)
    assert cand.reason == "uncertain" and cand.task == "topics"
    assert cand.score == pytest.approx(1 - 0.02 / 0.8) and "weather at 0.78, threshold 0.80" in cand.detail
    assert uncertainty(_pred(sure), 0)[0].score < 0.1
    assert confidence(unsure) == pytest.approx(0.5 + 0.5 * 0.02 / 0.8) and confidence(sure) > 0.95
    assert worth_a_look(_pred(unsure), [cand], 0.6) == [cand]
    assert worth_a_look(_pred(sure), uncertainty(_pred(sure), 0), 0.6) == []
    assert uncertainty(_pred(unsure, applies=0.1), 0) == []  # the task does not apply: no doubt to review


def test_label_sets_that_differ_are_flagged():
    answer = _answer(0.95, 0.01, 0.9)  # sport, weather
    assert model_vs_label(_pred(answer), 0, {"topics": ["weather", "sport"]}) == []
    (cand,) = model_vs_label(_pred(answer), 0, {"topics": ["sport"]})
    assert cand.reason == "model_vs_label" and cand.score == pytest.approx(0.5)  # weather: (0.9 - 0.8) / 0.2
    assert "[sport] -> [sport, weather]" in cand.detail
    (flip,) = version_vs_version(_pred(answer), 0, _pred(_answer(0.95, 0.5, 0.9)), previous_version="v1")
    assert flip.reason == "version_vs_version" and "money" not in flip.detail.split("->")[1]
    assert version_vs_version(_pred(answer), 0, _pred(_answer(0.9, 0.1, 0.95))) == []


def test_annotator_sets_compare_without_order():
    assert annotator_conflict(0, "t", "topics", {"a": ["x", "y"], "b": ["y", "x"]}) is None
    conflict = annotator_conflict(0, "t", "topics", {"a": ["x"], "b": ["y"], "c": []})
    assert conflict is not None and conflict.score == 1.0


def test_score_pool_and_dataset_labels():
    answers = [_answer(0.99, 0.01, 0.01), _answer(0.52, 0.01, 0.01)]
    found = score_pool(lambda texts: [_pred(answers[i % 2]) for i, _ in enumerate(texts)], ["a", "b"], TASKS,
                       labels=[{"topics": ["sport"]}, {"topics": ["money"]}])
    assert {(c.index, c.reason) for c in found} >= {(1, "uncertain"), (1, "model_vs_label")}
    assert all(c.task == "topics" for c in candidates_for(_pred(answers[1]), 0, TASKS))
    assert gold_value(TASKS.tasks[0], Example("t", ("sport", "weather"))) == ["sport", "weather"]
