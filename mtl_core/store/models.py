"""ORM tables of the MTL Studio store (SQLite by default, PostgreSQL for team mode).

Timestamps are naive UTC: SQLite has no time zones, and one convention for both back ends
keeps comparisons (job heartbeats, label order) simple.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

EVENT_KINDS = ("label", "accept", "skip", "undo")
QUEUE_REASONS = ("uncertain", "contradiction", "model_vs_label", "version_vs_version", "annotator_conflict")
ADJUDICATION = "adjudication"  # a reviewer's final label on a conflict
EVENT_REASONS = (*QUEUE_REASONS, ADJUDICATION)  # why an annotation event was made, when it says
JOB_STATUSES = ("queued", "running", "done", "failed", "cancelled")
ROLES = ("annotator", "reviewer", "admin")

# Stable constraint names, so migrations written today still match tomorrow's metadata.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Naive UTC now (see module docstring)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class TextRow(Base):
    """One input text; deduplicated by content hash within its source."""

    __tablename__ = "texts"
    __table_args__ = (UniqueConstraint("source", "content_hash", name="uq_texts_source_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(200))  # "predict", "upload:<name>", "dataset:<task>"
    dataset_split: Mapped[str | None] = mapped_column(String(32))
    content_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class PredictionRow(Base):
    """One task head's answer for one text from one model version."""

    __tablename__ = "predictions"
    __table_args__ = (
        Index("ix_predictions_version_task_text", "model_version", "task", "text_id", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    text_id: Mapped[int] = mapped_column(ForeignKey("texts.id"))
    model_version: Mapped[str] = mapped_column(String(64))
    task: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    score: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class AnnotationEvent(Base):
    """Append-only log (database triggers refuse UPDATE/DELETE); undo is a new event."""

    __tablename__ = "annotation_events"
    __table_args__ = (
        CheckConstraint(_in("kind", EVENT_KINDS), name="kind"),
        Index("ix_annotation_events_text_task", "text_id", "task"),
        Index("ix_annotation_events_annotator_created", "annotator", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_key: Mapped[str] = mapped_column(String(64), unique=True)  # stable across export/import
    text_id: Mapped[int] = mapped_column(ForeignKey("texts.id"))
    task: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[Any] = mapped_column(JSON, nullable=True)  # label, float, or [{start, end, label}]
    annotator: Mapped[str] = mapped_column(String(128))
    # Team mode records the importing user as `annotator`; the name in the imported file is kept here.
    source_annotator: Mapped[str | None] = mapped_column(String(128))
    reason: Mapped[str | None] = mapped_column(String(32))  # why the item was queued, if it was
    # One bulk action (a cluster of near-duplicates labelled at once) and its undo share this id.
    bulk_id: Mapped[str | None] = mapped_column(String(36), index=True)
    undoes_event_id: Mapped[int | None] = mapped_column(ForeignKey("annotation_events.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class QueueItem(Base):
    """A text worth a human look, and why."""

    __tablename__ = "queue_items"
    __table_args__ = (
        CheckConstraint(_in("reason", QUEUE_REASONS), name="reason"),
        Index("ix_queue_items_task_score", "task", "score"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # text|task|reason|version: a plain UNIQUE over nullable columns would let NULLs repeat.
    dedupe_key: Mapped[str] = mapped_column(String(255), unique=True)
    text_id: Mapped[int] = mapped_column(ForeignKey("texts.id"))
    task: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text, default="")
    score: Mapped[float] = mapped_column(Float)
    pool: Mapped[str | None] = mapped_column(String(200))
    model_version: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


Index("ix_queue_items_score_desc", QueueItem.score.desc())


class DatasetLabel(Base):
    """A gold label shipped with a bundled or uploaded data set."""

    __tablename__ = "dataset_labels"

    text_id: Mapped[int] = mapped_column(ForeignKey("texts.id"), primary_key=True)
    task: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)


class Job(Base):
    """A background job (training, pool scoring) as seen by the app and the worker."""

    __tablename__ = "jobs"
    __table_args__ = (CheckConstraint(_in("status", JOB_STATUSES), name="status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    step: Mapped[int | None] = mapped_column(Integer)
    total: Mapped[int | None] = mapped_column(Integer)
    message: Mapped[str | None] = mapped_column(Text)
    log: Mapped[str] = mapped_column(Text, default="")
    params: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    pid: Mapped[int | None] = mapped_column(Integer)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)


class JobMetric(Base):
    """One point of a live training curve."""

    __tablename__ = "job_metrics"
    __table_args__ = (Index("ix_job_metrics_job_step", "job_id", "step"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"))
    step: Mapped[int] = mapped_column(Integer)
    task: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(64))
    value: Mapped[float] = mapped_column(Float)


class User(Base):
    """A team-mode account (hashing lives elsewhere)."""

    __tablename__ = "users"
    __table_args__ = (CheckConstraint(_in("role", ROLES), name="role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(128), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default="annotator")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


THROTTLE_SCOPES = ("account", "client")


class SignInThrottle(Base):
    """Consecutive failed sign-ins of one account name or one client, and until when they are refused.

    `key` is a SHA-256 of scope and name, so junk names typed at the form cost a fixed-size row.
    """

    __tablename__ = "signin_throttle"
    __table_args__ = (CheckConstraint(_in("scope", THROTTLE_SCOPES), name="scope"),)

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    scope: Mapped[str] = mapped_column(String(16))
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime)
