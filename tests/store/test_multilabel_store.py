"""Multi-label answers and labels in the store: prediction payloads, label sets as annotations, import checks."""

from __future__ import annotations

import pytest

from mtl_core.store import add_annotation, add_texts, load_predictions, record_predictions
from mtl_core.store.annotations import annotator_conflicts, canonical, same_label
from mtl_core.store.import_checks import value_problem
from mtl_core.store.texts import payload_prediction, prediction_payload
from mtl_core.tasks import MULTILABEL, TaskSpec
from mtl_core.types import MultiLabelPrediction, Prediction

ANSWER = MultiLabelPrediction(["sport", "weather"], {"sport": 0.9, "money": 0.2, "weather": 0.61},
                              {"sport": 0.5, "money": 0.35, "weather": 0.6})


def test_payload_round_trip():
    payload, score = prediction_payload(ANSWER)
    assert payload == {"kind": MULTILABEL, "labels": ["sport", "weather"], "probs": ANSWER.probs,
                       "thresholds": ANSWER.thresholds}
    assert score == 0.9  # the most probable label's probability
    assert payload_prediction(payload) == ANSWER
    empty = MultiLabelPrediction([], {"a": 0.1, "b": 0.2}, {"a": 0.5, "b": 0.5})
    assert payload_prediction(prediction_payload(empty)[0]) == empty


def test_predictions_stored_and_loaded(sessions):
    with sessions() as s:
        (text_id,) = add_texts(s, ["rain at the football match"], source="predict")
        record_predictions(s, [text_id], [Prediction("rain at the football match", {"topics": ANSWER}, 7, False)], "v1")
        (loaded,) = load_predictions(s, [text_id], "v1")
    assert loaded.tasks["topics"] == ANSWER


def test_label_sets_compare_as_sets(sessions):
    assert canonical(["b", "a", "a"]) == canonical(["a", "b"]) and same_label(["a", "b"], ["b", "a"])
    assert not same_label(["a"], ["a", "b"]) and canonical([]) == "[]"
    with sessions() as s:
        same, differ = add_texts(s, ["one text", "another text"], source="import")
        for who, first, second in (("alice", ["a", "b"], ["a"]), ("bob", ["b", "a"], ["b"])):
            add_annotation(s, same, "topics", first, who)
            add_annotation(s, differ, "topics", second, who)
        conflicts = annotator_conflicts(s, "topics")
    assert [c.text_id for c in conflicts] == [differ]


@pytest.mark.parametrize("value, ok", [
    (["a"], True), ([], True), (["a", "b"], True), (["a", "a"], False), (["z"], False), ("a", False), ([1], False),
])
def test_import_checks_label_sets(value, ok):
    spec = TaskSpec("topics", MULTILABEL, ["a", "b"])
    assert (value_problem(spec, value, "text") is None) == ok


def test_a_few_shot_answer_keeps_its_mark_through_the_store():
    from mtl_core.store.texts import payload_prediction, prediction_payload
    from mtl_core.types import ClassPrediction, MultiLabelPrediction

    for pred in (MultiLabelPrediction(["a"], {"a": 0.9, "b": 0.1}, {"a": 0.5, "b": 0.5}, fewshot=True,
                                      estimated_accuracy=0.8),
                 ClassPrediction("a", 0.9, {"a": 0.9, "b": 0.1}, 0.8, fewshot=True, estimated_accuracy=0.7)):
        assert payload_prediction(prediction_payload(pred)[0]) == pred
