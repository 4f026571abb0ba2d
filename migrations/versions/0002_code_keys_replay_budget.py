"""DTMF codes kept as keys; used tokens; link failure counts; the feedback flag.

* ``comm_session.dtmf`` becomes ``code_key``: each stored code is replaced by
  its HMAC-SHA256 under the server's code secret (``connect_plugin.codes``),
  so a caller who got a code before the upgrade is still linked after it.
  The secret comes from ``connect-plugin migrate`` (and ``serve`` on SQLite)
  in the Alembic config attribute ``code_secret``; run from plain ``alembic``
  on a database that holds sessions, this revision refuses.
* ``comm_session.feedback``: whether the result carries a ``session_url``.
  Results stored before are marked ``true``, so that a link still decrypts
  them to find out, as it always did.
* ``comm_used_token`` (one result per token) and ``comm_link_failure``
  (the link failure budget).

Going down deletes the sessions still stored: their codes cannot be turned
back from keys.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import hashlib
import hmac
import logging

import sqlalchemy as sa
from alembic import context, op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")
#: SQLite rebuilds keep ids growing (never reused), as revision 0001 made them.
SQLITE_TABLE = {"sqlite_autoincrement": True}

REFUSAL = (
    "revision 0002 turns the stored DTMF codes into keys under the server's code secret, "
    "and none was given: run `connect-plugin migrate --config <your settings>` instead of alembic"
)


def upgrade() -> None:
    sessions = sa.table("comm_session", sa.column("id", sa.Integer), sa.column("dtmf", sa.String))
    conn = op.get_bind()
    rows = conn.execute(sa.select(sessions.c.id, sessions.c.dtmf)).all()
    if rows:
        secret = context.config.attributes.get("code_secret")
        if not secret:
            raise RuntimeError(REFUSAL)
        keys = [{"row": row.id, "key": hmac.new(secret, row.dtmf.encode(), hashlib.sha256).hexdigest()}
                for row in rows]
        conn.execute(sa.update(sessions).where(sessions.c.id == sa.bindparam("row"))
                     .values(dtmf=sa.bindparam("key")), keys)
    if conn.dialect.name == "sqlite":
        # SQLite rebuilds the table; the rename and the new constraint take two rebuilds.
        with op.batch_alter_table("comm_session", recreate="always", table_kwargs=SQLITE_TABLE) as batch:
            batch.drop_constraint("uq_comm_session_dtmf", type_="unique")
            batch.alter_column("dtmf", new_column_name="code_key", existing_type=sa.String(64),
                               existing_nullable=False)
        with op.batch_alter_table("comm_session", recreate="always", table_kwargs=SQLITE_TABLE) as batch:
            batch.create_unique_constraint("uq_comm_session_code_key", ["code_key"])
            batch.add_column(sa.Column("feedback", sa.Boolean(), nullable=False, server_default=sa.false()))
    else:
        op.alter_column("comm_session", "dtmf", new_column_name="code_key")
        op.execute("ALTER TABLE comm_session RENAME CONSTRAINT uq_comm_session_dtmf TO uq_comm_session_code_key")
        op.add_column("comm_session", sa.Column("feedback", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute("UPDATE comm_session SET feedback = true WHERE auth_result IS NOT NULL")

    op.create_table(
        "comm_used_token",
        sa.Column("replay_key", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("replay_key", name="pk_comm_used_token"),
    )
    op.create_index("ix_comm_used_token_expires_at", "comm_used_token", ["expires_at"])
    op.create_table(
        "comm_link_failure",
        sa.Column("window_end", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("window_end", name="pk_comm_link_failure"),
    )


def downgrade() -> None:
    op.drop_table("comm_link_failure")
    op.drop_index("ix_comm_used_token_expires_at", table_name="comm_used_token")
    op.drop_table("comm_used_token")
    deleted = op.get_bind().execute(sa.text("DELETE FROM comm_session")).rowcount
    if deleted:
        log.warning("deleted %d session(s): their DTMF codes cannot be turned back from keys", deleted)
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("comm_session", recreate="always", table_kwargs=SQLITE_TABLE) as batch:
            batch.drop_column("feedback")
            batch.drop_constraint("uq_comm_session_code_key", type_="unique")
            batch.alter_column("code_key", new_column_name="dtmf", existing_type=sa.String(64),
                               existing_nullable=False)
        with op.batch_alter_table("comm_session", recreate="always", table_kwargs=SQLITE_TABLE) as batch:
            batch.create_unique_constraint("uq_comm_session_dtmf", ["dtmf"])
    else:
        op.drop_column("comm_session", "feedback")
        op.alter_column("comm_session", "code_key", new_column_name="dtmf")
        op.execute("ALTER TABLE comm_session RENAME CONSTRAINT uq_comm_session_code_key TO uq_comm_session_dtmf")
