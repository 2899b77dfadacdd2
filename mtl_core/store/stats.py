"""One annotator's figures for the Review page: labelled today, pace, open skips, agreement with the others."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from mtl_core.store.annotations import LABEL_KINDS, same_label, undone_ids
from mtl_core.store.limits import check_string
from mtl_core.store.models import AnnotationEvent, TextRow

PACE_WINDOW = 20  # the pace is measured over the annotator's latest this-many actions


@dataclass(frozen=True)
class AnnotatorStats:
    labelled_today: int  # label/accept events since `since`, not undone
    skipped: int  # open skips (see `skipped_items`)
    per_minute: float | None  # pace over the latest PACE_WINDOW actions; None with fewer than two
    agreement: float | None  # share of (text, task, other annotator) pairs with the same current label
    compared: int  # how many such pairs


@dataclass(frozen=True)
class SkippedItem:
    text_id: int
    task: str
    text: str
    skipped_at: datetime


def _effective(annotator: str):
    return (AnnotationEvent.annotator == annotator, AnnotationEvent.kind != "undo",
            AnnotationEvent.id.not_in(undone_ids()))


def skipped_items(session: Session, annotator: str, limit: int = 100) -> list[SkippedItem]:
    """The annotator's skips not undone and not followed by their own label of the same text and task."""
    check_string("annotator", annotator, AnnotationEvent.annotator, nonempty=True)
    later = aliased(AnnotationEvent)
    labelled_after = (
        select(later.id).where(later.text_id == AnnotationEvent.text_id, later.task == AnnotationEvent.task,
                               later.annotator == annotator, later.kind.in_(LABEL_KINDS),
                               later.id > AnnotationEvent.id, later.id.not_in(undone_ids())).exists()
    )
    query = (
        select(AnnotationEvent.text_id, AnnotationEvent.task, TextRow.text, AnnotationEvent.created_at)
        .join(TextRow, TextRow.id == AnnotationEvent.text_id)
        .where(*_effective(annotator), AnnotationEvent.kind == "skip", ~labelled_after)
        .order_by(AnnotationEvent.id.desc()).limit(limit)
    )
    seen, out = set(), []
    for text_id, task, text, created_at in session.execute(query):
        if (text_id, task) not in seen:
            seen.add((text_id, task))
            out.append(SkippedItem(text_id, task, text, created_at))
    return out


def _agreement(session: Session, annotator: str) -> tuple[float | None, int]:
    mine_q = select(AnnotationEvent.text_id, AnnotationEvent.task, AnnotationEvent.value).where(
        *_effective(annotator), AnnotationEvent.kind.in_(LABEL_KINDS)).order_by(AnnotationEvent.id)
    mine = {(t, task): value for t, task, value in session.execute(mine_q)}
    if not mine:
        return None, 0
    others_q = (
        select(AnnotationEvent.text_id, AnnotationEvent.task, AnnotationEvent.annotator, AnnotationEvent.value)
        .where(AnnotationEvent.annotator != annotator, AnnotationEvent.kind.in_(LABEL_KINDS),
               AnnotationEvent.id.not_in(undone_ids()),
               AnnotationEvent.text_id.in_(select(AnnotationEvent.text_id).where(*_effective(annotator))))
        .order_by(AnnotationEvent.id)
    )
    theirs = {(t, task, who): value for t, task, who, value in session.execute(others_q) if (t, task) in mine}
    if not theirs:
        return None, 0
    agree = sum(same_label(mine[(t, task)], value) for (t, task, _), value in theirs.items())
    return agree / len(theirs), len(theirs)


def annotator_stats(session: Session, annotator: str, since: datetime) -> AnnotatorStats:
    check_string("annotator", annotator, AnnotationEvent.annotator, nonempty=True)
    today = session.scalar(select(func.count()).where(
        *_effective(annotator), AnnotationEvent.kind.in_(LABEL_KINDS), AnnotationEvent.created_at >= since))
    recent = list(session.scalars(select(AnnotationEvent.created_at).where(*_effective(annotator))
                                  .order_by(AnnotationEvent.id.desc()).limit(PACE_WINDOW)))
    pace = None
    if len(recent) >= 2:
        minutes = (max(recent) - min(recent)).total_seconds() / 60
        pace = (len(recent) - 1) / minutes if minutes > 0 else None
    agreement, compared = _agreement(session, annotator)
    return AnnotatorStats(int(today or 0), len(skipped_items(session, annotator)), pace, agreement, compared)
