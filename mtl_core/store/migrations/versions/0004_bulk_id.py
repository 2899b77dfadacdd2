"""bulk actions: the events one bulk label (or its undo) wrote share a bulk id, so one undo takes them all back

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, no default: no table rewrite, and the append-only triggers stay as they are (as in 0003).
    op.add_column("annotation_events", sa.Column("bulk_id", sa.String(length=36), nullable=True))
    op.create_index(op.f("ix_annotation_events_bulk_id"), "annotation_events", ["bulk_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_annotation_events_bulk_id"), table_name="annotation_events")
    op.drop_column("annotation_events", "bulk_id")  # plain DROP COLUMN: batch mode would lose the triggers
