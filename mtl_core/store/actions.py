"""Labelling actions tied to the item the annotator saw: a stale or repeated click is refused, never
applied to another item, and never stored twice.

A button is drawn for one `Drawn` item: its queue item, text and task, and the annotator's *version* of the
text (the id of their latest event on it). An action checks that version before writing (optimistic
concurrency), and its events carry an idempotency key made of the drawn item and the target, so two
deliveries of one click collide on the log's unique `event_key` even across processes. Undo carries the id
of the event it was drawn to cancel; an event's undo has a key derived from the event's own key, so no
event is ever undone twice. A bulk action's events share a `bulk_id`, and undo takes them all back.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mtl_core.store.annotations import DONE_KINDS, new_event, undone_ids
from mtl_core.store.db import retry_locked
from mtl_core.store.limits import check_string
from mtl_core.store.models import AnnotationEvent


class StaleAction(ValueError):
    """The item changed since its button was drawn (already labelled or undone, or a repeated click)."""


@dataclass(frozen=True)
class Drawn:
    """What a button was drawn for; `version`: the annotator's latest event id on the text then (0: none)."""

    queue_item_id: int
    text_id: int
    task: str | None
    version: int

    @property
    def token(self) -> str:
        """Part of the button's widget key: a new version draws a new button, never a re-used one."""
        return f"{self.queue_item_id}_{self.text_id}_{self.version}"


@dataclass(frozen=True)
class Action:
    """One event an action writes: label / accept / skip of `task` on `text_id` (the drawn text, or a
    near-duplicate of it in a bulk action)."""

    text_id: int
    task: str
    kind: str
    value: Any
    reason: str | None = None


def text_version(session: Session, text_id: int, annotator: str) -> int:
    """The id of the annotator's latest event on the text (0 when none): changes with every action and undo."""
    query = select(func.max(AnnotationEvent.id)).where(AnnotationEvent.text_id == text_id,
                                                       AnnotationEvent.annotator == annotator)
    return int(session.scalar(query) or 0)


def action_key(annotator: str, drawn: Drawn, text_id: int, task: str) -> str:
    raw = json.dumps(["action", annotator, drawn.queue_item_id, drawn.text_id, drawn.version, text_id, task])
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def _undo_key(target: AnnotationEvent) -> str:
    return hashlib.sha256(f"undo|{target.event_key}".encode()).hexdigest()


@retry_locked
def record_drawn(session: Session, drawn: Drawn, annotator: str, actions: Sequence[Action],
                 *, bulk: bool = False) -> list[AnnotationEvent]:
    """Write `actions` for the item `drawn`, all or nothing; StaleAction when the annotator's version of the
    text moved on since the button was drawn, or when this very click was already stored."""
    check_string("annotator", annotator, AnnotationEvent.annotator, nonempty=True)
    if not actions:
        raise ValueError("no action to record")
    for action in actions:
        if action.kind not in DONE_KINDS:
            raise ValueError(f"kind must be one of {DONE_KINDS}, got {action.kind!r}")
    if text_version(session, drawn.text_id, annotator) != drawn.version:
        raise StaleAction("this item changed since it was shown (already labelled or undone): nothing recorded")
    bulk_id = str(uuid.uuid4()) if bulk else None
    try:
        return [new_event(session, a.text_id, a.task, a.kind, a.value, annotator, a.reason,
                          key=action_key(annotator, drawn, a.text_id, a.task), bulk_id=bulk_id)
                for a in actions]
    except IntegrityError as exc:  # the same click delivered twice (another tab, another process)
        session.rollback()
        raise StaleAction("this click was already recorded: nothing recorded twice") from exc


def latest_effective(session: Session, annotator: str) -> AnnotationEvent | None:
    """The annotator's latest event that an undo would cancel (not an undo, not undone)."""
    query = select(AnnotationEvent).where(
        AnnotationEvent.annotator == annotator, AnnotationEvent.kind != "undo",
        AnnotationEvent.id.not_in(undone_ids()))
    return session.scalar(query.order_by(AnnotationEvent.created_at.desc(), AnnotationEvent.id.desc()).limit(1))


@retry_locked
def undo_latest(session: Session, annotator: str, expect_event_id: int | None = None) -> list[AnnotationEvent]:
    """Undo the annotator's latest effective event, with the rest of its bulk action; [] when nothing is left.

    `expect_event_id`: the event the Undo button was drawn for; StaleAction when that is no longer the
    latest (an Undo pressed twice undoes once)."""
    check_string("annotator", annotator, AnnotationEvent.annotator, nonempty=True)
    target = latest_effective(session, annotator)
    if expect_event_id is not None and (target is None or target.id != expect_event_id):
        raise StaleAction("that action was already undone: nothing undone twice")
    if target is None:
        return []
    targets = [target]
    if target.bulk_id:
        query = select(AnnotationEvent).where(
            AnnotationEvent.bulk_id == target.bulk_id, AnnotationEvent.annotator == annotator,
            AnnotationEvent.kind != "undo", AnnotationEvent.id.not_in(undone_ids()))
        targets = list(session.scalars(query.order_by(AnnotationEvent.id)))
    try:
        return [new_event(session, t.text_id, t.task, "undo", None, annotator, t.reason, undoes=t,
                          key=_undo_key(t), bulk_id=t.bulk_id) for t in targets]
    except IntegrityError as exc:
        session.rollback()
        raise StaleAction("that action was already undone: nothing undone twice") from exc
