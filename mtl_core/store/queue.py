"""The review queue: scored items (from `mtl_core.review.queue`) stored, ranked and counted."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from mtl_core.store.annotations import DONE_KINDS, LABEL_KINDS
from mtl_core.store.db import dialect_insert, execute_many, refresh_planner_stats, retry_locked
from mtl_core.store.limits import check_string, free_text
from mtl_core.store.models import QUEUE_REASONS, AnnotationEvent, QueueItem, TextRow, utcnow


@dataclass(frozen=True)
class QueueEntry:
    """A queue item joined with its text, ready to show."""

    id: int
    text_id: int
    text: str
    task: str | None
    reason: str
    detail: str
    score: float
    pool: str | None
    model_version: str | None
    created_at: datetime


def _get(item: Any, name: str, default: Any = None) -> Any:
    if isinstance(item, dict):
        return item.get(name, default)
    return getattr(item, name, default)


def _row(item: Any, text_ids: Sequence[int] | None, pool: str | None, model_version: str | None) -> dict:
    text_id = _get(item, "text_id")
    if text_id is None:
        if text_ids is None:
            raise ValueError("queue item has no text_id: pass text_ids to map candidate.index to ids")
        text_id = text_ids[_get(item, "index")]
    reason = _get(item, "reason")
    if reason not in QUEUE_REASONS:
        raise ValueError(f"unknown queue reason {reason!r}; expected one of {QUEUE_REASONS}")
    task = check_string("task", _get(item, "task"), QueueItem.task, optional=True)
    version = check_string("model_version", _get(item, "model_version") or model_version, QueueItem.model_version,
                           optional=True)
    return {
        "dedupe_key": f"{text_id}|{task or ''}|{reason}|{version or ''}",
        "text_id": text_id,
        "task": task,
        "reason": reason,
        "detail": free_text("detail", _get(item, "detail", "") or ""),
        "score": float(_get(item, "score")),
        "pool": check_string("pool", _get(item, "pool") or pool, QueueItem.pool, optional=True),
        "model_version": version,
        "created_at": utcnow(),
    }


@retry_locked
def upsert_queue_items(
    session: Session,
    items: Iterable[Any],
    *,
    text_ids: Sequence[int] | None = None,
    pool: str | None = None,
    model_version: str | None = None,
) -> int:
    """Insert or refresh queue items, one per (text, task, reason, model version); returns how many.

    Items are `review_queue.Candidate`s or dicts with reason, task, score, detail and either
    `text_id` or an `index` into `text_ids`.
    """
    rows: dict[str, dict] = {}
    for item in items:
        row = _row(item, text_ids, pool, model_version)
        if row["dedupe_key"] not in rows or row["score"] > rows[row["dedupe_key"]]["score"]:
            rows[row["dedupe_key"]] = row
    stmt = dialect_insert(session, QueueItem)
    refreshed = {
        "score": stmt.excluded.score,
        "detail": stmt.excluded.detail,
        "pool": func.coalesce(stmt.excluded.pool, QueueItem.pool),
    }
    execute_many(
        session,
        stmt.on_conflict_do_update(index_elements=["dedupe_key"], set_=refreshed),
        list(rows.values()),
    )
    # The queue is read right after a scoring run: its plan depends on both tables' statistics.
    refresh_planner_stats(session, len(rows), "queue_items", "annotation_events")
    return len(rows)


def _done(annotator: str | None, kinds: tuple[str, ...] = DONE_KINDS) -> ColumnElement[bool]:
    """Done = someone (or `annotator`) labelled, accepted or skipped it (`kinds`), and did not undo that."""
    event, undo = aliased(AnnotationEvent), aliased(AnnotationEvent)
    conditions = [
        event.text_id == QueueItem.text_id,
        or_(QueueItem.task.is_(None), event.task == QueueItem.task),
        event.kind.in_(kinds),
        ~exists().where(undo.undoes_event_id == event.id),
        # The labels that make a conflict cannot resolve it: only a later event does.
        or_(QueueItem.reason != "annotator_conflict", event.created_at >= QueueItem.created_at),
    ]
    if annotator is not None:
        conditions.append(event.annotator == annotator)
    return exists().where(and_(*conditions))


def _filters(task: str | None, reason: str | None, pool: str | None) -> list[ColumnElement[bool]]:
    out = []
    if task is not None:
        out.append(QueueItem.task == task)
    if reason is not None:
        out.append(QueueItem.reason == reason)
    if pool is not None:
        out.append(QueueItem.pool == pool)
    return out


def top_queue(
    session: Session,
    limit: int = 100,
    task: str | None = None,
    reason: str | None = None,
    exclude_done: bool = True,
    *,
    pool: str | None = None,
    annotator: str | None = None,
) -> list[QueueEntry]:
    """The highest-scored items first; `exclude_done` hides items already handled (by `annotator` if given)."""
    query = (
        select(QueueItem, TextRow.text)
        .join(TextRow, TextRow.id == QueueItem.text_id)
        .where(*_filters(task, reason, pool))
        .order_by(QueueItem.score.desc(), QueueItem.id)
        .limit(limit)
    )
    if exclude_done:
        query = query.where(~_done(annotator))
    return [
        QueueEntry(
            q.id, q.text_id, text, q.task, q.reason, q.detail, q.score, q.pool, q.model_version, q.created_at
        )
        for q, text in session.execute(query)
    ]


def queue_progress(
    session: Session, task: str | None = None, *, pool: str | None = None, annotator: str | None = None
) -> dict[str, Any]:
    """Counts for a progress bar: total, done (labelled, accepted or skipped), remaining, and the same per
    reason; `labelled` (per reason too) leaves the skipped ones out: a skip takes an item off the queue, but
    it is not done."""
    counts = (
        select(QueueItem.reason, func.count()).where(*_filters(task, None, pool)).group_by(QueueItem.reason)
    )
    totals = dict(session.execute(counts).all())
    # EXISTS in WHERE (not in a CASE) lets PostgreSQL hash-join instead of probing per row.
    done = dict(session.execute(counts.where(_done(annotator))).all())
    labelled = dict(session.execute(counts.where(_done(annotator, LABEL_KINDS))).all())
    by_reason = {reason: {"total": int(n), "done": int(done.get(reason, 0)), "labelled": int(labelled.get(reason, 0))}
                 for reason, n in totals.items()}
    total = sum(r["total"] for r in by_reason.values())
    n_done = sum(r["done"] for r in by_reason.values())
    n_labelled = sum(r["labelled"] for r in by_reason.values())
    return {"total": total, "done": n_done, "labelled": n_labelled, "remaining": total - n_done,
            "by_reason": by_reason}
