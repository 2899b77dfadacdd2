"""Predictions, data-set labels and the stored review queue."""

from __future__ import annotations

import pytest

from mtl_core.review.queue import Candidate
from mtl_core.store import (
    add_annotation,
    add_texts,
    get_dataset_labels,
    load_predictions,
    queue_progress,
    record_predictions,
    set_dataset_labels,
    top_queue,
    undo_last,
    upsert_queue_items,
)
from mtl_core.store.models import PredictionRow, QueueItem
from mtl_core.types import ClassPrediction, Prediction, RegressionPrediction, Span, TokenPrediction
from tests.helpers.store import fresh_session


@pytest.fixture
def session(tmp_path):
    yield from fresh_session(tmp_path)


def _prediction(text: str, label: str = "positive") -> Prediction:
    other = "negative" if label == "positive" else "positive"
    return Prediction(
        text,
        {
            "sentiment": ClassPrediction(label, 0.8, {label: 0.8, other: 0.2}, 0.6),
            "sentiment_score": RegressionPrediction(1.5, -4.0, 4.0),
            "ner": TokenPrediction([Span(0, 3, "person", text[:3], 0.7)], ["O"]),
        },
        n_tokens=4,
        truncated=False,
    )


def test_record_and_load_predictions(session):
    ids = add_texts(session, ["Tom is happy", "Ann is sad"])
    assert (
        record_predictions(session, ids, [_prediction("Tom is happy"), _prediction("Ann is sad")], "v0001")
        == 6
    )
    record_predictions(session, ids[:1], [_prediction("Tom is happy", "negative")], "v0001")  # replaces
    assert session.query(PredictionRow).count() == 6
    loaded = load_predictions(session, [ids[1], ids[0], 999], "v0001")
    assert loaded[2] is None and loaded[1].text == "Tom is happy"
    assert loaded[1].tasks["sentiment"].label == "negative"
    assert loaded[0].tasks["sentiment_score"].value == 1.5
    assert loaded[0].tasks["ner"].spans[0] == Span(0, 3, "person", "Ann", 0.7)
    assert load_predictions(session, ids, "v0002") == [None, None]


def test_dataset_labels(session):
    ids = add_texts(session, ["a", "b"], source="dataset:sentiment", dataset_split="train")
    set_dataset_labels(session, ids, "sentiment", ["positive", "negative"])
    set_dataset_labels(session, ids[:1], "sentiment", ["negative"])
    assert get_dataset_labels(session, "sentiment") == {ids[0]: "negative", ids[1]: "negative"}


def _fill(session):
    ids = add_texts(session, [f"text {i}" for i in range(6)])
    items = [
        Candidate(0, "text 0", "uncertain", "sentiment", 0.30, "margin 0.40"),
        Candidate(1, "text 1", "contradiction", "sentiment", 0.90, "positive but -2.1"),
        Candidate(2, "text 2", "uncertain", "topic", 0.60, "margin 0.10"),
        Candidate(3, "text 3", "model_vs_label", "sentiment", 0.75, "given negative"),
        Candidate(4, "text 4", "uncertain", "ner", 0.10, "weak span"),
    ]
    upsert_queue_items(session, items, text_ids=ids, pool="upload:demo", model_version="v0003")
    upsert_queue_items(
        session,
        [
            {
                "text_id": ids[5],
                "task": None,
                "reason": "annotator_conflict",
                "score": 0.5,
                "detail": "ann=a, bob=b",
            }
        ],
    )
    return ids


def test_upsert_dedupes_and_refreshes(session):
    ids = _fill(session)
    assert session.query(QueueItem).count() == 6
    upsert_queue_items(
        session,
        [Candidate(0, "text 0", "uncertain", "sentiment", 0.95, "now unsure")],
        text_ids=ids,
        model_version="v0003",
    )
    upsert_queue_items(
        session,
        [Candidate(0, "text 0", "uncertain", "sentiment", 0.2, "v4")],
        text_ids=ids,
        model_version="v0004",
    )  # another version: a new item
    assert session.query(QueueItem).count() == 7
    top = top_queue(session, limit=1)
    assert (top[0].text, top[0].score, top[0].detail, top[0].pool) == (
        "text 0",
        0.95,
        "now unsure",
        "upload:demo",
    )
    with pytest.raises(ValueError, match="unknown queue reason"):
        upsert_queue_items(session, [{"text_id": ids[0], "reason": "bored", "score": 1.0}])


def test_top_queue_order_and_filters(session):
    ids = _fill(session)
    assert [q.text_id for q in top_queue(session)] == [ids[1], ids[3], ids[2], ids[5], ids[0], ids[4]]
    assert [q.text_id for q in top_queue(session, limit=2)] == [ids[1], ids[3]]
    assert [q.text_id for q in top_queue(session, task="sentiment")] == [ids[1], ids[3], ids[0]]
    assert [q.text_id for q in top_queue(session, reason="uncertain")] == [ids[2], ids[0], ids[4]]
    assert [q.text_id for q in top_queue(session, pool="upload:demo", task="topic")] == [ids[2]]


def test_top_queue_excludes_done_until_undone(session):
    ids = _fill(session)
    add_annotation(session, ids[1], "sentiment", "negative", "ann")
    add_annotation(session, ids[3], "topic", "sport", "ann")  # another task: item 3 stays open
    add_annotation(session, ids[5], "sentiment", None, "bob", kind="skip")  # task-less item: any task counts
    open_ids = [q.text_id for q in top_queue(session)]
    assert open_ids == [ids[3], ids[2], ids[0], ids[4]]
    assert [q.text_id for q in top_queue(session, annotator="bob")][:2] == [ids[1], ids[3]]
    assert len(top_queue(session, exclude_done=False)) == 6
    progress = queue_progress(session)
    assert (progress["total"], progress["done"], progress["remaining"]) == (6, 2, 4)
    assert progress["by_reason"]["contradiction"] == {"total": 1, "done": 1, "labelled": 1}
    assert progress["labelled"] == 1  # the skip takes its item off the queue, but is no label
    assert queue_progress(session, task="sentiment")["done"] == 1
    undo_last(session, "bob")
    undo_last(session, "ann")
    undo_last(session, "ann")
    assert len(top_queue(session)) == 6 and queue_progress(session)["done"] == 0


def test_conflict_item_needs_a_later_label(session):
    t = add_texts(session, ["contested"])[0]
    add_annotation(session, t, "sentiment", "positive", "ann")
    add_annotation(session, t, "sentiment", "negative", "bob")
    upsert_queue_items(
        session, [{"text_id": t, "task": "sentiment", "reason": "annotator_conflict", "score": 1.0}]
    )
    assert [q.reason for q in top_queue(session)] == ["annotator_conflict"]  # the clashing labels don't count
    add_annotation(session, t, "sentiment", "negative", "reviewer")
    assert top_queue(session) == []
