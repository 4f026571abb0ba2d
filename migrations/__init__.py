"""Alembic migrations: the one owner of the SQL schema."""
