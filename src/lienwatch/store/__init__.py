"""Persistence: SQLAlchemy tables, engines and sessions, repositories, Alembic migrations."""
