"""Review page services: agreement between annotators (Cohen's kappa) and adjudication of conflicts.

Plain functions over a sessionmaker (no widgets), so tests call them directly. An adjudication is
one more appended label event (reason 'adjudication'); nothing here updates or deletes one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.review.service import record
from mtl_core.store import annotator_conflicts, cohen_kappa, current_labels, get_texts
from mtl_core.store.annotations import canonical
from mtl_core.store.db import Sessions
from mtl_core.store.models import ADJUDICATION, AnnotationEvent
from mtl_core.tasks import TaskSpec


@dataclass(frozen=True)
class KappaRow:
    task: str
    annotator_a: str
    annotator_b: str
    shared: int
    kappa: float


def kappa_table(sessions: Sessions, tasks: list[str]) -> list[KappaRow]:
    """Cohen's kappa per task and annotator pair, with how many texts both labelled."""
    rows = []
    with sessions() as s:
        for task in tasks:
            pairs = cohen_kappa(s, task)
            if not pairs:
                continue
            by_annotator: dict[str, set[int]] = {}
            for label in current_labels(s, task):
                by_annotator.setdefault(label.annotator, set()).add(label.text_id)
            for (a, b), k in sorted(pairs.items()):
                rows.append(KappaRow(task, a, b, len(by_annotator[a] & by_annotator[b]), k))
    return rows


@dataclass
class OpenConflict:
    text_id: int
    task: str
    text: str
    values: dict[str, Any]  # annotator -> current label
    options: list[Any] = field(default_factory=list)  # the distinct labels, in first-seen order


def _adjudicated_at(session: Session, task: str) -> dict[int, datetime]:
    """text id -> time of its latest still-effective adjudication for `task`."""
    undone = select(AnnotationEvent.undoes_event_id).where(AnnotationEvent.undoes_event_id.is_not(None))
    query = (
        select(AnnotationEvent.text_id, func.max(AnnotationEvent.created_at))
        .where(AnnotationEvent.task == task, AnnotationEvent.reason == ADJUDICATION,
               AnnotationEvent.kind.in_(("label", "accept")), AnnotationEvent.id.not_in(undone))
        .group_by(AnnotationEvent.text_id)
    )
    return dict(session.execute(query).all())


def open_conflicts(sessions: Sessions, spec: TaskSpec, limit: int = 50) -> list[OpenConflict]:
    """Texts whose annotators disagree on `spec` and that no later adjudication settled."""
    lo, hi = spec.value_range
    tolerance = 0.1 * (hi - lo) if spec.kind == "regression" else 0.0
    with sessions() as s:
        conflicts = annotator_conflicts(s, spec.name, tolerance=tolerance)
        settled = _adjudicated_at(s, spec.name)
        latest: dict[int, datetime] = {}
        for label in current_labels(s, spec.name):
            latest[label.text_id] = max(latest.get(label.text_id, label.created_at), label.created_at)
        open_ = [c for c in conflicts if c.text_id not in settled or settled[c.text_id] < latest[c.text_id]]
        open_ = open_[:limit]
        texts = get_texts(s, [c.text_id for c in open_])
    out = []
    for c in open_:
        options, seen = [], set()
        for value in c.values.values():
            if canonical(value) not in seen:
                seen.add(canonical(value))
                options.append(value)
        out.append(OpenConflict(c.text_id, c.task, texts.get(c.text_id, ""), dict(c.values), options))
    return out


def adjudicate(sessions: Sessions, text_id: int, task: str, value: Any, annotator: str) -> int:
    """The final label of a conflict, recorded as the current annotator's label (reason 'adjudication')."""
    return record(sessions, text_id, task, value, annotator, "label", ADJUDICATION)
