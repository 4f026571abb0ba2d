"""The tables as SQLAlchemy sees them, for building queries.

Alembic (``migrations/``) owns the schema in the database; a test checks that
the migrations at head and this description agree.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Double, Index, Integer, MetaData, String, Table, Text, false

metadata = MetaData(
    naming_convention={
        "pk": "pk_%(table_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ix": "ix_%(table_name)s_%(column_0_name)s",
    }
)

#: One row per session.  ``code_key`` is the HMAC of the DTMF code under the
#: server's code secret and ``result_key`` the SHA-256 of the result code (the
#: codes themselves are capabilities and are never stored); ``auth_result`` is
#: the JWE exactly as received: attributes are never stored in clear.
#: ``feedback`` says whether that result carries a ``session_url``.
session_table = Table(
    "comm_session",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("code_key", String(64), nullable=False, unique=True),
    Column("result_key", String(64), nullable=False, unique=True),
    Column("purpose", Text, nullable=False),
    Column("contact_id", String(256), nullable=True, unique=True),
    Column("auth_result", Text, nullable=True),
    Column("feedback", Boolean, nullable=False, server_default=false()),
    Column("created_at", Double, nullable=False),
    Column("last_activity", Double, nullable=False),
    Index("ix_comm_session_last_activity", "last_activity"),
    sqlite_autoincrement=True,
)

#: Replay keys of accepted results (SHA-256 of the JWS signing input), each
#: accepted for one session only, kept until the token would be refused as
#: expired anyway (``expires_at``: its ``exp`` plus the leeway).
used_token_table = Table(
    "comm_used_token",
    metadata,
    Column("replay_key", String(64), primary_key=True),
    Column("expires_at", Double, nullable=False),
    Index("ix_comm_used_token_expires_at", "expires_at"),
)

#: Failed ``/link_phone`` attempts per window (``window_end``: whole epoch
#: seconds), shared by every instance on the database.
link_failure_table = Table(
    "comm_link_failure",
    metadata,
    Column("window_end", BigInteger, primary_key=True, autoincrement=False),
    Column("failures", Integer, nullable=False),
)
