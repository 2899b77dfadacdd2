"""initial schema: texts, predictions, annotation events, review queue, jobs, users

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

APPEND_ONLY = "annotation_events is append-only: record an undo event instead"


def _id() -> sa.Column:
    return sa.Column("id", sa.Integer(), nullable=False)


def _created() -> sa.Column:
    return sa.Column("created_at", sa.DateTime(), nullable=False)


def _create_core() -> None:
    op.create_table(
        "texts",
        _id(),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("dataset_split", sa.String(length=32), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        _created(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_texts")),
        sa.UniqueConstraint("source", "content_hash", name="uq_texts_source_hash"),
    )
    op.create_table(
        "predictions",
        _id(),
        sa.Column("text_id", sa.Integer(), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("task", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        _created(),
        sa.ForeignKeyConstraint(["text_id"], ["texts.id"], name=op.f("fk_predictions_text_id_texts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_predictions")),
    )
    op.create_index("ix_predictions_version_task_text", "predictions", ["model_version", "task", "text_id"],
                    unique=True)
    op.create_table(
        "dataset_labels",
        sa.Column("text_id", sa.Integer(), nullable=False),
        sa.Column("task", sa.String(length=64), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["text_id"], ["texts.id"], name=op.f("fk_dataset_labels_text_id_texts")),
        sa.PrimaryKeyConstraint("text_id", "task", name=op.f("pk_dataset_labels")),
    )


def _create_annotations() -> None:
    op.create_table(
        "annotation_events",
        _id(),
        sa.Column("event_key", sa.String(length=64), nullable=False),
        sa.Column("text_id", sa.Integer(), nullable=False),
        sa.Column("task", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.JSON(), nullable=True),
        sa.Column("annotator", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("undoes_event_id", sa.Integer(), nullable=True),
        _created(),
        sa.CheckConstraint("kind IN ('label', 'accept', 'skip', 'undo')", name=op.f("ck_annotation_events_kind")),
        sa.ForeignKeyConstraint(["text_id"], ["texts.id"], name=op.f("fk_annotation_events_text_id_texts")),
        sa.ForeignKeyConstraint(["undoes_event_id"], ["annotation_events.id"],
                                name=op.f("fk_annotation_events_undoes_event_id_annotation_events")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_annotation_events")),
        sa.UniqueConstraint("event_key", name=op.f("uq_annotation_events_event_key")),
    )
    op.create_index("ix_annotation_events_annotator_created", "annotation_events", ["annotator", "created_at"])
    op.create_index("ix_annotation_events_text_task", "annotation_events", ["text_id", "task"])
    op.create_index(op.f("ix_annotation_events_undoes_event_id"), "annotation_events", ["undoes_event_id"])
    op.create_table(
        "queue_items",
        _id(),
        sa.Column("dedupe_key", sa.String(length=255), nullable=False),
        sa.Column("text_id", sa.Integer(), nullable=False),
        sa.Column("task", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("pool", sa.String(length=200), nullable=True),
        sa.Column("model_version", sa.String(length=64), nullable=True),
        _created(),
        sa.CheckConstraint(
            "reason IN ('uncertain', 'contradiction', 'model_vs_label', 'version_vs_version', 'annotator_conflict')",
            name=op.f("ck_queue_items_reason"),
        ),
        sa.ForeignKeyConstraint(["text_id"], ["texts.id"], name=op.f("fk_queue_items_text_id_texts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_items")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_queue_items_dedupe_key")),
    )
    op.create_index("ix_queue_items_score_desc", "queue_items", [sa.text("score DESC")])
    op.create_index("ix_queue_items_task_score", "queue_items", ["task", "score"])


def _create_jobs_users() -> None:
    op.create_table(
        "jobs",
        _id(),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=True),
        sa.Column("total", sa.Integer(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("log", sa.Text(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=True),
        _created(),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint("status IN ('queued', 'running', 'done', 'failed', 'cancelled')",
                           name=op.f("ck_jobs_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    op.create_index(op.f("ix_jobs_status"), "jobs", ["status"])
    op.create_table(
        "job_metrics",
        _id(),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("task", sa.String(length=64), nullable=True),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_job_metrics_job_id_jobs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_metrics")),
    )
    op.create_index("ix_job_metrics_job_step", "job_metrics", ["job_id", "step"])
    op.create_table(
        "users",
        _id(),
        sa.Column("username", sa.String(length=128), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        _created(),
        sa.CheckConstraint("role IN ('annotator', 'reviewer', 'admin')", name=op.f("ck_users_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )


def _append_only_triggers() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER annotation_events_no_{verb.lower()} BEFORE {verb} ON annotation_events "
                f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END"
            )
    elif dialect == "postgresql":
        op.execute(
            "CREATE OR REPLACE FUNCTION mtl_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN RAISE EXCEPTION '{APPEND_ONLY}'; END $$"
        )
        op.execute(
            "CREATE TRIGGER annotation_events_append_only BEFORE UPDATE OR DELETE ON annotation_events "
            "FOR EACH ROW EXECUTE FUNCTION mtl_append_only()"
        )


def upgrade() -> None:
    _create_core()
    _create_annotations()
    _create_jobs_users()
    _append_only_triggers()


def downgrade() -> None:
    for table in ("users", "job_metrics", "jobs", "queue_items", "annotation_events", "dataset_labels",
                  "predictions", "texts"):
        op.drop_table(table)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS mtl_append_only()")
