"""The session table as SQLAlchemy sees it, for building queries.

Alembic (``migrations/``) owns the schema in the database; a test checks that
the migrations at head and this description agree.
"""

from __future__ import annotations

from sqlalchemy import Column, Double, Index, Integer, MetaData, String, Table, Text

metadata = MetaData(
    naming_convention={
        "pk": "pk_%(table_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ix": "ix_%(table_name)s_%(column_0_name)s",
    }
)

#: One row per session.  ``result_key`` is a SHA-256 of the result code (the
#: code itself is a capability and is never stored); ``auth_result`` is the JWE
#: exactly as received: attributes are never stored in clear.
session_table = Table(
    "comm_session",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dtmf", String(64), nullable=False, unique=True),
    Column("result_key", String(64), nullable=False, unique=True),
    Column("purpose", Text, nullable=False),
    Column("contact_id", String(256), nullable=True, unique=True),
    Column("auth_result", Text, nullable=True),
    Column("created_at", Double, nullable=False),
    Column("last_activity", Double, nullable=False),
    Index("ix_comm_session_last_activity", "last_activity"),
    sqlite_autoincrement=True,
)
