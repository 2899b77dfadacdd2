"""The append-only annotation log and what is derived from it: current labels, conflicts, kappa."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mtl_core.store.db import retry_locked
from mtl_core.store.limits import StoreValueError, check_string
from mtl_core.store.models import EVENT_REASONS, AnnotationEvent, TextRow, utcnow

LABEL_KINDS = ("label", "accept")  # events that carry a label
DONE_KINDS = ("label", "accept", "skip")  # events that take an item off an annotator's queue


@dataclass(frozen=True)
class CurrentLabel:
    text_id: int
    task: str
    annotator: str
    value: Any
    kind: str
    event_id: int
    created_at: datetime


@dataclass(frozen=True)
class Conflict:
    text_id: int
    task: str
    values: dict[str, Any]  # annotator -> current label


def event_key(
    text_hash: str,
    task: str,
    kind: str,
    value: Any,
    annotator: str,
    created_at: datetime,
    undoes_key: str | None = None,
) -> str:
    """Content hash of an event: the same event gets the same key in every database (import dedup)."""
    raw = json.dumps(
        [text_hash, task, kind, value, annotator, created_at.isoformat(), undoes_key],
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def check_event_fields(task: str, annotator: str, reason: str | None) -> None:
    """The same refusals on SQLite and PostgreSQL (`store.limits`): widths from the model, no NUL."""
    check_string("task", task, AnnotationEvent.task, nonempty=True)
    check_string("annotator", annotator, AnnotationEvent.annotator, nonempty=True)
    if reason is not None and reason not in EVENT_REASONS:
        raise StoreValueError("reason", f"must be one of {', '.join(EVENT_REASONS)} or None, not {reason!r:.80}")


def new_event(
    session: Session,
    text_id: int,
    task: str,
    kind: str,
    value: Any,
    annotator: str,
    reason: str | None,
    undoes: AnnotationEvent | None = None,
    *,
    key: str | None = None,
    bulk_id: str | None = None,
) -> AnnotationEvent:
    """One new event; `key` overrides the content-hash event key (an idempotency key, `store.actions`)."""
    check_event_fields(task, annotator, reason)
    text_hash = session.scalar(select(TextRow.content_hash).where(TextRow.id == text_id))
    if text_hash is None:
        raise ValueError(f"unknown text id {text_id}")
    now = utcnow()
    undoes_key = undoes.event_key if undoes is not None else None
    event = AnnotationEvent(
        event_key=key or event_key(text_hash, task, kind, value, annotator, now, undoes_key),
        text_id=text_id,
        task=task,
        kind=kind,
        value=value,
        annotator=annotator,
        reason=reason,
        bulk_id=bulk_id,
        undoes_event_id=undoes.id if undoes is not None else None,
        created_at=now,
    )
    session.add(event)
    session.flush()
    return event


@retry_locked
def add_annotation(
    session: Session,
    text_id: int,
    task: str,
    value: Any,
    annotator: str,
    *,
    kind: str = "label",
    reason: str | None = None,
) -> AnnotationEvent:
    """Append a label/accept/skip event. `value`: class label, float, or [{start, end, label}]."""
    if kind not in DONE_KINDS:
        raise ValueError(f"kind must be one of {DONE_KINDS} (use undo_last to undo), got {kind!r}")
    return new_event(session, text_id, task, kind, value, annotator, reason)


def undone_ids() -> Any:
    return select(AnnotationEvent.undoes_event_id).where(AnnotationEvent.undoes_event_id.is_not(None))


@retry_locked
def undo_last(session: Session, annotator: str, task: str | None = None) -> AnnotationEvent | None:
    """Cancel the annotator's latest still-effective event with a new 'undo' event; None if nothing is left."""
    check_string("annotator", annotator, AnnotationEvent.annotator, nonempty=True)
    check_string("task", task, AnnotationEvent.task, optional=True)
    query = select(AnnotationEvent).where(
        AnnotationEvent.annotator == annotator,
        AnnotationEvent.kind != "undo",
        AnnotationEvent.id.not_in(undone_ids()),
    )
    if task is not None:
        query = query.where(AnnotationEvent.task == task)
    target = session.scalar(
        query.order_by(AnnotationEvent.created_at.desc(), AnnotationEvent.id.desc()).limit(1)
    )
    if target is None:
        return None
    return new_event(
        session, target.text_id, target.task, "undo", None, annotator, target.reason, undoes=target
    )


def history(session: Session, text_id: int, task: str | None = None) -> list[AnnotationEvent]:
    """Every event of a text, undos included, oldest first."""
    query = select(AnnotationEvent).where(AnnotationEvent.text_id == text_id)
    if task is not None:
        query = query.where(AnnotationEvent.task == task)
    return list(session.scalars(query.order_by(AnnotationEvent.created_at, AnnotationEvent.id)))


def current_labels(session: Session, task: str | None = None) -> list[CurrentLabel]:
    """The latest non-undone label per (text, task, annotator)."""
    cols = (
        AnnotationEvent.id,
        AnnotationEvent.text_id,
        AnnotationEvent.task,
        AnnotationEvent.annotator,
        AnnotationEvent.kind,
        AnnotationEvent.value,
        AnnotationEvent.undoes_event_id,
        AnnotationEvent.created_at,
    )
    query = select(*cols).order_by(AnnotationEvent.created_at, AnnotationEvent.id)
    if task is not None:
        query = query.where(AnnotationEvent.task == task)
    rows = session.execute(query).all()
    undone = {r.undoes_event_id for r in rows if r.kind == "undo"}
    latest: dict[tuple[int, str, str], CurrentLabel] = {}
    for r in rows:
        if r.kind in LABEL_KINDS and r.id not in undone:
            latest[(r.text_id, r.task, r.annotator)] = CurrentLabel(
                r.text_id, r.task, r.annotator, r.value, r.kind, r.id, r.created_at
            )
    return [latest[k] for k in sorted(latest)]


def canonical(value: Any) -> str:
    """A hashable, order-free form of a label: spans and multi-label sets compare as sets, numbers by value."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return json.dumps(sorted(set(value)))  # a multi-label set ([] is "[]" either way)
    if isinstance(value, list):
        spans = sorted((int(s["start"]), int(s["end"]), str(s["label"])) for s in value)
        return json.dumps(spans)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(float(value))
    return json.dumps(value, sort_keys=True)


def same_label(a: Any, b: Any, tolerance: float = 0.0) -> bool:
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b))
    if numeric:
        return abs(float(a) - float(b)) <= tolerance
    return canonical(a) == canonical(b)


def annotator_conflicts(session: Session, task: str, tolerance: float = 0.0) -> list[Conflict]:
    """Texts whose annotators' current labels disagree (numbers within `tolerance` agree)."""
    by_text: dict[int, dict[str, Any]] = {}
    for label in current_labels(session, task):
        by_text.setdefault(label.text_id, {})[label.annotator] = label.value
    out = []
    for text_id, values in sorted(by_text.items()):
        pairs = itertools.combinations(values.values(), 2)
        if any(not same_label(a, b, tolerance) for a, b in pairs):
            out.append(Conflict(text_id, task, values))
    return out


def kappa(a: list[str], b: list[str]) -> float:
    """Cohen's kappa of two raters' labels (same as sklearn's, without its import cost)."""
    n = len(a)
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    count_a, count_b = Counter(a), Counter(b)
    expected = sum(count_a[label] * count_b[label] for label in count_a) / (n * n)
    if expected == 1.0:
        return 1.0  # both always gave the same single label: 0/0, but perfect agreement
    return (observed - expected) / (1.0 - expected)


def cohen_kappa(session: Session, task: str) -> dict[tuple[str, str], float]:
    """Cohen's kappa for each pair of annotators over the texts both labelled (categorical comparison)."""
    by_annotator: dict[str, dict[int, str]] = {}
    for label in current_labels(session, task):
        by_annotator.setdefault(label.annotator, {})[label.text_id] = canonical(label.value)
    out: dict[tuple[str, str], float] = {}
    for x, y in itertools.combinations(sorted(by_annotator), 2):
        shared = sorted(by_annotator[x].keys() & by_annotator[y].keys())
        if shared:
            out[(x, y)] = kappa([by_annotator[x][t] for t in shared], [by_annotator[y][t] for t in shared])
    return out
