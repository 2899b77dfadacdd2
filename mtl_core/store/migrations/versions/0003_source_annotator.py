"""annotation provenance: who an imported event was originally by, when team mode re-attributes it

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A nullable column without a default: no table rewrite, and the append-only triggers stay as they are.
    op.add_column("annotation_events", sa.Column("source_annotator", sa.String(length=128), nullable=True))


def downgrade() -> None:
    # A plain DROP COLUMN (SQLite >= 3.35): batch mode would copy the table and lose its triggers.
    op.drop_column("annotation_events", "source_annotator")
