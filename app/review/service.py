"""Review page services: sending texts to review, the queue and the labelling actions.

Plain functions over a sessionmaker (no widgets), so tests call them directly. Every labelling
action appends an event to the annotation log; nothing here updates or deletes one. Pools and
scoring jobs, span editing, agreement and export/import live in the other `review_*_service` modules.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from mtl_core.review.queue import Candidate, candidates_for, confidence, worth_a_look
from mtl_core.store import (
    QueueEntry,
    add_annotation,
    add_texts,
    get_texts,
    history,
    load_predictions,
    queue_progress,
    record_predictions,
    top_queue,
    upsert_queue_items,
)
from mtl_core.store.actions import undo_latest
from mtl_core.store.db import Sessions
from mtl_core.store.models import AnnotationEvent, QueueItem, TextRow
from mtl_core.tasks import MULTILABEL, TaskFile, TaskSpec
from mtl_core.types import (
    ClassPrediction,
    MultiLabelPrediction,
    Prediction,
    RegressionPrediction,
    TaskPrediction,
    TokenPrediction,
)

PREDICT_POOL = "predict"

# ---------------------------------------------------------------- send to review (Predict page)


UNSURE_BELOW = 0.6  # the Predict page's default "Flag as unsure below confidence"


@dataclass(frozen=True)
class SentToReview:
    text_id: int
    queued: int  # queue items written for the text
    why: tuple[str, ...] = ()  # one "task: reason" line per queued item, e.g. "sentiment: Model unsure (52%)"


def _why(prediction: Prediction, candidate: Candidate) -> str:
    sure = confidence(prediction.tasks[candidate.task]) if candidate.task in prediction.tasks else None
    shown = f" ({sure:.0%})" if candidate.reason == "uncertain" and sure is not None else ""
    return f"{candidate.task or 'all tasks'}: {candidate.reason.replace('_', ' ')}{shown}"


def send_to_review(sessions: Sessions, prediction: Prediction, version: str, task_file: TaskFile,
                   unsure_below: float = UNSURE_BELOW) -> SentToReview:
    """Store a Predict-page text (source 'predict') and its predictions for `version`, and queue the tasks
    that deserve a look (`worth_a_look`: unsure below `unsure_below`, or a broken rule). Re-sending
    refreshes, never duplicates."""
    candidates = worth_a_look(prediction, candidates_for(prediction, 0, task_file), unsure_below)
    with sessions() as s:
        [text_id] = add_texts(s, [prediction.text], source=PREDICT_POOL)
        record_predictions(s, [text_id], [prediction], version)
        queued = upsert_queue_items(
            s, candidates, text_ids=[text_id], pool=PREDICT_POOL, model_version=version
        ) if candidates else 0
    return SentToReview(text_id, queued, tuple(_why(prediction, c) for c in candidates))


# ---------------------------------------------------------------- the queue


def next_items(sessions: Sessions, annotator: str, task: str | None = None, reason: str | None = None,
               limit: int = 2) -> list[QueueEntry]:
    """The highest-scored items this annotator has not labelled, accepted or skipped yet (the first is shown,
    the second is the one to prefetch)."""
    with sessions() as s:
        return top_queue(s, limit=limit, task=task, reason=reason, annotator=annotator)


def next_item(sessions: Sessions, annotator: str, task: str | None = None, reason: str | None = None) -> QueueEntry | None:
    found = next_items(sessions, annotator, task, reason, limit=1)
    return found[0] if found else None


def item_for(sessions: Sessions, text_id: int, task: str | None) -> QueueEntry | None:
    """The best queue item of a text (preferring `task`): where the view returns after an undo."""
    with sessions() as s:
        query = (
            select(QueueItem, TextRow.text)
            .join(TextRow, TextRow.id == QueueItem.text_id)
            .where(QueueItem.text_id == text_id)
            .order_by((QueueItem.task == task).desc(), QueueItem.score.desc(), QueueItem.id)
            .limit(1)
        )
        row = s.execute(query).first()
    if row is None:
        return None
    q, text = row
    return QueueEntry(q.id, q.text_id, text, q.task, q.reason, q.detail, q.score, q.pool, q.model_version,
                      q.created_at)


@dataclass(frozen=True)
class Progress:
    labelled: int  # labelled or accepted by this annotator
    skipped: int  # skipped and not labelled: off the queue, but not done (listed to re-open)
    total: int


def progress(sessions: Sessions, annotator: str, task: str | None = None, reason: str | None = None) -> Progress:
    """This annotator's counts under the filters."""
    with sessions() as s:
        counts = queue_progress(s, task, annotator=annotator)
    part = counts if reason is None else counts["by_reason"].get(reason, {"done": 0, "labelled": 0, "total": 0})
    return Progress(part["labelled"], part["done"] - part["labelled"], part["total"])


def stored_prediction(sessions: Sessions, entry: QueueEntry) -> Prediction | None:
    """The queued version's stored answers (used when no model can be loaded)."""
    if not entry.model_version:
        return None
    with sessions() as s:
        return load_predictions(s, [entry.text_id], entry.model_version)[0]


def model_value(answer: TaskPrediction) -> Any:
    """A head's answer in the annotation-value format: class, float, [{start, end, label}], or a label list."""
    if isinstance(answer, ClassPrediction):
        return answer.label
    if isinstance(answer, MultiLabelPrediction):
        return list(answer.labels)
    if isinstance(answer, RegressionPrediction):
        return round(float(answer.value), 3)
    if isinstance(answer, TokenPrediction):
        return [{"start": s.start, "end": s.end, "label": s.label} for s in answer.spans]
    raise TypeError(f"unknown prediction type {type(answer).__name__}")


def format_value(value: Any, text: str | None = None, kind: str | None = None) -> str:
    """A label as one readable line (spans with their text when `text` is given; `kind` tells an empty
    multi-label set from an empty span list)."""
    if value is None:
        return "—"
    if isinstance(value, list):
        if not value:
            return "(no labels)" if kind == MULTILABEL else "(no entities)"
        if all(isinstance(v, str) for v in value):
            return " | ".join(value)  # a multi-label set
        parts = []
        for span in sorted(value, key=lambda s: int(s["start"])):
            shown = text[int(span["start"]):int(span["end"])] if text is not None else f"{span['start']}-{span['end']}"
            parts.append(f"{shown} [{span['label']}]")
        return "; ".join(parts)
    if isinstance(value, float):
        return f"{value:+.2f}"
    return str(value)


def check_value(spec: TaskSpec, value: Any, text: str) -> Any:
    """Validate a label against its task before it is written; returns the normalised value."""
    if spec.kind == "classification":
        if value not in spec.labels:
            raise ValueError(f"{spec.name}: {value!r} is not one of {spec.labels}")
        return value
    if spec.kind == "regression":
        lo, hi = spec.value_range
        number = float(value)
        if not lo <= number <= hi:
            raise ValueError(f"{spec.name}: {number} is outside [{lo}, {hi}]")
        return round(number, 3)
    if spec.kind == MULTILABEL:  # a list of labels, kept in task-file order ([] = none applies)
        if not isinstance(value, list) or any(v not in spec.labels for v in value):
            raise ValueError(f"{spec.name}: {value!r} is not a list of labels from {spec.labels}")
        return [label for label in spec.labels if label in value]
    spans = sorted(({"start": int(s["start"]), "end": int(s["end"]), "label": str(s["label"])} for s in value),
                   key=lambda s: s["start"])
    for span in spans:
        if span["label"] not in spec.labels or not 0 <= span["start"] < span["end"] <= len(text):
            raise ValueError(f"{spec.name}: bad span {span}")
    for a, b in zip(spans, spans[1:]):
        if b["start"] < a["end"]:
            raise ValueError(f"{spec.name}: spans overlap at character {b['start']}")
    return spans


def record(sessions: Sessions, text_id: int, task: str, value: Any, annotator: str, kind: str, reason: str | None) -> int:
    """Append a label / accept / skip event; returns its id."""
    with sessions() as s:
        return add_annotation(s, text_id, task, value, annotator, kind=kind, reason=reason).id


@dataclass(frozen=True)
class Undone:
    text_id: int
    task: str
    kind: str  # the kind of the event that was undone
    events: int = 1  # how many events were undone (a bulk action is undone whole)


def undo(sessions: Sessions, annotator: str, expect_event_id: int | None = None) -> Undone | None:
    """Cancel the annotator's latest effective action, a whole bulk action included (new 'undo' events);
    None when nothing is left. `expect_event_id`: see `store.actions.undo_latest` (StaleAction)."""
    with sessions() as s:
        events = undo_latest(s, annotator, expect_event_id)
        if not events:
            return None
        first = events[0]  # in id order: a bulk action's drawn item comes first
        target = s.get(AnnotationEvent, first.undoes_event_id)
        return Undone(first.text_id, first.task, target.kind if target is not None else "?", len(events))


@dataclass(frozen=True)
class LogRow:
    id: int
    time: datetime
    annotator: str
    task: str
    kind: str
    value: str
    reason: str | None
    undone: bool


def event_log(sessions: Sessions, text_id: int) -> list[LogRow]:
    """Every event of a text, oldest first, undone ones marked."""
    with sessions() as s:
        events = history(s, text_id)
        text = get_texts(s, [text_id]).get(text_id, "")
    undone = {e.undoes_event_id for e in events if e.kind == "undo"}
    return [LogRow(e.id, e.created_at, e.annotator, e.task, e.kind,
                   "" if e.kind in ("skip", "undo") else format_value(e.value, text), e.reason, e.id in undone)
            for e in events]
