"""sign-in throttle: failed sign-ins per account name and per client, shared by every app process

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signin_throttle",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", sa.DateTime(), nullable=False),
        sa.Column("locked_until", sa.DateTime(), nullable=True),
        sa.CheckConstraint("scope IN ('account', 'client')", name=op.f("ck_signin_throttle_scope")),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_signin_throttle")),
    )
    op.create_index(op.f("ix_signin_throttle_last_failure_at"), "signin_throttle", ["last_failure_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_signin_throttle_last_failure_at"), table_name="signin_throttle")
    op.drop_table("signin_throttle")
