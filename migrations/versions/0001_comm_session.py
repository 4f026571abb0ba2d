"""Create the comm_session table.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "comm_session",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("dtmf", sa.String(64), nullable=False),
        sa.Column("result_key", sa.String(64), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("contact_id", sa.String(256), nullable=True),
        sa.Column("auth_result", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("last_activity", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_comm_session"),
        sa.UniqueConstraint("dtmf", name="uq_comm_session_dtmf"),
        sa.UniqueConstraint("result_key", name="uq_comm_session_result_key"),
        sa.UniqueConstraint("contact_id", name="uq_comm_session_contact_id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_comm_session_last_activity", "comm_session", ["last_activity"])


def downgrade() -> None:
    op.drop_index("ix_comm_session_last_activity", table_name="comm_session")
    op.drop_table("comm_session")
