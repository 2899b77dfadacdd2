"""The final label of each text for one task, after undo and adjudication: what a training set is built from.

Per text: the latest effective adjudication when no annotator changed their label after it; otherwise the
annotators' current labels (label or accept, not undone; one per annotator, their latest): the label they
all gave ("agreed", or "single" for one annotator), the strict majority ("majority"), the mean of differing
numbers ("mean", regression), or no label ("conflict": a tie, waiting for adjudication).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mtl_core.store.annotations import LABEL_KINDS, canonical, undone_ids
from mtl_core.store.db import chunks
from mtl_core.store.limits import check_string
from mtl_core.store.models import ADJUDICATION, AnnotationEvent, TextRow

STATUSES = ("adjudicated", "single", "agreed", "majority", "mean", "conflict")


@dataclass(frozen=True)
class FinalLabel:
    text_id: int
    text: str
    task: str
    value: Any  # None for a conflict
    status: str  # one of STATUSES
    annotators: int  # how many annotators' current labels it was decided from


@dataclass(frozen=True)
class _Vote:
    annotator: str
    value: Any
    reason: str | None
    created_at: datetime


def _votes(session: Session, task: str) -> dict[int, dict[str, _Vote]]:
    """text id -> annotator -> their latest effective label for `task`."""
    query = (
        select(AnnotationEvent.text_id, AnnotationEvent.annotator, AnnotationEvent.value, AnnotationEvent.reason,
               AnnotationEvent.created_at)
        .where(AnnotationEvent.task == task, AnnotationEvent.kind.in_(LABEL_KINDS),
               AnnotationEvent.id.not_in(undone_ids()))
        .order_by(AnnotationEvent.created_at, AnnotationEvent.id)
    )
    out: dict[int, dict[str, _Vote]] = {}
    for text_id, annotator, value, reason, created_at in session.execute(query):
        out.setdefault(text_id, {})[annotator] = _Vote(annotator, value, reason, created_at)
    return out


def decide(votes: list[_Vote]) -> tuple[Any, str]:
    """(value, status) of one text's current labels (see the module docstring)."""
    adjudications = [v for v in votes if v.reason == ADJUDICATION]
    if adjudications:
        ruling = max(adjudications, key=lambda v: v.created_at)
        if all(v.created_at <= ruling.created_at for v in votes):
            return ruling.value, "adjudicated"
    counts = Counter(canonical(v.value) for v in votes)
    first = {canonical(v.value): v.value for v in reversed(votes)}
    if len(counts) == 1:
        return votes[0].value, "single" if len(votes) == 1 else "agreed"
    numbers = [v.value for v in votes]
    if all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in numbers):
        return round(sum(float(x) for x in numbers) / len(numbers), 3), "mean"
    (top, n), (_, runner_up) = counts.most_common(2)
    if n > runner_up:
        return first[top], "majority"
    return None, "conflict"


def final_labels(session: Session, task: str) -> list[FinalLabel]:
    """One row per text labelled for `task` (by text id), decided as the module docstring says."""
    check_string("task", task, AnnotationEvent.task, nonempty=True)
    by_text = _votes(session, task)
    texts: dict[int, str] = {}
    for batch in chunks(sorted(by_text)):
        texts.update(session.execute(select(TextRow.id, TextRow.text).where(TextRow.id.in_(batch))).all())
    out = []
    for text_id in sorted(by_text):
        votes = list(by_text[text_id].values())
        value, status = decide(votes)
        out.append(FinalLabel(text_id, texts.get(text_id, ""), task, value, status, len(votes)))
    return out
