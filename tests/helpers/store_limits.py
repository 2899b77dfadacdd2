"""Values the store must refuse (or clean) the same way on SQLite and PostgreSQL: NUL characters and
over-long names. Used by tests/store/test_store_boundary.py (SQLite) and tests/store/test_postgres.py."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mtl_core.ops import auth
from mtl_core.store import (
    add_annotation,
    add_texts,
    append_job_log,
    create_job,
    get_job,
    get_texts,
    import_annotations_jsonl,
    record_predictions,
    set_dataset_labels,
    top_queue,
    undo_last,
    upsert_queue_items,
)
from mtl_core.store.limits import max_length
from mtl_core.store.models import AnnotationEvent, Base, Job, PredictionRow, QueueItem, TextRow
from mtl_core.types import ClassPrediction, Prediction

ANNOTATOR = max_length(AnnotationEvent.annotator)  # the limits as the models declare them
TASK = max_length(AnnotationEvent.task)
SOURCE = max_length(TextRow.source)
POOL = max_length(QueueItem.pool)
VERSION = max_length(PredictionRow.model_version)
KIND = max_length(Job.kind)


def _prediction(task: str) -> Prediction:
    return Prediction("x", {task: ClassPrediction("positive", 0.9, {"positive": 0.9, "negative": 0.1}, 0.8)},
                      n_tokens=1, truncated=False)


def _import(annotator: str) -> Callable[[Session, int], Any]:
    def run(s: Session, _text_id: int) -> Any:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "import.jsonl"
            path.write_text(json.dumps({"text": "imported", "task": "sentiment", "kind": "label",
                                        "value": "positive", "annotator": annotator,
                                        "created_at": "2024-01-01T00:00:00"}) + "\n")
            return import_annotations_jsonl(s, path)
    return run


def refusals() -> list[Any]:
    """(call(session, text_id), words the ValueError must contain), one pytest.param per case."""
    cases = {
        "annotator-nul": (lambda s, t: add_annotation(s, t, "sentiment", "positive", "a\x00b"),
                          ["annotator", "NUL"]),
        "annotator-long": (lambda s, t: add_annotation(s, t, "sentiment", "positive", "a" * (ANNOTATOR + 1)),
                           ["annotator", f"at most {ANNOTATOR}"]),
        "annotator-empty": (lambda s, t: add_annotation(s, t, "sentiment", "positive", "  "),
                            ["annotator", "empty"]),
        "task-long": (lambda s, t: add_annotation(s, t, "t" * (TASK + 1), "positive", "ann"),
                      ["task", f"at most {TASK}"]),
        "reason-unknown": (lambda s, t: add_annotation(s, t, "sentiment", "positive", "ann", reason="r" * 40),
                           ["reason", "must be one of"]),
        "undo-annotator-nul": (lambda s, t: undo_last(s, "ann\x00"), ["annotator", "NUL"]),
        "source-long": (lambda s, t: add_texts(s, ["new"], source="s" * (SOURCE + 1)),
                        ["source", f"at most {SOURCE}"]),
        "source-nul": (lambda s, t: add_texts(s, ["new"], source="up\x00load"), ["source", "NUL"]),
        "queue-pool-long": (lambda s, t: upsert_queue_items(s, [{"text_id": t, "task": "sentiment", "score": 1.0,
                                                                 "reason": "uncertain", "pool": "p" * (POOL + 1)}]),
                            ["pool", f"at most {POOL}"]),
        "queue-version-nul": (lambda s, t: upsert_queue_items(s, [{"text_id": t, "task": "sentiment", "score": 1.0,
                                                                   "reason": "uncertain"}], model_version="v\x00"),
                              ["model_version", "NUL"]),
        "queue-task-long": (lambda s, t: upsert_queue_items(s, [{"text_id": t, "task": "t" * (TASK + 1),
                                                                 "score": 1.0, "reason": "uncertain"}]),
                            ["task", f"at most {TASK}"]),
        "predictions-version-long": (lambda s, t: record_predictions(s, [t], [_prediction("sentiment")],
                                                                     "v" * (VERSION + 1)),
                                     ["model_version", f"at most {VERSION}"]),
        "predictions-task-nul": (lambda s, t: record_predictions(s, [t], [_prediction("sent\x00")], "v1"),
                                 ["task", "NUL"]),
        "dataset-task-nul": (lambda s, t: set_dataset_labels(s, [t], "sent\x00", ["positive"]), ["task", "NUL"]),
        "user-nul": (lambda s, t: auth.create_user(s, "ri\x00ta", "a long password"), ["username"]),
        "user-long": (lambda s, t: auth.create_user(s, "u" * (ANNOTATOR + 1), "a long password"),
                      ["username", f"at most {ANNOTATOR}"]),
        "job-kind-long": (lambda s, t: create_job(s, "k" * (KIND + 1)), ["kind", f"at most {KIND}"]),
        "import-annotator-long": (_import("a" * (ANNOTATOR + 1)),
                                  ["line 1: annotator", f"at most {ANNOTATOR}", "none were imported"]),
        "import-annotator-nul": (_import("a\x00"), ["line 1: annotator", "NUL"]),
    }
    return [pytest.param(call, words, id=name) for name, (call, words) in cases.items()]


def row_counts(session: Session) -> dict[str, int]:
    return {table.name: session.scalar(select(func.count()).select_from(table))
            for table in Base.metadata.sorted_tables}


def assert_refused(session: Session, call: Callable[[Session, int], Any], words: list[str]) -> None:
    """`call` raises a ValueError with every one of `words`, writes nothing, and the session stays usable."""
    (text_id,) = add_texts(session, ["a text to label"], source="predict")
    before = row_counts(session)
    with pytest.raises(ValueError) as info:
        call(session, text_id)
    session.rollback()
    for word in words:
        assert word in str(info.value), str(info.value)
    assert row_counts(session) == before
    assert add_annotation(session, text_id, "sentiment", "positive", "ann").id  # still usable


def assert_free_text_cleaned(session: Session) -> None:
    """NUL in free text is stored as U+FFFD (same length: span offsets hold), in texts, queue details, job logs."""
    ids = add_texts(session, ["Tom\x00Hanks", "Tom\ufffdHanks", "plain"], source="predict")
    assert ids[0] == ids[1] != ids[2]
    assert get_texts(session, ids[:1]) == {ids[0]: "Tom\ufffdHanks"}
    upsert_queue_items(session, [{"text_id": ids[0], "task": "ner", "score": 1.0, "reason": "uncertain",
                                  "detail": "was \x00"}])
    assert top_queue(session, task="ner")[0].detail == "was \ufffd"
    job = create_job(session, "score_pool")
    append_job_log(session, job.id, "read line \x00 of the file")
    assert get_job(session, job.id).log == "read line \ufffd of the file\n"
